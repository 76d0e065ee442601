"""Rates and population rhythm of a spiking network."""
from __future__ import annotations

import numpy as np
from scipy import signal as sps


def firing_rates_hz(spike_ids: np.ndarray, n_neurons: int, duration_ms: float) -> np.ndarray:
    """Mean firing rate of each neuron (Hz) over ``duration_ms``."""
    if duration_ms <= 0:
        raise ValueError("duration_ms must be > 0")
    return np.bincount(np.asarray(spike_ids, dtype=np.int64), minlength=n_neurons) / (duration_ms / 1000.0)


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
