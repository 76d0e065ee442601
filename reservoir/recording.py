"""Recorders: where the spikes, state traces, readout outputs and weight snapshots of a run go.

:class:`RunFileRecorder` streams into the versioned HDF5 run file documented in
``docs/file-format.md`` (spikes in the SONATA layout), one append per chunk, so memory stays
bounded by one chunk. While the run goes its growing datasets are stored uncompressed (chunks
written in place: what a flush wrote stays valid whatever happens to the process later); when
the run completes, the file is rewritten compressed (:func:`compress_run_file`, gzip with the
shuffle filter) and renamed over the original. :class:`MemoryRecorder` keeps everything in RAM (tests, benchmarks,
notebooks). Both count what they wrote per stream (``counts()``), so a checkpoint can record
how much of the file belongs to the state it saves and a resumed run truncates back to exactly
that.
"""
from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np

from . import __version__

FORMAT_NAME = "reservoir-run"
#: Version of the run-file layout. Bump on any incompatible change and document it.
#: Version 2: spike node ids uint32 (were uint64); a complete run's datasets compressed
#: (gzip + shuffle), growing datasets in chunks of :data:`CHUNK_BYTES`.
FORMAT_VERSION = 2
SUPPORTED_FORMAT_VERSIONS = (1, 2)
STREAMS = ("spikes", "traces", "outputs", "snapshots")


class FileFormatError(RuntimeError):
    """A run file or checkpoint is not what it should be: not HDF5, truncated, foreign (another
    program's file) or written by an unsupported version. The message names the file."""


class DiskFullError(OSError):
    """The next write would not fit: the disk is (nearly) full, or the process's file-size
    limit is reached. Raised before writing, so the file stays whole and can be closed."""


#: Room kept free for HDF5's own metadata (object headers, B-tree nodes) besides the raw data.
METADATA_ROOM_BYTES = 1 << 16


def writable_room_bytes(path) -> int:
    """Bytes that can still be written to ``path``: the free space of its disk, capped by the
    process's file-size limit (``RLIMIT_FSIZE``) less the file's present size."""
    path = Path(path)
    anchor = path if path.exists() else path.parent
    room = shutil.disk_usage(anchor).free
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        room = min(room, soft - (path.stat().st_size if path.is_file() else 0))
    return room


def ensure_room(path, needed_bytes: int) -> None:
    """Raise :class:`DiskFullError` (errno ENOSPC) if ``needed_bytes`` (plus room for metadata)
    cannot be written to ``path``."""
    needed = int(needed_bytes) + METADATA_ROOM_BYTES
    room = writable_room_bytes(path)
    if room < needed:
        raise DiskFullError(errno.ENOSPC, f"no space left for {path}: {max(room, 0)} bytes can still be written "
                                          f"(free disk space, or the file-size limit), the next write needs {needed}")


#: HDF5's raw-chunk cache per dataset of a run file being written. With HDF5's default (1 MiB,
#: room for two of the format-1 recorder's 512 KiB chunks) a growing file's process kept growing
#: by some 30-40 MiB before it levelled off; with 4 MiB it grows by under 5
#: (benchmarks/bench_memory.py).
CHUNK_CACHE_BYTES = 4 << 20

#: Bytes of one chunk of a growing dataset (format 1: 512 KiB). Small enough that a window of a
#: long run decompresses little besides the window (a 1 s window of the default run's spikes
#: spans a few chunks), large enough that compression loses almost nothing to chunking.
CHUNK_BYTES = 1 << 16

#: HDF5 filters of a complete run file's datasets: the shuffle filter, then gzip (deflate),
#: standard filters every HDF5 reader has. Lossless; deterministic (same data, same bytes).
#: Level 1: level 4 saves some 7 % of the file for half again the compression time.
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}

#: Spike node ids: uint32 (format 1: uint64) - the engine's neuron indices are 32-bit.
NODE_ID_DTYPE = np.uint32

#: Datasets written whole before the run (network parameters, connectivity, encoders, task
#: tables) are compressed by :func:`compress_run_file` from this size on, in chunks of about
#: 64 KiB; smaller ones stay contiguous (a chunk index would outweigh what they save).
COMPRESS_FIXED_FROM_BYTES = 4096

#: Rows copied at a time by :func:`compress_run_file` are at most about this many bytes (the
#: memory it needs does not grow with the run).
COPY_BLOCK_BYTES = 4 << 20


def open_hdf5(path, mode: str = "r", what: str = "run file", **options) -> h5py.File:
    """``h5py.File(path, mode)``, with HDF5's own errors for a damaged file turned into a
    :class:`FileFormatError` that names the file and says what is wrong."""
    path = Path(path)
    try:
        return h5py.File(path, mode, **options)
    except FileNotFoundError:
        raise
    except OSError as error:
        size = path.stat().st_size if path.exists() else 0
        text = str(error)
        if "truncated" in text:
            reason = f"it is truncated ({size} bytes on disk; {text})"
        elif "signature" in text or size == 0:
            reason = f"it is not an HDF5 file ({size} bytes; {text})"
        else:
            reason = f"HDF5 cannot read it ({text})"
        raise FileFormatError(f"{path} cannot be opened as a reservoir {what}: {reason}") from error


class MemoryRecorder:
    """Collects spikes (as events), traces, readout outputs and weight snapshots in memory."""

    def __init__(self, dt_ms: float, trace_ids: np.ndarray | None = None):
        self.dt_ms = dt_ms
        self.trace_ids = np.zeros(0, dtype=np.int64) if trace_ids is None else np.asarray(trace_ids, dtype=np.int64)
        self._parts: dict[str, list[tuple]] = {name: [] for name in STREAMS}
        self._counts = dict.fromkeys(STREAMS, 0)
        self.status, self.message = "running", ""

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def _add(self, stream: str, rows: int, *arrays) -> None:
        if rows:
            self._parts[stream].append(tuple(np.array(a, copy=True) for a in arrays))
            self._counts[stream] += rows

    def write_spikes(self, steps, ids) -> None:
        self._add("spikes", len(steps), steps, ids)

    def write_traces(self, steps, v, u) -> None:
        self._add("traces", len(steps), steps, v, u)

    def write_outputs(self, steps, z) -> None:
        self._add("outputs", len(steps), steps, z)

    def write_snapshot(self, step: int, weights) -> None:
        self._add("snapshots", 1, [step], weights[None])

    def _column(self, stream: str, index: int, empty) -> np.ndarray:
        parts = self._parts[stream]
        return np.concatenate([p[index] for p in parts]) if parts else empty

    spike_steps = property(lambda self: self._column("spikes", 0, np.zeros(0, dtype=np.int64)))
    spike_ids = property(lambda self: self._column("spikes", 1, np.zeros(0, dtype=np.int32)))
    spike_times_ms = property(lambda self: self.spike_steps * self.dt_ms)
    trace_steps = property(lambda self: self._column("traces", 0, np.zeros(0, dtype=np.int64)))
    trace_v = property(lambda self: self._column("traces", 1, np.zeros((0, len(self.trace_ids)))))
    trace_u = property(lambda self: self._column("traces", 2, np.zeros((0, len(self.trace_ids)))))
    output_steps = property(lambda self: self._column("outputs", 0, np.zeros(0, dtype=np.int64)))
    outputs = property(lambda self: self._column("outputs", 1, np.zeros((0, 0))))
    snapshot_steps = property(lambda self: self._column("snapshots", 0, np.zeros(0, dtype=np.int64)))
    snapshots = property(lambda self: self._column("snapshots", 1, np.zeros((0, 0, 0))))

    def mark(self, status: str, message: str = "", steps_completed: int | None = None) -> None:
        self.status, self.message = status, message

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _appendable(group: h5py.Group, name: str, dtype, row_shape: tuple = (), chunk_bytes: int = CHUNK_BYTES):
    """An empty dataset of rows of ``row_shape`` that grows along its first axis, uncompressed
    (until :func:`compress_run_file`), in chunks of about ``chunk_bytes`` (at least one row)."""
    row_size = int(np.prod(row_shape)) if row_shape else 1
    chunk_rows = max(1, min(65536, chunk_bytes // (np.dtype(dtype).itemsize * max(row_size, 1))))
    chunks = (chunk_rows, *[max(d, 1) for d in row_shape])
    maxshape = (None, *[d if d else None for d in row_shape])  # an empty table still needs valid chunks
    return group.create_dataset(name, shape=(0, *row_shape), maxshape=maxshape, dtype=dtype, chunks=chunks,
                                track_times=False)


def _new_chunk_bytes(dataset: h5py.Dataset, rows: int) -> int:
    """An upper bound of the bytes that appending ``rows`` rows to ``dataset`` writes to the file.

    Uncompressed (a running file): the chunks the append allocates (HDF5 allocates whole
    chunks). Compressed (a complete file appended to after a resume): every chunk the append
    touches, the partly filled last one included (HDF5 writes a modified compressed chunk to new
    space), each counted at its uncompressed size - never exceeded: a chunk that deflate cannot
    shrink is stored unfiltered (the filter is optional), and shuffling keeps the size."""
    if rows <= 0:
        return 0
    chunk_rows = dataset.chunks[0]
    start = dataset.shape[0]
    chunk_bytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
    if dataset.compression is None:
        return (-(-(start + rows) // chunk_rows) - -(-start // chunk_rows)) * chunk_bytes
    return ((start + rows - 1) // chunk_rows - start // chunk_rows + 1) * chunk_bytes


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
        Step size; times are ``step * dt_ms`` in ms.
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
    readouts : Readouts, optional
        If given, the ``/readouts`` group is created (outputs, snapshots, unit names, encoders).
    resume : dict of counts, optional
        Reopen an existing file and drop everything written after those counts.
    record_spikes : bool
        With False the spike datasets stay empty (everything else is still written).
    compress : bool
        Rewrite the file compressed when it is closed after being marked ``complete``.
    """

    def __init__(self, path, dt_ms: float, population: str = "reservoir", trace_ids=None,
                 trace_every_steps: int = 1, attributes: dict | None = None, network=None,
                 store_connectivity: bool = True, resume: dict | None = None, record_spikes: bool = True,
                 readouts=None, compress: bool = True):
        self.path = Path(path)
        self.compress = compress
        self.dt_ms = float(dt_ms)
        self.population = population
        self.record_spikes = record_spikes
        self.trace_ids = np.zeros(0, dtype=np.int64) if trace_ids is None else np.asarray(trace_ids, dtype=np.int64)
        if resume is not None:
            self._reopen(resume)
            return
        self.file = f = h5py.File(self.path, "w", track_order=True, rdcc_nbytes=CHUNK_CACHE_BYTES)
        f.attrs["format_name"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["writer"] = f"reservoir {__version__}"
        f.attrs["dt_ms"] = self.dt_ms
        f.attrs["status"] = "running"
        f.attrs["message"] = ""
        f.attrs["steps_completed"] = 0
        for key, value in (attributes or {}).items():
            f.attrs[key] = value
        spikes = f.create_group(f"spikes/{population}")
        spikes.attrs["sorting"] = "by_time"
        _appendable(spikes, "timestamps", np.float64).attrs["units"] = "ms"
        _appendable(spikes, "node_ids", NODE_ID_DTYPE)
        traces = f.create_group("traces")
        traces.attrs["every_steps"] = int(trace_every_steps)
        traces.create_dataset("node_ids", data=self.trace_ids, track_times=False)
        width = len(self.trace_ids)
        _appendable(traces, "step", np.int64)
        _appendable(traces, "time_ms", np.float64).attrs["units"] = "ms"
        _appendable(traces, "v", np.float64, (width,)).attrs["units"] = "mV"
        _appendable(traces, "u", np.float64, (width,))
        if network is not None:
            self._store_network(network, store_connectivity)
        if readouts is not None:
            self._create_readouts(readouts)
        f.flush()
        self._bind()
        self._counts = dict.fromkeys(STREAMS, 0)
        self._pending_bytes = 0

    # streams: name -> datasets that grow together
    def _bind(self) -> None:
        f = self.file
        spikes = f[f"spikes/{self.population}"]
        self._streams = {
            "spikes": [spikes["timestamps"], spikes["node_ids"]],
            "traces": [f["traces/step"], f["traces/time_ms"], f["traces/v"], f["traces/u"]],
        }
        if "readouts" in f:
            r = f["readouts"]
            self._streams["outputs"] = [r["output_step"], r["output_time_ms"], r["output"]]
            self._streams["snapshots"] = [r["snapshot_step"], r["snapshot_time_ms"], r["weights"]]

    def _create_readouts(self, readouts) -> None:
        r = self.file.create_group("readouts")
        r.attrs["unit_names"] = json.dumps(readouts.unit_names)
        r.attrs["groups"] = json.dumps({name: [sl.start, sl.stop] for name, sl in readouts.group_slices.items()})
        r.attrs["n_features"] = readouts.n_features
        r.attrs["output_every_steps"] = readouts.config.output_every_steps
        k, n_features = readouts.n_units, readouts.n_features
        _appendable(r, "output_step", np.int64)
        _appendable(r, "output_time_ms", np.float64).attrs["units"] = "ms"
        _appendable(r, "output", np.float64, (k,))
        _appendable(r, "snapshot_step", np.int64)
        _appendable(r, "snapshot_time_ms", np.float64).attrs["units"] = "ms"
        _appendable(r, "weights", np.float64, (k, n_features), chunk_bytes=1)  # one snapshot per chunk
        r.create_dataset("feedback_encoders", data=readouts.encoders, track_times=False)

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
        slow = getattr(network, "slow_connectivity", None)
        if slow is not None:  # only then: a network without slow synapses writes the group of before
            g.attrs["slow_synapses"] = json.dumps({"kind": "exponential", "tau_ms": network.slow_tau_ms,
                                                   "n_synapses": slow.n_synapses})
        if store_connectivity:
            for group, connectivity in (("connectivity", network.connectivity), ("slow_connectivity", slow)):
                if connectivity is None:
                    continue
                c = g.create_group(group)
                c.attrs["layout"] = "csr_by_presynaptic"
                for name in ("indptr", "indices", "weights"):
                    c.create_dataset(name, data=getattr(connectivity, name), track_times=False)

    def _reopen(self, counts: dict) -> None:
        self.file = open_hdf5(self.path, "r+", rdcc_nbytes=CHUNK_CACHE_BYTES)
        check_format(self.file, self.path)
        self._bind()
        self._counts = dict.fromkeys(STREAMS, 0)
        self._pending_bytes = 0
        for stream, datasets in self._streams.items():
            count = int(counts.get(stream, 0))
            if datasets[0].shape[0] < count:
                raise FileFormatError(f"{self.path} holds fewer {stream} records than the checkpoint expects; "
                                      "it is not the run file this checkpoint belongs to")
            for ds in datasets:
                ds.resize(count, axis=0)
            self._counts[stream] = count
        self.file.attrs.modify("status", "running")  # in place: the attribute keeps its creation index

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def _write(self, stream: str, columns: list) -> None:
        rows = len(columns[0])
        if rows == 0 or stream not in self._streams:
            return
        # HDF5 writes the chunks at the next flush (or when its cache evicts them): what every
        # write since the last flush may add must fit together
        needed = sum(_new_chunk_bytes(ds, rows) for ds in self._streams[stream])
        ensure_room(self.path, self._pending_bytes + needed)
        self._pending_bytes += needed
        for ds, values in zip(self._streams[stream], columns):
            _append(ds, values)
        self._counts[stream] += rows

    def write_spikes(self, steps: np.ndarray, ids: np.ndarray) -> None:
        if self.record_spikes:
            self._write("spikes", [steps * self.dt_ms, ids.astype(self._streams["spikes"][1].dtype)])

    def write_traces(self, steps: np.ndarray, v: np.ndarray, u: np.ndarray) -> None:
        self._write("traces", [steps, steps * self.dt_ms, v, u])

    def write_outputs(self, steps: np.ndarray, z: np.ndarray) -> None:
        self._write("outputs", [steps, steps * self.dt_ms, z])

    def write_snapshot(self, step: int, weights: np.ndarray) -> None:
        self._write("snapshots", [np.array([step]), np.array([step * self.dt_ms]), weights[None]])

    def write_table(self, name: str, columns: dict[str, np.ndarray]) -> None:
        """A task's table (equal-length columns) under ``/task/<name>``; replaced if present."""
        group = self.file.require_group("task")
        if name in group:
            del group[name]
        table = group.create_group(name)
        for column, values in columns.items():
            table.create_dataset(column, data=np.asarray(values), track_times=False)

    def mark(self, status: str, message: str = "", steps_completed: int | None = None) -> None:
        """Set the file's status (``running``, ``complete``, ``failed``, ``interrupted``) and flush.

        The attributes are changed in place (``attrs.modify``): replacing them would take a new
        creation index each time, and HDF5 refuses the 65,536th on a file that tracks creation
        order (about 40 simulated minutes of 100 ms chunks)."""
        attrs = self.file.attrs
        attrs.modify("status", status)
        attrs.modify("message", message)
        if steps_completed is not None:
            attrs.modify("steps_completed", np.int64(steps_completed))
        self.file.flush()
        self._pending_bytes = 0

    def flush(self) -> None:
        """Hand everything written so far to the operating system (it then survives the
        process being killed)."""
        self.file.flush()
        self._pending_bytes = 0

    def close(self) -> None:
        """Close the file; a file marked ``complete`` is then rewritten compressed
        (:func:`compress_run_file`; with ``compress=False`` it is left as written)."""
        if not self.file.id.valid:
            return
        complete = self.file.attrs.get("status") == "complete"
        self.file.close()
        if complete and self.compress:
            try:
                compress_run_file(self.path)
            except OSError as error:  # no room for the compressed copy: the file stays whole
                warnings.warn(f"{self.path} is left uncompressed: {error}", RuntimeWarning, stacklevel=2)


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


def _copy_attributes(source, target) -> None:
    """Every attribute of ``source`` onto ``target``, in ``source``'s order, with its HDF5 type."""
    for name in source.attrs:
        stored = h5py.h5a.open(source.id, name.encode())
        target.attrs.create(name, source.attrs[name], shape=stored.shape, dtype=stored.dtype)


def _copy_compressed(source: h5py.Group, target: h5py.Group) -> None:
    _copy_attributes(source, target)
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            order = bool(item.id.get_create_plist().get_link_creation_order())
            _copy_compressed(item, target.create_group(name, track_order=order))
            continue
        if item.chunks is None:  # written whole: compressed if numeric and not tiny
            values = item[()]
            if values.ndim and values.dtype.kind in "biuf" and values.nbytes >= COMPRESS_FIXED_FROM_BYTES:
                row_bytes = values.dtype.itemsize * max(1, int(np.prod(values.shape[1:])))
                chunks = (max(1, min(values.shape[0], (1 << 16) // row_bytes)), *values.shape[1:])
                copy = target.create_dataset(name, data=values, chunks=chunks, track_times=False, **COMPRESSION)
            else:
                copy = target.create_dataset(name, data=values, track_times=False)
        else:  # chunked: the same chunks, compressed, copied a block of rows at a time
            copy = target.create_dataset(name, shape=item.shape, maxshape=item.maxshape, dtype=item.dtype,
                                         chunks=item.chunks, track_times=False, **COMPRESSION)
            row_bytes = item.dtype.itemsize * max(1, int(np.prod(item.shape[1:])))
            block = max(1, COPY_BLOCK_BYTES // row_bytes // item.chunks[0]) * item.chunks[0]
            for start in range(0, item.shape[0], block):
                copy[start:start + block] = item[start:start + block]
        _copy_attributes(item, copy)


def compress_run_file(path) -> None:
    """Rewrite the run file ``path`` with every chunked dataset compressed (:data:`COMPRESSION`,
    the same chunks) and so every numeric dataset written whole of at least
    :data:`COMPRESS_FIXED_FROM_BYTES` (in chunks of about 64 KiB), everything else as it is: written to ``<name>.compress.tmp`` beside it,
    synced, and renamed over it, so the file is whole at every moment (a failure or a kill
    leaves the original). Lossless and deterministic: equal contents give equal files. Raises
    :class:`DiskFullError` before writing if the copy might not fit (it is at most the
    original's size)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".compress.tmp")
    ensure_room(tmp, path.stat().st_size)
    try:
        with open_hdf5(path, "r") as source:
            check_format(source, path)
            order = bool(source["/"].id.get_create_plist().get_link_creation_order())
            with h5py.File(tmp, "w", track_order=order) as target:
                _copy_compressed(source, target)
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
