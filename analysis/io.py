"""Load a run folder or run file written by :mod:`reservoir.recording`."""
from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from reservoir.recording import FileFormatError, check_format, open_hdf5


#: Rows a whole-run pass reads at a time (:meth:`Run.spike_blocks`): 2 MiB of float64 times and
#: 1 MiB of uint32 ids, so a pass over a run of any length holds a few MiB of spikes (larger
#: blocks read no faster, and leave more freed memory in the process after the pass).
SPIKE_BLOCK_ROWS = 1 << 18


@dataclass
class Run:
    """The contents of one ``run.h5``, everything loaded into memory (:func:`load_run`); a
    :class:`LazyRun` (``load_run(path, lazy_spikes=True)``) leaves the spikes in the file.

    Analyses that need part of the spikes ask for it by window (:meth:`spikes_between`) or walk
    the run block by block (:meth:`spike_blocks`), which works on both kinds of run.
    ``derived`` keeps results computed from the run by analyses, for reuse (e.g.
    :func:`analysis.geometry.feature_pca`); a run is a read-only view of a finished file.
    """

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
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def weight_snapshots(self) -> np.ndarray:
        """All readout weight snapshots ``(n_snapshots, K, F)`` (read on demand: they can be large)."""
        with open_hdf5(self.path, "r") as f:
            return f["readouts/weights"][()] if "readouts" in f else np.zeros((0, 0, 0))

    @property
    def spikes_in_memory(self) -> bool:
        """True when ``spike_times_ms`` and ``spike_ids`` are loaded (always, for a plain :class:`Run`)."""
        return True

    @property
    def n_spikes(self) -> int:
        """Number of spikes in the run (without reading them, for a :class:`LazyRun`)."""
        return int(self.spike_ids.size)

    def spikes_between(self, t_start_ms: float = 0.0, t_stop_ms: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(times_ms, ids)`` (float64, int64) of the spikes with ``t_start_ms <= time < t_stop_ms``
        (default: to the end), in the run's order."""
        times = self.spike_times_ms
        keep = times >= t_start_ms
        if t_stop_ms is not None:
            keep &= times < t_stop_ms
        return times[keep], self.spike_ids[keep]

    def spike_blocks(self, block_rows: int = SPIKE_BLOCK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The spikes as consecutive ``(times_ms, ids)`` blocks of at most ``block_rows`` rows, in the
        run's (time) order: one pass over the whole run (counts, histograms) that holds one block
        at a time when the spikes are in the file (ids keep the file's integer dtype then)."""
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        for start in range(0, self.n_spikes, block_rows):
            yield self.spike_times_ms[start:start + block_rows], self.spike_ids[start:start + block_rows]

    @property
    def output_dt_ms(self) -> float:
        return float(np.median(np.diff(self.output_time_ms))) if self.output_time_ms.size > 1 else self.dt_ms

    @property
    def duration_ms(self) -> float:
        return self.steps_completed * self.dt_ms

    @property
    def is_excitatory(self) -> np.ndarray:
        return np.asarray(self.neurons.get("is_excitatory", np.ones(self.n_neurons, dtype=bool)), dtype=bool)


class LazyRun(Run):
    """A :class:`Run` whose spikes stay in the run file (``load_run(path, lazy_spikes=True)``):
    :meth:`spikes_between` reads only the rows of its window (found by bisection of the sorted
    time column) and :meth:`spike_blocks` one block of rows at a time, so an analysis of a long
    run holds a window or a block of its spikes, never all of them. Everything else is loaded as
    by :func:`load_run`. ``spike_times_ms`` and ``spike_ids`` still work: the first access reads
    the whole columns (as :func:`load_run` does, ids as int64) and keeps them."""

    def __init__(self, *, n_spikes: int, **fields):
        super().__init__(spike_times_ms=None, spike_ids=None, **fields)
        self._n_spikes_in_file = int(n_spikes)

    @property
    def spike_times_ms(self) -> np.ndarray:
        if self._spike_times_ms is None:
            self._load_spikes()
        return self._spike_times_ms

    @spike_times_ms.setter
    def spike_times_ms(self, value) -> None:
        self._spike_times_ms = value

    @property
    def spike_ids(self) -> np.ndarray:
        if self._spike_ids is None:
            self._load_spikes()
        return self._spike_ids

    @spike_ids.setter
    def spike_ids(self, value) -> None:
        self._spike_ids = value

    def _load_spikes(self) -> None:
        with SpikeFile(self.path) as spikes:
            self._spike_times_ms, self._spike_ids = spikes.read_all()

    @property
    def spikes_in_memory(self) -> bool:
        return self._spike_times_ms is not None and self._spike_ids is not None

    @property
    def n_spikes(self) -> int:
        return super().n_spikes if self.spikes_in_memory else self._n_spikes_in_file

    def spikes_between(self, t_start_ms: float = 0.0, t_stop_ms: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.spikes_in_memory:
            return super().spikes_between(t_start_ms, t_stop_ms)
        with SpikeFile(self.path) as spikes:
            return spikes.between(t_start_ms, t_stop_ms)

    def spike_blocks(self, block_rows: int = SPIKE_BLOCK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.spikes_in_memory:
            yield from super().spike_blocks(block_rows)
            return
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        with SpikeFile(self.path) as spikes:
            yield from spikes.blocks(block_rows)

    def __repr__(self) -> str:  # the dataclass repr would read every spike
        where = "in memory" if self.spikes_in_memory else "in the file"
        return (f"LazyRun(path={str(self.path)!r}, n_neurons={self.n_neurons}, duration_ms={self.duration_ms:g}, "
                f"n_spikes={self.n_spikes} ({where}))")


class SpikeFile:
    """The spike columns of a run file, held open for reading windows and blocks of rows (a
    context manager; :meth:`close` when done). Spikes are stored sorted by time, so a window's
    ends are found by bisection of the time column and only its rows are read. Errors of a
    damaged file raise :class:`~reservoir.recording.FileFormatError` naming it."""

    def __init__(self, path):
        self.file, self._f = _open_run(path)
        try:
            population = next(iter(self._f["spikes"].keys()))
            self._times = self._f[f"spikes/{population}/timestamps"]
            self._ids = self._f[f"spikes/{population}/node_ids"]
        except (KeyError, OSError, StopIteration) as error:
            self._f.close()
            raise FileFormatError(f"{self.file} is a damaged reservoir run file: {error}") from error
        self.n_spikes = int(self._times.shape[0])

    def __enter__(self) -> "SpikeFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def _damaged(self, error: Exception) -> FileFormatError:
        return FileFormatError(f"{self.file} is a damaged reservoir run file: {error}")

    def between(self, t_start_ms: float = 0.0, t_stop_ms: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(times_ms, ids)`` (float64, int64) of the rows with ``t_start_ms <= time < t_stop_ms``
        (default: to the end)."""
        try:
            rows = _window(self._times, t_start_ms, t_stop_ms)
            return self._times[rows], self._ids[rows].astype(np.int64)
        except OSError as error:
            raise self._damaged(error) from error

    def blocks(self, block_rows: int = SPIKE_BLOCK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Consecutive ``(times_ms, ids)`` blocks of at most ``block_rows`` rows (ids in the file's
        dtype); each block is a new pair of arrays."""
        for start in range(0, self.n_spikes, block_rows):
            rows = slice(start, min(start + block_rows, self.n_spikes))
            try:
                yield self._times[rows], self._ids[rows]
            except OSError as error:
                raise self._damaged(error) from error

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole columns: ``(times_ms, ids)`` (float64, int64)."""
        try:
            return self._times[()], self._ids[()].astype(np.int64)
        except OSError as error:
            raise self._damaged(error) from error


def _run_file(path) -> Path:
    path = Path(path)
    return path / "run.h5" if path.is_dir() else path


def load_run(path, lazy_spikes: bool = False) -> Run:
    """Load ``path`` (a run folder or its ``run.h5``).

    With ``lazy_spikes=True`` the spikes stay in the file and a :class:`LazyRun` reads them by
    window or block when an analysis asks (the rest is loaded): what a long run's analysis
    needs when it must not hold all its spikes at once (``reservoir run`` computes its metrics
    and figures so). The damage checks below then cover the spikes only as they are read.

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
            return _read(f, file, version, lazy_spikes)
        except (KeyError, OSError, StopIteration) as error:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error


def _read(f: h5py.File, file: Path, version: int, lazy_spikes: bool = False) -> Run:
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
    fields = dict(
        path=file, format_version=version, attributes=attrs, config=config, dt_ms=float(attrs["dt_ms"]),
        steps_completed=int(attrs["steps_completed"]), population=population, n_neurons=n_neurons,
        trace_ids=traces["node_ids"][()], trace_time_ms=traces["time_ms"][()], trace_v=traces["v"][()],
        trace_u=traces["u"][()], neurons=neurons, tables=tables, **readouts,
    )
    if lazy_spikes:
        if spikes["node_ids"].shape != spikes["timestamps"].shape:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {spikes['node_ids'].shape[0]} spike ids "
                                  f"for {spikes['timestamps'].shape[0]} spike times")
        return LazyRun(n_spikes=spikes["timestamps"].shape[0], **fields)
    return Run(spike_times_ms=spikes["timestamps"][()], spike_ids=spikes["node_ids"][()].astype(np.int64), **fields)


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


def _open_run(path):
    """The run file of ``path`` (a folder or its ``run.h5``) opened for reading, its format checked."""
    file = _run_file(path)
    if not file.exists():
        raise FileNotFoundError(f"no run file at {file}")
    f = open_hdf5(file, "r")
    try:
        check_format(f, file)
    except BaseException:
        f.close()
        raise
    return file, f


def _window(times: h5py.Dataset, t_start_ms: float, t_stop_ms: float | None) -> slice:
    """The rows of a sorted time dataset with ``t_start_ms <= t < t_stop_ms``, by bisection."""
    lo = _first_at_or_after(times, t_start_ms)
    hi = times.shape[0] if t_stop_ms is None else _first_at_or_after(times, t_stop_ms)
    return slice(lo, max(lo, hi))


def read_spikes(path, t_start_ms: float = 0.0, t_stop_ms: float | None = None,
                neurons=None) -> tuple[np.ndarray, np.ndarray]:
    """The spikes of a run with ``t_start_ms <= time < t_stop_ms`` (default: to the end), of the
    given ``neurons`` (default: all), as ``(times_ms, ids)`` (float64, int64 whatever the file's
    node-id dtype), reading only that time window of the file: spikes are stored sorted by time,
    so the window's ends are found by bisection and only the rows between them are read (a
    window of a long run costs what the window holds, plus the chunks the bisection touches).
    Many windows of one run: keep a :class:`SpikeFile` open (the bisection's chunks stay cached)."""
    with SpikeFile(path) as spikes:
        times, ids = spikes.between(t_start_ms, t_stop_ms)
    if neurons is not None:
        keep = np.isin(ids, np.asarray(neurons, dtype=np.int64))
        times, ids = times[keep], ids[keep]
    return times, ids


def _unit_columns(readouts: h5py.Group, units) -> np.ndarray | None:
    """Column indices of ``units``: ints, unit names (``"what[1]"``) or group names (all their
    units), in the order given; None for all."""
    if units is None:
        return None
    if isinstance(units, (str, int, np.integer)):
        units = [units]
    names = json.loads(readouts.attrs["unit_names"])
    groups = json.loads(readouts.attrs["groups"])
    columns: list[int] = []
    for unit in units:
        if isinstance(unit, (int, np.integer)):
            if not -len(names) <= unit < len(names):
                raise ValueError(f"readout column {unit} out of range: the run has {len(names)} units")
            columns.append(int(unit) % len(names))
        elif unit in groups:
            columns.extend(range(*groups[unit]))
        elif unit in names:
            columns.append(names.index(unit))
        else:
            raise ValueError(f"no readout unit or group {unit!r}; units: {names}, groups: {list(groups)}")
    return np.asarray(columns, dtype=np.int64)


def read_outputs(path, t_start_ms: float = 0.0, t_stop_ms: float | None = None,
                 columns=None) -> tuple[np.ndarray, np.ndarray]:
    """The readout outputs recorded at ``t_start_ms <= time < t_stop_ms`` (default: to the end),
    as ``(time_ms, outputs)`` with ``outputs`` of shape ``(n, len(columns))`` (all units by
    default). ``columns``: unit indices, unit names (``"when[0]"``) or group names (``"what"``:
    all its units). Only the window's rows are read (bisection of ``output_time_ms``, as
    :func:`read_spikes`). A run without readouts raises ``ValueError``."""
    file, f = _open_run(path)
    with f:
        if "readouts" not in f:
            raise ValueError(f"{file} has no readouts")
        try:
            r = f["readouts"]
            picked = _unit_columns(r, columns)
            rows = _window(r["output_time_ms"], t_start_ms, t_stop_ms)
            time_ms = r["output_time_ms"][rows]
            outputs = r["output"][rows]
        except (KeyError, OSError) as error:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error
    return time_ms, (outputs if picked is None else outputs[:, picked])


def read_traces(path, t_start_ms: float = 0.0, t_stop_ms: float | None = None,
                neurons=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The traced state at ``t_start_ms <= time < t_stop_ms`` (default: to the end), as
    ``(time_ms, v, u)`` with ``v``, ``u`` of shape ``(n, len(neurons))``, for ``neurons`` (ids
    among the traced ones, in the order given; default: all traced neurons). Only the window's
    rows are read (bisection of ``traces/time_ms``). A neuron that was not traced raises
    ``ValueError``."""
    file, f = _open_run(path)
    with f:
        try:
            traces = f["traces"]
            traced = traces["node_ids"][()].astype(np.int64)
            picked = None
            if neurons is not None:
                wanted = np.atleast_1d(np.asarray(neurons, dtype=np.int64))
                missing = wanted[~np.isin(wanted, traced)]
                if missing.size:
                    raise ValueError(f"neurons {missing.tolist()} were not traced (traced: {traced.tolist()})")
                position = {int(n): i for i, n in enumerate(traced)}
                picked = np.array([position[int(n)] for n in wanted], dtype=np.int64)
            rows = _window(traces["time_ms"], t_start_ms, t_stop_ms)
            time_ms, v, u = traces["time_ms"][rows], traces["v"][rows], traces["u"][rows]
        except (KeyError, OSError) as error:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error
    if picked is not None:
        v, u = v[:, picked], u[:, picked]
    return time_ms, v, u


def read_weight_snapshots(path, indices=None, units=None) -> tuple[np.ndarray, np.ndarray]:
    """Readout weight snapshots as ``(time_ms, weights)``, ``weights`` of shape ``(s, k, F)``:
    the snapshots ``indices`` (None: all; an int, a slice, or a sequence of ints, in the order
    given) of the ``units`` (as ``columns`` of :func:`read_outputs`; None: all). Each snapshot
    is its own HDF5 chunk, so only the snapshots asked for are read. A run without readouts
    raises ``ValueError``."""
    file, f = _open_run(path)
    with f:
        if "readouts" not in f:
            raise ValueError(f"{file} has no readouts")
        try:
            r = f["readouts"]
            picked = _unit_columns(r, units)
            weights, times = r["weights"], r["snapshot_time_ms"]
            n = weights.shape[0]
            if indices is None:
                indices = slice(None)
            if isinstance(indices, slice) and indices.indices(n)[2] == 1:  # one contiguous read
                start, stop, _ = indices.indices(n)
                rows = slice(start, max(start, stop))
                time_ms, values = times[rows], weights[rows]
            else:
                rows = (np.arange(n)[indices] if isinstance(indices, slice)
                        else np.atleast_1d(np.asarray(indices, dtype=np.int64)))
                if rows.size and (rows.min() < -n or rows.max() >= n):
                    raise ValueError(f"snapshot index out of range: the run has {n} snapshots")
                rows = rows % max(n, 1)
                time_ms = np.array([times[i] for i in rows], dtype=times.dtype)
                values = (np.stack([weights[i] for i in rows]) if rows.size
                          else np.zeros((0, *weights.shape[1:]), dtype=weights.dtype))
        except (KeyError, OSError) as error:
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error
    return time_ms, (values if picked is None else values[:, picked])
