"""The public analysis API: trial alignment, fits, geometry with its nulls, feature PCs, and the
figure functions (each returns a figure with labelled axes, on a tiny what/when run)."""

import matplotlib

matplotlib.use("Agg")  # the tests save nothing, but must not open windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from analysis import figures, load_metrics, load_run  # noqa: E402
from analysis.fits import fit_line  # noqa: E402
from analysis.plots import raster_figure  # noqa: E402
from analysis.geometry import (SubspaceAngleNull, VectorAngleNull, analysis_rng, angle_deg,  # noqa: E402
                               angles_over_learning, feature_pca, functional_correlations, principal_angles_deg,
                               project_onto_pcs, weight_trajectories)
from analysis.trials import (align_outputs, aligned, peak_and_half_rise, response_reliability,  # noqa: E402
                             trial_onsets_ms)
from analysis.whatwhen import FUNCTIONAL_TRIALS, WhatWhenDesign, attended_samples  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(small_whatwhen_run):
    return small_whatwhen_run


# ----------------------------------------------------------------------------- nulls and angles

@pytest.mark.parametrize("dim", [3, 12, 400])
def test_vector_angle_null_is_the_distribution_of_random_directions(dim):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 20000, dim))
    angles = np.degrees(np.arccos(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
    null = VectorAngleNull(dim)
    for x in np.percentile(angles, [3, 20, 50, 80, 97]):
        assert abs(null.cdf(x) - np.mean(angles <= x)) < 0.01
        assert abs(null.fraction_as_orthogonal(x) - np.mean(np.abs(angles - 90) <= abs(x - 90))) < 0.01
    assert abs(null.quantile(0.05) - np.percentile(angles, 5)) < 1.5 * null.sd() / 10
    assert abs(null.sd() - angles.std()) < 0.02 * angles.std()
    assert null.summary()["exact"]


def test_subspace_angle_null_exact_for_a_vector_and_sampled_from_the_runs_stream_otherwise():
    rng = np.random.default_rng(6)
    sampled = np.array([principal_angles_deg(rng.standard_normal((1, 30)), rng.standard_normal((3, 30)))[0]
                        for _ in range(5000)])
    exact = SubspaceAngleNull(30, 1, 3)
    assert exact.exact
    for x in np.percentile(sampled, [10, 50, 90]):
        assert abs(exact.cdf(x) - np.mean(sampled <= x)) < 0.02
    assert abs(exact.mean() - sampled.mean()) < 0.3

    class FakeRun:
        config = {"seed": 3}
    first = SubspaceAngleNull(30, 2, 3, rng=analysis_rng(FakeRun()), n_draws=200)
    again = SubspaceAngleNull(30, 2, 3, rng=analysis_rng(FakeRun()), n_draws=200)
    FakeRun.config = {"seed": 4}
    other = SubspaceAngleNull(30, 2, 3, rng=analysis_rng(FakeRun()), n_draws=200)
    assert not first.exact
    np.testing.assert_array_equal(first.samples, again.samples)
    assert not np.array_equal(first.samples, other.samples)
    with pytest.raises(ValueError, match="rng"):
        SubspaceAngleNull(30, 2, 3)


def test_principal_angles_of_known_subspaces():
    e = np.eye(4)
    np.testing.assert_allclose(principal_angles_deg(e[:2], e[2:]), [90, 90])
    np.testing.assert_allclose(principal_angles_deg(e[:2], e[[1, 0]]), [0, 0], atol=1e-6)
    tilted = np.array([[1.0, 0, 1.0, 0]])  # 45 degrees out of the plane of e0, e1
    np.testing.assert_allclose(principal_angles_deg(tilted, e[:2]), [45.0])
    assert angle_deg([1, 0], [-1, 0]) == pytest.approx(180.0)
    assert np.isnan(angle_deg([0, 0], [1, 0]))
    weights = np.stack([e[:1], tilted / np.sqrt(2)])  # two snapshots of one readout
    np.testing.assert_allclose(angles_over_learning(weights, np.stack([e[1:2], e[1:2]])), [90, 90])


def test_fit_line_agrees_with_polyfit_and_names_what_is_undefined():
    x, y = [0.1, 0.4, 0.5, 0.9], [0.3, 0.35, 0.6, 0.8]
    fit = fit_line(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert fit["slope"] == pytest.approx(slope) and fit["intercept"] == pytest.approx(intercept)
    assert fit["r"] == pytest.approx(np.corrcoef(x, y)[0, 1]) and 0 < fit["p_value"] < 1
    assert fit_line([1.0], [2.0])["slope"] is None
    assert fit_line([1, 1, 1], [1, 2, 3])["slope"] is None
    assert fit_line([1, 2, 3], [2, 2, 2])["r"] is None
    with pytest.raises(ValueError, match="same length"):
        fit_line([1, 2], [1, 2, 3])


# ----------------------------------------------------------------------------- on a tiny run

def test_trial_alignment_and_timing_on_a_run(tiny_run):
    run = load_run(tiny_run)
    onsets = trial_onsets_ms(run)
    assert onsets.size == 16 and np.all(np.diff(onsets) == 1200.0)
    t, all_units = align_outputs(run, onsets, 1200.0)
    assert all_units.shape == (16, t.size, run.outputs.shape[1])
    _, when = align_outputs(run, onsets, 1200.0, columns=0)
    np.testing.assert_array_equal(when, aligned(run, 0, onsets, 1200.0))
    # sample k of trial i is the output at onset_i + k * output_dt, read by hand
    i, k = 5, 37
    row = np.argmin(np.abs(run.output_time_ms - (onsets[i] + t[k])))
    assert when[i, k] == run.outputs[row, 0]
    curve = np.exp(-0.5 * ((t - 300.0) / 40.0) ** 2)
    peak_ms, peak, rise = peak_and_half_rise(curve, t)
    assert peak_ms == pytest.approx(300.0, abs=run.output_dt_ms) and peak == pytest.approx(1.0, abs=1e-3)
    assert 300 - 48 < rise < 300 - 46 + run.output_dt_ms  # half maximum of a Gaussian: 1.177 sd before the peak
    times, reliability = response_reliability(run, onsets[-6:], 600.0)
    assert reliability.shape == times.shape and np.all(reliability <= 1.0 + 1e-12)
    assert reliability[times < 100].mean() > 0.3  # the cue drives every trial the same way
    with pytest.raises(KeyError, match="no trial table 'nope'"):
        trial_onsets_ms(run, "nope")


def test_feature_pca_matches_a_full_svd(tiny_run):
    from analysis.features import SpikeIndex

    run = load_run(tiny_run)
    pcs = feature_pca(run, n_components=4, n_trials=4)
    onsets = run.tables["trials"]["onset_step"]
    start_ms = onsets[-4] * run.dt_ms
    n_steps = int(round((run.duration_ms - start_ms) / run.dt_ms))
    X = SpikeIndex(run).filtered(start_ms, n_steps, np.arange(0, n_steps, 10), [20.0])
    X = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    for k in range(4):  # same directions up to sign, same variance shares
        assert abs(abs(pcs.basis[k] @ vt[k]) - 1.0) < 1e-6
    np.testing.assert_allclose(pcs.explained_variance_ratio, s[:4] ** 2 / np.sum(s ** 2), rtol=1e-6)
    np.testing.assert_allclose(pcs.basis @ pcs.basis.T, np.eye(4), atol=1e-10)
    w = np.arange(pcs.basis.shape[1], dtype=float)
    np.testing.assert_allclose(project_onto_pcs(w, pcs), pcs.basis @ w)


def test_geometry_metrics_use_the_exact_null(tiny_run):
    geometry = load_metrics(tiny_run)["geometry"]
    run = load_run(tiny_run)
    time_ms, weights = weight_trajectories(run, [0, 1, 2])
    assert weights.shape[:2] == (len(time_ms), 3)
    null = VectorAngleNull(weights.shape[2])
    assert geometry["raw_null_deg"] == pytest.approx(null.summary())
    final = angle_deg(weights[-1, 0], weights[-1, 1])
    assert geometry["final_raw_angles_deg"][0] == pytest.approx(final)
    assert geometry["final_raw_null_fraction_as_orthogonal"][0] == pytest.approx(float(null.fraction_as_orthogonal(final)))


def test_geometry_metrics_carry_the_functional_overlap(tiny_run):
    """The functional keys of the geometry metrics: the correlation of w_when's and each w_what's
    outputs over the first block's last trials, at every snapshot, with its permutation null."""
    geometry = load_metrics(tiny_run)["geometry"]
    run = load_run(tiny_run)
    design = WhatWhenDesign.from_run(run)
    k = len(design.what_columns)
    for key in ("functional_correlation", "functional_angle_deg", "functional_null_abs_correlation",
                "functional_null_fraction_as_orthogonal"):
        assert len(geometry[key]) == k, key
    by_snapshot = np.asarray(geometry["functional_correlation_by_snapshot"], dtype=float)
    assert by_snapshot.shape == (len(geometry["snapshot_time_ms"]), k)
    samples = geometry["functional_samples"]
    X = attended_samples(design, run)
    assert X.shape[:2] == (samples["n_trials"], int(round(design.trial_ms / samples["every_ms"])))
    assert samples["n_trials"] == min(FUNCTIONAL_TRIALS, int(np.sum(run.tables["trials"]["block"] == 0)))
    _, weights = weight_trajectories(run, [design.when_column, *design.what_columns])
    recomputed = functional_correlations(weights[-1, 0], weights[-1, 1:], X.reshape(-1, X.shape[2]))
    np.testing.assert_allclose(geometry["functional_correlation"], recomputed, atol=1e-9)
    np.testing.assert_allclose(by_snapshot[-1], recomputed, atol=1e-9)
    np.testing.assert_allclose(geometry["functional_angle_deg"], np.degrees(np.arccos(recomputed)), atol=1e-6)
    for summary, fraction in zip(geometry["functional_null_abs_correlation"],
                                 geometry["functional_null_fraction_as_orthogonal"]):
        assert summary["n_draws"] == samples["n_null"] and 0 <= summary["p5"] <= summary["p50"] <= summary["p95"] <= 1
        assert 0.0 <= fraction <= 1.0


FIGURES = ["readouts_by_condition", "amplitude_vs_probability", "reliability", "angles", "weight_trajectory",
           "pc_projection", "readout_subspaces", "trial_outputs", "adaptation", "raster"]


@pytest.mark.parametrize("name", FIGURES)
def test_figure_functions_return_figures_with_labelled_axes(tiny_run, name):
    run, metrics = load_run(tiny_run), load_metrics(tiny_run)
    design = WhatWhenDesign.from_run(run)
    time_ms, weights = weight_trajectories(run, [0, 1, 2])
    adaptation = [{"block": 1, "cue": "C1", "latency_ms": 400.0, "p_outcome": 0.5, "peak_time_by_trial_ms": [300, 380],
                   "amplitude_by_trial": [0.2, 0.4], "outcome_window_by_trial": [0.3, 0.5]}]
    make = {
        "readouts_by_condition": lambda: figures.readouts_by_condition_figure(run),
        "amplitude_vs_probability": lambda: figures.amplitude_vs_probability_figure(metrics, design),
        "reliability": lambda: figures.reliability_figure(metrics["reliability"]),
        "angles": lambda: figures.angles_figure(metrics["geometry"], design.identities),
        "weight_trajectory": lambda: figures.weight_trajectory_figure(time_ms, weights, ["when", "A", "B"]),
        "pc_projection": lambda: figures.pc_projection_figure(time_ms, weights, feature_pca(run, 3, 4),
                                                              ["when", "A", "B"]),
        "readout_subspaces": lambda: figures.readout_subspaces_figure(run),
        "trial_outputs": lambda: figures.trial_outputs_figure(run),
        "adaptation": lambda: figures.adaptation_figure({"rule": adaptation, "RLS": adaptation}),
        "raster": lambda: raster_figure(run),
    }
    fig = make[name]()
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert axes
        for ax in axes:  # a grid of shared axes labels its outer row and column
            assert any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax)), (name, ax.get_title())
            assert any(a.get_ylabel() for a in ax.get_shared_y_axes().get_siblings(ax)), (name, ax.get_title())
        assert fig.get_suptitle() or any(ax.get_title() for ax in axes), name
    finally:
        plt.close(fig)


def test_figure_modules_select_no_backend():
    """Importing the figure modules must not force a backend (notebooks keep their inline one)."""
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import analysis.figures, analysis.plots, analysis.continual; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "svg"
