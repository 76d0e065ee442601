"""Continual-learning measures (accuracy matrix, ACC, BWT), lateral-subspace diagnostics and their
figures (analysis/continual.py), on hand-built matrices and small synthetic data."""
import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis import continual  # noqa: E402
from analysis.continual import (  # noqa: E402
    accuracy, accuracy_matrix, average_accuracy, backward_transfer, energy_captured,
    forgetting_per_task, learning_curves, linear_scores, orthonormality_error,
    principal_angle_cosines, principal_subspace, subspace_diagnostics)

# Three tasks; after task 2 the first two tasks have dropped from 0.9 and 0.85.
R3 = np.array([[0.90, 0.10, 0.20],
               [0.80, 0.85, 0.30],
               [0.70, 0.75, 0.95]])


# ------------------------------------------------------------------ ACC, BWT, forgetting

def test_acc_and_bwt_of_a_hand_computed_matrix():
    assert average_accuracy(R3) == pytest.approx((0.70 + 0.75 + 0.95) / 3)  # 0.8
    assert average_accuracy(R3) == pytest.approx(0.8)
    assert backward_transfer(R3) == pytest.approx(((0.70 - 0.90) + (0.75 - 0.85)) / 2)  # -0.15
    assert backward_transfer(R3) == pytest.approx(-0.15)
    np.testing.assert_allclose(forgetting_per_task(R3), [-0.20, -0.10])


def test_bwt_uses_the_diagonal_not_the_first_row():
    # No forgetting: the final row equals the diagonal; entries above the diagonal are ignored.
    R = np.array([[0.6, 0.0, 0.9],
                  [0.6, 0.7, 0.1],
                  [0.6, 0.7, 0.8]])
    assert backward_transfer(R) == 0.0
    assert average_accuracy(R) == pytest.approx(0.7)
    # Positive backward transfer: later tasks helped task 0.
    R[2, 0] = 0.9
    assert backward_transfer(R) == pytest.approx(0.15)


def test_single_task():
    R = np.array([[0.75]])
    assert average_accuracy(R) == 0.75
    assert np.isnan(backward_transfer(R))
    assert forgetting_per_task(R).shape == (0,)


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(3), np.zeros((0, 0))])
def test_non_square_R_is_refused(bad):
    with pytest.raises(ValueError, match="R"):
        average_accuracy(bad)
    with pytest.raises(ValueError, match="R"):
        backward_transfer(bad)


# ------------------------------------------------------------------ accuracy and accuracy matrix

def _separable_tasks(rng, n_tasks=3, n_classes=2, n_features=6, n_rows=40):
    """Task j: class c sits at +/- 3 along feature 2 j + c, with unit noise."""
    features, labels = [], []
    for j in range(n_tasks):
        y = rng.integers(0, n_classes, n_rows)
        x = rng.normal(0.0, 0.3, (n_rows, n_features))
        x[np.arange(n_rows), (2 * j + y) % n_features] += 3.0
        features.append(x)
        labels.append(y)
    return features, labels


def _direct_accuracy(W, b, x, y):
    correct = 0
    for row, label in zip(x, y):
        scores = [float(np.dot(W[c], row) + b[c]) for c in range(W.shape[0])]
        correct += int(scores.index(max(scores)) == label)
    return correct / len(y)


def test_linear_scores_and_accuracy_by_hand():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = np.array([0.0, 0.5, -2.0])
    x = np.array([[2.0, 1.0], [0.0, 0.0], [3.0, 3.0]])
    np.testing.assert_allclose(linear_scores(W, b, x), [[2.0, 1.5, 1.0], [0.0, 0.5, -2.0], [3.0, 3.5, 4.0]])
    assert accuracy(W, b, x, [0, 1, 2]) == 1.0
    assert accuracy(W, b, x, [0, 0, 0]) == pytest.approx(1 / 3)
    assert np.isnan(accuracy(W, b, np.zeros((0, 2)), np.zeros(0, dtype=int)))


def test_accuracy_matrix_equals_a_direct_computation():
    rng = np.random.default_rng(3)
    n_tasks, n_classes, n_features = 3, 2, 6
    features, labels = _separable_tasks(rng, n_tasks, n_classes, n_features)
    weights = rng.normal(0.0, 1.0, (n_tasks, n_classes, n_features))
    bias = rng.normal(0.0, 0.5, (n_tasks, n_classes))
    # After task i the readout solves task i exactly (and keeps a trace of the others).
    for i in range(n_tasks):
        for c in range(n_classes):
            weights[i, c, (2 * i + c) % n_features] += 10.0
    R = accuracy_matrix(weights, bias, features, labels)
    expected = np.array([[_direct_accuracy(weights[i], bias[i], features[j], labels[j])
                          for j in range(n_tasks)] for i in range(n_tasks)])
    np.testing.assert_allclose(R, expected)
    np.testing.assert_allclose(np.diag(R), 1.0)
    assert not np.allclose(R, 1.0)  # the random parts must cost something off the diagonal


def test_learning_curves_match_the_accuracy_of_each_snapshot():
    rng = np.random.default_rng(4)
    features, labels = _separable_tasks(rng, n_tasks=2)
    snapshots = rng.normal(0.0, 1.0, (5, 2, 6))
    biases = rng.normal(0.0, 1.0, (5, 2))
    curves = learning_curves(snapshots, biases, features, labels)
    assert curves.shape == (5, 2)
    for s in range(5):
        for j in range(2):
            assert curves[s, j] == pytest.approx(accuracy(snapshots[s], biases[s], features[j], labels[j]))


def test_inconsistent_shapes_name_the_argument():
    rng = np.random.default_rng(5)
    features, labels = _separable_tasks(rng, n_tasks=3)
    weights = np.zeros((3, 2, 6))
    bias = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"bias_after_task has shape \(3, 3\)"):
        accuracy_matrix(weights, np.zeros((3, 3)), features, labels)
    with pytest.raises(ValueError, match=r"weights_after_task must be \(T, K, F\)"):
        accuracy_matrix(np.zeros((2, 6)), bias, features, labels)
    with pytest.raises(ValueError, match="features_by_task has 2 tasks"):
        accuracy_matrix(weights, bias, features[:2], labels[:2])
    with pytest.raises(ValueError, match="labels_by_task has 2 tasks"):
        accuracy_matrix(weights, bias, features, labels[:2])
    with pytest.raises(ValueError, match=r"features_by_task\[1\] has shape \(40, 5\)"):
        accuracy_matrix(weights, bias, [features[0], features[1][:, :5], features[2]], labels)
    with pytest.raises(ValueError, match=r"labels_by_task\[2\]"):
        accuracy_matrix(weights, bias, features, [labels[0], labels[1], labels[2][:-1]])
    with pytest.raises(ValueError, match=r"labels_by_task\[0\] must be integers 0 \.\. 1"):
        accuracy_matrix(weights, bias, features, [labels[0] + 5, labels[1], labels[2]])
    with pytest.raises(ValueError, match="bias_snapshots"):
        learning_curves(np.zeros((4, 2, 6)), np.zeros((3, 2)), features, labels)
    with pytest.raises(ValueError, match="features has shape"):
        accuracy(np.zeros((2, 6)), np.zeros(2), np.zeros((3, 4)), [0, 1, 0])


# ------------------------------------------------------------------ lateral subspace

def _random_orthonormal_rows(rng, k, F):
    q, _ = np.linalg.qr(rng.normal(size=(F, k)))
    return q.T


def test_orthonormality_error():
    rng = np.random.default_rng(6)
    H = _random_orthonormal_rows(rng, 4, 10)
    assert orthonormality_error(H) < 1e-12
    # Scaling by s makes H H^T = s^2 I, so the error is |s^2 - 1| on the diagonal.
    assert orthonormality_error(1.5 * H) == pytest.approx(1.25)
    assert orthonormality_error(0.5 * H) == pytest.approx(0.75)
    assert orthonormality_error(np.zeros((0, 10))) == 0.0
    # Two equal unit rows: off-diagonal overlap 1.
    assert orthonormality_error(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(1.0)


def test_principal_angle_cosines_of_equal_and_orthogonal_subspaces():
    rng = np.random.default_rng(7)
    basis = _random_orthonormal_rows(rng, 6, 12)
    A, B = basis[:3], basis[3:]
    np.testing.assert_allclose(principal_angle_cosines(A, A), 1.0, atol=1e-10)
    np.testing.assert_allclose(principal_angle_cosines(A, B), 0.0, atol=1e-10)
    # A non-orthonormal H spanning the same space as A (a mixture of its rows) is still at angle 0.
    mixed = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, -1.0], [1.0, 1.0, 1.0]]) @ A
    np.testing.assert_allclose(principal_angle_cosines(mixed, A), 1.0, atol=1e-10)
    # A plane at 60 degrees to the x axis inside the xy plane, against the x axis: cos 60 = 0.5.
    cosines = principal_angle_cosines([[np.cos(np.pi / 3), np.sin(np.pi / 3), 0.0]], [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(cosines, [0.5])
    # Sorted descending, length min(k_H, k_B).
    cosines = principal_angle_cosines(np.vstack([A[:1], B[:1]]), A)
    assert cosines.shape == (2,)
    np.testing.assert_allclose(cosines, [1.0, 0.0], atol=1e-10)
    with pytest.raises(ValueError, match="basis"):
        principal_angle_cosines(A, np.zeros((2, 5)))


def test_principal_subspace_recovers_a_known_spectrum():
    rng = np.random.default_rng(8)
    F, k = 20, 3
    directions = _random_orthonormal_rows(rng, F, F)
    scales = np.array([10.0, 7.0, 5.0] + [0.3] * (F - 3))
    X = (rng.normal(size=(2000, F)) * scales) @ directions
    found = principal_subspace(X, k)
    assert found.shape == (k, F)
    assert orthonormality_error(found) < 1e-10
    assert principal_angle_cosines(found, directions[:k]).min() > 0.999
    assert principal_angle_cosines(found, directions[k:2 * k]).max() < 0.05
    # Each of the three leading directions, in order of variance (signs are arbitrary).
    for row, direction in zip(found, directions[:k]):
        assert abs(np.dot(row, direction)) > 0.999
    assert principal_subspace(X, 0).shape == (0, F)
    with pytest.raises(ValueError, match="k = 21"):
        principal_subspace(X, 21)


def test_principal_subspace_is_uncentred():
    # A large common offset along e0 with small spread along e1: the uncentred top direction is e0
    # (a centred PCA would pick e1).
    rng = np.random.default_rng(9)
    X = np.zeros((500, 3))
    X[:, 0] = 5.0
    X[:, 1] = rng.normal(0.0, 1.0, 500)
    assert abs(principal_subspace(X, 1)[0, 0]) > 0.999


def test_energy_captured():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(50, 8))
    full = principal_subspace(X, 8)
    assert energy_captured(full, X) == pytest.approx(1.0)
    assert energy_captured(np.zeros((0, 8)), X) == 0.0
    # One coordinate axis holds exactly that column's share of the energy; scaling H changes nothing.
    e2 = np.zeros((1, 8))
    e2[0, 2] = 3.0
    assert energy_captured(e2, X) == pytest.approx(np.sum(X[:, 2] ** 2) / np.sum(X ** 2))
    # The exact top-k subspace captures at least as much as any other k-dimensional one.
    other = _random_orthonormal_rows(rng, 3, 8)
    assert energy_captured(principal_subspace(X, 3), X) > energy_captured(other, X)
    assert np.isnan(energy_captured(e2, np.zeros((4, 8))))


def test_subspace_diagnostics():
    rng = np.random.default_rng(11)
    F = 10
    directions = _random_orthonormal_rows(rng, F, F)
    X = (rng.normal(size=(1000, F)) * np.linspace(5.0, 0.5, F)) @ directions
    exact = principal_subspace(X, 3)
    d = subspace_diagnostics(exact, X)
    assert set(d) == {"orthonormality_error", "min_principal_cosine", "energy_captured",
                      "energy_captured_by_exact", "k"}
    assert d["k"] == 3
    assert d["orthonormality_error"] < 1e-10
    assert d["min_principal_cosine"] == pytest.approx(1.0)
    assert d["energy_captured"] == pytest.approx(d["energy_captured_by_exact"])
    # A scaled basis of the weakest directions: wrong length, wrong span, less energy.
    weak = 2.0 * directions[-3:]
    d = subspace_diagnostics(weak, X)
    assert d["orthonormality_error"] == pytest.approx(3.0)
    assert d["min_principal_cosine"] < 0.1
    assert d["energy_captured"] < 0.5 * d["energy_captured_by_exact"]
    empty = subspace_diagnostics(np.zeros((0, F)), X)
    assert empty["k"] == 0 and np.isnan(empty["min_principal_cosine"])
    assert empty["energy_captured"] == 0.0 and empty["orthonormality_error"] == 0.0
    with pytest.raises(ValueError, match=r"H has 9 columns"):
        subspace_diagnostics(np.zeros((2, 9)), X)


# ------------------------------------------------------------------ figures

def _assert_labelled(fig, n_axes_at_least=1):
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) >= n_axes_at_least
    for ax in axes:
        assert ax.get_xlabel().strip(), "an axis has no x label"
        assert ax.get_ylabel().strip(), "an axis has no y label"
        assert ax.get_title().strip(), "an axis has no title"


def test_accuracy_matrix_figure():
    R = R3.copy()
    R[0, 2] = np.nan
    fig = continual.accuracy_matrix_figure(R)
    try:
        _assert_labelled(fig)
        ax = fig.axes[0]
        assert ax.get_xlabel() == "evaluated on task j"
        assert ax.get_ylabel() == "after training task i"
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == 8  # nine cells, one blank
        assert "95.0" in texts and "70.0" in texts
        assert any(cbar_ax.get_ylabel() == "accuracy (%)" for cbar_ax in fig.axes[1:])
        assert "ACC 80.0%" in ax.get_title()
    finally:
        plt.close(fig)
    fig = continual.accuracy_matrix_figure(R3, title="my title")
    try:
        assert fig.axes[0].get_title() == "my title"
    finally:
        plt.close(fig)
    fig, (left, right) = plt.subplots(1, 2)
    try:  # one panel of a caller's figure
        assert continual.accuracy_matrix_figure(R3, title="right", ax=right) is fig
        assert right.get_title() == "right" and len(right.texts) == 9 and not left.texts
    finally:
        plt.close(fig)


def test_accuracy_matrices_figure_one_panel_per_method():
    from analysis.continual_table import accuracy_matrices_figure
    no_forgetting = np.array([[0.9, 0.1], [0.9, 0.8]])
    fig = accuracy_matrices_figure({"naive": R3, "projected": no_forgetting, "joint": R3}, {"naive": 3})
    try:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert titles[0] == "naive (mean of 3)\nACC 80.0 %, BWT -15.0"
        assert titles[1] == "projected\nACC 85.0 %, BWT +0.0" and "BWT" not in titles[2]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="no method"):
        accuracy_matrices_figure({})


def test_continual_summary_figure():
    no_forgetting = np.array([[0.9, 0.1], [0.9, 0.8]])
    fig = continual.continual_summary_figure({"naive": R3, "projected": no_forgetting})
    try:
        _assert_labelled(fig, 2)
        ax_acc, ax_bwt = fig.axes[:2]
        heights = [p.get_height() for p in ax_acc.patches]
        np.testing.assert_allclose(heights, [80.0, 85.0])
        np.testing.assert_allclose([p.get_height() for p in ax_bwt.patches], [-15.0, 0.0], atol=1e-9)
        assert "-15.0" in [t.get_text() for t in ax_bwt.texts]
        assert any(np.allclose(line.get_ydata(), 0.0) for line in ax_bwt.lines)
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="results"):
        continual.continual_summary_figure({})


def test_learning_curves_figure():
    curves = np.array([[0.5, 0.5], [0.9, 0.5], [0.7, 0.95]])
    fig = continual.learning_curves_figure(curves, [0, 100, 200], task_starts=[0, 100],
                                           task_names=["first", "second"])
    try:
        _assert_labelled(fig)
        ax = fig.axes[0]
        assert ax.get_xlabel() == "training presentations"
        np.testing.assert_allclose(ax.lines[0].get_ydata(), [50.0, 90.0, 70.0])
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:2] == ["first", "second"]
        assert sum(line.get_linestyle() == "--" for line in ax.lines) == 2
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="presentations"):
        continual.learning_curves_figure(curves, [0, 100])


def test_subspace_diagnostics_figure():
    x = np.arange(5) * 10.0
    history = {"orthonormality_error": np.array([1.0, 0.1, 1e-3, 1e-5, 0.0]),
               "min_principal_cosine": np.linspace(0.2, 0.99, 5),
               "energy_captured": np.linspace(0.1, 0.8, 5),
               "energy_captured_by_exact": np.full(5, 0.85)}
    fig = continual.subspace_diagnostics_figure(history, x, "training presentations")
    try:
        _assert_labelled(fig, 3)
        assert fig.axes[0].get_yscale() == "log"
        assert len(fig.axes[2].lines) == 2
        assert all(ax.get_xlabel() == "training presentations" for ax in fig.axes)
    finally:
        plt.close(fig)
    partial = {"energy_captured": history["energy_captured"]}
    fig = continual.subspace_diagnostics_figure(partial, x, "trial")
    try:
        _assert_labelled(fig, 3)
        assert len(fig.axes[0].lines) == 0 and len(fig.axes[2].lines) == 1
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="energy_captured"):
        continual.subspace_diagnostics_figure({"energy_captured": np.zeros(4)}, x, "trial")


def test_module_selects_no_backend_and_imports_no_upper_layer():
    source = Path(continual.__file__).read_text()
    assert "matplotlib.use(" not in source
    assert "import paradigms" not in source and "from paradigms" not in source
    assert "reservoir.experiment" not in source


def test_forgetting_parts_split_class_means_from_trial_noise():
    """A later change along a direction where the old task has only trial noise costs accuracy
    through the noise and none through the class means; a change along the class means does both."""
    from analysis.forgetting import forgetting_parts
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 40)
    features = np.zeros((labels.size, 12))
    features[np.arange(labels.size), labels] = 1.0  # class c lives on feature c
    noise = rng.standard_normal(labels.size)
    features[:, 11] = noise - np.array([noise[labels == c].mean() for c in range(10)])[labels]  # zero class means
    W0, b0 = np.eye(10, 12), np.zeros(10)
    noise_change = W0.copy()
    noise_change[:, 11] = rng.standard_normal(10) * 5.0
    parts = forgetting_parts(W0, b0, noise_change, b0, features, labels)
    assert parts["own"] == 1.0 and parts["class_means_only"] == 1.0 and parts["final"] < 0.6
    shifted = W0.copy()
    shifted[0, :10] += 2.0  # every class now reads as class 0
    parts = forgetting_parts(W0, b0, shifted, b0, features, labels)
    assert parts["class_means_only"] == parts["final"] == pytest.approx(0.1)
    assert parts["change_norm"] == pytest.approx(np.sqrt(40.0)) and parts["own_norm"] == pytest.approx(np.sqrt(10.0))


def test_method_labels_name_the_kind_and_the_projection():
    from analysis.continual_table import method_of

    def config(**protection):
        return {"task": {"schedule": "sequential"}, "readouts": {"protection": protection}}

    assert method_of({"task": {"schedule": "joint"}}) == "joint"
    assert method_of(config(method="none")) == "unprotected"
    assert method_of(config(method="hlop")) == "hlop (rate, projected every step)"  # runs from before the key
    assert method_of(config(method="hlop", projection="per_window")) == "hlop (rate)"
    assert method_of(config(method="svd", projection="per_window")) == "svd"
    spiking = config(method="hlop", projection="per_window",
                     lateral={"kind": "spiking", "spiking_steps": 100, "initial_membrane": "half_threshold"})
    assert method_of(spiking) == "hlop (spiking, 100 steps, from half threshold)"
    spiking["readouts"]["protection"]["lateral"]["projection_passes"] = 2
    assert method_of(spiking) == "hlop (spiking, 100 steps, from half threshold, 2 rounds)"
