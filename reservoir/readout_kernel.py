"""The per-step readout kernel, called by :func:`reservoir.kernels.simulate_chunk`.

All readout state travels as one tuple (:meth:`reservoir.readouts.Readouts.kernel_state`), so
the network kernel's signature does not grow with every rule. Order within a step (after spike
detection): trace bank -> outputs ``z`` -> eligibility -> three-factor update -> RLS event ->
output recording -> window storage.
"""
from __future__ import annotations

from numba import njit

from .rules.rls import rls_update_fused
from .rules.three_factor import readout_value, three_factor_step, update_eligibility


@njit(cache=True)
def readout_step(step, global_step, dt_ms, fired, n_fired, ro, n_out, n_stored):
    """Advance every readout by one step; returns ``(n_out, n_stored, bad_unit)``.

    ``bad_unit`` is -1 when all is well, the index of the first unit whose output ``z`` is not
    finite (a learning rate too large for the features), or ``n_units`` when an RLS event
    produced a non-finite ``lambda + r^T P r``.
    """
    (traces, traces_aux, trace_kind, trace_decay1, trace_decay2, trace_jump,
     weights, z, rectify, online_units, learning_rate, gate_kind, threshold, group_of, w_min, w_max,
     weight_decay, eligibility, eligibility_decay, eligibility_post, eligibility_of,
     targets, gates, learn, store,
     rls_lo, rls_hi, P, pending_pr, pending_coefficients, rls_every, forgetting, decoder_form, rls_scratch,
     rls_errors, out_every, out_steps, out_z, stored_features, stored_eligibility, stored_steps, store_set) = ro
    n_banks, n = traces.shape
    for b in range(n_banks):
        d1 = trace_decay1[b]
        if trace_kind[b] == 1:
            for i in range(n):
                traces[b, i] = traces[b, i] * d1
            for f in range(n_fired):
                traces[b, fired[f]] += trace_jump[b]
        else:
            d2 = trace_decay2[b]
            for i in range(n):
                traces[b, i] = traces[b, i] * d1 + traces_aux[b, i] * dt_ms
                traces_aux[b, i] = traces_aux[b, i] * d2
            for f in range(n_fired):
                traces_aux[b, fired[f]] += trace_jump[b]
    features = traces.reshape(n_banks * n)
    n_units = weights.shape[0]
    for k in range(n_units):
        z[k] = readout_value(weights[k], features, rectify[k])
        if not abs(z[k]) < 1e300:  # NaN or inf (or about to overflow in the update)
            return n_out, n_stored, k
    if eligibility.shape[0] > 0:
        update_eligibility(eligibility, eligibility_decay, eligibility_post, features, z)
    if online_units.shape[0] > 0:
        three_factor_step(weights, z, targets[step], gates[step], online_units, learning_rate, gate_kind, threshold,
                          group_of, w_min, w_max, weight_decay, eligibility, eligibility_of, dt_ms)
    bad_unit = -1
    if rls_hi > rls_lo and learn[step] and global_step % rls_every == 0:
        for j in range(rls_hi - rls_lo):
            rls_errors[j] = z[rls_lo + j] - targets[step, rls_lo + j]
        c = rls_update_fused(P, pending_pr, pending_coefficients, features, weights[rls_lo:rls_hi],
                             rls_errors[: rls_hi - rls_lo], forgetting, decoder_form, rls_scratch)
        if not abs(c) < 1e300:
            bad_unit = n_units
    if global_step % out_every == 0:
        out_steps[n_out] = global_step
        for k in range(n_units):
            out_z[n_out, k] = z[k]
        n_out += 1
    if store[step] and n_stored < stored_steps.shape[0]:
        stored_steps[n_stored] = global_step
        row = eligibility[store_set] if store_set >= 0 else features
        for f in range(features.shape[0]):
            stored_features[n_stored, f] = features[f]
            stored_eligibility[n_stored, f] = row[f]
        n_stored += 1
    return n_out, n_stored, bad_unit
