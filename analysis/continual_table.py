"""The continual-learning comparison over run folders: ACC and BWT per method, over seeds.

    python -m analysis.continual_table RUN_DIR [RUN_DIR ...] [--figure PATH] [--heatmaps PATH]

Each folder is a finished permuted-digits run (``run.h5`` and ``metrics.json``, where its
accuracy matrix is); its method is read from its configuration (the schedule, the protection
method and the lateral neurons' kind). Prints a Markdown table (mean +- standard deviation over
the runs of a method, and the per-run values) and, with ``--figure``, writes the ACC/BWT bars of
the mean accuracy matrices; with ``--heatmaps``, each method's mean accuracy matrix as a heatmap.

A run that did not complete (status ``failed``, ``interrupted`` or ``running``: the accuracy
matrix is measured when a run completes) or has no ``metrics.json`` is refused, naming the
folder and its status (exit status 2), as is a folder without ``run.h5``; a damaged run file
exits with status 1.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .continual import (
    accuracy_matrix_figure,
    average_accuracy,
    backward_transfer,
    continual_summary_figure,
)
from .io import load_metrics
from .run_status import IncompleteRunError, read_run_status, run_errors_exit


def method_of(config: dict) -> str:
    """``joint``, ``unprotected``, ``svd`` or ``hlop (<kind>)`` from a resolved configuration, with
    ``, projected every step`` where the protection projected the eligibility at every gated step
    (``readouts.protection.projection``; runs from before the key have that form) instead of each
    window's update."""
    task = config.get("task", {})
    if task.get("schedule") == "joint":
        return "joint"
    protection = config.get("readouts", {}).get("protection", {})
    method = protection.get("method", "none")
    if method == "none":
        return "unprotected"
    every_step = protection.get("projection", "every_step") == "every_step"
    if method == "hlop":
        lateral = protection.get("lateral", {})
        kind = lateral.get("kind", "rate")
        if kind != "rate":
            start = ", from half threshold" if lateral.get("initial_membrane") == "half_threshold" else ""
            passes = lateral.get("projection_passes", 1)
            rounds = f", {passes} rounds" if passes > 1 else ""
            kind = f"{kind}, {lateral.get('spiking_steps', 40)} steps{start}{rounds}"
        return f"hlop ({kind}{', projected every step' if every_step else ''})"
    return f"{method} (projected every step)" if every_step else method


def collect(folders) -> dict[str, list[dict]]:
    """Method -> one entry per run: seed, number of tasks, R, ACC, BWT, wall time.

    Raises ``ValueError`` for a run of another task, :class:`~analysis.run_status.IncompleteRunError`
    for one that did not complete or has no ``metrics.json`` (and what
    :func:`~analysis.run_status.read_run_status` raises for a folder without a readable run file)."""
    out: dict[str, list[dict]] = {}
    for folder in folders:
        folder = Path(folder)
        status = read_run_status(folder)
        folder = status.file.parent  # a run.h5 given for its folder
        config = status.config
        if config.get("task", {}).get("kind") != "permuted_digits":
            kind = config.get("task", {}).get("kind")
            raise ValueError(f"{folder}: not a permuted-digits run (task.kind is {kind!r})")
        if not status.complete:
            raise status.incomplete("ACC and BWT need the accuracy matrix that a run measures when it completes")
        if not (folder / "metrics.json").is_file():
            raise IncompleteRunError(
                f"{folder} is not a complete run folder: metrics.json is missing ({status.file.name} records status "
                "'complete': the run stopped while computing its metrics; "
                f"reservoir run --resume {folder} computes them)")
        try:
            metrics = load_metrics(folder)
        except ValueError as error:  # JSONDecodeError
            raise ValueError(f"{folder / 'metrics.json'} is not valid JSON: {error}") from None
        if "accuracy_matrix" not in metrics:
            raise ValueError(f"{folder / 'metrics.json'} holds no accuracy_matrix")
        R = np.array(metrics["accuracy_matrix"])
        out.setdefault(method_of(config), []).append({
            "folder": str(folder), "seed": config.get("seed"), "n_tasks": R.shape[0], "R": R,
            "acc": average_accuracy(R), "bwt": backward_transfer(R) if method_of(config) != "joint" else float("nan"),
            "wall_time_s": metrics.get("wall_time_s", float("nan"))})
    return out


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=float) * 100
    if np.all(np.isnan(values)):
        return "-"
    return f"{np.nanmean(values):.1f} +- {np.nanstd(values):.1f}" if values.size > 1 else f"{values[0]:.1f}"


def markdown_table(results: dict[str, list[dict]]) -> str:
    """ACC and BWT in percent (points), mean +- sd over the runs of each method, and per run."""
    lines = ["| method | runs (seeds) | tasks | ACC (%) | BWT (points) | ACC per run | BWT per run | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for method, runs in results.items():
        seeds = ", ".join(str(r["seed"]) for r in runs)
        acc = " / ".join(f"{100 * r['acc']:.1f}" for r in runs)
        bwt = " / ".join("-" if np.isnan(r["bwt"]) else f"{100 * r['bwt']:+.1f}" for r in runs)
        wall = np.median([r["wall_time_s"] for r in runs])
        lines.append(f"| {method} | {len(runs)} ({seeds}) | {runs[0]['n_tasks']} | {_mean_sd([r['acc'] for r in runs])} "
                     f"| {_mean_sd([r['bwt'] for r in runs])} | {acc} | {bwt} | {wall:.0f} |")
    return "\n".join(lines)


def accuracy_matrices_figure(means: dict[str, np.ndarray], runs_per_method: dict[str, int] | None = None):
    """Each method's (mean) accuracy matrix as a heatmap, in one row of panels."""
    import matplotlib.pyplot as plt
    names = list(means)
    if not names:
        raise ValueError("no method has runs of one task count to average")
    n_tasks = max(R.shape[0] for R in means.values())
    size = 1.0 + 0.55 * n_tasks
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * (size + 1.2), rows * size), squeeze=False)
    for ax, name in zip(axes.flat, names):
        R = means[name]
        count = (runs_per_method or {}).get(name)
        bwt = "" if name == "joint" else f", BWT {100 * backward_transfer(R):+.1f}"
        title = f"{name}{f' (mean of {count})' if count else ''}\nACC {100 * average_accuracy(R):.1f} %{bwt}"
        accuracy_matrix_figure(R, title=title, ax=ax)
        for text in ax.texts:
            text.set_fontsize(6)
    for ax in list(axes.flat)[len(names):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.continual_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="permuted-digits run folders")
    parser.add_argument("--figure", help="write the ACC/BWT bars of each method's mean accuracy matrix here")
    parser.add_argument("--heatmaps", help="write each method's mean accuracy matrix as a heatmap here")
    args = parser.parse_args(argv)
    with run_errors_exit(parser):
        try:
            results = collect(args.runs)
        except IncompleteRunError:
            raise
        except ValueError as error:  # another task's run
            parser.error(str(error))
    print(markdown_table(results))
    if args.figure or args.heatmaps:
        from .plots import save, use_file_backend
        use_file_backend()
        means = {method: np.mean([r["R"] for r in runs], axis=0) for method, runs in results.items()
                 if len({r["n_tasks"] for r in runs}) == 1}
        if args.figure:
            save(continual_summary_figure(means), args.figure)
            print(f"wrote {args.figure}")
        if args.heatmaps:
            save(accuracy_matrices_figure(means, {m: len(results[m]) for m in means}), args.heatmaps)
            print(f"wrote {args.heatmaps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
