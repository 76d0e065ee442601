"""Measures of the what/when paradigm (the six claims listed in ``docs/results-whatwhen.md``).

Everything is computed from the run file: outputs, weight snapshots, spikes, the trial table,
and the trial design read from the run's resolved configuration (:class:`WhatWhenDesign`). The
one exception is what only the running task could see, the 'what' units' errors over each
stored window before its offline replay, which the task hands in (``offline_errors``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .claims import whatwhen_claims
from .fits import fit_line
from .features import trial_features
from .geometry import (FUNCTIONAL_NULL_SUBSTREAM, SubspaceAngleNull, VectorAngleNull, analysis_rng, angle_deg,
                       angles_over_learning, feature_pca, functional_correlations, functional_overlap)
from .run_status import recorded_whole
from .trials import aligned, peak_and_half_rise, response_reliability, trial_onsets_ms

SMOOTH_TRIALS = 5

FUNCTIONAL_TRIALS = 20
"""Claim 6's functional overlap samples the attended windows of the first block's last this many
trials (recorded whole) ..."""
FUNCTIONAL_EVERY_MS = 10.0
"""... every this many ms ..."""
FUNCTIONAL_NULL_DRAWS = 1000
"""... against this many permutations of each 'what' unit's weights."""


@dataclass(frozen=True)
class WhatWhenDesign:
    """The trial design of a what/when run, read from its resolved configuration (``[task]``)
    and readout layout, so that a run file is enough to measure it.

    ``settings[b][c]`` is cue ``c``'s ``(latency_ms, {identity: probability})`` in force in
    block ``b`` (a block's changes carry over to the following blocks); ``block_changes[b]``
    names the cues that block ``b`` changes.
    """

    cues: list[str]
    identities: list[str]
    blocks: list[str]
    block_changes: list[list[str]]
    settings: list[list[tuple[float, dict[str, float]]]]
    trial_ms: float
    iti_ms: float
    cue_ms: float
    outcome_ms: float
    test_trials: int
    reset_between_trials: bool
    group: str
    when_column: int
    what_columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seed: int = 0
    gate_delay_ms: float = 0.0

    @classmethod
    def from_run(cls, run) -> "WhatWhenDesign":
        """The design of ``run`` (an :class:`analysis.Run`); raises unless it is a what/when run."""
        task = run.config.get("task", {})
        if task.get("kind") != "whatwhen":
            raise ValueError(f"{run.path}: not a what/when run (task.kind is {task.get('kind')!r})")
        cues = task["cues"]
        names = [cue["name"] for cue in cues]
        current = [(cue["latency_ms"], dict(cue["probabilities"])) for cue in cues]
        settings, changed = [], []
        for block in task["blocks"]:
            changes = block.get("changes", {})
            for name, change in changes.items():
                i = names.index(name)
                latency, probabilities = current[i]
                current[i] = (change.get("latency_ms") or latency,
                              dict(change["probabilities"]) if change.get("probabilities") is not None else probabilities)
            settings.append(list(current))
            changed.append(list(changes))
        start, _ = run.readout_groups[task["group"]]
        what_group = task.get("what_group")
        what = np.arange(*run.readout_groups[what_group]) if what_group else np.zeros(0, dtype=np.int64)
        return cls(cues=names, identities=list(task["identities"]), blocks=[b.get("name", "") for b in task["blocks"]],
                   block_changes=changed, settings=settings, trial_ms=task["trial_ms"], iti_ms=task["iti_ms"],
                   cue_ms=task["cue_ms"], outcome_ms=task["outcome_ms"], test_trials=task["test_trials"],
                   reset_between_trials=task["reset_between_trials"], group=task["group"], when_column=int(start),
                   what_columns=what, seed=int(run.config.get("seed", 0)),
                   gate_delay_ms=float(task.get("gate_delay_ms", 0.0)))


def prediction_window(latency_ms: float) -> tuple[float, float]:
    """Where the 'when' prediction is read: the 20 ms before the outcome is due, plus 5 ms
    (the outcome's own input reaches the readout only through the 20 ms trace filter)."""
    return latency_ms - 20.0, latency_ms + 5.0


def trial_views(design: WhatWhenDesign, run):
    """``(trial table, t, when (trials, samples), [what per identity])``: the readouts' outputs
    aligned to each trial's cue, at the output resolution."""
    c = design
    table = run.tables["trials"]
    onsets = trial_onsets_ms(run)
    t = np.arange(int(round(c.trial_ms / run.output_dt_ms))) * run.output_dt_ms
    when = aligned(run, design.when_column, onsets, c.trial_ms)
    what = [aligned(run, int(col), onsets, c.trial_ms) for col in design.what_columns]
    return table, t, when, what


def when_measures(design: WhatWhenDesign, table, when, t, what=()) -> dict:
    """Claims 1-3 from the 'when' (and 'what') outputs aligned to each trial's cue
    (``(trials, samples)`` at times ``t``): per block and cue, the peak and half-rise of the
    curve averaged over the last ``test_trials`` trials, the prediction amplitude, and the
    omission-trial output in the outcome window (omission trials of the block's second half);
    the fits against P(outcome) and P(identity | cue); the timing summary."""
    c = design
    settings = c.settings
    per_condition, amplitudes, probabilities, identity_pairs = [], [], [], []
    for b in range(len(c.blocks)):
        for ci, cue_name in enumerate(c.cues):
            rows = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))[-c.test_trials:]
            if rows.size == 0:
                continue
            latency, probs = settings[b][ci]
            curve = when[rows].mean(axis=0)
            peak_t, peak_v, rise = peak_and_half_rise(curve, t)
            lo, hi = prediction_window(latency)
            window = (t >= lo) & (t < hi)
            amplitude = float(curve[window].mean())
            p_outcome = float(sum(probs.values()))
            # the prediction alone: omission trials of the block's second half, outcome window
            half = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))
            half = half[len(half) // 2:]
            omitted = half[table["identity"][half] < 0]
            due = (t >= latency) & (t < latency + c.outcome_ms)
            omission_amplitude = float(when[omitted][:, due].mean()) if omitted.size else None
            entry = {"block": b, "cue": cue_name, "latency_ms": latency, "p_outcome": p_outcome,
                     "omission_amplitude": omission_amplitude, "n_omissions": int(omitted.size),
                     "peak_time_ms": peak_t, "peak_error_ms": peak_t - latency, "half_rise_ms": rise,
                     "lead_ms": latency - rise, "prediction_amplitude": amplitude, "n_trials": int(rows.size)}
            anticipation = (t >= c.cue_ms) & (t < latency)  # the whole pre-stimulus period after the cue
            for k, name in enumerate(c.identities):
                if k < len(what):
                    value = float(what[k][rows][:, anticipation].mean())
                    entry[f"what_{name}"] = value
                    identity_pairs.append((probs.get(name, 0.0), value))
            per_condition.append(entry)
            amplitudes.append(amplitude)
            probabilities.append(p_outcome)
    metrics = {"conditions": per_condition}
    scaling = fit_line(probabilities, amplitudes)
    metrics["probability_scaling"] = scaling
    omission = [(e["p_outcome"], e["omission_amplitude"]) for e in per_condition if e["omission_amplitude"] is not None]
    metrics["probability_scaling_omission"] = fit_line(*zip(*omission)) if len(omission) > 1 else {}
    full = [a for a, p in zip(amplitudes, probabilities) if p == max(probabilities)]
    if full and np.mean(full) > 0:
        metrics["probability_scaling"]["amplitude_ratio_to_highest_p"] = [
            {"p": p, "ratio": a / float(np.mean(full))} for a, p in zip(amplitudes, probabilities)]
    if identity_pairs:
        metrics["identity"] = fit_line(*zip(*identity_pairs))
    metrics["timing"] = {
        "mean_abs_peak_error_ms": float(np.mean([abs(e["peak_error_ms"]) for e in per_condition])),
        "mean_lead_ms": float(np.mean([e["lead_ms"] for e in per_condition])),
    }
    return metrics


def whatwhen_metrics(run, design: WhatWhenDesign | None = None, offline_errors=None) -> dict:
    """Every measure of the six claims for a what/when run (``design`` defaults to the run's own;
    ``offline_errors``: the running task's log, see the module docstring)."""
    c = design if design is not None else WhatWhenDesign.from_run(run)
    table, t, when, what = trial_views(c, run)
    metrics = when_measures(c, table, when, t, what)
    metrics["reliability"] = reliability(c, run, table)
    metrics["adaptation"] = adaptation(c, table, when, t)
    metrics["phase_modulation"] = phase_modulation(c, table, when, t, offline_errors)
    metrics["geometry"] = geometry(c, run)
    return metrics


def with_claims(metrics: dict, run) -> dict:
    """``metrics`` with their ``claims`` section (:func:`analysis.claims.whatwhen_claims`) last."""
    return {**metrics, "claims": whatwhen_claims(metrics, run.config)}


def reliability(design: WhatWhenDesign, run, table, n_trials: int = 20, every_ms: float = 5.0) -> dict:
    """Trial-to-trial reliability of the reservoir after each cue (the last ``n_trials`` trials of
    each cue; :func:`analysis.trials.response_reliability` with 20 ms traces): ``time_ms`` and one
    curve per cue. Timing can only be learned as far as this reaches."""
    c = design
    result = {"time_ms": (np.arange(int(round(c.trial_ms / every_ms))) * every_ms).tolist()}
    for ci, cue_name in enumerate(c.cues):
        rows = np.flatnonzero(table["cue"] == ci)[-n_trials:]
        if rows.size < 2:
            continue
        _, curve = response_reliability(run, table["onset_step"][rows] * run.dt_ms, c.trial_ms, every_ms=every_ms,
                                        tau_ms=20.0, lead_in_ms=100.0)
        result[cue_name] = curve.tolist()
    return result


def adaptation(design: WhatWhenDesign, table, when, t) -> list[dict]:
    """Trials after each switch until the changed cue's readout reaches its new state.

    Timing: the peak of the 5-trial moving average within 50 ms of the new latency. Amplitude:
    the moving average's prediction amplitude within 10 % of its asymptote (the mean of the
    block's last ``test_trials`` trials of that cue). Probability: the moving average of the
    output in the outcome window (claim 2's measure, on every trial: without outcome input the
    features do not depend on the trial's outcome) within 20 % of the new P(outcome).
    ``None``: never within the block.
    """
    c = design
    settings = c.settings
    results = []
    for b in range(1, len(c.blocks)):
        for name in c.block_changes[b]:
            ci = c.cues.index(name)
            rows = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))
            if rows.size < SMOOTH_TRIALS + 1:
                continue
            latency, probs = settings[b][ci]
            old_latency, old_probs = settings[b - 1][ci]
            lo, hi = prediction_window(latency)
            window = (t >= lo) & (t < hi)
            amplitude = when[rows][:, window].mean(axis=1)
            smooth_amp = np.convolve(amplitude, np.ones(SMOOTH_TRIALS) / SMOOTH_TRIALS, mode="valid")
            asymptote = float(amplitude[-c.test_trials:].mean())
            peaks = np.array([t[np.argmax(when[rows[i:i + SMOOTH_TRIALS]].mean(axis=0))]
                              for i in range(rows.size - SMOOTH_TRIALS + 1)])
            due = (t >= latency) & (t < latency + c.outcome_ms)
            outcome_window = np.convolve(when[rows][:, due].mean(axis=1), np.ones(SMOOTH_TRIALS) / SMOOTH_TRIALS,
                                         mode="valid")
            p_outcome = float(sum(probs.values()))
            probability_ok = np.flatnonzero(np.abs(outcome_window - p_outcome) <= 0.2 * p_outcome)
            timing_ok = np.flatnonzero(np.abs(peaks - latency) <= 50.0)
            tolerance = 0.1 * max(abs(asymptote), 1e-12)
            amp_ok = np.flatnonzero(np.abs(smooth_amp - asymptote) <= tolerance)
            results.append({
                "block": b, "cue": name, "latency_ms": latency, "previous_latency_ms": old_latency,
                "p_outcome": p_outcome, "previous_p_outcome": float(sum(old_probs.values())), "asymptote": asymptote,
                "trials_to_probability": int(probability_ok[0] + SMOOTH_TRIALS) if probability_ok.size else None,
                "outcome_window_by_trial": outcome_window.tolist(),
                "trials_to_timing": int(timing_ok[0] + SMOOTH_TRIALS) if timing_ok.size else None,
                "trials_to_amplitude": int(amp_ok[0] + SMOOTH_TRIALS) if amp_ok.size else None,
                "peak_time_by_trial_ms": peaks.tolist(), "amplitude_by_trial": smooth_amp.tolist(),
            })
    return results


def phase_modulation(design: WhatWhenDesign, table, when, t, offline_errors=None) -> dict:
    """Mean gate x |error| of the 'when' unit in the anticipation and outcome phases, and the
    mean |error| of the 'what' units over each stored window before its offline replay
    (``offline_errors``, logged by the running task)."""
    c = design
    anticipation, outcome = [], []
    for row in range(len(table["trial"])):
        latency = table["latency_ms"][row]
        target = np.zeros_like(t)
        if table["identity"][row] >= 0:
            target[(t >= latency) & (t < latency + c.outcome_ms)] = 1.0
        error = np.abs(target - when[row])
        anticipation.append(error[t < latency].mean())
        outcome.append(error[(t >= latency) & (t < latency + c.outcome_ms)].mean())
    offline = list(offline_errors or [])
    return {"when_anticipation": float(np.mean(anticipation)), "when_outcome": float(np.mean(outcome)),
            "what_offline": float(np.mean(offline)) if offline else None}


def attended_samples(design: WhatWhenDesign, run, n_trials: int = FUNCTIONAL_TRIALS,
                     every_ms: float = FUNCTIONAL_EVERY_MS) -> np.ndarray | None:
    """``(trials, samples, F)`` float32: the readout features (the run's trace filters, rebuilt from the
    spikes, :func:`analysis.features.trial_features`) in the attended windows (``trial_ms`` from
    the cue) of the first block's last ``n_trials`` trials that the run recorded whole, every
    ``every_ms``; ``None`` with fewer than 2 such trials. With the trial-start reset the windows
    start from zero traces, as the readouts' do; without it, from zero 300 ms earlier."""
    table = run.tables.get("trials")
    if table is None or len(table.get("block", ())) == 0:
        return None
    rows = np.flatnonzero(table["block"] == 0)
    rows = rows[recorded_whole(run, table["onset_step"][rows] * run.dt_ms, design.trial_ms)][-int(n_trials):]
    if rows.size < 2:
        return None
    lead_in = 0.0 if design.reset_between_trials else 300.0
    return trial_features(run, table["onset_step"][rows] * run.dt_ms, design.trial_ms, every_ms, lead_in)


def functional_geometry(design: WhatWhenDesign, run, when: np.ndarray, what: np.ndarray,
                        n_trials: int = FUNCTIONAL_TRIALS, every_ms: float = FUNCTIONAL_EVERY_MS,
                        n_null: int = FUNCTIONAL_NULL_DRAWS) -> dict:
    """The functional overlap of w_when with each w_what (:func:`analysis.geometry.functional_overlap`):
    the correlation of their projections of the attended-window features (:func:`attended_samples`,
    centred over those samples), i.e. the cosine of their angle in the metric of the activity
    covariance, at every snapshot (``when`` ``(snapshots, F)``, ``what`` ``(snapshots, k, F)``)
    against the same samples; for the final weights also its angle and its null (``n_null``
    permutations of each w_what's entries, from item :data:`~analysis.geometry.FUNCTIONAL_NULL_SUBSTREAM`
    of the run's ``offline_analysis`` stream). Empty where the samples are missing (fewer than 2
    trials in the first block) or do not match the weights."""
    X = attended_samples(design, run, n_trials, every_ms)
    if X is None or X.shape[2] != when.shape[-1]:
        return {}
    n_trials = X.shape[0]
    Xc = X.reshape(-1, X.shape[2]).astype(np.float64)
    del X
    Xc -= Xc.mean(axis=0)
    by_snapshot = functional_correlations(when[:, None, :], what, Xc, centre=False)
    rng = analysis_rng(run, FUNCTIONAL_NULL_SUBSTREAM)
    final = [functional_overlap(when[-1], what[-1, k], Xc, rng, n_null, centre=False) for k in range(what.shape[1])]
    return {"functional_correlation_by_snapshot": by_snapshot.tolist(),
            "functional_correlation": [o.correlation for o in final],
            "functional_angle_deg": [o.angle_deg for o in final],
            "functional_null_abs_correlation": [o.null_summary() for o in final],
            "functional_null_fraction_as_orthogonal": [o.fraction_as_orthogonal for o in final],
            "functional_samples": {"block": 0, "n_trials": int(n_trials), "every_ms": float(every_ms),
                                   "n_samples": int(Xc.shape[0]), "n_null": int(n_null)}}


def geometry(design: WhatWhenDesign, run, n_components: int = 10) -> dict:
    """Angles between w_when and each w_what over learning, raw (in the space of all readout
    features) and in the top-``n_components`` PC subspace of the features, and the smallest
    principal angle between w_when and the subspace spanned by the w_what; each with its exact
    null (uniformly random directions of the same dimensions, :mod:`analysis.geometry`), whose
    angles concentrate near 90 degrees in raw space but not in a few dimensions. Then the
    functional overlap of w_when and each w_what (:func:`functional_geometry`: the correlation of
    their outputs over the activity, the angle in the covariance metric, with a permutation null),
    under the keys ``functional_*``."""
    if len(design.what_columns) == 0 or run.snapshot_time_ms.size == 0:
        return {}
    snapshots = run.weight_snapshots()
    when = snapshots[:, design.when_column]
    what = snapshots[:, design.what_columns]
    raw = [[angle_deg(when[s], what[s, k]) for k in range(what.shape[1])] for s in range(len(snapshots))]
    dim = snapshots.shape[2]
    raw_null = VectorAngleNull(dim)
    result = {"snapshot_time_ms": run.snapshot_time_ms.tolist(), "raw_angles_deg": raw,
              "raw_null_deg": raw_null.summary(), "final_raw_angles_deg": raw[-1],
              "final_raw_null_fraction_as_orthogonal": [float(raw_null.fraction_as_orthogonal(a)) for a in raw[-1]]}
    if what.shape[1] > 1:
        subspace = angles_over_learning(when[:, None], what).tolist()
        subspace_null = SubspaceAngleNull(dim, 1, what.shape[1])
        result.update({"when_vs_what_subspace_deg": subspace, "when_vs_what_subspace_null_deg": subspace_null.summary(),
                       "final_when_vs_what_subspace_null_fraction_as_orthogonal":
                           float(subspace_null.fraction_as_orthogonal(subspace[-1]))})
    pcs = feature_pca(run, n_components)
    if pcs is not None:
        basis = pcs.basis
        pc = [[angle_deg(basis @ when[s], basis @ what[s, k]) for k in range(what.shape[1])] for s in range(len(snapshots))]
        pc_null = VectorAngleNull(len(basis))
        result.update({"pc_angles_deg": pc, "pc_null_deg": pc_null.summary(), "n_components": len(basis),
                       "pc_explained_variance_ratio": pcs.explained_variance_ratio.tolist(),
                       "final_pc_angles_deg": pc[-1],
                       "final_pc_null_fraction_as_orthogonal": [float(pc_null.fraction_as_orthogonal(a)) for a in pc[-1]]})
    result.update(functional_geometry(design, run, when, what))
    return result
