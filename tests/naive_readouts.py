"""Slow NumPy twin of the readout kernel (``reservoir/readout_kernel.py``) and the replay.

It replays the readouts over a recorded spike raster: without feedback the readouts do not
act on the network, so the engine's own spikes are a valid input. Outputs are plain dot
products (the kernel sums in eight interleaved partial sums), so agreement is to rounding.
"""
from __future__ import annotations

import numpy as np

from reservoir.readouts import Readouts

from .naive_rls import naive_rls_step


def naive_readouts(readouts: Readouts, spike_steps, spike_ids, n_steps, teacher):
    """Run fresh copies of ``readouts``' initial state over a raster; returns outputs, weights, P."""
    cfg = readouts.config
    n = readouts.n_neurons
    dt = readouts.dt_ms
    banks = [t.coefficients(dt) for t in cfg.traces]
    traces = np.zeros((len(banks), n))
    aux = np.zeros((len(banks), n))
    weights = readouts.weights.copy()
    eligibility = np.zeros_like(readouts.eligibility)
    P = np.eye(readouts.n_features) / readouts.rls_config.alpha if readouts.rls_config else None
    signals = teacher.chunk(0, n_steps)
    outputs = []
    by_step = {}
    for s, i in zip(spike_steps, spike_ids):
        by_step.setdefault(int(s), []).append(int(i))
    for step in range(n_steps):
        fired = by_step.get(step, [])
        for b, (kind, d1, d2, jump) in enumerate(banks):
            if kind == 1:
                traces[b] = traces[b] * d1
                traces[b, fired] += jump
            else:
                traces[b] = traces[b] * d1 + aux[b] * dt
                aux[b] = aux[b] * d2
                aux[b, fired] += jump
        x = traces.ravel()
        z = weights @ x
        z = np.where(readouts.rectify & (z < 0), 0.0, z)
        for s in range(eligibility.shape[0]):
            h = z[readouts.eligibility_post[s]] if readouts.eligibility_post[s] >= 0 else 1.0
            eligibility[s] = eligibility[s] * readouts.eligibility_decay[s] + (1 - readouts.eligibility_decay[s]) * h * x
        for k in readouts.online_units:
            error = signals.targets[step, k] - z[k]
            gate = signals.gates[step, k]
            if readouts.gate_kind[k] == 1 and not abs(error) > readouts.threshold[k]:
                gate = 0.0
            if readouts.gate_kind[k] == 2:
                group = np.flatnonzero(readouts.group_of == readouts.group_of[k])
                winner = group[np.argmax(z[group])]
                gate = gate if winner == k else 0.0
            if gate:
                new = weights[k] + readouts.learning_rate[k] * gate * error * dt * eligibility[readouts.eligibility_of[k]]
                new = new - readouts.weight_decay[k] * dt * weights[k]
                weights[k] = np.clip(new, readouts.w_min[k], readouts.w_max[k])
        if P is not None and signals.learn[step] and step % readouts.rls_every == 0:
            units = readouts.rls_units
            form = readouts.rls_config.decoder_form
            P, new_w, _ = naive_rls_step(P, weights[units], x, signals.targets[step, units],
                                         readouts.rls_forgetting, form)
            weights[units] = new_w
        outputs.append(z.copy())
    return np.array(outputs), weights, P
