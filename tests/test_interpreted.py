"""Every compiled kernel of the package runs as plain Python against its NumPy twin.

Interpreted, the kernels' bodies are ordinary Python (what ``NUMBA_DISABLE_JIT=1`` gives), so
this is also what measures their coverage. One test drives each family of kernels on a small
problem with *every* kernel interpreted and records which ran: a kernel added to the package
without a twin comparison here fails the last assertion, by name.
"""
import numpy as np

from reservoir import Simulation
from reservoir import fastrng
from reservoir.fastrng import ZIGGURAT_F, ZIGGURAT_K, ZIGGURAT_W, seed_state
from reservoir.readouts import Readouts, ReadoutsConfig, Teacher
from reservoir.rules import rls
from reservoir.rules.rls import RLSReadout, symmetric_P
from reservoir.rules.three_factor import ThreeFactorReadout

from .helpers import drive, interpret_kernels, package_kernels, small_network
from .naive_readouts import naive_online_rows, naive_readouts
from .naive_rls import naive_rls_run
from .test_fastrng import PythonXoshiro
from .test_kernel_twin import _compare

GROUPS = [
    {"name": "when", "n_units": 1, "three_factor": {"learning_rate": 0.5, "tau_eligibility_ms": 20}},
    {"name": "what", "n_units": 2, "rectify": True, "initial_weight_std": 0.01,
     "three_factor": {"learning_rate": 0.3, "tau_eligibility_ms": 50, "post_factor": "output",
                      "weight_min": -0.05, "weight_max": 0.05, "weight_decay_per_ms": 0.001}},
    {"name": "surprised", "n_units": 1, "three_factor": {"learning_rate": 0.5, "gate": "surprise",
                                                         "surprise_threshold": 0.2}},
    {"name": "winner", "n_units": 2, "initial_weight_std": 0.01,
     "three_factor": {"learning_rate": 0.5, "gate": "selective"}},
    {"name": "centred", "n_units": 1,
     "three_factor": {"learning_rate": 0.001, "centering": "running_mean", "normalization": "variance",
                      "tau_mean_ms": 20.0, "normalization_floor": 0.01, "bias_learning_rate": 0.2,
                      "prediction_lead_ms": 2.0}},
    {"name": "force", "n_units": 1, "rule": "rls", "rls": {"alpha": 2.0, "learn_every_steps": 3, "forgetting": 0.99}},
]


def _readouts_against_twin(n_steps=60, groups=GROUPS):
    """With an RLS unit the readouts run as one step (``readout_step``); without, in the phases
    the multi-threaded kernel splits (``readout_phase_*``)."""
    config = ReadoutsConfig.model_validate({"groups": groups, "traces": [{"kind": "exponential", "tau_ms": 20.0},
                                                                        {"kind": "double_exponential"}]})
    network = small_network(n_neurons=40, synapse="exponential", noise=2.0)
    readouts = Readouts(config, network.n_neurons, network.dt_ms, seed=2)
    rng = np.random.default_rng(0)
    teacher = Teacher(rng.random((n_steps, readouts.n_units)), gates=(rng.random((n_steps, readouts.n_units)) < 0.8))
    sim = Simulation(network, drive(network, n_steps, 12.0), seed=2, readouts=readouts, teacher=teacher, chunk_steps=23)
    sim.run(n_steps=n_steps)
    fresh = Readouts(config, network.n_neurons, network.dt_ms, seed=2)
    outputs, weights, P, bias = naive_readouts(fresh, sim.recorder.spike_steps, sim.recorder.spike_ids, n_steps,
                                               teacher)
    np.testing.assert_allclose(readouts.three_factor.bias, bias, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.recorder.outputs, outputs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(readouts.weights, weights, rtol=1e-9, atol=1e-12)
    if P is not None:
        np.testing.assert_allclose(symmetric_P(readouts.rls.P), P, rtol=1e-9, atol=1e-12)


def _stand_alone_three_factor():
    rng = np.random.default_rng(1)
    X, Y = rng.random((40, 11)), rng.random((40, 2))
    for extra in ({}, {"centering": "running_mean", "normalization": "variance", "tau_mean_ms": 8.0,
                       "normalization_floor": 0.05, "bias_learning_rate": 0.1, "prediction_lead_ms": 3.0}):
        learner = ThreeFactorReadout(learning_rate=0.2, tau_eligibility_ms=5.0, post_factor="output", **extra)
        learner.fit(X, Y)
        outputs, weights, bias = naive_online_rows(learner, X, Y)
        np.testing.assert_allclose(learner.last_outputs_, outputs, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(learner.weights_, weights, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(learner.bias_, bias, rtol=1e-12, atol=1e-14)
    # replay of the stored rows equals the online update (the replay kernel)
    recorder = ThreeFactorReadout(learning_rate=0.2, tau_eligibility_ms=5.0).fit(X, Y, gates=0.0)
    online = ThreeFactorReadout(learning_rate=0.2, tau_eligibility_ms=5.0).fit(X, Y)
    replayed = ThreeFactorReadout(learning_rate=0.2, tau_eligibility_ms=5.0).fit(X[:1], Y[:1], gates=0.0)
    replayed.replay(X, recorder.last_eligibility_, Y)
    np.testing.assert_array_equal(replayed.weights_, online.weights_)


def _rls_against_twin():
    rng = np.random.default_rng(3)
    R, Y = rng.random((25, 9)), rng.random((25, 2))
    P_twin, weights_twin, _ = naive_rls_run(R, Y, 1.5, 0.99, "textbook")
    readout = RLSReadout(alpha=1.5, forgetting=0.99).fit(R, Y)  # fused events, then a flush
    np.testing.assert_allclose(readout.P_, P_twin, rtol=0, atol=1e-12 * np.abs(P_twin).max())
    np.testing.assert_allclose(readout.weights_, weights_twin, rtol=0, atol=1e-12 * np.abs(weights_twin).max())
    P, weights = rls.rls_initial_P(9, 1.5), np.zeros((2, 9))  # the eager kernel: the same arithmetic
    for r, y in zip(R, Y):
        errors = np.array([sum(row * r) for row in weights]) - y  # summed in the learner's order
        rls.rls_update(P, r, weights, errors, 0.99, 0, np.empty(9))
    np.testing.assert_array_equal(symmetric_P(P), readout.P_)
    np.testing.assert_array_equal(weights, readout.weights_)


def _noise_against_twin():
    state = seed_state(np.random.SeedSequence(7))
    twin = PythonXoshiro(state)
    out = np.empty(3000)  # about 45 draws take the ziggurat's slow paths
    fastrng.fill_standard_normal(state, out, ZIGGURAT_K, ZIGGURAT_W, ZIGGURAT_F)  # the module's (interpreted) kernel
    np.testing.assert_array_equal(out, [twin.normal() for _ in range(out.size)])


def _protection_against_twin():
    from reservoir.rules import hlop

    from .test_hlop import test_engine_with_protection_matches_the_numpy_twin

    test_engine_with_protection_matches_the_numpy_twin("spiking", "plain")  # Hebbian steps, projection, spiking
    test_engine_with_protection_matches_the_numpy_twin("quantised", "per window")  # windows projected in rounds
    test_engine_with_protection_matches_the_numpy_twin("rate", "centred, decaying, normalised")
    x = np.random.default_rng(4).standard_normal(9)
    moment = np.zeros((9, 9))
    hlop.add_outer(moment, x)  # the SVD reference's accumulation
    np.testing.assert_allclose(moment, np.outer(x, x), rtol=1e-12)


def test_every_kernel_runs_interpreted_against_its_twin(monkeypatch):
    kernels = set(package_kernels())  # before they are replaced
    assert len(kernels) > 20
    ran: set[str] = set()
    interpret_kernels(monkeypatch, record=ran)
    monkeypatch.setattr(rls, "_DOT_LANES", 4)  # several lane blocks on small problems
    for model, synapse, storage in (("izhikevich2003", "double_exponential", "dense"),
                                    ("izhikevich2007", "exponential", "sparse")):
        network = small_network(model, "izhikevich2003", synapse, storage, noise=3.0)
        amplitude = 12.0 if model == "izhikevich2003" else 200.0
        _compare(network, 40, drive(network, 40, amplitude), "interpreted")
    _readouts_against_twin()
    _readouts_against_twin(groups=[g for g in GROUPS if g.get("rule") != "rls"])
    _stand_alone_three_factor()
    _rls_against_twin()
    _noise_against_twin()
    _protection_against_twin()
    missing = sorted(kernels - ran)
    assert not missing, f"kernels never run interpreted against a twin: {missing}"
