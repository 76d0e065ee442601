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
