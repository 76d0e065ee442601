"""The behaviour guard: three short runs whose files must not change unless on purpose.

Each case runs the ``reservoir`` command line into a fresh folder. ``tests/data/guard/`` keeps,
per case, what the guard compares against (``python -m tests.guard --write`` makes them):

- ``record.json``: the environment the record was made in, the note of why it was last written,
  and per case the digests of ``run.h5`` (its bytes; its content: every dataset's dtype, shape
  and bytes and every attribute, which does not depend on HDF5's layout choices), a summary of
  every dataset and the tolerance each summary is compared with elsewhere (below);
- ``<case>.metrics.json``: the run's ``metrics.json`` without ``wall_time_s``;
- ``<case>.reference.npz``: the arrays of the summaries of the kernels' outputs.

What ``tests/test_guard.py`` compares:

- **The run file, exactly**, by its content digest. This must hold where the kernels'
  environment (CPU, C library, Numba, LLVM, the BLAS that RLS calls) is the recorded one; it
  usually holds elsewhere too (the kernels use no fast math, and the noise is the project's own
  generator), and is then reported as such.
- **Elsewhere, dataset by dataset within a stated tolerance**, where the content differs. The
  datasets NumPy builds before the run (network, trial table, sampling times) are compared by
  their shape, dtype and summaries (sums, extremes, a fixed random projection) to rtol 1e-12
  (integers exactly). The kernels' outputs are chaotic: a network amplifies a last-bit
  difference until its spikes differ, so they cannot be compared spike by spike over a run.
  They are compared by what rounding leaves alone, with tolerances measured, not chosen: the
  record is made together with an ensemble of runs whose kernels see a rounding-level
  perturbation (one unit in the last place of the initial potential, the noise amplitude and
  the bias current of a random half of the neurons, a different half per member, acting from
  the first step as a different rounding would), and each summary's tolerance is
  ``TOLERANCE_FACTOR`` times the
  largest deviation any member shows (never below the floor of its kind). Spike trains: the
  count, the per-neuron counts and the population rate in 10 ms bins (relative L1 distance),
  and the spikes before the ensemble's earliest divergence (``exact_until_ms``, halved) matched
  neuron by neuron within one time step. Readout outputs: the mean of each unit per 1 s.
  Weight snapshots: each unit's norm per snapshot and the cosine of its last snapshot with the
  record's.
- **The metrics, within a tolerance, never by digest**: where the run file's content is the
  record's, every number to rtol 1e-9 (the analysis' linear algebra rounds differently with
  OpenBLAS' kernel choice and thread split); where it is not, each number within its own
  tolerance measured by the same ensemble (and the entries that the ensemble shows to flip,
  like a claim's verdict at its threshold, are listed and not compared).
- **The file's bytes** where the HDF5 library is also the recorded one.

Regenerate only deliberately, saying why (the note is stored; it takes about two minutes)::

    .venv/bin/python -m tests.guard --write --why "what changed and why it should"
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import re
import sys
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import h5py
import numpy as np

from .helpers import metric_leaves, metrics_differences

DATA = Path(__file__).resolve().parent / "data" / "guard"
RECORD = DATA / "record.json"
EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

CASES = {
    "whatwhen": ["run", str(EXPERIMENTS / "whatwhen.toml"), "--set", "task.blocks.0.n_trials=40",
                 "--set", "duration_ms=48000"],
    "force_sine": ["run", str(EXPERIMENTS / "force_sine.toml"), "--set", "duration_ms=3000",
                   "--set", "task.learn_start_ms=1000", "--set", "task.learn_stop_ms=2000"],
    "simulate_netm": ["simulate", "--preset", "izhikevich2003", "--duration-ms", "1000", "--seed", "1"],
}
"""The issue's guard commands (the default experiment and FORCE sine shortened, a plain run)."""

ENSEMBLE = range(1, 7)
"""The perturbed members the tolerances are measured on (a held-out member checks them in the tests)."""
TOLERANCE_FACTOR = 3.0
BUILT_RTOL = 1e-12
METRICS_RTOL, METRICS_ATOL = 1e-9, 1e-12
FLOORS = {"count": 1e-9, "l1": 1e-9, "bins": 1e-12, "norms": 1e-12, "cosine": 1e-12}
"""The smallest tolerance of each kind of summary (an ensemble member equal to the record gives 0)."""
RATE_BIN_MS = 10.0
OUTPUT_BIN_MS = 1000.0


# ------------------------------------------------------------------------------------------------
# running a case, with or without a rounding-level perturbation

def _perturb(network, member: int) -> None:
    """Move the initial membrane potential, the noise amplitude and the bias current of a random
    half of the neurons (a different half for each ``member``) up by one unit in the last place:
    the kernels start from a state another rounding could have given and round differently
    wherever the noise and the bias enter, as another machine's would (a last-place change of the
    bias alone vanishes in the potential's own rounding in the 2007 form)."""
    rng = np.random.default_rng([20261207, member])
    half = rng.random(network.n_neurons) < 0.5
    for values in (network.neurons.v_initial_mV, network.noise_std, network.bias):
        moved = half & (values != 0)
        values[moved] = np.nextafter(values[moved], np.inf)


@contextmanager
def _perturbed(member: int | None):
    if member is None:
        yield
        return
    from reservoir.experiment import runner

    build = runner.build_network

    def build_and_perturb(*args, **kwargs):
        network = build(*args, **kwargs)
        _perturb(network, member)
        return network

    with mock.patch.object(runner, "build_network", build_and_perturb):
        yield


def run_case(name: str, out: Path, perturbation: int | None = None, extra: tuple[str, ...] = ()) -> Path:
    """Run guard case ``name`` into ``out/name`` (``perturbation``: an ensemble member's index;
    ``extra``: more command-line arguments, e.g. a deliberate change)."""
    from reservoir.experiment.cli import main

    folder = out / name
    with _perturbed(perturbation):
        assert main([*CASES[name], *extra, "--out", str(folder), "--no-progress"]) == 0
    return folder


# ------------------------------------------------------------------------------------------------
# digests and the environment

def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_sha256(path: Path) -> str:
    """SHA-256 over every dataset (name, dtype, shape, bytes) and attribute of an HDF5 file."""
    h = hashlib.sha256()

    def attributes(obj):
        for key in sorted(obj.attrs):
            value = np.asarray(obj.attrs[key])
            h.update(f"@{key}:{value.dtype.str}:{value.shape}".encode())
            h.update(str(value.tolist()).encode() if value.dtype.kind in "OSU" else value.tobytes())

    with h5py.File(path, "r") as f:
        attributes(f)
        names = []
        f.visit(names.append)
        for name in sorted(names):
            item = f[name]
            h.update(f"/{name}".encode())
            attributes(item)
            if isinstance(item, h5py.Dataset):
                values = np.ascontiguousarray(item[()])
                h.update(f":{values.dtype.str}:{values.shape}".encode())
                h.update(str(values.tolist()).encode() if values.dtype.kind in "OSU" else values.tobytes())
    return h.hexdigest()


def metrics_without_wall_time(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("wall_time_s", None)
    return metrics


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"})


def _blas() -> str:
    """The BLAS the kernels' ``np.dot`` calls (RLS), with the core it chose and its threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return "unknown"
    return "; ".join(sorted(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                            f"threads={i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"))


def environment() -> dict:
    """What the run files and metrics depend on besides the code."""
    import llvmlite
    import numba
    import scipy

    return {
        "python": platform.python_version(), "machine": platform.machine(), "cpu_flags": _cpu_flags(),
        "libc": " ".join(platform.libc_ver()), "blas": _blas(),
        "numpy": np.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
        "llvmlite": llvmlite.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
    }


KERNEL_KEYS = ("machine", "cpu_flags", "libc", "blas", "numba", "llvmlite")
FILE_KEYS = ("h5py", "hdf5")


def differs(recorded: dict, here: dict, keys) -> dict:
    """The environment keys whose values differ: ``{key: (recorded, here)}``."""
    return {key: (recorded.get(key), here.get(key)) for key in keys if here.get(key) != recorded.get(key)}


# ------------------------------------------------------------------------------------------------
# summaries of a run file's datasets

def _is_kernel_output(name: str) -> bool:
    return name.startswith("spikes/") or name in ("readouts/output", "readouts/weights", "traces/v", "traces/u")


def _projection(name: str, values: np.ndarray) -> float:
    signs = np.random.default_rng(zlib.crc32(name.encode())).choice([-1.0, 1.0], size=values.size)
    return float(signs @ values.ravel())


def _built_summary(name: str, values: np.ndarray) -> dict:
    """Sums, extremes and a fixed random projection of the finite values, and the count of the
    others (NaN marks the parameters a neuron model does not use)."""
    x = values.astype(np.float64).ravel() if values.dtype.kind in "biuf" else np.zeros(0)
    finite = np.isfinite(x)
    y = np.where(finite, x, 0.0)
    return {"sum": float(y.sum()), "sum_sq": float(y @ y), "min": float(x[finite].min()) if finite.any() else 0.0,
            "max": float(x[finite].max()) if finite.any() else 0.0, "projection": _projection(name, y),
            "not_finite": int((~finite).sum())}


def _bin_means(values: np.ndarray, times_ms: np.ndarray, bin_ms: float) -> np.ndarray:
    """Mean of each column of ``values`` ``(T, K)`` per ``bin_ms`` of ``times_ms``."""
    if values.size == 0:
        return np.zeros((0, values.shape[1] if values.ndim == 2 else 0))
    bins = np.floor(times_ms / bin_ms).astype(np.int64)
    counts = np.bincount(bins).astype(np.float64)
    means = np.stack([np.bincount(bins, weights=values[:, k], minlength=counts.size) for k in range(values.shape[1])],
                     axis=1)
    return means[counts > 0] / counts[counts > 0, None]


def summarize(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(summaries, arrays)`` of a run file: per dataset its dtype and shape and the summary
    numbers compared with a tolerance; the arrays the kernels' summaries compare against."""
    summaries, arrays = {}, {}
    with h5py.File(path, "r") as f:
        dt_ms = float(f.attrs["dt_ms"])
        n_neurons = int(f["network"].attrs["n_neurons"])
        names = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
        for name in sorted(names):
            values = f[name][()]
            entry = {"dtype": values.dtype.str, "shape": list(values.shape)}
            if not _is_kernel_output(name):
                entry["built"] = _built_summary(name, values)
            elif name.endswith("/timestamps"):
                ids = f[name.rsplit("/", 1)[0] + "/node_ids"][()].astype(np.int64)
                key = name.rsplit("/", 1)[0]
                arrays[f"{key}/per_neuron"] = np.bincount(ids, minlength=n_neurons)
                arrays[f"{key}/rate_bins"] = np.bincount(np.floor(values / RATE_BIN_MS).astype(np.int64))
                arrays[f"{key}/times"], arrays[f"{key}/ids"] = values, ids
                arrays[f"{key}/count"] = np.array(values.size)
            elif name in ("readouts/output", "traces/v", "traces/u"):
                time_name = "readouts/output_time_ms" if name == "readouts/output" else "traces/time_ms"
                arrays[f"{name}/bins"] = _bin_means(values, f[time_name][()], OUTPUT_BIN_MS)
            elif name == "readouts/weights":
                arrays[f"{name}/norms"] = np.linalg.norm(values, axis=2) if values.size else np.zeros(values.shape[:2])
                arrays[f"{name}/last"] = values[-1] if values.shape[0] else np.zeros(values.shape[1:])
            summaries[name] = entry
    return {"dt_ms": dt_ms, "datasets": summaries}, arrays


def _relative_l1(a: np.ndarray, b: np.ndarray) -> float:
    n = max(a.size, b.size)
    a, b = np.pad(a.astype(float), (0, n - a.size)), np.pad(b.astype(float), (0, n - b.size))
    return float(np.abs(a - b).sum() / max(np.abs(b).sum(), 1.0))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(norms > 0, np.sum(a * b, axis=-1) / np.where(norms > 0, norms, 1.0), 1.0)


def first_divergence_ms(times, ids, ref_times, ref_ids, dt_ms: float) -> float:
    """The earliest time at which two spike trains differ by more than one step: a neuron with a
    different number of spikes up to there, or a spike more than ``dt_ms`` from its partner."""
    if times.size == ref_times.size and np.array_equal(ids, ref_ids) and np.array_equal(times, ref_times):
        return math.inf
    horizon = math.inf
    n = int(max(ids.max(initial=-1), ref_ids.max(initial=-1))) + 1
    order, ref_order = np.lexsort((times, ids)), np.lexsort((ref_times, ref_ids))
    counts, ref_counts = np.bincount(ids, minlength=n), np.bincount(ref_ids, minlength=n)
    starts, ref_starts = np.concatenate([[0], np.cumsum(counts)]), np.concatenate([[0], np.cumsum(ref_counts)])
    for neuron in np.flatnonzero((counts > 0) | (ref_counts > 0)):
        mine = times[order[starts[neuron]:starts[neuron + 1]]]
        theirs = ref_times[ref_order[ref_starts[neuron]:ref_starts[neuron + 1]]]
        k = min(mine.size, theirs.size)
        off = np.flatnonzero(np.abs(mine[:k] - theirs[:k]) > dt_ms * (1 + 1e-9))
        if off.size:
            horizon = min(horizon, float(min(mine[off[0]], theirs[off[0]])))
        elif mine.size != theirs.size:
            horizon = min(horizon, float((mine if mine.size > k else theirs)[k]))
    return horizon


def deviations(summary: dict, arrays: dict, reference: dict, reference_arrays: dict) -> dict:
    """How far each kernel summary of a run lies from the record's: ``{dataset: {kind: value}}``
    (relative count difference, relative L1 of per-neuron counts and of binned rates, largest
    difference of binned means or norms, 1 - the smallest cosine of the last weights), and for
    spike trains the first divergence time (ms, ``inf`` where none)."""
    out = {}
    for name in reference["datasets"]:
        if not _is_kernel_output(name) or name.endswith("/node_ids"):
            continue
        if name.endswith("/timestamps"):
            key = name.rsplit("/", 1)[0]
            ref_count = int(reference_arrays[f"{key}/count"])
            out[name] = {
                "count": abs(int(arrays[f"{key}/count"]) - ref_count) / max(ref_count, 1),
                "l1": _relative_l1(arrays[f"{key}/per_neuron"], reference_arrays[f"{key}/per_neuron"]),
                "rate_l1": _relative_l1(arrays[f"{key}/rate_bins"], reference_arrays[f"{key}/rate_bins"]),
                "diverges_at_ms": first_divergence_ms(arrays[f"{key}/times"], arrays[f"{key}/ids"],
                                                      reference_arrays[f"{key}/times"], reference_arrays[f"{key}/ids"],
                                                      reference["dt_ms"]),
            }
        elif f"{name}/bins" in reference_arrays:
            a, b = arrays[f"{name}/bins"], reference_arrays[f"{name}/bins"]
            out[name] = {"bins": float(np.abs(a - b).max()) if a.shape == b.shape and a.size else
                         (0.0 if a.shape == b.shape else math.inf)}
        elif name == "readouts/weights":
            a, b = arrays[f"{name}/norms"], reference_arrays[f"{name}/norms"]
            same = a.shape == b.shape
            scale = np.maximum(np.abs(b), 1e-300) if same else 1.0
            out[name] = {"norms": float(np.max(np.abs(a - b) / scale)) if same and a.size else (0.0 if same else math.inf),
                         "cosine": float(1.0 - _cosines(arrays[f"{name}/last"], reference_arrays[f"{name}/last"]).min())
                         if same and arrays[f"{name}/last"].size else (0.0 if same else math.inf)}
    return out


# ------------------------------------------------------------------------------------------------
# comparing a run with the record

def compare_built(summary: dict, reference: dict) -> list[str]:
    """Problems with the datasets NumPy builds (and with every dataset's dtype and, for those
    whose length does not depend on the dynamics, its shape)."""
    problems = []
    here, recorded = summary["datasets"], reference["datasets"]
    for name in sorted(set(here) ^ set(recorded)):
        problems.append(f"/{name}: {'not in the record' if name in here else 'missing'}")
    for name in sorted(set(here) & set(recorded)):
        a, b = here[name], recorded[name]
        if a["dtype"] != b["dtype"]:
            problems.append(f"/{name}: dtype {a['dtype']}, recorded {b['dtype']}")
        if not name.startswith("spikes/") and a["shape"] != b["shape"]:
            problems.append(f"/{name}: shape {a['shape']}, recorded {b['shape']}")
            continue
        if "built" in b:
            integral = np.dtype(b["dtype"]).kind in "biu"
            for key, expected in b["built"].items():
                actual = a["built"][key]
                if not (actual == expected if integral else math.isclose(actual, expected, rel_tol=BUILT_RTOL,
                                                                         abs_tol=1e-300)):
                    problems.append(f"/{name}: {key} {actual!r}, recorded {expected!r} "
                                    f"({'exact' if integral else f'rtol {BUILT_RTOL:g}'})")
    return problems


def compare_kernel_outputs(summary: dict, arrays: dict, record: dict, reference_arrays: dict) -> list[str]:
    """Problems with the kernels' outputs, each summary against its measured tolerance; the
    spikes before ``exact_until_ms`` must match the record's within one step (the record keeps
    only those: a difference in the last step before the cut is the cut's, not the run's)."""
    problems = []
    dt_ms = record["dt_ms"]
    measured = deviations(summary, _cut_spikes(arrays, record), record, reference_arrays)
    for name, kinds in measured.items():
        tolerance = record["tolerances"][name]
        for kind, value in kinds.items():
            if kind == "diverges_at_ms":
                until = _exact_until(tolerance)
                if value < until - 2 * dt_ms:
                    where = (f"before {until:g} ms (half the ensemble's earliest divergence)" if math.isfinite(until)
                             else "(no ensemble run diverged: compared to the end)")
                    problems.append(f"/{name}: the spikes differ by more than one step at {value:g} ms {where}")
            elif not value <= tolerance[kind]:
                problems.append(f"/{name}: {kind} deviation {value:.3g} > tolerance {tolerance[kind]:.3g}")
    return problems


def _exact_until(tolerance: dict) -> float:
    """Where a spike train stops being compared spike by spike (None in the record: never)."""
    value = tolerance.get("exact_until_ms")
    return math.inf if value is None else float(value)


def _cut_spikes(arrays: dict, record: dict) -> dict:
    """``arrays`` with each spike train's times and ids cut at its ``exact_until_ms``."""
    out = dict(arrays)
    for name, tolerance in record["tolerances"].items():
        if name.endswith("/timestamps"):
            key = name.rsplit("/", 1)[0]
            keep = arrays[f"{key}/times"] < _exact_until(tolerance)
            out[f"{key}/times"], out[f"{key}/ids"] = arrays[f"{key}/times"][keep], arrays[f"{key}/ids"][keep]
    return out


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare_metrics_exactly(metrics: dict, expected: dict) -> list[str]:
    """Every leaf equal, numbers to rtol 1e-9 (the same run file, other linear-algebra rounding)."""
    return metrics_differences(metrics, expected, rtol=METRICS_RTOL, atol=METRICS_ATOL)


def metric_group(key: str) -> str:
    """The series a metric belongs to: its path with list indices as ``[*]`` (the points of one
    curve, the conditions of one measure), which share one tolerance."""
    return re.sub(r"\[\d+\]", "[*]", key)


def _same_number(a, b, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= tolerance + METRICS_RTOL * abs(b)


def compare_metrics_with_tolerances(metrics: dict, expected: dict, tolerances: dict) -> list[str]:
    """Each number within the measured tolerance of its series (``tolerances["series"]``), NaN
    where the record has NaN, other leaves equal; the leaves the ensemble showed to change kind
    (``tolerances["varies"]``) are not compared, nor the entries of lists whose length varied
    (``tolerances["varying_lists"]``)."""
    here, recorded = dict(metric_leaves(metrics)), dict(metric_leaves(expected))
    series, varies, varying = tolerances["series"], set(tolerances["varies"]), tuple(tolerances["varying_lists"])
    problems = []
    for key, b in recorded.items():
        if key in varies or key.startswith(varying):
            continue
        if key not in here:
            problems.append(f"{key}: missing")
            continue
        a = here[key]
        if _numeric(a) and _numeric(b):
            tolerance = series.get(metric_group(key), 0.0)
            if not _same_number(a, b, tolerance):
                problems.append(f"{key}: {a!r}, recorded {b!r} (tolerance {tolerance:.3g})")
        elif a != b:
            problems.append(f"{key}: {a!r}, recorded {b!r}")
    problems += [f"{key}: not in the record" for key in here.keys() - recorded.keys() if not key.startswith(varying)]
    return sorted(problems)


# ------------------------------------------------------------------------------------------------
# making the record

def _metric_tolerances(reference: dict, members: list[dict]) -> dict:
    """Per series of metrics (:func:`metric_group`): ``TOLERANCE_FACTOR`` x the largest deviation
    of any of its numbers in any ensemble member (0: none moved); the leaves a member changed in
    kind (a verdict that flips, a number that became None or NaN) and the lists whose length a
    member changed are listed instead."""
    recorded = dict(metric_leaves(reference))
    flat = [dict(metric_leaves(m)) for m in members]
    series: dict[str, float] = {}
    varies = []
    for key, b in recorded.items():
        values = [m.get(key, "<missing>") for m in flat]
        if _numeric(b) and all(_numeric(v) for v in values):
            nan = [isinstance(v, float) and math.isnan(v) for v in (b, *values)]
            if all(nan):
                continue
            if any(nan):
                varies.append(key)
                continue
            group = metric_group(key)
            series[group] = max(series.get(group, 0.0), max(abs(v - b) for v in values))
        elif any(v != b for v in values):
            varies.append(key)
    extra = {key for m in flat for key in m} - recorded.keys()
    missing = {key for key in recorded for m in flat if key not in m}
    lists = sorted({key.split("[")[0] + "[" for key in extra | missing if "[" in key})
    return {"series": {group: TOLERANCE_FACTOR * spread for group, spread in sorted(series.items())},
            "varies": sorted(varies), "varying_lists": lists}


def _kernel_tolerances(reference: dict, member_deviations: list[dict]) -> dict:
    tolerances = {}
    for name in member_deviations[0]:
        entry = {}
        for kind in member_deviations[0][name]:
            values = [d[name][kind] for d in member_deviations]
            if kind == "diverges_at_ms":  # None: no member diverged (the whole run is compared spike by spike)
                earliest = min(values)
                entry["exact_until_ms"] = earliest / 2 if math.isfinite(earliest) else None
                entry["ensemble_first_divergence_ms"] = [v if math.isfinite(v) else None for v in sorted(values)]
            else:
                floor = FLOORS["l1" if kind == "rate_l1" else kind]
                entry[kind] = max(TOLERANCE_FACTOR * max(values), floor)
                entry[f"ensemble_{kind}"] = [float(f"{v:.3g}") for v in values]
        tolerances[name] = entry
    return tolerances


def write_record(why: str) -> dict:
    """Run every case and its ensemble; write ``record.json``, the metrics and the arrays."""
    record = {"environment": environment(), "note": why, "ensemble": list(ENSEMBLE),
              "tolerance_factor": TOLERANCE_FACTOR, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            folder = run_case(name, Path(tmp) / "reference")
            summary, arrays = summarize(folder / "run.h5")
            metrics = metrics_without_wall_time(folder)
            member_deviations, member_metrics = [], []
            for member in ENSEMBLE:
                other = run_case(name, Path(tmp) / f"member{member}", perturbation=member)
                if content_sha256(other / "run.h5") == content_sha256(folder / "run.h5"):
                    raise RuntimeError(f"{name}: ensemble member {member} is the reference run: the perturbation "
                                       "did not reach the kernels")
                member_deviations.append(deviations(*summarize(other / "run.h5"), summary, arrays))
                member_metrics.append(metrics_without_wall_time(other))
            case = {"run_h5_sha256": file_sha256(folder / "run.h5"),
                    "run_h5_content_sha256": content_sha256(folder / "run.h5"),
                    **summary, "tolerances": _kernel_tolerances(summary, member_deviations)}
            record["cases"][name] = case
            (DATA / f"{name}.metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
            (DATA / f"{name}.metrics_tolerances.json").write_text(
                json.dumps(_metric_tolerances(metrics, member_metrics), indent=0, sort_keys=True) + "\n")
            kept = _cut_spikes(arrays, {"tolerances": _cap_exact_window(case["tolerances"], arrays)})
            np.savez_compressed(DATA / f"{name}.reference.npz", **kept)
    RECORD.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return record


MAX_EXACT_SPIKES = 20_000
"""The record keeps the spikes compared one by one (those before ``exact_until_ms``), at most this many."""


def _cap_exact_window(tolerances: dict, arrays: dict) -> dict:
    """Cut each spike train's ``exact_until_ms`` to where the record's first
    :data:`MAX_EXACT_SPIKES` spikes end (the rest is compared by its summaries)."""
    for name, tolerance in tolerances.items():
        if name.endswith("/timestamps"):
            times = arrays[name.rsplit("/", 1)[0] + "/times"]
            if times.size > MAX_EXACT_SPIKES:
                tolerance["exact_until_ms"] = min(_exact_until(tolerance), float(np.sort(times)[MAX_EXACT_SPIKES]))
    return tolerances


def load_record() -> dict:
    return json.loads(RECORD.read_text())


def load_reference_arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"{name}.reference.npz") as data:
        return {key: data[key] for key in data.files}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.guard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write a new record (runs the ensemble too)")
    parser.add_argument("--why", default=None, help="why the guarded files change (required with --write)")
    args = parser.parse_args(argv)
    if args.write and not args.why:
        parser.error("argument --why: say why the guarded files change")
    if args.write:
        record = write_record(args.why)
        print(json.dumps({name: case["tolerances"] for name, case in record["cases"].items()}, indent=1))
        return 0
    record = load_record()
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            folder = run_case(name, Path(tmp))
            same = content_sha256(folder / "run.h5") == record["cases"][name]["run_h5_content_sha256"]
            print(f"{name}: run file content {'identical to' if same else 'differs from'} the record")
    print(json.dumps({"recorded": record["environment"], "here": environment()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
