"""Slow, obviously correct twin of the feature rebuild in :mod:`analysis.features`."""
from __future__ import annotations

import numpy as np


def naive_trial_traces(run, onsets_ms, length_ms: float, tau_ms: float = 20.0, every_ms: float = 5.0,
                       lead_in_ms: float = 100.0) -> np.ndarray:
    """Twin of :func:`analysis.features.trial_features` for one filter: exponentially filtered
    spike trains of every neuron, ``(trials, samples, N)``, sampled every ``every_ms`` from each
    onset, stepped one time step at a time (decay, then add ``1/tau`` per spike; filtering
    starts ``lead_in_ms`` before the onset)."""
    dt = run.dt_ms
    decay, jump = np.exp(-dt / tau_ms), 1.0 / tau_ms
    n_samples = int(round(length_ms / every_ms))
    every = max(1, int(round(every_ms / dt)))
    out = np.zeros((len(onsets_ms), n_samples, run.n_neurons))
    order = np.argsort(run.spike_times_ms, kind="stable")
    times, ids = run.spike_times_ms[order], run.spike_ids[order]
    for trial, onset in enumerate(onsets_ms):
        start = onset - lead_in_ms
        lo, hi = np.searchsorted(times, [start, onset + length_ms])
        steps = np.round((times[lo:hi] - start) / dt).astype(int)
        bounds = np.searchsorted(steps, np.arange(int(round((length_ms + lead_in_ms) / dt)) + 1))
        state = np.zeros(run.n_neurons)
        lead = int(round(lead_in_ms / dt))
        for s in range(len(bounds) - 1):
            state *= decay
            fired = ids[lo + bounds[s]:lo + bounds[s + 1]]
            if fired.size:
                state[fired] += jump
            k = s - lead
            if k >= 0 and k % every == 0 and k // every < n_samples:
                out[trial, k // every] = state
    return out
