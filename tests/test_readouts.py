"""Readouts inside the compiled loop: agreement with the NumPy twin, gates, replay, RLS, feedback."""
import numpy as np
import pytest

from reservoir import Simulation
from reservoir.readouts import Readouts, ReadoutsConfig, Teacher
from reservoir.rules.rls import symmetric_P
from reservoir.rules.three_factor import ThreeFactorConfig

from .helpers import drive, small_network
from .naive_readouts import naive_readouts

N_STEPS = 600


def _config(groups, traces=None, **kw):
    data = {"groups": groups, **kw}
    if traces is not None:
        data["traces"] = traces
    return ReadoutsConfig.model_validate(data)


def _teacher(n_units, n_steps=N_STEPS, seed=0, learn_every=None):
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    targets = np.stack([np.sin(2 * np.pi * t / (100 + 37 * k)) + 0.1 * rng.standard_normal(n_steps)
                        for k in range(n_units)], axis=1)
    gates = (rng.random((n_steps, n_units)) < 0.8).astype(float)
    learn = np.ones(n_steps, dtype=bool)
    return Teacher(targets, gates=gates, learn=learn)


def _run(config, teacher, kernel_mode="compiled", n_steps=N_STEPS, seed=2):
    network = small_network(n_neurons=50, synapse="exponential", noise=2.0)
    readouts = Readouts(config, network.n_neurons, network.dt_ms, seed=seed)
    initial = readouts.weights.copy()
    sim = Simulation(network, drive(network, n_steps, 12.0), seed=seed, readouts=readouts, teacher=teacher,
                     chunk_steps=97)
    sim.run(n_steps=n_steps)
    fresh = Readouts(config, network.n_neurons, network.dt_ms, seed=seed)
    np.testing.assert_array_equal(fresh.weights, initial)
    twin = naive_readouts(fresh, sim.recorder.spike_steps, sim.recorder.spike_ids, n_steps, teacher)
    return sim, twin


GROUP_CASES = {
    "window": [{"name": "when", "n_units": 1, "three_factor": {"learning_rate": 0.5, "tau_eligibility_ms": 20}},
               {"name": "what", "n_units": 2, "rectify": True, "initial_weight_std": 0.01,
                "three_factor": {"learning_rate": 0.3, "tau_eligibility_ms": 50, "post_factor": "output",
                                 "weight_min": -0.05, "weight_max": 0.05, "weight_decay_per_ms": 0.001}}],
    "centred": [{"name": "when", "n_units": 1,
                 "three_factor": {"learning_rate": 0.5, "tau_eligibility_ms": 20, "centering": "running_mean",
                                  "tau_mean_ms": 30.0, "bias_learning_rate": 0.2, "prediction_lead_ms": 3.0}},
                {"name": "ahead", "n_units": 1,
                 "three_factor": {"learning_rate": 0.3, "tau_eligibility_ms": 10, "prediction_lead_ms": 1.5}},
                {"name": "what", "n_units": 2, "initial_weight_std": 0.01,
                 "three_factor": {"learning_rate": 1e-5, "tau_eligibility_ms": 50, "centering": "running_mean",
                                  "normalization": "variance", "tau_mean_ms": 40.0, "normalization_floor": 0.01,
                                  "bias_learning_rate": 0.1, "post_factor": "output"}}],
    "saturated": [{"name": "when", "n_units": 1,
                   "three_factor": {"learning_rate": 1e-3, "tau_eligibility_ms": 5, "centering": "running_mean",
                                    "normalization": "variance", "tau_mean_ms": 30.0, "normalization_floor": 0.01,
                                    "clip_std": 1.0, "bias_learning_rate": 0.1, "prediction_lead_ms": 1.0,
                                    "statistics": "gated"}},
                  {"name": "what", "n_units": 2, "initial_weight_std": 0.01,
                   "three_factor": {"learning_rate": 0.3, "tau_eligibility_ms": 20, "centering": "running_mean",
                                    "tau_mean_ms": 40.0, "clip_std": 0.5}}],
    "surprise": [{"name": "when", "n_units": 2, "three_factor": {"learning_rate": 0.5, "gate": "surprise",
                                                                 "surprise_threshold": 0.6}}],
    "selective": [{"name": "what", "n_units": 3, "initial_weight_std": 0.01,
                   "three_factor": {"learning_rate": 0.5, "gate": "selective"}}],
    "rls": [{"name": "force", "n_units": 2, "rule": "rls", "rls": {"alpha": 0.5, "learn_every_steps": 3}},
            {"name": "frozen", "n_units": 1, "rule": "frozen", "initial_weight_std": 0.1}],
    "rls_nicola_clopath": [{"name": "force", "n_units": 1, "rule": "rls",
                            "rls": {"alpha": 2.0, "decoder_form": "nicola_clopath", "forgetting": 0.99}}],
}


@pytest.mark.parametrize("case", sorted(GROUP_CASES))
def test_readouts_match_numpy_twin(case):
    groups = GROUP_CASES[case]
    traces = [{"kind": "exponential", "tau_ms": 20.0}, {"kind": "double_exponential"}]
    config = _config(groups, traces=traces)
    n_units = sum(g["n_units"] for g in groups)
    sim, (outputs, weights, P, bias) = _run(config, _teacher(n_units))
    readouts = sim.readouts
    np.testing.assert_allclose(readouts.three_factor.bias, bias, rtol=1e-9, atol=1e-12)
    fresh = Readouts(config, 50, sim.network.dt_ms, seed=2)
    learning = readouts.rule != 0
    assert np.all(np.any(readouts.weights[learning] != fresh.weights[learning], axis=1))  # every learner learned
    np.testing.assert_allclose(sim.recorder.outputs, outputs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(readouts.weights, weights, rtol=1e-9, atol=1e-12)
    if P is not None:
        np.testing.assert_allclose(symmetric_P(readouts.rls.P), P, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", ["window", "centred", "saturated", "rls"])
def test_readouts_in_interpreted_kernel(case, kernel_mode):
    """Every kernel interpreted (``kernel_mode``) against the same NumPy twin."""
    groups = GROUP_CASES[case]
    config = _config(groups, traces=[{"kind": "exponential", "tau_ms": 20.0}, {"kind": "double_exponential"}])
    n_units = sum(g["n_units"] for g in groups)
    sim, (outputs, weights, P, _) = _run(config, _teacher(n_units, n_steps=60), n_steps=60)
    np.testing.assert_allclose(sim.recorder.outputs, outputs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim.readouts.weights, weights, rtol=1e-9, atol=1e-12)
    if P is not None:
        np.testing.assert_allclose(symmetric_P(sim.readouts.rls.P), P, rtol=1e-9, atol=1e-12)


def test_window_gate_zero_means_no_learning():
    config = _config(GROUP_CASES["window"])
    teacher = _teacher(3)
    teacher.gates[:] = 0.0
    sim, _ = _run(config, teacher)
    fresh = Readouts(config, 50, sim.network.dt_ms, seed=2)
    np.testing.assert_array_equal(sim.readouts.weights, fresh.weights)


def test_surprise_gate_ignores_small_errors():
    config = _config([{"name": "when", "n_units": 1, "three_factor": {"learning_rate": 0.5, "gate": "surprise",
                                                                     "surprise_threshold": 10.0}}])
    sim, _ = _run(config, _teacher(1))
    assert np.all(sim.readouts.weights == 0)  # every |error| < 10: the gate never opens


def test_selective_gate_updates_only_the_winner():
    """Step by step (one step per chunk): whenever the group's weights change, exactly one unit
    changed, and it is the unit with the largest output at that step."""
    config = _config(GROUP_CASES["selective"])
    network = small_network(n_neurons=50, synapse="exponential", noise=2.0)
    readouts = Readouts(config, 50, network.dt_ms, seed=2)
    n_steps = 200
    teacher = Teacher(np.ones((n_steps, 3)))
    sim = Simulation(network, drive(network, n_steps, 12.0), seed=2, readouts=readouts, teacher=teacher,
                     chunk_steps=1)
    updated = []
    for _ in range(n_steps):
        before = readouts.weights.copy()
        sim.run(n_steps=1)
        changed = np.flatnonzero(np.any(readouts.weights != before, axis=1))
        if changed.size:
            assert changed.tolist() == [int(np.argmax(readouts.z))]
            updated.append(int(changed[0]))
    assert len(updated) > n_steps // 2  # the gate opened at most steps (features are non-zero after the first spikes)
    assert len(set(updated)) > 1  # and the winner changed over the run


def test_offline_replay_equals_online_update():
    online_groups = [{"name": "what", "n_units": 2, "three_factor": {"learning_rate": 0.4, "tau_eligibility_ms": 30}}]
    replay_groups = [{"name": "what", "n_units": 2,
                      "three_factor": {"learning_rate": 0.4, "tau_eligibility_ms": 30,
                                       "consolidation": {"mode": "replay", "n_replay": 1}}}]
    teacher = _teacher(2)
    online, _ = _run(_config(online_groups), teacher)
    store_teacher = Teacher(teacher.targets, gates=np.zeros_like(teacher.gates), store=np.ones(N_STEPS, dtype=bool))
    offline, _ = _run(_config(replay_groups), store_teacher)
    assert np.all(offline.readouts.weights == 0)  # nothing learned online
    steps, features, eligibility = offline.readouts.store.take_window()
    assert steps.tolist() == list(range(N_STEPS))
    offline.readouts.replay(features, eligibility, teacher.targets, teacher.gates)
    np.testing.assert_array_equal(offline.readouts.weights, online.readouts.weights)


def test_replay_more_often_moves_further_towards_the_target():
    groups = [{"name": "what", "n_units": 1,
               "three_factor": {"learning_rate": 0.05, "consolidation": {"mode": "replay", "n_replay": 1}}}]
    config = _config(groups)
    teacher = Teacher(np.ones((N_STEPS, 1)), gates=np.zeros((N_STEPS, 1)), store=np.ones(N_STEPS, dtype=bool))
    sim, _ = _run(config, teacher)
    steps, features, eligibility = sim.readouts.store.take_window()
    errors = []
    for n_replay in (1, 5):
        sim.readouts.weights[:] = 0
        sim.readouts.replay(features, eligibility, np.ones((len(steps), 1)), n_replay=n_replay)
        errors.append(np.mean((1 - features @ sim.readouts.weights[0]) ** 2))
    assert errors[1] < errors[0] < 1.0


def test_rls_reset_restores_initial_P_and_optionally_weights():
    config = _config(GROUP_CASES["rls"])
    sim, _ = _run(config, _teacher(3))
    readouts = sim.readouts
    frozen_before = readouts.group_weights("frozen").copy()
    assert np.any(readouts.group_weights("force") != 0)
    readouts.reset_rls()
    np.testing.assert_array_equal(symmetric_P(readouts.rls.P), np.eye(readouts.n_features) / 0.5)
    assert np.any(readouts.group_weights("force") != 0)
    readouts.reset_rls(reset_weights=True)
    assert np.all(readouts.group_weights("force") == 0)
    np.testing.assert_array_equal(readouts.group_weights("frozen"), frozen_before)


def test_feedback_changes_the_network_and_is_deterministic():
    groups = [{"name": "force", "n_units": 1, "rule": "frozen", "initial_weight_std": 1.0, "feedback_gain": 50.0}]
    results = []
    for gain in (50.0, 50.0, 0.0):
        groups[0]["feedback_gain"] = gain
        network = small_network(n_neurons=50, synapse="exponential", noise=2.0)
        readouts = Readouts(_config(groups), 50, network.dt_ms, seed=1)
        sim = Simulation(network, drive(network, 400, 12.0), seed=1, readouts=readouts)
        sim.run(n_steps=400)
        results.append(sim.recorder.spike_ids)
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(results[0], results[2])


def test_checkpoint_restores_readout_state(tmp_path):
    config = _config(GROUP_CASES["rls"])
    teacher = _teacher(3)
    network = small_network(n_neurons=50, synapse="exponential", noise=2.0)

    def make():
        return Simulation(network, drive(network, N_STEPS, 12.0), seed=3,
                          readouts=Readouts(config, 50, network.dt_ms, seed=3), teacher=teacher, chunk_steps=50)

    straight = make()
    straight.run(n_steps=N_STEPS)
    first = make()
    first.run(n_steps=300, checkpoint_path=tmp_path / "cp.h5", checkpoint_every_steps=300)
    second = make()
    second.load_checkpoint(tmp_path / "cp.h5")
    second.run(n_steps=N_STEPS - 300)
    np.testing.assert_array_equal(second.readouts.weights, straight.readouts.weights)
    np.testing.assert_array_equal(second.readouts.rls.P, straight.readouts.rls.P)
    np.testing.assert_array_equal(np.concatenate([first.recorder.outputs, second.recorder.outputs]),
                                  straight.recorder.outputs)


def test_config_errors_name_the_key():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unique"):
        _config([{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError, match="at most one group"):
        _config([{"name": "a", "rule": "rls"}, {"name": "b", "rule": "rls"}])
    with pytest.raises(ValidationError, match="weight_min"):
        _config([{"name": "a", "three_factor": {"weight_min": 1.0, "weight_max": 0.0}}])


def test_factor_saturation_changes_learning_and_needs_centring():
    """``clip_std`` saturates the centred factor: the same run without it learns other weights
    (so the twin agreement above is not vacuous), and without centring it is refused."""
    groups = GROUP_CASES["saturated"]
    unclipped = [{**g, "three_factor": {k: v for k, v in g["three_factor"].items() if k != "clip_std"}}
                 for g in groups]
    teacher = _teacher(3)
    clipped_sim, _ = _run(_config(groups), teacher)
    plain_sim, _ = _run(_config(unclipped), _teacher(3))
    assert not np.allclose(clipped_sim.readouts.weights, plain_sim.readouts.weights)
    with pytest.raises(ValueError, match="clip_std needs centering"):
        ThreeFactorConfig(clip_std=2.0)
