"""The network specification: neurons, recurrent weights, synaptic filter, noise and bias.

A :class:`Network` is everything the engine (and the Brian2 backend) needs to simulate; it is
built from a validated :class:`~reservoir.config.NetworkConfig` and a seed by
:func:`build_network`, drawing from the ``heterogeneity``, ``connectivity`` and
``initial_state`` streams only (noise is drawn during the run from the ``noise`` stream).
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

    @property
    def n_neurons(self) -> int:
        return self.neurons.n_neurons

    @property
    def has_noise(self) -> bool:
        return bool(np.any(self.noise_std > 0))


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


def build_connectivity(config: NetworkConfig, neurons: NeuronParameters, seed: int) -> conn.Connectivity:
    c = config.connectivity
    n = neurons.n_neurons
    if c.rule == "none":
        empty = conn.Connectivity(n, np.zeros(n + 1), np.zeros(0), np.zeros(0))
        return empty.with_storage("sparse")
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
    return conn.from_pre_post(n, pre, post, weights).with_storage(c.storage)


def build_network(config: NetworkConfig, integration: IntegrationConfig, seed: int) -> Network:
    """Build the :class:`Network` described by ``config`` for ``seed``."""
    neurons = build_neurons(config, seed)
    connectivity = build_connectivity(config, neurons, seed)
    s = config.synapse
    noise_std = np.where(neurons.is_excitatory, config.noise.excitatory_std, config.noise.inhibitory_std)
    return Network(
        neurons=neurons, connectivity=connectivity,
        synapse=SynapticFilter(s.kind, s.tau_ms, s.tau_rise_ms, s.tau_decay_ms),
        noise_std=noise_std, bias=np.full(neurons.n_neurons, config.bias_current),
        dt_ms=integration.dt_ms, scheme=integration.scheme,
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
