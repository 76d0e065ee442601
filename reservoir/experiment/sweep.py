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
import hashlib
import itertools
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import ConfigError, format_validation_error
from .cli import set_path

THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}
"""Set in every local worker's environment before it starts (so before it imports NumPy): one
BLAS / OpenMP / Numba thread per worker, one worker per core."""

METRICS_FILE = "metrics.json"
ERROR_FILE = "error.txt"
TABLE_FILE = "sweep.csv"
RESOLVED_FILE = "sweep.json"
DISTRIBUTIONS = ("uniform", "log_uniform", "choice")


class SweepError(ValueError):
    """A sweep file that cannot be used; the message names the key."""


# ---------------------------------------------------------------------------------------------
# The sweep file


class Distribution(BaseModel):
    """One random parameter: exactly one of ``uniform``, ``log_uniform`` (``[lo, hi]``) or ``choice``."""

    model_config = ConfigDict(extra="forbid")
    uniform: tuple[float, float] | None = None
    log_uniform: tuple[float, float] | None = None
    choice: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> "Distribution":
        given = [name for name in DISTRIBUTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)} (got {given or 'none'})")
        for name in ("uniform", "log_uniform"):
            bounds = getattr(self, name)
            if bounds is not None:
                lo, hi = bounds
                if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                    raise ValueError(f"{name}: expected [lo, hi] with lo <= hi, got {list(bounds)}")
                if name == "log_uniform" and lo <= 0:
                    raise ValueError(f"log_uniform: bounds must be > 0, got {list(bounds)}")
        return self

    def draw(self, rng: np.random.Generator) -> Any:
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.log_uniform is not None:
            lo, hi = np.log(self.log_uniform)
            return float(np.exp(rng.uniform(lo, hi)))
        value = self.choice[int(rng.integers(len(self.choice)))]
        return value.item() if isinstance(value, np.generic) else value


class RandomSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_samples: int = Field(ge=1)
    seed: int = Field(0, ge=0)
    parameters: dict[str, Distribution] = Field(min_length=1)


class SweepFile(BaseModel):
    """A validated sweep file (dotted keys flattened)."""

    model_config = ConfigDict(extra="forbid")
    experiment: str = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    name: str | None = None
    set: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    random: RandomSpec | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        if any(s < 0 for s in seeds):
            raise ValueError(f"seeds must be >= 0, got {seeds}")
        return seeds

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"{key}: an empty list of values")
            width = len(key.split(","))
            if width > 1 and not all(isinstance(v, list) and len(v) == width for v in values):
                raise ValueError(f"{key}: linked keys take a list of [{width} values] per point")
        return grid


def _flatten(table: dict, prefix: str = "", leaf=lambda value: not isinstance(value, dict)) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` down to the values ``leaf`` accepts (TOML's bare dotted
    keys are nested tables; quoted ones are kept whole)."""
    out = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if leaf(value) or not value:
            out[path] = value
        else:
            out.update(_flatten(value, path + ".", leaf))
    return out


def _is_distribution(value) -> bool:
    return not isinstance(value, dict) or bool(set(value) & set(DISTRIBUTIONS))


def parse_sweep(data: dict[str, Any], where: str = "sweep file") -> SweepFile:
    """Validate a sweep file's table; :class:`SweepError` names the key."""
    data = dict(data)
    for section in ("set", "grid", "random"):
        if section in data and not isinstance(data[section], dict):
            raise SweepError(f"{where}: {section}: expected a table")
    if "set" in data:
        data["set"] = _flatten(data["set"])
    if "grid" in data:
        data["grid"] = _flatten(data["grid"], leaf=lambda v: not isinstance(v, dict))
    if "random" in data:
        table = dict(data["random"])
        fixed = {k: table.pop(k) for k in ("n_samples", "seed") if k in table}
        data["random"] = {**fixed, "parameters": _flatten(table, leaf=_is_distribution)}
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as error:
        message = format_validation_error(error)
        message = re.sub(r"^random\.parameters\.", "random.", message, flags=re.M)
        raise SweepError(f"{where}: {message}") from None
    swept = [k for key in sweep.grid for k in key.split(",")] + list(sweep.random.parameters if sweep.random else [])
    for key in swept:
        if not key or any(not part for part in key.split(".")):
            raise SweepError(f"{where}: {key!r}: not a dotted key")
        if key == "seed":
            raise SweepError(f"{where}: seed: sweep seeds with the top-level 'seeds' list")
    duplicated = sorted({k for k in swept if swept.count(k) > 1})
    if duplicated:
        raise SweepError(f"{where}: {duplicated[0]}: swept twice (grid and random, or two linked groups)")
    return sweep


def resolve_experiment(name: str, base: Path) -> Path:
    """``name`` relative to the sweep file's folder, else a packaged experiment (``experiments/``)."""
    path = Path(name)
    if not path.is_absolute():
        local = base / path
        if local.exists():
            return local.resolve()
        packaged = files("experiments") / name
        if packaged.is_file():
            return Path(str(packaged))
    if path.exists():
        return path.resolve()
    raise SweepError(f"experiment: {name!r} is neither a file next to the sweep file nor a packaged experiment")


# ---------------------------------------------------------------------------------------------
# Points


@dataclass
class Point:
    """One run of the sweep: the swept values (dotted key -> value), the seed and its folder."""

    id: str
    seed: int
    params: dict[str, Any]
    overrides: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def folder(self) -> str:
        return self.id


@dataclass
class Sweep:
    file: Path | None
    spec: SweepFile
    experiment: Path
    points: list[Point]

    @property
    def name(self) -> str:
        return self.spec.name or (self.file.stem if self.file else self.experiment.stem)

    def parameter_keys(self) -> list[str]:
        keys = [k for key in self.spec.grid for k in key.split(",")]
        return keys + list(self.spec.random.parameters if self.spec.random else [])

    def resolved(self) -> dict:
        return {"name": self.name, "file": str(self.file) if self.file else None,
                "experiment": str(self.experiment), **self.spec.model_dump(mode="json"),
                "points": [{"id": p.id, "seed": p.seed, "params": p.params} for p in self.points]}


def _short_names(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        names[key] = suffix
    return names


def _format(value: Any, digits: int | None = None) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}" if digits else f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_ID = 120


def _point_id(params: dict[str, Any], names: dict[str, str], prefix: str = "", digits: int | None = None) -> str:
    text = ",".join(f"{names[k]}={_format(v, digits)}" for k, v in params.items())
    text = _UNSAFE.sub("_", prefix + text).strip(".") or "default"
    if len(text) > MAX_ID:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
        text = f"{text[:MAX_ID - 12]}-{digest}"
    return text


def parameter_sets(spec: SweepFile) -> list[tuple[str, dict[str, Any]]]:
    """The sweep's parameter sets in order, as ``(label, {dotted key: value})``: the grid's
    product (first key slowest), then each random sample combined with it (deterministic: numpy
    ``default_rng(random.seed)``)."""
    groups = []
    for key, values in spec.grid.items():
        keys = key.split(",")
        groups.append([dict(zip(keys, v if len(keys) > 1 else [v])) for v in values])
    grid = [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*groups)] or [{}]
    keys = [k for key in spec.grid for k in key.split(",")]
    names = _short_names(keys + list(spec.random.parameters if spec.random else []))
    if spec.random is None:
        return [(_point_id(p, names) if p else "", p) for p in grid]
    rng = np.random.default_rng(spec.random.seed)
    samples = [{key: dist.draw(rng) for key, dist in spec.random.parameters.items()}
               for _ in range(spec.random.n_samples)]
    width = len(str(spec.random.n_samples - 1))
    out = []
    for g in grid:
        for index, sample in enumerate(samples):
            params = {**g, **sample}
            out.append((_point_id(params, names, prefix=f"s{index:0{width}d},", digits=4), params))
    return out


def _overrides(spec: SweepFile, params: dict[str, Any], seed: int) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    try:
        for key, value in {**spec.set, **params}.items():
            set_path(overrides, key.split("."), value)
    except argparse.ArgumentTypeError as error:
        raise SweepError(str(error)) from None
    overrides["seed"] = seed
    return overrides


def build_sweep(spec: SweepFile, experiment: Path, file: Path | None = None, validate: bool = True) -> Sweep:
    """Expand ``spec`` into points and (``validate``) load every point's configuration, so that a
    bad key fails here, before anything runs."""
    from .config import load_experiment

    points = []
    seen: dict[str, int] = {}
    for label, params in parameter_sets(spec):
        if label in seen:  # two values that print alike
            digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:6]
            label = f"{label}-{digest}"
        seen[label] = 1
        for seed in spec.seeds:
            point_id = f"{label}/seed{seed}" if label else f"seed{seed}"
            points.append(Point(point_id, seed, params, _overrides(spec, params, seed)))
    if validate:
        for point in points:
            try:
                load_experiment(experiment, point.overrides)
            except ConfigError as error:
                raise ConfigError(f"point {point.id}:\n{error}") from None
    return Sweep(file, spec, experiment, points)


def load_sweep(path, validate: bool = True) -> Sweep:
    """Read, validate and expand a sweep file (:class:`SweepError` or
    :class:`~reservoir.config.ConfigError`, naming the key)."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"sweep file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(f"{path} is not valid TOML: {error}") from None
    spec = parse_sweep(data, where=str(path))
    experiment = resolve_experiment(spec.experiment, path.parent)
    return build_sweep(spec, experiment, path, validate)


# ---------------------------------------------------------------------------------------------
# Running one point (in a worker)


def read_metrics(folder: Path) -> dict | None:
    """The run's metrics if ``folder`` holds a finished run (a ``metrics.json`` that parses)."""
    try:
        metrics = json.loads((Path(folder) / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def run_point(experiment: str, overrides: dict[str, Any], out: str) -> dict:
    """Run one point into ``out`` (in a worker). Never raises for a failed run: returns
    ``{"status": "failed", "error": ...}`` and writes ``out/error.txt``."""
    from analysis.plots import use_file_backend

    from .config import load_experiment
    from .runner import run_experiment

    use_file_backend()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR_FILE).unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        config = load_experiment(experiment, overrides)
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
                     **{key: _format(point.params[key]) if isinstance(point.params.get(key), (dict, list))
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
    from tqdm.auto import tqdm

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
                                       key=f"sweep-{_UNSAFE.sub('_', point.id)}-{os.getpid()}-{time.time_ns()}",
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
