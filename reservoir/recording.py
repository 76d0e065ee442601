"""Recorders: where the spikes and state traces of a run go, chunk by chunk.

:class:`RunFileRecorder` streams into the versioned HDF5 run file documented in
``docs/file-format.md`` (spikes in the SONATA layout); memory stays bounded by one chunk.
:class:`MemoryRecorder` keeps everything in RAM (tests, benchmarks, notebooks).
Both expose ``spikes_written`` and ``traces_written`` so a checkpoint can record how much of
the file belongs to the state it saves, and a resumed run truncates back to exactly that.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

FORMAT_NAME = "reservoir-run"
#: Version of the run-file layout. Bump on any incompatible change and document it.
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)


class FileFormatError(RuntimeError):
    """A run file is not a reservoir run file or was written by an unsupported version."""


class MemoryRecorder:
    """Collects spikes (as events) and traces in lists of arrays."""

    def __init__(self, dt_ms: float, trace_ids: np.ndarray | None = None):
        self.dt_ms = dt_ms
        self.trace_ids = np.zeros(0, dtype=np.int64) if trace_ids is None else np.asarray(trace_ids, dtype=np.int64)
        self._steps: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
        self._trace_steps: list[np.ndarray] = []
        self._trace_v: list[np.ndarray] = []
        self._trace_u: list[np.ndarray] = []
        self.spikes_written = 0
        self.traces_written = 0

    def write_spikes(self, steps: np.ndarray, ids: np.ndarray) -> None:
        self._steps.append(steps.copy())
        self._ids.append(ids.copy())
        self.spikes_written += len(steps)

    def write_traces(self, steps: np.ndarray, v: np.ndarray, u: np.ndarray) -> None:
        self._trace_steps.append(steps.copy())
        self._trace_v.append(v.copy())
        self._trace_u.append(u.copy())
        self.traces_written += len(steps)

    @property
    def spike_steps(self) -> np.ndarray:
        return np.concatenate(self._steps) if self._steps else np.zeros(0, dtype=np.int64)

    @property
    def spike_ids(self) -> np.ndarray:
        return np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int32)

    @property
    def spike_times_ms(self) -> np.ndarray:
        return self.spike_steps * self.dt_ms

    @property
    def trace_steps(self) -> np.ndarray:
        return np.concatenate(self._trace_steps) if self._trace_steps else np.zeros(0, dtype=np.int64)

    @property
    def trace_v(self) -> np.ndarray:
        return np.concatenate(self._trace_v) if self._trace_v else np.zeros((0, len(self.trace_ids)))

    @property
    def trace_u(self) -> np.ndarray:
        return np.concatenate(self._trace_u) if self._trace_u else np.zeros((0, len(self.trace_ids)))

    def mark(self, status: str, message: str = "", steps_completed: int | None = None) -> None:
        self.status, self.message = status, message

    def close(self) -> None:
        pass


def _appendable(group: h5py.Group, name: str, dtype, width: int | None = None, chunk_rows: int = 65536):
    if width is None:
        shape, maxshape, chunks = (0,), (None,), (chunk_rows,)
    else:  # an empty trace table (no traced neurons) still needs a valid chunk shape
        shape, maxshape = (0, width), (None, width if width else None)
        chunks = (max(1, min(chunk_rows, 65536 // max(width, 1))), max(width, 1))
    return group.create_dataset(name, shape=shape, maxshape=maxshape, dtype=dtype, chunks=chunks, track_times=False)


def _append(dataset: h5py.Dataset, values: np.ndarray) -> None:
    start = dataset.shape[0]
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values


class RunFileRecorder:
    """Streams a run into ``run.h5`` (layout version :data:`FORMAT_VERSION`).

    Parameters
    ----------
    path : path-like
        The run file. With ``resume`` it must exist and is truncated back to the given counts.
    dt_ms : float
        Step size; spike timestamps are ``step * dt_ms`` in ms.
    population : str
        SONATA population name of the reservoir's spikes.
    trace_ids : array of int
        Neurons whose ``v``/``u`` are traced.
    trace_every_steps : int
        Trace decimation.
    attributes : dict
        Stored as root attributes (config TOML, seed, preset...).
    network : Network, optional
        If given, its parameters (and, with ``store_connectivity``, its weights) are stored.
    resume : tuple (spikes_written, traces_written), optional
        Reopen an existing file and drop everything written after those counts.
    record_spikes : bool
        With False the spike datasets stay empty (traces and network are still written).
    """

    def __init__(self, path, dt_ms: float, population: str = "reservoir", trace_ids=None,
                 trace_every_steps: int = 1, attributes: dict | None = None, network=None,
                 store_connectivity: bool = True, resume: tuple[int, int] | None = None,
                 record_spikes: bool = True):
        self.path = Path(path)
        self.record_spikes = record_spikes
        self.dt_ms = float(dt_ms)
        self.population = population
        self.trace_ids = np.zeros(0, dtype=np.int64) if trace_ids is None else np.asarray(trace_ids, dtype=np.int64)
        if resume is not None:
            self._reopen(resume)
            return
        self.file = h5py.File(self.path, "w", track_order=True)
        f = self.file
        f.attrs["format_name"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        from . import __version__

        f.attrs["writer"] = f"reservoir {__version__}"
        f.attrs["dt_ms"] = self.dt_ms
        f.attrs["status"] = "running"
        f.attrs["steps_completed"] = 0
        for key, value in (attributes or {}).items():
            f.attrs[key] = value
        spikes = f.create_group(f"spikes/{population}")
        spikes.attrs["sorting"] = "by_time"
        self._timestamps = _appendable(spikes, "timestamps", np.float64)
        self._timestamps.attrs["units"] = "ms"
        self._node_ids = _appendable(spikes, "node_ids", np.uint64)
        traces = f.create_group("traces")
        traces.attrs["every_steps"] = int(trace_every_steps)
        traces.create_dataset("node_ids", data=self.trace_ids, track_times=False)
        width = len(self.trace_ids)
        self._trace_step = _appendable(traces, "step", np.int64)
        self._trace_time = _appendable(traces, "time_ms", np.float64)
        self._trace_time.attrs["units"] = "ms"
        self._trace_v = _appendable(traces, "v", np.float64, width)
        self._trace_v.attrs["units"] = "mV"
        self._trace_u = _appendable(traces, "u", np.float64, width)
        if network is not None:
            self._store_network(network, store_connectivity)
        self.spikes_written = 0
        self.traces_written = 0
        f.flush()

    def _store_network(self, network, store_connectivity: bool) -> None:
        g = self.file.create_group("network")
        g.attrs["n_neurons"] = network.n_neurons
        g.attrs["neuron_model"] = network.neurons.model
        g.attrs["scheme"] = network.scheme
        g.attrs["synapse"] = json.dumps(network.synapse.__dict__)
        neurons = g.create_group("neurons")
        for name, values in network.neurons.as_arrays().items():
            neurons.create_dataset(name, data=values, track_times=False)
        neurons.create_dataset("noise_std", data=network.noise_std, track_times=False)
        neurons.create_dataset("bias", data=network.bias, track_times=False)
        if store_connectivity:
            c = g.create_group("connectivity")
            c.attrs["layout"] = "csr_by_presynaptic"
            for name in ("indptr", "indices", "weights"):
                c.create_dataset(name, data=getattr(network.connectivity, name), track_times=False)

    def _reopen(self, counts: tuple[int, int]) -> None:
        self.file = h5py.File(self.path, "r+")
        check_format(self.file, self.path)
        spikes = self.file[f"spikes/{self.population}"]
        self._timestamps, self._node_ids = spikes["timestamps"], spikes["node_ids"]
        t = self.file["traces"]
        self._trace_step, self._trace_time, self._trace_v, self._trace_u = t["step"], t["time_ms"], t["v"], t["u"]
        self.spikes_written, self.traces_written = counts
        if self._timestamps.shape[0] < counts[0] or self._trace_step.shape[0] < counts[1]:
            raise FileFormatError(f"{self.path} holds fewer records than the checkpoint expects; "
                                  "it is not the run file this checkpoint belongs to")
        for ds in (self._timestamps, self._node_ids):
            ds.resize(counts[0], axis=0)
        for ds in (self._trace_step, self._trace_time, self._trace_v, self._trace_u):
            ds.resize(counts[1], axis=0)
        self.file.attrs["status"] = "running"

    def write_spikes(self, steps: np.ndarray, ids: np.ndarray) -> None:
        if len(steps) and self.record_spikes:
            _append(self._timestamps, steps * self.dt_ms)
            _append(self._node_ids, ids.astype(np.uint64))
            self.spikes_written += len(steps)

    def write_traces(self, steps: np.ndarray, v: np.ndarray, u: np.ndarray) -> None:
        if len(steps):
            _append(self._trace_step, steps)
            _append(self._trace_time, steps * self.dt_ms)
            _append(self._trace_v, v)
            _append(self._trace_u, u)
            self.traces_written += len(steps)

    def mark(self, status: str, message: str = "", steps_completed: int | None = None) -> None:
        """Set the file's status (``running``, ``complete``, ``failed``) and flush."""
        self.file.attrs["status"] = status
        self.file.attrs["message"] = message
        if steps_completed is not None:
            self.file.attrs["steps_completed"] = steps_completed
        self.file.flush()

    def close(self) -> None:
        if self.file.id.valid:
            self.file.close()


def check_format(f: h5py.File, path) -> int:
    """Return the format version of an open run file or raise :class:`FileFormatError`."""
    if f.attrs.get("format_name") != FORMAT_NAME:
        raise FileFormatError(f"{path} is not a reservoir run file (no format_name={FORMAT_NAME!r})")
    version = int(f.attrs.get("format_version", -1))
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise FileFormatError(
            f"{path} was written by {f.attrs.get('writer', 'an unknown writer')} in run-file format "
            f"version {version}; this reservoir reads versions {list(SUPPORTED_FORMAT_VERSIONS)}")
    return version
