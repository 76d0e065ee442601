"""Claim 2's measure block by block: the omission-trial "when" output in the outcome window
``[L, L + outcome_ms)`` against P(outcome), per block of trials, pooled over runs.

It says whether a miss of claim 2 is still converging (the slope rising from block to block)
or has levelled off. Trials of the first block of each run only (the cues' P as the design sets
them there); each run's recorded "when" outputs, no rebuilding of features.

``python -m analysis.omission_blocks RUN [RUN ...] --block 100``
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .fits import fit_line
from .io import load_run
from .whatwhen import WhatWhenDesign


def omission_blocks(folders, block: int = 100) -> list[dict]:
    """Per block of ``block`` trials: each cue's mean omission output, its count, and the line
    fit against P(outcome) over the cues with omission trials (pooled over ``folders``)."""
    outputs, p_outcome = {}, {}
    for folder in folders:
        run = load_run(folder, lazy_spikes=True)
        design = WhatWhenDesign.from_run(run)
        table = run.tables["trials"]
        time_ms, when = run.output_time_ms, run.outputs[:, design.when_column]
        for ci in range(len(design.cues)):
            p_outcome[ci] = float(sum(design.settings[0][ci][1].values()))
        for row in np.flatnonzero((table["identity"] < 0) & (table["block"] == 0)):
            due = table["onset_step"][row] * run.dt_ms + table["latency_ms"][row]
            inside = (time_ms >= due) & (time_ms < due + design.outcome_ms)
            outputs.setdefault((int(row) // block, int(table["cue"][row])), []).append(float(when[inside].mean()))
    result = []
    for b in sorted({key[0] for key in outputs}):
        cues = [ci for ci in sorted(p_outcome) if (b, ci) in outputs]
        means = [float(np.mean(outputs[(b, ci)])) for ci in cues]
        result.append({"first_trial": b * block, "last_trial": b * block + block - 1,
                       "p_outcome": [p_outcome[ci] for ci in cues], "omission_output": means,
                       "n_omissions": [len(outputs[(b, ci)]) for ci in cues],
                       "fit": fit_line([p_outcome[ci] for ci in cues], means) if len(cues) > 1 else {}})
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.omission_blocks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="what/when run folders (pooled)")
    parser.add_argument("--block", type=int, default=100, help="trials per block (default 100)")
    args = parser.parse_args(argv)
    if args.block < 1:
        parser.error(f"--block: expected a positive number of trials, got {args.block}")
    for entry in omission_blocks(args.runs, args.block):
        cells = ", ".join(f"P {p:.2f}: {m:.2f} (n {n})" for p, m, n in
                          zip(entry["p_outcome"], entry["omission_output"], entry["n_omissions"]))
        fit = entry["fit"]
        line = f"; slope {fit['slope']:.2f}, intercept {fit['intercept']:+.2f}, r {fit['r']:.3f}" if fit else ""
        print(f"trials {entry['first_trial']}-{entry['last_trial']}: {cells}{line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
