"""Slow, obviously correct NumPy twin of the RLS kernels (``reservoir/rules/rls.py``).

Full symmetric matrices and the formulas as printed in the papers, one event at a time:

    e-(t) = w(t-dt) r(t) - f(t)                                   (Sussillo & Abbott 2009)
    P(t)  = (P(t-dt) - P r r^T P / (lambda + r^T P r)) / lambda   (lambda = 1: Sussillo & Abbott)
    w(t)  = w(t-dt) - e-(t) P(t) r(t)        textbook
    w(t)  = w(t-dt) - e-(t) P(t-dt) r(t)     Nicola & Clopath's code (ModelDB 190565)

The kernels keep ``P`` as an upper triangle, sum ``P r`` in another order and use
``P(t) r = P(t-dt) r / (lambda + r^T P(t-dt) r)``, so agreement is to rounding, not bit for bit.
"""
from __future__ import annotations

import numpy as np


def naive_rls_step(P, weights, r, target, forgetting=1.0, decoder_form="textbook"):
    """One RLS event; returns new ``(P, weights, errors)`` (the inputs are not modified).

    Parameters
    ----------
    P : ndarray (F, F), full symmetric
    weights : ndarray (K, F)
    r : ndarray (F,)
    target : ndarray (K,)
    forgetting : float in (0, 1]
    decoder_form : "textbook" or "nicola_clopath"
    """
    errors = weights @ r - target
    P_old_r = P @ r
    P_new = (P - np.outer(P_old_r, P_old_r) / (forgetting + r @ P_old_r)) / forgetting
    if decoder_form == "textbook":
        weights_new = weights - np.outer(errors, P_new @ r)
    elif decoder_form == "nicola_clopath":
        weights_new = weights - np.outer(errors, P_old_r)
    else:
        raise ValueError(decoder_form)
    return P_new, weights_new, errors


def naive_rls_run(R, Y, alpha, forgetting=1.0, decoder_form="textbook", P=None, weights=None):
    """RLS events over the rows of ``R`` (targets ``Y`` of shape (T, K)), from ``P = I / alpha`` and zero weights.

    Returns
    -------
    P, weights, errors : ndarrays (F, F), (K, F), (T, K)
    """
    n_rows, n_features = R.shape
    P = np.eye(n_features) / alpha if P is None else P.copy()
    weights = np.zeros((Y.shape[1], n_features)) if weights is None else weights.copy()
    errors = np.empty_like(Y, dtype=float)
    for t in range(n_rows):
        P, weights, errors[t] = naive_rls_step(P, weights, R[t], Y[t], forgetting, decoder_form)
    return P, weights, errors
