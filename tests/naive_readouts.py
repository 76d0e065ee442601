"""Slow NumPy twins of the readout kernel (``reservoir/readouts/kernel.py``) and of the
three-factor rule's stand-alone loop (``reservoir.rules.three_factor.online_rows``).

The readout twin replays the readouts over a recorded spike raster: without feedback the
readouts do not act on the network, so the engine's own spikes are a valid input. Outputs are
plain dot products (the kernel sums in eight interleaved partial sums), so agreement is to
rounding.
"""
from __future__ import annotations

import numpy as np

from reservoir.readouts import Readouts

from .naive_rls import naive_rls_step


def naive_gate(k, window_gate, error, gate_kind, threshold, group_of, z):
    """The three-factor gate of unit ``k`` (window, surprise or selective)."""
    gate = window_gate
    if gate_kind == 1 and not abs(error) > threshold:
        gate = 0.0
    if gate_kind == 2:
        group = np.flatnonzero(group_of == group_of[k])
        winner = group[np.argmax(z[group])]  # ties: the lowest index
        gate = gate if winner == k else 0.0
    return gate


def naive_three_factor_update(weights, z, targets_row, gates_row, units, rule, eligibility, dt, bias=None,
                              history=None):
    """``w_k += eta g (y - z) E dt``, then decay and bounds, and ``b_k += eta_b g (y - z) dt``
    (into ``bias``, if given), for each listed unit. With ``history`` (a list of the ``(z, E)``
    of every step since the last reset, this one last), a unit with a prediction lead of ``h``
    steps uses the ``z`` and ``E`` of ``h`` steps back (zero before the reset)."""
    for k in units:
        z_used, e_used = z, eligibility
        if history is not None and rule.lead_steps[k] > 0:
            back = len(history) - 1 - rule.lead_steps[k]
            z_used, e_used = history[back] if back >= 0 else (np.zeros_like(z), np.zeros_like(eligibility))
        error = targets_row[k] - z_used[k]
        gate = naive_gate(k, gates_row[k], error, rule.gate_kind[k], rule.surprise_threshold[k], rule.group_of, z)
        if gate:
            new = weights[k] + rule.learning_rate[k] * gate * error * dt * e_used[rule.eligibility_of[k]]
            new = new - rule.weight_decay_per_ms[k] * dt * weights[k]
            weights[k] = np.clip(new, rule.weight_min[k], rule.weight_max[k])
            if bias is not None:
                bias[k] += rule.bias_learning_rate[k] * gate * error * dt


def naive_eligibility(eligibility, rule, x, z, stats=None, gates_row=None):
    """Eligibility of every set; with ``stats`` (a dict of lists, per set, of the running mean,
    variance and step count, updated here) the presynaptic factor is centred and/or normalised
    as the set asks, with exact (unbiased) exponentially weighted averages. Gated statistics
    (``statistics_unit[s] >= 0``) take the step only where ``gates_row`` opens that unit."""
    for s in range(eligibility.shape[0]):
        h = z[rule.eligibility_post[s]] if rule.eligibility_post[s] >= 0 else 1.0
        u = x
        if stats is not None and rule.mean_decay[s] < 1.0:
            a = rule.mean_decay[s]
            unit = rule.statistics_unit[s]
            if unit < 0 or gates_row[unit] > 0:
                stats["n"][s] += 1
                stats["sum_x"][s] = a * stats["sum_x"][s] + x
                total = sum(a ** j for j in range(stats["n"][s]))  # the weights of the steps seen, summed
                stats["sum_d2"][s] = a * stats["sum_d2"][s] + (x - stats["sum_x"][s] / total) ** 2
            total = sum(a ** j for j in range(stats["n"][s]))
            mean = stats["sum_x"][s] / total if total > 0 else 0.0 * x  # nothing seen yet: zero statistics
            variance = stats["sum_d2"][s] / total if total > 0 else 0.0 * x
            u = x - mean if rule.centre[s] else x
            if rule.factor_clip[s] > 0:  # saturation of the centred factor
                bound = rule.factor_clip[s] * np.sqrt(variance)
                u = np.clip(x - mean, -bound, bound)
            if rule.normalize_floor[s] > 0:
                u = u / (rule.normalize_floor[s] + variance)
        eligibility[s] = eligibility[s] * rule.eligibility_decay[s] + (1 - rule.eligibility_decay[s]) * h * u


def _fresh_statistics(rule):
    n_sets, n_features = rule.eligibility.shape
    return {"n": [0] * n_sets, "sum_x": [np.zeros(n_features) for _ in range(n_sets)],
            "sum_d2": [np.zeros(n_features) for _ in range(n_sets)]}


def naive_readouts(readouts: Readouts, spike_steps, spike_ids, n_steps, teacher):
    """Run fresh copies of ``readouts``' initial state over a raster; returns outputs, weights, P."""
    cfg = readouts.config
    n = readouts.n_neurons
    dt = readouts.dt_ms
    banks = [t.synaptic_filter().coefficients(dt) for t in cfg.traces]
    kinds = [t.kind for t in cfg.traces]
    traces = np.zeros((len(banks), n))
    aux = np.zeros((len(banks), n))
    weights = readouts.weights.copy()
    rule = readouts.three_factor
    eligibility = np.zeros_like(rule.eligibility)
    stats, bias, history = _fresh_statistics(rule), np.zeros_like(rule.bias), []
    P = np.eye(readouts.n_features) / readouts.rls_config.alpha if readouts.rls_config else None
    signals = teacher.chunk(0, n_steps)
    outputs = []
    by_step = {}
    for s, i in zip(spike_steps, spike_ids):
        by_step.setdefault(int(s), []).append(int(i))
    for step in range(n_steps):
        fired = by_step.get(step, [])
        for b, (kind, (d1, d2, jump)) in enumerate(zip(kinds, banks)):
            if kind == "exponential":
                traces[b] = traces[b] * d1
                traces[b, fired] += jump
            else:
                traces[b] = traces[b] * d1 + aux[b] * dt
                aux[b] = aux[b] * d2
                aux[b, fired] += jump
        x = traces.ravel()
        z = weights @ x + bias
        z = np.where(readouts.rectify & (z < 0), 0.0, z)
        naive_eligibility(eligibility, rule, x, z, stats, signals.gates[step])
        history.append((z.copy(), eligibility.copy()))
        naive_three_factor_update(weights, z, signals.targets[step], signals.gates[step], rule.online_units, rule,
                                  eligibility, dt, bias, history)
        if P is not None and signals.learn[step] and step % readouts.rls_config.learn_every_steps == 0:
            units = readouts.rls_units
            P, new_w, _ = naive_rls_step(P, weights[units], x, signals.targets[step, units],
                                         readouts.rls_config.forgetting, readouts.rls_config.decoder_form)
            weights[units] = new_w
        outputs.append(z.copy())
    return np.array(outputs), weights, P, bias


def naive_online_rows(learner, X, Y, gates=None):
    """Twin of :meth:`ThreeFactorReadout.fit` (from zero weights, traces and statistics):
    outputs per row, final weights, final biases."""
    from reservoir.rules.three_factor import three_factor_state

    n_outputs = Y.shape[1]
    rule = three_factor_state([learner.config] * n_outputs, np.zeros(n_outputs, dtype=np.int64), X.shape[1],
                              learner.dt_ms)
    weights = np.zeros((n_outputs, X.shape[1]))
    eligibility = np.zeros_like(rule.eligibility)
    stats, bias, history = _fresh_statistics(rule), np.zeros_like(rule.bias), []
    gates = np.ones_like(Y) if gates is None else np.broadcast_to(gates, Y.shape)
    outputs = []
    for x, y, g in zip(X, Y, gates):
        z = weights @ x + bias
        z = np.maximum(z, 0.0) if learner.rectify else z
        naive_eligibility(eligibility, rule, x, z, stats, g)
        history.append((z.copy(), eligibility.copy()))
        naive_three_factor_update(weights, z, y, g, rule.online_units, rule, eligibility, learner.dt_ms, bias, history)
        outputs.append(z)
    return np.array(outputs), weights, bias
