"""Rates and population rhythm of a spiking network.

The functions that take spike arrays (``firing_rates_hz``, ``population_rate_hz``,
``population_spectrum``) need every spike in memory; :func:`tally_spikes` computes the same
counts in one pass over a run's blocks (:meth:`analysis.io.Run.spike_blocks`), holding one
block at a time, so a long run read with ``load_run(path, lazy_spikes=True)`` never holds all
its spikes. Its rates, population rate and :func:`rate_spectrum` equal those of the array
functions exactly (the counts are integers; the arithmetic after them is the same).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from .io import SPIKE_BLOCK_ROWS


def firing_rates_hz(spike_ids: np.ndarray, n_neurons: int, duration_ms: float) -> np.ndarray:
    """Mean firing rate of each neuron (Hz) over ``duration_ms``."""
    if duration_ms <= 0:
        raise ValueError("duration_ms must be > 0")
    return np.bincount(np.asarray(spike_ids, dtype=np.int64), minlength=n_neurons) / (duration_ms / 1000.0)


def rate_bin_edges_ms(duration_ms: float, bin_ms: float = 1.0) -> np.ndarray:
    """The bin edges (ms) of :func:`population_rate_hz`: ``ceil(duration_ms / bin_ms)`` bins of
    ``bin_ms`` from 0, computed as :func:`numpy.histogram` computes them (float64 times); every
    bin is half-open ``[edge, next edge)`` except the last, which also holds its right edge."""
    n_bins = int(np.ceil(duration_ms / bin_ms))
    return np.histogram_bin_edges(np.zeros(0), bins=n_bins, range=(0.0, n_bins * bin_ms))


def counts_in_bins(times_ms: np.ndarray, edges_ms: np.ndarray) -> np.ndarray:
    """Number of ``times_ms`` in each bin of the ascending ``edges_ms``, with the bins of
    :func:`numpy.histogram` (half-open, the last one closed; times outside not counted): equal
    to ``np.histogram(times_ms, bins=edges_ms)[0]`` (int64). Times sorted ascending (a run's
    spikes, in file order) cost one bisection per edge within their span instead of a pass per
    time; unsorted times go to :func:`numpy.histogram`."""
    times = np.asarray(times_ms)
    edges = np.asarray(edges_ms)
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    if times.size == 0:
        return counts
    if times.size > 1 and np.any(times[1:] < times[:-1]):
        return np.histogram(times, bins=edges)[0].astype(np.int64, copy=False)
    first = max(int(np.searchsorted(edges, times[0], side="right")) - 1, 0)  # the bin of the earliest time
    last = min(int(np.searchsorted(edges, times[-1], side="right")), edges.size - 1)  # first edge past the latest
    bounds = np.searchsorted(times, edges[first:last + 1], side="left")  # bins first..last-1 hold everything inside
    if last == edges.size - 1 and bounds.size:
        bounds[-1] = np.searchsorted(times, edges[-1], side="right")  # the last bin holds its right edge
    counts[first:last] = np.diff(bounds)
    return counts


@dataclass(frozen=True)
class SpikeTally:
    """Counts of a run's spikes from one pass over it (:func:`tally_spikes`): ``n_spikes``,
    ``per_neuron`` ``(N,)`` (int64), and, when asked for, ``per_bin`` over ``bin_edges_ms``
    (:func:`rate_bin_edges_ms` of the run's duration; ``None`` otherwise)."""

    n_neurons: int
    duration_ms: float
    n_spikes: int
    per_neuron: np.ndarray
    bin_ms: float | None = None
    bin_edges_ms: np.ndarray | None = None
    per_bin: np.ndarray | None = None
    window_ms: float | None = None
    max_per_window: np.ndarray | None = None
    """``(N,)`` int64: each neuron's largest spike count in one of the consecutive windows of
    ``window_ms`` from time 0 (when asked for)."""

    def neurons_at_step_limit(self, dt_ms: float, fraction: float = 0.9) -> np.ndarray:
        """Neurons that fired on at least ``fraction`` of every other step for one whole window:
        the fastest a spike-and-reset neuron can fire with step ``dt_ms``, held for
        ``window_ms``. No Izhikevich neuron does this for a second; a forward-Euler step of
        about 1 ms can (a spurious period-2 cycle with ``v`` far past the peak and ``u`` fed
        by it, ``docs/model-and-numerics.md``), so this is a check of the numerics."""
        if self.max_per_window is None:
            raise ValueError("this tally counted no windows: tally_spikes(run, window_ms=...) counts them")
        limit = fraction * self.window_ms / (2.0 * dt_ms)
        return np.flatnonzero(self.max_per_window >= limit)

    def firing_rates_hz(self) -> np.ndarray:
        """Mean firing rate of each neuron (Hz): :func:`firing_rates_hz` of the run's spikes."""
        return self.per_neuron / (self.duration_ms / 1000.0)

    def population_rate_hz(self) -> tuple[np.ndarray, np.ndarray]:
        """``(bin_centres_ms, rate)`` (Hz per neuron): :func:`population_rate_hz` of the run's spikes."""
        if self.per_bin is None:
            raise ValueError("this tally counted no time bins: tally_spikes(run, bin_ms=...) counts them")
        edges = self.bin_edges_ms
        return 0.5 * (edges[:-1] + edges[1:]), self.per_bin / (self.n_neurons * self.bin_ms / 1000.0)


def tally_spikes(run, bin_ms: float | None = None, block_rows: int = SPIKE_BLOCK_ROWS,
                 window_ms: float | None = None) -> SpikeTally:
    """Count ``run``'s spikes per neuron and, with ``bin_ms``, per population time bin of
    ``bin_ms`` (the bins of :func:`population_rate_hz` over the run's duration), and with
    ``window_ms`` each neuron's largest count in a window of ``window_ms`` (windows
    ``[k w, (k + 1) w)``), in one pass over
    :meth:`~analysis.io.Run.spike_blocks` of ``block_rows`` rows: memory is one block plus the
    counts, whether the spikes are in memory or in the file (:class:`~analysis.io.LazyRun`)."""
    if run.duration_ms <= 0:
        raise ValueError("duration_ms must be > 0")
    per_neuron = np.zeros(run.n_neurons, dtype=np.int64)
    edges = rate_bin_edges_ms(run.duration_ms, bin_ms) if bin_ms is not None else None
    per_bin = np.zeros(edges.size - 1, dtype=np.int64) if edges is not None else None
    n_spikes = 0
    windows = _WindowMaxima(run.n_neurons, window_ms) if window_ms is not None else None
    for times, ids in run.spike_blocks(block_rows):
        n_spikes += ids.size
        if windows is not None:
            windows.add(times, ids)
        counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=run.n_neurons)
        if counts.size > per_neuron.size:  # ids past n_neurons: counted, as firing_rates_hz counts them
            per_neuron = np.concatenate([per_neuron, np.zeros(counts.size - per_neuron.size, dtype=np.int64)])
        per_neuron[:counts.size] += counts
        if per_bin is not None:
            per_bin += counts_in_bins(times, edges)
    return SpikeTally(n_neurons=run.n_neurons, duration_ms=run.duration_ms, n_spikes=n_spikes, per_neuron=per_neuron,
                      bin_ms=bin_ms, bin_edges_ms=edges, per_bin=per_bin, window_ms=window_ms,
                      max_per_window=windows.maxima() if windows is not None else None)


class _WindowMaxima:
    """Per-neuron spike counts in consecutive windows, fed time-ordered blocks; keeps only the
    open window's counts and the running maxima (memory ``2 N``)."""

    def __init__(self, n_neurons: int, window_ms: float):
        if window_ms <= 0:
            raise ValueError(f"window_ms must be > 0, got {window_ms}")
        self.window_ms = window_ms
        self.best = np.zeros(n_neurons, dtype=np.int64)
        self.open = np.zeros(n_neurons, dtype=np.int64)
        self.open_index = -1

    def add(self, times: np.ndarray, ids: np.ndarray) -> None:
        if times.size == 0:
            return
        index = np.floor(np.asarray(times, dtype=np.float64) / self.window_ms).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], index.size]):
            if index[a] != self.open_index:
                self._close()
                self.open_index = int(index[a])
            ids_here = np.asarray(ids[a:b], dtype=np.int64)
            self.open += np.bincount(ids_here[ids_here < self.open.size], minlength=self.open.size)

    def _close(self) -> None:
        np.maximum(self.best, self.open, out=self.best)
        self.open[...] = 0

    def maxima(self) -> np.ndarray:
        self._close()
        return self.best


def population_rate_hz(spike_times_ms: np.ndarray, n_neurons: int, duration_ms: float, bin_ms: float = 1.0):
    """Population rate (Hz per neuron) in bins of ``bin_ms``; returns ``(bin_centres_ms, rate)``."""
    n_bins = int(np.ceil(duration_ms / bin_ms))
    counts, edges = np.histogram(spike_times_ms, bins=n_bins, range=(0.0, n_bins * bin_ms))
    return 0.5 * (edges[:-1] + edges[1:]), counts / (n_neurons * bin_ms / 1000.0)


def population_spectrum(spike_times_ms: np.ndarray, n_neurons: int, duration_ms: float, bin_ms: float = 1.0,
                        discard_ms: float = 0.0):
    """Power spectrum (Welch, 1 s Hann segments when possible) of the mean-removed population rate.

    Returns ``(frequencies_hz, power)``. ``discard_ms`` drops an initial transient.
    """
    _, rate = population_rate_hz(spike_times_ms, n_neurons, duration_ms, bin_ms)
    return rate_spectrum(rate, bin_ms, discard_ms)


def rate_spectrum(rate: np.ndarray, bin_ms: float = 1.0, discard_ms: float = 0.0):
    """Power spectrum (Welch, 1 s Hann segments when possible) of a mean-removed population rate
    sampled every ``bin_ms`` (e.g. :meth:`SpikeTally.population_rate_hz`); returns
    ``(frequencies_hz, power)``. ``discard_ms`` drops an initial transient."""
    rate = rate[int(round(discard_ms / bin_ms)):]
    rate = rate - rate.mean()
    fs = 1000.0 / bin_ms
    nperseg = min(len(rate), int(fs))
    return sps.welch(rate, fs=fs, nperseg=nperseg, detrend=False)


def spectral_peak_hz(frequencies: np.ndarray, power: np.ndarray, band: tuple[float, float] = (1.0, 100.0)) -> float:
    """Frequency of the largest power within ``band`` (Hz)."""
    inside = (frequencies >= band[0]) & (frequencies <= band[1])
    return float(frequencies[inside][np.argmax(power[inside])])


def interspike_intervals_ms(spike_times_ms: np.ndarray) -> np.ndarray:
    """Intervals between consecutive spikes of one neuron (input: that neuron's times)."""
    return np.diff(np.sort(np.asarray(spike_times_ms)))
