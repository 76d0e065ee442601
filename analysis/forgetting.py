"""Where a permuted-digits run's forgetting comes from: the class means, or trial-to-trial noise.

    python -m analysis.forgetting RUN_DIR

For every task ``t`` but the last, with ``W_t, b_t`` the readout kept at the end of task ``t``
and ``W, b`` the final one (``continual.h5``), and ``x`` task ``t``'s test features (rebuilt from
the spikes), the change ``(W - W_t) x + (b - b_t)`` that later tasks make to task ``t``'s outputs
splits into its value at the class mean of ``x`` and the rest, which varies from trial to trial
within a class. The command prints ``R[t, t]``, the final accuracy ``R[T-1, t]``, the accuracy if
the change had reached only the class means (``W_t x + b_t + (W - W_t) mu_class + (b - b_t)``),
and the norms of the change and of ``W_t``. The BWT of the last column is the forgetting that a
subspace holding every class mean exactly would still leave, if the later weights were the same;
the difference to the run's BWT is the trial-to-trial part: later weights that are large along
directions where the old task's activity is only noise (``docs/results-continual.md``).
"""
from __future__ import annotations

import argparse

import h5py
import numpy as np

from .continual import CONTINUAL_FILE
from .features import window_means
from .io import load_run
from .run_status import read_run_status, run_errors_exit


def forgetting_parts(W_start, b_start, W_end, b_end, features, labels, n_classes: int = 10) -> dict[str, float]:
    """Accuracies of one task's test presentations: with its own readout, the final one, and its
    own readout plus the final change at the class means only; norms of the change and of its own
    weights."""
    features = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    present = [c for c in range(n_classes) if np.any(labels == c)]
    means = np.zeros((n_classes, features.shape[1]))
    for c in present:
        means[c] = features[labels == c].mean(axis=0)
    own = features @ W_start.T + b_start
    change = W_end - W_start

    def accuracy(scores):
        return float(np.mean(np.argmax(scores, axis=1) == labels))

    return {"own": accuracy(own), "final": accuracy(features @ W_end.T + b_end),
            "class_means_only": accuracy(own + means[labels] @ change.T + (b_end - b_start)),
            "change_norm": float(np.linalg.norm(change)), "own_norm": float(np.linalg.norm(W_start))}


def forgetting_table(run_dir) -> list[dict[str, float]]:
    """:func:`forgetting_parts` of every task but the last of a finished sequential run."""
    run = load_run(run_dir, lazy_spikes=True)
    task = run.config.get("task", {})
    if task.get("kind") != "permuted_digits" or task.get("schedule", "sequential") != "sequential":
        raise ValueError(f"{run_dir}: not a sequential permuted-digits run")
    table = run.tables["presentations"]
    test = np.asarray(table["test"], dtype=bool)
    starts = (table["onset_ms"] + task["presentation_ms"] - task["readout_ms"])[test]
    features = window_means(run, starts, task["readout_ms"])
    tasks, labels = table["task"][test], table["label"][test]
    with h5py.File(f"{run_dir}/{CONTINUAL_FILE}") as f:
        weights, bias = f["snapshot_weights"][()], f["snapshot_bias"][()]
        presentations = f["snapshot_presentations"][()]
    n_tasks = int(task["n_tasks"])
    n_train = int((~test).sum())
    ends = np.searchsorted(presentations, np.arange(1, n_tasks + 1) * n_train // n_tasks)
    rows = []
    for t in range(n_tasks - 1):
        mine = tasks == t
        rows.append({"task": t, **forgetting_parts(weights[ends[t]], bias[ends[t]], weights[ends[-1]], bias[ends[-1]],
                                                   features[mine], labels[mine])})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.forgetting", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished sequential permuted-digits run folder")
    args = parser.parse_args(argv)
    with run_errors_exit(parser):
        status = read_run_status(args.run)
        if not status.complete:
            raise status.incomplete("the readouts kept at each task's end are written when a run completes")
        try:
            rows = forgetting_table(status.file.parent)
        except (ValueError, FileNotFoundError) as error:
            parser.exit(2, f"error: {error}\n")
    print("task  R[t,t]  R[T-1,t]  change at class means only  |W - W_t|  |W_t|")
    for r in rows:
        print(f"{r['task']:4d}  {100 * r['own']:6.1f}  {100 * r['final']:8.1f}  {100 * r['class_means_only']:26.1f}  "
              f"{r['change_norm']:9.1f}  {r['own_norm']:5.1f}")
    own = np.array([r["own"] for r in rows])
    bwt = 100 * np.mean([r["final"] for r in rows] - own)
    means_only = 100 * np.mean([r["class_means_only"] for r in rows] - own)
    print(f"BWT {bwt:+.1f} points; through the class means alone {means_only:+.1f}; trial-to-trial "
          f"{bwt - means_only:+.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
