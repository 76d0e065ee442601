"""The network specification: neurons, recurrent weights, synaptic filter, noise and bias.

A :class:`Network` is everything the engine (and the Brian2 backend) needs to simulate; it is
built from a validated :class:`~reservoir.config.NetworkConfig` and a seed by
:func:`build_network`, drawing from the ``heterogeneity``, ``connectivity`` and
``initial_state`` streams (and, where those features are on, ``adaptation`` and
``slow_synapses``; noise is drawn during the run from the ``noise`` stream).

Slow synapses (``network.slow_synapses``): a random fraction of the synapses from excitatory
neurons is moved out of :attr:`Network.connectivity` into :attr:`Network.slow_connectivity`,
whose spikes enter a second, slow exponential filter per neuron (:func:`split_slow_synapses`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import connectivity as conn
from .config import IntegrationConfig, NetworkConfig, StimulusConfig
from .firing_types import FIRING_TYPES
from .inputs import ExternalInput
from .kernels import SCHEME_CODES
from .neurons import NeuronParameters, izhikevich2003_heterogeneous, izhikevich2007_homogeneous, with_slow_recovery
from .rng import stream
from .synapses import SynapticFilter


@dataclass
class Network:
    """A fully specified reservoir (no learning)."""

    neurons: NeuronParameters
    connectivity: conn.Connectivity
    synapse: SynapticFilter
    noise_std: np.ndarray
    bias: np.ndarray
    dt_ms: float
    scheme: str
    slow_connectivity: conn.Connectivity | None = None
    """The slow synapses (always sparse CSR by presynaptic neuron, weights already times
    ``weight_scale``), or ``None``: no slow component, the engine's path of before."""
    slow_tau_ms: float = 100.0
    """Decay time constant of the slow synapses' exponential filter (unit area)."""

    def __post_init__(self) -> None:
        n = self.neurons.n_neurons
        if self.scheme not in SCHEME_CODES:
            raise ValueError(f"integration scheme must be one of {sorted(SCHEME_CODES)}, got {self.scheme!r}")
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms!r}")
        self.noise_std = np.array(np.broadcast_to(self.noise_std, (n,)), dtype=np.float64)  # own, writable
        self.bias = np.array(np.broadcast_to(self.bias, (n,)), dtype=np.float64)
        if self.connectivity.n_neurons != n:
            raise ValueError("connectivity and neurons disagree on the number of neurons")
        if self.slow_connectivity is not None:
            if self.slow_connectivity.n_neurons != n:
                raise ValueError("slow_connectivity and neurons disagree on the number of neurons")
            if self.slow_connectivity.is_dense:
                raise ValueError("slow_connectivity must be stored sparse (its own CSR rows, split by thread)")
            if not self.slow_tau_ms > 0:
                raise ValueError(f"slow_tau_ms must be > 0, got {self.slow_tau_ms!r}")

    @property
    def n_neurons(self) -> int:
        return self.neurons.n_neurons

    @property
    def has_noise(self) -> bool:
        return bool(np.any(self.noise_std > 0))

    @property
    def has_slow_synapses(self) -> bool:
        """Whether the slow component exists (it may hold no synapse, yet its filter runs)."""
        return self.slow_connectivity is not None

    def slow_filter(self) -> SynapticFilter:
        """The slow synapses' filter: ``exponential`` with :attr:`slow_tau_ms`."""
        return SynapticFilter("exponential", tau_ms=self.slow_tau_ms)


def build_neurons(config: NetworkConfig, seed: int) -> NeuronParameters:
    n = config.n_neurons
    n_exc = int(round(config.excitatory_fraction * n))
    if config.firing_type is not None:
        return FIRING_TYPES[config.firing_type].neuron_parameters()
    if config.neuron_model == "izhikevich2003":
        neurons = izhikevich2003_heterogeneous(n_exc, n - n_exc, stream(seed, "heterogeneity"))
    else:
        neurons = izhikevich2007_homogeneous(n, config.izhikevich2007, stream(seed, "initial_state"), n_excitatory=n_exc)
    adaptation = config.adaptation
    if adaptation.fraction > 0:
        neurons = with_slow_recovery(neurons, adaptation.fraction, adaptation.a_min, adaptation.a_max, adaptation.d,
                                     stream(seed, "adaptation"))
    return neurons


def split_slow_synapses(connectivity: conn.Connectivity, is_excitatory: np.ndarray, fraction: float,
                        weight_scale: float, rng: np.random.Generator) -> tuple[conn.Connectivity, conn.Connectivity]:
    """Split the recurrent synapses into fast and slow ones: ``(fast, slow)``, both sparse.

    Each synapse whose presynaptic neuron is excitatory is slow with probability ``fraction``:
    one ``U(0, 1)`` is drawn from ``rng`` per stored synapse in CSR order (inhibitory ones draw
    too and are never slow), so which synapse is slow does not depend on anything but its place.
    The slow synapses keep their weights times ``weight_scale``; the fast ones keep theirs.

    NMDA-like slow excitation gives a network a time scale of its own: NMDA receptors' decay of
    about 100 ms is what holds persistent activity in Wang's cortical models (Wang 1999,
    J Neurosci 19:9587; Wang 2002, Neuron 36:955), and heterogeneous synaptic time constants
    help spiking networks with temporally structured tasks (Perez-Nieves et al. 2021, Nat Commun
    12:5791).
    """
    pre, post = connectivity.pre_post_pairs()
    slow = np.asarray(is_excitatory, dtype=bool)[pre] & (rng.random(pre.size) < fraction)
    n = connectivity.n_neurons
    weights = connectivity.weights
    fast_conn = conn.from_pre_post(n, pre[~slow], post[~slow], weights[~slow])
    slow_weights = weights[slow] * weight_scale if weight_scale != 1.0 else weights[slow]
    slow_conn = conn.from_pre_post(n, pre[slow], post[slow], slow_weights)
    return fast_conn, slow_conn


def build_connectivity(config: NetworkConfig, neurons: NeuronParameters, seed: int) -> conn.Connectivity:
    """The recurrent connectivity of ``config`` (all synapses, fast and slow alike) with its storage."""
    return _with_storage(_draw_connectivity(config, neurons, seed), config)


def _with_storage(connectivity: conn.Connectivity, config: NetworkConfig) -> conn.Connectivity:
    """The configured storage; a network without recurrent synapses (rule ``none``) stays sparse."""
    return connectivity if config.connectivity.rule == "none" else connectivity.with_storage(config.connectivity.storage)


def _draw_connectivity(config: NetworkConfig, neurons: NeuronParameters, seed: int) -> conn.Connectivity:
    c = config.connectivity
    n = neurons.n_neurons
    if c.rule == "none":
        return conn.Connectivity(n, np.zeros(n + 1), np.zeros(0), np.zeros(0))  # sparse whatever the storage
    rng = stream(seed, "connectivity")
    pre, post, expected = conn.sample_pairs(
        c.rule, n, rng, probability=c.probability, in_degree=c.in_degree,
        allow_self_connections=c.allow_self_connections)
    if c.weight_scheme == "izhikevich2003":
        weights = conn.izhikevich2003_weights(
            pre, neurons.is_excitatory, rng, expected, c.excitatory_weight_max,
            c.inhibitory_weight_max, c.reference_in_degree)
    else:
        p = expected / n if c.rule != "bernoulli" else c.probability
        weights = conn.nicola_clopath_weights(pre, post, n, rng, c.gain, p, c.balance_rows)
    return conn.from_pre_post(n, pre, post, weights)


def build_network(config: NetworkConfig, integration: IntegrationConfig, seed: int) -> Network:
    """Build the :class:`Network` described by ``config`` for ``seed``."""
    neurons = build_neurons(config, seed)
    drawn = _draw_connectivity(config, neurons, seed)
    slow_config = config.slow_synapses
    slow = None
    if slow_config.fraction > 0:  # with fraction 0 nothing is drawn and nothing changes
        drawn, slow = split_slow_synapses(drawn, neurons.is_excitatory, slow_config.fraction,
                                          slow_config.weight_scale, stream(seed, "slow_synapses"))
    connectivity = _with_storage(drawn, config)
    s = config.synapse
    noise_std = np.where(neurons.is_excitatory, config.noise.excitatory_std, config.noise.inhibitory_std)
    return Network(
        neurons=neurons, connectivity=connectivity,
        synapse=SynapticFilter(s.kind, s.tau_ms, s.tau_rise_ms, s.tau_decay_ms),
        noise_std=noise_std, bias=np.full(neurons.n_neurons, config.bias_current),
        dt_ms=integration.dt_ms, scheme=integration.scheme,
        slow_connectivity=slow, slow_tau_ms=slow_config.tau_ms,
    )


def build_stimulus(config: StimulusConfig, network: Network, n_steps: int, firing_type: str | None) -> ExternalInput:
    """External input of a plain run: nothing, a current step, or a firing type's protocol."""
    if config.kind == "none":
        return ExternalInput.none()
    if config.kind == "firing_type_protocol":
        current = FIRING_TYPES[firing_type].input_current()  # type: ignore[index]
        return ExternalInput.from_subsets(current[:n_steps], [np.array([0])])
    t = np.arange(n_steps) * network.dt_ms
    stop = np.inf if config.stop_ms is None else config.stop_ms
    signal = np.where((t >= config.start_ms) & (t < stop), config.amplitude, 0.0)
    exc = network.neurons.is_excitatory
    mask = {"all": np.ones_like(exc), "excitatory": exc, "inhibitory": ~exc}[config.target]
    return ExternalInput.from_subsets(signal, [np.flatnonzero(mask)])
