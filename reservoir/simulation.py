"""The chunked simulation loop: one compiled call per chunk, Python only between chunks.

Between chunks Python slices the external input, flushes spikes and traces to the recorder,
updates the progress bar and, if asked, writes a checkpoint. Noise is drawn inside the kernel
from a xoshiro256++ generator seeded from the run's ``noise`` stream, strictly in step and
neuron order, so the numbers a step sees do not depend on where chunk boundaries fall; together
with the checkpoint's saved generator state this is what makes a restored run continue
bit-identically.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from .inputs import ExternalInput
from .kernels import SCHEME_CODES, STATUS_NOT_FINITE, STATUS_READOUT_NOT_FINITE, simulate_chunk
from .network import Network
from .readouts import Readouts, Teacher, TeacherSignals, empty_kernel_state
from .recording import MemoryRecorder
from .fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, seed_state
from .rng import stream_seed

_NO_ENCODERS = np.zeros((0, 0))
CHECKPOINT_FORMAT = "reservoir-checkpoint"
CHECKPOINT_VERSION = 1


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



class Simulation:
    """Runs a :class:`~reservoir.network.Network` in compiled chunks.

    Parameters
    ----------
    network : Network
    external_input : ExternalInput, optional
    seed : int
        Run seed; the noise comes from its ``noise`` stream.
    recorder : MemoryRecorder or RunFileRecorder, optional
        Defaults to a :class:`MemoryRecorder` with the given ``trace_ids``.
    trace_ids, trace_every_steps
        Neurons whose ``v``/``u`` are recorded, and the decimation.
    chunk_steps : int, optional
        Steps per compiled call (default: about 100 ms, capped at 2 M neuron-steps so the spike
        buffer stays small).
    readouts : Readouts, optional
        Readout units that learn inside the compiled loop (:mod:`reservoir.readouts`).
    teacher : Teacher, optional
        Targets, gates and learning/storage signals for the readouts (default: idle).

    Examples
    --------
    >>> from reservoir import resolve_config, build_network, Simulation
    >>> cfg = resolve_config("izhikevich2003", {"duration_ms": 200})
    >>> net = build_network(cfg.network, cfg.integration, seed=1)
    >>> sim = Simulation(net, seed=1)
    >>> sim.run(n_steps=cfg.n_steps)
    >>> sim.recorder.spike_ids.size > 0
    True
    """

    def __init__(self, network: Network, external_input: ExternalInput | None = None, seed: int = 0,
                 recorder=None, trace_ids=None, trace_every_steps: int = 1, chunk_steps: int | None = None,
                 progress: bool = False, readouts: Readouts | None = None, teacher: Teacher | None = None):
        self.network = network
        self.readouts = readouts
        self.teacher = teacher
        if readouts is not None and readouts.n_neurons != network.n_neurons:
            raise ValueError("readouts were built for another number of neurons")
        if teacher is not None and (readouts is None or teacher.targets.shape[1] != readouts.n_units):
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
            chunk_steps = max(1, min(int(round(100.0 / network.dt_ms)), 2_000_000 // n))
        self.chunk_steps = int(chunk_steps)
        self.progress = progress
        # state
        self.v = network.neurons.v_initial_mV.copy()
        self.u = network.neurons.u_initial.copy()
        self.filter_state = np.zeros(n)
        self.filter_aux = np.zeros(n)
        self.step = 0
        self.noise_state = seed_state(stream_seed(seed, "noise"))
        # scratch and buffers
        self._syn_in = np.zeros(n)
        self._current = np.zeros(n)
        self._fired = np.zeros(n, dtype=np.int32)
        capacity = max(4 * n, n * self.chunk_steps // 20 + 4 * n)
        self._spike_steps = np.zeros(capacity, dtype=np.int64)
        self._spike_ids = np.zeros(capacity, dtype=np.int32)
        trace_rows = self.chunk_steps // self.trace_every_steps + 2
        self._trace_steps = np.zeros(trace_rows, dtype=np.int64)
        self._trace_v = np.zeros((trace_rows, self.trace_ids.size))
        self._trace_u = np.zeros((trace_rows, self.trace_ids.size))
        self._quadratic = tuple(np.ascontiguousarray(col) for col in network.neurons.quadratic_coefficients.T)
        dense = network.connectivity.dense_weights
        self._dense = dense is not None
        self._dense_weights = dense if dense is not None else np.zeros((0, 0))
        if readouts is not None:
            readouts.allocate_chunk_buffers(self.chunk_steps)

    # ------------------------------------------------------------------ running
    def run(self, n_steps: int | None = None, duration_ms: float | None = None,
            checkpoint_path=None, checkpoint_every_steps: int | None = None,
            snapshot_every_steps: int | None = None) -> None:
        """Advance by ``n_steps`` (or ``duration_ms``).

        Optionally checkpoint every ``checkpoint_every_steps`` and record a snapshot of the
        readout weights every ``snapshot_every_steps`` (both counted from step 0, at chunk
        boundaries placed on those steps).
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
        with tqdm(total=round(n_steps * dt, 6), unit="ms", desc="simulating", disable=not self.progress,
                  bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} ms [{elapsed}<{remaining}]") as bar:
            while self.step < end:
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

    def _run_chunk(self, count: int) -> None:
        net = self.network
        neurons = net.neurons
        conn = net.connectivity
        signal = self.external_input.chunk(self.step, count)
        decay1, decay2, jump = net.synapse.coefficients(net.dt_ms)
        readouts = self.readouts
        if readouts is not None:
            signals = (self.teacher.chunk(self.step, count) if self.teacher is not None
                       else TeacherSignals.idle(count, readouts.n_units))
            encoders = readouts.encoders
        else:
            readout_state = empty_kernel_state()
            encoders = _NO_ENCODERS
        done = 0
        while done < count:
            if readouts is not None:
                readout_state = readouts.kernel_state(signals, done)
            steps, n_spikes, n_traces, status, bad, n_out, n_stored = simulate_chunk(
                count - done, self.step, net.dt_ms, SCHEME_CODES[net.scheme], neurons.model_code,
                self.v, self.u, self.filter_state, self.filter_aux,
                neurons.a, neurons.b, neurons.c, neurons.d, neurons.v_peak_mV, *self._quadratic,
                neurons.capacitance_pF, neurons.k, neurons.v_rest_mV, neurons.v_threshold_mV,
                neurons.u_reference_mV, neurons.u_leak, net.bias,
                self._dense, conn.indptr, conn.indices, conn.weights, self._dense_weights,
                net.synapse.code, decay1, decay2, jump,
                signal[done:], self.external_input.indptr, self.external_input.indices, self.external_input.gains,
                net.noise_std, net.has_noise, self.noise_state, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F,
                self._spike_steps, self._spike_ids, 0,
                self.trace_ids, self.trace_every_steps, self._trace_steps, self._trace_v, self._trace_u, 0,
                self._syn_in, self._current, self._fired,
                readouts is not None, readout_state, encoders, 0,
                readouts.n_stored if readouts is not None else 0,
            )
            self.recorder.write_spikes(self._spike_steps[:n_spikes], self._spike_ids[:n_spikes])
            self.recorder.write_traces(self._trace_steps[:n_traces], self._trace_v[:n_traces], self._trace_u[:n_traces])
            if readouts is not None:
                self.recorder.write_outputs(readouts.out_steps[:n_out], readouts.out_z[:n_out])
                readouts.n_stored = n_stored
            self.step += steps
            done += steps
            if status == STATUS_NOT_FINITE:
                error = NumericalInstabilityError(int(bad), self.step, net.dt_ms, float(self.v[bad]),
                                                  float(self.u[bad]), net.scheme)
                self.recorder.mark("failed", str(error), self.step)
                raise error
            if status == STATUS_READOUT_NOT_FINITE:
                if bad < readouts.n_units:
                    message = (f"readout {readouts.unit_names[bad]} diverged at step {self.step} "
                               f"(t = {self.step * net.dt_ms:g} ms, dt = {net.dt_ms:g} ms): its output is not finite; "
                               "lower its learning_rate (the update is stable for learning_rate * dt * |x|^2 < 2)")
                else:
                    message = (f"the RLS update diverged at step {self.step} (t = {self.step * net.dt_ms:g} ms): "
                               "lambda + r^T P r is not finite; increase rls.alpha or check the targets")
                error = ReadoutDivergenceError(message)
                self.recorder.mark("failed", str(error), self.step)
                raise error
        if readouts is not None:
            readouts.flush_rls()
        self.recorder.mark("running", "", self.step)

    def reset_state(self) -> None:
        """Reset the network (``v``, ``u`` to their initial values, synaptic filters and readout
        traces and eligibilities to zero), keeping weights, ``P``, the noise stream and the
        step counter: the trial-start reset some tasks use as an explicit simplification."""
        self.v[:] = self.network.neurons.v_initial_mV
        self.u[:] = self.network.neurons.u_initial
        self.filter_state[:] = 0.0
        self.filter_aux[:] = 0.0
        if self.readouts is not None:
            for values in (self.readouts.traces, self.readouts.traces_aux, self.readouts.eligibility, self.readouts.z):
                values[...] = 0.0

    # ------------------------------------------------------------ checkpoints
    def fingerprint(self) -> str:
        """SHA-256 over everything that defines the simulated system (not the state)."""
        h = hashlib.sha256()
        net = self.network
        for values in net.neurons.as_arrays().values():
            h.update(np.ascontiguousarray(values).tobytes())
        for values in (net.connectivity.indptr, net.connectivity.indices, net.connectivity.weights,
                       net.noise_std, net.bias, self.external_input.signal, self.external_input.indices,
                       self.external_input.gains, self.trace_ids):
            h.update(np.ascontiguousarray(values).tobytes())
        h.update(json.dumps([net.dt_ms, net.scheme, net.synapse.__dict__, self.trace_every_steps, self.seed]).encode())
        if self.readouts is not None:
            h.update(self.readouts.config.model_dump_json().encode())
            h.update(np.ascontiguousarray(self.readouts.encoders).tobytes())
        if self.teacher is not None:
            for values in (self.teacher.targets, self.teacher.gates, self.teacher.learn, self.teacher.store):
                h.update(np.ascontiguousarray(values).tobytes())
        return h.hexdigest()

    def save_checkpoint(self, path) -> None:
        """Write the full state (RNG included) atomically to ``path``."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.attrs["format_name"] = CHECKPOINT_FORMAT
            f.attrs["format_version"] = CHECKPOINT_VERSION
            f.attrs["step"] = self.step
            f.attrs["fingerprint"] = self.fingerprint()
            for name, count in self.recorder.counts().items():
                f.attrs[f"{name}_written"] = count
            for name in ("v", "u", "filter_state", "filter_aux", "noise_state"):
                f.create_dataset(f"state/{name}", data=getattr(self, name))
            if self.readouts is not None:
                for name, values in self.readouts.state_arrays().items():
                    f.create_dataset(f"readouts/{name}", data=values)
        tmp.replace(path)

    def load_checkpoint(self, path) -> dict[str, int]:
        """Restore the state saved by :meth:`save_checkpoint` into this simulation.

        The simulation must have been built from the same configuration and seed (checked by
        fingerprint). Returns the recorder's counts at the checkpoint (``spikes``, ``traces``,
        ``outputs``, ``snapshots``), to which a run file is truncated when the run resumes.
        """
        with h5py.File(path, "r") as f:
            if f.attrs.get("format_name") != CHECKPOINT_FORMAT:
                raise ValueError(f"{path} is not a reservoir checkpoint")
            if int(f.attrs["format_version"]) != CHECKPOINT_VERSION:
                raise ValueError(f"{path} has checkpoint format version {f.attrs['format_version']}; "
                                 f"this reservoir reads version {CHECKPOINT_VERSION}")
            if f.attrs["fingerprint"] != self.fingerprint():
                raise ValueError(f"{path} was saved by a different network, input or seed; "
                                 "restore it into a simulation built from the same configuration")
            for name in ("v", "u", "filter_state", "filter_aux", "noise_state"):
                getattr(self, name)[:] = f[f"state/{name}"][:]
            if self.readouts is not None:
                for name, values in self.readouts.state_arrays().items():
                    values[...] = f[f"readouts/{name}"][...]
            self.step = int(f.attrs["step"])
            return {key.removesuffix("_written"): int(value) for key, value in f.attrs.items()
                    if key.endswith("_written")}
