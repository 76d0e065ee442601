"""The engine's network, built and run in Brian2 2.9 with the engine's exact step order.

This backend is a cross-check (with the ``numpy`` target and noise off it reproduces the
engine's spike trains exactly) and the peer of the speed benchmark. ``brian2`` is imported
inside the functions, so ``import reservoir`` never needs it.

Mapping of a :class:`~reservoir.network.Network` onto Brian2
-------------------------------------------------------------
Neurons
    One dimensionless ``NeuronGroup`` whose model has no differential equations: ``v``, ``u``,
    the accumulator ``syn_in``, the filter state ``filter_state``/``filter_aux`` and every
    per-neuron parameter (``a, b, c, d, v_peak``, the recovery equation's ``u_reference`` and
    ``u_leak``, the 2003 coefficients ``q2, q1, q0`` or the 2007 ``cap, k, v_rest, v_thresh``,
    ``noise_std``, ``bias``) are plain variables. Time is in
    ms as in the engine; ``defaultclock.dt = dt_ms * ms``; float64 throughout.
Recurrent connectivity
    Dense and sparse networks alike become one ``Synapses`` object built with
    ``connect(i=pre, j=post)`` from the CSR (presynaptic-major, so synapse indices ascend with
    the presynaptic neuron), weight ``w``, ``on_pre: syn_in_post += w`` and no delay.
Slow synapses
    With :attr:`~reservoir.network.Network.slow_connectivity`, a second ``Synapses`` object
    (``on_pre: syn_slow_post += w``, same schedule) fills a second accumulator ``syn_slow``,
    filtered by ``slow_filter_state = slow_filter_state*slow_decay + syn_slow*slow_jump_scale``
    after the fast filter; the synaptic current is then ``I_fast + slow_filter_state`` (the
    engine's order).
External input
    The signal (steps x channels) becomes a 2-D ``TimedArray`` with one extra zero row (steps
    past the end of the signal get no input, as in the engine) and one extra zero column (a
    dummy channel). Each neuron gets ``K`` input slots (``K`` = the largest number of
    projection entries onto one neuron): ``ext_channel_k`` and ``ext_gain_k``, filled in the
    engine's order (channel ascending, then CSR position). The current adds
    ``ext_gain_k * external_signal(t, ext_channel_k)`` slot by slot, which is the engine's
    ``current += gain * x`` loop term by term (unused slots add ``0 * 0``).

Schedule of one step (``t = step * dt``), identical to :mod:`reservoir.kernels`
    ``start``, order 0  thresholder ``v >= v_peak`` (the spike is stamped with this step);
    ``start``, order 1  resetter ``v = c; u = u + d``;
    ``start``, order 2  synaptic propagation ``syn_in_post += w`` (spikers in ascending order,
                        so each ``syn_in`` is summed in the engine's order);
    ``start``, order -1 optional state monitor of ``v``/``u`` (the state at the step's start,
                        as the engine's traces);
    ``start``, order 3  spike monitor;
    ``groups``, order 0 one ``run_regularly`` block: synaptic filter (with the engine's own
                        coefficients from :meth:`SynapticFilter.coefficients`), total current
                        ``noise_std * randn() + I_syn + bias`` (noise term omitted when the
                        network has no noise, as in the engine) plus the input slots, the
                        integration scheme, and finally ``syn_in = 0`` (and ``syn_slow = 0``).

Arithmetic identity
    The integration is explicit abstract code, not differential equations, and every
    expression is written with the engine's operand order (``q2*v*v + q1*v + q0 - u + I``,
    ``(k*(v - v_rest)*(v - v_thresh) - u + I)/cap``, and the kernel's general recovery equation
    ``a*(b*(v - u_reference) - u_leak*u)``, which is the 2003 and 2007 forms bit for bit;
    ``euler``: both derivatives from the old state; ``izhikevich2003``: two half steps of ``v``
    then ``u`` from the new ``v``; ``izhikevich2004``: one ``v`` step then ``u`` from the new
    ``v``). Two Brian2 rewrites would change the rounding and are avoided: the loop-invariant
    optimiser re-orders sums (it collects ``x - u + I`` into ``x + I - u``), so
    ``prefs.codegen.loop_invariant_optimisations`` is switched off while this backend generates
    code; and a statement ``x = x + expr`` on a state variable is re-printed through sympy, so
    every value is computed into a fresh temporary and state variables are only ever assigned
    a temporary. With the ``numpy`` target each operation is then the same IEEE operation as
    in the compiled kernel. The ``cython`` target and ``cpp_standalone`` compile with Brian2's
    default ``-ffast-math -march=native``, which lets the C compiler re-associate and contract
    ``a + b*c`` into FMA; that changes the last bits, and a recurrent network amplifies them into
    different spike trains after a few hundred ms, so with default flags they agree with the
    engine statistically. ``strict_floating_point=True`` compiles the ``cython`` target without
    fast math and FMA contraction, and it then reproduces the engine exactly as well.

Differences
    Brian2 draws its noise from its own generator (``brian2.seed``), so noisy runs agree in
    distribution only. The engine's finiteness guard (it raises on NaN/inf) has no Brian2
    counterpart here.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs import ExternalInput
from ..network import Network

#: Brian2 runtime code-generation targets this backend accepts.
RUNTIME_TARGETS = ("numpy", "cython")

_THRESHOLD_ORDER, _RESET_ORDER, _PROPAGATION_ORDER, _MONITOR_ORDER = 0, 1, 2, 3


@dataclass
class Brian2Model:
    """A :class:`~reservoir.network.Network` built in Brian2, ready to run.

    Attributes
    ----------
    network : brian2.Network
        Holds every object below; run it through :meth:`run` (which sets the preferences the
        exact arithmetic relies on), or directly after setting them yourself.
    neurons : brian2.NeuronGroup
        State ``v``, ``u``, ``syn_in``, ``filter_state``, ``filter_aux`` and the parameters.
    synapses : brian2.Synapses or None
        ``None`` when the network has no recurrent synapses.
    slow_synapses : brian2.Synapses or None
        The slow synapses (``on_pre: syn_slow_post += w``); ``None`` without any.
    spike_monitor : brian2.SpikeMonitor or None
    state_monitor : brian2.StateMonitor or None
        Records ``v`` and ``u`` of the ``trace_ids`` given to :func:`build_brian2_network`.
    dt_ms : float
    target : str
        Code-generation target used by :meth:`run` (ignored by a standalone device).
    abstract_code : str
        The per-step ``run_regularly`` code (filter, current, integration), for inspection.
    strict_floating_point : bool
        Compile the ``cython`` target without fast math (see :func:`build_brian2_network`).
    """

    network: Any
    neurons: Any
    synapses: Any
    slow_synapses: Any
    spike_monitor: Any
    state_monitor: Any
    dt_ms: float
    target: str
    abstract_code: str
    strict_floating_point: bool = False

    def run(self, n_steps: int, seed: int | None = None, report=None) -> None:
        """Advance by ``n_steps`` steps; ``seed`` (if given) seeds Brian2's random numbers."""
        import brian2

        with _codegen_preferences(self.target, self.strict_floating_point):
            if seed is not None:
                brian2.seed(seed)
            self.network.run(n_steps * self.dt_ms * brian2.ms, namespace={}, report=report)

    def spike_trains(self) -> tuple[np.ndarray, np.ndarray]:
        """``(spike_steps, spike_ids)`` as int64/int32 arrays, in the engine's convention."""
        if self.spike_monitor is None:
            raise RuntimeError("this model was built with record_spikes=False")
        times_s = np.asarray(self.spike_monitor.t_[:], dtype=np.float64)
        steps = np.rint(times_s / (self.dt_ms * 1e-3)).astype(np.int64)
        ids = np.asarray(self.spike_monitor.i[:], dtype=np.int32)
        return steps, ids

    def traces(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(trace_steps, trace_v, trace_u)``, the last two ``(steps, neurons)``, as the engine's
        recorder with ``trace_every_steps=1``."""
        if self.state_monitor is None:
            raise RuntimeError("this model was built without trace_ids")
        steps = np.rint(np.asarray(self.state_monitor.t_[:]) / (self.dt_ms * 1e-3)).astype(np.int64)
        return steps, np.asarray(self.state_monitor.v[:]).T.copy(), np.asarray(self.state_monitor.u[:]).T.copy()

    def state(self) -> dict[str, np.ndarray]:
        """Current ``v``, ``u``, ``filter_state``, ``filter_aux`` and, with slow synapses,
        ``slow_filter_state`` (copies)."""
        names = ["v", "u", "filter_state", "filter_aux"]
        if "slow_filter_state" in self.neurons.variables:
            names.append("slow_filter_state")
        return {name: np.array(getattr(self.neurons, name)[:], dtype=np.float64) for name in names}


#: Brian2's default gcc flags minus the ones that let the compiler re-associate or fuse
#: floating-point operations (``-ffast-math`` and FMA contraction).
_STRICT_COMPILE_ARGS = ["-w", "-O3", "-fno-fast-math", "-ffp-contract=off", "-march=native", "-std=c++11"]


@contextlib.contextmanager
def _codegen_preferences(target: str, strict_floating_point: bool = False):
    """Set the target, switch off loop-invariant optimisation and, if asked, compile without
    fast math (into a separate Cython cache: Brian2's cache key ignores compiler flags).
    Restores every preference afterwards."""
    from brian2 import prefs

    names = ["codegen.target", "codegen.loop_invariant_optimisations", "core.default_float_dtype"]
    values: dict[str, Any] = {"codegen.target": target, "codegen.loop_invariant_optimisations": False,
                              "core.default_float_dtype": np.float64}
    if strict_floating_point:
        names += ["codegen.cpp.extra_compile_args_gcc", "codegen.runtime.cython.cache_dir"]
        values["codegen.cpp.extra_compile_args_gcc"] = list(_STRICT_COMPILE_ARGS)
        values["codegen.runtime.cython.cache_dir"] = str(_strict_cache_dir())
    saved = {name: prefs[name] for name in names}
    for name, value in values.items():
        prefs[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            prefs[name] = value


def _strict_cache_dir():
    return Path.home() / ".cython" / "brian_extensions_strict_floating_point"


def _input_slots(external_input: ExternalInput, n_neurons: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron input slots ``(channels, gains)``, each ``(K, n_neurons)``, in engine order.

    Unused slots point at the dummy channel ``n_channels`` (always zero) with gain 0.
    """
    ext = external_input
    n_channels = ext.n_channels
    if n_channels == 0 or ext.indices.size == 0:
        return np.zeros((0, n_neurons), dtype=np.int32), np.zeros((0, n_neurons))
    entry_channel = np.repeat(np.arange(n_channels, dtype=np.int32), np.diff(ext.indptr))
    order = np.argsort(ext.indices, kind="stable")  # by neuron, then engine order (ch, CSR position)
    neurons = ext.indices[order]
    counts = np.bincount(neurons, minlength=n_neurons)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(order.size) - first[neurons]
    n_slots = int(counts.max())
    channels = np.full((n_slots, n_neurons), n_channels, dtype=np.int32)
    gains = np.zeros((n_slots, n_neurons))
    channels[slot, neurons] = entry_channel[order]
    gains[slot, neurons] = ext.gains[order]
    return channels, gains


def _dv_expression(model: str, v: str, u: str) -> str:
    if model == "izhikevich2003":
        return f"q2*{v}*{v} + q1*{v} + q0 - {u} + current"
    return f"(k*({v} - v_rest)*({v} - v_thresh) - {u} + current)/cap"


def _du_expression(v: str, u: str) -> str:
    # the kernel's _du_dt: u_reference = 0, u_leak = 1 (2003), v_rest and 1 (2007), or a firing
    # type's own values (the 2004 accommodation panel)
    return f"a*(b*({v} - u_reference) - u_leak*{u})"


def state_update_code(network: Network, n_input_slots: int) -> str:
    """The ``run_regularly`` abstract code of one step: filter, current, integration, reset of
    the accumulator. Every value goes into a fresh temporary (see module docstring)."""
    model = network.neurons.model
    lines = []
    kind = network.synapse.kind
    if kind == "delta":
        lines.append("synaptic_current = syn_in")
    elif kind == "exponential":
        lines += ["filter_state_next = filter_state*filter_decay_primary + syn_in*filter_jump_scale",
                  "filter_state = filter_state_next",
                  "synaptic_current = filter_state_next"]
    else:
        lines += ["filter_state_next = filter_state*filter_decay_primary + filter_aux*step_ms",
                  "filter_aux_next = filter_aux*filter_decay_secondary + syn_in*filter_jump_scale",
                  "filter_state = filter_state_next",
                  "filter_aux = filter_aux_next",
                  "synaptic_current = filter_state_next"]
    if network.has_slow_synapses:  # the slow filter after the fast one; I_syn = I_fast + I_slow
        lines = [line.replace("synaptic_current = ", "fast_current = ") for line in lines]
        lines += ["slow_filter_state_next = slow_filter_state*slow_decay + syn_slow*slow_jump_scale",
                  "slow_filter_state = slow_filter_state_next",
                  "synaptic_current = fast_current + slow_filter_state_next"]
    if network.has_noise:
        lines.append("current_0 = noise_std*randn() + synaptic_current + bias")
    else:
        lines.append("current_0 = synaptic_current + bias")
    for slot in range(n_input_slots):
        lines.append(f"current_{slot + 1} = current_{slot} + ext_gain_{slot}*external_signal(t, ext_channel_{slot})")
    lines.append(f"current = current_{n_input_slots}")
    dv = lambda v, u: _dv_expression(model, v, u)  # noqa: E731
    du = _du_expression
    if network.scheme == "euler":
        lines += [f"dv_dt = {dv('v', 'u')}",
                  f"du_dt = {du('v', 'u')}",
                  "v_next = v + step_ms*dv_dt",
                  "u_next = u + step_ms*du_dt"]
    elif network.scheme == "izhikevich2003":
        lines += [f"v_half = v + half_step_ms*({dv('v', 'u')})",
                  f"v_next = v_half + half_step_ms*({dv('v_half', 'u')})",
                  f"u_next = u + step_ms*({du('v_next', 'u')})"]
    else:  # izhikevich2004
        lines += [f"v_next = v + step_ms*({dv('v', 'u')})",
                  f"u_next = u + step_ms*({du('v_next', 'u')})"]
    lines += ["v = v_next", "u = u_next", "syn_in = 0"]
    if network.has_slow_synapses:
        lines.append("syn_slow = 0")
    return "\n".join(lines)


def build_brian2_network(network: Network, external_input: ExternalInput | None = None, *,
                         target: str = "numpy", record_spikes: bool = True, trace_ids=None,
                         strict_floating_point: bool = False) -> Brian2Model:
    """Build ``network`` (and its external input) in Brian2; see the module docstring.

    Parameters
    ----------
    network : Network
    external_input : ExternalInput, optional
        The whole signal is stored; steps past its end receive no input, as in the engine.
    target : {"numpy", "cython"}
        Runtime code-generation target used by :meth:`Brian2Model.run`. Under a standalone
        device (``brian2.set_device("cpp_standalone")``, set by the caller) it is ignored.
    record_spikes : bool
        Attach a ``SpikeMonitor`` (read it with :meth:`Brian2Model.spike_trains`).
    trace_ids : sequence of int, optional
        Neurons whose ``v`` and ``u`` are recorded every step at the step's start, before spike
        detection, like the engine's traces (read them with :meth:`Brian2Model.traces`).
    strict_floating_point : bool
        For the ``cython`` target: compile without ``-ffast-math`` and with
        ``-ffp-contract=off``, into a separate Cython cache
        (``~/.cython/brian_extensions_strict_floating_point``), so that the compiled code does
        the engine's IEEE operations and reproduces its spike trains exactly. The ``numpy``
        target needs no such option.

    Returns
    -------
    Brian2Model
    """
    import brian2
    from brian2 import NeuronGroup, SpikeMonitor, StateMonitor, Synapses, TimedArray, defaultclock, ms

    if target not in RUNTIME_TARGETS:
        raise ValueError(f"target must be one of {RUNTIME_TARGETS}, got {target!r}")
    external_input = external_input if external_input is not None else ExternalInput.none()
    n = network.n_neurons
    if external_input.indices.size and (external_input.indices.min() < 0 or external_input.indices.max() >= n):
        raise ValueError("external input projects onto neuron ids outside the network")
    neurons_spec = network.neurons
    brian2.start_scope()
    defaultclock.dt = network.dt_ms * ms
    slot_channels, slot_gains = _input_slots(external_input, n)
    n_slots = slot_channels.shape[0]

    parameters = ["a", "b", "c", "d", "v_peak", "u_reference", "u_leak", "noise_std", "bias"]
    if neurons_spec.model == "izhikevich2003":
        parameters += ["q2", "q1", "q0"]
    else:
        parameters += ["cap", "k", "v_rest", "v_thresh"]
    equations = ["v : 1", "u : 1", "syn_in : 1", "filter_state : 1", "filter_aux : 1"]
    if network.has_slow_synapses:
        equations += ["syn_slow : 1", "slow_filter_state : 1"]
    equations += [f"{name} : 1 (constant)" for name in parameters]
    for slot in range(n_slots):
        equations += [f"ext_channel_{slot} : integer (constant)", f"ext_gain_{slot} : 1 (constant)"]

    decay_primary, decay_secondary, jump_scale = network.synapse.coefficients(network.dt_ms)
    namespace: dict[str, Any] = {
        "step_ms": float(network.dt_ms), "half_step_ms": 0.5 * float(network.dt_ms),
        "filter_decay_primary": float(decay_primary), "filter_decay_secondary": float(decay_secondary),
        "filter_jump_scale": float(jump_scale),
    }
    if network.has_slow_synapses:
        slow_decay, _, slow_jump_scale = network.slow_filter().coefficients(network.dt_ms)
        namespace.update(slow_decay=float(slow_decay), slow_jump_scale=float(slow_jump_scale))
    if n_slots:
        signal = external_input.materialize()  # the whole time course (streamed inputs: built here)
        table = np.zeros((signal.shape[0] + 1, external_input.n_channels + 1))
        table[:-1, :-1] = signal
        namespace["external_signal"] = TimedArray(table, dt=network.dt_ms * ms, name="external_signal")

    group = NeuronGroup(n, "\n".join(equations), threshold="v >= v_peak", reset="v = c\nu = u + d",
                        method="exact", namespace=namespace, name="reservoir")
    group.thresholder["spike"].when = "start"
    group.thresholder["spike"].order = _THRESHOLD_ORDER
    group.resetter["spike"].when = "start"
    group.resetter["spike"].order = _RESET_ORDER
    values = {
        "a": neurons_spec.a, "b": neurons_spec.b, "c": neurons_spec.c, "d": neurons_spec.d,
        "v_peak": neurons_spec.v_peak_mV, "u_reference": neurons_spec.u_reference_mV,
        "u_leak": neurons_spec.u_leak, "noise_std": network.noise_std, "bias": network.bias,
        "v": neurons_spec.v_initial_mV, "u": neurons_spec.u_initial,
    }
    if neurons_spec.model == "izhikevich2003":
        q = neurons_spec.quadratic_coefficients
        values.update(q2=q[:, 0], q1=q[:, 1], q0=q[:, 2])
    else:
        values.update(cap=neurons_spec.capacitance_pF, k=neurons_spec.k, v_rest=neurons_spec.v_rest_mV,
                      v_thresh=neurons_spec.v_threshold_mV)
    for slot in range(n_slots):
        values[f"ext_channel_{slot}"] = slot_channels[slot]
        values[f"ext_gain_{slot}"] = slot_gains[slot]
    for name, value in values.items():
        setattr(group, name, np.ascontiguousarray(value))
    code = state_update_code(network, n_slots)
    updater = group.run_regularly(code, when="groups", order=0, name="reservoir_step")
    objects = [group, updater]

    synapses = slow_synapses = None
    for conn, accumulator, name in ((network.connectivity, "syn_in", "recurrent"),
                                    (network.slow_connectivity, "syn_slow", "recurrent_slow")):
        if conn is None or not conn.n_synapses:
            continue
        made = Synapses(group, group, model="w : 1 (constant)", on_pre=f"{accumulator}_post += w",
                        namespace={}, name=name)
        pre, post = conn.pre_post_pairs()
        made.connect(i=pre.astype(np.int32), j=post.astype(np.int32))
        made.w = conn.weights
        made.pre.when = "start"
        made.pre.order = _PROPAGATION_ORDER
        objects.append(made)
        if accumulator == "syn_in":
            synapses = made
        else:
            slow_synapses = made
    monitor = None
    if record_spikes:
        monitor = SpikeMonitor(group, when="start", order=_MONITOR_ORDER, name="spikes")
        objects.append(monitor)
    state_monitor = None
    if trace_ids is not None and len(trace_ids):
        record = np.asarray(trace_ids, dtype=np.int64)
        if record.min() < 0 or record.max() >= n:
            raise ValueError(f"trace_ids must lie in [0, {n})")
        state_monitor = StateMonitor(group, ["v", "u"], record=record, when="start", order=-1, name="traces")
        objects.append(state_monitor)
    net = brian2.Network(*objects)
    return Brian2Model(network=net, neurons=group, synapses=synapses, slow_synapses=slow_synapses,
                       spike_monitor=monitor,
                       state_monitor=state_monitor,
                       dt_ms=float(network.dt_ms), target=target, abstract_code=code,
                       strict_floating_point=strict_floating_point)


def run_brian2(network: Network, external_input: ExternalInput | None = None, n_steps: int = 0,
               target: str = "numpy", seed: int | None = None,
               strict_floating_point: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Build ``network`` in Brian2, run ``n_steps`` steps and return ``(spike_steps, spike_ids)``.

    Spikes are stamped as in the engine (the step at whose start ``v >= v_peak`` is detected),
    sorted by step and, within a step, by neuron id.

    Examples
    --------
    >>> from reservoir import resolve_config, build_network
    >>> from reservoir.backends.brian2 import run_brian2
    >>> cfg = resolve_config("izhikevich2003", {"duration_ms": 100})
    >>> net = build_network(cfg.network, cfg.integration, seed=1)
    >>> steps, ids = run_brian2(net, n_steps=cfg.n_steps, seed=1)
    """
    model = build_brian2_network(network, external_input, target=target, record_spikes=True,
                                 strict_floating_point=strict_floating_point)
    model.run(n_steps, seed=seed)
    return model.spike_trains()
