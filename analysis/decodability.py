"""Time-decodability of the reservoir: what the best linear "when" readout could learn.

The what/when claims need a reservoir that carries time; this measures how far it does before the rules are tuned.
This module answers it with an *ideal* readout: ridge regression (closed form, fitted on
training trials) from the run's own readout features (the exponentially filtered spike trains
of the ``[readouts] traces`` bank, rebuilt from the recorded spikes) to the "when" target
(1 while an outcome of any identity is present). A readout trained to least squares on
stochastic outcomes converges to the conditional expectation of the target given the features
(Sussillo & Abbott 2009 for RLS; Widrow & Hoff's LMS for a small constant learning rate), so
on held-out **omission** trials this readout shows the prediction that any linear readout of
these features can reach: a bump of height P(outcome) at the latency if the reservoir carries
time and cue, less if it does not. It is the ceiling for claims 1 and 2; an online rule can
only approach it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .features import trial_features
from .fits import fit_line
from .io import load_run
from .run_status import read_run_status, recorded_whole, run_errors_exit
from .plots import plt, save, use_file_backend
from .trials import peak_and_half_rise
from .whatwhen import WhatWhenDesign, prediction_window

RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)

MIN_TRIALS = 3
"""The fewest first-block trials the ideal readout is fitted on: two to choose the ridge
strength (even and odd), one held out."""


def format_number(value, spec: str, missing: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a (missing)`` where it is None or not finite
    (a fit of too few points, a measure with nothing to measure)."""
    if value is None or not np.isfinite(value):
        return f"n/a ({missing})"
    return format(value, spec)


def first_block_trials(design: WhatWhenDesign, run) -> np.ndarray:
    """Rows of the trial table of the first block whose attended window (``trial_ms`` from the
    cue) the run recorded whole: all of them, unless the run stopped early."""
    table = run.tables["trials"]
    rows = np.flatnonzero(table["block"] == 0)
    return rows[recorded_whole(run, table["onset_step"][rows] * run.dt_ms, design.trial_ms)]


def _moments(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X^T X, X^T y)`` in float64 (the product runs in float32, which is 7x faster here and
    far more precise than the ridge terms need)."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    return (X32.T @ X32).astype(np.float64), X32.T.astype(np.float64) @ y


def _ridge(gram: np.ndarray, xy: np.ndarray, alphas) -> list[np.ndarray]:
    """Ridge weights for each ``alpha`` (scaled by the mean feature power), no intercept,
    like the readouts."""
    scale = np.trace(gram) / gram.shape[0]
    eye = np.eye(gram.shape[0])
    return [np.linalg.solve(gram + alpha * scale * eye, xy) for alpha in alphas]


def when_decodability(design: WhatWhenDesign, run, every_ms: float = 5.0, test_fraction: float = 0.3,
                      alphas=RIDGE_GRID) -> dict:
    """The ideal least-squares "when" readout of this run's features (see the module docstring).

    The trials of the first block (those recorded whole, :func:`first_block_trials`, when the
    run stopped early) are split in time: the last ``test_fraction`` is the test set; the rest
    is split into even/odd trials to choose the ridge ``alpha``, then refitted whole. Per cue, on
    the test trials: the mean prediction on omission trials in the outcome window (claim 2's
    measure), the trial-averaged curve's peak time and half-rise (claim 1's), the pre-outcome
    amplitude over all trials; over cues: the omission scaling fit against P(outcome).
    ``test_r2`` is None when the test trials' target does not vary (no outcome among them).
    Raises ``ValueError`` with fewer than :data:`MIN_TRIALS` such trials."""
    c = design
    table = run.tables["trials"]
    rows = first_block_trials(design, run)
    if rows.size < MIN_TRIALS:
        raise ValueError(f"the ideal readout needs at least {MIN_TRIALS} trials of the first block recorded whole, "
                         f"{run.path} has {rows.size}")
    lead_in = 0.0 if c.reset_between_trials else 300.0
    X = trial_features(run, table["onset_step"][rows] * run.dt_ms, c.trial_ms, every_ms, lead_in)
    t = np.arange(X.shape[1]) * every_ms
    latency = table["latency_ms"][rows]
    present = table["identity"][rows] >= 0
    Y = ((t[None, :] >= latency[:, None]) & (t[None, :] < latency[:, None] + c.outcome_ms)
         & present[:, None]).astype(float)
    n_test = max(1, int(round(test_fraction * rows.size)))
    train, test = np.arange(rows.size - n_test), np.arange(rows.size - n_test, rows.size)
    flat = lambda idx: (X[idx].reshape(-1, X.shape[2]), Y[idx].ravel())  # noqa: E731
    even, odd = _moments(*flat(train[0::2])), _moments(*flat(train[1::2]))
    val_x, val_y = flat(train[1::2])
    errors = [float(np.mean((val_x @ w - val_y) ** 2)) for w in _ridge(*even, alphas)]
    alpha = alphas[int(np.argmin(errors))]
    w = _ridge(even[0] + odd[0], even[1] + odd[1], [alpha])[0]
    Z = X[test].astype(float) @ w
    residual = np.mean((Z - Y[test]) ** 2)
    variance = np.var(Y[test])
    result = {"alpha": alpha, "every_ms": every_ms, "n_train": int(train.size), "n_test": int(test.size),
              "n_trials_planned": int(np.sum(table["block"] == 0)),
              "test_r2": float(1 - residual / variance) if variance > 0 else None, "time_ms": t.tolist(), "cues": []}
    cues = table["cue"][rows][test]
    omitted = ~present[test]
    for ci, cue_name in enumerate(c.cues):
        mine = cues == ci
        if not mine.any():
            continue
        L = float(latency[test][mine][0])
        p = float(sum(c.settings[0][ci][1].values()))
        curve = Z[mine].mean(axis=0)
        peak_t, peak_v, rise = peak_and_half_rise(curve, t)
        lo, hi = prediction_window(L)
        due = (t >= L) & (t < L + c.outcome_ms)
        entry = {"cue": cue_name, "latency_ms": L, "p_outcome": p, "peak_time_ms": peak_t,
                 "peak_error_ms": peak_t - L, "half_rise_ms": rise, "lead_ms": L - rise,
                 "prediction_amplitude": float(curve[(t >= lo) & (t < hi)].mean()),
                 "n_omissions": int((mine & omitted).sum()), "omission_amplitude": None,
                 "curve": curve.tolist()}
        if (mine & omitted).any():
            omission_curve = Z[mine & omitted].mean(axis=0)
            entry["omission_amplitude"] = float(omission_curve[due].mean())
            entry["omission_curve"] = omission_curve.tolist()
        result["cues"].append(entry)
    pairs = [(e["p_outcome"], e["omission_amplitude"]) for e in result["cues"] if e["omission_amplitude"] is not None]
    result["omission_scaling"] = fit_line(*zip(*pairs)) if len(pairs) > 1 else {}
    return result


def decodability_figure(design: WhatWhenDesign, result: dict, path: Path) -> Path:
    """The ideal readout's trial-averaged output per cue on held-out omission trials (and all
    trials), against ``P(outcome) x`` the target's time course."""
    c = design
    t = np.array(result["time_ms"])
    fig, axes = plt.subplots(1, len(result["cues"]), figsize=(4 * len(result["cues"]), 3), squeeze=False,
                             sharey=True)
    for ax, e in zip(axes[0], result["cues"]):
        expected = e["p_outcome"] * ((t >= e["latency_ms"]) & (t < e["latency_ms"] + c.outcome_ms))
        ax.plot(t, expected, color="0.6", ls="--", label="P(outcome) x target")
        ax.plot(t, e["curve"], color="k", lw=1, label="all test trials")
        if "omission_curve" in e:
            ax.plot(t, e["omission_curve"], color="tab:red", label=f"omission trials ({e['n_omissions']})")
        ax.set_title(f"{e['cue']}: L={e['latency_ms']:g} ms, P(outcome)={e['p_outcome']:.2g}", fontsize=8)
        ax.set_xlabel("time since cue (ms)")
    axes[0, 0].set_ylabel("ideal 'when' readout")
    axes[0, 0].legend(fontsize=7)
    r2 = format_number(result["test_r2"], ".2f", "no outcome in the held-out trials")
    fig.suptitle(f"time-decodability: ridge readout on {result['n_train']} trials, held-out R2 {r2}", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def main(argv=None) -> int:
    """``python -m analysis.decodability RUN_DIR [RUN_DIR ...]``: write ``decodability.json`` and
    ``figures/decodability.png`` into each what/when run folder and print the summary.

    A run that stopped early (status ``failed``, ``interrupted`` or ``running``) is analysed on
    the first-block trials it recorded whole, and the output says so (the JSON records the run's
    status under ``run``); with fewer than :data:`MIN_TRIALS` of them it is refused (status 2), as
    is a folder without ``run.h5``; a damaged run file exits with status 1."""
    use_file_backend()
    parser = argparse.ArgumentParser(prog="python -m analysis.decodability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="what/when run folders")
    parser.add_argument("--every-ms", type=float, default=5.0, help="sampling interval of the features (ms)")
    args = parser.parse_args(argv)
    if not args.every_ms > 0:
        parser.error(f"argument --every-ms: expected a positive interval, got {args.every_ms}")
    with run_errors_exit(parser):
        for folder in args.runs:
            _analyse(parser, folder, args.every_ms)
    return 0


def _analyse(parser: argparse.ArgumentParser, folder: Path, every_ms: float) -> None:
    status = read_run_status(folder)
    run = load_run(folder)
    try:
        design = WhatWhenDesign.from_run(run)
    except ValueError as error:
        parser.error(str(error))
    rows = first_block_trials(design, run)
    planned = int(np.sum(run.tables["trials"]["block"] == 0))
    if rows.size < MIN_TRIALS:
        needs = (f"the ideal readout needs at least {MIN_TRIALS} trials of the first block, {rows.size} of its "
                 f"{planned} are recorded whole")
        if not status.complete:
            raise status.incomplete(needs)
        parser.error(f"{folder}: {needs}")
    if not status.complete:
        print(status.partial(f"analysing the {rows.size} of the first block's {planned} trials recorded whole"))
    result = when_decodability(design, run, every_ms=every_ms)
    result["run"] = {"status": status.status, "message": status.message, "completed_ms": status.completed_ms,
                     "planned_ms": status.planned_ms}
    (folder / "decodability.json").write_text(json.dumps(result, indent=1) + "\n")
    decodability_figure(design, result, folder / "figures" / "decodability.png")
    r2 = format_number(result["test_r2"], ".3f", "no outcome in the held-out trials")
    print(f"{folder}: ridge alpha {result['alpha']:g}, held-out R2 {r2} ({result['n_train']} training and "
          f"{result['n_test']} held-out trials)")
    for e in result["cues"]:
        omission = (format_number(e["omission_amplitude"], ".3f", "not finite") + f" ({e['n_omissions']} trials)"
                    if e["omission_amplitude"] is not None else "n/a (no held-out omission trial)")
        print(f"  {e['cue']}: L {e['latency_ms']:g} ms, P(outcome) {e['p_outcome']:.2f}: omission-trial output "
              f"{omission}, peak {e['peak_error_ms']:+g} ms, "
              f"half-rise {-e['lead_ms']:+g} ms from L")
    s = result["omission_scaling"]
    if not s:
        print("  omission output vs P(outcome): n/a (fewer than two cues with held-out omission trials)")
    else:
        print(f"  omission output vs P(outcome): slope {format_number(s['slope'], '.3f', 'one P(outcome) only')}, "
              f"intercept {format_number(s['intercept'], '.3f', 'one P(outcome) only')}, "
              f"r {format_number(s['r'], '.3f', 'no spread in the outputs or in P(outcome)')}")


if __name__ == "__main__":
    sys.exit(main())
