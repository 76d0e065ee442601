"""Slow NumPy twins of the protection kernels (``reservoir/rules/hlop.py``): lateral responses,
projection, the Hebbian/anti-Hebbian subspace rule, and the readouts with protection replayed
over a recorded raster (with task boundaries)."""
from __future__ import annotations

import numpy as np

from reservoir.rng import substream
from reservoir.rules.hlop import orthonormal_rows

from .naive_readouts import _fresh_statistics, naive_eligibility, naive_three_factor_update


def naive_lateral_responses(H, x, kind, steps, scale):
    """``y = H x`` (rate), its spiking estimate (a signed integrate-and-fire pair per row,
    reset by subtraction, simulated for ``steps`` sub-steps, from rest; ``spiking_half``: from
    half threshold), or the quantised shortcut."""
    drive = np.array([sum(h[f] * x[f] for f in range(x.size)) for h in H])
    if kind == "rate":
        return drive
    if scale is None or scale <= 0:
        scale = float(np.sqrt(np.sum(x ** 2)))
        if scale == 0:
            return np.zeros(len(H))
    level = np.clip(drive / scale, -1.0, 1.0)
    if kind == "quantised":
        return scale * np.round(level * steps) / steps
    out = np.zeros(len(H))
    for i, current in enumerate(level):
        membrane, count = (0.5 * np.sign(current) if current != 0 else -0.5) if kind == "spiking_half" else 0.0, 0
        for _ in range(steps):
            membrane += current
            if membrane >= 1.0:
                count, membrane = count + 1, membrane - 1.0
            elif membrane <= -1.0:
                count, membrane = count - 1, membrane + 1.0
        out[i] = scale * count / steps
    return out


def naive_project(row, H_old, kind="rate", steps=40, scale=4.0):
    """``row - H_old^T y(row)``."""
    if len(H_old) == 0:
        return row.copy()
    return row - H_old.T @ naive_lateral_responses(H_old, row, kind, steps, scale)


def naive_subspace_step(H, n_old, x, learning_rate, kind="rate", steps=40, scale=4.0, normalized=False):
    """``y = H x`` over all rows; the new rows (``n_old`` on) move by ``eta y_i (x - H^T y)``, with
    ``eta / |x - H_old^T y_old|^2`` when ``normalized``."""
    H = H.copy()
    y = naive_lateral_responses(H, x, kind, steps, scale)
    if normalized:
        power = float(np.sum((x - H[:n_old].T @ y[:n_old]) ** 2))
        if power == 0.0:
            return H
        learning_rate = learning_rate / power
    residual = x - H.T @ y
    H[n_old:] += learning_rate * np.outer(y[n_old:], residual)
    return H


def naive_protected_readouts(readouts, spike_steps, spike_ids, boundaries, n_steps, teacher):
    """The readouts (exponential traces, three-factor units, protection) replayed from their
    initial state over a raster; at each step in ``boundaries`` (before it), the task ends and
    the next begins with the lateral rows the engine drew (read from ``readouts`` afterwards).
    Returns outputs and final weights."""
    cfg, dt, n = readouts.config, readouts.dt_ms, readouts.n_neurons
    protection = readouts.protection
    kind = cfg.protection.lateral.kind
    if kind == "spiking" and cfg.protection.lateral.initial_membrane == "half_threshold":
        kind = "spiking_half"
    passes = cfg.protection.lateral.projection_passes if kind != "rate" else 1

    def project(row, H_old):
        """The projection in rounds, each with its share of the sub-steps."""
        for _ in range(passes):
            row = naive_project(row, H_old, kind, max(1, steps_l // passes), scale)
        return row
    steps_l, scale = cfg.protection.lateral.spiking_steps, cfg.protection.lateral.scale or 0.0
    decays = [np.exp(-dt / t.tau_ms) for t in cfg.traces]
    traces = np.zeros((len(decays), n))
    rule = readouts.three_factor
    weights = np.zeros_like(readouts.weights)
    eligibility = np.zeros_like(rule.eligibility)
    stats, bias, history = _fresh_statistics(rule), np.zeros_like(rule.bias), []
    bias_rate = rule.bias_learning_rate.copy()
    capacity = protection.lateral.shape[0]
    per_task = cfg.protection.neurons_per_task
    n_features = readouts.n_features

    def new_rows(task, H):
        """The random orthonormal rows (orthogonal to ``H``'s) the engine gives task ``task``'s new lateral neurons."""
        added = min(per_task, capacity - len(H))
        return orthonormal_rows(substream(readouts.seed, "hlop", task), added, n_features, avoid=H)

    signals = teacher.chunk(0, n_steps)
    by_step: dict[int, list[int]] = {}
    for s, i in zip(spike_steps, spike_ids):
        by_step.setdefault(int(s), []).append(int(i))
    H = new_rows(0, np.zeros((0, n_features)))
    n_old, n_rows, seen, task = 0, len(H), 0, 0
    hebbian_steps, task_mean = 0, np.zeros(n_features)
    centred = cfg.protection.hebbian_input == "centred"
    decay = cfg.protection.learning_rate_decay_steps
    per_window = cfg.protection.projection == "per_window"
    window_open, window_start = False, None

    def commit(weights, H_old):
        """The open window's update, projected out of the old rows' span."""
        for k in np.flatnonzero(protected):
            weights[k] = window_start[k] + project(weights[k] - window_start[k], H_old)
    outputs = []
    protected = protection.unit_protected
    set_protected = protection.set_protected
    for step in range(n_steps):
        if step in boundaries:
            if per_window and window_open:
                if n_old:
                    commit(weights, H[:n_old])
                window_open = False
            if centred and hebbian_steps and len(H) < capacity:  # the task's mean, less what the rows hold
                residual = task_mean - H.T @ (H @ task_mean)
                if np.linalg.norm(residual) > 1e-12 * max(np.linalg.norm(task_mean), 1e-300):
                    H = np.vstack([H, residual / np.linalg.norm(residual)])
            hebbian_steps, task_mean = 0, np.zeros(n_features)
            if cfg.protection.orthonormalize_at_merge:  # the new rows: old components out, then U V^T
                new = H[n_old:] - (H[n_old:] @ H[:n_old].T) @ H[:n_old]
                u, _, vt = np.linalg.svd(new, full_matrices=False)
                H = np.vstack([H[:n_old], u @ vt])
            n_old = len(H)
            bias_rate[protected] = 0.0
            task += 1
            H = np.vstack([H, new_rows(task, H)])
            n_rows = len(H)
        fired = by_step.get(step, [])
        for b, d in enumerate(decays):
            traces[b] = traces[b] * d
            traces[b, fired] += 1.0 / cfg.traces[b].tau_ms
        x = traces.ravel()
        z = weights @ x + bias
        naive_eligibility(eligibility, rule, x, z, stats)
        gated = bool(np.any(signals.gates[step][protected] != 0))
        if gated:
            if seen % cfg.protection.hebbian_every_steps == 0 and n_rows > n_old:
                hebbian_steps += 1
                eta = cfg.protection.learning_rate
                if decay:
                    eta = eta / (1.0 + (hebbian_steps - 1) / decay)
                task_mean = task_mean + (x - task_mean) / hebbian_steps
                H = naive_subspace_step(H, n_old, x - task_mean if centred else x, eta, kind, steps_l, scale,
                                        cfg.protection.normalize_learning_rate)
            seen += 1
        if per_window:
            if gated and not window_open:
                window_start, window_open = weights.copy(), True
            elif not gated and window_open:
                if n_old:
                    commit(weights, H[:n_old])
                window_open = False
        elif gated and n_old:
            for s in range(eligibility.shape[0]):
                if set_protected[s]:
                    eligibility[s] = project(eligibility[s], H[:n_old])
        history.append((z.copy(), eligibility.copy()))
        rule_view = rule._replace(bias_learning_rate=bias_rate)
        naive_three_factor_update(weights, z, signals.targets[step], signals.gates[step], rule.online_units,
                                  rule_view, eligibility, dt, bias, history)
        outputs.append(z.copy())
    return np.array(outputs), weights, bias, H
