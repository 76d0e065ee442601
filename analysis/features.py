"""Readout features rebuilt from a run's recorded spikes.

The readouts see filtered spike trains (``[readouts] traces``, :mod:`reservoir.readouts.traces`):
at every step an exponential trace decays by ``exp(-dt / tau)`` and then adds ``1 / tau`` per
spike; a double exponential follows ``r <- r e^(-dt/tau_rise) + h dt``, ``h <- h e^(-dt/tau_decay)``
and adds ``1 / (tau_rise tau_decay)`` to ``h`` per spike (the feature is ``r``). The run file
keeps the spikes, not the features, so the analyses rebuild them here, with every filter of the
bank: one filtered window per call, computed at the sampled steps only (the per-step recurrence
summed in closed form between samples), so time and memory follow the samples and the spikes,
not the steps.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reservoir.readouts.config import TraceFilterConfig
from reservoir.synapses import SynapticFilter

from .io import SpikeFile

DEFAULT_FILTERS = ({"kind": "exponential", "tau_ms": 20.0},)
TRACE_FILTER_KINDS = ("exponential", "double_exponential")


def trace_filter(item) -> SynapticFilter:
    """One trace filter as a :class:`~reservoir.synapses.SynapticFilter`: a number is the time
    constant of an exponential trace (ms); a mapping is a ``[readouts] traces`` entry (kind and
    time constants, the configuration's defaults for the others). Raises ``ValueError`` for a
    kind the trace bank does not have."""
    if isinstance(item, SynapticFilter):
        spec = item
    elif isinstance(item, Mapping):
        kind = item.get("kind", "exponential")
        if kind not in TRACE_FILTER_KINDS:
            raise ValueError(f"readouts.traces: a trace filter must be one of {list(TRACE_FILTER_KINDS)}, "
                             f"got {kind!r}")
        spec = TraceFilterConfig(**item).synaptic_filter()
    else:
        spec = SynapticFilter("exponential", tau_ms=float(item))
    if spec.kind not in TRACE_FILTER_KINDS:
        raise ValueError(f"a trace filter must be one of {list(TRACE_FILTER_KINDS)}, got {spec.kind!r}")
    return spec


def run_filters(run) -> list[SynapticFilter]:
    """The run's readout trace filters, in feature order (a 20 ms exponential trace when it has
    no readouts); ``ValueError`` names an entry the trace bank cannot have."""
    return [trace_filter(f) for f in run.config.get("readouts", {}).get("traces") or DEFAULT_FILTERS]


def _lag_sum(d_rise: float, d_decay: float, lag: np.ndarray) -> np.ndarray:
    """``sum_{k < lag} d_rise^(lag-1-k) d_decay^k``: how much of ``h`` reaches ``r`` of a double
    exponential over ``lag`` steps (``(d_rise^lag - d_decay^lag) / (d_rise - d_decay)``;
    ``lag d^(lag-1)`` when the two decays are equal)."""
    lag = np.asarray(lag)
    if d_rise == d_decay:
        return lag * d_rise ** np.maximum(lag - 1, 0)
    return (d_rise ** lag - d_decay ** lag) / (d_rise - d_decay)


class SpikeIndex:
    """The run's spikes by time window, for cutting windows out of them repeatedly: the arrays
    themselves (sorted by time) when the run holds its spikes, else windows read from its file
    through one open :class:`~analysis.io.SpikeFile` (a :class:`~analysis.io.LazyRun`: memory
    follows the windows, not the run). A context manager: leaving it closes that file."""

    def __init__(self, run):
        self.dt_ms, self.n_neurons = run.dt_ms, run.n_neurons
        self.times = self.ids = None
        self._file = None
        if getattr(run, "spikes_in_memory", True):
            times, ids = run.spike_times_ms, run.spike_ids
            if times.size > 1 and not np.all(times[1:] >= times[:-1]):  # run files are time-sorted: no copy then
                order = np.argsort(times, kind="stable")
                times, ids = times[order], ids[order]
            self.times, self.ids = times, ids
        else:
            self._file = SpikeFile(run.path)

    def __enter__(self) -> "SpikeIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the run file, if windows are read from it."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def between(self, t_start_ms: float, t_stop_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """``(times_ms, ids)`` of the spikes with ``t_start_ms <= time < t_stop_ms``."""
        if self.times is None:
            if self._file is None:
                raise ValueError("this SpikeIndex is closed")
            return self._file.between(t_start_ms, t_stop_ms)
        lo, hi = np.searchsorted(self.times, [t_start_ms, t_stop_ms])
        return self.times[lo:hi], self.ids[lo:hi]

    def filtered(self, start_ms: float, n_steps: int, sample_steps: np.ndarray, filters,
                 dtype=np.float64) -> np.ndarray:
        """``(len(sample_steps), N x len(filters))`` traces of the window of ``n_steps`` steps
        from ``start_ms``, starting from zero, sampled after the update of each listed step
        (ascending). ``filters``: the bank's filters in feature order, each a time constant (an
        exponential trace), a ``[readouts] traces`` entry or a
        :class:`~reservoir.synapses.SynapticFilter` (:func:`trace_filter`).

        Only the samples are computed, never the traces at every step: each spike adds its
        filter's response ``lag`` steps later (``exp(-lag dt / tau) / tau`` for an exponential
        trace) to the first sample at or after it, and from one sample to the next the state
        evolves by the engine's per-step recurrence summed in closed form over the gap (equal to
        it up to rounding). Memory is that of the samples, not of a neurons x steps array."""
        dt, n = self.dt_ms, self.n_neurons
        specs = [trace_filter(f) for f in filters]
        sample_steps = np.asarray(sample_steps, dtype=np.int64)
        if sample_steps.size > 1 and np.any(np.diff(sample_steps) <= 0):
            raise ValueError("sample_steps must be strictly ascending")
        times, ids = self.between(start_ms - 1e-9, start_ms + n_steps * dt - 1e-9)
        steps = np.round((times - start_ms) / dt).astype(np.int64)
        sample = np.searchsorted(sample_steps, steps, side="left")  # the first sample at or after each spike
        keep = sample < sample_steps.size
        where = sample[keep] * n + ids[keep]
        lag = sample_steps[sample[keep]] - steps[keep]
        del times, ids, steps, sample, keep  # the window's spikes: only where and lag are needed now
        gaps = np.diff(sample_steps)
        shape = (len(sample_steps), n)

        def summed(weights: np.ndarray) -> np.ndarray:
            """Each sample's and neuron's sum of ``weights`` over its spikes, ``shape``, float64:
            ``np.bincount`` returns int64 when there are no spikes, whatever the weights' dtype."""
            sums = np.bincount(where, weights=weights, minlength=shape[0] * n)
            return sums.astype(np.float64, copy=False).reshape(shape)

        out = None  # one exponential filter in the float64 of the sums: the traces themselves, no second array
        if len(specs) != 1 or specs[0].kind != "exponential" or np.dtype(dtype) != np.float64:
            out = np.empty((shape[0], n * len(specs)), dtype=dtype)
        for k, spec in enumerate(specs):
            if spec.kind == "exponential":
                tau = spec.tau_ms
                decay = np.exp(-dt / tau)
                traces = summed(decay ** lag / tau)
                for i in range(1, shape[0]):  # in place: x[i] + c y[i-1], as lfilter computes it
                    traces[i] += decay ** gaps[i - 1] * traces[i - 1]
                if out is None:
                    return traces
            else:  # double exponential: r (the feature) and h; r <- d_rise r + dt h, h <- d_decay h, h += jump
                d_rise, d_decay, jump = spec.coefficients(dt)
                traces = summed(jump * dt * _lag_sum(d_rise, d_decay, lag))
                aux = summed(jump * d_decay ** lag)
                from_r, from_h, h_decay = d_rise ** gaps, dt * _lag_sum(d_rise, d_decay, gaps), d_decay ** gaps
                for i in range(1, shape[0]):
                    traces[i] += from_r[i - 1] * traces[i - 1] + from_h[i - 1] * aux[i - 1]
                    aux[i] += h_decay[i - 1] * aux[i - 1]
                del aux
            out[:, k * n:(k + 1) * n] = traces
        return out


def trial_features(run, onsets_ms: np.ndarray, length_ms: float, every_ms: float = 5.0, lead_in_ms: float = 0.0,
                   taus_ms=None, dtype=np.float32) -> np.ndarray:
    """``(trials, samples, N x filters)`` features sampled every ``every_ms`` from each onset,
    with the run's trace filters, exponential and double exponential (or exponential traces of
    the time constants ``taus_ms``).

    Filtering starts ``lead_in_ms`` before each onset from a zero state, which is exact when
    the trial-start reset zeroes the traces (``lead_in_ms = 0``) and close otherwise. The default
    ``float32`` halves the memory of long runs; pass ``np.float64`` for the exact values."""
    filters = run_filters(run) if taus_ms is None else list(taus_ms)
    lead = int(round(lead_in_ms / run.dt_ms))
    n_steps = lead + int(round(length_ms / run.dt_ms))
    every = max(1, int(round(every_ms / run.dt_ms)))
    sample_steps = lead + np.arange(int(round(length_ms / every_ms))) * every
    out = np.empty((len(onsets_ms), sample_steps.size, run.n_neurons * len(filters)), dtype=dtype)
    with SpikeIndex(run) as spikes:
        for trial, onset in enumerate(onsets_ms):
            out[trial] = spikes.filtered(onset - lead * run.dt_ms, n_steps, sample_steps, filters, dtype)
    return out


def window_means(run, starts_ms, length_ms: float, lead_in_ms: float = 200.0, taus_ms=None) -> np.ndarray:
    """``(len(starts_ms), N x filters)``: each window's mean feature vector (the mean of the
    traces after each of the window's steps), with the run's trace filters (or exponential
    traces of the time constants ``taus_ms``).

    Each window is filtered from a zero state ``lead_in_ms`` before its start, so a trace's
    error is ``exp(-lead_in / tau)`` of its value then (5e-5 for 200 ms and tau = 20 ms; for a
    double exponential, tau is the slower of its two).
    Windows are rebuilt one at a time, so memory stays bounded for long runs.
    """
    filters = run_filters(run) if taus_ms is None else list(taus_ms)
    dt = run.dt_ms
    lead = int(round(lead_in_ms / dt))
    n_window = int(round(length_ms / dt))
    starts = np.asarray(starts_ms, dtype=float)
    out = np.empty((starts.size, run.n_neurons * len(filters)))
    with SpikeIndex(run) as spikes:
        for i, start in enumerate(starts):
            begin = max(0.0, start - lead * dt)
            skip = int(round((start - begin) / dt))
            out[i] = spikes.filtered(begin, skip + n_window, skip + np.arange(n_window), filters).mean(axis=0)
    return out
