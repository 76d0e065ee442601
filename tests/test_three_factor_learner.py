import numpy as np
import pytest

from reservoir.rules.three_factor import ThreeFactorReadout


def _data(seed=0, rows=3000, features=6, outputs=2):
    rng = np.random.default_rng(seed)
    X = rng.random((rows, features))
    W = rng.normal(size=(outputs, features))
    return X, X @ W.T, W


def test_short_eligibility_converges_to_the_least_squares_weights():
    X, Y, W = _data()
    learner = ThreeFactorReadout(learning_rate=0.3, tau_eligibility_ms=1e-3, dt_ms=1.0).fit(X, Y)
    np.testing.assert_allclose(learner.weights_, W, atol=0.02)
    np.testing.assert_allclose(learner.predict(X[-10:]), Y[-10:], atol=0.05)


def test_partial_fit_in_pieces_equals_one_call():
    X, Y, _ = _data(rows=500)
    whole = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0).fit(X, Y)
    parts = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0)
    for chunk in np.array_split(np.arange(500), 7):
        parts.partial_fit(X[chunk], Y[chunk])
    np.testing.assert_array_equal(whole.weights_, parts.weights_)


def test_replay_of_stored_rows_equals_online_learning():
    X, Y, _ = _data(rows=400)
    online = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0).fit(X, Y)
    recorder = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0).fit(X, Y, gates=0.0)
    assert np.all(recorder.weights_ == 0)
    replayed = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0).fit(X[:1], Y[:1], gates=0.0)
    replayed.replay(X, recorder.last_eligibility_, Y)
    np.testing.assert_array_equal(replayed.weights_, online.weights_)


def test_bounds_decay_and_validation():
    X, Y, _ = _data(rows=300)
    bounded = ThreeFactorReadout(learning_rate=0.3, tau_eligibility_ms=1.0, weight_min=-0.1, weight_max=0.1).fit(X, Y)
    assert bounded.weights_.min() >= -0.1 and bounded.weights_.max() <= 0.1
    with pytest.raises(ValueError, match="learning_rate"):
        ThreeFactorReadout(learning_rate=-1)
    with pytest.raises(ValueError, match="rows"):
        ThreeFactorReadout().fit(X, Y[:10])
    with pytest.raises(ValueError, match="not fitted"):
        ThreeFactorReadout().predict(X)


def test_reset_state_keeps_the_weights_and_starts_the_trace_afresh():
    X, Y, _ = _data(rows=400)
    learner = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0).fit(X[:200], Y[:200])
    weights = learner.weights_.copy()
    assert np.any(learner.eligibility_ != 0)
    learner.reset_state()
    np.testing.assert_array_equal(learner.weights_, weights)
    assert not np.any(learner.eligibility_)
    fresh = ThreeFactorReadout(learning_rate=0.1, tau_eligibility_ms=20.0).fit(X[:1], Y[:1], gates=0.0)
    fresh.weights_[:] = weights  # the explicit fresh state: trained weights, zero trace and output
    fresh.eligibility_[:] = 0.0
    fresh.z_[:] = 0.0
    learner.partial_fit(X[200:], Y[200:])
    fresh.partial_fit(X[200:], Y[200:])
    np.testing.assert_array_equal(learner.weights_, fresh.weights_)
    np.testing.assert_array_equal(learner.last_outputs_, fresh.last_outputs_)


COVARIANCE = {"centering": "running_mean", "normalization": "variance", "tau_mean_ms": 50.0,
              "normalization_floor": 1e-3, "bias_learning_rate": 0.05}


@pytest.mark.parametrize("rule", [{}, COVARIANCE], ids=["plain", "centred-normalised-bias"])
def test_the_update_of_a_synapse_uses_only_its_own_input_and_its_units_error(rule):
    """Locality: with the unit's error held fixed (the changed inputs have zero weight and do
    not enter the output), changing the other synapses' inputs leaves a synapse's update
    unchanged, bit for bit, over many steps."""
    rng = np.random.default_rng(4)
    X = rng.random((300, 8)) * 0.05
    Y = rng.random((300, 1))
    frozen = np.zeros((1, 8))
    frozen[0, :4] = rng.normal(size=4)

    def updates(X):
        learner = ThreeFactorReadout(learning_rate=0.2, tau_eligibility_ms=10.0, **rule)
        learner.fit(X[:1], Y[:1], gates=0.0)  # allocate, learn nothing
        steps = []
        for x, y in zip(X, Y):
            learner.weights_[:] = frozen  # the same output and error at every step, for both inputs
            learner.partial_fit(x[None], y[None])
            steps.append(learner.weights_[0, :4] - frozen[0, :4])
        return np.array(steps)

    other = X.copy()
    other[:, 4:] = rng.random((300, 4))  # the unrelated synapses see other inputs
    # ... which, with zero weights, do not change the output: only the update could see them
    np.testing.assert_array_equal(updates(X), updates(other))
    assert np.abs(updates(X)).max() > 0


def test_centring_removes_the_common_rate_and_speeds_up_learning():
    """On positive rate-like features with a large shared mean (the reservoir's case), the
    centred rule with a learned bias reaches a lower error than the plain rule at its largest
    stable rate within the same rows (LeCun, Kanter & Solla 1991)."""
    rng = np.random.default_rng(5)
    rows, n = 6000, 20
    X = 1.0 + 0.1 * rng.standard_normal((rows, n))  # mean 1, fluctuations 0.1: eigenvalue ratio ~ 2000
    w_true = rng.normal(size=n)
    Y = (X - 1.0) @ w_true + 0.3
    errors = {}
    for name, rule in (("plain", {}), ("centred", {"centering": "running_mean", "tau_mean_ms": 500.0,
                                                  "bias_learning_rate": 0.05})):
        best = np.inf
        for rate in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
            learner = ThreeFactorReadout(learning_rate=rate, tau_eligibility_ms=1e-3, **rule)
            with np.errstate(all="ignore"):
                learner.fit(X, Y)
                error = float(np.mean((learner.last_outputs_[-1000:, 0] - Y[-1000:]) ** 2))
            if np.isfinite(error):
                best = min(best, error)
        errors[name] = best
    assert errors["centred"] < 0.1 * errors["plain"], errors


def test_normalisation_makes_the_step_independent_of_the_feature_scale():
    """Dividing the centred factor by its running variance: scaling every feature by 10 scales
    the learned weights by 1/10 and leaves the outputs unchanged (to rounding), once the floor
    is negligible."""
    rng = np.random.default_rng(6)
    X = 0.05 + 0.01 * rng.standard_normal((3000, 6))
    Y = (X - 0.05) @ rng.normal(size=6) * 50
    rule = dict(COVARIANCE, normalization_floor=1e-12, tau_mean_ms=200.0)
    small = ThreeFactorReadout(learning_rate=0.01, tau_eligibility_ms=1e-3, **rule).fit(X, Y)
    large = ThreeFactorReadout(learning_rate=0.01, tau_eligibility_ms=1e-3, **rule).fit(10 * X, Y)
    np.testing.assert_allclose(large.weights_ * 10, small.weights_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(large.last_outputs_, small.last_outputs_, rtol=0, atol=1e-4)
    assert np.mean((small.last_outputs_[-500:, 0] - Y[-500:]) ** 2) < 0.1 * np.var(Y)


def test_running_statistics_and_bias_survive_the_trial_reset_and_replay_exactly():
    X, Y, _ = _data(rows=400)
    online = ThreeFactorReadout(learning_rate=0.05, tau_eligibility_ms=20.0, **COVARIANCE).fit(X, Y)
    recorder = ThreeFactorReadout(learning_rate=0.05, tau_eligibility_ms=20.0, **COVARIANCE).fit(X, Y, gates=0.0)
    replayed = ThreeFactorReadout(learning_rate=0.05, tau_eligibility_ms=20.0, **COVARIANCE).fit(X[:1], Y[:1], gates=0.0)
    replayed.replay(X, recorder.last_eligibility_, Y)
    np.testing.assert_array_equal(replayed.weights_, online.weights_)
    np.testing.assert_array_equal(replayed.bias_, online.bias_)
    mean = online.state_.feature_mean.copy()
    online.reset_state()
    np.testing.assert_array_equal(online.state_.feature_mean, mean)
    assert np.all(online.bias_ != 0)
