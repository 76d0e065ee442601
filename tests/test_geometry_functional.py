"""The functional overlap of two readouts (``analysis.geometry.functional_overlap``): the
correlation of their outputs over the activity, i.e. the cosine of their angle in the metric of
the activity covariance, and its null of permuted weights."""
import numpy as np
import pytest

from analysis.geometry import (FUNCTIONAL_NULL_SUBSTREAM, GEOMETRY_NULL_SUBSTREAM, analysis_rng, angle_deg,
                               functional_correlations, functional_overlap)
from reservoir.rng import substream


def _activity(seed=0, n=1500, features=60, factors=3, shared=4.0):
    """Samples with a few strong latent factors (random loadings) over independent noise: the
    features co-vary strongly and unevenly, so random readouts' outputs correlate by chance."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, factors)) * shared
    return latent @ rng.standard_normal((factors, features)) + rng.standard_normal((n, features)) + 5.0


def _slow_correlation(a, b, X):
    """The textbook formula: the covariance matrix written out, then a^T C b / sqrt(a^T C a b^T C b)."""
    n, F = X.shape
    mean = np.array([sum(X[i, j] for i in range(n)) / n for j in range(F)])
    C = np.zeros((F, F))
    for i in range(n):
        d = X[i] - mean
        C += np.outer(d, d)
    C /= n
    return float(a @ C @ b / np.sqrt((a @ C @ a) * (b @ C @ b)))


class FakeRun:
    def __init__(self, seed):
        self.config = {"seed": seed}


def test_the_correlation_and_its_null_are_the_covariance_formula():
    X = _activity(n=200, features=12)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 12))
    overlap = functional_overlap(a, b, X, np.random.default_rng(7), n_null=300)
    expected = _slow_correlation(a, b, X)
    assert overlap.correlation == pytest.approx(expected, abs=1e-12)
    assert overlap.angle_deg == pytest.approx(np.degrees(np.arccos(expected)), abs=1e-9)
    assert functional_correlations(a, b, X) == pytest.approx(expected, abs=1e-12)
    # the null: draw by draw, |r| of a against the permutations rng.permutation(b) would give
    draws = np.random.default_rng(7)
    slow_null = np.array([abs(_slow_correlation(a, draws.permutation(b), X)) for _ in range(300)])
    np.testing.assert_allclose(overlap.null_abs_correlation, slow_null, atol=1e-12)
    assert overlap.fraction_as_orthogonal == pytest.approx(np.mean(slow_null <= abs(expected)), abs=1e-12)
    summary = overlap.null_summary()
    assert summary["n_draws"] == 300
    np.testing.assert_allclose([summary["p5"], summary["p50"], summary["p95"]],
                               np.percentile(slow_null, [5, 50, 95]), atol=1e-12)


def test_paired_rows_and_broadcasting_over_snapshots():
    X = _activity(n=300, features=20)
    rng = np.random.default_rng(2)
    when, what = rng.standard_normal((4, 20)), rng.standard_normal((4, 2, 20))
    by_snapshot = functional_correlations(when[:, None, :], what, X)
    assert by_snapshot.shape == (4, 2)
    for s in range(4):
        for k in range(2):
            assert by_snapshot[s, k] == pytest.approx(_slow_correlation(when[s], what[s, k], X), abs=1e-12)
    centred = X - X.mean(axis=0)
    np.testing.assert_allclose(functional_correlations(when[:, None, :], what, centred, centre=False), by_snapshot,
                               atol=1e-12)


def test_readouts_orthogonal_in_the_covariance_metric_are_uncorrelated_beyond_a_spread_null():
    X = _activity(seed=3)
    C = np.cov(X.T, bias=True)
    rng = np.random.default_rng(4)
    a = rng.uniform(0.0, 1.0, X.shape[1])
    b = rng.uniform(-0.5, 1.0, X.shape[1])
    b -= (a @ C @ b) / (a @ C @ a) * a  # C-orthogonal to a, not Euclidean-orthogonal
    assert abs(angle_deg(a, b) - 90.0) > 5.0
    overlap = functional_overlap(a, b, X, np.random.default_rng(5), n_null=1000)
    assert abs(overlap.correlation) < 1e-10
    assert overlap.angle_deg == pytest.approx(90.0, abs=1e-8)
    assert overlap.null_summary()["p50"] > 0.1  # the shared factors make random readouts correlate
    assert overlap.fraction_as_orthogonal <= 0.05


def test_identical_and_opposite_readouts_correlate_fully_and_no_draw_is_as_correlated():
    X = _activity(seed=6)
    a = np.random.default_rng(8).standard_normal(X.shape[1])
    same = functional_overlap(a, 3.0 * a, X, np.random.default_rng(9), n_null=500)
    assert same.correlation == pytest.approx(1.0, abs=1e-12) and same.angle_deg == pytest.approx(0.0, abs=1e-4)
    assert same.fraction_as_orthogonal == 1.0
    opposite = functional_overlap(a, -a, X, np.random.default_rng(9), n_null=500)
    assert opposite.correlation == pytest.approx(-1.0, abs=1e-12) and opposite.fraction_as_orthogonal == 1.0


def test_scale_free_even_for_a_diverged_readout_and_nan_without_output():
    X = _activity(seed=10, n=400, features=15)
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((2, 15))
    reference = functional_overlap(a, b, X, np.random.default_rng(1), n_null=50)
    huge = functional_overlap(1e280 * a, b, X, np.random.default_rng(1), n_null=50)
    assert huge.correlation == pytest.approx(reference.correlation, abs=1e-12)
    np.testing.assert_allclose(huge.null_abs_correlation, reference.null_abs_correlation, atol=1e-12)
    assert angle_deg(1e200 * a, b) == pytest.approx(angle_deg(a, b), abs=1e-9)  # the norm overflowed to 90 deg before
    silent = functional_overlap(np.zeros(15), b, X, np.random.default_rng(1), n_null=50)
    assert np.isnan(silent.correlation) and np.isnan(silent.angle_deg) and np.isnan(silent.fraction_as_orthogonal)
    assert np.isnan(functional_correlations(a, np.r_[np.inf, b[1:]], X))
    with pytest.raises(ValueError):
        functional_overlap(a, b[:-1], X, np.random.default_rng(1))


def test_the_null_is_drawn_from_the_runs_own_stream():
    X = _activity(seed=12, n=300, features=20)
    a, b = np.random.default_rng(13).standard_normal((2, 20))

    def null(seed):
        return functional_overlap(a, b, X, analysis_rng(FakeRun(seed), FUNCTIONAL_NULL_SUBSTREAM),
                                  n_null=400).null_abs_correlation

    np.testing.assert_array_equal(null(3), null(3))
    assert not np.array_equal(null(3), null(4))
    # its own item of the offline_analysis stream: the sampled angle nulls (item 1) draw as before
    assert FUNCTIONAL_NULL_SUBSTREAM != GEOMETRY_NULL_SUBSTREAM
    np.testing.assert_array_equal(analysis_rng(FakeRun(3)).standard_normal(5),
                                  substream(3, "offline_analysis", 1).standard_normal(5))
    first = analysis_rng(FakeRun(3), FUNCTIONAL_NULL_SUBSTREAM).permutation(20)
    np.testing.assert_array_equal(first, substream(3, "offline_analysis", 2).permutation(20))
