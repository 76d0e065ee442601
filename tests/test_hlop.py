"""HLOP and the SVD reference (reservoir/rules/hlop.py): the subspace rule converges to the
principal subspace, the projection keeps old outputs, growth and merge keep their books, and
every kernel agrees with its NumPy twin (tests/naive_hlop.py)."""
import numpy as np
import pytest

from analysis.continual import orthonormality_error, principal_angle_cosines
from reservoir.readouts import Readouts, ReadoutsConfig, Teacher
from reservoir.rules import hlop
from reservoir.simulation import Simulation

from .helpers import drive, small_network
from .naive_hlop import naive_lateral_responses, naive_project, naive_protected_readouts, naive_subspace_step

KINDS = {"rate": 0, "spiking": 1, "quantised": 2, "spiking_half": hlop.SPIKING_FROM_HALF_THRESHOLD}


def _known_spectrum(seed=0, n_features=120, k=8, noise=0.02):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    spectrum = np.r_[np.linspace(3.0, 1.0, k), np.full(n_features - k, noise)]
    return rng, basis, basis * np.sqrt(spectrum), k


def test_subspace_rule_converges_to_the_principal_subspace():
    """Oja's subspace rule on data with a known spectrum: orthonormal rows (error < 0.05) that
    span the top-k subspace (every principal-angle cosine > 0.98)."""
    rng, basis, mixing, k = _known_spectrum()
    n_features = mixing.shape[0]
    H = hlop.orthonormal_rows(rng, k, n_features)
    response, feedback = np.zeros(k), np.zeros(n_features)
    start = principal_angle_cosines(H, basis[:, :k].T).min()
    for _ in range(30000):
        hlop.subspace_rule_step(H, 0, k, mixing @ rng.standard_normal(n_features), 0.003, 0, 40, 4.0, response,
                                feedback)
    assert orthonormality_error(H) < 0.05
    cosines = principal_angle_cosines(H, basis[:, :k].T)
    assert cosines.min() > 0.98 and start < 0.5, (start, cosines.min())


def test_new_rows_learn_the_residual_and_old_rows_stay_frozen():
    """With the top half of the subspace held by frozen old rows, the new rows converge to the
    rest of it (the growth scheme), and the old rows do not move."""
    rng, basis, mixing, k = _known_spectrum(seed=1)
    n_features = mixing.shape[0]
    H = np.vstack([basis[:, :k // 2].T, hlop.orthonormal_rows(rng, k - k // 2, n_features)])
    old = H[:k // 2].copy()
    response, feedback = np.zeros(k), np.zeros(n_features)
    for _ in range(30000):
        hlop.subspace_rule_step(H, k // 2, k, mixing @ rng.standard_normal(n_features), 0.003, 0, 40, 4.0, response,
                                feedback)
    np.testing.assert_array_equal(H[:k // 2], old)
    assert principal_angle_cosines(H[k // 2:], basis[:, k // 2:k].T).min() > 0.98


@pytest.mark.parametrize("scale", [4.0, 0.0])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_lateral_responses_match_the_twin(kind, scale):
    rng = np.random.default_rng(3)
    H = rng.standard_normal((6, 30)) * 0.3
    x = rng.standard_normal(30)
    out = np.zeros(6)
    hlop.lateral_responses(H, 6, x, KINDS[kind], 40, scale, out)
    np.testing.assert_allclose(out, naive_lateral_responses(H, x, kind, 40, scale), rtol=1e-12, atol=1e-12)
    if kind != "rate":
        # the spiking neurons' rate is within one spike of the clipped drive (s: 4, or |x| when 0)
        s = scale or np.linalg.norm(x)
        drive = np.clip(H @ x, -s, s)
        assert np.all(np.abs(out - drive) <= s / 40 + 1e-12)
        if kind == "spiking_half":  # from half threshold the count is the rounded drive
            assert np.all(np.abs(out - drive) <= s / 80 + 1e-12)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_projection_and_subspace_step_match_the_twins(kind):
    rng = np.random.default_rng(4)
    H = hlop.orthonormal_rows(rng, 7, 40)
    row = rng.standard_normal(40)
    projected = row.copy()
    hlop.project_out(projected, H, 4, KINDS[kind], 40, 4.0, np.zeros(7))
    np.testing.assert_allclose(projected, naive_project(row, H[:4], kind, 40, 4.0), rtol=1e-10, atol=1e-12)
    for normalized in (False, True):
        stepped = H.copy()
        hlop.subspace_rule_step(stepped, 4, 7, row, 0.01, KINDS[kind], 40, 4.0, np.zeros(7), np.zeros(40), normalized)
        np.testing.assert_allclose(stepped, naive_subspace_step(H, 4, row, 0.01, kind, 40, 4.0, normalized),
                                   rtol=1e-10, atol=1e-12)
        assert not np.allclose(stepped, H)


def test_add_outer_matches_numpy():
    x = np.random.default_rng(5).standard_normal(25)
    moment = np.ones((25, 25))
    hlop.add_outer(moment, x)
    np.testing.assert_allclose(moment, 1 + np.outer(x, x), rtol=1e-12)


def test_projection_keeps_old_outputs_and_the_unprotected_update_does_not():
    """An update projected out of the old activity's exact subspace changes the old outputs by
    rounding only; the same update unprojected changes them by order one."""
    rng = np.random.default_rng(6)
    old_activity = rng.standard_normal((50, 8)) @ rng.standard_normal((8, 60))  # rank 8
    basis = np.linalg.svd(old_activity, full_matrices=False)[2][:8]
    update = rng.standard_normal(60)
    projected = update.copy()
    hlop.project_out(projected, basis, 8, 0, 40, 4.0, np.zeros(8))
    unprotected = np.abs(old_activity @ update).max()
    protected = np.abs(old_activity @ projected).max()
    assert protected < 1e-10 * unprotected and unprotected > 1.0


def _protected_readouts(method="hlop", kind="rate", per_task=5, max_neurons=None, passes=1, **protection):
    config = ReadoutsConfig.model_validate({
        "groups": [{"name": "digit", "n_units": 3, "three_factor": {
            "learning_rate": 0.3, "tau_eligibility_ms": 5.0, "bias_learning_rate": 0.05}}],
        "protection": {"method": method, "groups": ["digit"], "neurons_per_task": per_task,
                       "learning_rate": 0.5, "max_neurons": max_neurons, "hebbian_every_steps": 2,
                       "lateral": {"kind": "spiking" if kind == "spiking_half" else kind, "spiking_steps": 20,
                                   "projection_passes": passes,
                                   "initial_membrane": "half_threshold" if kind == "spiking_half" else "rest"},
                       **protection}})
    return config


def test_growth_and_merge_bookkeeping():
    readouts = Readouts(_protected_readouts(per_task=5, max_neurons=12), n_neurons=20, dt_ms=0.5, seed=3)
    state = readouts.protection
    assert (int(state.counts[0]), int(state.counts[1])) == (0, 5)  # task 0: learning, no projection
    assert orthonormality_error(readouts.lateral_weights) < 1e-12
    first = readouts.lateral_weights
    assert readouts.next_task() == 5 and readouts.projecting_rows == 5 and int(state.counts[1]) == 10
    np.testing.assert_allclose(readouts.lateral_weights[:5], first, atol=1e-12)  # orthonormal already: kept
    assert np.abs(first @ readouts.lateral_weights[5:].T).max() < 1e-12  # new rows start orthogonal to the old
    assert np.all(readouts.three_factor.bias_learning_rate == 0.0)  # protected biases stop learning
    with pytest.raises(RuntimeError, match="begin_task called twice"):
        hlop.begin_task(state, readouts.protection_config, np.random.default_rng(0))
    assert readouts.next_task() == 10 and int(state.counts[1]) == 12  # capped by max_neurons
    assert readouts.next_task() == 12 and int(state.counts[1]) == 12  # full: nothing more to add
    state.lateral[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="protection.learning_rate"):
        readouts.end_task()


def test_exact_basis_grows_by_the_energy_criterion():
    readouts = Readouts(_protected_readouts(method="svd"), n_neurons=10, dt_ms=0.5, seed=3)
    state = readouts.protection
    assert int(state.counts[1]) == 0  # svd grows at a task's end only
    spectrum = np.array([5.0, 3.0, 1.0, 0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.01])
    state.second_moment[...] = np.diag(spectrum)
    readouts.end_task()
    needed = int(np.searchsorted(np.cumsum(spectrum) / spectrum.sum(), 0.99)) + 1
    assert readouts.projecting_rows == needed
    np.testing.assert_allclose(np.abs(readouts.lateral_weights), np.eye(10)[:needed], atol=1e-12)
    assert not state.second_moment.any()
    # the next task's activity inside the old basis adds nothing; outside it, what it needs
    state.second_moment[...] = np.diag(np.r_[np.ones(needed), np.zeros(10 - needed)])
    readouts.end_task()
    assert readouts.projecting_rows == needed


def test_configuration_errors_name_the_key():
    with pytest.raises(ValueError, match="protection.groups: no readout group 'nope'"):
        ReadoutsConfig.model_validate({"groups": [{"name": "a"}], "protection": {"method": "hlop", "groups": ["nope"]}})
    with pytest.raises(ValueError, match="projects three-factor updates only"):
        ReadoutsConfig.model_validate({"groups": [{"name": "a", "rule": "rls"}],
                                       "protection": {"method": "svd", "groups": ["a"]}})
    with pytest.raises(ValueError, match="group 'a' uses normalization = 'variance'.*not a descent direction"):
        ReadoutsConfig.model_validate({"groups": [{"name": "a", "three_factor": {"normalization": "variance"}}],
                                       "protection": {"method": "hlop", "groups": ["a"]}})
    with pytest.raises(ValueError, match="needs the protected groups"):
        ReadoutsConfig.model_validate({"groups": [{"name": "a"}], "protection": {"method": "hlop"}})


TWIN_VARIANTS = {"plain": {}, "centred, decaying, normalised": {
    "hebbian_input": "centred", "learning_rate_decay_steps": 50.0, "normalize_learning_rate": True,
    "learning_rate": 0.3}, "per window": {"projection": "per_window"}}
TWIN_PASSES = {"per window": 2}  # the spiking and quantised kinds project in two rounds there


@pytest.mark.parametrize("variant", sorted(TWIN_VARIANTS))
@pytest.mark.parametrize("kind", ["rate", "spiking", "quantised", "spiking_half"])
def test_engine_with_protection_matches_the_numpy_twin(kind, variant):
    """The readouts with HLOP inside the compiled loop, across two task boundaries, against the
    readouts, the lateral neurons and the projection replayed in NumPy over the same raster."""
    network = small_network(n_neurons=40, synapse="exponential", noise=2.0)
    config = _protected_readouts(kind=kind, per_task=4, passes=TWIN_PASSES.get(variant, 1), **TWIN_VARIANTS[variant])
    readouts = Readouts(config, network.n_neurons, network.dt_ms, seed=2)
    n_steps = 900
    rng = np.random.default_rng(0)
    targets = rng.standard_normal((n_steps, 3)) * 0.2
    gates = (rng.random((n_steps, 3)) < 0.7).astype(float)
    teacher = Teacher(targets, gates=gates)
    sim = Simulation(network, drive(network, n_steps, 12.0), seed=2, readouts=readouts, teacher=teacher,
                     chunk_steps=97)
    boundaries = (300, 600)
    for stop in boundaries:
        sim.run(n_steps=stop - sim.step)
        readouts.next_task()
    sim.run(n_steps=n_steps - sim.step)
    fresh = Readouts(config, network.n_neurons, network.dt_ms, seed=2)
    outputs, weights, bias, H = naive_protected_readouts(fresh, sim.recorder.spike_steps, sim.recorder.spike_ids,
                                                         set(boundaries), n_steps, teacher)
    assert readouts.projecting_rows == (10 if variant.startswith("centred") else 8)  # centred: a mean row per task
    np.testing.assert_allclose(readouts.lateral_weights, H, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sim.recorder.outputs, outputs, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(readouts.weights, weights, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(readouts.three_factor.bias, bias, rtol=1e-8, atol=1e-12)


def test_merge_orthonormalises_the_new_rows_within_their_span():
    rng = np.random.default_rng(8)
    readouts = Readouts(_protected_readouts(per_task=4), n_neurons=12, dt_ms=0.5, seed=3)
    state = readouts.protection
    readouts.next_task()
    old = readouts.lateral_weights[:4]
    learned = hlop.orthonormal_rows(rng, 4, 12) * 1.1 + 0.3 * old  # overlapping the old rows, not unit length
    state.lateral[4:8] = learned
    readouts.end_task()
    H = readouts.lateral_weights
    np.testing.assert_array_equal(H[:4], old)  # the old rows do not move
    assert orthonormality_error(H) < 1e-12
    # the new rows span what the learned rows spanned outside the old rows
    residual = learned - (learned @ old.T) @ old
    assert principal_angle_cosines(H[4:], residual).min() > 1 - 1e-12


def test_per_window_projection_keeps_old_outputs_at_each_window_end_and_refuses_past_rows():
    """After a window closes, the protected weights' change since it opened is orthogonal to the
    old rows: old activity in their span reads the same output. A protected unit with a
    prediction lead learns from past rows outside its window, so per_window is refused."""
    readouts = Readouts(_protected_readouts(per_task=4, projection="per_window"), n_neurons=12, dt_ms=0.5, seed=3)
    state = readouts.protection
    readouts.next_task()
    H_old = readouts.lateral_weights[:readouts.projecting_rows]
    rng = np.random.default_rng(1)
    weights = rng.standard_normal(readouts.weights.shape)
    gates_open, gates_shut = np.ones(3), np.zeros(3)
    features = rng.standard_normal(readouts.n_features)
    hlop.protection_step(state, features, readouts.three_factor.eligibility, gates_open, weights)
    before = weights.copy()
    weights += rng.standard_normal(weights.shape)  # the window's updates, unprojected
    hlop.protection_step(state, features, readouts.three_factor.eligibility, gates_shut, weights)
    np.testing.assert_allclose((weights - before) @ H_old.T, 0.0, atol=1e-12)
    assert not np.allclose(weights, before)
    config = ReadoutsConfig.model_validate({
        "groups": [{"name": "digit", "n_units": 3, "three_factor": {"prediction_lead_ms": 5.0}}],
        "protection": {"method": "hlop", "groups": ["digit"], "projection": "per_window"}})
    with pytest.raises(ValueError, match="per_window.*prediction lead"):
        Readouts(config, n_neurons=12, dt_ms=0.5, seed=3)
