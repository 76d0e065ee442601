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
