"""Compiled per-chunk simulation kernel and the named bundles it takes.

One call of :func:`simulate_chunk` advances the network by up to ``n_steps`` steps with no
Python in between; with ``T`` threads, ``T`` calls run at once, one per thread, each on its own
neurons (:mod:`reservoir.parallel`), and meet at three barriers per step. The per-step order
(documented in ``docs/model-and-numerics.md``) is the one of Izhikevich's ``net.m``:

1. record the decimated state trace (state at the step's start time ``t = step * dt``);
2. spike detection on the state left by the previous step: ``v >= v_peak`` -> spike at ``t``;
   reset ``v <- c``, ``u <- u + d``;
3. propagation: the spikers' outgoing weights are summed into ``syn_in`` (ascending spiker
   order, presynaptic-major storage); with slow synapses, their weights likewise into
   ``slow_in`` (their own CSR);
4. synaptic filter: delta (``I_syn = syn_in``, one step), exponential or double exponential;
   with slow synapses, then the slow exponential filter ``s_slow <- s_slow exp(-dt/tau_slow) +
   slow_in / tau_slow`` and ``I_syn <- I_fast + s_slow``;
5. total current ``I = noise + I_syn + bias + external``;
6. integration of ``v`` and ``u`` by the chosen scheme; finiteness guard.

With threads, a step runs in three phases: (A) on each thread's own neurons, the trace record,
spike detection and reset, the readouts' trace bank and partial sums; (S) on thread 0 alone,
gathering the step's spikes in ascending order, writing them out, and the readouts'
once-per-step work; (B) again on each thread's own neurons, the readouts' per-feature updates,
propagation of every spike into the thread's own postsynaptic neurons (each CSR row is cut at
the thread boundaries, so each neuron's input is summed in the single-thread order; the slow
synapses' CSR is cut by its own ``slow_row_split``), filter,
noise (per work block streams), current and integration. No thread writes another's neurons,
so every value is the single-thread one.

The kernel takes a few named bundles (Numba compiles functions over named tuples of arrays)
instead of a long positional list: :class:`Integration`, :class:`NeuronParams`,
:class:`NetworkState`, :class:`Synapses`, :class:`ExternalDrive`, :class:`NoiseSource`,
:class:`SpikeBuffer`, :class:`TraceBuffer`, :class:`Scratch`, the readouts' own bundle
(:class:`reservoir.readouts.kernel.ReadoutKernelState`) and the :class:`BufferCounts` to
append from. It returns a :class:`ChunkResult`. Everything is plain arrays and scalars (no
jitted classes, no closures), so the kernel caches to disk and its NumPy twin in
``tests/naive.py`` can mirror it line for line.

Length: one compiled function holds the whole per-step loop on purpose: the threads meet at
three barriers inside it, and each per-step hand-off of bundles to another compiled function
costs time (0.3-0.5 us per step, measured in :mod:`reservoir.readouts.kernel`); the bundles'
named tuples live beside it so the kernel's signature reads in one place.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .fastrng import _ziggurat_draw, _ziggurat_slow
from .parallel import SYNC_BAD_INDEX, SYNC_STATUS, WORK_BLOCK_NEURONS, barrier
from .readouts.kernel import (ReadoutKernelState, readout_phase_features, readout_phase_own, readout_phase_serial,
                              readout_step, readouts_split)

SCHEME_CODES = {"euler": 0, "izhikevich2003": 1, "izhikevich2004": 2}

# Return status of simulate_chunk
STATUS_OK = 0
STATUS_BUFFER_FULL = 1
STATUS_NOT_FINITE = 2
STATUS_READOUT_NOT_FINITE = 3
STATUS_ABORTED = 4
"""Another thread's call failed (the caller set the abort word of ``ThreadShared.sync``)."""

# what thread 0 publishes to the others after the serial phase (in ThreadShared.sync)
_SYNC_N_FIRED = 26
_SYNC_N_OUT = 27
_SYNC_N_STORED = 28
_SYNC_SLOT_NOW = 29
_SYNC_STORE_ROW = 30


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
    slow_filter_state: np.ndarray
    """Slow synapses' current ``s_slow`` of each neuron (read only with ``Synapses.has_slow``)."""


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
    has_slow: bool
    """Slow synapses exist: their own propagation into ``Scratch.slow_in`` and exponential filter
    (without them neither runs, and the kernel does what it did before they existed)."""
    slow_indptr: np.ndarray
    """The slow synapses, CSR by presynaptic neuron (always sparse; empty arrays without them)."""
    slow_indices: np.ndarray
    slow_weights: np.ndarray
    slow_decay: float
    """``exp(-dt / tau_slow)``."""
    slow_jump_scale: float
    """``1 / tau_slow`` (unit-area kernel, as the ``exponential`` filter)."""


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
    """``(n_blocks, PADDED_WORDS)`` uint64: in its first four words each row holds the
    xoshiro256++ state of one work block of :data:`reservoir.parallel.WORK_BLOCK_NEURONS` neurons
    (:func:`reservoir.fastrng.block_states`), advanced in place; the rest is padding."""
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
    slow_in: np.ndarray
    """Summed weights of the slow synapses (length ``N`` with slow synapses)."""
    current: np.ndarray
    fired: np.ndarray
    """Each thread's candidates from its first neuron on (``fired[bounds[t]:]``)."""


class ThreadShared(NamedTuple):
    """What the threads of one kernel call share (:mod:`reservoir.parallel`); one thread: ``T = 1``."""

    sync: np.ndarray
    """int64[SYNC_LENGTH]: the barrier's words, the abort flag and what thread 0 publishes; zeroed
    before each call."""
    bounds: np.ndarray
    """``(T + 1,)`` thread ``t`` owns neurons ``[bounds[t], bounds[t + 1])`` (whole work blocks)."""
    row_split: np.ndarray
    """``(T + 1, N)`` int64: thread ``t`` propagates synapses ``row_split[t, pre]`` to
    ``row_split[t + 1, pre] - 1`` of each CSR row (those onto its own neurons); ``(T + 1, 0)``
    with dense storage."""
    slow_row_split: np.ndarray
    """``(T + 1, N)`` the same cut of the slow synapses' CSR rows; ``(T + 1, 0)`` without them."""
    fired_counts: np.ndarray
    """``(T, PADDED_WORDS)`` each thread's spikes this step (column 0)."""
    bad_neuron: np.ndarray
    """``(T, PADDED_WORDS)`` each thread's first neuron whose state is not finite, or -1 (column 0)."""
    fired_all: np.ndarray
    """``(N,)`` int32: this step's spikes of all threads, in ascending order."""
    partial: np.ndarray
    """``(K, n_banks * n_blocks)`` the readout units' partial sums of ``w . x`` per work block."""


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


@njit(cache=True, inline="always")
def _propagate_sparse(fired_all, n_fired, own_start, own_stop, indices, weights, target):
    """Add the weights of the spikers ``fired_all[:n_fired]`` onto ``target``, each presynaptic
    row from ``own_start[pre]`` to ``own_stop[pre]`` (its synapses onto this thread's neurons).
    Unsigned indices: no negative-index wrap (1.7 against 2.6 ns per synapse), and no views of
    the rows (each view counts a reference on the shared array: atomic operations that the
    threads' cores pass back and forth)."""
    for f in range(n_fired):
        pre = fired_all[f]
        for s in range(own_start[pre], own_stop[pre]):
            synapse = np.uint64(s)
            target[np.uint32(indices[synapse])] += weights[synapse]


@njit(cache=True)
def _du_dt(v, u, a, b, u_reference, u_leak):
    """Right-hand side of the recovery equation, ``a (b (v - u_reference) - u_leak u)``.

    ``u_reference = 0, u_leak = 1`` is the 2003 form, ``u_reference = v_rest, u_leak = 1`` the
    2007 form (both bit-identical to the textbook expressions, since ``v - 0.0 == v`` and
    ``1.0 * u == u``); ``u_leak = 0, u_reference = -65`` is the 2004 accommodation panel.
    """
    return a * (b * (v - u_reference) - u_leak * u)


@njit(cache=True, nogil=True)
def simulate_chunk(thread, shared, n_steps, first_step, integration, neurons, state, synapses, external, noise, spikes,
                   traces, scratch, readouts, counts):
    """Advance the network by ``n_steps`` steps (see the module docstring for the step order).

    Parameters
    ----------
    thread : int
        This call's thread, ``0 <= thread < T``; the ``T`` calls of one chunk run at once on
        the same bundles (``T = 1``: a plain single-threaded call).
    shared : ThreadShared
        What the threads share; ``shared.sync`` zeroed before the calls.
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
        With ``noise.enabled`` every neuron draws one N(0,1) value per step from its work block's
        generator (in neuron order within the block; the states advance in place).
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
        Steps done, status, the offending neuron or readout unit, and the new buffer counts
        (every thread returns the same).
    """
    dt_ms = integration.dt_ms
    scheme = integration.scheme
    model = neurons.model
    a, b, c, d, v_peak = neurons.a, neurons.b, neurons.c, neurons.d, neurons.v_peak_mV
    quad2, quad1, quad0 = neurons.q2, neurons.q1, neurons.q0
    cap, k, v_rest, v_thresh = neurons.capacitance_pF, neurons.k, neurons.v_rest_mV, neurons.v_threshold_mV
    u_reference, u_leak, bias = neurons.u_reference_mV, neurons.u_leak, neurons.bias
    v, u, filter_state, filter_aux = state.v, state.u, state.filter_state, state.filter_aux
    slow_filter_state = state.slow_filter_state
    dense, dense_weights = synapses.dense, synapses.dense_weights
    indices, weights = synapses.indices, synapses.weights
    filter_kind = synapses.filter_kind
    decay_primary, decay_secondary, jump_scale = synapses.decay_primary, synapses.decay_secondary, synapses.jump_scale
    has_slow, slow_indices, slow_weights = synapses.has_slow, synapses.slow_indices, synapses.slow_weights
    slow_decay, slow_jump_scale = synapses.slow_decay, synapses.slow_jump_scale
    input_signal = external.signal
    input_indptr, input_indices, input_gains = external.indptr, external.indices, external.gains
    noise_std, has_noise, noise_states = noise.std, noise.enabled, noise.generator_state
    zig_k, zig_w, zig_f = noise.ziggurat_k, noise.ziggurat_w, noise.ziggurat_f
    spike_steps, spike_ids = spikes.steps, spikes.ids
    trace_ids, trace_every = traces.neuron_ids, traces.every_steps
    trace_steps, trace_v, trace_u = traces.steps, traces.v, traces.u
    syn_in, current, fired = scratch.syn_in, scratch.current, scratch.fired
    slow_in = scratch.slow_in
    sync, bounds, row_split, slow_row_split = shared.sync, shared.bounds, shared.row_split, shared.slow_row_split
    fired_counts, bad_neuron, fired_all, partial = shared.fired_counts, shared.bad_neuron, shared.fired_all, shared.partial
    has_readouts = readouts.active
    split_readouts = readouts_split(readouts)
    ro_bank, ro_units, ro_rule, ro_rls = readouts.bank, readouts.units, readouts.three_factor, readouts.rls
    ro_teacher, ro_outputs, ro_store = readouts.teacher, readouts.outputs, readouts.store  # see readout_step
    ro_protection = readouts.protection
    ro_weights = readouts.units.weights
    feedback_encoders = readouts.units.feedback_encoders
    readout_z = readouts.units.z

    n_threads = bounds.shape[0] - 1
    has_feedback = feedback_encoders.shape[0] > 0
    lo = bounds[thread]
    hi = bounds[thread + 1]
    # This thread's views of the per-neuron arrays: loops over range(n_own) of a view vectorise,
    # loops over range(lo, hi) do not (Numba wraps negative indices, and with a start read from an
    # array LLVM cannot drop the wrap: the integration loop measured 5x slower).
    n_mine = hi - lo
    v_o, u_o, fs_o, fa_o = v[lo:hi], u[lo:hi], filter_state[lo:hi], filter_aux[lo:hi]
    syn_o, cur_o, peak_o, bias_o, std_o = syn_in[lo:hi], current[lo:hi], v_peak[lo:hi], bias[lo:hi], noise_std[lo:hi]
    slow_o, ss_o = slow_in[lo:hi], slow_filter_state[lo:hi]  # empty views without slow synapses
    a_o, b_o, ur_o, ul_o = a[lo:hi], b[lo:hi], u_reference[lo:hi], u_leak[lo:hi]
    q2_o, q1_o, q0_o = quad2[lo:hi], quad1[lo:hi], quad0[lo:hi]
    cap_o, k_o, vr_o, vt_o = cap[lo:hi], k[lo:hi], v_rest[lo:hi], v_thresh[lo:hi]
    encoders_o = feedback_encoders[lo:hi] if has_feedback else feedback_encoders
    n_out = counts.outputs
    n_stored = counts.stored
    n = v.shape[0]
    capacity = spike_steps.shape[0]
    n_spikes = counts.spikes
    n_traces = counts.traces
    n_trace_neurons = trace_ids.shape[0]
    n_channels = input_signal.shape[1]
    half_dt = 0.5 * dt_ms
    generation = 0
    # Spike candidates (v >= v_peak) are found while integrating, so detection at the next
    # step's start only visits them; a chunk starts with one full pass over the own neurons.
    n_own = 0
    for i in range(n_mine):
        syn_o[i] = 0.0
        if v_o[i] >= peak_o[i]:
            fired[lo + n_own] = lo + i
            n_own += 1
    if has_slow:
        for i in range(n_mine):
            slow_o[i] = 0.0
    for step in range(n_steps):
        global_step = first_step + step
        if n_spikes + n > capacity:  # every thread holds the same count, so all stop here
            return ChunkResult(step, STATUS_BUFFER_FULL, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))
        # ---- phase A (own neurons)
        # 1. decimated trace of the state at the start of this step
        if n_trace_neurons > 0 and global_step % trace_every == 0:
            if thread == 0:
                trace_steps[n_traces] = global_step
            for t in range(n_trace_neurons):
                i = trace_ids[t]
                if lo <= i < hi:
                    trace_v[n_traces, t] = v[i]
                    trace_u[n_traces, t] = u[i]
            n_traces += 1
        # 2. spike detection and reset (ascending neuron order)
        for f in range(lo, lo + n_own):
            i = fired[f]
            v[i] = c[i]
            u[i] = u[i] + d[i]
        fired_counts[thread, 0] = n_own
        if split_readouts:  # readouts: own traces and partial sums of w . x
            readout_phase_own(ro_bank, ro_weights, fired, lo, n_own, lo, hi, dt_ms, partial)
        generation = barrier(sync, n_threads, generation)
        if generation < 0:
            return ChunkResult(step, STATUS_ABORTED, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))
        # ---- phase S (thread 0): the step's spikes in order, then the readouts' serial work
        if thread == 0:
            n_fired = 0
            for t in range(n_threads):
                for f in range(bounds[t], bounds[t] + fired_counts[t, 0]):
                    fired_all[n_fired] = fired[f]
                    spike_steps[n_spikes + n_fired] = global_step
                    spike_ids[n_spikes + n_fired] = fired[f]
                    n_fired += 1
            status = STATUS_OK
            bad_unit = -1
            slot_now = -1
            store_row = -1
            if split_readouts:
                n_out, n_stored, bad_unit, slot_now, store_row = readout_phase_serial(
                    step, global_step, dt_ms, ro_units, ro_rule, ro_teacher, ro_outputs, ro_store, partial, n_out,
                    n_stored)
            elif has_readouts:  # traces, outputs, learning (they see this step's spikes)
                n_out, n_stored, bad_unit = readout_step(step, global_step, dt_ms, fired_all, n_fired, ro_bank, ro_units,
                                                         ro_rule, ro_rls, ro_teacher, ro_outputs, ro_store,
                                                         ro_protection, n_out, n_stored)
            if bad_unit >= 0:
                status = STATUS_READOUT_NOT_FINITE
            sync[SYNC_STATUS] = status
            sync[SYNC_BAD_INDEX] = bad_unit
            sync[_SYNC_N_FIRED] = n_fired
            sync[_SYNC_N_OUT] = n_out
            sync[_SYNC_N_STORED] = n_stored
            sync[_SYNC_SLOT_NOW] = slot_now
            sync[_SYNC_STORE_ROW] = store_row
        generation = barrier(sync, n_threads, generation)
        if generation < 0:
            return ChunkResult(step, STATUS_ABORTED, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))
        n_fired = sync[_SYNC_N_FIRED]
        n_out = sync[_SYNC_N_OUT]
        n_stored = sync[_SYNC_N_STORED]
        n_spikes += n_fired
        if sync[SYNC_STATUS] != STATUS_OK:
            return ChunkResult(step, sync[SYNC_STATUS], sync[SYNC_BAD_INDEX],
                               BufferCounts(n_spikes, n_traces, n_out, n_stored))
        # ---- phase B (own neurons)
        if split_readouts:
            readout_phase_features(ro_bank, ro_units, ro_rule, ro_store, lo, hi, dt_ms, sync[_SYNC_SLOT_NOW],
                                   sync[_SYNC_STORE_ROW])
        # 3. propagation into syn_in (zero on entry; each neuron's entry is cleared when read)
        if dense:
            for f in range(n_fired):
                row = dense_weights[fired_all[f], lo:hi]
                for i in range(n_mine):
                    syn_o[i] += row[i]
        else:
            _propagate_sparse(fired_all, n_fired, row_split[thread], row_split[thread + 1], indices, weights, syn_in)
        if has_slow:  # the slow synapses: always sparse, cut at the thread boundaries as above
            _propagate_sparse(fired_all, n_fired, slow_row_split[thread], slow_row_split[thread + 1], slow_indices,
                              slow_weights, slow_in)
        # 4. synaptic filter: current = I_syn (syn_in is cleared as it is read)
        if filter_kind == 0:
            for i in range(n_mine):
                cur_o[i] = syn_o[i]
                syn_o[i] = 0.0
        elif filter_kind == 1:
            for i in range(n_mine):
                fs_o[i] = fs_o[i] * decay_primary + syn_o[i] * jump_scale
                cur_o[i] = fs_o[i]
                syn_o[i] = 0.0
        else:
            for i in range(n_mine):
                fs_o[i] = fs_o[i] * decay_primary + fa_o[i] * dt_ms
                fa_o[i] = fa_o[i] * decay_secondary + syn_o[i] * jump_scale
                cur_o[i] = fs_o[i]
                syn_o[i] = 0.0
        if has_slow:  # the slow exponential filter; I_syn = I_fast + I_slow (slow_in cleared as read)
            for i in range(n_mine):
                ss_o[i] = ss_o[i] * slow_decay + slow_o[i] * slow_jump_scale
                cur_o[i] = cur_o[i] + ss_o[i]
                slow_o[i] = 0.0
        # 5. total current: noise + I_syn + bias (+ external channels, below)
        if has_noise:  # each work block from its own generator (lo is a block boundary)
            for block_start in range(0, n_mine, WORK_BLOCK_NEURONS):
                block_stop = min(block_start + WORK_BLOCK_NEURONS, n_mine)
                generator = noise_states[(lo + block_start) // WORK_BLOCK_NEURONS]
                cur_b, std_b, bias_b = cur_o[block_start:block_stop], std_o[block_start:block_stop], bias_o[block_start:block_stop]
                for i in range(block_stop - block_start):
                    xi, layer, accepted = _ziggurat_draw(generator, zig_k, zig_w)
                    if not accepted:
                        xi = _ziggurat_slow(generator, xi, layer, zig_k, zig_w, zig_f)
                    cur_b[i] = std_b[i] * xi + cur_b[i] + bias_b[i]
        else:
            for i in range(n_mine):
                cur_o[i] = cur_o[i] + bias_o[i]
        if has_feedback:  # closed loop: encoders times this step's readout outputs
            n_units = readout_z.shape[0]
            for i in range(n_mine):
                feedback = 0.0
                for kk in range(n_units):
                    feedback += encoders_o[i, kk] * readout_z[kk]
                cur_o[i] = cur_o[i] + feedback
        for ch in range(n_channels):
            x = input_signal[step, ch]
            if x != 0.0:
                for s in range(input_indptr[ch], input_indptr[ch + 1]):
                    target = input_indices[s]
                    if lo <= target < hi:
                        current[target] += input_gains[s] * x
        # 6. integration. One loop per (scheme, model), with the model as a literal, so that
        # each loop is branch-free and vectorises (in this large function LLVM does not unswitch
        # the branches by itself: the generic loop measured 4.9 ns per neuron, these about 1.3).
        if model == 0:
            if scheme == 0:
                for i in range(n_mine):
                    vi = v_o[i]
                    ui = u_o[i]
                    dv = _dv_dt(0, vi, ui, cur_o[i], q2_o[i], q1_o[i], q0_o[i], 1.0, 0.0, 0.0, 0.0)
                    du = _du_dt(vi, ui, a_o[i], b_o[i], ur_o[i], ul_o[i])
                    v_o[i] = vi + dt_ms * dv
                    u_o[i] = ui + dt_ms * du
            elif scheme == 1:
                for i in range(n_mine):
                    vi = v_o[i]
                    ui = u_o[i]
                    vi = vi + half_dt * _dv_dt(0, vi, ui, cur_o[i], q2_o[i], q1_o[i], q0_o[i], 1.0, 0.0, 0.0, 0.0)
                    vi = vi + half_dt * _dv_dt(0, vi, ui, cur_o[i], q2_o[i], q1_o[i], q0_o[i], 1.0, 0.0, 0.0, 0.0)
                    v_o[i] = vi
                    u_o[i] = ui + dt_ms * _du_dt(vi, ui, a_o[i], b_o[i], ur_o[i], ul_o[i])
            else:
                for i in range(n_mine):
                    vi = v_o[i]
                    ui = u_o[i]
                    vi = vi + dt_ms * _dv_dt(0, vi, ui, cur_o[i], q2_o[i], q1_o[i], q0_o[i], 1.0, 0.0, 0.0, 0.0)
                    v_o[i] = vi
                    u_o[i] = ui + dt_ms * _du_dt(vi, ui, a_o[i], b_o[i], ur_o[i], ul_o[i])
        else:
            if scheme == 0:
                for i in range(n_mine):
                    vi = v_o[i]
                    ui = u_o[i]
                    dv = _dv_dt(1, vi, ui, cur_o[i], 0.0, 0.0, 0.0, cap_o[i], k_o[i], vr_o[i], vt_o[i])
                    du = _du_dt(vi, ui, a_o[i], b_o[i], ur_o[i], ul_o[i])
                    v_o[i] = vi + dt_ms * dv
                    u_o[i] = ui + dt_ms * du
            elif scheme == 1:
                for i in range(n_mine):
                    vi = v_o[i]
                    ui = u_o[i]
                    vi = vi + half_dt * _dv_dt(1, vi, ui, cur_o[i], 0.0, 0.0, 0.0, cap_o[i], k_o[i], vr_o[i], vt_o[i])
                    vi = vi + half_dt * _dv_dt(1, vi, ui, cur_o[i], 0.0, 0.0, 0.0, cap_o[i], k_o[i], vr_o[i], vt_o[i])
                    v_o[i] = vi
                    u_o[i] = ui + dt_ms * _du_dt(vi, ui, a_o[i], b_o[i], ur_o[i], ul_o[i])
            else:
                for i in range(n_mine):
                    vi = v_o[i]
                    ui = u_o[i]
                    vi = vi + dt_ms * _dv_dt(1, vi, ui, cur_o[i], 0.0, 0.0, 0.0, cap_o[i], k_o[i], vr_o[i], vt_o[i])
                    v_o[i] = vi
                    u_o[i] = ui + dt_ms * _du_dt(vi, ui, a_o[i], b_o[i], ur_o[i], ul_o[i])
        # finiteness guard and the next step's spike candidates, in a separate pass so that the
        # integration loops stay free of exits
        n_own = 0
        bad = -1
        for i in range(n_mine):
            if not (np.isfinite(v_o[i]) and np.isfinite(u_o[i])):
                bad = lo + i
                break
            if v_o[i] >= peak_o[i]:
                fired[lo + n_own] = lo + i
                n_own += 1
        bad_neuron[thread, 0] = bad
        generation = barrier(sync, n_threads, generation)
        if generation < 0:
            return ChunkResult(step, STATUS_ABORTED, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))
        for t in range(n_threads):  # the lowest non-finite neuron, as one thread would find it
            if bad_neuron[t, 0] >= 0:
                return ChunkResult(step, STATUS_NOT_FINITE, bad_neuron[t, 0],
                                   BufferCounts(n_spikes, n_traces, n_out, n_stored))
    return ChunkResult(n_steps, STATUS_OK, -1, BufferCounts(n_spikes, n_traces, n_out, n_stored))


__all__ = ["SCHEME_CODES", "STATUS_OK", "STATUS_BUFFER_FULL", "STATUS_NOT_FINITE", "STATUS_READOUT_NOT_FINITE", "STATUS_ABORTED",
           "Integration", "NeuronParams", "NetworkState", "Synapses", "ExternalDrive", "NoiseSource", "SpikeBuffer",
           "TraceBuffer", "Scratch", "ThreadShared", "BufferCounts", "ChunkResult", "ReadoutKernelState", "simulate_chunk"]
