"""RLS readout (reservoir/rules/rls.py): NumPy twin, closed forms, forgetting, reset, validation.

The kernels sum ``P r`` in a different order from ``P @ r`` (upper triangle, interleaved lanes,
pairwise halving) and compute ``P_new r`` as ``P_old r / c``, so kernel and twin agree to
rounding (relative 1e-12 of the largest entry), not bit for bit. Between the eager and the
fused kernel the arithmetic is the same, and there the test demands bit identity.
"""
from types import SimpleNamespace

import numpy as np
import pytest

from reservoir.rules import rls
from reservoir.rules.rls import (DECODER_FORMS, RLSReadout, rls_flush, rls_initial_P, rls_pending_state,
                                 rls_reset, rls_update, rls_update_fused, symmetric_P)

from .helpers import interpret_kernels
from .naive_rls import naive_rls_run


@pytest.fixture(params=["compiled", "interpreted"])
def rls_kernels(request, monkeypatch):
    """The RLS kernels compiled, or as plain Python (``py_func``, which also covers their bodies).

    Interpreted runs use 4 dot-product lanes instead of 128 so that small problems (fast in
    Python) still go through several lane blocks and a non-trivial pairwise halving.
    """
    if request.param == "interpreted":
        interpret_kernels(monkeypatch)
        monkeypatch.setattr(rls, "_DOT_LANES", 4)
    return SimpleNamespace(mode=request.param, update=rls.rls_update, update_fused=rls.rls_update_fused,
                           flush=rls.rls_flush)


def _scale_close(actual, expected, rtol, what):
    """``|actual - expected| <= rtol * max|expected|``, entrywise."""
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale, err_msg=what)


def _events(rng, n_events, n_features, n_outputs):
    """Positive, correlated traces (like filtered rates) and smooth targets."""
    R = rng.random((n_events, n_features)) * rng.uniform(0.5, 1.5, n_features)
    Y = np.sin(np.arange(n_events)[:, None] * 0.1 + np.arange(n_outputs)) + 0.1 * rng.standard_normal(
        (n_events, n_outputs))
    return R, Y


# ---------------------------------------------------------------------------------------------
# (a) kernels against the NumPy twin
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", ["eager", "fused"])
@pytest.mark.parametrize("forgetting", [1.0, 0.995, 0.95])
@pytest.mark.parametrize("decoder_form", ["textbook", "nicola_clopath"])
def test_kernel_matches_numpy_twin(rls_kernels, kernel, forgetting, decoder_form):
    """Kernel against twin event by event, with NaN in the strictly lower triangle of the kernel's P.

    Forgetting is kept mild: with fewer events than features, P grows as lambda^-t along the
    directions no r has visited, r^T P r / lambda becomes large, and the twin's literal
    ``P(t) r = (P r - P r (r^T P r) / c) / lambda`` cancels catastrophically (lambda = 0.9,
    F = 300, 120 events: the twin's weights are off by 5e-12 relative, the kernel's by 4e-15,
    against an extended-precision run of the twin). That is the twin's weakness, not the kernel's.
    """
    compiled = rls_kernels.mode == "compiled"
    # compiled: F = 300 > 2 x 128 lanes; interpreted: F = 13 > 3 x 4 lanes
    n_features, n_events = (300, 120) if compiled else (13, 40)
    n_outputs, alpha = 3, float(n_features)  # alpha ~ |r|^2 keeps r^T P r of order 1 (NC form stable)
    rng = np.random.default_rng(7)
    R, Y = _events(rng, n_events, n_features, n_outputs)
    P_twin, weights_twin, errors_twin = naive_rls_run(R, Y, alpha, forgetting, decoder_form)

    P = rls_initial_P(n_features, alpha)
    P[np.tril_indices(n_features, -1)] = np.nan  # the strictly lower triangle is never read nor written
    pending_pr, pending_coefficients = rls_pending_state(n_features)
    weights = np.zeros((n_outputs, n_features))
    scratch = np.empty(n_features)
    code = DECODER_FORMS[decoder_form]
    for t in range(n_events):
        errors = weights @ R[t] - Y[t]
        np.testing.assert_allclose(errors, errors_twin[t], rtol=1e-10, atol=1e-12)
        if kernel == "eager":
            c = rls_kernels.update(P, R[t], weights, errors, forgetting, code, scratch)
        else:
            c = rls_kernels.update_fused(P, pending_pr, pending_coefficients, R[t], weights, errors, forgetting,
                                         code, scratch)
        assert np.isfinite(c) and c > forgetting
    if kernel == "fused":
        rls_kernels.flush(P, pending_pr, pending_coefficients)
        np.testing.assert_array_equal(pending_coefficients, [0.0, 1.0])
    assert np.all(np.isnan(P[np.tril_indices(n_features, -1)]))
    _scale_close(symmetric_P(P), P_twin, 1e-12, "P")
    _scale_close(weights, weights_twin, 1e-12, "weights")


def test_eager_fused_and_flushes_are_bit_identical():
    """Same arithmetic in both kernels; flushing at any time does not change the trajectory."""
    n_features, n_events, n_outputs = 300, 80, 2
    rng = np.random.default_rng(3)
    R, Y = _events(rng, n_events, n_features, n_outputs)
    flush_after = set(rng.choice(n_events, size=15, replace=False).tolist())
    states = {}
    for variant in ("eager", "fused", "fused_with_flushes"):
        P = rls_initial_P(n_features, 2.0)
        pending_pr, pending_coefficients = rls_pending_state(n_features)
        weights = np.zeros((n_outputs, n_features))
        scratch = np.empty(n_features)
        for t in range(n_events):
            errors = weights @ R[t] - Y[t]
            if variant == "eager":
                rls_update(P, R[t], weights, errors, 0.98, 0, scratch)
            else:
                rls_update_fused(P, pending_pr, pending_coefficients, R[t], weights, errors, 0.98, 0, scratch)
                if variant == "fused_with_flushes" and t in flush_after:
                    rls_flush(P, pending_pr, pending_coefficients)
        full = symmetric_P(P, pending_pr, pending_coefficients)  # applies a pending correction to a copy
        rls_flush(P, pending_pr, pending_coefficients)
        np.testing.assert_array_equal(full, symmetric_P(P))
        states[variant] = (symmetric_P(P), weights)
    for variant in ("fused", "fused_with_flushes"):
        np.testing.assert_array_equal(states[variant][0], states["eager"][0])
        np.testing.assert_array_equal(states[variant][1], states["eager"][1])


def test_readout_matches_twin_and_reading_P_does_not_perturb(rls_kernels):
    n_features, n_events = (150, 60) if rls_kernels.mode == "compiled" else (9, 25)
    rng = np.random.default_rng(11)
    R, Y = _events(rng, n_events, n_features, 2)
    P_twin, weights_twin, errors_twin = naive_rls_run(R, Y, 1.5, 0.99, "nicola_clopath")
    readout = RLSReadout(alpha=1.5, forgetting=0.99, decoder_form="nicola_clopath").fit(R, Y)
    _scale_close(readout.P_, P_twin, 1e-12, "P_")
    _scale_close(readout.weights_, weights_twin, 1e-12, "weights_")
    _scale_close(readout.prior_errors_, errors_twin, 1e-12, "prior_errors_")
    # the same rows one at a time, reading P_ (a flush) in between: bit-identical
    stepwise = RLSReadout(n_features, 2, alpha=1.5, forgetting=0.99, decoder_form="nicola_clopath")
    for t in range(n_events):
        stepwise.partial_fit(R[t], Y[t])
        if t % 3 == 0:
            P_copy = stepwise.P_
            np.testing.assert_array_equal(P_copy, P_copy.T)
    np.testing.assert_array_equal(stepwise.P_, readout.P_)
    np.testing.assert_array_equal(stepwise.weights_, readout.weights_)
    assert stepwise.n_updates_ == readout.n_updates_ == n_events
    np.testing.assert_array_equal(readout.predict(R), R @ readout.weights_.T)


# ---------------------------------------------------------------------------------------------
# (b) closed-form least squares (forgetting = 1)
# ---------------------------------------------------------------------------------------------

def _static_problem(seed, n_rows, n_features, n_outputs, noise=0.3):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((n_rows, n_features))
    true_weights = rng.standard_normal((n_outputs, n_features))
    Y = R @ true_weights.T + noise * rng.standard_normal((n_rows, n_outputs))
    return R, Y, true_weights


def test_textbook_rls_is_recursive_ridge_regression():
    """lambda = 1, P(0) = I/alpha, w(0) = 0: P(T) = (R^T R + alpha I)^-1 and w(T) = P(T) R^T Y.

    Exact in exact arithmetic (Sherman-Morrison, by induction); here to rounding."""
    R, Y, _ = _static_problem(1, 600, 25, 2)
    alpha = 0.5
    readout = RLSReadout(alpha=alpha).fit(R, Y)
    gram = R.T @ R + alpha * np.eye(R.shape[1])
    _scale_close(readout.P_, np.linalg.inv(gram), 1e-11, "P = (R^T R + alpha I)^-1")
    _scale_close(readout.weights_, np.linalg.solve(gram, R.T @ Y).T, 1e-11, "ridge weights")


def test_nicola_clopath_form_properties():
    """What is true of the NC decoder step (w -= e- P_old r), on a realizable, noise-free problem:

    * P does not depend on the decoder form: bit-identical to the textbook run;
    * a-posteriori error of each event: e+ = e- (1 + lambda - c) with c = lambda + r^T P_old r
      (textbook: e+ = e- lambda / c), so it overshoots once r^T P_old r > 1;
    * it is not ridge regression (differs from it by far more than rounding); with
      r^T P r < 1 throughout (alpha = 4 F here, r^T P(0) r ~ 1/4) it converges to the true
      weights at the 1/T rate of RLS (measured: 0.75 x the ridge bias alpha |P(T) w*|).
    """
    n_features = 12
    R, Y, true_weights = _static_problem(2, 3000, n_features, 1, noise=0.0)
    alpha = 4.0 * n_features
    runs = {}
    for form in ("textbook", "nicola_clopath"):
        P = rls_initial_P(n_features, alpha)
        weights = np.zeros((1, n_features))
        scratch = np.empty(n_features)
        for t in range(R.shape[0]):
            errors = weights @ R[t] - Y[t]
            c = rls_update(P, R[t], weights, errors, 1.0, DECODER_FORMS[form], scratch)
            posterior = weights @ R[t] - Y[t]
            expected = errors * (2.0 - c) if form == "nicola_clopath" else errors / c
            np.testing.assert_allclose(posterior, expected, rtol=1e-9, atol=1e-12 * np.abs(Y[t]).max())
            assert c - 1.0 < 1.0
            if t == 999:
                weights_at_1000 = weights.copy()
        runs[form] = (symmetric_P(P), weights.copy(), weights_at_1000)
    np.testing.assert_array_equal(runs["nicola_clopath"][0], runs["textbook"][0])
    gram = R.T @ R + alpha * np.eye(n_features)
    ridge = np.linalg.solve(gram, R.T @ Y).T
    _scale_close(runs["textbook"][1], ridge, 1e-11, "textbook = ridge")
    assert np.max(np.abs(runs["nicola_clopath"][1] - ridge)) > 1e-8 * np.max(np.abs(ridge))

    def relative_error(weights):
        return np.linalg.norm(weights - true_weights) / np.linalg.norm(true_weights)
    error_1000, error_3000 = relative_error(runs["nicola_clopath"][2]), relative_error(runs["nicola_clopath"][1])
    assert error_3000 < 0.02 and error_3000 < 0.4 * error_1000, (error_1000, error_3000)


def test_nicola_clopath_form_overshoots_with_a_large_initial_P():
    """With r^T P(0) r ~ F / alpha = 120, each early NC event multiplies the error by about
    1 - r^T P r (the identity above): the weights blow up and RLS only averages the transient
    away at rate 1/T (measured: 3.8e12 relative error after 100 events, 1e12 after 300), while the
    textbook form is already at the ridge solution. Use the NC form with |r|^2 / alpha < 1, as
    Nicola & Clopath's small filtered rates and P(0) = 2 I do."""
    R, Y, true_weights = _static_problem(2, 300, 12, 1, noise=0.0)
    errors = {}
    for form in ("textbook", "nicola_clopath"):
        readout = RLSReadout(alpha=0.1, decoder_form=form).fit(R, Y)
        errors[form] = np.linalg.norm(readout.weights_ - true_weights) / np.linalg.norm(true_weights)
    assert errors["textbook"] < 1e-3 and errors["nicola_clopath"] > 1e3, errors


# ---------------------------------------------------------------------------------------------
# (c) forgetting factor
# ---------------------------------------------------------------------------------------------

def test_forgetting_closed_form():
    """P(T)^-1 = lambda^T alpha I + sum_t lambda^(T-t) r_t r_t^T; w(T) = P(T) sum_t lambda^(T-t) r_t y_t^T."""
    n_rows, n_features, forgetting, alpha = 200, 10, 0.97, 2.0
    R, Y, _ = _static_problem(4, n_rows, n_features, 3)
    readout = RLSReadout(alpha=alpha, forgetting=forgetting).fit(R, Y)
    decay = forgetting ** (n_rows - 1 - np.arange(n_rows))  # lambda^(T-t), t = 1..T
    inverse = forgetting ** n_rows * alpha * np.eye(n_features) + (R * decay[:, None]).T @ R
    _scale_close(readout.P_, np.linalg.inv(inverse), 1e-10, "P")
    _scale_close(readout.weights_, np.linalg.solve(inverse, (R * decay[:, None]).T @ Y).T, 1e-10, "weights")


def test_forgetting_tracks_a_switched_target():
    """After a switch w_a -> w_b at T1 = 1000, measure |w - w_b| / |w_a - w_b| T2 = 200 events later.

    With isotropic r the solution weighs the old and new rows by their share of the (weighted)
    correlation: lambda = 1 leaves T1 / (T1 + T2) = 0.83 of the way at w_a; lambda = 0.98 leaves
    about lambda^T2 = 0.018 (memory 1 / (1 - lambda) = 50 events, 5 x F). Measured: 0.82 and 0.024.
    """
    n_features, switch, after = 10, 1000, 200
    rng = np.random.default_rng(5)
    R = rng.standard_normal((switch + after, n_features))
    weights_a, weights_b = rng.standard_normal((2, 1, n_features))
    Y = np.concatenate([R[:switch] @ weights_a.T, R[switch:] @ weights_b.T])
    distance = {}
    for forgetting in (1.0, 0.98):
        readout = RLSReadout(alpha=1.0, forgetting=forgetting).fit(R, Y)
        distance[forgetting] = np.linalg.norm(readout.weights_ - weights_b) / np.linalg.norm(weights_a - weights_b)
    assert distance[1.0] > 0.7, distance
    assert distance[0.98] < 0.05, distance
    assert distance[1.0] > 20 * distance[0.98], distance


# ---------------------------------------------------------------------------------------------
# (d) reset
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reset_weights", [False, True])
def test_reset(reset_weights):
    R, Y, _ = _static_problem(6, 50, 7, 2)
    readout = RLSReadout(alpha=3.0, forgetting=0.9).fit(R, Y)
    assert not np.array_equal(readout.P_, np.eye(7) / 3.0)
    readout.partial_fit(R[0], Y[0])  # leave a correction pending
    weights_before = readout.weights_.copy()
    readout.reset(reset_weights=reset_weights)
    np.testing.assert_array_equal(readout.P_, np.eye(7) / 3.0)
    np.testing.assert_array_equal(readout.weights_, np.zeros((2, 7)) if reset_weights else weights_before)
    assert readout.n_updates_ == 0
    if reset_weights:  # indistinguishable from a fresh readout afterwards
        fresh = RLSReadout(7, 2, alpha=3.0, forgetting=0.9).partial_fit(R, Y)
        readout.partial_fit(R, Y)
        np.testing.assert_array_equal(readout.weights_, fresh.weights_)
        np.testing.assert_array_equal(readout.P_, fresh.P_)


def test_kernel_reset_helpers():
    P = rls_initial_P(5, 0.25)
    np.testing.assert_array_equal(P, np.eye(5) / 0.25)
    pending_pr, pending_coefficients = rls_pending_state(5)
    weights = np.zeros((1, 5))
    rls_update_fused(P, pending_pr, pending_coefficients, np.arange(5.0), weights, np.array([1.0]), 1.0, 0,
                     np.empty(5))
    rls_reset(P, 0.25, pending_pr, pending_coefficients)
    np.testing.assert_array_equal(P, np.eye(5) * 4.0)
    np.testing.assert_array_equal(pending_pr, np.zeros(5))
    np.testing.assert_array_equal(pending_coefficients, [0.0, 1.0])


# ---------------------------------------------------------------------------------------------
# (e) validation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,name", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": -1.0}, "alpha"), ({"alpha": np.nan}, "alpha"),
    ({"alpha": np.inf}, "alpha"), ({"alpha": "1"}, "alpha"), ({"alpha": True}, "alpha"),
    ({"forgetting": 0.0}, "forgetting"), ({"forgetting": 1.01}, "forgetting"),
    ({"forgetting": -0.5}, "forgetting"), ({"forgetting": np.nan}, "forgetting"),
    ({"decoder_form": "sussillo"}, "decoder_form"), ({"decoder_form": 0}, "decoder_form"),
    ({"learn_every": 0}, "learn_every"), ({"learn_every": 2.5}, "learn_every"),
    ({"n_features": 0}, "n_features"), ({"n_outputs": -2}, "n_outputs"),
])
def test_parameter_errors_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        RLSReadout(**kwargs)


def test_data_errors_name_the_argument():
    readout = RLSReadout(4, 2)
    cases = [
        (lambda: readout.partial_fit(np.ones(5), np.ones(2)), r"\br\b"),
        (lambda: readout.partial_fit(np.ones(4), np.ones(3)), r"\btarget\b"),
        (lambda: readout.partial_fit(np.ones(4), np.ones((2, 2))), r"\btarget\b"),
        (lambda: readout.partial_fit(np.array([1.0, np.nan, 0.0, 0.0]), np.ones(2)), r"\br\b"),
        (lambda: readout.fit(np.ones(4), np.ones(2)), r"\bR\b"),
        (lambda: readout.fit(np.ones((3, 4)), np.ones((2, 2))), r"\bY\b"),
        (lambda: readout.fit(np.ones((3, 4)), np.full((3, 2), np.inf)), r"\bY\b"),
        (lambda: readout.predict(np.ones((3, 5))), r"\bR\b"),
        (lambda: RLSReadout().predict(np.ones(3)), "fit"),
        (lambda: rls_initial_P(3, alpha=0.0), r"\balpha\b"),
        (lambda: rls_initial_P(0, alpha=1.0), r"\bn_features\b"),
        (lambda: rls_reset(np.ones((2, 3)), 1.0), r"\bP\b"),
        (lambda: rls_update(np.eye(2), np.ones(2), np.zeros((1, 2)), np.ones(1), 1.0, 2, np.empty(2)),
         "decoder_form"),
    ]
    for call, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            call()
    assert readout.n_updates_ == 0  # nothing was learnt from rejected data


def test_shapes_are_inferred_and_one_output_accepts_flat_targets():
    R, Y, _ = _static_problem(8, 30, 6, 1)
    flat = RLSReadout().fit(R, Y[:, 0])
    column = RLSReadout().fit(R, Y)
    np.testing.assert_array_equal(flat.weights_, column.weights_)
    assert (flat.n_features, flat.n_outputs, flat.weights_.shape) == (6, 1, (1, 6))
    assert flat.predict(R[0]).shape == (1,)
    flat.partial_fit(R[0], float(Y[0, 0]))
    assert flat.n_updates_ == 31
    assert "decoder_form='textbook'" in repr(flat)
