"""Recurrent connectivity: sparse CSR by presynaptic neuron (or dense), reproducible from a seed.

Storage: ``indptr`` (n+1), ``indices`` (postsynaptic ids, ascending within a row) and
``weights`` such that the outgoing synapses of presynaptic neuron ``j`` are
``indices[indptr[j]:indptr[j+1]]``. This is the layout spike propagation wants: a spike of
``j`` touches one contiguous row. For dense networks the same matrix is also kept as a dense
``(pre, post)`` array, which is faster to propagate when most entries are non-zero.

Rules: ``all_to_all`` (optionally with self-connections, as ``net.m``), ``bernoulli`` (each
ordered pair independently with probability ``p``) and ``fixed_in_degree`` (each neuron gets
exactly ``K`` distinct presynaptic partners).

Weight schemes:

``izhikevich2003`` (``net.m``): from excitatory ``excitatory_weight_max * U(0,1)``, from
inhibitory ``-inhibitory_weight_max * U(0,1)`` (Dale's law), times
``reference_in_degree / K`` with ``K`` the expected in-degree, so the mean input per neuron is
``net.m``'s at any size and density (the factor is exactly 1 for ``net.m``'s 1000 all-to-all).

``nicola_clopath2017``: ``G * N(0,1) / (p sqrt(N))`` with mixed signs; with
``balance_rows`` the mean of each neuron's non-zero input weights is subtracted, as in the
ModelDB 190565 listing ("strictly enforce balance").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Connectivity:
    """Fixed recurrent weights, presynaptic-major CSR plus an optional dense copy."""

    n_neurons: int
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    dense_weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float64)
        if self.indptr.shape != (self.n_neurons + 1,) or self.indptr[-1] != self.indices.size:
            raise ValueError("indptr does not match n_neurons and the number of synapses")
        if self.indices.size != self.weights.size:
            raise ValueError("indices and weights differ in length")

    @property
    def n_synapses(self) -> int:
        return int(self.indices.size)

    @property
    def is_dense(self) -> bool:
        return self.dense_weights is not None

    def to_scipy(self) -> sp.csr_matrix:
        """The weight matrix as a (pre, post) scipy CSR matrix."""
        return sp.csr_matrix((self.weights, self.indices, self.indptr), shape=(self.n_neurons,) * 2)

    def to_dense(self) -> np.ndarray:
        """The (pre, post) weight matrix as a dense array."""
        if self.dense_weights is not None:
            return self.dense_weights
        return self.to_scipy().toarray()

    def pre_post_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Presynaptic and postsynaptic index of every stored synapse (CSR order)."""
        pre = np.repeat(np.arange(self.n_neurons, dtype=np.int32), np.diff(self.indptr))
        return pre, self.indices

    def with_storage(self, storage: str) -> "Connectivity":
        """Return this connectivity with ``storage`` in {"sparse", "dense", "auto"}.

        ``auto`` picks dense when at least 20 % of all pairs are connected and the dense
        array needs at most 256 MB.
        """
        if storage == "auto":
            density = self.n_synapses / max(self.n_neurons**2, 1)
            storage = "dense" if density >= 0.2 and self.n_neurons**2 * 8 <= 256e6 else "sparse"
        if storage == "dense":
            dense = self.to_dense() if self.dense_weights is None else self.dense_weights
            return Connectivity(self.n_neurons, self.indptr, self.indices, self.weights, np.ascontiguousarray(dense))
        if storage == "sparse":
            return Connectivity(self.n_neurons, self.indptr, self.indices, self.weights, None)
        raise ValueError(f"storage must be 'sparse', 'dense' or 'auto', got {storage!r}")


def from_pre_post(n_neurons: int, pre: np.ndarray, post: np.ndarray, weights: np.ndarray) -> Connectivity:
    """Build presynaptic-major CSR from synapse lists (duplicates are not allowed)."""
    matrix = sp.csr_matrix((weights, (pre, post)), shape=(n_neurons, n_neurons))
    matrix.sort_indices()
    if matrix.nnz != len(pre):
        raise ValueError("duplicate (pre, post) pairs in the synapse list")
    return Connectivity(n_neurons, matrix.indptr, matrix.indices, matrix.data)


def sample_pairs(
    rule: str, n_neurons: int, rng: np.random.Generator, *, probability: float | None = None,
    in_degree: int | None = None, allow_self_connections: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Draw the connected (pre, post) pairs; returns ``(pre, post, expected_in_degree)``.

    Pairs come out sorted by presynaptic then postsynaptic index.
    """
    n = n_neurons
    if rule == "all_to_all":
        pre, post = np.divmod(np.arange(n * n, dtype=np.int64), n)
        if not allow_self_connections:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post, float(n if allow_self_connections else n - 1)
    if rule == "bernoulli":
        if probability is None or not 0.0 < probability <= 1.0:
            raise ValueError(f"connection probability must be in (0, 1], got {probability!r}")
        rows_pre, rows_post = [], []
        for j in range(n):
            targets = np.flatnonzero(rng.random(n) < probability)
            if not allow_self_connections:
                targets = targets[targets != j]
            rows_pre.append(np.full(targets.size, j, dtype=np.int64))
            rows_post.append(targets)
        expected = probability * (n if allow_self_connections else n - 1)
        return np.concatenate(rows_pre), np.concatenate(rows_post).astype(np.int64), expected
    if rule == "fixed_in_degree":
        limit = n if allow_self_connections else n - 1
        if in_degree is None or not 0 < in_degree <= limit:
            raise ValueError(f"in_degree must be in [1, {limit}], got {in_degree!r}")
        pre_list, post_list = [], []
        for i in range(n):
            candidates = np.arange(n) if allow_self_connections else np.delete(np.arange(n), i)
            sources = np.sort(rng.choice(candidates, size=in_degree, replace=False))
            pre_list.append(sources)
            post_list.append(np.full(in_degree, i, dtype=np.int64))
        pre, post = np.concatenate(pre_list), np.concatenate(post_list)
        order = np.lexsort((post, pre))
        return pre[order], post[order], float(in_degree)
    raise ValueError(f"connectivity rule must be 'all_to_all', 'bernoulli' or 'fixed_in_degree', got {rule!r}")


def izhikevich2003_weights(
    pre: np.ndarray, is_excitatory: np.ndarray, rng: np.random.Generator, expected_in_degree: float,
    excitatory_weight_max: float = 0.5, inhibitory_weight_max: float = 1.0,
    reference_in_degree: float = 1000.0,
) -> np.ndarray:
    """``net.m`` weights with Dale's law, rescaled to the expected in-degree (module docstring)."""
    uniform = rng.random(pre.size)
    scale = reference_in_degree / expected_in_degree
    w = np.where(is_excitatory[pre], excitatory_weight_max * uniform, -inhibitory_weight_max * uniform)
    return w * scale if scale != 1.0 else w


def nicola_clopath_weights(
    pre: np.ndarray, post: np.ndarray, n_neurons: int, rng: np.random.Generator,
    gain: float, probability: float, balance_rows: bool = True,
) -> np.ndarray:
    """``G N(0,1) / (p sqrt(N))``, optionally with each neuron's input weights made zero-mean."""
    w = gain * rng.standard_normal(pre.size) / (probability * np.sqrt(n_neurons))
    if balance_rows and w.size:
        sums = np.bincount(post, weights=w, minlength=n_neurons)
        counts = np.bincount(post, minlength=n_neurons)
        means = np.divide(sums, counts, out=np.zeros(n_neurons), where=counts > 0)
        w = w - means[post]
    return w
