"""Synaptic filters against closed forms, using a deterministic 'integrator' neuron.

The postsynaptic neuron has every term of dv/dt switched off except the input current
(q2 = q1 = q0 = 0, a = 0, u = 0) and is integrated by forward Euler, so
``v(n) = v(0) + dt * sum_{m<n} I_syn(m)``: its trace is the filter's cumulative output.
"""
import math

import numpy as np
import pytest

from reservoir import ExternalInput, Simulation
from reservoir.connectivity import from_pre_post
from reservoir.network import Network
from reservoir.neurons import NeuronParameters
from reservoir.synapses import SynapticFilter

DT = 0.25
WEIGHT = 3.0


def _two_neuron_network(synapse: SynapticFilter) -> Network:
    one = np.ones(2)
    neurons = NeuronParameters(
        model="izhikevich2003", a=np.array([0.02, 0.0]), b=np.array([0.2, 0.0]), c=np.array([-65.0, -65.0]),
        d=np.array([6.0, 0.0]), v_peak_mV=np.array([30.0, 1e9]), is_excitatory=one.astype(bool),
        v_initial_mV=np.array([-65.0, 0.0]), u_initial=np.array([-13.0, 0.0]),
        quadratic_coefficients=np.array([[0.04, 5.0, 140.0], [0.0, 0.0, 0.0]]))
    connectivity = from_pre_post(2, np.array([0]), np.array([1]), np.array([WEIGHT]))
    return Network(neurons, connectivity, synapse, noise_std=0.0, bias=0.0, dt_ms=DT, scheme="euler")


def _run(synapse: SynapticFilter, n_steps=400):
    network = _two_neuron_network(synapse)
    kick = np.zeros(n_steps)
    kick[0] = 1e4  # one huge pulse: neuron 0 spikes exactly once, at step 1
    sim = Simulation(network, ExternalInput.from_subsets(kick, [np.array([0])]), trace_ids=[1])
    sim.run(n_steps=n_steps)
    rec = sim.recorder
    assert rec.spike_ids.tolist() == [0] and rec.spike_steps.tolist() == [1]
    return rec.trace_steps, rec.trace_v[:, 0]


def _expected_charge(current_at_step, steps):
    cumulative = np.concatenate([[0.0], np.cumsum([current_at_step(m) for m in range(steps[-1])])])
    return DT * cumulative[steps]


def test_delta_synapse_is_a_one_step_current():
    steps, v = _run(SynapticFilter("delta"))
    expected = _expected_charge(lambda m: WEIGHT if m == 1 else 0.0, steps)
    np.testing.assert_allclose(v, expected, rtol=0, atol=1e-12)


def test_exponential_synapse_matches_closed_form():
    tau = 5.0
    steps, v = _run(SynapticFilter("exponential", tau_ms=tau))
    current = lambda m: 0.0 if m < 1 else WEIGHT / tau * math.exp(-(m - 1) * DT / tau)  # noqa: E731
    np.testing.assert_allclose(v, _expected_charge(current, steps), rtol=1e-12, atol=1e-12)
    assert v[-1] == pytest.approx(WEIGHT * DT / (1 - math.exp(-DT / tau)) / tau, rel=1e-6)  # total charge


def test_double_exponential_synapse_matches_closed_form():
    tr, td = 2.0, 20.0
    steps, v = _run(SynapticFilter("double_exponential", tau_rise_ms=tr, tau_decay_ms=td), n_steps=2000)
    er, ed = math.exp(-DT / tr), math.exp(-DT / td)

    def current(m):  # h jumps at step 1 and enters s one step later: s(m) = dt*J/(tr td) sum_k er^(m-2-k) ed^k
        if m < 2:
            return 0.0
        n = m - 2
        return DT * WEIGHT / (tr * td) * (er ** (n + 1) - ed ** (n + 1)) / (er - ed)

    np.testing.assert_allclose(v, _expected_charge(current, steps), rtol=1e-10, atol=1e-12)
    # total charge: the geometric series of both filters; it tends to WEIGHT (unit area) as dt -> 0
    total = WEIGHT * DT**2 / (tr * td * (1 - er) * (1 - ed))
    assert v[-1] == pytest.approx(total, rel=1e-4)
    assert total == pytest.approx(WEIGHT, rel=DT / tr)


def test_filter_validation():
    with pytest.raises(ValueError, match="synapse kind"):
        SynapticFilter("alpha")
    with pytest.raises(ValueError, match="tau_ms"):
        SynapticFilter("exponential", tau_ms=0.0)


# ------------------------------------------------------------------------------------------------
# slow (NMDA-like) synapses: network.slow_synapses

def _with_slow_synapse(fast_weight: float, slow_weight: float, tau_ms: float) -> Network:
    """The two-neuron network with a fast delta synapse 0 -> 1 and a slow one beside it."""
    network = _two_neuron_network(SynapticFilter("delta"))
    network.connectivity = from_pre_post(2, np.array([0]), np.array([1]), np.array([fast_weight]))
    network.slow_connectivity = from_pre_post(2, np.array([0]), np.array([1]), np.array([slow_weight]))
    network.slow_tau_ms = tau_ms
    return network


def test_slow_synapse_adds_an_exponential_current_to_the_fast_one():
    tau, slow_weight, n_steps = 20.0, 2.0, 800
    network = _with_slow_synapse(WEIGHT, slow_weight, tau)
    kick = np.zeros(n_steps)
    kick[0] = 1e4
    sim = Simulation(network, ExternalInput.from_subsets(kick, [np.array([0])]), trace_ids=[1])
    sim.run(n_steps=n_steps)
    rec = sim.recorder
    assert rec.spike_ids.tolist() == [0] and rec.spike_steps.tolist() == [1]
    current = lambda m: ((WEIGHT if m == 1 else 0.0)  # noqa: E731
                         + (0.0 if m < 1 else slow_weight / tau * math.exp(-(m - 1) * DT / tau)))
    np.testing.assert_allclose(rec.trace_v[:, 0], _expected_charge(current, rec.trace_steps), rtol=1e-12, atol=1e-12)
    assert sim.slow_filter_state[1] == pytest.approx(slow_weight / tau * math.exp(-(n_steps - 2) * DT / tau), rel=1e-12)
    assert sim.filter_state.tolist() == [0.0, 0.0]  # the fast delta filter keeps no state
    sim.reset_state()  # a trial-start reset clears the slow filter too
    assert not sim.slow_filter_state.any()


def _netm_config(slow=None, **network):
    from reservoir import resolve_config

    overrides = {"network": {"n_neurons": 200, "connectivity": {"rule": "bernoulli", "probability": 0.2}, **network}}
    if slow is not None:
        overrides["network"]["slow_synapses"] = slow
    return resolve_config("izhikevich2003", overrides)


def test_slow_synapses_are_a_random_share_of_the_excitatory_ones():
    from reservoir import build_network

    plain_cfg, slow_cfg = _netm_config(), _netm_config({"fraction": 0.3, "tau_ms": 80.0, "weight_scale": 0.5})
    plain = build_network(plain_cfg.network, plain_cfg.integration, seed=4)
    slow = build_network(slow_cfg.network, slow_cfg.integration, seed=4)
    assert plain.slow_connectivity is None and slow.slow_tau_ms == 80.0
    # the other draws are untouched: the same neurons, and fast + slow are the plain synapses
    for name, values in plain.neurons.as_arrays().items():
        np.testing.assert_array_equal(values, slow.neurons.as_arrays()[name], err_msg=name)
    everything = plain.connectivity.to_dense()
    fast, slow_w = slow.connectivity.to_dense(), slow.slow_connectivity.to_dense()
    assert not np.any((fast != 0) & (slow_w != 0))
    np.testing.assert_array_equal(fast + slow_w / 0.5, everything)
    # only synapses from excitatory neurons, about the fraction of them
    exc = plain.neurons.is_excitatory
    assert not slow_w[~exc].any()
    share = np.count_nonzero(slow_w) / np.count_nonzero(everything[exc])
    assert share == pytest.approx(0.3, abs=0.02)
    assert not slow.slow_connectivity.is_dense
    # drawn from their own stream: another seed, other slow synapses
    other = build_network(slow_cfg.network, slow_cfg.integration, seed=5)
    assert other.slow_connectivity.n_synapses != slow.slow_connectivity.n_synapses or not np.array_equal(
        other.slow_connectivity.indices, slow.slow_connectivity.indices)


def test_every_excitatory_synapse_is_slow_at_fraction_one():
    from reservoir import build_network

    cfg = _netm_config({"fraction": 1.0})
    network = build_network(cfg.network, cfg.integration, seed=1)
    pre, _ = network.connectivity.pre_post_pairs()
    slow_pre, _ = network.slow_connectivity.pre_post_pairs()
    exc = network.neurons.is_excitatory
    assert not exc[pre].any() and exc[slow_pre].all() and slow_pre.size > 0


def test_fraction_zero_changes_nothing():
    """Off (the default, whatever tau_ms and weight_scale say): the network of before, and the
    stored configuration leaves the section out (run files stay those of before)."""
    from reservoir import build_network
    from reservoir.config import config_to_dict

    plain_cfg = _netm_config()
    off_cfg = _netm_config({"fraction": 0.0, "tau_ms": 30.0})
    plain = build_network(plain_cfg.network, plain_cfg.integration, seed=2)
    off = build_network(off_cfg.network, off_cfg.integration, seed=2)
    assert off.slow_connectivity is None and not off.has_slow_synapses
    for name in ("indptr", "indices", "weights"):
        np.testing.assert_array_equal(getattr(plain.connectivity, name), getattr(off.connectivity, name))
    assert plain.connectivity.is_dense == off.connectivity.is_dense
    assert "slow_synapses" not in config_to_dict(plain_cfg)["network"]
    assert config_to_dict(off_cfg)["network"]["slow_synapses"] == {"fraction": 0.0, "tau_ms": 30.0,
                                                                   "weight_scale": 1.0}
    assert config_to_dict(_netm_config({"fraction": 0.2}))["network"]["slow_synapses"]["fraction"] == 0.2


@pytest.mark.parametrize("key,value,message", [
    ("fraction", 1.5, "less than or equal to 1"),
    ("fraction", -0.1, "greater than or equal to 0"),
    ("tau_ms", 0.0, "greater than 0"),
    ("weight_scale", -1.0, "greater than or equal to 0"),
    ("fraction", "0.2", "valid number"),
    ("tau", 10.0, "unknown key"),
])
def test_slow_synapse_settings_are_validated_naming_the_key(key, value, message):
    from reservoir.config import ConfigError

    with pytest.raises(ConfigError, match=rf"network\.slow_synapses\.{key}: .*{message}"):
        _netm_config({key: value})
