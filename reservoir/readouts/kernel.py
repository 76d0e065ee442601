"""The per-step readout kernel, called by :func:`reservoir.kernels.simulate_chunk`.

The readouts' state travels as one :class:`ReadoutKernelState` of named bundles, each owned by
the piece that builds it: the trace bank (:mod:`.traces`), the units (:class:`UnitState`), the
rules' states (:class:`~reservoir.rules.three_factor.ThreeFactorState`,
:class:`~reservoir.rules.rls.RLSState`), the teacher's rows (:class:`.teacher.TeacherSignals`),
the output buffer and the consolidation store (:class:`.store.StoreBuffer`). Order within a step
(after spike detection): trace bank -> outputs ``z`` -> eligibility -> protection (Hebbian
step, projection of the eligibility) -> three-factor update -> RLS event -> output recording ->
window storage.

Two ways to run it, with the same arithmetic: :func:`readout_step`, the whole step on one
thread, and the three phases the multi-threaded kernel runs when neither protection nor RLS is
on (:func:`readouts_split`): :func:`readout_phase_own` (trace bank and the partial sums of
``w . x`` over a thread's own work blocks), :func:`readout_phase_serial` (outputs, the
once-per-step decisions, recording) and :func:`readout_phase_features` (eligibility, weight
updates and window storage over a thread's own features).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..rules.hlop import ProtectionState, protection_step
from ..rules.rls import RLSState, rls_update_fused
from ..parallel import WORK_BLOCK_NEURONS
from ..rules.three_factor import (ThreeFactorState, advance_statistics, block_dot, eligibility_range, open_statistics,
                                  plan_updates, readout_value, three_factor_step, update_eligibility, updates_range)
from .store import StoreBuffer
from .teacher import TeacherSignals
from .traces import TraceBankState, trace_bank_range, trace_bank_step


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
    clip = rule.factor_clip
    online_units, bias, statistics_weight = rule.online_units, rule.bias, rule.statistics_weight
    targets, gates, learn, store_rows = teacher.targets, teacher.gates, teacher.learn, teacher.store
    out_steps, out_z = outputs.steps, outputs.z
    stored_steps, stored_features, stored_eligibility = store.steps, store.features, store.eligibility
    trace_bank_step(bank, fired, n_fired, dt_ms)
    n_banks, n = bank.traces.shape
    features = bank.traces.reshape(n_banks * n)
    n_units = weights.shape[0]
    for k in range(n_units):
        z[k] = readout_value(weights[k], features, bias[k], rectify[k], n)
        if not abs(z[k]) < 1e300:  # NaN or inf (or about to overflow in the update)
            return n_out, n_stored, k
    if eligibility.shape[0] > 0:
        open_statistics(rule.statistics_unit, gates[step], rule.statistics_open)
        update_eligibility(eligibility, eligibility_decay, eligibility_post, features, z, feature_mean, feature_power,
                           mean_decay, statistics_weight, centre, floor, clip, rule.statistics_open)
        if protection.method != 0:
            protection_step(protection, features, eligibility, gates[step], weights)
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
        for k in range(n_units):
            store.outputs[n_stored, k] = z[k]
        row = eligibility[store.eligibility_set] if store.eligibility_set >= 0 else features
        for f in range(features.shape[0]):
            stored_features[n_stored, f] = features[f]
            stored_eligibility[n_stored, f] = row[f]
        n_stored += 1
    return n_out, n_stored, bad_unit


@njit(cache=True, inline="always")
def readouts_split(readouts):
    """Whether the readouts run in the three phases of the multi-threaded kernel (neither
    protection nor RLS units: both need every feature at once within the step)."""
    return readouts.active and readouts.protection.method == 0 and readouts.rls.unit_stop == readouts.rls.unit_start


@njit(cache=True, inline="always")
def readout_phase_own(bank, weights, fired, first, n_fired, start, stop, dt_ms, partial):
    """A thread's share of a step's first phase: the trace bank of its neurons ``[start, stop)``
    (whole work blocks; ``fired[first:first + n_fired]`` their spikes), and each unit's partial
    sums of ``w . x`` over those blocks, into ``partial[k, bank * n_blocks + block]``."""
    trace_bank_range(bank, fired, first, n_fired, start, stop, dt_ms)
    n_banks, n = bank.traces.shape
    features = bank.traces.reshape(n_banks * n)
    blocks_per_bank = partial.shape[1] // n_banks
    for k in range(weights.shape[0]):
        row = weights[k]
        for b in range(n_banks):
            for block_start in range(start, stop, WORK_BLOCK_NEURONS):
                block_stop = min(block_start + WORK_BLOCK_NEURONS, stop)
                segment = b * blocks_per_bank + block_start // WORK_BLOCK_NEURONS
                partial[k, segment] = block_dot(row, features, b * n + block_start, b * n + block_stop)


@njit(cache=True, inline="always")
def readout_phase_serial(step, global_step, dt_ms, units, rule, teacher, outputs, store, partial, n_out, n_stored):
    """The once-per-step part, on one thread between the two parallel phases: outputs ``z`` from
    the partial sums (in :func:`readout_value`'s order), the statistics' step weight, the
    three-factor plan (:func:`plan_updates`), output recording and the storage decision.

    Returns ``(n_out, n_stored, bad_unit, slot_now, store_row)``: ``bad_unit`` as in
    :func:`readout_step`, ``slot_now`` the eligibility ring slot of this step (-1: none) and
    ``store_row`` the store row this step's features go to (-1: not stored)."""
    weights, z, rectify = units.weights, units.z, units.rectify
    bias = rule.bias
    n_units = weights.shape[0]
    for k in range(n_units):
        total = 0.0
        for segment in range(partial.shape[1]):
            total += partial[k, segment]
        total = total + bias[k]
        if rectify[k] and total < 0.0:
            total = 0.0
        z[k] = total
        if not abs(z[k]) < 1e300:
            return n_out, n_stored, k, -1, -1
    if rule.eligibility.shape[0] > 0:
        open_statistics(rule.statistics_unit, teacher.gates[step], rule.statistics_open)
        advance_statistics(rule.eligibility_decay, rule.mean_decay, rule.statistics_weight, rule.statistics_open)
    slot_now = -1
    if rule.online_units.shape[0] > 0:
        slot_now = plan_updates(z, teacher.targets[step], teacher.gates[step], rule.online_units, rule, dt_ms, rule.unit_scale,
                                rule.unit_slot)
    if global_step % outputs.every_steps == 0:
        outputs.steps[n_out] = global_step
        for k in range(n_units):
            outputs.z[n_out, k] = z[k]
        n_out += 1
    store_row = -1
    if teacher.store[step] and n_stored < store.steps.shape[0]:
        store.steps[n_stored] = global_step
        for k in range(n_units):
            store.outputs[n_stored, k] = z[k]
        store_row = n_stored
        n_stored += 1
    return n_out, n_stored, -1, slot_now, store_row


@njit(cache=True, inline="always")
def readout_phase_features(bank, units, rule, store, start, stop, dt_ms, slot_now, store_row):
    """A thread's share of a step's last readout phase, over its neurons' features ``[start,
    stop)`` in every bank: eligibility (:func:`eligibility_range`), the planned weight updates
    (:func:`updates_range`) and the stored row."""
    n_banks, n = bank.traces.shape
    features = bank.traces.reshape(n_banks * n)
    eligibility = rule.eligibility
    for b in range(n_banks):
        lo, hi = b * n + start, b * n + stop
        if eligibility.shape[0] > 0:
            eligibility_range(eligibility, rule.eligibility_decay, rule.eligibility_post, features, units.z,
                              rule.feature_mean, rule.feature_power, rule.mean_decay, rule.statistics_weight,
                              rule.centre, rule.normalize_floor, rule.factor_clip, rule.statistics_open, lo, hi)
        if rule.online_units.shape[0] > 0:
            updates_range(units.weights, rule, dt_ms, rule.online_units, rule.unit_scale, rule.unit_slot, slot_now, lo, hi)
        if store_row >= 0:
            row = eligibility[store.eligibility_set] if store.eligibility_set >= 0 else features
            source, tags = features[lo:hi], row[lo:hi]
            kept, kept_tags = store.features[store_row, lo:hi], store.eligibility[store_row, lo:hi]
            for f in range(hi - lo):
                kept[f] = source[f]
                kept_tags[f] = tags[f]
