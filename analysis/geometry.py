"""Readout geometry: weight trajectories, angles between readouts and subspaces with their null
distributions, and the principal components of the readout features.

Angles between two readout weight vectors say little on their own: two random directions in a
space of ``F`` features are almost orthogonal when ``F`` is large (their angle concentrates at
90 degrees with a spread of about ``57 / sqrt(F)`` degrees). Every angle here therefore comes
with a null, the distribution of the same angle for uniformly random directions or subspaces of
the same dimensions:

- the angle between two vectors in ``dim`` dimensions (0-180 degrees): exact, since
  ``cos^2`` of it follows ``Beta(1/2, (dim - 1)/2)`` (:class:`VectorAngleNull`);
- the angle between a vector and a ``k``-dimensional subspace (0-90 degrees): exact,
  ``cos^2 ~ Beta(k/2, (dim - k)/2)`` (:class:`SubspaceAngleNull` with ``k_a = 1``);
- the smallest principal angle between two subspaces of more than one dimension each: sampled
  from random Gaussian bases, with a generator from the run's own ``offline_analysis`` random
  stream (:func:`analysis_rng`), so the null is reproducible from the run's seed alone.

``fraction_as_orthogonal(angle)`` is the share of the null at least as close to orthogonal as
the observed angle: small values (< 0.05) say the two readouts are *more* orthogonal than chance
(few random pairs come as close to 90 degrees), values near 1 that they are *less* orthogonal
than random directions would be.

Angles between weight vectors ignore what the readouts read: two orthogonal weight vectors give
strongly correlated outputs when the features they weigh are themselves correlated. The
*functional* overlap (:func:`functional_overlap`) measures the angle in the metric of the
activity covariance ``C`` instead, ``cos = w_a^T C w_b / sqrt(w_a^T C w_a w_b^T C w_b)``: the
correlation of the two readouts' projections ``w . x(t)`` of the centred activity, with a null
of permuted weights (its own docstring says why that null).

Principal angles follow Bjorck & Golub (1973), "Numerical methods for computing angles between
linear subspaces", Math. Comp. 27:579 (:func:`scipy.linalg.subspace_angles`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy import stats

from reservoir.rng import substream

from .features import SpikeIndex

__all__ = ["angle_deg", "principal_angles_deg", "VectorAngleNull", "SubspaceAngleNull", "analysis_rng",
           "weight_trajectories", "angles_over_learning", "FeaturePCs", "feature_pcs", "feature_pca",
           "project_onto_pcs", "GEOMETRY_NULL_SUBSTREAM", "FUNCTIONAL_NULL_SUBSTREAM", "FunctionalOverlap",
           "functional_correlations", "functional_overlap"]

#: Item of the run's ``offline_analysis`` random stream that draws sampled geometry nulls.
GEOMETRY_NULL_SUBSTREAM = 1

#: Item of the run's ``offline_analysis`` random stream that draws the functional-overlap null
#: (the permutations of :func:`functional_overlap`); its own item, so adding it changed no draw of
#: item 1.
FUNCTIONAL_NULL_SUBSTREAM = 2


def analysis_rng(run, item: int = GEOMETRY_NULL_SUBSTREAM) -> np.random.Generator:
    """A generator for ``run``'s analysis draws: item ``item`` of the ``offline_analysis`` stream of
    the run's seed (:func:`reservoir.rng.substream`); the same run gives the same draws."""
    return substream(int(run.config.get("seed", 0)), "offline_analysis", item)


def _rescaled(weights) -> np.ndarray:
    """``weights`` ``(..., F)`` in float64, each vector divided by its largest |entry| (a zero
    vector stays zero, one with a non-finite entry becomes nan): angles and correlations do not
    depend on the scale, and a diverged readout (weights of 1e280) would overflow the products."""
    w = np.array(weights, dtype=np.float64)
    if w.size == 0:
        return w
    scale = np.max(np.abs(w), axis=-1, keepdims=True)
    scale = np.where(np.isfinite(scale), scale, np.nan)  # nan divides the vector to nan
    return w / np.where(scale == 0, 1.0, scale)


def angle_deg(a, b) -> float:
    """Angle (degrees, 0-180) between two vectors; nan if either is zero or has a non-finite entry.
    Vectors too large for their norms (entries beyond about 1e154, a diverged readout) are
    rescaled first: the angle does not depend on the scale, and the overflowing norm would give
    90 degrees whatever the vectors."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(over="ignore"):
        norm = np.linalg.norm(a) * np.linalg.norm(b)
    if not np.isfinite(norm):
        a, b = _rescaled(a), _rescaled(b)
        norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0 or not np.isfinite(norm):
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(a @ b / norm, -1.0, 1.0))))


def principal_angles_deg(a, b) -> np.ndarray:
    """Principal angles (degrees, ascending, 0-90) between the spans of the rows of ``a``
    ``(k_a, dim)`` and of ``b`` ``(k_b, dim)``; ``min(k_a, k_b)`` of them."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"principal angles need vectors of one dimension, got {a.shape[1]} and {b.shape[1]}")
    return np.sort(np.degrees(scipy.linalg.subspace_angles(a.T, b.T)))


class _AngleNull:
    exact = True

    def summary(self) -> dict:
        """Mean, standard deviation and the 5th / 95th percentiles (degrees)."""
        return {"mean": self.mean(), "sd": self.sd(), "p5": self.quantile(0.05), "p95": self.quantile(0.95),
                "exact": self.exact}


@dataclass(frozen=True)
class VectorAngleNull(_AngleNull):
    """The angle (0-180 degrees) between two independent, uniformly random directions in ``dim``
    dimensions (equivalently: a fixed vector and a random one). Exact."""

    dim: int

    def __post_init__(self):
        if self.dim < 2:
            raise ValueError(f"angles need at least 2 dimensions, got dim={self.dim}")

    def _cos2(self):
        return stats.beta(0.5, (self.dim - 1) / 2.0)

    def cdf(self, angle_deg) -> np.ndarray:
        """P(angle <= ``angle_deg``)."""
        a = np.asarray(angle_deg, float)
        tail = 0.5 * self._cos2().sf(np.cos(np.radians(np.minimum(a, 180.0 - a))) ** 2)  # P(angle <= min(a, 180-a))
        return np.where(a <= 90.0, tail, 1.0 - tail)

    def quantile(self, q: float) -> float:
        if q > 0.5:
            return 180.0 - self.quantile(1.0 - q)
        return float(np.degrees(np.arccos(np.sqrt(self._cos2().isf(2.0 * q)))))

    def mean(self) -> float:
        return 90.0

    def sd(self) -> float:
        # density of the angle is proportional to sin^(dim-2); integrate on a grid in log space
        theta = np.linspace(0.0, np.pi, 200_001)[1:-1]
        log_density = (self.dim - 2) * np.log(np.sin(theta))
        weight = np.exp(log_density - log_density.max())
        return float(np.degrees(np.sqrt(np.sum(weight * (theta - np.pi / 2) ** 2) / np.sum(weight))))

    def fraction_as_orthogonal(self, angle_deg) -> np.ndarray:
        """P(|null - 90| <= |angle - 90|): the share of random pairs at least as close to orthogonal."""
        return self._cos2().cdf(np.cos(np.radians(np.asarray(angle_deg, float))) ** 2)


class SubspaceAngleNull(_AngleNull):
    """The smallest principal angle (0-90 degrees) between a random ``k_a``- and a random
    ``k_b``-dimensional subspace of ``dim`` dimensions. Exact when ``min(k_a, k_b) = 1``
    (``cos^2 ~ Beta(k/2, (dim - k)/2)`` with ``k = max(k_a, k_b)``); otherwise sampled
    ``n_draws`` times with ``rng`` (required then; use :func:`analysis_rng` of the run)."""

    def __init__(self, dim: int, k_a: int = 1, k_b: int = 1, rng: np.random.Generator | None = None,
                 n_draws: int = 2000):
        if min(k_a, k_b) < 1 or max(k_a, k_b) >= dim:
            raise ValueError(f"subspace dimensions must be 1..dim-1, got k_a={k_a}, k_b={k_b}, dim={dim}")
        self.dim, self.k_a, self.k_b = int(dim), int(k_a), int(k_b)
        self.exact = min(k_a, k_b) == 1
        self.samples = None
        if not self.exact:
            if rng is None:
                raise ValueError("a sampled subspace-angle null needs rng (analysis_rng(run) gives the run's own)")
            self.samples = np.array([principal_angles_deg(rng.standard_normal((k_a, dim)),
                                                          rng.standard_normal((k_b, dim)))[0]
                                     for _ in range(int(n_draws))])

    def _cos2(self):
        k = max(self.k_a, self.k_b)
        return stats.beta(k / 2.0, (self.dim - k) / 2.0)

    def cdf(self, angle_deg) -> np.ndarray:
        a = np.asarray(angle_deg, float)
        if self.samples is not None:
            return np.searchsorted(np.sort(self.samples), a, side="right") / self.samples.size
        return self._cos2().sf(np.cos(np.radians(a)) ** 2)

    def quantile(self, q: float) -> float:
        if self.samples is not None:
            return float(np.quantile(self.samples, q))
        return float(np.degrees(np.arccos(np.sqrt(self._cos2().isf(q)))))

    def mean(self) -> float:
        if self.samples is not None:
            return float(self.samples.mean())
        return float(self._cos2().expect(lambda c: np.degrees(np.arccos(np.sqrt(c)))))

    def sd(self) -> float:
        if self.samples is not None:
            return float(self.samples.std())
        mean = self.mean()
        return float(np.sqrt(self._cos2().expect(lambda c: (np.degrees(np.arccos(np.sqrt(c))) - mean) ** 2)))

    def fraction_as_orthogonal(self, angle_deg) -> np.ndarray:
        """P(null >= angle): the share of random subspaces at least as close to orthogonal."""
        return 1.0 - self.cdf(angle_deg)


def weight_trajectories(run, columns) -> tuple[np.ndarray, np.ndarray]:
    """Readout weights over learning: ``(time_ms, W)`` with ``W`` of shape ``(snapshots, len(columns),
    features)``, from the run file's weight snapshots (read here; they can be large)."""
    if run.snapshot_time_ms.size == 0:
        raise ValueError(f"{run.path}: the run stored no weight snapshots "
                         "(readouts.snapshot_every_ms; see docs/configuration.md)")
    columns = np.atleast_1d(np.asarray(columns, dtype=np.int64))
    return np.asarray(run.snapshot_time_ms), run.weight_snapshots()[:, columns]


def angles_over_learning(weights_a: np.ndarray, weights_b: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
    """Smallest principal angle (degrees) between the span of ``weights_a[s]`` and of ``weights_b[s]``
    at every snapshot ``s`` (arrays ``(snapshots, k, F)``; a single readout: ``k = 1``), in the
    full feature space or, with ``basis`` ``(n, F)``, after projecting onto it."""
    angles = np.empty(len(weights_a))
    for s in range(len(weights_a)):
        a, b = weights_a[s], weights_b[s]
        if basis is not None:
            a, b = a @ basis.T, b @ basis.T
        angles[s] = principal_angles_deg(a, b)[0] if np.any(a) and np.any(b) else np.nan
    return angles


@dataclass(frozen=True)
class FeaturePCs:
    """Principal components of the readout features: ``basis`` ``(k, F)`` (orthonormal rows, each
    signed so that its largest-magnitude entry is positive), the feature ``mean`` ``(F,)`` and the
    ``explained_variance_ratio`` ``(k,)`` of the rows used."""

    basis: np.ndarray
    mean: np.ndarray
    explained_variance_ratio: np.ndarray


def feature_pca(run, n_components: int = 10, n_trials: int = 20, every_ms: float = 5.0) -> FeaturePCs | None:
    """Top principal components of the readout features over the last ``n_trials`` trials (the
    whole run if it has no trial table), rebuilt from the recorded spikes with the run's
    exponential trace filters and sampled every ``every_ms``; ``None`` if its filters are not
    exponential. Computed from the ``F x F`` covariance (:func:`scipy.linalg.eigh`), not a full SVD
    of the long sample matrix.

    Computed once per run and arguments: the result is kept in ``run.derived`` (its arrays
    read-only), so the metrics and the figures of a run share it."""
    cache = getattr(run, "derived", None)
    key = ("feature_pca", int(n_components), int(n_trials), float(every_ms))
    if cache is not None and key in cache:
        return cache[key]
    pcs = _feature_pca(run, n_components, n_trials, every_ms)
    if pcs is not None:
        for values in (pcs.basis, pcs.mean, pcs.explained_variance_ratio):
            values.setflags(write=False)
    if cache is not None:
        cache[key] = pcs
    return pcs


def _feature_pca(run, n_components: int, n_trials: int, every_ms: float) -> FeaturePCs | None:
    traces = run.config.get("readouts", {}).get("traces", [])
    if not traces or any(f.get("kind") != "exponential" for f in traces):
        return None
    onsets = run.tables.get("trials", {}).get("onset_step", np.zeros(0))
    start_ms = float(onsets[-n_trials] * run.dt_ms) if len(onsets) >= n_trials else 0.0
    n_steps = int(round((run.duration_ms - start_ms) / run.dt_ms))
    sample_steps = np.arange(0, n_steps, max(1, int(round(every_ms / run.dt_ms))))
    with SpikeIndex(run) as spikes:
        X = spikes.filtered(start_ms, n_steps, sample_steps, [f.get("tau_ms", 20.0) for f in traces])
    mean = X.mean(axis=0)
    X -= mean
    covariance = X.T @ X
    del X  # the samples are not needed past here: free them before eigh's copies
    n_components = min(int(n_components), covariance.shape[0])
    values, vectors = scipy.linalg.eigh(covariance, subset_by_index=[covariance.shape[0] - n_components,
                                                                    covariance.shape[0] - 1])
    order = np.argsort(values)[::-1]
    basis = vectors[:, order].T
    basis *= np.sign(basis[np.arange(len(basis)), np.argmax(np.abs(basis), axis=1)])[:, None]
    total = float(np.trace(covariance))
    ratio = values[order] / total if total > 0 else np.zeros(len(order))
    return FeaturePCs(basis=basis, mean=mean, explained_variance_ratio=ratio)


def feature_pcs(run, n_components: int = 10, n_trials: int = 20) -> np.ndarray | None:
    """The ``(k, F)`` basis of :func:`feature_pca` (``None`` where it is ``None``)."""
    pcs = feature_pca(run, n_components, n_trials)
    return None if pcs is None else pcs.basis


def project_onto_pcs(vectors, pcs: FeaturePCs | np.ndarray, centre: bool = False) -> np.ndarray:
    """Coordinates of ``vectors`` (``(..., F)``: weights, or features with ``centre=True``, which
    subtracts the PCs' feature mean first) in the principal-component basis: ``(..., k)``."""
    basis = pcs.basis if isinstance(pcs, FeaturePCs) else np.asarray(pcs)
    vectors = np.asarray(vectors, float)
    if centre:
        if not isinstance(pcs, FeaturePCs):
            raise ValueError("centre=True needs the FeaturePCs (with their mean), not a bare basis")
        vectors = vectors - pcs.mean
    return vectors @ basis.T


# ------------------------------------------------------------------------------- functional overlap

FUNCTIONAL_NULL_CHUNK = 200
"""Permutations drawn and projected at a time by :func:`functional_overlap` (bounds its memory)."""


def _projections(X: np.ndarray, weights: np.ndarray, centre: bool) -> np.ndarray:
    """``X @ weights.T`` in float64 ``(n, m)``, centred over the samples if ``centre``."""
    Z = np.asarray(X, dtype=np.float64) @ _rescaled(weights).T
    return Z - Z.mean(axis=0) if centre else Z


def _paired_correlations(Za: np.ndarray, Zb: np.ndarray) -> np.ndarray:
    """Correlation of column ``j`` of ``Za`` with column ``j`` of ``Zb`` (both centred), nan
    where either does not vary; clipped to [-1, 1]."""
    den = np.sqrt(np.sum(Za * Za, axis=0) * np.sum(Zb * Zb, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, np.sum(Za * Zb, axis=0) / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def functional_correlations(weights_a, weights_b, X, centre: bool = True) -> np.ndarray:
    """Correlation, over the samples of ``X`` ``(n, F)``, of the projections ``X @ a`` and ``X @ b``
    of paired rows ``a``, ``b`` of ``weights_a`` and ``weights_b`` (``(..., F)``, broadcast
    against each other): ``a^T C b / sqrt(a^T C a  b^T C b)`` with ``C`` the covariance of the
    rows of ``X``, the cosine of the angle between ``a`` and ``b`` in ``C``'s metric
    (:func:`functional_overlap`). Shape ``(...)``; nan where a projection does not vary.
    ``centre=False``: ``X`` is centred already (its column means are zero)."""
    A, B = np.broadcast_arrays(np.asarray(weights_a, dtype=np.float64), np.asarray(weights_b, dtype=np.float64))
    X = np.asarray(X)
    if A.shape[-1] != X.shape[1]:
        raise ValueError(f"weights of {A.shape[-1]} entries against samples of {X.shape[1]} features")
    shape, F = A.shape[:-1], A.shape[-1]
    Za = _projections(X, A.reshape(-1, F), centre)
    Zb = _projections(X, B.reshape(-1, F), centre)
    return _paired_correlations(Za, Zb).reshape(shape)


@dataclass(frozen=True)
class FunctionalOverlap:
    """The functional overlap of two readouts (:func:`functional_overlap`): the ``correlation``
    of their projections of the activity, and the ``null_abs_correlation`` ``(n_null,)`` of the
    null's draws (|correlation| of ``a`` against permutations of ``b``)."""

    correlation: float
    null_abs_correlation: np.ndarray

    @property
    def angle_deg(self) -> float:
        """The angle (degrees, 0-180) in the covariance metric: ``arccos(correlation)``."""
        return float(np.degrees(np.arccos(self.correlation))) if np.isfinite(self.correlation) else float("nan")

    @property
    def fraction_as_orthogonal(self) -> float:
        """The share of null draws whose |correlation| is at most the observed |correlation|: at
        least as close to functionally orthogonal. Small (<= 0.05): orthogonal beyond chance; 1:
        no draw as correlated as the observed pair (identical readouts give 1)."""
        if not np.isfinite(self.correlation) or self.null_abs_correlation.size == 0:
            return float("nan")
        return float(np.mean(self.null_abs_correlation <= abs(self.correlation)))

    def null_summary(self) -> dict:
        """The null's |correlation|: 5th, 50th and 95th percentiles and the number of draws."""
        null = self.null_abs_correlation[np.isfinite(self.null_abs_correlation)]
        p5, p50, p95 = np.percentile(null, [5, 50, 95]) if null.size else (float("nan"),) * 3
        return {"p5": float(p5), "p50": float(p50), "p95": float(p95), "n_draws": int(null.size)}


def functional_overlap(a, b, X, rng: np.random.Generator, n_null: int = 1000, centre: bool = True) -> FunctionalOverlap:
    """How far two linear readouts ``a``, ``b`` ``(F,)`` read the same activity: the correlation,
    over the samples ``X`` ``(n, F)`` of the features they read, of their outputs ``z_a = X a``
    and ``z_b = X b`` (``X`` centred over its samples; ``centre=False`` where it is already),

        r = a^T C b / sqrt(a^T C a  b^T C b),   C = X^T X / n (centred),

    the cosine of the angle between ``a`` and ``b`` in the metric of the activity covariance ``C``
    rather than the Euclidean one of :func:`angle_deg`. Two weight vectors at 90 degrees still
    give correlated outputs when the features they weigh co-vary (a shared population
    fluctuation, overlapping tuning); ``r = 0`` means the readouts' outputs are uncorrelated over
    the activity the network actually produces, a *functional* orthogonality. Weighing
    directions by the activity's covariance is what population-coding work does to ask whether
    two read-outs or epochs use orthogonal subspaces of the activity (e.g. the alignment index of
    Elsayed, Lara, Kaufman, Churchland & Cunningham 2016, "Reorganization between preparatory
    and movement population responses in motor cortex", Nat. Commun. 7:13239).

    Null: the same |r| between ``a`` and ``n_null`` random permutations of ``b``'s own entries
    (drawn with ``rng``; use :func:`analysis_rng` with :data:`FUNCTIONAL_NULL_SUBSTREAM` for a
    run's own). A permutation keeps ``b``'s distribution of weights (its norm, mean, sparsity and
    sign balance) and breaks any relation between which features ``b`` weighs and which ``a``
    weighs: through a shared component of the features, two readouts whose weights have nonzero
    means are correlated by chance alone, and the null keeps that. Random Gaussian directions
    would not (their mean weight is about 0), so they would make ordinary readouts look
    correlated beyond chance.

    The null's projections ``X @ b_permuted`` are one matrix product per chunk of
    :data:`FUNCTIONAL_NULL_CHUNK` draws, in float64 like everything here: in float32 the null's
    percentiles moved in their sixth or seventh digit from one call to the next (the BLAS's
    rounding), far beyond the relative 1e-9 the behaviour guard allows the metrics of an identical
    run file."""
    a, b = _rescaled(a), _rescaled(b)
    X = np.asarray(X)
    if a.shape != b.shape or a.ndim != 1 or X.ndim != 2 or X.shape[1] != a.size:
        raise ValueError(f"functional_overlap needs two (F,) weight vectors and (n, F) samples, got {a.shape}, "
                         f"{b.shape} and {X.shape}")
    Xc = np.asarray(X, dtype=np.float64)
    if centre:
        Xc = Xc - Xc.mean(axis=0)
    z_a = Xc @ a
    correlation = float(_paired_correlations(z_a[:, None], (Xc @ b)[:, None])[0])
    null = np.empty(int(n_null))
    for start in range(0, null.size, FUNCTIONAL_NULL_CHUNK):
        m = min(FUNCTIONAL_NULL_CHUNK, null.size - start)
        permuted = rng.permuted(np.tile(b, (m, 1)), axis=1)  # row by row, the draws of rng.permutation(b)
        Z = Xc @ permuted.T
        null[start:start + m] = np.abs(_paired_correlations(np.broadcast_to(z_a[:, None], Z.shape), Z))
    return FunctionalOverlap(correlation=correlation, null_abs_correlation=null)
