"""Parameter sweeps: one experiment over a grid (or a random sample) of overrides x seeds, run on
Dask distributed (``reservoir sweep SWEEP.toml``; docs/sweeps.md).

A sweep file (TOML)::

    experiment = "whatwhen.toml"        # relative to this file, or a packaged experiment's name
    seeds = [1, 2, 3]
    [set]                               # fixed overrides, like --set
    "task.test_trials" = 10
    [grid]                              # Cartesian product of the lists
    "network.n_neurons" = [1000, 2000]
    "network.noise.excitatory_std,network.noise.inhibitory_std" = [[0.25, 0.125], [0.5, 0.25]]  # linked
    [random]                            # and/or n_samples draws (numpy default_rng(seed))
    n_samples = 8
    seed = 0
    "readouts.groups.0.three_factor.learning_rate" = { log_uniform = [1e-5, 1e-4] }

Each point (parameters x seed) is an ordinary run folder ``OUT/<point>/seedN`` (``<point>`` names
the swept values, e.g. ``n_neurons=1000,excitatory_std=0.5``). Every point's configuration is
validated before anything runs. A failed point is recorded (``OUT/<point>/error.txt`` and the
table) without stopping the others; a rerun skips the points whose ``metrics.json`` is whole; a
worker that dies has its point rescheduled on another worker. ``OUT/sweep.csv`` holds one row
per point with its scalar metrics, ``OUT/sweep.json`` the resolved sweep.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError
from .sweep_file import (UNSAFE_CHARACTERS, Point, Sweep, SweepError, build_sweep, format_value,  # noqa: F401
                         load_sweep, parameter_sets, parse_sweep, resolve_experiment)

THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}
"""Set in every local worker's environment before it starts (so before it imports NumPy): one
BLAS / OpenMP / Numba thread per worker, one worker per core."""

METRICS_FILE = "metrics.json"
ERROR_FILE = "error.txt"
TABLE_FILE = "sweep.csv"
RESOLVED_FILE = "sweep.json"


# ---------------------------------------------------------------------------------------------
# Running one point (in a worker)


def read_metrics(folder: Path) -> dict | None:
    """The run's metrics if ``folder`` holds a finished run (a ``metrics.json`` that parses)."""
    try:
        metrics = json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def _same_configuration(folder: Path, config) -> bool:
    """Whether ``folder`` was started with exactly ``config`` (its resolved configuration file)."""
    import tomli_w

    from ..config import config_to_dict
    from .runner import CONFIG_FILE

    try:
        return (folder / CONFIG_FILE).read_text() == tomli_w.dumps(config_to_dict(config))
    except OSError:
        return False


def run_point(experiment: str, overrides: dict[str, Any], out: str) -> dict:
    """Run one point into ``out`` (in a worker). Never raises for a failed run: returns
    ``{"status": "failed", "error": ...}`` and writes ``out/error.txt``."""
    from analysis.plots import use_file_backend

    from .config import load_experiment
    from .runner import CHECKPOINT_FILE, resume, run_experiment, run_status

    use_file_backend()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR_FILE).unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        config = load_experiment(experiment, overrides)
        # a point whose worker died after a checkpoint (checkpoint_every_ms) carries on from it
        if (folder / CHECKPOINT_FILE).exists() and run_status(folder) in ("running", "interrupted", "failed") \
                and _same_configuration(folder, config):
            metrics = resume(folder, progress=False)
        else:
            metrics = run_experiment(config, folder, progress=False, overwrite=True)
    except Exception as error:  # noqa: BLE001 - any failure is the point's result
        message = f"{type(error).__name__}: {error}"
        (folder / ERROR_FILE).write_text(message + "\n\n" + traceback.format_exc())
        return {"status": "failed", "error": message, "wall_s": time.perf_counter() - started, "metrics": None,
                "pid": os.getpid()}
    return {"status": "complete", "error": "", "wall_s": time.perf_counter() - started, "metrics": metrics,
            "pid": os.getpid()}


# ---------------------------------------------------------------------------------------------
# The table


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, Any]:
    """Scalar metrics with nested dicts flattened by dots; a short list of numbers becomes
    ``key.0``, ``key.1``...; a list of dicts is keyed by its entries' ``block`` / ``cue`` /
    ``name`` (else their index); other lists are left out."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_metrics(value, path + "."))
        elif isinstance(value, list):
            if value and len(value) <= 8 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                out.update({f"{path}.{i}": v for i, v in enumerate(value)})
            elif value and all(isinstance(v, dict) for v in value):
                for index, entry in enumerate(value):
                    tag = ".".join(f"b{entry[k]}" if k == "block" else str(entry[k])
                                   for k in ("block", "cue", "name", "task") if k in entry
                                   and isinstance(entry[k], (int, str))) or str(index)
                    scalars = {k: v for k, v in entry.items() if k not in ("block", "cue", "name", "task")}
                    out.update(flatten_metrics(scalars, f"{path}.{tag}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[path] = value
    return out


def write_table(path: Path, sweep: Sweep, results: dict[str, dict]) -> list[dict]:
    """``OUT/sweep.csv``: one row per point, in the sweep's order."""
    params = sweep.parameter_keys()
    rows, metric_keys = [], {}
    for point in sweep.points:
        result = results.get(point.id, {"status": "pending", "error": "", "wall_s": None, "metrics": None})
        fixed = {"point", "seed", "status", "error", "point_wall_s", *params}
        metrics = {(f"metrics.{k}" if k in fixed else k): v for k, v in flatten_metrics(result.get("metrics") or {}).items()}
        for key in metrics:
            metric_keys.setdefault(key, None)
        rows.append({"point": point.id, "seed": point.seed,
                     **{key: format_value(point.params[key]) if isinstance(point.params.get(key), (dict, list))
                        else point.params.get(key) for key in params},
                     "status": result["status"], "error": result.get("error", ""),
                     "point_wall_s": None if result.get("wall_s") is None else round(result["wall_s"], 3),
                     **metrics})
    columns = ["point", "seed", *params, "status", "error", "point_wall_s", *metric_keys]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return rows


# ---------------------------------------------------------------------------------------------
# Running the sweep


def default_workers() -> int:
    """One worker per physical core where psutil knows them, else per CPU."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover
        count = None
    return max(1, count or os.cpu_count() or 1)


def local_client(n_workers: int):
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes (one BLAS / Numba
    thread each, set before the workers start) and its client."""
    import logging

    import dask
    from dask.distributed import Client, LocalCluster

    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **THREAD_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "distributed.scheduler.allowed-failures": 3}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, env=dict(THREAD_ENV),
                               memory_limit=0, dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster)


def _warmup_overrides(config) -> dict[str, Any] | None:
    """A few-trial version of ``config`` (as overrides), or None where the task has no known short form."""
    task = getattr(config, "task", None)
    kind = getattr(task, "kind", "none")
    if kind == "whatwhen":
        blocks = {str(i): {"n_trials": min(b.n_trials, 2)} for i, b in enumerate(task.blocks)}
        n_trials = sum(min(b.n_trials, 2) for b in task.blocks)
        return {"task": {"blocks": blocks, "test_trials": 1},
                "duration_ms": n_trials * (task.trial_ms + task.iti_ms)}
    if kind == "cue_bump":
        return {"task": {"n_trials": 3, "test_trials": 1}, "duration_ms": 3 * (task.trial_ms + task.iti_ms)}
    if kind == "none":
        return {"duration_ms": min(config.duration_ms, 50.0)}
    return None


def warm_up(sweep: Sweep, point: Point) -> float | None:
    """Run a few-trial version of ``point`` in this process, into a temporary folder, so that the
    compiled kernels are in the on-disk cache before the workers start; returns its seconds (None
    where there is no short form or it failed: the workers then compile for themselves)."""
    from analysis.plots import use_file_backend

    from .config import load_experiment
    from .runner import run_experiment

    use_file_backend()
    started = time.perf_counter()
    try:
        config = load_experiment(sweep.experiment, point.overrides)
        short = _warmup_overrides(config)
        if short is None:
            return None
        from ..config import deep_merge

        config = load_experiment(sweep.experiment, deep_merge(point.overrides, short))
        with tempfile.TemporaryDirectory(prefix="sweep-warmup-") as folder:
            run_experiment(config, Path(folder) / "run", progress=False, overwrite=True)
    except Exception as error:  # noqa: BLE001 - a warm-up is an optimisation only
        print(f"sweep: warm-up run skipped ({type(error).__name__}: {error}); the workers compile the kernels",
              file=sys.stderr)
        return None
    return time.perf_counter() - started


@dataclass
class SweepResult:
    rows: list[dict]
    counts: dict[str, int]
    wall_s: float


def run_sweep(sweep: Sweep, out, client=None, scheduler: str | None = None, workers: int | None = None,
              progress: bool = True, warmup: bool = True, skip_finished: bool = True, log=None) -> SweepResult:
    """Run every unfinished point of ``sweep`` into ``out`` (every point where not
    ``skip_finished``): on ``client`` if given, else on the scheduler at ``scheduler``, else on a
    new local cluster of ``workers`` processes. Writes ``out/sweep.json`` and ``out/sweep.csv``."""
    from tqdm import tqdm

    started = time.perf_counter()
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESOLVED_FILE).write_text(json.dumps(sweep.resolved(), indent=1) + "\n")
    results: dict[str, dict] = {}
    todo = []
    for point in sweep.points:
        metrics = read_metrics(out / point.folder) if skip_finished else None
        if metrics is not None:
            results[point.id] = {"status": "skipped-finished", "error": "", "wall_s": None, "metrics": metrics}
        else:
            todo.append(point)
    if len(todo) < len(sweep.points):
        log(f"sweep {sweep.name}: {len(sweep.points) - len(todo)} of {len(sweep.points)} points finished "
            "before; skipping them")
    own_client = None
    if todo:
        with ThreadPoolExecutor(1) as pool:
            if client is None:  # the cluster starts while the kernels compile here
                own = pool.submit(lambda: __import__("dask.distributed", fromlist=["Client"]).Client(scheduler)
                                  if scheduler else local_client(workers or default_workers()))
            seconds = warm_up(sweep, todo[0]) if warmup else None
            if seconds is not None:
                log(f"sweep {sweep.name}: kernels ready ({seconds:.1f} s warm-up run)")
            if client is None:
                client = own_client = own.result()
    try:
        if todo:
            from dask.distributed import as_completed

            futures = {}
            for point in todo:
                future = client.submit(run_point, str(sweep.experiment), point.overrides, str(out / point.folder),
                                       key=f"sweep-{UNSAFE_CHARACTERS.sub('_', point.id)}-{os.getpid()}-{time.time_ns()}",
                                       pure=False)
                futures[future] = point
            bar = tqdm(total=len(sweep.points), initial=len(sweep.points) - len(todo), unit="run",
                       desc=f"sweep {sweep.name}", disable=not progress, dynamic_ncols=True)
            try:
                for future in as_completed(futures):
                    point = futures[future]
                    try:
                        result = future.result()
                    except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths
                        message = f"{type(error).__name__}: {error}"
                        folder = out / point.folder
                        folder.mkdir(parents=True, exist_ok=True)
                        (folder / ERROR_FILE).write_text(message + "\n")
                        result = {"status": "failed", "error": message, "wall_s": None, "metrics": None}
                    results[point.id] = result
                    if result["status"] == "failed":
                        bar.write(f"{point.id}: failed: {result['error']}")
                    bar.update(1)
                    write_table(out / TABLE_FILE, sweep, results)  # a partial table while it runs
            finally:
                bar.close()
    finally:
        if own_client is not None:
            cluster = own_client.cluster
            own_client.close()
            if cluster is not None:
                cluster.close()
    rows = write_table(out / TABLE_FILE, sweep, results)
    counts = {status: sum(r["status"] == status for r in rows) for status in ("complete", "failed", "skipped-finished")}
    return SweepResult(rows, counts, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# The command


def add_sweep_parser(subparsers, formatter_class=argparse.HelpFormatter) -> argparse.ArgumentParser:
    """The ``reservoir sweep`` subcommand."""
    sweep = subparsers.add_parser(
        "sweep", help="run an experiment over a grid / random sample of overrides x seeds on Dask",
        description=(
            "Run the experiment of a sweep file (TOML: experiment, seeds, [set], [grid], [random]; "
            "docs/sweeps.md) at every point, each into OUT/<point>/seedN, on a local Dask cluster or an "
            "existing scheduler, and write OUT/sweep.csv (one row per point) and OUT/sweep.json. Every "
            "point's configuration is validated first; finished points are skipped on a rerun."),
        formatter_class=formatter_class)
    sweep.add_argument("sweep", metavar="SWEEP.toml", help="sweep file")
    sweep.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="address of a running Dask scheduler (e.g. tcp://host:8786); default: a local cluster")
    sweep.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local worker processes, one thread each (default: the physical cores)")
    sweep.add_argument("--out", default=None, help="output folder (default: runs/sweeps/NAME)")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.set_defaults(subparser=sweep)
    return sweep


def run_sweep_command(args: argparse.Namespace) -> int:
    sub = args.subparser
    if args.workers is not None and args.workers < 1:
        sub.error(f"argument --workers: must be >= 1, got {args.workers}")
    try:
        sweep = load_sweep(args.sweep)
    except (SweepError, ConfigError) as error:
        sub.error(f"invalid sweep file:\n{error}")
    if args.scheduler and args.workers is not None:
        print("reservoir sweep: --workers is ignored with --scheduler (the cluster has its own workers)",
              file=sys.stderr)
    out = Path(args.out or f"runs/sweeps/{sweep.name}")
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        result = run_sweep(sweep, out, scheduler=args.scheduler, workers=args.workers, progress=progress)
    except OSError as error:  # no scheduler at --scheduler, a folder that cannot be written
        print(f"reservoir sweep: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    c = result.counts
    print(f"wrote {out / TABLE_FILE}: {len(result.rows)} points, {c['complete']} complete, {c['failed']} failed, "
          f"{c['skipped-finished']} finished before; {result.wall_s:.1f} s")
    return 1 if c["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reservoir")
    add_sweep_parser(parser.add_subparsers(dest="command", required=True))
    return run_sweep_command(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(["sweep", *sys.argv[1:]]))
