"""Slow, obviously correct NumPy twins of the compiled kernels (STUMPY's ``naive.py`` idea).

Each function mirrors one kernel's per-step order with plain vector operations and loops, so
agreement tests can demand bit-identical results.
"""
from __future__ import annotations

import numpy as np


def naive_simulate(network, n_steps, external_per_channel=None, noise=None, trace_ids=(), trace_every=1):
    """Twin of :func:`reservoir.kernels.simulate_chunk` for a whole run from the initial state.

    Parameters
    ----------
    network : reservoir.network.Network
    n_steps : int
    external_per_channel : ExternalInput or None
    noise : ndarray (n_steps, n) of standard normals, or None (noise off)

    Returns
    -------
    dict with spike_steps, spike_ids, v, u, filter_state, filter_aux, slow_filter_state, trace_steps,
    trace_v, trace_u
    """
    nrn = network.neurons
    n = nrn.n_neurons
    weights = network.connectivity.to_dense()  # (pre, post)
    v = nrn.v_initial_mV.copy()
    u = nrn.u_initial.copy()
    s = np.zeros(n)
    h = np.zeros(n)
    slow_s = np.zeros(n)  # the slow synapses' filter (network.slow_connectivity)
    has_slow = network.slow_connectivity is not None
    slow_weights = network.slow_connectivity.to_dense() if has_slow else None
    slow_decay, _, slow_jump = network.slow_filter().coefficients(network.dt_ms)
    decay1, decay2, jump = network.synapse.coefficients(network.dt_ms)
    dt = network.dt_ms
    q2, q1, q0 = nrn.quadratic_coefficients.T
    spike_steps, spike_ids, trace_steps, trace_v, trace_u = [], [], [], [], []
    trace_ids = np.asarray(trace_ids, dtype=int)

    def dv_dt(v, u, current):
        if nrn.model == "izhikevich2003":
            return q2 * v * v + q1 * v + q0 - u + current
        return (nrn.k * (v - nrn.v_rest_mV) * (v - nrn.v_threshold_mV) - u + current) / nrn.capacitance_pF

    def du_dt(v, u):
        return nrn.a * (nrn.b * (v - nrn.u_reference_mV) - nrn.u_leak * u)

    for step in range(n_steps):
        if trace_ids.size and step % trace_every == 0:
            trace_steps.append(step)
            trace_v.append(v[trace_ids].copy())
            trace_u.append(u[trace_ids].copy())
        fired = np.flatnonzero(v >= nrn.v_peak_mV)
        spike_steps.extend([step] * fired.size)
        spike_ids.extend(fired.tolist())
        v[fired] = nrn.c[fired]
        u[fired] = u[fired] + nrn.d[fired]
        syn_in = np.zeros(n)
        slow_in = np.zeros(n)
        for j in fired:  # ascending spiker order, as the kernel
            syn_in = syn_in + weights[j]
            if has_slow:
                slow_in = slow_in + slow_weights[j]
        if network.synapse.kind == "delta":
            current = syn_in.copy()
        elif network.synapse.kind == "exponential":
            s = s * decay1 + syn_in * jump
            current = s.copy()
        else:
            s = s * decay1 + h * dt
            h = h * decay2 + syn_in * jump
            current = s.copy()
        if has_slow:  # I_syn = I_fast + I_slow
            slow_s = slow_s * slow_decay + slow_in * slow_jump
            current = current + slow_s
        if noise is not None:
            current = network.noise_std * noise[step] + current + network.bias
        else:
            current = current + network.bias
        if external_per_channel is not None:
            ext = external_per_channel
            row = ext.chunk(step, 1)[0]
            for ch in range(ext.n_channels):
                if row[ch] != 0.0:
                    for k in range(ext.indptr[ch], ext.indptr[ch + 1]):
                        current[ext.indices[k]] += ext.gains[k] * row[ch]
        if network.scheme == "euler":
            dv = dv_dt(v, u, current)
            du = du_dt(v, u)
            v = v + dt * dv
            u = u + dt * du
        elif network.scheme == "izhikevich2003":
            v = v + 0.5 * dt * dv_dt(v, u, current)
            v = v + 0.5 * dt * dv_dt(v, u, current)
            u = u + dt * du_dt(v, u)
        else:
            v = v + dt * dv_dt(v, u, current)
            u = u + dt * du_dt(v, u)
        bad = ~(np.isfinite(v) & np.isfinite(u))
        if bad.any():
            return {"blowup": (int(np.flatnonzero(bad)[0]), step)}
    return {
        "spike_steps": np.array(spike_steps, dtype=np.int64), "spike_ids": np.array(spike_ids, dtype=np.int64),
        "v": v, "u": u, "filter_state": s, "filter_aux": h, "slow_filter_state": slow_s,
        "trace_steps": np.array(trace_steps, dtype=np.int64), "trace_v": np.array(trace_v), "trace_u": np.array(trace_u),
    }
