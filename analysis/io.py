"""Load a run folder or run file written by :mod:`reservoir.recording`."""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from reservoir.recording import FileFormatError, check_format, open_hdf5


@dataclass
class Run:
    """The contents of one ``run.h5`` (everything loaded into memory)."""

    path: Path
    format_version: int
    attributes: dict
    config: dict
    dt_ms: float
    steps_completed: int
    population: str
    spike_times_ms: np.ndarray
    spike_ids: np.ndarray
    n_neurons: int
    trace_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    trace_time_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trace_v: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    trace_u: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    neurons: dict = field(default_factory=dict)
    unit_names: list = field(default_factory=list)
    readout_groups: dict = field(default_factory=dict)
    output_time_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    outputs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    snapshot_time_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tables: dict = field(default_factory=dict)

    def weight_snapshots(self) -> np.ndarray:
        """All readout weight snapshots ``(n_snapshots, K, F)`` (read on demand: they can be large)."""
        with open_hdf5(self.path, "r") as f:
            return f["readouts/weights"][()] if "readouts" in f else np.zeros((0, 0, 0))

    @property
    def output_dt_ms(self) -> float:
        return float(np.median(np.diff(self.output_time_ms))) if self.output_time_ms.size > 1 else self.dt_ms

    @property
    def duration_ms(self) -> float:
        return self.steps_completed * self.dt_ms

    @property
    def is_excitatory(self) -> np.ndarray:
        return np.asarray(self.neurons.get("is_excitatory", np.ones(self.n_neurons, dtype=bool)), dtype=bool)


def _run_file(path) -> Path:
    path = Path(path)
    return path / "run.h5" if path.is_dir() else path


def load_run(path) -> Run:
    """Load ``path`` (a run folder or its ``run.h5``).

    Raises :class:`~reservoir.recording.FileFormatError` (naming the file and what is wrong)
    for a file that is not HDF5, is truncated, is another program's HDF5 file, lacks a part of
    the layout, or was written in an unsupported format version. A run that stopped early
    (``status`` failed or interrupted) loads: what it wrote is valid up to ``steps_completed``.
    """
    file = _run_file(path)
    if not file.exists():
        raise FileNotFoundError(f"no run file at {file}")
    with open_hdf5(file, "r") as f:
        version = check_format(f, file)
        try:
            return _read(f, file, version)
        except (KeyError, OSError, StopIteration) as error:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error


def _read(f: h5py.File, file: Path, version: int) -> Run:
    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    config = tomllib.loads(attrs.get("config_toml", "")) if "config_toml" in attrs else {}
    population = next(iter(f["spikes"].keys()))
    spikes = f[f"spikes/{population}"]
    neurons = {name: ds[()] for name, ds in f["network/neurons"].items()} if "network/neurons" in f else {}
    n_neurons = int(f["network"].attrs["n_neurons"]) if "network" in f else int(config.get("network", {}).get("n_neurons", 0))
    traces = f["traces"]
    readouts = {}
    if "readouts" in f:
        r = f["readouts"]
        readouts = dict(
            unit_names=json.loads(r.attrs["unit_names"]), readout_groups=json.loads(r.attrs["groups"]),
            output_time_ms=r["output_time_ms"][()], outputs=r["output"][()],
            snapshot_time_ms=r["snapshot_time_ms"][()])
    tables = {name: {col: ds[()] for col, ds in group.items()} for name, group in f["task"].items()} \
        if "task" in f else {}
    return Run(
        path=file, format_version=version, attributes=attrs, config=config, dt_ms=float(attrs["dt_ms"]),
        steps_completed=int(attrs["steps_completed"]), population=population,
        spike_times_ms=spikes["timestamps"][()], spike_ids=spikes["node_ids"][()].astype(np.int64),
        n_neurons=n_neurons, trace_ids=traces["node_ids"][()], trace_time_ms=traces["time_ms"][()],
        trace_v=traces["v"][()], trace_u=traces["u"][()], neurons=neurons, tables=tables, **readouts,
    )


def load_metrics(path) -> dict:
    """The ``metrics.json`` of a run folder."""
    return json.loads((Path(path) / "metrics.json").read_text())


def _first_at_or_after(dataset: h5py.Dataset, value: float) -> int:
    """Index of the first entry >= ``value`` of a sorted 1-D dataset, by bisection (about
    ``log2(n)`` single-element reads, not the whole dataset)."""
    lo, hi = 0, dataset.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if dataset[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def read_spikes(path, t_start_ms: float = 0.0, t_stop_ms: float | None = None,
                neurons=None) -> tuple[np.ndarray, np.ndarray]:
    """The spikes of a run with ``t_start_ms <= time < t_stop_ms`` (default: to the end), of the
    given ``neurons`` (default: all), as ``(times_ms, ids)``, reading only that time window of
    the file: spikes are stored sorted by time, so the window's ends are found by bisection and
    only the rows between them are read (a window of a long run costs what the window holds)."""
    file = _run_file(path)
    if not file.exists():
        raise FileNotFoundError(f"no run file at {file}")
    with open_hdf5(file, "r") as f:
        check_format(f, file)
        try:
            population = next(iter(f["spikes"].keys()))
            spikes = f[f"spikes/{population}"]
            timestamps, node_ids = spikes["timestamps"], spikes["node_ids"]
            lo = _first_at_or_after(timestamps, t_start_ms)
            hi = timestamps.shape[0] if t_stop_ms is None else _first_at_or_after(timestamps, t_stop_ms)
            times = timestamps[lo:max(lo, hi)]
            ids = node_ids[lo:max(lo, hi)].astype(np.int64)
        except (KeyError, OSError, StopIteration) as error:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error
    if neurons is not None:
        keep = np.isin(ids, np.asarray(neurons, dtype=np.int64))
        times, ids = times[keep], ids[keep]
    return times, ids
