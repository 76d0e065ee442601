"""Fits used by the measures: straight lines with their statistics (:mod:`scipy.stats`).

>>> fit = fit_line([0.25, 0.5, 0.75, 1.0], [0.26, 0.49, 0.77, 0.98])
>>> round(fit["slope"], 3), round(fit["r"], 4), fit["n"]
(0.976, 0.9986, 4)
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["fit_line"]


def fit_line(x, y) -> dict:
    """Least-squares line ``y = slope x + intercept`` (:func:`scipy.stats.linregress`): ``slope``,
    ``intercept``, Pearson's ``r``, the two-sided ``p_value`` of slope 0, the slope's standard
    error ``slope_stderr`` and ``n``. Values that are undefined (fewer than 2 points, no spread in
    ``x``; ``r`` and ``p_value`` when ``y`` has no spread; ``p_value`` and the error with 2
    points) are ``None``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"fit_line needs two 1-D sequences of the same length, got shapes {x.shape} and {y.shape}")
    none = {"slope": None, "intercept": None, "r": None, "p_value": None, "slope_stderr": None, "n": int(len(x))}
    if len(x) < 2 or np.ptp(x) == 0:
        return none
    if np.ptp(y) == 0:
        return {**none, "slope": 0.0, "intercept": float(y[0])}
    fit = stats.linregress(x, y)
    defined = len(x) > 2
    return {"slope": float(fit.slope), "intercept": float(fit.intercept), "r": float(fit.rvalue),
            "p_value": float(fit.pvalue) if defined else None,
            "slope_stderr": float(fit.stderr) if defined else None, "n": int(len(x))}
