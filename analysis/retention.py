"""Retention of what/when predictions across sequential contexts (continual learning).

A context is a block of trials drawn from its own cues (``[[task.blocks]] cues``). After the
readouts have learned a later context, is an earlier context's "when" prediction still there?
The measure applies the 'when' unit's weights and bias kept at the end of each block to the
features of the earlier context's own omission trials (rebuilt from the spikes; exact when the
reservoir is reset at each trial start): the prediction the weights carry, with no outcome and
no in-trial learning. Per cue of each earlier block: the omission-trial output's amplitude in
the outcome window (``[L, L + outcome_ms)``) and its peak time (searched within
``peak_search_ms`` of the latency ``L``, so the cue's own transient at the trial start is not
taken for the prediction), with the weights right after
that block and after the last block, and their change. The target of the HLOP issue: under
protection, amplitude change below 20 % and peak shift below 30 ms.
"""
from __future__ import annotations

import numpy as np

from .features import trial_features
from .whatwhen import WhatWhenDesign


def when_retention(design: WhatWhenDesign, run, when_weights: np.ndarray, when_bias: np.ndarray,
                   every_ms: float = 2.0, max_trials: int = 40, peak_search_ms: float = 200.0) -> list[dict]:
    """Per earlier block and cue, the carried 'when' prediction on that cue's omission trials
    after its own block and after the last block (``when_weights`` ``(blocks, F)``,
    ``when_bias`` ``(blocks,)``: the 'when' unit's at each block's end). At most ``max_trials``
    omission trials (the block's last) are rebuilt, sampled every ``every_ms``."""
    table = run.tables["trials"]
    n_blocks = len(design.blocks)
    last = n_blocks - 1
    t = np.arange(int(round(design.trial_ms / every_ms))) * every_ms
    out = []
    for block in range(last):
        for ci, cue in enumerate(design.cues):
            rows = np.flatnonzero((table["block"] == block) & (table["cue"] == ci) & (table["identity"] < 0))
            if rows.size == 0:
                continue
            rows = rows[-max_trials:]
            features = trial_features(run, table["onset_step"][rows] * run.dt_ms, design.trial_ms, every_ms,
                                      dtype=np.float64)
            latency, probabilities = design.settings[block][ci]
            due = (t >= latency) & (t < latency + design.outcome_ms)
            near = np.abs(t - latency) <= peak_search_ms
            entry = {"block": block, "cue": cue, "latency_ms": latency,
                     "p_outcome": float(sum(probabilities.values())), "n_omissions": int(rows.size)}
            for label, after in (("own", block), ("last", last)):
                curve = (features @ when_weights[after] + when_bias[after]).mean(axis=0)
                peak_t = float(t[near][np.argmax(curve[near])])
                entry[f"amplitude_after_{label}"] = float(curve[due].mean())
                entry[f"peak_time_after_{label}_ms"] = float(peak_t)
            own = entry["amplitude_after_own"]
            entry["amplitude_change"] = (entry["amplitude_after_last"] - own) / abs(own) if own else float("nan")
            entry["peak_shift_ms"] = entry["peak_time_after_last_ms"] - entry["peak_time_after_own_ms"]
            out.append(entry)
    return out
