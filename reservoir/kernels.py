"""Compiled per-chunk simulation kernel and the named bundles it takes.

One call of :func:`simulate_chunk` advances the network by up to ``n_steps`` steps with no
Python in between. The per-step order (documented in ``docs/model-and-numerics.md``) is the
one of Izhikevich's ``net.m``:

1. record the decimated state trace (state at the step's start time ``t = step * dt``);
2. spike detection on the state left by the previous step: ``v >= v_peak`` -> spike at ``t``;
   reset ``v <- c``, ``u <- u + d``;
3. propagation: the spikers' outgoing weights are summed into ``syn_in`` (ascending spiker
   order, presynaptic-major storage);
4. synaptic filter: delta (``I_syn = syn_in``, one step), exponential or double exponential;
5. total current ``I = noise + I_syn + bias + external``;
6. integration of ``v`` and ``u`` by the chosen scheme; finiteness guard.

The kernel takes a few named bundles (Numba compiles functions over named tuples of arrays)
instead of a long positional list: :class:`Integration`, :class:`NeuronParams`,
:class:`NetworkState`, :class:`Synapses`, :class:`ExternalDrive`, :class:`NoiseSource`,
:class:`SpikeBuffer`, :class:`TraceBuffer`, :class:`Scratch`, the readouts' own bundle
(:class:`reservoir.readouts.kernel.ReadoutKernelState`) and the :class:`BufferCounts` to
append from. It returns a :class:`ChunkResult`. Everything is plain arrays and scalars (no
jitted classes, no closures), so the kernel caches to disk and its NumPy twin in
``tests/naive.py`` can mirror it line for line.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .fastrng import _ziggurat_draw, _ziggurat_slow
from .readouts.kernel import ReadoutKernelState, readout_step

SCHEME_CODES = {"euler": 0, "izhikevich2003": 1, "izhikevich2004": 2}

# Return status of simulate_chunk
STATUS_OK = 0
STATUS_BUFFER_FULL = 1
STATUS_NOT_FINITE = 2
STATUS_READOUT_NOT_FINITE = 3


class Integration(NamedTuple):
    """The time step and the integration scheme."""

    dt_ms: float
    scheme: int
    """:data:`SCHEME_CODES` of ``euler``, ``izhikevich2003`` or ``izhikevich2004``."""


class NeuronParams(NamedTuple):
    """Per-neuron parameters (arrays of length ``N``; see :class:`reservoir.neurons.NeuronParameters`)."""

    model: int
    """:data:`reservoir.neurons.MODEL_CODES`: 0 for the 2003 form, 1 for the 2007 form."""
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    v_peak_mV: np.ndarray
    q2: np.ndarray
    q1: np.ndarray
    q0: np.ndarray
    capacitance_pF: np.ndarray
    k: np.ndarray
    v_rest_mV: np.ndarray
    v_threshold_mV: np.ndarray
    u_reference_mV: np.ndarray
    u_leak: np.ndarray
    bias: np.ndarray
    """Constant current into each neuron."""


class NetworkState(NamedTuple):
    """What the network carries from step to step (updated in place)."""

    v: np.ndarray
    u: np.ndarray
    filter_state: np.ndarray
    """Synaptic current ``s`` of each neuron's filter."""
    filter_aux: np.ndarray
    """Second variable ``h`` of the double-exponential filter."""


class Synapses(NamedTuple):
    """Recurrent weights (CSR by presynaptic neuron, or a dense copy) and the synaptic filter."""

    dense: bool
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    dense_weights: np.ndarray
    """``(pre, post)`` weights when ``dense``, else ``(0, 0)``."""
    filter_kind: int
    """:data:`reservoir.synapses.FILTER_CODES`."""
    decay_primary: float
    decay_secondary: float
    jump_scale: float


class ExternalDrive(NamedTuple):
    """This chunk's external input: ``signal[step, channel]`` and the channel -> neuron CSR projection."""

    signal: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    gains: np.ndarray


class NoiseSource(NamedTuple):
    """Per-step Gaussian current noise drawn inside the kernel (:mod:`reservoir.fastrng`)."""

    std: np.ndarray
    enabled: bool
    generator_state: np.ndarray
    """The xoshiro256++ state (uint64[4]), advanced in place."""
    ziggurat_k: np.ndarray
    ziggurat_w: np.ndarray
    ziggurat_f: np.ndarray


class SpikeBuffer(NamedTuple):
    """Spike events of a chunk: the step and the neuron of each."""

    steps: np.ndarray
    ids: np.ndarray


class TraceBuffer(NamedTuple):
    """Decimated ``v``, ``u`` of the traced neurons."""

    neuron_ids: np.ndarray
    every_steps: int
    steps: np.ndarray
    v: np.ndarray
    u: np.ndarray


class Scratch(NamedTuple):
    """Work arrays of length ``N``: summed synaptic input, total current, spike candidates."""

    syn_in: np.ndarray
    current: np.ndarray
    fired: np.ndarray


class BufferCounts(NamedTuple):
    """Rows filled in each buffer: spikes, traces, readout outputs, stored consolidation steps."""

    spikes: int
    traces: int
    outputs: int
    stored: int


class ChunkResult(NamedTuple):
    """What :func:`simulate_chunk` returns."""

    steps_done: int
    status: int
    """``STATUS_OK``, ``STATUS_BUFFER_FULL`` (call again for the remaining steps),
    ``STATUS_NOT_FINITE`` or ``STATUS_READOUT_NOT_FINITE``."""
    bad_index: int
    """The neuron whose ``v`` or ``u`` is not finite, or the readout unit whose output is not
    finite (the number of units when an RLS event diverged); -1 when all is well."""
    counts: BufferCounts


@njit(cache=True)
def _dv_dt(model, v, u, current, q2, q1, q0, cap, k, v_rest, v_thresh):
    """Right-hand side of the membrane equation (2003 or 2007 form)."""
    if model == 0:
        return q2 * v * v + q1 * v + q0 - u + current
    return (k * (v - v_rest) * (v - v_thresh) - u + current) / cap


@njit(cache=True)
def _du_dt(v, u, a, b, u_reference, u_leak):
    """Right-hand side of the recovery equation, ``a (b (v - u_reference) - u_leak u)``.

    ``u_reference = 0, u_leak = 1`` is the 2003 form, ``u_reference = v_rest, u_leak = 1`` the
    2007 form (both bit-identical to the textbook expressions, since ``v - 0.0 == v`` and
    ``1.0 * u == u``); ``u_leak = 0, u_reference = -65`` is the 2004 accommodation panel.
    """
    return a * (b * (v - u_reference) - u_leak * u)


@njit(cache=True)
def simulate_chunk(n_steps, first_step, integration, neurons, state, synapses, external, noise, spikes, traces,
                   scratch, readouts, counts):
    """Advance the network by ``n_steps`` steps (see the module docstring for the step order).

    Parameters
    ----------
    n_steps, first_step : int
        Steps to take, and the run's step index of the first one.
    integration : Integration
    neurons : NeuronParams
    state : NetworkState
        Updated in place.
    synapses : Synapses
    external : ExternalDrive
        ``external.signal`` is indexed by the chunk-local step.
    noise : NoiseSource
        With ``noise.enabled`` every neuron draws one N(0,1) value per step, in neuron order,
        from ``noise.generator_state`` (advanced in place).
    spikes, traces : SpikeBuffer, TraceBuffer
        Appended to from ``counts.spikes`` and ``counts.traces``.
    scratch : Scratch
    readouts : ReadoutKernelState
        With ``readouts.active`` the readouts advance right after spike detection, and
        ``feedback_encoders @ z`` (if it has rows) joins the total current after the bias.
        Recorded outputs and stored windows are appended from ``counts.outputs`` and
        ``counts.stored``.
    counts : BufferCounts

    Returns
    -------
    ChunkResult
        Steps done, status, the offending neuron or readout unit, and the new buffer counts.
    """
    dt_ms = integration.dt_ms
    scheme = integration.scheme
    model = neurons.model
    a, b, c, d, v_peak = neurons.a, neurons.b, neurons.c, neurons.d, neurons.v_peak_mV
    quad2, quad1, quad0 = neurons.q2, neurons.q1, neurons.q0
    cap, k, v_rest, v_thresh = neurons.capacitance_pF, neurons.k, neurons.v_rest_mV, neurons.v_threshold_mV
    u_reference, u_leak, bias = neurons.u_reference_mV, neurons.u_leak, neurons.bias
    v, u, filter_state, filter_aux = state.v, state.u, state.filter_state, state.filter_aux
    dense, dense_weights = synapses.dense, synapses.dense_weights
    indptr, indices, weights = synapses.indptr, synapses.indices, synapses.weights
    filter_kind = synapses.filter_kind
    decay_primary, decay_secondary, jump_scale = synapses.decay_primary, synapses.decay_secondary, synapses.jump_scale
    input_signal = external.signal
    input_indptr, input_indices, input_gains = external.indptr, external.indices, external.gains
    noise_std, has_noise, noise_state = noise.std, noise.enabled, noise.generator_state
    zig_k, zig_w, zig_f = noise.ziggurat_k, noise.ziggurat_w, noise.ziggurat_f
    spike_steps, spike_ids = spikes.steps, spikes.ids
    trace_ids, trace_every = traces.neuron_ids, traces.every_steps
    trace_steps, trace_v, trace_u = traces.steps, traces.v, traces.u
    syn_in, current, fired = scratch.syn_in, scratch.current, scratch.fired
    has_readouts = readouts.active
    ro_bank, ro_units, ro_rule, ro_rls = readouts.bank, readouts.units, readouts.three_factor, readouts.rls
    ro_teacher, ro_outputs, ro_store = readouts.teacher, readouts.outputs, readouts.store  # see readout_step
    ro_protection = readouts.protection
    feedback_encoders = readouts.units.feedback_encoders
    readout_z = readouts.units.z

    n_out = counts.outputs
    n_stored = counts.stored
    has_feedback = feedback_encoders.shape[0] > 0
    n = v.shape[0]
    capacity = spike_steps.shape[0]
    n_spikes = counts.spikes
    n_traces = counts.traces
    n_trace_neurons = trace_ids.shape[0]
    n_channels = input_signal.shape[1]
    half_dt = 0.5 * dt_ms
    # Spike candidates (v >= v_peak) are found while integrating, so detection at the next
    # step's start only visits them; a chunk starts with one full pass instead.
    n_fired = 0
    for i in range(n):
        syn_in[i] = 0.0
        if v[i] >= v_peak[i]:
            fired[n_fired] = i
            n_fired += 1
    for step in range(n_steps):
        global_step = first_step + step
        if n_spikes + n > capacity:
            return ChunkResult(step, STATUS_BUFFER_FULL, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))
        # 1. decimated trace of the state at the start of this step
        if n_trace_neurons > 0 and global_step % trace_every == 0:
            trace_steps[n_traces] = global_step
            for t in range(n_trace_neurons):
                trace_v[n_traces, t] = v[trace_ids[t]]
                trace_u[n_traces, t] = u[trace_ids[t]]
            n_traces += 1
        # 2. spike detection and reset (ascending neuron order)
        for f in range(n_fired):
            i = fired[f]
            spike_steps[n_spikes] = global_step
            spike_ids[n_spikes] = i
            n_spikes += 1
            v[i] = c[i]
            u[i] = u[i] + d[i]
        # readouts: traces, outputs, learning (they see this step's spikes)
        if has_readouts:
            n_out, n_stored, bad_unit = readout_step(step, global_step, dt_ms, fired, n_fired, ro_bank, ro_units, ro_rule,
                                                     ro_rls, ro_teacher, ro_outputs, ro_store, ro_protection,
                                                     n_out, n_stored)
            if bad_unit >= 0:
                return ChunkResult(step, STATUS_READOUT_NOT_FINITE, bad_unit,
                                   BufferCounts(n_spikes, n_traces, n_out, n_stored))
        # 3. propagation into syn_in (zero on entry; each neuron's entry is cleared when read)
        if dense:
            for f in range(n_fired):
                row = dense_weights[fired[f]]
                for i in range(n):
                    syn_in[i] += row[i]
        else:
            for f in range(n_fired):
                pre = fired[f]
                for s in range(indptr[pre], indptr[pre + 1]):
                    syn_in[indices[s]] += weights[s]
        # 4. synaptic filter: current = I_syn (syn_in is cleared as it is read)
        if filter_kind == 0:
            for i in range(n):
                current[i] = syn_in[i]
                syn_in[i] = 0.0
        elif filter_kind == 1:
            for i in range(n):
                filter_state[i] = filter_state[i] * decay_primary + syn_in[i] * jump_scale
                current[i] = filter_state[i]
                syn_in[i] = 0.0
        else:
            for i in range(n):
                filter_state[i] = filter_state[i] * decay_primary + filter_aux[i] * dt_ms
                filter_aux[i] = filter_aux[i] * decay_secondary + syn_in[i] * jump_scale
                current[i] = filter_state[i]
                syn_in[i] = 0.0
        # 5. total current: noise + I_syn + bias (+ external channels, below)
        if has_noise:
            for i in range(n):
                xi, layer, accepted = _ziggurat_draw(noise_state, zig_k, zig_w)
                if not accepted:
                    xi = _ziggurat_slow(noise_state, xi, layer, zig_k, zig_w, zig_f)
                current[i] = noise_std[i] * xi + current[i] + bias[i]
        else:
            for i in range(n):
                current[i] = current[i] + bias[i]
        if has_feedback:  # closed loop: encoders times this step's readout outputs
            n_units = readout_z.shape[0]
            for i in range(n):
                feedback = 0.0
                for kk in range(n_units):
                    feedback += feedback_encoders[i, kk] * readout_z[kk]
                current[i] = current[i] + feedback
        for ch in range(n_channels):
            x = input_signal[step, ch]
            if x != 0.0:
                for s in range(input_indptr[ch], input_indptr[ch + 1]):
                    current[input_indices[s]] += input_gains[s] * x
        # 6. integration. One loop per (scheme, model), with the model as a literal, so that
        # each loop is branch-free and vectorises (in this large function LLVM does not unswitch
        # the branches by itself: the generic loop measured 4.9 ns per neuron, these about 1.3).
        if model == 0:
            if scheme == 0:
                for i in range(n):
                    vi = v[i]
                    ui = u[i]
                    dv = _dv_dt(0, vi, ui, current[i], quad2[i], quad1[i], quad0[i], 1.0, 0.0, 0.0, 0.0)
                    du = _du_dt(vi, ui, a[i], b[i], u_reference[i], u_leak[i])
                    v[i] = vi + dt_ms * dv
                    u[i] = ui + dt_ms * du
            elif scheme == 1:
                for i in range(n):
                    vi = v[i]
                    ui = u[i]
                    vi = vi + half_dt * _dv_dt(0, vi, ui, current[i], quad2[i], quad1[i], quad0[i], 1.0, 0.0, 0.0, 0.0)
                    vi = vi + half_dt * _dv_dt(0, vi, ui, current[i], quad2[i], quad1[i], quad0[i], 1.0, 0.0, 0.0, 0.0)
                    v[i] = vi
                    u[i] = ui + dt_ms * _du_dt(vi, ui, a[i], b[i], u_reference[i], u_leak[i])
            else:
                for i in range(n):
                    vi = v[i]
                    ui = u[i]
                    vi = vi + dt_ms * _dv_dt(0, vi, ui, current[i], quad2[i], quad1[i], quad0[i], 1.0, 0.0, 0.0, 0.0)
                    v[i] = vi
                    u[i] = ui + dt_ms * _du_dt(vi, ui, a[i], b[i], u_reference[i], u_leak[i])
        else:
            if scheme == 0:
                for i in range(n):
                    vi = v[i]
                    ui = u[i]
                    dv = _dv_dt(1, vi, ui, current[i], 0.0, 0.0, 0.0, cap[i], k[i], v_rest[i], v_thresh[i])
                    du = _du_dt(vi, ui, a[i], b[i], u_reference[i], u_leak[i])
                    v[i] = vi + dt_ms * dv
                    u[i] = ui + dt_ms * du
            elif scheme == 1:
                for i in range(n):
                    vi = v[i]
                    ui = u[i]
                    vi = vi + half_dt * _dv_dt(1, vi, ui, current[i], 0.0, 0.0, 0.0, cap[i], k[i], v_rest[i], v_thresh[i])
                    vi = vi + half_dt * _dv_dt(1, vi, ui, current[i], 0.0, 0.0, 0.0, cap[i], k[i], v_rest[i], v_thresh[i])
                    v[i] = vi
                    u[i] = ui + dt_ms * _du_dt(vi, ui, a[i], b[i], u_reference[i], u_leak[i])
            else:
                for i in range(n):
                    vi = v[i]
                    ui = u[i]
                    vi = vi + dt_ms * _dv_dt(1, vi, ui, current[i], 0.0, 0.0, 0.0, cap[i], k[i], v_rest[i], v_thresh[i])
                    v[i] = vi
                    u[i] = ui + dt_ms * _du_dt(vi, ui, a[i], b[i], u_reference[i], u_leak[i])
        # finiteness guard and the next step's spike candidates, in a separate pass so that the
        # integration loops stay free of exits
        n_fired = 0
        for i in range(n):
            if not (np.isfinite(v[i]) and np.isfinite(u[i])):
                return ChunkResult(step, STATUS_NOT_FINITE, i, BufferCounts(n_spikes, n_traces, n_out, n_stored))
            if v[i] >= v_peak[i]:
                fired[n_fired] = i
                n_fired += 1
    return ChunkResult(n_steps, STATUS_OK, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))


__all__ = ["SCHEME_CODES", "STATUS_OK", "STATUS_BUFFER_FULL", "STATUS_NOT_FINITE", "STATUS_READOUT_NOT_FINITE",
           "Integration", "NeuronParams", "NetworkState", "Synapses", "ExternalDrive", "NoiseSource", "SpikeBuffer",
           "TraceBuffer", "Scratch", "BufferCounts", "ChunkResult", "ReadoutKernelState", "simulate_chunk"]
