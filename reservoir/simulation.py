"""The chunked simulation loop: one compiled call per chunk, Python only between chunks.

Between chunks Python slices the external input, flushes spikes and traces to the recorder,
updates the progress bar and, if asked, writes a checkpoint. Noise is drawn inside the kernel
from xoshiro256++ generators seeded from the run's ``noise`` stream, one per work block of
neurons, strictly in step and neuron order within each block, so the numbers a step sees do not
depend on where chunk boundaries fall nor on the number of threads; together with the
checkpoint's saved generator states this is what makes a restored run continue bit-identically.

With ``threads > 1`` each chunk runs as that many calls of the kernel at once, the first on the
calling thread and the others on a small pool of threads the simulation keeps
(:mod:`reservoir.parallel`).
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import h5py
import numpy as np
from tqdm import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

from .fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, block_states
from .inputs import ExternalInput
from .kernels import (SCHEME_CODES, STATUS_ABORTED, STATUS_NOT_FINITE, STATUS_READOUT_NOT_FINITE, BufferCounts,
                      ExternalDrive, Integration, NetworkState, NeuronParams, NoiseSource, Scratch, SpikeBuffer, Synapses,
                      ThreadShared, TraceBuffer, simulate_chunk)
from .network import Network
from .parallel import PADDED_WORDS, SYNC_ABORT, SYNC_LENGTH, n_blocks, resolve_threads, thread_bounds
from .readouts import Readouts, Teacher, TeacherSignals, inactive_kernel_state
from .recording import FileFormatError, MemoryRecorder, ensure_room, open_hdf5
from .rng import stream_seed

CHECKPOINT_FORMAT = "reservoir-checkpoint"
CHECKPOINT_VERSION = 5
SUPPORTED_CHECKPOINT_VERSIONS = (5,)
"""Version 5: one noise generator per work block (``state/noise_state`` is ``(n_blocks, 4)``) and
the units' outputs with the consolidation store's rows; a checkpoint of version 4 is refused
(resume it with the reservoir that wrote it, or rerun)."""


class Checkpointable(Protocol):
    """Anything whose state belongs in a checkpoint (a task's memory, for instance)."""

    def get_state(self) -> dict[str, np.ndarray]: ...

    def set_state(self, state: dict[str, np.ndarray]) -> None: ...


class NumericalInstabilityError(FloatingPointError):
    """``v`` or ``u`` of a neuron became NaN or infinite during integration."""

    def __init__(self, neuron: int, step: int, dt_ms: float, v: float, u: float, scheme: str):
        self.neuron, self.step, self.dt_ms, self.v, self.u = neuron, step, dt_ms, v, u
        super().__init__(
            f"integration blew up: neuron {neuron} has v={v!r}, u={u!r} after step {step} "
            f"(t = {step * dt_ms:g} ms) with dt = {dt_ms:g} ms and the {scheme!r} scheme; "
            "reduce integration.dt_ms, check the input currents, or use the izhikevich2003 scheme")


class ReadoutDivergenceError(FloatingPointError):
    """A readout's output, or an RLS (FORCE) update, became non-finite."""



def _row_split(conn, bounds: np.ndarray) -> np.ndarray:
    """:attr:`ThreadShared.row_split` of a connectivity: where each CSR row crosses the threads'
    neuron boundaries ``bounds``; ``(T + 1, 0)`` for dense storage."""
    n, n_threads = conn.n_neurons, bounds.size - 1
    if conn.dense_weights is not None:
        return np.zeros((n_threads + 1, 0), dtype=np.int64)
    indptr = conn.indptr.astype(np.int64)
    row_split = np.empty((n_threads + 1, n), dtype=np.int64)
    row_split[0], row_split[n_threads] = indptr[:-1], indptr[1:]
    if n_threads > 1:
        # one row at a time: no array as long as the synapses (10^7 of them at N = 10k)
        for pre in range(n):
            row = conn.indices[indptr[pre]:indptr[pre + 1]]
            if row.size > 1 and np.any(row[1:] <= row[:-1]):
                raise ValueError("threads > 1 needs each connectivity row's postsynaptic indices strictly "
                                 f"ascending (as build_connectivity makes them); row {pre} is not")
            row_split[1:n_threads, pre] = indptr[pre] + np.searchsorted(row, bounds[1:n_threads])
    return row_split


def _kernel_thread(thread: int, shared: ThreadShared, args):
    """A pool thread's call; if it fails, the other threads are told to leave their barriers."""
    try:
        return simulate_chunk(thread, shared, *args)
    except BaseException:
        shared.sync[SYNC_ABORT] = 1
        raise


class Simulation:
    """Runs a :class:`~reservoir.network.Network` in compiled chunks.

    Parameters
    ----------
    network : Network
        The simulated system; the simulation reads its arrays in place, so it must not be
        changed once the simulation is built (checkpoints check it by fingerprint).
    external_input : ExternalInput, optional
    seed : int
        Run seed; the noise comes from its ``noise`` stream.
    recorder : MemoryRecorder or RunFileRecorder, optional
        Defaults to a :class:`MemoryRecorder` with the given ``trace_ids``.
    trace_ids, trace_every_steps
        Neurons whose ``v``/``u`` are recorded, and the decimation.
    chunk_steps : int, optional
        Steps per compiled call (default: about 1 s of simulated time, capped at 20 M
        neuron-steps so that the spike buffer stays a few MB).
    readouts : Readouts, optional
        Readout units that learn inside the compiled loop (:mod:`reservoir.readouts`).
    teacher : Teacher, optional
        Targets, gates and learning/storage signals for the readouts (default: idle).
    spike_buffer_events : int, optional
        Spike events held between flushes to the recorder (default ``N * chunk_steps / 20 + 4 N``,
        at least ``4 N``); a chunk that fills it is continued after a flush, so any size of at
        least ``N + 1`` gives the same run.
    threads : int or "auto"
        Threads of the compiled kernel (:mod:`reservoir.parallel`); any count gives the same
        run, bit for bit. ``"auto"`` (default): one per 1000 neurons, at most the available
        cores and the work blocks of 1024 neurons (so one thread below 2000 neurons).

    Examples
    --------
    >>> from reservoir import resolve_config, build_network, Simulation
    >>> cfg = resolve_config("izhikevich2003", {"duration_ms": 200})
    >>> net = build_network(cfg.network, cfg.integration, seed=1)
    >>> sim = Simulation(net, seed=1)
    >>> sim.run(n_steps=cfg.n_steps)  # True: every step simulated
    True
    >>> sim.recorder.spike_ids.size > 0
    True
    """

    def __init__(self, network: Network, external_input: ExternalInput | None = None, seed: int = 0,
                 recorder=None, trace_ids=None, trace_every_steps: int = 1, chunk_steps: int | None = None,
                 progress: bool = False, readouts: Readouts | None = None, teacher: Teacher | None = None,
                 spike_buffer_events: int | None = None, threads="auto"):
        self.network = network
        self.readouts = readouts
        self.teacher = teacher
        if readouts is not None and readouts.n_neurons != network.n_neurons:
            raise ValueError("readouts were built for another number of neurons")
        if teacher is not None and (readouts is None or teacher.n_units != readouts.n_units):
            raise ValueError("the teacher's targets need one column per readout unit")
        self.external_input = external_input if external_input is not None else ExternalInput.none()
        if self.external_input.n_channels and self.external_input.indices.size and (
                self.external_input.indices.max() >= network.n_neurons or self.external_input.indices.min() < 0):
            raise ValueError("external input projects onto neuron ids outside the network")
        self.seed = seed
        n = network.n_neurons
        self.trace_ids = np.ascontiguousarray(np.zeros(0) if trace_ids is None else trace_ids, dtype=np.int64)
        if self.trace_ids.size and (self.trace_ids.min() < 0 or self.trace_ids.max() >= n):
            raise ValueError(f"trace_ids must lie in [0, {n})")
        self.trace_every_steps = int(trace_every_steps)
        self.recorder = recorder if recorder is not None else MemoryRecorder(network.dt_ms, self.trace_ids)
        if chunk_steps is None:
            # about 1 s, at most 20 M neuron-steps: each call costs about 0.1 ms of Python (and
            # 0.5 ms more with threads, whose calls unbox their arguments one after the other)
            chunk_steps = max(1, min(int(round(1000.0 / network.dt_ms)), 20_000_000 // n))
        self.chunk_steps = int(chunk_steps)
        self.progress = progress
        self.attached: dict[str, Checkpointable] = {}
        # state
        self.v = network.neurons.v_initial_mV.copy()
        self.u = network.neurons.u_initial.copy()
        self.filter_state = np.zeros(n)
        self.filter_aux = np.zeros(n)
        self.slow_filter_state = np.zeros(n)  # the slow synapses' filter (zero and unused without them)
        self.step = 0
        # the kernel's generators, one padded row per work block; noise_state is the state proper
        self._noise_generators = np.zeros((n_blocks(n), PADDED_WORDS), dtype=np.uint64)
        self.noise_state = self._noise_generators[:, :4]
        self.noise_state[...] = block_states(stream_seed(seed, "noise"), n_blocks(n))
        # the kernel's bundles (views of the arrays above and of the network's)
        neurons = network.neurons
        self._integration = Integration(network.dt_ms, SCHEME_CODES[network.scheme])
        q2, q1, q0 = (np.ascontiguousarray(col) for col in neurons.quadratic_coefficients.T)
        self._neuron_params = NeuronParams(
            neurons.model_code, neurons.a, neurons.b, neurons.c, neurons.d, neurons.v_peak_mV, q2, q1, q0,
            neurons.capacitance_pF, neurons.k, neurons.v_rest_mV, neurons.v_threshold_mV, neurons.u_reference_mV,
            neurons.u_leak, network.bias)
        self._state = NetworkState(self.v, self.u, self.filter_state, self.filter_aux, self.slow_filter_state)
        conn = network.connectivity
        dense = conn.dense_weights
        decay1, decay2, jump = network.synapse.coefficients(network.dt_ms)
        slow = network.slow_connectivity
        if slow is not None:
            slow_decay, _, slow_jump = network.slow_filter().coefficients(network.dt_ms)
            slow_arrays = (slow.indptr, slow.indices, slow.weights, slow_decay, slow_jump)
        else:
            slow_arrays = (np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0), 0.0, 0.0)
        self._synapses = Synapses(dense is not None, conn.indptr, conn.indices, conn.weights,
                                  dense if dense is not None else np.zeros((0, 0)), network.synapse.code,
                                  decay1, decay2, jump, slow is not None, *slow_arrays)
        self._noise = NoiseSource(network.noise_std, network.has_noise, self._noise_generators, ZIGGURAT_K, ZIGGURAT_W,
                                  ZIGGURAT_F)
        if spike_buffer_events is None:
            spike_buffer_events = max(4 * n, n * self.chunk_steps // 20 + 4 * n)
        if spike_buffer_events <= n:
            raise ValueError(f"spike_buffer_events must exceed the number of neurons ({n}), got {spike_buffer_events}")
        self._spikes = SpikeBuffer(np.zeros(spike_buffer_events, dtype=np.int64),
                                   np.zeros(spike_buffer_events, dtype=np.int32))
        trace_rows = self.chunk_steps // self.trace_every_steps + 2
        self._traces = TraceBuffer(self.trace_ids, self.trace_every_steps, np.zeros(trace_rows, dtype=np.int64),
                                   np.zeros((trace_rows, self.trace_ids.size)), np.zeros((trace_rows, self.trace_ids.size)))
        self._scratch = Scratch(np.zeros(n), np.zeros(n if slow is not None else 0), np.zeros(n),
                                np.zeros(n, dtype=np.int32))
        if readouts is not None:
            readouts.allocate_chunk_buffers(self.chunk_steps)
        self.threads = resolve_threads(threads, n)
        self._shared = self._thread_shared()
        self._pool = None

    def _thread_shared(self) -> ThreadShared:
        n, n_threads = self.network.n_neurons, self.threads
        bounds = thread_bounds(n, n_threads)
        row_split = _row_split(self.network.connectivity, bounds)
        slow = self.network.slow_connectivity
        slow_row_split = _row_split(slow, bounds) if slow is not None else np.zeros((n_threads + 1, 0), dtype=np.int64)
        n_units = self.readouts.n_units if self.readouts is not None else 0
        n_banks = self.readouts.bank.traces.shape[0] if self.readouts is not None else 0
        return ThreadShared(np.zeros(SYNC_LENGTH, dtype=np.int64), bounds, row_split, slow_row_split,
                            np.zeros((n_threads, PADDED_WORDS), dtype=np.int64),
                            np.full((n_threads, PADDED_WORDS), -1, dtype=np.int64),
                            np.zeros(n, dtype=np.int32), np.zeros((n_units, n_banks * n_blocks(n))))

    def close(self) -> None:
        """Stop the kernel's thread pool (it restarts if the simulation runs again)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)

    # ------------------------------------------------------------------ running
    def run(self, n_steps: int | None = None, duration_ms: float | None = None,
            checkpoint_path=None, checkpoint_every_steps: int | None = None,
            snapshot_every_steps: int | None = None, progress_bar=None, should_stop=None) -> bool:
        """Advance by ``n_steps`` (or ``duration_ms``).

        Optionally checkpoint every ``checkpoint_every_steps`` and record a snapshot of the
        readout weights every ``snapshot_every_steps`` (both counted from step 0, at chunk
        boundaries placed on those steps).

        ``progress_bar`` (a tqdm bar in ms of simulated time, owned by the caller, e.g. one bar
        for a whole run of many segments) replaces the bar this call would open; ``should_stop``
        (a callable) is asked after every chunk, and a true answer ends the call early, at a
        chunk boundary where the state is consistent and can be checkpointed (how the runner
        handles ctrl-C). Returns True if the steps were all simulated, False if stopped early.
        """
        if (n_steps is None) == (duration_ms is None):
            raise ValueError("give exactly one of n_steps and duration_ms")
        if n_steps is None:
            n_steps = int(round(duration_ms / self.network.dt_ms))
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        end = self.step + n_steps
        next_checkpoint = next_snapshot = None
        if checkpoint_path is not None and checkpoint_every_steps:
            next_checkpoint = (self.step // checkpoint_every_steps + 1) * checkpoint_every_steps
        if snapshot_every_steps and self.readouts is not None:
            next_snapshot = (self.step // snapshot_every_steps + 1) * snapshot_every_steps
            if self.step == 0:
                self.recorder.write_snapshot(0, self.readouts.weights)
        dt = self.network.dt_ms
        own_bar = progress_bar is None
        bar = (tqdm(total=round(n_steps * dt, 6), unit="ms", desc="simulating", disable=not self.progress,
                    bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} ms [{elapsed}<{remaining}]")
               if own_bar else progress_bar)
        try:
            while self.step < end:
                if should_stop is not None and should_stop():
                    return False
                stop = min(self.step + self.chunk_steps, end)
                for boundary in (next_checkpoint, next_snapshot):
                    if boundary is not None:
                        stop = min(stop, boundary)
                count = stop - self.step
                self._run_chunk(count)
                bar.update(count * dt)
                if next_snapshot is not None and self.step == next_snapshot:
                    self.recorder.write_snapshot(self.step, self.readouts.weights)
                    next_snapshot += snapshot_every_steps
                if next_checkpoint is not None and self.step == next_checkpoint:
                    self.save_checkpoint(checkpoint_path)
                    next_checkpoint += checkpoint_every_steps
        finally:
            if own_bar:
                bar.close()
        return True

    def _run_chunk(self, count: int) -> None:
        net = self.network
        external = self.external_input
        signal = external.chunk(self.step, count)
        readouts = self.readouts
        if readouts is not None:
            signals = (self.teacher.chunk(self.step, count) if self.teacher is not None
                       else TeacherSignals.idle(count, readouts.n_units))
        else:
            readout_state = inactive_kernel_state()
        done = 0
        while done < count:
            if readouts is not None:
                readout_state = readouts.kernel_state(signals, done)
            n_stored = readouts.store.n_stored if readouts is not None else 0
            args = (count - done, self.step, self._integration, self._neuron_params, self._state, self._synapses,
                    ExternalDrive(signal[done:], external.indptr, external.indices, external.gains), self._noise,
                    self._spikes, self._traces, self._scratch, readout_state, BufferCounts(0, 0, 0, n_stored))
            result = self._call_kernel(args)
            counts = result.counts
            self.recorder.write_spikes(self._spikes.steps[:counts.spikes], self._spikes.ids[:counts.spikes])
            self.recorder.write_traces(self._traces.steps[:counts.traces], self._traces.v[:counts.traces],
                                       self._traces.u[:counts.traces])
            if readouts is not None:
                self.recorder.write_outputs(readouts.outputs.steps[:counts.outputs], readouts.outputs.z[:counts.outputs])
                readouts.store.n_stored = counts.stored
            self.step += result.steps_done
            done += result.steps_done
            bad = result.bad_index
            if result.status == STATUS_NOT_FINITE:
                error = NumericalInstabilityError(int(bad), self.step, net.dt_ms, float(self.v[bad]),
                                                  float(self.u[bad]), net.scheme)
                self.recorder.mark("failed", str(error), self.step)
                raise error
            if result.status == STATUS_READOUT_NOT_FINITE:
                if bad < readouts.n_units:
                    message = (f"readout {readouts.unit_names[bad]} diverged at step {self.step} "
                               f"(t = {self.step * net.dt_ms:g} ms, dt = {net.dt_ms:g} ms): its output is not finite; "
                               "lower its learning_rate (the update is stable for learning_rate * dt * x . u < 2, u the presynaptic "
                               "factor: the feature, or with normalization = 'variance' the feature over its variance)")
                else:
                    message = (f"the RLS update diverged at step {self.step} (t = {self.step * net.dt_ms:g} ms): "
                               "lambda + r^T P r is not finite; increase rls.alpha or check the targets")
                error = ReadoutDivergenceError(message)
                self.recorder.mark("failed", str(error), self.step)
                raise error
        if readouts is not None:
            readouts.flush_rls()
        self.recorder.mark("running", "", self.step)

    def _call_kernel(self, args):
        """One chunk: the kernel on this thread and, with threads, on the pool's threads at once."""
        shared = self._shared
        shared.sync[:] = 0
        if self.threads == 1:
            return simulate_chunk(0, shared, *args)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="reservoir-kernel")
        others = [self._pool.submit(_kernel_thread, t, shared, args) for t in range(1, self.threads)]
        try:
            result = simulate_chunk(0, shared, *args)
        except BaseException:
            shared.sync[SYNC_ABORT] = 1  # the others leave their barriers and return
            for future in others:
                future.exception()
            raise
        for future in others:
            failure = future.exception()
            if failure is not None:
                raise failure
        if result.status == STATUS_ABORTED:  # pragma: no cover - only after a failure raised above
            raise RuntimeError("a kernel thread aborted the chunk")
        return result

    def reset_state(self) -> None:
        """Reset the network (``v``, ``u`` to their initial values, synaptic filters and readout
        traces and eligibilities to zero), keeping weights, ``P``, the noise stream and the
        step counter: the trial-start reset some tasks use as an explicit simplification."""
        self.v[:] = self.network.neurons.v_initial_mV
        self.u[:] = self.network.neurons.u_initial
        self.filter_state[:] = 0.0
        self.filter_aux[:] = 0.0
        self.slow_filter_state[:] = 0.0
        if self.readouts is not None:
            self.readouts.reset_state()

    # ------------------------------------------------------------ checkpoints
    def attach(self, name: str, part: Checkpointable) -> None:
        """Save ``part``'s state (``get_state``/``set_state``) in every checkpoint, under ``name``."""
        if not name.isidentifier():
            raise ValueError(f"a checkpoint part needs an identifier as its name, got {name!r}")
        self.attached[name] = part

    def fingerprint(self) -> str:
        """SHA-256 over everything that defines the simulated system (not the state)."""
        h = hashlib.sha256()
        net = self.network
        for values in net.neurons.as_arrays().values():
            h.update(np.ascontiguousarray(values).tobytes())
        for values in (net.connectivity.indptr, net.connectivity.indices, net.connectivity.weights,
                       net.noise_std, net.bias, *self.external_input.digest_arrays(), self.trace_ids):
            h.update(np.ascontiguousarray(values).tobytes())
        h.update(json.dumps([net.dt_ms, net.scheme, net.synapse.__dict__, self.trace_every_steps, self.seed]).encode())
        if net.slow_connectivity is not None:  # only then: without slow synapses the fingerprint of before
            slow = net.slow_connectivity
            for values in (slow.indptr, slow.indices, slow.weights):
                h.update(np.ascontiguousarray(values).tobytes())
            h.update(json.dumps(["slow_synapses", net.slow_tau_ms]).encode())
        if self.readouts is not None:
            h.update(self.readouts.config.model_dump_json().encode())
            h.update(np.ascontiguousarray(self.readouts.encoders).tobytes())
        if self.teacher is not None:
            for values in self.teacher.digest_arrays():
                h.update(np.ascontiguousarray(values).tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path) -> None:
        """Write the full state (RNG, readouts and attached parts included) atomically to ``path``."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        state = self._checkpoint_state()
        # refuse before writing if it cannot fit: the old checkpoint stays
        ensure_room(tmp, sum(values.nbytes for values in state.values()))
        # what the checkpoint says the run file holds must be in the file first: a process killed
        # after the checkpoint's rename must not leave records only HDF5's cache had seen
        self.recorder.flush()
        try:
            self._write_checkpoint(tmp, state)
            tmp.replace(path)  # atomic: the previous checkpoint stays whole until this one is
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed write (disk full...) leaves no partial file
            raise

    def _checkpoint_state(self) -> dict[str, np.ndarray]:
        """Every array of a checkpoint, by its path in the file (gathered once per checkpoint)."""
        state = {f"state/{name}": getattr(self, name) for name in ("v", "u", "filter_state", "filter_aux", "noise_state")}
        if self.network.has_slow_synapses:  # only then: a checkpoint without them is the one of before
            state["state/slow_filter_state"] = self.slow_filter_state
        if self.readouts is not None:
            state.update({f"readouts/{name}": values for name, values in self.readouts.get_state().items()})
        for part, obj in self.attached.items():
            state.update({f"attached/{part}/{name}": values for name, values in obj.get_state().items()})
        return {name: np.asarray(values) for name, values in state.items()}

    def _write_checkpoint(self, tmp: Path, state: dict[str, np.ndarray]) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["format_name"] = CHECKPOINT_FORMAT
            f.attrs["format_version"] = CHECKPOINT_VERSION
            f.attrs["step"] = self.step
            f.attrs["fingerprint"] = self.fingerprint()
            for name, count in self.recorder.counts().items():
                f.attrs[f"{name}_written"] = count
            for part in self.attached:  # a part with an empty state still has its group
                f.create_group(f"attached/{part}")
            for name, values in state.items():
                f.create_dataset(name, data=values)

    def load_checkpoint(self, path) -> dict[str, int]:
        """Restore the state saved by :meth:`save_checkpoint` into this simulation.

        The simulation must have been built from the same configuration and seed (checked by
        fingerprint), with the same parts attached. Returns the recorder's counts at the
        checkpoint (``spikes``, ``traces``, ``outputs``, ``snapshots``), to which a run file is
        truncated when the run resumes.
        """
        with open_hdf5(path, "r", what="checkpoint") as f:
            if f.attrs.get("format_name") != CHECKPOINT_FORMAT:
                raise FileFormatError(f"{path} is not a reservoir checkpoint (no format_name={CHECKPOINT_FORMAT!r})")
            if int(f.attrs["format_version"]) not in SUPPORTED_CHECKPOINT_VERSIONS:
                raise FileFormatError(f"{path} has checkpoint format version {f.attrs['format_version']}; "
                                      f"this reservoir reads versions {list(SUPPORTED_CHECKPOINT_VERSIONS)}")
            if f.attrs["fingerprint"] != self.fingerprint():
                raise ValueError(f"{path} was saved by a different network, input or seed; "
                                 "restore it into a simulation built from the same configuration")
            saved_parts = set(f["attached"]) if "attached" in f else set()
            if saved_parts != set(self.attached):
                raise ValueError(f"{path} holds the state of {sorted(saved_parts)}, this simulation has "
                                 f"{sorted(self.attached)} attached")
            for name in ("v", "u", "filter_state", "filter_aux"):
                getattr(self, name)[:] = f[f"state/{name}"][:]
            if self.network.has_slow_synapses:  # the fingerprint says the checkpoint's network had them too
                self.slow_filter_state[:] = f["state/slow_filter_state"][:]
            saved_noise = f["state/noise_state"][()]
            if saved_noise.size != self.noise_state.size:
                raise FileFormatError(
                    f"{path} holds {saved_noise.size // 4} noise generator(s) for a network that draws from "
                    f"{self.noise_state.shape[0]} (one per work block of neurons): it does not belong to this "
                    "network; rerun from the start")
            self.noise_state[...] = saved_noise.reshape(self.noise_state.shape)
            if self.readouts is not None:
                self.readouts.set_state({name: ds[()] for name, ds in f["readouts"].items()})
            for part, obj in self.attached.items():
                obj.set_state({name: ds[()] for name, ds in f[f"attached/{part}"].items()})
            self.step = int(f.attrs["step"])
            return {key.removesuffix("_written"): int(value) for key, value in f.attrs.items()
                    if key.endswith("_written")}
