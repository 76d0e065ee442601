"""Trials: cutting a run's readout outputs and reservoir responses into trials, and timing them.

A task that runs in trials writes its trial table to the run file (``run.tables["trials"]``,
one row per trial with at least ``onset_step``). The functions here align the readout outputs
to those onsets (:func:`align_outputs`), time a response curve (:func:`peak_and_half_rise`) and
measure how reproducible the reservoir's own response is from trial to trial
(:func:`response_reliability`), which bounds what any readout can learn about time.

Example (a run folder made by ``reservoir run``)::

    run = analysis.load_run("runs/whatwhen-seed1")
    t, when = align_outputs(run, trial_onsets_ms(run), 1200.0, columns=0)   # (trials, samples)
    peak_ms, peak, half_rise_ms = peak_and_half_rise(when[-20:].mean(axis=0), t)
"""
from __future__ import annotations

import numpy as np

from .features import trial_features

__all__ = ["trial_onsets_ms", "align_outputs", "aligned", "peak_and_half_rise", "response_reliability"]


def trial_onsets_ms(run, table: str = "trials") -> np.ndarray:
    """Onset (ms) of every trial of ``run``'s trial table ``table``."""
    if table not in run.tables or "onset_step" not in run.tables[table]:
        raise KeyError(f"{run.path}: no trial table {table!r} with an 'onset_step' column "
                       f"(tables: {sorted(run.tables)})")
    return np.asarray(run.tables[table]["onset_step"], dtype=float) * run.dt_ms


def aligned(run, column: int, onsets_ms: np.ndarray, length_ms: float) -> np.ndarray:
    """``(n_trials, samples)`` output of readout unit ``column`` from each onset, at the output
    resolution (samples past the end of the run repeat the last one)."""
    dt = run.output_dt_ms
    n = int(round(length_ms / dt))
    index = np.round((np.asarray(onsets_ms, float)[:, None] + np.arange(n) * dt - run.output_time_ms[0]) / dt)
    index = np.clip(index.astype(int), 0, len(run.output_time_ms) - 1)
    return run.outputs[index, column]


def align_outputs(run, onsets_ms, length_ms: float, columns=None) -> tuple[np.ndarray, np.ndarray]:
    """Readout outputs cut into trials: ``(t, values)`` with ``t`` the time since each onset (ms,
    at the output resolution) and ``values`` of shape ``(trials, samples)`` for one ``columns``
    index, or ``(trials, samples, units)`` for a list (default: every readout unit)."""
    if run.outputs.size == 0:
        raise ValueError(f"{run.path}: the run recorded no readout outputs")
    t = np.arange(int(round(length_ms / run.output_dt_ms))) * run.output_dt_ms
    if np.ndim(columns) == 0 and columns is not None:
        return t, aligned(run, int(columns), onsets_ms, length_ms)
    columns = range(run.outputs.shape[1]) if columns is None else columns
    return t, np.stack([aligned(run, int(c), onsets_ms, length_ms) for c in columns], axis=-1)


def peak_and_half_rise(curve, t) -> tuple[float, float, float]:
    """``(peak time, peak value, half-rise time)`` of a curve over times ``t``: the half-rise is the
    first time after the last sample below half the peak, before the peak."""
    curve, t = np.asarray(curve), np.asarray(t)
    peak = int(np.argmax(curve))
    below = np.flatnonzero(curve[: peak + 1] < 0.5 * curve[peak])
    rise = float(t[below[-1] + 1]) if below.size else float(t[0])
    return float(t[peak]), float(curve[peak]), rise


def response_reliability(run, onsets_ms, length_ms: float, every_ms: float = 5.0, tau_ms: float = 20.0,
                         lead_in_ms: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Trial-to-trial reliability of the reservoir's response: ``(t, r)`` with ``r[k]`` the mean
    Pearson correlation, over all pairs of the given trials, of the population vectors of
    ``tau_ms`` spike traces at time ``t[k]`` after the onset (1: every trial is the same
    trajectory; 0: unrelated). Timing can only be read out as far as this stays high.

    The traces are rebuilt from the recorded spikes (:func:`analysis.features.trial_features`),
    filtered from ``lead_in_ms`` before each onset.
    """
    onsets = np.asarray(onsets_ms, dtype=float)
    if onsets.size < 2:
        raise ValueError(f"response_reliability needs at least 2 trials, got {onsets.size}")
    traces = trial_features(run, onsets, length_ms, every_ms=every_ms, lead_in_ms=lead_in_ms,
                            taus_ms=[tau_ms], dtype=np.float64)
    centred = traces  # centred in place: one trials x samples x neurons array, not two
    centred -= traces.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(centred, axis=2)
    n = onsets.size
    curve = np.empty(traces.shape[1])
    for k in range(traces.shape[1]):
        v = centred[:, k] / np.maximum(norms[:, k:k + 1], 1e-300)
        gram = v @ v.T
        curve[k] = (gram.sum() - np.trace(gram)) / (n * (n - 1))
    return np.arange(traces.shape[1]) * every_ms, curve
