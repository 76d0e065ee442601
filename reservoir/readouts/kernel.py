"""The per-step readout kernel, called by :func:`reservoir.kernels.simulate_chunk`.

The readouts' state travels as one :class:`ReadoutKernelState` of named bundles, each owned by
the piece that builds it: the trace bank (:mod:`.traces`), the units (:class:`UnitState`), the
rules' states (:class:`~reservoir.rules.three_factor.ThreeFactorState`,
:class:`~reservoir.rules.rls.RLSState`), the teacher's rows (:class:`.teacher.TeacherSignals`),
the output buffer and the consolidation store (:class:`.store.StoreBuffer`). Order within a step
(after spike detection): trace bank -> outputs ``z`` -> eligibility -> three-factor update ->
protection (Hebbian step, projection of the eligibility) -> RLS event -> output recording ->
window storage.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..rules.hlop import ProtectionState, protection_step
from ..rules.rls import RLSState, rls_update_fused
from ..rules.three_factor import ThreeFactorState, readout_value, three_factor_step, update_eligibility
from .store import StoreBuffer
from .teacher import TeacherSignals
from .traces import TraceBankState, trace_bank_step


class UnitState(NamedTuple):
    """The readout units: weights ``(K, F)``, current outputs ``z`` (K), rectification, and the
    feedback encoders ``(N, K)`` (``(0, K)`` without feedback)."""

    weights: np.ndarray
    z: np.ndarray
    rectify: np.ndarray
    feedback_encoders: np.ndarray


class OutputBuffer(NamedTuple):
    """Decimated outputs of a chunk: every ``every_steps`` steps, the step and ``z``."""

    every_steps: int
    steps: np.ndarray
    z: np.ndarray


class ReadoutKernelState(NamedTuple):
    """Everything the readouts need inside the compiled loop (``active`` False: no readouts)."""

    active: bool
    bank: TraceBankState
    units: UnitState
    three_factor: ThreeFactorState
    rls: RLSState
    teacher: TeacherSignals
    """Rows from this kernel call's first step."""
    outputs: OutputBuffer
    store: StoreBuffer
    protection: ProtectionState
    """Orthogonal protection of the three-factor updates (HLOP or the SVD reference; inert when off)."""


@njit(cache=True)
def readout_step(step, global_step, dt_ms, fired, n_fired, bank, units, rule, rls, teacher, outputs, store, protection,
                 n_out, n_stored):
    """Advance every readout by one step; returns ``(n_out, n_stored, bad_unit)``.

    The bundles are those of a :class:`ReadoutKernelState` (``rule`` its ``three_factor``),
    passed one by one: handing the nested bundle itself to this call at every step cost about
    0.5 us per step (7 % of a step of the learning benchmark's network, in a one-process
    comparison). ``step`` indexes the teacher's rows, ``global_step`` is the run's step.
    ``bad_unit`` is -1 when all is well, the index of the first unit whose output ``z`` is not finite (a learning
    rate too large for the features), or the number of units when an RLS event produced a
    non-finite ``lambda + r^T P r``.
    """
    # Every array is taken out of the bundles here, once: taking them out where they are used
    # cost about 0.3 us per step (10 % of the readouts, in a one-process comparison).
    weights, z, rectify = units.weights, units.z, units.rectify
    eligibility, eligibility_decay, eligibility_post = rule.eligibility, rule.eligibility_decay, rule.eligibility_post
    feature_mean, feature_power, mean_decay, centre, floor = (rule.feature_mean, rule.feature_power, rule.mean_decay,
                                                              rule.centre, rule.normalize_floor)
    online_units, bias, statistics_weight = rule.online_units, rule.bias, rule.statistics_weight
    targets, gates, learn, store_rows = teacher.targets, teacher.gates, teacher.learn, teacher.store
    out_steps, out_z = outputs.steps, outputs.z
    stored_steps, stored_features, stored_eligibility = store.steps, store.features, store.eligibility
    trace_bank_step(bank, fired, n_fired, dt_ms)
    n_banks, n = bank.traces.shape
    features = bank.traces.reshape(n_banks * n)
    n_units = weights.shape[0]
    for k in range(n_units):
        z[k] = readout_value(weights[k], features, bias[k], rectify[k])
        if not abs(z[k]) < 1e300:  # NaN or inf (or about to overflow in the update)
            return n_out, n_stored, k
    if eligibility.shape[0] > 0:
        update_eligibility(eligibility, eligibility_decay, eligibility_post, features, z, feature_mean, feature_power,
                           mean_decay, statistics_weight, centre, floor)
        if protection.method != 0:
            protection_step(protection, features, eligibility, gates[step])
    if online_units.shape[0] > 0:
        three_factor_step(weights, z, targets[step], gates[step], online_units, rule, dt_ms)
    bad_unit = -1
    lo, hi = rls.unit_start, rls.unit_stop
    if hi > lo and learn[step] and global_step % rls.learn_every_steps == 0:
        errors = rls.errors
        for j in range(hi - lo):
            errors[j] = z[lo + j] - targets[step, lo + j]
        c = rls_update_fused(rls.P, rls.pending_pr, rls.pending_coefficients, features, weights[lo:hi],
                             errors[: hi - lo], rls.forgetting, rls.decoder_form, rls.pr_scratch)
        if not abs(c) < 1e300:
            bad_unit = n_units
    if global_step % outputs.every_steps == 0:
        out_steps[n_out] = global_step
        for k in range(n_units):
            out_z[n_out, k] = z[k]
        n_out += 1
    if store_rows[step] and n_stored < stored_steps.shape[0]:
        stored_steps[n_stored] = global_step
        row = eligibility[store.eligibility_set] if store.eligibility_set >= 0 else features
        for f in range(features.shape[0]):
            stored_features[n_stored, f] = features[f]
            stored_eligibility[n_stored, f] = row[f]
        n_stored += 1
    return n_out, n_stored, bad_unit
