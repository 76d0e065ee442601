"""Cross-check of the engine against the same network built in Brian2 (reservoir.backends.brian2).

Noise off: Brian2's numpy target must reproduce the engine's spike trains *identically* (every
step and neuron id, and the final ``v``/``u`` bit for bit). This is possible because the
backend schedules Brian2 in the engine's step order and writes the integration as explicit
abstract code with the engine's operand order (see the backend's module docstring); numpy
then performs the same IEEE operations as the compiled kernel. The networks are recurrent and
strongly coupled on purpose (the izhikevich2003 weight scheme rescales ``net.m``'s weights to
the in-degree, about 50x at p=0.1, N=200), so one differently rounded operation would soon
change a spike time and then the whole raster; ``test_recurrence_matters`` checks that the
recurrent input really shapes the spike trains.

Noise on: Brian2 draws its own random numbers, so only the statistics can agree; mean rates
over several seeds are compared (tolerance justified in the test).
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from reservoir import ExternalInput, Simulation, build_network, resolve_config
from reservoir.firing_types import FIRING_TYPES
from reservoir.network import build_stimulus

pytest.importorskip("brian2")
from reservoir.backends.brian2 import build_brian2_network, run_brian2  # noqa: E402

# Brian2 2.9's equation parser calls pyparsing with the deprecated ``parseAll`` argument
pytestmark = pytest.mark.filterwarnings("ignore:.*parseAll.*:DeprecationWarning")


def recurrent_2003_network(synapse: str, scheme: str = "euler", storage: str = "sparse", n_neurons: int = 200,
                           slow_synapses: dict | None = None, adaptation: dict | None = None):
    """N=200, 2003 model, bernoulli p=0.1 with izhikevich2003 weights, dt 0.5 ms, no noise
    (``slow_synapses``, ``adaptation``: the ``network.slow_synapses`` and ``network.adaptation`` tables)."""
    cfg = resolve_config(None, {
        "network": {"neuron_model": "izhikevich2003", "n_neurons": n_neurons,
                    "connectivity": {"rule": "bernoulli", "probability": 0.1, "storage": storage,
                                     "weight_scheme": "izhikevich2003"},
                    "synapse": {"kind": synapse, "tau_ms": 5.0, "tau_rise_ms": 1.0, "tau_decay_ms": 5.0},
                    "noise": {"excitatory_std": 0.0, "inhibitory_std": 0.0},
                    **({"slow_synapses": slow_synapses} if slow_synapses else {}),
                    **({"adaptation": adaptation} if adaptation else {})},
        "integration": {"dt_ms": 0.5, "scheme": scheme},
    })
    return build_network(cfg.network, cfg.integration, seed=3)


def step_and_ramp_input(network, n_steps: int, amplitude: float) -> ExternalInput:
    """Three channels (a step, a ramp, a late step) into overlapping neuron subsets, so neurons
    start firing at different times and some neurons sum two channels (order matters)."""
    t = np.arange(n_steps) * network.dt_ms
    duration = n_steps * network.dt_ms
    signal = amplitude * np.stack([
        np.where((t >= 50.0) & (t < 0.6 * duration), 1.0, 0.0),
        1.3 * t / duration,
        np.where(t >= 0.3 * duration, 0.7, 0.0),
    ], axis=1)
    n = network.n_neurons
    subsets = [np.arange(0, n // 5), np.arange(n // 10, n // 2), np.arange(3 * n // 4, n)]
    return ExternalInput.from_subsets(signal, subsets, gains=[1.0, 0.9, 1.1])


def run_engine(network, external_input, n_steps: int, seed: int = 0):
    sim = Simulation(network, external_input=external_input, seed=seed)
    sim.run(n_steps=n_steps)
    return sim


def assert_identical(network, external_input, n_steps: int, target: str = "numpy", **options) -> int:
    sim = run_engine(network, external_input, n_steps)
    model = build_brian2_network(network, external_input, target=target, **options)
    model.run(n_steps)
    steps, ids = model.spike_trains()
    engine_steps, engine_ids = sim.recorder.spike_steps, sim.recorder.spike_ids
    if steps.size != engine_steps.size or np.any(steps != engine_steps) or np.any(ids != engine_ids):
        common = min(steps.size, engine_steps.size)
        differ = np.flatnonzero((steps[:common] != engine_steps[:common]) | (ids[:common] != engine_ids[:common]))
        where = (f"first difference at spike {differ[0]}, step {engine_steps[differ[0]]}"
                 if differ.size else "counts differ")
        pytest.fail(f"spike trains differ: engine {engine_steps.size} spikes, Brian2 {steps.size}; {where}")
    state = model.state()
    np.testing.assert_array_equal(state["v"], sim.v)
    np.testing.assert_array_equal(state["u"], sim.u)
    np.testing.assert_array_equal(state["filter_state"], sim.filter_state)
    np.testing.assert_array_equal(state["filter_aux"], sim.filter_aux)
    if network.has_slow_synapses:
        np.testing.assert_array_equal(state["slow_filter_state"], sim.slow_filter_state)
    # every neuron that gets input takes part, at clearly different times
    assert np.unique(engine_ids).size > network.n_neurons // 2
    assert np.unique(engine_steps).size > 100
    return int(engine_steps.size)


def test_slow_recovery_network_spike_trains_identical():
    """``network.adaptation`` (slow, spread recovery on the excitatory neurons, the reservoir-clock
    regime's mechanism) is per-neuron ``a``, ``d``: Brian2 gives the same spikes."""
    network = recurrent_2003_network("delta", adaptation={"fraction": 1.0, "a_min": 0.001, "a_max": 0.02, "d": 6.0})
    excitatory = network.neurons.is_excitatory
    assert network.neurons.a[excitatory].min() < 0.002 and np.unique(network.neurons.a[excitatory]).size > 100
    n_steps = 2000
    assert assert_identical(network, step_and_ramp_input(network, n_steps, amplitude=6.0), n_steps) > 1000


@pytest.mark.parametrize(("synapse", "scheme", "storage", "duration_ms"), [
    ("delta", "euler", "sparse", 2000.0),
    ("exponential", "euler", "sparse", 2000.0),
    ("delta", "euler", "dense", 1000.0),
    ("double_exponential", "izhikevich2003", "sparse", 1000.0),
    ("exponential", "izhikevich2004", "dense", 1000.0),
])
def test_2003_recurrent_network_spike_trains_identical(synapse, scheme, storage, duration_ms):
    network = recurrent_2003_network(synapse, scheme, storage)
    n_steps = int(duration_ms / network.dt_ms)
    n_spikes = assert_identical(network, step_and_ramp_input(network, n_steps, amplitude=6.0), n_steps)
    assert n_spikes > 1000


@pytest.mark.parametrize(("synapse", "storage"), [("delta", "sparse"), ("exponential", "dense")])
def test_2003_network_with_slow_synapses_spike_trains_identical(synapse, storage):
    """Slow synapses on (40 % of the excitatory synapses, 50 ms, 1.5 times the charge), with a
    sparse and a dense fast population: Brian2's second Synapses object and filter line give the
    engine's spike trains and slow filter state bit for bit, and the slow current shapes them."""
    slow = {"fraction": 0.4, "tau_ms": 50.0, "weight_scale": 1.5}
    network = recurrent_2003_network(synapse, storage=storage, slow_synapses=slow)
    assert network.slow_connectivity.n_synapses > 500 and network.connectivity.is_dense == (storage == "dense")
    n_steps = 2000
    external_input = step_and_ramp_input(network, n_steps, amplitude=6.0)
    assert assert_identical(network, external_input, n_steps) > 1000
    with_slow = run_engine(network, external_input, n_steps).recorder
    without = run_engine(recurrent_2003_network(synapse, storage=storage), external_input, n_steps).recorder
    counts = [np.bincount(r.spike_ids, minlength=network.n_neurons) for r in (with_slow, without)]
    assert np.count_nonzero(counts[0] != counts[1]) > network.n_neurons // 4


def test_2007_nicola_clopath_network_spike_trains_identical():
    """The nicola_clopath2017 reservoir at N=100 (2007 form, p=0.1, G=5000, double-exponential
    2/20 ms, bias 1000 pA, Euler at 0.04 ms) plus pA-scale inputs, 1 s = 25,000 steps."""
    cfg = resolve_config("nicola_clopath2017", {"network": {"n_neurons": 100}})
    network = build_network(cfg.network, cfg.integration, seed=5)
    n_steps = cfg.n_steps
    n_spikes = assert_identical(network, step_and_ramp_input(network, n_steps, amplitude=300.0), n_steps)
    assert n_spikes > 500


@pytest.mark.parametrize("firing_type", list(FIRING_TYPES))
def test_firing_type_presets_identical_traces(firing_type):
    """Each Izhikevich (2004) firing-type preset (one neuron, its own protocol, the 2004 scheme,
    per-type quadratic coefficients; accommodation with the generalised recovery equation):
    spike trains and the whole v/u traces are identical."""
    cfg = resolve_config(firing_type)
    network = build_network(cfg.network, cfg.integration, seed=0)
    external_input = build_stimulus(cfg.stimulus, network, cfg.n_steps, cfg.network.firing_type)
    sim = Simulation(network, external_input=external_input, seed=0, trace_ids=[0])
    sim.run(n_steps=cfg.n_steps)
    model = build_brian2_network(network, external_input, trace_ids=[0])
    model.run(cfg.n_steps)
    steps, ids = model.spike_trains()
    np.testing.assert_array_equal(steps, sim.recorder.spike_steps)
    np.testing.assert_array_equal(ids, sim.recorder.spike_ids)
    trace_steps, trace_v, trace_u = model.traces()
    np.testing.assert_array_equal(trace_steps, sim.recorder.trace_steps)
    np.testing.assert_array_equal(trace_v, sim.recorder.trace_v)
    np.testing.assert_array_equal(trace_u, sim.recorder.trace_u)


def test_recurrence_matters():
    """The identity above is not that of uncoupled neurons: without the recurrent weights the
    same inputs give very different spike trains."""
    network = recurrent_2003_network("exponential")
    n_steps = 2000
    external_input = step_and_ramp_input(network, n_steps, amplitude=6.0)
    coupled = run_engine(network, external_input, n_steps).recorder
    network.connectivity.weights[:] = 0.0
    uncoupled = run_engine(network, external_input, n_steps).recorder
    assert abs(coupled.spike_ids.size - uncoupled.spike_ids.size) > 0.1 * uncoupled.spike_ids.size
    rate_coupled = np.bincount(coupled.spike_ids, minlength=network.n_neurons)
    rate_uncoupled = np.bincount(uncoupled.spike_ids, minlength=network.n_neurons)
    assert np.count_nonzero(rate_coupled != rate_uncoupled) > network.n_neurons // 2


def test_run_brian2_matches_engine_without_input():
    """run_brian2 convenience wrapper; a network driven by bias alone (no external input)."""
    network = recurrent_2003_network("delta", n_neurons=100)
    network = dataclasses.replace(network, bias=np.linspace(3.0, 9.0, network.n_neurons))
    n_steps = 2000
    sim = run_engine(network, None, n_steps)
    steps, ids = run_brian2(network, None, n_steps)
    assert steps.dtype == np.int64 and ids.dtype == np.int32
    assert steps.size > 1000
    np.testing.assert_array_equal(steps, sim.recorder.spike_steps)
    np.testing.assert_array_equal(ids, sim.recorder.spike_ids)


def population_rates(spike_ids: np.ndarray, is_excitatory: np.ndarray, duration_s: float) -> tuple[float, float]:
    counts = np.bincount(spike_ids, minlength=is_excitatory.size)
    return counts[is_excitatory].mean() / duration_s, counts[~is_excitatory].mean() / duration_s


def test_noisy_net_m_mean_rates_agree():
    """net.m (preset izhikevich2003: N=1000, dense, noise 5/2, 1 ms two half steps), 1 s.

    The same network (build seed 1) is run with 10 noise seeds on each side. Tolerance: the
    difference of the two means must lie within 4 standard errors,
    ``4 * sqrt(s_engine^2/10 + s_brian2^2/10)``, with ``s`` the across-seed standard deviation
    of the 1-s rate on each side. Under the hypothesis that both sides sample the same
    distribution this fails with probability below 1e-3 (t distribution, ~18 dof), and since
    both sides are seeded the test is deterministic. Measured: s is about 0.12 Hz for the
    excitatory rate (mean about 7.7 Hz), so the tolerance is about 0.2 Hz, far below the
    effect of a different integration scheme (forward Euler at 1 ms gives about 9.4 Hz,
    checked below so that the tolerance is known to be discriminating).
    """
    cfg = resolve_config("izhikevich2003")
    network = build_network(cfg.network, cfg.integration, seed=1)
    n_steps, duration_s, seeds = cfg.n_steps, cfg.duration_ms / 1000.0, range(10)
    exc = network.neurons.is_excitatory
    engine = np.array([population_rates(run_engine(network, None, n_steps, seed).recorder.spike_ids, exc, duration_s)
                       for seed in seeds])
    model = build_brian2_network(network, target="numpy")
    model.network.store("initial")
    brian = []
    for seed in seeds:
        model.network.restore("initial")
        model.run(n_steps, seed=seed)
        brian.append(population_rates(model.spike_trains()[1], exc, duration_s))
    brian = np.array(brian)
    difference = engine.mean(axis=0) - brian.mean(axis=0)
    standard_error = np.sqrt(engine.var(axis=0, ddof=1) / len(engine) + brian.var(axis=0, ddof=1) / len(brian))
    assert np.all(np.abs(difference) <= 4.0 * standard_error), (engine.mean(axis=0), brian.mean(axis=0), standard_error)
    assert 6.0 < brian.mean(axis=0)[0] < 9.5  # net.m's excitatory rate (about 7.5 Hz)
    # discriminating power: one 1-ms Euler step (Brian2's Izhikevich_2003 example) is rejected
    euler_cfg = resolve_config("izhikevich2003", {"integration": {"scheme": "euler"}})
    euler_net = build_network(euler_cfg.network, euler_cfg.integration, seed=1)
    euler = np.array([population_rates(run_engine(euler_net, None, n_steps, seed).recorder.spike_ids, exc, duration_s)
                      for seed in seeds])
    assert np.abs(euler.mean(axis=0)[0] - brian.mean(axis=0)[0]) > 4.0 * standard_error[0]


def test_import_reservoir_does_not_import_brian2():
    code = ("import sys, reservoir, reservoir.backends, reservoir.backends.brian2; "
            "assert 'brian2' not in sys.modules, 'brian2 imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_cython_target_identical_with_strict_floating_point():
    """The compiled cython target reproduces the engine too once Brian2's -ffast-math (which
    allows re-association and FMA contraction) is switched off. First run compiles (~20 s)."""
    for synapse, scheme in [("delta", "izhikevich2003"), ("exponential", "euler")]:
        network = recurrent_2003_network(synapse, scheme)
        n_steps = 2000
        assert_identical(network, step_and_ramp_input(network, n_steps, amplitude=6.0), n_steps,
                         target="cython", strict_floating_point=True)


@pytest.mark.slow
def test_cython_target_default_flags_rates_agree():
    """With Brian2's default fast-math flags the cython target is not bit-identical, but the
    activity is the same network's: total spike counts agree within 2 % over 1 s."""
    network = recurrent_2003_network("exponential")
    n_steps = 2000
    external_input = step_and_ramp_input(network, n_steps, amplitude=6.0)
    engine = run_engine(network, external_input, n_steps).recorder.spike_ids.size
    steps, _ = run_brian2(network, external_input, n_steps, target="cython")
    assert abs(steps.size - engine) <= 0.02 * engine
