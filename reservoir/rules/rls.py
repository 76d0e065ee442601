"""Recursive least squares (RLS): the FORCE readout rule.

One RLS *event* takes the presynaptic traces ``r`` (``F`` features), the readout weights ``w``
(``K`` outputs by ``F``) and the a-priori errors ``e-(t) = w(t-dt) r(t) - f(t)`` (``K``), and
updates the inverse-correlation estimate ``P`` (``F`` by ``F``, shared by all outputs because it
depends on ``r`` only) and the weights (Sussillo & Abbott 2009; with Haykin's forgetting factor
``lambda``)::

    P r          computed from the old P
    c          = lambda + r^T P r
    P         <- (P - (P r)(P r)^T / c) / lambda                      (Sherman-Morrison)
    w         <- w - e- (P r) / c          decoder_form 0, "textbook": the new P times r
    w         <- w - e- (P r)              decoder_form 1, "nicola_clopath": the old P times r

with ``P(0) = I / alpha``. With ``lambda = 1`` this is exactly Sussillo & Abbott's rule, and
``P(T) = (sum_t r_t r_t^T + alpha I)^-1``; with ``lambda < 1``,
``P(T) = (sum_t lambda^(T-t) r_t r_t^T + lambda^T alpha I)^-1`` (past events fade with time
constant ``1 / (1 - lambda)`` events). ``(P r) / c`` is the new ``P`` times ``r`` (the gain
vector ``k``). Nicola & Clopath's code (ModelDB 190565) steps the decoder with the old ``P r``
instead, a step ``c`` times larger: its a-posteriori error is ``e- (1 - r^T P_old r)``
(textbook: ``e- lambda / c``), which overshoots when ``r^T P_old r > 1`` and grows when it
exceeds 2; the ``P`` recursion is the same for both forms.

Storage: the upper triangle only
--------------------------------
``P`` is symmetric. The kernels keep it in a C-contiguous ``(F, F)`` float64 array but read and
write only its upper triangle (``P[i, j]`` with ``j >= i``): half the memory traffic of a full
update, which is what the cost is made of (at ``F = 2000`` the triangle is 16 MB, more than the
L2 cache). The strictly lower triangle is never touched, so after the first event it holds
stale values (zeros for a matrix made by :func:`rls_initial_P`). Never read ``P`` directly: use
:func:`symmetric_P` (a full symmetric copy); every public function here that hands ``P`` out
returns such a copy.

``P r`` is computed in one pass over the triangle that uses each stored entry twice: row ``i``
adds ``P_ij r_i`` to ``(P r)_j`` (an axpy over the row, ascending rows) and ``P_ij r_j`` to
``(P r)_i`` (a dot product). Without fast math LLVM cannot vectorise a floating-point
reduction, so the dot product is accumulated in ``_DOT_LANES`` (= 128) interleaved partial sums
(lane ``k`` sums columns ``i + 1 + k``, ``i + 1 + k + 128``, ... in ascending order; a plain
elementwise loop, which vectorises), which are then added by pairwise halving
(``lanes[k] += lanes[m - h + k]``, ``h = m // 2``, until one remains), plus ``P_ii r_i``. The
order is fixed by ``F`` alone and the kernels are plain IEEE double arithmetic (no fast math, so
no FMA contraction; no BLAS), so results do not depend on the CPU's vector width, but they differ
from ``P @ r`` in the last bits.

Two kernels, one arithmetic
---------------------------
* :func:`rls_update` (eager): pass 1 computes ``P r``, pass 2 applies the rank-one update to the
  triangle. ``P`` is up to date after every call.
* :func:`rls_update_fused` (lazy, the one :class:`RLSReadout` uses): the rank-one correction of
  an event is kept *pending* (``pending_pr = P r`` and ``pending_coefficients = (1 / c,
  1 / lambda)``; the true matrix is ``scale (P_stored - coefficient q q^T)``) and applied in
  the same pass that computes the next event's ``P r``: one read and one write of the triangle
  per event instead of two reads and one write. :func:`rls_flush` applies a pending correction;
  call it (or pass the pending state to :func:`symmetric_P`) before reading ``P``.

Both apply the correction with the same expression, ``P_ij <- scale (P_ij - (coefficient q_i)
q_j)``, and compute ``P r`` in the same order, so the two kernels, and any interleaving of
flushes with fused updates, give bit-identical ``P`` and weights (``tests/test_rls.py``).
Measured on the 2-core development machine (``benchmarks/bench_rls.py``, F = 2000, one thread,
ms per event): fused 1.27, eager 1.66, SciPy BLAS ``dsymv`` + ``dsyr`` on the triangle 1.41,
NumPy with full matrices 10.5. At F = 500 (triangle in L2) BLAS is faster (0.05 against 0.09):
there the cost is arithmetic, and BLAS vectorises its reductions more freely.

References
----------
.. [1] Sussillo, D. & Abbott, L. F. (2009). Generating coherent patterns of activity from
   chaotic neural networks. *Neuron* 63, 544-557. doi:10.1016/j.neuron.2009.07.018
.. [2] Nicola, W. & Clopath, C. (2017). Supervised learning in spiking neural networks with
   FORCE training. *Nat. Commun.* 8, 2208. doi:10.1038/s41467-017-01827-3
.. [3] Haykin, S. (2002). *Adaptive Filter Theory*, 4th ed. Prentice Hall (the chapter on the
   exponentially weighted RLS algorithm: the forgetting factor).

Length: the configuration, the compiled update in its two forms (per event, and fused with the
next matrix-vector product over the packed upper triangle), the helpers that read ``P`` back
(flush, reset, symmetric copy) and the stand-alone :class:`RLSReadout` share one state layout;
the stand-alone learner (about 200 lines) could move to its own module (issue 23).
"""
from __future__ import annotations

import numbers
from typing import Literal, NamedTuple

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DECODER_FORMS = {"textbook": 0, "nicola_clopath": 1}
"""Names of the decoder steps and their codes for the kernels' ``decoder_form`` argument."""

_DOT_LANES = 128
"""Interleaved partial sums of the row dot products in the upper-triangle pass (fixes the order)."""


class RLSConfig(BaseModel):
    """Configuration section of an ``rls`` readout group (FORCE training).

    ``alpha``: P(0) = I/alpha (regulariser and inverse learning rate); ``learn_every_steps``:
    one RLS event every this many steps (Nicola & Clopath: 20 steps of 0.04 ms);
    ``forgetting``: lambda in (0, 1]; ``decoder_form``: ``textbook`` (Sussillo & Abbott, new
    ``P r``) or ``nicola_clopath`` (old ``P r``, as in the ModelDB listing). Numbers must be
    finite (no strings or booleans standing in for them).
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    alpha: float = Field(1.0, gt=0.0, strict=True, allow_inf_nan=False,
                         description="`P(0) = I / alpha`: ridge regulariser and inverse learning rate")
    learn_every_steps: int = Field(1, ge=1, description="steps between RLS events")
    forgetting: float = Field(1.0, gt=0.0, le=1.0, strict=True, allow_inf_nan=False,
                              description="forgetting factor lambda in (0, 1]; 1 is plain RLS")
    decoder_form: Literal["textbook", "nicola_clopath"] = Field(
        "textbook", description="weight step with the new `P r` (Sussillo & Abbott) or the old one (Nicola & Clopath's code)")


class RLSState(NamedTuple):
    """The state of RLS readout units ``unit_start .. unit_stop - 1`` (all share one ``P``).

    Built by :func:`rls_state`, for the engine's readouts and for :class:`RLSReadout` alike;
    ``P`` is stored as its upper triangle with a pending rank-one correction (module docstring).
    """

    unit_start: int
    unit_stop: int
    P: np.ndarray
    pending_pr: np.ndarray
    pending_coefficients: np.ndarray
    learn_every_steps: int
    forgetting: float
    decoder_form: int
    """:data:`DECODER_FORMS`."""
    pr_scratch: np.ndarray
    errors: np.ndarray
    """A-priori errors of the units at the current event (work array)."""


def rls_state(config: RLSConfig | None, n_features: int, unit_start: int = 0, unit_stop: int = 0) -> RLSState:
    """RLS state for units ``unit_start .. unit_stop - 1`` over ``n_features`` features,
    ``P = I / alpha`` with nothing pending; with ``config = None`` an inert state of the right
    types (no units, empty ``P``)."""
    if config is None:
        P, pending_pr, pending_coefficients = np.zeros((0, 0)), np.zeros(0), np.array([0.0, 1.0])
        every, forgetting, form = 1, 1.0, 0
    else:
        P = rls_initial_P(n_features, config.alpha)
        pending_pr, pending_coefficients = rls_pending_state(n_features)
        every, forgetting, form = config.learn_every_steps, config.forgetting, DECODER_FORMS[config.decoder_form]
    return RLSState(unit_start=int(unit_start), unit_stop=int(unit_stop), P=P, pending_pr=pending_pr,
                    pending_coefficients=pending_coefficients, learn_every_steps=int(every), forgetting=float(forgetting),
                    decoder_form=int(form), pr_scratch=np.zeros(max(n_features, 1)),
                    errors=np.zeros(max(unit_stop - unit_start, 1)))


# ---------------------------------------------------------------------------------------------
# Compiled kernels
# ---------------------------------------------------------------------------------------------

@njit(cache=True)
def _pairwise_lane_sum(lanes, n_lanes):
    """Sum of ``lanes[:n_lanes]`` by pairwise halving (destroys the lanes); 0 for no lanes."""
    if n_lanes == 0:
        return 0.0
    m = n_lanes
    while m > 1:
        half = m // 2
        offset = m - half
        low = lanes[:half]
        high = lanes[offset:m]
        for k in range(half):
            low[k] += high[k]
        m = offset
    return lanes[0]


@njit(cache=True)
def _upper_matvec(P, r, out, lanes):
    """``out = P r`` for symmetric ``P`` from its upper triangle, one pass, each entry used twice.

    Row ``i`` (ascending) adds ``P_ij r_i`` to ``out[j]`` and accumulates ``P_ij r_j`` for
    ``j > i`` in ``lanes`` (see the module docstring for the order); ``out[i]`` then receives
    ``P_ii r_i + sum(lanes)`` on top of the contributions of rows ``0 .. i-1``.
    """
    n_features = r.shape[0]
    width = lanes.shape[0]
    for i in range(n_features):
        out[i] = 0.0
    for i in range(n_features):
        r_i = r[i]
        n_lanes = min(width, n_features - i - 1)
        for k in range(n_lanes):
            lanes[k] = 0.0
        start = i + 1
        while start < n_features:
            stop = min(start + width, n_features)
            row = P[i, start:stop]
            out_part = out[start:stop]
            r_part = r[start:stop]
            for k in range(stop - start):
                p = row[k]
                out_part[k] += p * r_i  # P_ji r_i with P_ji = P_ij
                lanes[k] += p * r_part[k]  # P_ij r_j
            start = stop
        out[i] += P[i, i] * r_i + _pairwise_lane_sum(lanes, n_lanes)


@njit(cache=True)
def _upper_rank_one(P, vector, coefficient, scale):
    """Upper triangle of ``P <- scale (P - coefficient v v^T)``, as ``scale (P_ij - (coefficient v_i) v_j)``."""
    n_features = vector.shape[0]
    for i in range(n_features):
        coefficient_v_i = coefficient * vector[i]
        row = P[i, i:]
        vector_part = vector[i:]
        for k in range(n_features - i):
            row[k] = scale * (row[k] - coefficient_v_i * vector_part[k])


@njit(cache=True)
def _fused_pass(P, r, pending_pr, coefficient, scale, out, lanes):
    """Apply the pending ``P <- scale (P - coefficient q q^T)`` and compute ``out = P r`` (new P), one pass.

    Entry by entry the same arithmetic as :func:`_upper_rank_one` followed by
    :func:`_upper_matvec`, so the result is bit-identical to the two passes.
    """
    n_features = r.shape[0]
    width = lanes.shape[0]
    for i in range(n_features):
        out[i] = 0.0
    for i in range(n_features):
        r_i = r[i]
        coefficient_q_i = coefficient * pending_pr[i]
        p = scale * (P[i, i] - coefficient_q_i * pending_pr[i])
        P[i, i] = p
        diagonal = p * r_i
        n_lanes = min(width, n_features - i - 1)
        for k in range(n_lanes):
            lanes[k] = 0.0
        start = i + 1
        while start < n_features:
            stop = min(start + width, n_features)
            row = P[i, start:stop]
            out_part = out[start:stop]
            r_part = r[start:stop]
            q_part = pending_pr[start:stop]
            for k in range(stop - start):
                p = scale * (row[k] - coefficient_q_i * q_part[k])
                row[k] = p
                out_part[k] += p * r_i
                lanes[k] += p * r_part[k]
            start = stop
        out[i] += diagonal + _pairwise_lane_sum(lanes, n_lanes)


@njit(cache=True)
def _decoder_step(pr, r, weights, errors, forgetting, decoder_form):
    """Weight update from ``pr = P_old r``; returns the denominator ``c = lambda + r^T P_old r``."""
    n_features = r.shape[0]
    r_P_r = 0.0
    for j in range(n_features):
        r_P_r += r[j] * pr[j]
    denominator = forgetting + r_P_r
    if decoder_form == 0:
        for k in range(weights.shape[0]):
            step = errors[k] / denominator  # e- k_j with k = P_new r = P_old r / c
            row = weights[k]
            for j in range(n_features):
                row[j] -= step * pr[j]
    elif decoder_form == 1:
        for k in range(weights.shape[0]):
            step = errors[k]  # e- P_old r (Nicola & Clopath's code)
            row = weights[k]
            for j in range(n_features):
                row[j] -= step * pr[j]
    else:
        raise ValueError("decoder_form must be 0 (textbook) or 1 (nicola_clopath)")
    return denominator


@njit(cache=True)
def rls_update(P, r, weights, errors, forgetting, decoder_form, pr_scratch):
    """One RLS event, in place, eager: ``P`` is up to date on return.

    Parameters
    ----------
    P : ndarray, shape (F, F), float64, C-contiguous
        Inverse-correlation estimate. Only the upper triangle (``j >= i``) is read and written;
        the strictly lower triangle is ignored (read ``P`` with :func:`symmetric_P`).
    r : ndarray, shape (F,), float64
        Presynaptic traces (features) of this event.
    weights : ndarray, shape (K, F), float64, C-contiguous
        Readout weights, updated in place.
    errors : ndarray, shape (K,), float64
        A-priori errors ``weights @ r - target``, computed with the weights before this call.
    forgetting : float
        Forgetting factor ``lambda`` in (0, 1]; 1 is plain RLS. Not checked here.
    decoder_form : int
        0: textbook step ``w -= e- P_new r``; 1: Nicola & Clopath's ``w -= e- P_old r``.
    pr_scratch : ndarray, shape (F,), float64
        Work array; holds ``P_old r`` on return.

    Returns
    -------
    float
        The denominator ``c = lambda + r^T P_old r`` (``> lambda`` while ``P`` is positive
        definite; a caller can check it for finiteness).

    Notes
    -----
    Two passes over the upper triangle: ``P r`` (each stored entry used twice), then the
    rank-one update ``P_ij <- (P_ij - (P r)_i (P r)_j / c) / lambda``, computed as
    ``(1 / lambda) (P_ij - ((1 / c) (P r)_i) (P r)_j)``. Bit-identical to
    :func:`rls_update_fused` followed by :func:`rls_flush`.

    References
    ----------
    .. [1] Sussillo, D. & Abbott, L. F. (2009). *Neuron* 63, 544. doi:10.1016/j.neuron.2009.07.018
    .. [2] Nicola, W. & Clopath, C. (2017). *Nat. Commun.* 8, 2208. doi:10.1038/s41467-017-01827-3

    Examples
    --------
    >>> import numpy as np
    >>> from reservoir.rules.rls import rls_initial_P, rls_update, symmetric_P
    >>> P = rls_initial_P(3, alpha=1.0)
    >>> weights = np.zeros((1, 3))
    >>> r = np.array([1.0, 0.0, 0.0])
    >>> errors = weights @ r - np.array([2.0])
    >>> c = rls_update(P, r, weights, errors, 1.0, 0, np.empty(3))
    >>> weights  # ridge solution of one sample: 2 * 1 / (1 + 1)
    array([[1., 0., 0.]])
    >>> float(symmetric_P(P)[0, 0])  # (1 + alpha)^-1
    0.5
    """
    lanes = np.empty(_DOT_LANES)
    _upper_matvec(P, r, pr_scratch, lanes)
    denominator = _decoder_step(pr_scratch, r, weights, errors, forgetting, decoder_form)
    _upper_rank_one(P, pr_scratch, 1.0 / denominator, 1.0 / forgetting)
    return denominator


@njit(cache=True)
def rls_update_fused(P, pending_pr, pending_coefficients, r, weights, errors, forgetting, decoder_form,
                     pr_scratch):
    """One RLS event, in place, lazy: the rank-one correction of ``P`` is left pending.

    The pending correction of the previous event is applied in the same pass over the upper
    triangle that computes ``P r`` for this one, so each event reads and writes the triangle
    once. The stored ``P`` lags one correction behind: the true matrix is
    ``scale (P - coefficient q q^T)`` with ``q = pending_pr`` and
    ``(coefficient, scale) = pending_coefficients``. Apply it with :func:`rls_flush` before
    reading ``P`` (or read with ``symmetric_P(P, pending_pr, pending_coefficients)``).

    Parameters
    ----------
    P : ndarray, shape (F, F), float64, C-contiguous
        Stored inverse-correlation estimate (upper triangle only, as in :func:`rls_update`).
    pending_pr : ndarray, shape (F,), float64
        Pending vector ``q``; on return ``P_old r`` of this event.
    pending_coefficients : ndarray, shape (2,), float64
        ``(coefficient, scale)`` of the pending correction; ``(0, 1)`` when nothing is pending
        (see :func:`rls_pending_state`). On return ``(1 / c, 1 / lambda)``.
    r, weights, errors, forgetting, decoder_form, pr_scratch
        As in :func:`rls_update`.

    Returns
    -------
    float
        The denominator ``c = lambda + r^T P_old r``.

    Notes
    -----
    Bit-identical to :func:`rls_update` whatever the flushes in between (a flush applies the
    correction with the same expression as the fused pass).

    References
    ----------
    .. [1] Sussillo, D. & Abbott, L. F. (2009). *Neuron* 63, 544. doi:10.1016/j.neuron.2009.07.018
    .. [2] Nicola, W. & Clopath, C. (2017). *Nat. Commun.* 8, 2208. doi:10.1038/s41467-017-01827-3

    Examples
    --------
    >>> import numpy as np
    >>> from reservoir.rules.rls import (rls_initial_P, rls_pending_state, rls_update_fused,
    ...                                  symmetric_P)
    >>> P = rls_initial_P(3, alpha=1.0)
    >>> pending_pr, pending_coefficients = rls_pending_state(3)
    >>> weights = np.zeros((1, 3))
    >>> r = np.array([1.0, 0.0, 0.0])
    >>> c = rls_update_fused(P, pending_pr, pending_coefficients, r, weights,
    ...                      weights @ r - np.array([2.0]), 1.0, 0, np.empty(3))
    >>> float(P[0, 0]), float(symmetric_P(P, pending_pr, pending_coefficients)[0, 0])  # stored, true
    (1.0, 0.5)
    """
    lanes = np.empty(_DOT_LANES)
    _fused_pass(P, r, pending_pr, pending_coefficients[0], pending_coefficients[1], pr_scratch, lanes)
    denominator = _decoder_step(pr_scratch, r, weights, errors, forgetting, decoder_form)
    for j in range(r.shape[0]):
        pending_pr[j] = pr_scratch[j]
    pending_coefficients[0] = 1.0 / denominator
    pending_coefficients[1] = 1.0 / forgetting
    return denominator


@njit(cache=True)
def rls_flush(P, pending_pr, pending_coefficients):
    """Apply the pending rank-one correction left by :func:`rls_update_fused` to ``P``, in place.

    Afterwards ``P`` (upper triangle) is the true matrix, ``pending_pr`` is zero and
    ``pending_coefficients`` is ``(0, 1)``. Flushing does not change the trajectory: the next
    fused update gives bit-identical results with or without it.
    """
    if pending_coefficients[0] != 0.0 or pending_coefficients[1] != 1.0:
        _upper_rank_one(P, pending_pr, pending_coefficients[0], pending_coefficients[1])
    for j in range(pending_pr.shape[0]):
        pending_pr[j] = 0.0
    pending_coefficients[0] = 0.0
    pending_coefficients[1] = 1.0


@njit(cache=True)
def fit_rows(state, R, Y, weights, prior_errors):
    """Fused RLS events (:class:`RLSState` ``state``) over the rows of ``R`` in order;
    ``prior_errors[t]`` gets row ``t``'s a-priori errors ``w r - y``."""
    n_outputs = weights.shape[0]
    n_features = R.shape[1]
    errors = state.errors
    for t in range(R.shape[0]):
        r = R[t]
        for k in range(n_outputs):
            z = 0.0
            for j in range(n_features):
                z += weights[k, j] * r[j]
            errors[k] = z - Y[t, k]
            prior_errors[t, k] = errors[k]
        rls_update_fused(state.P, state.pending_pr, state.pending_coefficients, r, weights, errors, state.forgetting,
                         state.decoder_form, state.pr_scratch)


# ---------------------------------------------------------------------------------------------
# Helpers (Python)
# ---------------------------------------------------------------------------------------------

def validated_config(**settings) -> RLSConfig:
    """:class:`RLSConfig` of ``settings``, or a ``ValueError`` naming each bad setting.

    The one validation of the rule's parameters, for the configuration files, the learner and
    the functions here (``learn_every`` is the learner's name for ``learn_every_steps``).
    """
    names = {"learn_every": "learn_every_steps"}
    try:
        return RLSConfig(**{names.get(key, key): value for key, value in settings.items()})
    except ValidationError as error:
        given = {names.get(key, key): key for key in settings}
        problems = [f"{given.get(str(p['loc'][0]), p['loc'][0])}: {p['msg']} (got {p['input']!r})"
                    for p in error.errors()]
        raise ValueError("; ".join(problems)) from None


def _check_count(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def rls_initial_P(n_features, alpha):
    """Initial inverse-correlation estimate ``P(0) = I / alpha``, shape ``(F, F)``.

    ``alpha`` is both the ridge regulariser and an inverse learning rate: a small ``alpha``
    (large ``P``) lets the first events move the weights a lot (Sussillo & Abbott 2009).

    Examples
    --------
    >>> from reservoir.rules.rls import rls_initial_P
    >>> rls_initial_P(2, alpha=0.5)
    array([[2., 0.],
           [0., 2.]])
    """
    n_features = _check_count("n_features", n_features)
    alpha = validated_config(alpha=alpha).alpha
    return np.eye(n_features) / alpha


def rls_reset(P, alpha, pending_pr=None, pending_coefficients=None):
    """Reset ``P`` to ``I / alpha`` in place (the whole matrix), and clear a pending correction if given.

    Examples
    --------
    >>> import numpy as np
    >>> from reservoir.rules.rls import rls_reset
    >>> P = np.ones((2, 2))
    >>> rls_reset(P, alpha=4.0)
    >>> P
    array([[0.25, 0.  ],
           [0.  , 0.25]])
    """
    alpha = validated_config(alpha=alpha).alpha
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be a square matrix, got shape {P.shape}")
    P[...] = 0.0
    np.fill_diagonal(P, 1.0 / alpha)
    if (pending_pr is None) != (pending_coefficients is None):
        raise ValueError("pending_pr and pending_coefficients must be given together")
    if pending_pr is not None:
        pending_pr[...] = 0.0
        pending_coefficients[0] = 0.0
        pending_coefficients[1] = 1.0


def rls_pending_state(n_features):
    """Empty pending state for :func:`rls_update_fused`: ``(pending_pr, pending_coefficients)``.

    ``pending_pr`` is ``zeros(F)``; ``pending_coefficients`` is ``[0.0, 1.0]`` (coefficient,
    scale: nothing pending).
    """
    n_features = _check_count("n_features", n_features)
    return np.zeros(n_features), np.array([0.0, 1.0])


def symmetric_P(P, pending_pr=None, pending_coefficients=None):
    """Full symmetric copy of an upper-triangle ``P`` (the input is not modified).

    Parameters
    ----------
    P : ndarray, shape (F, F)
        Stored matrix; only its upper triangle is used.
    pending_pr, pending_coefficients : ndarray, optional
        Pending state of :func:`rls_update_fused`; if given, the pending correction is applied
        to the copy (bit-identical to :func:`rls_flush`).

    Returns
    -------
    ndarray, shape (F, F)
        ``upper + upper^T - diag``: exactly symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> from reservoir.rules.rls import symmetric_P
    >>> symmetric_P(np.array([[1.0, 2.0], [99.0, 3.0]]))
    array([[1., 2.],
           [2., 3.]])
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be a square matrix, got shape {P.shape}")
    if (pending_pr is None) != (pending_coefficients is None):
        raise ValueError("pending_pr and pending_coefficients must be given together")
    upper = np.triu(P)
    if pending_pr is not None:
        pending_pr = np.array(pending_pr, dtype=np.float64)
        pending_coefficients = np.array(pending_coefficients, dtype=np.float64)
        upper = np.ascontiguousarray(upper)
        rls_flush(upper, pending_pr, pending_coefficients)
        upper = np.triu(upper)
    return upper + np.triu(upper, 1).T


# ---------------------------------------------------------------------------------------------
# Learner
# ---------------------------------------------------------------------------------------------

class RLSReadout:
    """Linear readout ``z = W r`` trained online by recursive least squares (FORCE).

    Parameters
    ----------
    n_features : int, optional
        Number of features ``F`` (presynaptic traces). Inferred from the first data if None.
    n_outputs : int, optional
        Number of outputs ``K``. Inferred from the first targets if None.
    alpha : float, default 1.0
        ``P(0) = I / alpha``: ridge regulariser and inverse learning rate (> 0). Nicola &
        Clopath's sine task uses ``P(0) = 2 I``, i.e. ``alpha = 0.5``.
    forgetting : float, default 1.0
        Forgetting factor ``lambda`` in (0, 1]: past events are down-weighted by
        ``lambda`` per event (memory of about ``1 / (1 - lambda)`` events). 1 is plain RLS.
    decoder_form : {"textbook", "nicola_clopath"}, default "textbook"
        Weight step with the new ``P r`` (Sussillo & Abbott; exact recursive ridge regression)
        or with the old ``P r``, as in Nicola & Clopath's code (same ``P``; larger steps).
    learn_every : int, default 1
        Steps between RLS events when the simulation engine drives the readout (Nicola &
        Clopath: 20 steps of 0.04 ms). Stored for the engine; :meth:`partial_fit` and
        :meth:`fit` perform one event per row whatever its value.

    Attributes
    ----------
    weights_ : ndarray, shape (K, F)
        Readout weights (start at zero).
    P_ : ndarray, shape (F, F)
        Full symmetric copy of the inverse-correlation estimate (a property: each read flushes
        the pending correction and copies; see the module docstring on the lazy storage).
    state_ : RLSState
        The rule's state (the stored upper-triangle ``P`` and its pending correction).
    n_updates_ : int
        RLS events performed since the last reset.
    prior_errors_ : ndarray, shape (T, K)
        A-priori errors ``e-(t) = w(t-dt) r(t) - f(t)`` of the rows of the last :meth:`fit` or
        :meth:`partial_fit` call.

    Notes
    -----
    Uses :func:`rls_update_fused`; ``P`` is kept as an upper triangle with a pending rank-one
    correction. With ``forgetting = 1`` and the textbook form, after rows ``R`` and targets
    ``Y`` from the initial state, ``weights_.T == (R^T R + alpha I)^-1 R^T Y`` (ridge
    regression) and ``P_ == (R^T R + alpha I)^-1`` up to rounding.

    References
    ----------
    .. [1] Sussillo, D. & Abbott, L. F. (2009). Generating coherent patterns of activity from
       chaotic neural networks. *Neuron* 63, 544-557. doi:10.1016/j.neuron.2009.07.018
    .. [2] Nicola, W. & Clopath, C. (2017). Supervised learning in spiking neural networks
       with FORCE training. *Nat. Commun.* 8, 2208. doi:10.1038/s41467-017-01827-3
    .. [3] Haykin, S. (2002). *Adaptive Filter Theory*, 4th ed. Prentice Hall.

    Examples
    --------
    >>> import numpy as np
    >>> from reservoir.rules.rls import RLSReadout
    >>> rng = np.random.default_rng(0)
    >>> R = rng.standard_normal((200, 5))
    >>> Y = R @ np.array([[1.0], [-2.0], [0.5], [0.0], [3.0]])
    >>> readout = RLSReadout(alpha=1e-3).fit(R, Y)
    >>> np.round(readout.weights_, 3)
    array([[ 1. , -2. ,  0.5,  0. ,  3. ]])
    >>> readout.predict(R[:2]).shape
    (2, 1)
    >>> _ = readout.partial_fit(R[0], Y[0])  # one more online event
    >>> readout.n_updates_
    201
    """

    def __init__(self, n_features=None, n_outputs=None, *, alpha=1.0, forgetting=1.0,
                 decoder_form="textbook", learn_every=1):
        self.n_features = _check_count("n_features", n_features, allow_none=True)
        self.n_outputs = _check_count("n_outputs", n_outputs, allow_none=True)
        self.config = validated_config(alpha=alpha, forgetting=forgetting, decoder_form=decoder_form,
                                       learn_every=learn_every)
        self.alpha = self.config.alpha
        self.forgetting = self.config.forgetting
        self.decoder_form = self.config.decoder_form
        self.learn_every = self.config.learn_every_steps
        self.weights_ = None
        self.n_updates_ = 0
        self.prior_errors_ = None
        self.state_: RLSState | None = None
        if self.n_features is not None and self.n_outputs is not None:
            self._allocate()

    # state -----------------------------------------------------------------------------------
    def _allocate(self):
        self.state_ = rls_state(self.config, self.n_features, 0, self.n_outputs)
        self.weights_ = np.zeros((self.n_outputs, self.n_features))
        self.n_updates_ = 0

    @property
    def P_(self):
        """Full symmetric copy of ``P`` (flushes the pending correction first)."""
        if self.state_ is None:
            raise ValueError("the readout has no state yet: give n_features and n_outputs or call fit/partial_fit")
        rls_flush(self.state_.P, self.state_.pending_pr, self.state_.pending_coefficients)
        return symmetric_P(self.state_.P)

    def reset(self, reset_weights=False):
        """Reset ``P`` to ``I / alpha`` (clearing any pending correction); zero the weights if asked.

        Parameters
        ----------
        reset_weights : bool, default False
            Also set ``weights_`` to zero. Keeping them (the default) restarts learning from
            the current readout with a fresh, fast-learning ``P``.

        Returns
        -------
        self
        """
        if self.state_ is None:
            return self
        rls_reset(self.state_.P, self.alpha, self.state_.pending_pr, self.state_.pending_coefficients)
        if reset_weights:
            self.weights_[...] = 0.0
        self.n_updates_ = 0
        return self

    # data ------------------------------------------------------------------------------------
    def _rows(self, R, Y):
        """Validate ``R`` (rows of features) and ``Y`` (rows of targets) as 2-D float64 arrays."""
        R = np.asarray(R, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        single = R.ndim == 1
        if single:
            R = R[None, :]
            if Y.ndim == 0:
                Y = Y.reshape(1, 1)
            elif Y.ndim == 1:
                Y = Y[None, :]
            else:
                raise ValueError(f"target must have shape (n_outputs,) for one feature vector r of shape "
                                 f"{R.shape[1:]}, got {Y.shape}")
        elif R.ndim == 2:
            if Y.ndim == 1:
                Y = Y[:, None]
            if Y.ndim != 2:
                raise ValueError(f"Y must have shape (n_rows, n_outputs) or (n_rows,), got {Y.shape}")
        else:
            raise ValueError(f"R must have shape (n_rows, n_features) or (n_features,), got {R.shape}")
        r_name, y_name = ("r", "target") if single else ("R", "Y")
        if Y.shape[0] != R.shape[0]:
            raise ValueError(f"{y_name} has {Y.shape[0]} rows but {r_name} has {R.shape[0]}")
        if self.n_features is not None and R.shape[1] != self.n_features:
            raise ValueError(f"{r_name} has {R.shape[1]} features, the readout has n_features={self.n_features}")
        if self.n_outputs is not None and Y.shape[1] != self.n_outputs:
            raise ValueError(f"{y_name} has {Y.shape[1]} outputs, the readout has n_outputs={self.n_outputs}")
        if R.shape[1] == 0 or Y.shape[1] == 0:
            raise ValueError(f"{r_name} and {y_name} need at least one feature and one output")
        if not np.all(np.isfinite(R)):
            raise ValueError(f"{r_name} contains NaN or infinite values")
        if not np.all(np.isfinite(Y)):
            raise ValueError(f"{y_name} contains NaN or infinite values")
        return np.ascontiguousarray(R), np.ascontiguousarray(Y)

    def partial_fit(self, r, target):
        """Online RLS: one event per row, continuing from the current state.

        Parameters
        ----------
        r : array_like, shape (F,) or (T, F)
            One feature vector (one event), or rows of them (one event each, in order).
        target : array_like, shape (K,) or (T, K)
            Target(s) ``f(t)``; for ``K = 1`` a scalar (one row) or shape ``(T,)`` is accepted.

        Returns
        -------
        self
        """
        R, Y = self._rows(r, target)
        if self.state_ is None:
            self.n_features = R.shape[1] if self.n_features is None else self.n_features
            self.n_outputs = Y.shape[1] if self.n_outputs is None else self.n_outputs
            self._allocate()
        prior_errors = np.empty((R.shape[0], self.n_outputs))
        fit_rows(self.state_, R, Y, self.weights_, prior_errors)
        self.prior_errors_ = prior_errors
        self.n_updates_ += R.shape[0]
        return self

    def fit(self, R, Y):
        """Run RLS over the rows of ``R`` in order, starting from the initial state.

        Like scikit-learn's ``fit``, this first resets ``P`` to ``I / alpha`` and the weights
        to zero; use :meth:`partial_fit` to continue from the current state.

        Parameters
        ----------
        R : array_like, shape (T, F)
            Feature rows (one RLS event each).
        Y : array_like, shape (T, K) or (T,)
            Targets.

        Returns
        -------
        self
        """
        if np.ndim(R) != 2:
            raise ValueError(f"R must have shape (n_rows, n_features), got {np.shape(R)}")
        R, Y = self._rows(R, Y)
        self.reset(reset_weights=True)
        return self.partial_fit(R, Y)

    def predict(self, R):
        """Readout ``R @ weights_.T``: shape (T, K) for rows, (K,) for one feature vector."""
        if self.weights_ is None:
            raise ValueError("the readout has no weights yet: call fit or partial_fit first")
        R = np.asarray(R, dtype=np.float64)
        if R.ndim not in (1, 2) or R.shape[-1] != self.n_features:
            raise ValueError(f"R must have shape (n_rows, {self.n_features}) or ({self.n_features},), "
                             f"got {R.shape}")
        return R @ self.weights_.T

    def __repr__(self):
        return (f"RLSReadout(n_features={self.n_features}, n_outputs={self.n_outputs}, alpha={self.alpha}, "
                f"forgetting={self.forgetting}, decoder_form={self.decoder_form!r}, "
                f"learn_every={self.learn_every})")
