"""Continual-learning measures and figures for a linear readout that learns a sequence of tasks.

A readout with weights ``W`` (K classes x F features) and bias ``b`` (K,) scores a feature row
``x`` as ``W x + b`` and predicts the class of the largest score. It learns tasks
``0, 1, ..., T-1`` one after the other; after training task ``i`` its weights are tested on the
held-out rows of every task ``j``. The conventions are those of Lopez-Paz & Ranzato (2017),
also used by Saha et al. (2021):

``R[i, j]``
    accuracy (fraction, 0..1) on the test rows of task ``j`` with the weights after training
    task ``i`` (the *accuracy matrix*, T x T). Entries above the diagonal (tasks not yet
    trained) are measured too; they show forward transfer, and no measure below uses them.
ACC (average accuracy)
    ``mean_j R[T-1, j]``: accuracy on every task at the end of the sequence.
BWT (backward transfer)
    ``mean_{j < T-1} (R[T-1, j] - R[j, j])``: how much learning later tasks changed the
    accuracy on earlier ones, averaged over the first ``T-1`` tasks; negative is forgetting.
    Undefined (nan) for a single task. :func:`forgetting_per_task` gives the ``T-1`` terms.

Lateral-subspace diagnostics. Projection methods protect old tasks by keeping the updates of
later tasks out of the subspace that the old tasks' activity occupies: GPM stores a basis of
that subspace from an SVD of the activity (Saha et al. 2021); HLOP learns it online in lateral
weights ``H`` (k x F) with a Hebbian (Oja-type subspace) rule (Xiao et al. 2024), whose fixed
points are orthonormal bases of the top-``k`` principal subspace of the **uncentred** second
moment ``E[x x^T]`` of the activity rows. :func:`subspace_diagnostics` measures how close a
learned ``H`` is to that: the orthonormality error ``max |H H^T - I|``, the cosines of the
principal angles between ``span(H)`` and the exact top-``k`` subspace (the smallest of them,
1 when the spans coincide), and the fraction of the activity's energy ``||X||_F^2`` inside
``span(H)``, beside the same fraction for the exact subspace (the most any k-dimensional
subspace can capture).

References
----------
D. Lopez-Paz and M. Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017.
G. Saha, I. Garg and K. Roy, "Gradient Projection Memory for Continual Learning", ICLR 2021.
M. Xiao, Q. Meng, Z. Zhang, D. He and Z. Lin, "Hebbian Learning based Orthogonal Projection
for Continual Learning of Spiking Neural Networks", ICLR 2024 (arXiv:2402.11984).

Importing this module selects no Matplotlib backend; the figure functions return figures and
the caller saves them (for instance with :func:`analysis.plots.save`).

Length: the measures (accuracy matrix, BWT, subspace diagnostics) and their four figures; the
figures (about 180 lines) could move to their own module (issue 23).
"""
from __future__ import annotations

import textwrap

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

__all__ = [
    "load_continual", "CONTINUAL_FILE",
    "linear_scores", "accuracy", "accuracy_matrix", "average_accuracy", "backward_transfer",
    "forgetting_per_task", "learning_curves",
    "orthonormality_error", "principal_subspace", "principal_angle_cosines", "energy_captured",
    "subspace_diagnostics",
    "accuracy_matrix_figure", "continual_summary_figure", "learning_curves_figure",
    "subspace_diagnostics_figure",
]


#: The continual-learning results file a permuted-digits run writes beside ``run.h5``.
CONTINUAL_FILE = "continual.h5"


def load_continual(folder) -> dict:
    """The continual-learning results of a run folder (its ``continual.h5``), as arrays:
    ``accuracy_matrix`` (T, T), ``learning_curves`` (S, T), ``snapshot_presentations`` (S,),
    ``snapshot_weights`` (S, K, F), ``snapshot_bias`` (S, K), ``lateral`` (the lateral weights
    ``H``, rows x F; no rows without protection), ``projecting_rows_after_task`` (T,), and
    ``lateral_diagnostics``, a dict of per-task arrays (``rows``, ``orthonormality_before_merge``,
    ``min_principal_cosine``, ``energy_captured``, ``energy_captured_by_exact``)."""
    path = Path(folder)
    path = path / CONTINUAL_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no {CONTINUAL_FILE} at {path}: only continual tasks (permuted digits) write one")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format_name") != "reservoir-continual":
            raise ValueError(f"{path} is not a reservoir continual-results file (format_name "
                             f"{f.attrs.get('format_name')!r})")
        result = {name: item[()] for name, item in f.items() if isinstance(item, h5py.Dataset)}
        result["lateral_diagnostics"] = ({name: values[()] for name, values in f["lateral_diagnostics"].items()}
                                         if "lateral_diagnostics" in f else {})
    return result


# --------------------------------------------------------------------------- readout accuracy

def linear_scores(weights, bias, features) -> np.ndarray:
    """Scores of a linear readout, ``features @ weights.T + bias``.

    Parameters
    ----------
    weights : array (K, F)
        One row of weights per class (score units per feature unit).
    bias : array (K,)
        One bias per class (score units).
    features : array (n, F)
        One feature row per sample.

    Returns
    -------
    array (n, K)
        Score of every class for every row.

    Examples
    --------
    >>> linear_scores([[1.0, 0.0], [0.0, 2.0]], [0.0, -1.0], [[3.0, 1.0]])
    array([[3., 1.]])
    """
    weights, bias, features = _readout_arrays(weights, bias, features)
    return features @ weights.T + bias


def accuracy(weights, bias, features, labels) -> float:
    """Fraction (0..1) of rows whose largest score is the score of their label.

    Parameters
    ----------
    weights : array (K, F)
    bias : array (K,)
    features : array (n, F)
    labels : int array (n,)
        Class of each row, ``0 .. K-1``.

    Returns
    -------
    float
        Accuracy as a fraction; nan when there are no rows. Ties go to the lowest class index
        (``argmax``).

    Examples
    --------
    >>> accuracy([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], [[2.0, 1.0], [0.0, 1.0]], [0, 0])
    0.5
    """
    weights, bias, features = _readout_arrays(weights, bias, features)
    labels = _labels(labels, features.shape[0], weights.shape[0], "labels")
    if features.shape[0] == 0:
        return float("nan")
    predicted = np.argmax(features @ weights.T + bias, axis=1)
    return float(np.mean(predicted == labels))


def accuracy_matrix(weights_after_task, bias_after_task, features_by_task, labels_by_task) -> np.ndarray:
    """The accuracy matrix ``R`` (T x T): ``R[i, j]`` is the accuracy (fraction) on task ``j``'s
    test rows with the weights after training task ``i``.

    Parameters
    ----------
    weights_after_task : array (T, K, F)
        Readout weights at the end of each task.
    bias_after_task : array (T, K)
        Readout bias at the end of each task.
    features_by_task : list of T arrays (n_j, F)
        Test features of each task.
    labels_by_task : list of T int arrays (n_j,)
        Test labels of each task, ``0 .. K-1``.

    Returns
    -------
    array (T, T)
        ``R``; a task without test rows gives a column of nan.

    Raises
    ------
    ValueError
        When the shapes disagree; the message names the argument and the shapes.
    """
    weights, bias = _snapshots(weights_after_task, bias_after_task, "weights_after_task", "bias_after_task")
    n_tasks = weights.shape[0]
    features, labels = _task_data(features_by_task, labels_by_task, weights.shape[1], weights.shape[2])
    if len(features) != n_tasks:
        raise ValueError(f"features_by_task has {len(features)} tasks but weights_after_task has "
                         f"{n_tasks} (shape {weights.shape}); R is square, one row per trained task")
    return _accuracy_table(weights, bias, features, labels)


def learning_curves(weight_snapshots, bias_snapshots, features_by_task, labels_by_task) -> np.ndarray:
    """Accuracy (fraction) on every task at every weight snapshot taken during training.

    Parameters
    ----------
    weight_snapshots : array (S, K, F)
        Readout weights at S moments of training.
    bias_snapshots : array (S, K)
        Readout bias at the same moments.
    features_by_task : list of T arrays (n_j, F)
    labels_by_task : list of T int arrays (n_j,)

    Returns
    -------
    array (S, T)
        ``curves[s, j]``: accuracy on task ``j`` with snapshot ``s``.
    """
    weights, bias = _snapshots(weight_snapshots, bias_snapshots, "weight_snapshots", "bias_snapshots")
    features, labels = _task_data(features_by_task, labels_by_task, weights.shape[1], weights.shape[2])
    return _accuracy_table(weights, bias, features, labels)


def average_accuracy(R) -> float:
    """ACC: mean accuracy on all tasks after the last one, ``mean_j R[T-1, j]`` (fraction).

    Examples
    --------
    >>> average_accuracy([[1.0, 0.25], [0.5, 0.75]])
    0.625
    """
    R = _square(R)
    return float(np.mean(R[-1]))


def backward_transfer(R) -> float:
    """BWT: ``mean_{j < T-1} (R[T-1, j] - R[j, j])`` (fraction; negative is forgetting); nan
    when ``T == 1``.

    Examples
    --------
    >>> backward_transfer([[1.0, 0.25], [0.5, 0.75]])
    -0.5
    """
    terms = forgetting_per_task(R)
    return float(np.mean(terms)) if terms.size else float("nan")


def forgetting_per_task(R) -> np.ndarray:
    """The ``T-1`` terms of BWT, ``R[T-1, j] - R[j, j]`` for ``j < T-1`` (fractions).

    Examples
    --------
    >>> forgetting_per_task([[1.0, 0.25], [0.5, 0.75]])
    array([-0.5])
    """
    R = _square(R)
    last = R.shape[0] - 1
    return R[last, :last] - np.diag(R)[:last]


# --------------------------------------------------------------------------- lateral subspace

def orthonormality_error(H) -> float:
    """``max |H H^T - I|`` (elementwise): 0 for orthonormal rows; 0.0 for ``k = 0`` rows.

    Examples
    --------
    >>> orthonormality_error([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    3.0
    """
    H = _rows(H, "H")
    if H.shape[0] == 0:
        return 0.0
    return float(np.max(np.abs(H @ H.T - np.eye(H.shape[0]))))


def principal_subspace(X, k: int) -> np.ndarray:
    """Orthonormal basis (rows) of the top-``k`` principal subspace of the uncentred second
    moment ``X^T X / n`` of the activity rows: the first ``k`` right singular vectors of ``X``.

    Parameters
    ----------
    X : array (n, F)
        Activity, one row per sample (not centred).
    k : int
        Dimension, ``0 <= k <= min(n, F)``.

    Returns
    -------
    array (k, F)
        Rows ordered by decreasing singular value; each row's sign is arbitrary.
    """
    X = _rows(X, "X")
    k = int(k)
    if not 0 <= k <= min(X.shape):
        raise ValueError(f"k = {k} is outside 0 .. min(n, F) = {min(X.shape)} for X of shape {X.shape}")
    if k == 0:
        return np.zeros((0, X.shape[1]))
    _, _, vt = scipy.linalg.svd(X, full_matrices=False)
    return vt[:k].copy()


def principal_angle_cosines(H, basis) -> np.ndarray:
    """Cosines of the principal angles between the row spaces of ``H`` (k_H, F) and ``basis``
    (k_B, F), sorted in decreasing order: 1 for a shared direction, 0 for orthogonal ones.

    Both row sets are orthonormalised first (QR), so a non-orthonormal ``H`` still gives the
    angles of its span (rows are assumed linearly independent).

    Returns
    -------
    array (min(k_H, k_B),)

    Examples
    --------
    >>> principal_angle_cosines([[2.0, 0.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    array([1.])
    """
    H, basis = _rows(H, "H"), _rows(basis, "basis")
    if H.shape[1] != basis.shape[1]:
        raise ValueError(f"H has {H.shape[1]} columns (shape {H.shape}) but basis has {basis.shape[1]} "
                         f"(shape {basis.shape}); both must span subspaces of the same space")
    if H.shape[0] == 0 or basis.shape[0] == 0:
        return np.zeros(0)
    cosines = scipy.linalg.svdvals(_orthonormal_columns(H).T @ _orthonormal_columns(basis))
    return np.sort(np.clip(cosines, 0.0, 1.0))[::-1][: min(H.shape[0], basis.shape[0])]


def energy_captured(H, X) -> float:
    """Fraction (0..1) of the activity's energy inside ``span(H)``: ``||X Q||_F^2 / ||X||_F^2``
    with ``Q`` an orthonormal basis (QR) of ``H``'s rows; 0 for ``k = 0``, nan for ``X = 0``.

    Examples
    --------
    >>> energy_captured([[1.0, 0.0]], [[3.0, 4.0]])
    0.36
    """
    H, X = _rows(H, "H"), _rows(X, "X")
    if H.shape[1] != X.shape[1]:
        raise ValueError(f"H has {H.shape[1]} columns (shape {H.shape}) but X has {X.shape[1]} "
                         f"(shape {X.shape}); H's rows live in the space of X's rows")
    total = float(np.sum(X * X))
    if total == 0.0:
        return float("nan")
    if H.shape[0] == 0:
        return 0.0
    projected = X @ _orthonormal_columns(H)
    return float(np.sum(projected * projected) / total)


def subspace_diagnostics(H, X) -> dict:
    """How close lateral weights ``H`` (k, F) are to an orthonormal basis of the top-``k``
    principal subspace of the activity ``X`` (n, F).

    Returns
    -------
    dict
        ``orthonormality_error`` (``max |H H^T - I|``), ``min_principal_cosine`` (smallest
        cosine of the principal angles to the exact subspace; nan for ``k = 0``),
        ``energy_captured`` (fraction of ``||X||_F^2`` in ``span(H)``),
        ``energy_captured_by_exact`` (the same for the exact top-``k`` subspace, the most a
        k-dimensional subspace can hold) and ``k``.
    """
    H, X = _rows(H, "H"), _rows(X, "X")
    if H.shape[1] != X.shape[1]:
        raise ValueError(f"H has {H.shape[1]} columns (shape {H.shape}) but X has {X.shape[1]} "
                         f"(shape {X.shape}); H's rows live in the space of X's rows")
    k = H.shape[0]
    exact = principal_subspace(X, k)
    cosines = principal_angle_cosines(H, exact)
    return {
        "orthonormality_error": orthonormality_error(H),
        "min_principal_cosine": float(np.min(cosines)) if cosines.size else float("nan"),
        "energy_captured": energy_captured(H, X),
        "energy_captured_by_exact": energy_captured(exact, X),
        "k": k,
    }


# --------------------------------------------------------------------------- figures

def accuracy_matrix_figure(R, title: str = "", ax=None):
    """Heatmap of the accuracy matrix in percent, each cell annotated; nan cells blank.

    Parameters
    ----------
    R : array (T, T)
        Accuracy matrix (fractions), ``R[i, j]`` after task ``i`` on task ``j``.
    title : str
        Figure title; by default "accuracy matrix" with ACC and BWT.
    ax : matplotlib Axes, optional
        Draw into this panel (and its figure) instead of a new figure.
    """
    R = _square(R)
    percent = 100.0 * R
    n_tasks = R.shape[0]
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.9 * n_tasks + 1.5, 1.0 + 0.9 * n_tasks))
    else:
        fig = ax.figure
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(percent), cmap=cmap, vmin=0.0, vmax=100.0, origin="upper")
    for i in range(n_tasks):
        for j in range(n_tasks):
            if np.isfinite(percent[i, j]):
                ax.text(j, i, f"{percent[i, j]:.1f}", ha="center", va="center", fontsize=9,
                        color="black" if percent[i, j] > 60.0 else "white")
    ax.set_xticks(range(n_tasks))
    ax.set_yticks(range(n_tasks))
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task i")
    if not title:
        title = (f"accuracy matrix: ACC {100 * average_accuracy(R):.1f}%, "
                 f"BWT {_signed_points(backward_transfer(R))}")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    return fig


def continual_summary_figure(results: Mapping[str, np.ndarray]):
    """ACC (%) and BWT (percentage points) of several methods, side by side.

    Parameters
    ----------
    results : dict of method name -> R (T, T)
        Accuracy matrix (fractions) of each method; the T may differ between methods.
    """
    if not results:
        raise ValueError("results is empty: give at least one method name -> accuracy matrix")
    names = list(results)
    acc = np.array([100.0 * average_accuracy(results[name]) for name in names])
    bwt = np.array([100.0 * backward_transfer(results[name]) for name in names])
    positions = np.arange(len(names))
    colors = [f"C{m % 10}" for m in range(len(names))]
    fig, (ax_acc, ax_bwt) = plt.subplots(1, 2, figsize=(4.0 + 1.6 * len(names), 4.0))
    bars = ax_acc.bar(positions, acc, color=colors)
    ax_acc.bar_label(bars, labels=[f"{v:.1f}" for v in acc], padding=2, fontsize=9)
    ax_acc.set_ylim(0.0, 110.0)
    ax_acc.set_ylabel("ACC, mean final accuracy (%)")
    ax_acc.set_title("average accuracy (ACC)")
    bars = ax_bwt.bar(positions, np.nan_to_num(bwt), color=colors)
    ax_bwt.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:+.1f}" for v in bwt], padding=2, fontsize=9)
    ax_bwt.axhline(0.0, color="k", lw=0.8)
    finite = bwt[np.isfinite(bwt)]
    reach = max(5.0, float(np.max(np.abs(finite))) if finite.size else 0.0) * 1.25
    ax_bwt.set_ylim(-reach, reach)
    ax_bwt.set_ylabel("BWT (percentage points)")
    ax_bwt.set_title("backward transfer (BWT; < 0 is forgetting)")
    for ax in (ax_acc, ax_bwt):
        ax.set_xticks(positions, [textwrap.fill(name, 16) for name in names], fontsize=8)
        ax.set_xlabel("method")
    fig.tight_layout()
    return fig


def learning_curves_figure(curves, presentations, task_starts=None, task_names=None):
    """Accuracy (%) on every task during training, one line per task.

    Parameters
    ----------
    curves : array (S, T)
        Accuracy (fractions) on each task at each snapshot (:func:`learning_curves`).
    presentations : array (S,)
        Training presentations seen at each snapshot.
    task_starts : sequence of float, optional
        Presentations at which each task's training starts (dashed vertical lines).
    task_names : sequence of str, optional
        Legend names of the T tasks; "task j" by default.
    """
    curves = np.asarray(curves, dtype=float)
    presentations = np.asarray(presentations, dtype=float)
    if curves.ndim != 2:
        raise ValueError(f"curves must be (S, T), got shape {curves.shape}")
    if presentations.shape != (curves.shape[0],):
        raise ValueError(f"presentations has shape {presentations.shape} but curves has {curves.shape[0]} "
                         f"snapshots (shape {curves.shape}); give one presentation count per snapshot")
    n_tasks = curves.shape[1]
    if task_names is None:
        task_names = [f"task {j}" for j in range(n_tasks)]
    elif len(task_names) != n_tasks:
        raise ValueError(f"task_names has {len(task_names)} names but curves has {n_tasks} tasks (shape {curves.shape})")
    fig, ax = plt.subplots(figsize=(9, 4))
    for j in range(n_tasks):
        ax.plot(presentations, 100.0 * curves[:, j], color=f"C{j % 10}", lw=1.2, label=task_names[j])
    for m, start in enumerate([] if task_starts is None else task_starts):
        ax.axvline(start, color="0.4", ls="--", lw=0.8, label="task start" if m == 0 else None)
    ax.set_ylim(-2.0, 102.0)
    ax.set_xlabel("training presentations")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy on every task during training")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def subspace_diagnostics_figure(history: Mapping[str, np.ndarray], x, x_label: str):
    """The lateral-subspace diagnostics over training, in three panels: orthonormality error
    (log scale; zeros are not drawn), smallest principal cosine (0..1), energy captured (%)
    by ``span(H)`` and by the exact subspace. Missing keys leave their line (or panel) out.

    Parameters
    ----------
    history : dict of str -> array (S,)
        Keys as returned by :func:`subspace_diagnostics`: ``orthonormality_error``,
        ``min_principal_cosine``, ``energy_captured``, ``energy_captured_by_exact``.
    x : array (S,)
        Abscissa of each entry (e.g. presentations).
    x_label : str
        Label of the abscissa, with units.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"x must be one-dimensional, got shape {x.shape}")
    series = {}
    for key, values in history.items():
        values = np.asarray(values, dtype=float)
        if values.shape != x.shape:
            raise ValueError(f"history[{key!r}] has shape {values.shape} but x has shape {x.shape}")
        series[key] = values
    fig, (ax_orth, ax_cos, ax_energy) = plt.subplots(1, 3, figsize=(14, 4))

    if "orthonormality_error" in series:
        error = np.where(series["orthonormality_error"] > 0, series["orthonormality_error"], np.nan)
        ax_orth.plot(x, error, color="k", lw=1.2, label="max |H H^T - I|")
        if np.any(np.isfinite(error)):
            ax_orth.set_yscale("log")
        ax_orth.legend(fontsize=8)
    else:
        _not_recorded(ax_orth)
    ax_orth.set_ylabel("orthonormality error, max |H H^T - I|")
    ax_orth.set_title("orthonormality of the lateral weights")

    if "min_principal_cosine" in series:
        ax_cos.plot(x, series["min_principal_cosine"], color="tab:blue", lw=1.2, label="smallest cosine")
        ax_cos.legend(fontsize=8)
    else:
        _not_recorded(ax_cos)
    ax_cos.set_ylim(0.0, 1.02)
    ax_cos.set_ylabel("min cosine of principal angles")
    ax_cos.set_title("alignment with the top-k subspace")

    drawn = False
    for key, label, color, style in (("energy_captured", "span(H)", "tab:orange", "-"),
                                     ("energy_captured_by_exact", "exact top-k subspace", "0.4", "--")):
        if key in series:
            ax_energy.plot(x, 100.0 * series[key], color=color, ls=style, lw=1.2, label=label)
            drawn = True
    if drawn:
        ax_energy.legend(fontsize=8)
    else:
        _not_recorded(ax_energy)
    ax_energy.set_ylim(0.0, 102.0)
    ax_energy.set_ylabel("activity energy captured (%)")
    ax_energy.set_title("energy of the activity in the subspace")

    for ax in (ax_orth, ax_cos, ax_energy):
        ax.set_xlabel(x_label)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- helpers

def _readout_arrays(weights, bias, features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = np.asarray(weights, dtype=float)
    bias = np.asarray(bias, dtype=float)
    features = np.asarray(features, dtype=float)
    if weights.ndim != 2:
        raise ValueError(f"weights must be (K, F), got shape {weights.shape}")
    if bias.shape != (weights.shape[0],):
        raise ValueError(f"bias has shape {bias.shape} but weights has shape {weights.shape}; "
                         f"bias must be ({weights.shape[0]},)")
    if features.ndim != 2 or features.shape[1] != weights.shape[1]:
        raise ValueError(f"features has shape {features.shape} but weights has shape {weights.shape}; "
                         f"features must be (n, {weights.shape[1]})")
    return weights, bias, features


def _labels(labels, n_rows: int, n_classes: int, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n_rows,):
        raise ValueError(f"{name} has shape {labels.shape} but the features have {n_rows} rows; "
                         f"{name} must be ({n_rows},)")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer)
                        or labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} must be integers 0 .. {n_classes - 1} (one per class of the readout)")
    return labels


def _snapshots(weights, bias, weights_name: str, bias_name: str) -> tuple[np.ndarray, np.ndarray]:
    weights = np.asarray(weights, dtype=float)
    bias = np.asarray(bias, dtype=float)
    if weights.ndim != 3:
        raise ValueError(f"{weights_name} must be (T, K, F), got shape {weights.shape}")
    if bias.shape != weights.shape[:2]:
        raise ValueError(f"{bias_name} has shape {bias.shape} but {weights_name} has shape {weights.shape}; "
                         f"{bias_name} must be {weights.shape[:2]}")
    return weights, bias


def _task_data(features_by_task: Sequence, labels_by_task: Sequence, n_classes: int, n_features: int):
    if len(labels_by_task) != len(features_by_task):
        raise ValueError(f"labels_by_task has {len(labels_by_task)} tasks but features_by_task has "
                         f"{len(features_by_task)}")
    features, labels = [], []
    for j, (x, y) in enumerate(zip(features_by_task, labels_by_task)):
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != n_features:
            raise ValueError(f"features_by_task[{j}] has shape {x.shape}; the readout has {n_features} "
                             f"features, so it must be (n_{j}, {n_features})")
        features.append(x)
        labels.append(_labels(y, x.shape[0], n_classes, f"labels_by_task[{j}]"))
    return features, labels


def _accuracy_table(weights, bias, features, labels) -> np.ndarray:
    table = np.full((weights.shape[0], len(features)), np.nan)
    for s in range(weights.shape[0]):
        for j, (x, y) in enumerate(zip(features, labels)):
            if x.shape[0]:
                table[s, j] = np.mean(np.argmax(x @ weights[s].T + bias[s], axis=1) == y)
    return table


def _square(R) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square accuracy matrix (T, T), got shape {R.shape}")
    return R


def _rows(A, name: str) -> np.ndarray:
    A = np.asarray(A, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (rows, F), got shape {A.shape}")
    return A


def _orthonormal_columns(rows: np.ndarray) -> np.ndarray:
    """(F, k) orthonormal basis of the span of the k rows (reduced QR of their transpose)."""
    q, _ = np.linalg.qr(rows.T, mode="reduced")
    return q


def _signed_points(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:+.1f} pp"


def _not_recorded(ax) -> None:
    ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="0.5")
