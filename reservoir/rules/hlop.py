"""Orthogonal protection of plastic readout weights across tasks: HLOP and an exact SVD reference.

**HLOP** (Hebbian learning based orthogonal projection; Xiao, Meng, Zhang, He & Lin, ICLR 2024,
arXiv:2402.11984). Lateral neurons with weights ``H`` (``M x F``) read the presynaptic activity
``x`` of a plastic matrix ``W`` (here the readouts' features): ``y = H x``. Their feedback
``-H^T y`` reaches the presynaptic side of the plasticity only, so the signal that the weight
update sees is ``x - H^T H x``: when ``H``'s rows span the earlier tasks' activity, the update
``dW = delta (x - H^T H x)^T`` leaves ``W x_old`` unchanged. The forward output is untouched.

``H`` learns by the Hebbian/anti-Hebbian subspace rule (Oja, J Math Biol 1982; Oja 1989)::

    dH = eta * y (x - H^T y)^T,      y = H x

whose stable fixed points are orthonormal rows spanning the top principal subspace of the
uncentred ``E[x x^T]``. Across tasks (the paper's growth scheme): before task ``t``,
``neurons_per_task`` new lateral neurons start from random orthonormal weights; during the task
all lateral neurons take part in the response and the feedback, only the new ones change, and
the projection uses only the old (frozen) ones; at the task's end the new neurons join the old.
Task 0: Hebbian learning on, projection off. The new rows therefore converge to the principal
subspace of the part of task ``t``'s activity that the old rows do not already cover.

What the projection acts on, in this engine (the project's choice, ``docs/design-choices.md``):
the three-factor rule's update is ``eta g eps E`` with ``E`` the eligibility, a low-pass filter
of the presynaptic factor ``u``. Each step the eligibility rows of protected units are replaced
by ``E - H_old^T (H_old E)``: with ``H`` fixed during a task this equals filtering the projected
factor, which is the spec's "presynaptic signal seen by plasticity". The lateral neurons learn
from the features ``x`` the readout's output reads (uncentred), so ``(I - H^T H) E . x_old = 0``
whatever ``u`` is made of (centred, variance-normalised): the old outputs are what is kept. A
learned bias moves every output, old tasks' included, so protected units' biases stop learning
at the end of the first task. The Hebbian steps are those where a protected unit's gate is open
(the activity the readout learns from), every ``hebbian_every_steps``.

Lateral neurons come in three kinds (``lateral.kind``):

``rate``       ``y = H x``.
``spiking``    integrate-and-fire neurons simulated for ``spiking_steps`` sub-steps, driven by
               ``clip(H x / s, -1, 1)``, reset by subtraction, with a positive and a negative
               threshold (a signed pair); ``y = s * spike count / spiking_steps``. Every
               response (Hebbian update and projection) goes through these neurons. The scale
               ``s`` is ``lateral.scale``, or by default the norm of the input (divisive
               normalisation): the eligibility that the projection acts on is orders of
               magnitude smaller than the features the Hebbian step sees, so one fixed scale
               leaves the projection below one spike.
``quantised``  the reference code's shortcut for them: ``y = scale * round(clip(H x / scale, -1,
               1) * steps) / steps``.

Why this module is long (575 lines): it holds one mechanism whole, config, compiled state,
kernels (responses, projection, subspace rule, window commit) and the between-task steps, whose
pieces share the state's layout; the NumPy twin in ``tests/naive_hlop.py`` mirrors it. The config
classes could move to a module of their own (issue 23).

**SVD reference** (``method = "svd"``, like GPM: Saha, Garg & Roy, ICLR 2021): every
``svd_sample_every_steps`` gated step the features' outer product enters a task's second-moment
matrix ``C``; at the task's end the residual ``(I - B^T B) C (I - B^T B)`` is diagonalised and
its top eigenvectors join the basis ``B`` until the basis holds ``energy_threshold`` of the
task's activity energy (GPM's criterion). The projection is the same as HLOP's.
"""
from __future__ import annotations

from typing import Literal, NamedTuple, Sequence

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field

METHOD_CODES = {"none": 0, "hlop": 1, "svd": 2}
REASSOCIATE = {"reassoc", "contract"}
"""The lateral neurons' dot products may be reordered and vectorised (no assumption about NaN or
inf is made, so the finiteness checks hold); the order is fixed by the compiled code, so a run
is still bit-identical to itself on the same machine."""
LATERAL_CODES = {"rate": 0, "spiking": 1, "quantised": 2}
SPIKING_FROM_HALF_THRESHOLD = 3
"""The kernels' code for ``spiking`` neurons that start each response at half threshold."""


class LateralNeuronsConfig(BaseModel):
    """How the lateral neurons respond: rates, simulated spiking neurons, or quantised rates."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["rate", "spiking", "quantised"] = Field(
        "rate", description="`rate` (y = H x), `spiking` (integrate-and-fire neurons simulated for "
                            "`spiking_steps`), `quantised` (the reference code's shortcut for them)")
    spiking_steps: int = Field(40, ge=1, description="T_l: sub-steps a spiking lateral neuron integrates each input")
    projection_passes: int = Field(1, ge=1, description=(
        "`spiking`, `quantised`: the projection's sub-steps are split into this many rounds; each round the "
        "neurons answer what the earlier rounds' feedback left, with the scale reset to its norm when `scale` is none (a gain "
        "control), so the rounding errors of one round are corrected by the next. The Hebbian step uses one"))
    initial_membrane: Literal["rest", "half_threshold"] = Field("rest", description=(
        "`spiking`: where each neuron of a pair starts a response: at rest (the count is the drive truncated "
        "towards zero, as the reference's neurons) or at half threshold (the count is the drive rounded: half "
        "the error, and no bias towards zero)"))
    scale: float | None = Field(None, gt=0.0, description=(
        "s: the response at which a spiking neuron fires every sub-step (feature units); none: the norm of "
        "each input (the projected eligibility is orders of magnitude smaller than the features)"))


class ProtectionConfig(BaseModel):
    """Orthogonal protection of three-factor readouts across tasks (``[readouts.protection]``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    method: Literal["none", "hlop", "svd"] = Field(
        "none", description="`none` (unprotected), `hlop` (Hebbian lateral neurons), `svd` (exact projection "
                            "from the stored activity's SVD, the upper reference)")
    groups: list[str] = Field(default_factory=list, description="protected readout groups (three-factor rule)")
    neurons_per_task: int = Field(40, ge=1, description="hlop: lateral neurons added for each task")
    max_neurons: int | None = Field(None, ge=1, description="cap on the lateral neurons / basis vectors "
                                                            "(none: the number of features)")
    learning_rate: float = Field(0.05, gt=0.0, description="hlop: eta of the subspace rule, per Hebbian step "
                                                           "(stable for eta * lambda_max(E[x x^T]) of at most ~1)")
    hebbian_every_steps: int = Field(1, ge=1, description="hlop: a Hebbian step every this many gated steps")
    normalize_learning_rate: bool = Field(False, description=(
        "hlop: divide eta by the power |r|^2 of the residual r = x - H_old^T y_old that the new rows learn "
        "from (a normalised subspace step, stable for eta up to ~1 whatever the residual's scale: the "
        "residual of a later task is 5-15 times weaker than a first task's activity)"))
    energy_threshold: float = Field(0.99, gt=0.0, lt=1.0, description="svd: activity energy the basis keeps")
    svd_sample_every_steps: int = Field(5, ge=1, description="svd: a gated step enters C every this many steps")
    orthonormalize_at_merge: bool = Field(True, description=(
        "hlop: at a task's end, make the new rows orthonormal and orthogonal to the old ones (their span "
        "unchanged) before they join the projecting rows; false: merge them as learned"))
    hebbian_input: Literal["features", "centred"] = Field("features", description=(
        "hlop: what the subspace rule learns from: `features` (x, uncentred: the paper's rule) or `centred` "
        "(x minus the task's running mean; at the task's end the mean's residual joins as one more row, so "
        "the rows still span the uncentred activity). The mean dominates E[x x^T] (lambda_1 / lambda_40 ~ 1000 "
        "on the digit features) and bounds eta; without it eta can be 5-10 times larger"))
    learning_rate_decay_steps: float | None = Field(None, gt=0.0, description=(
        "hlop: eta / (1 + n / this) at the task's n-th Hebbian step (a Robbins-Monro schedule: the rows settle "
        "instead of fluctuating by eta's noise); none: constant eta"))
    projection: Literal["every_step", "per_window"] = Field("every_step", description=(
        "`every_step`: the eligibility of protected units is projected at every gated step (the spec's "
        "form); `per_window`: the protected units' weights change freely while a gate window is open, and "
        "when it closes the window's whole update is projected (the reference code projects each batch's "
        "summed gradient the same way): the old outputs are kept exactly at every window's end, the "
        "projection costs K rows per window instead of one per gated step. Not with replayed rows or a "
        "prediction lead"))
    lateral: LateralNeuronsConfig = LateralNeuronsConfig()


class ProtectionState(NamedTuple):
    """Arrays of the protection inside the compiled loop (``method`` 0: inert, all sizes zero)."""

    method: int
    lateral_kind: int
    spiking_steps: int
    passes: int
    """Rounds of the projection (the spiking and quantised kinds), ``spiking_steps // passes`` sub-steps each."""
    scale: float
    learning_rate: float
    every_steps: int
    normalized: bool
    """Divide the subspace rule's step by the power of the residual the new rows learn from."""
    centred: bool
    """The subspace rule learns from ``x`` minus the task's running mean (:attr:`task_mean`)."""
    decay_steps: float
    """``eta / (1 + n / decay_steps)`` at the task's ``n``-th Hebbian step (0: constant)."""
    per_window: bool
    """Project each gate window's summed weight update when the window closes (not the eligibility)."""
    sample_every: int
    project_always: bool
    """Project at every step (a protected unit replays stored rows or has a prediction lead, so
    rows of ungated steps are used later), or only at gated steps (enough otherwise: the
    projection is linear and fixed within a task, so projecting the trace when it is used equals
    filtering projected factors)."""
    unit_protected: np.ndarray
    """``(K,)`` whether each readout unit's updates are protected."""
    set_protected: np.ndarray
    """``(S,)`` whether each eligibility set is projected (it serves a protected unit)."""
    lateral: np.ndarray
    """``(M_max, F)`` lateral weights ``H`` (hlop) or basis ``B`` (svd); rows past ``counts[1]`` are unused."""
    counts: np.ndarray
    """``(5,)`` int: old (frozen, projecting) rows, all rows in use, gated steps seen, Hebbian steps
    of the current task, whether a gate window is open (``per_window``)."""
    window_start: np.ndarray
    """``(K, F)`` per_window: the weights when the open window opened (``(0, 0)`` otherwise)."""
    task_mean: np.ndarray
    """``(F,)`` hlop: the mean of the features over the current task's Hebbian steps."""
    centred_input: np.ndarray
    """``(F,)`` scratch: the centred features."""
    second_moment: np.ndarray
    """``(F, F)`` svd: the current task's sum of ``x x^T`` (``(0, 0)`` otherwise)."""
    response: np.ndarray
    """``(M_max,)`` scratch: the lateral responses."""
    feedback: np.ndarray
    """``(F,)`` scratch: ``H^T y``."""


def protection_state(config: ProtectionConfig | None, unit_protected: np.ndarray, eligibility_of: np.ndarray,
                     n_sets: int, n_features: int, project_always: bool = False) -> ProtectionState:
    """The state for ``config`` over ``n_features`` features (inert for ``None`` or ``method = "none"``)."""
    method = METHOD_CODES[config.method] if config is not None else 0
    unit_protected = np.ascontiguousarray(unit_protected, dtype=np.bool_)
    if method == 0:
        unit_protected = np.zeros_like(unit_protected)
    set_protected = np.zeros(n_sets, dtype=np.bool_)
    for unit in np.flatnonzero(unit_protected):
        set_protected[eligibility_of[unit]] = True
    rows = 0
    if method:
        rows = min(config.max_neurons or n_features, n_features)
    lateral = config.lateral if config is not None else LateralNeuronsConfig()
    c = config if config is not None else ProtectionConfig()
    per_window = bool(method) and c.projection == "per_window"
    if per_window and project_always:
        raise ValueError("readouts.protection.projection = 'per_window' needs protected units that learn only inside "
                         "their gate windows: a protected group replays stored rows or has a prediction lead "
                         "(use 'every_step')")
    return ProtectionState(
        method=method, spiking_steps=lateral.spiking_steps, passes=lateral.projection_passes,
        lateral_kind=(SPIKING_FROM_HALF_THRESHOLD if lateral.kind == "spiking" and lateral.initial_membrane == "half_threshold"
                      else LATERAL_CODES[lateral.kind]),
        scale=lateral.scale if lateral.scale is not None else 0.0, learning_rate=c.learning_rate, every_steps=c.hebbian_every_steps,
        normalized=bool(c.normalize_learning_rate), centred=c.hebbian_input == "centred",
        decay_steps=float(c.learning_rate_decay_steps or 0.0), per_window=per_window,
        window_start=np.zeros((unit_protected.shape[0], n_features) if per_window else (0, 0)),
        sample_every=c.svd_sample_every_steps, project_always=bool(project_always), unit_protected=unit_protected, set_protected=set_protected,
        lateral=np.zeros((rows, n_features)), counts=np.zeros(5, dtype=np.int64),
        task_mean=np.zeros(n_features if method == 1 else 0), centred_input=np.zeros(n_features if method == 1 else 0),
        second_moment=np.zeros((n_features, n_features) if method == 2 else (0, 0)),
        response=np.zeros(rows), feedback=np.zeros(n_features))


# ---------------------------------------------------------------------------- kernels
@njit(cache=True, inline="always")
def _input_scale(x, kind, scale):
    """The scale ``s`` of the spiking and quantised kinds: ``scale``, or the input's norm when
    ``scale <= 0``; 1 for rates (unused)."""
    if kind == 0 or scale > 0.0:
        return scale
    power = 0.0
    for f in range(x.shape[0]):
        power += x[f] * x[f]
    return np.sqrt(power)


@njit(cache=True, inline="always")
def _silent(kind, scale, out, n_rows):
    """A spiking or quantised kind with a zero scale (a zero input) answers 0 from every row:
    ``out[:n_rows]`` is zeroed and True returned."""
    if kind == 0 or scale != 0.0:
        return False
    for i in range(n_rows):
        out[i] = 0.0
    return True


@njit(cache=True, inline="always")
def _respond(drive, kind, spiking_steps, scale):
    """One lateral neuron's response to its drive ``h . x`` (``scale`` > 0 for the non-rate kinds)."""
    if kind == 0:
        return drive
    level = drive / scale
    if level > 1.0:
        level = 1.0
    elif level < -1.0:
        level = -1.0
    if kind == 2:
        return scale * np.round(level * spiking_steps) / spiking_steps
    membrane = 0.0  # a signed integrate-and-fire pair, reset by subtraction
    if kind == SPIKING_FROM_HALF_THRESHOLD:
        membrane = 0.5 if level > 0.0 else -0.5
    count = 0
    for _ in range(spiking_steps):
        membrane += level
        if membrane >= 1.0:
            count += 1
            membrane -= 1.0
        elif membrane <= -1.0:
            count -= 1
            membrane += 1.0
    return scale * count / spiking_steps


@njit(cache=True, fastmath=REASSOCIATE)
def lateral_responses(lateral, n_rows, x, kind, spiking_steps, scale, out):
    """``out[:n_rows]``: each lateral neuron's response to ``x`` (``rate``, ``spiking`` or
    ``quantised``, :data:`LATERAL_CODES`; :data:`SPIKING_FROM_HALF_THRESHOLD`: spiking neurons
    that start at half threshold). ``scale <= 0`` takes the input's norm as the scale (unit-norm
    rows then never clip)."""
    n_features = x.shape[0]
    scale = _input_scale(x, kind, scale)
    if _silent(kind, scale, out, n_rows):
        return
    for i in range(n_rows):
        row = lateral[i]
        drive = 0.0
        for f in range(n_features):
            drive += row[f] * x[f]
        out[i] = _respond(drive, kind, spiking_steps, scale)


@njit(cache=True, fastmath=REASSOCIATE)
def project_out(row, lateral, n_old, kind, spiking_steps, scale, response):
    """``row <- row - H_old^T y`` with ``y`` the old lateral neurons' responses to ``row``.

    One pass over the rows: each row's drive is taken from ``row`` as the earlier rows have
    left it, and its feedback removed at once (the row is read once, from cache, instead of once
    for all drives and again for all feedback). For orthonormal old rows, which the merge makes
    them, ``h_i . (x - sum_{j<i} y_j h_j) = h_i . x``: the same responses, up to rounding. The
    scale of the spiking kinds is taken from the row as given."""
    if n_old == 0:
        return
    n_features = row.shape[0]
    scale = _input_scale(row, kind, scale)
    if _silent(kind, scale, response, n_old):
        return
    for i in range(n_old):
        h = lateral[i]
        drive = 0.0
        for f in range(n_features):
            drive += h[f] * row[f]
        y = _respond(drive, kind, spiking_steps, scale)
        response[i] = y
        if y == 0.0:
            continue
        for f in range(n_features):
            row[f] -= y * h[f]


@njit(cache=True, fastmath=REASSOCIATE)
def subspace_rule_step(lateral, n_old, n_rows, x, learning_rate, kind, spiking_steps, scale, response, feedback,
                       normalized=False):
    """One Hebbian/anti-Hebbian step: ``y = H x`` over all rows in use, and for the new rows
    only ``H_i += eta y_i (x - H^T y)``. ``normalized``: ``eta`` divided by ``|r|^2``, the power of
    the residual ``r = x - H_old^T y_old`` that the new rows learn from (no step when it is 0)."""
    if n_rows == n_old:
        return
    lateral_responses(lateral, n_rows, x, kind, spiking_steps, scale, response)
    n_features = x.shape[0]
    for f in range(n_features):
        feedback[f] = x[f]
    for i in range(n_old):
        y = response[i]
        h = lateral[i]
        for f in range(n_features):
            feedback[f] -= y * h[f]
    if normalized:
        power = 0.0
        for f in range(n_features):
            power += feedback[f] * feedback[f]
        if power == 0.0:
            return
        learning_rate = learning_rate / power
    for i in range(n_old, n_rows):
        y = response[i]
        h = lateral[i]
        for f in range(n_features):
            feedback[f] -= y * h[f]
    for i in range(n_old, n_rows):
        step = learning_rate * response[i]
        h = lateral[i]
        for f in range(n_features):
            h[f] += step * feedback[f]


@njit(cache=True, fastmath=REASSOCIATE)
def add_outer(second_moment, x):
    """``C += x x^T`` (both triangles)."""
    n = x.shape[0]
    for i in range(n):
        xi = x[i]
        if xi == 0.0:
            continue
        row = second_moment[i]
        for j in range(n):
            row[j] += xi * x[j]


@njit(cache=True)
def project_in_rounds(row, protection, kind):
    """``project_out`` of ``row`` by the old rows, in ``protection.passes`` rounds for the spiking
    and quantised kinds (each with its share of the sub-steps and the scale of what is left)."""
    passes = protection.passes if kind != 0 else 1
    steps = max(1, protection.spiking_steps // passes)
    for _ in range(passes):
        project_out(row, protection.lateral, protection.counts[0], kind, steps, protection.scale,
                    protection.response)


@njit(cache=True)
def commit_window(protection, weights):
    """``per_window``: the protected units' weights become ``W_open + P (W - W_open)``: the open
    window's summed update projected out of the old rows' span."""
    method = protection.method
    kind = 0 if method == 2 else protection.lateral_kind
    start = protection.window_start
    n_features = weights.shape[1]
    change = protection.feedback  # scratch (F,)
    for k in range(weights.shape[0]):
        if not protection.unit_protected[k]:
            continue
        for f in range(n_features):
            change[f] = weights[k, f] - start[k, f]
        project_in_rounds(change, protection, kind)
        for f in range(n_features):
            weights[k, f] = start[k, f] + change[f]


@njit(cache=True)
def protection_step(protection, features, eligibility, gates_row, weights):
    """Per engine step, after the eligibility update and before the weight update: a Hebbian
    (hlop) or sampling (svd) step when a protected unit's gate is open, then the projection of
    every protected eligibility set onto the complement of the old subspace (``every_step``), or
    (``per_window``) the weights remembered when a window opens and its update projected at the
    first step after it closes."""
    method = protection.method
    if method == 0:
        return
    counts, lateral, response = protection.counts, protection.lateral, protection.response
    unit_protected = protection.unit_protected
    gated = False
    for k in range(unit_protected.shape[0]):
        if unit_protected[k] and gates_row[k] != 0.0:
            gated = True
            break
    kind, steps, scale = protection.lateral_kind, protection.spiking_steps, protection.scale
    if gated:
        seen = counts[2]
        counts[2] = seen + 1
        if method == 1 and seen % protection.every_steps == 0 and counts[1] > counts[0]:
            n = counts[3] + 1
            counts[3] = n
            eta = protection.learning_rate
            if protection.decay_steps > 0.0:
                eta = eta / (1.0 + (n - 1) / protection.decay_steps)
            x = features
            if protection.centred:
                mean, x = protection.task_mean, protection.centred_input
                for f in range(features.shape[0]):
                    mean[f] += (features[f] - mean[f]) / n
                    x[f] = features[f] - mean[f]
            subspace_rule_step(lateral, counts[0], counts[1], x, eta, kind, steps, scale,
                               response, protection.feedback, protection.normalized)
        elif method == 2 and seen % protection.sample_every == 0:
            add_outer(protection.second_moment, features)
    if protection.per_window:
        if gated and counts[4] == 0:
            start = protection.window_start
            for k in range(weights.shape[0]):
                if unit_protected[k]:
                    for f in range(weights.shape[1]):
                        start[k, f] = weights[k, f]
            counts[4] = 1
        elif not gated and counts[4] == 1:
            if counts[0] > 0:
                commit_window(protection, weights)
            counts[4] = 0
        return
    n_old = counts[0]
    if n_old == 0 or not (gated or protection.project_always):
        return
    if method == 2:
        kind = 0  # the exact basis projects with rates
    set_protected = protection.set_protected
    for s in range(eligibility.shape[0]):
        if set_protected[s]:
            project_in_rounds(eligibility[s], protection, kind)


# ---------------------------------------------------------------------------- between tasks
def orthonormal_rows(rng: np.random.Generator, n_rows: int, n_features: int,
                     avoid: np.ndarray | None = None) -> np.ndarray:
    """``n_rows`` random orthonormal rows (the QR of a Gaussian matrix), orthogonal to the rows
    of ``avoid`` when given (the Gaussian draw is projected out of their span first)."""
    draw = rng.standard_normal((n_features, n_rows))
    if avoid is not None and len(avoid):
        span, _ = np.linalg.qr(avoid.T)
        draw -= span @ (span.T @ draw)
    q, r = np.linalg.qr(draw)
    return (q * np.sign(np.diag(r))).T


def begin_task(state: ProtectionState, config: ProtectionConfig, rng: np.random.Generator) -> int:
    """Add the new lateral neurons of a task (hlop); returns how many were added (0 once
    ``max_neurons`` is reached, or for svd, which grows at the task's end).

    The new rows start orthonormal and orthogonal to the old ones (project's choice): rows in
    directions the task's activity does not reach do not move under the subspace rule, and rows
    left overlapping the old ones would give ``I - H^T H`` negative eigenvalues after the
    merge, which turns the protected update against the error there."""
    if state.method != 1:
        return 0
    n_old, n_rows = int(state.counts[0]), int(state.counts[1])
    if n_rows != n_old:
        raise RuntimeError("begin_task called twice without end_task")
    added = min(config.neurons_per_task, state.lateral.shape[0] - n_rows)
    if added > 0:
        state.lateral[n_rows:n_rows + added] = orthonormal_rows(rng, added, state.lateral.shape[1],
                                                                avoid=state.lateral[:n_rows])
        state.counts[1] = n_rows + added
    return added


def end_task(state: ProtectionState, config: ProtectionConfig) -> int:
    """End a task: merge the new lateral neurons into the old ones (hlop) or extend the basis
    from the task's second moment (svd); returns the number of projecting rows after it."""
    if state.method == 0:
        return 0
    if state.per_window and state.counts[4] == 1:
        raise RuntimeError("end_task inside an open gate window: Readouts.end_task commits the window first")
    if not np.all(np.isfinite(state.lateral)):
        raise FloatingPointError("the lateral weights H are not finite: lower readouts.protection.learning_rate "
                                 "(stable for learning_rate * lambda_max(E[x x^T]) of at most ~1)")
    if state.method == 1:
        if state.centred and int(state.counts[3]) > 0:
            add_mean_row(state)
        state.counts[3] = 0
        state.task_mean[...] = 0.0
        if config.orthonormalize_at_merge:
            orthonormalize_new_rows(state.lateral, int(state.counts[0]), int(state.counts[1]))
        state.counts[0] = state.counts[1]
    else:
        grow_exact_basis(state, config.energy_threshold)
    return int(state.counts[0])


def add_mean_row(state: ProtectionState) -> bool:
    """``hebbian_input = "centred"``: the task's mean feature vector, less its components along
    every row in use, normalised, joins the new rows (when there is room and it is not already
    spanned); the rows then span the uncentred activity the centred rule left out. Returns
    whether a row was added."""
    n_rows = int(state.counts[1])
    if n_rows >= state.lateral.shape[0]:
        return False
    rows = state.lateral[:n_rows]
    residual = state.task_mean - rows.T @ (rows @ state.task_mean)
    norm = float(np.linalg.norm(residual))
    if not norm > 1e-12 * max(float(np.linalg.norm(state.task_mean)), 1e-300):
        return False
    state.lateral[n_rows] = residual / norm
    state.counts[1] = n_rows + 1
    return True


def orthonormalize_new_rows(lateral: np.ndarray, n_old: int, n_rows: int) -> None:
    """Rows ``n_old:n_rows`` of ``lateral`` (in place): their components along the (orthonormal)
    old rows removed, then replaced by the nearest orthonormal rows with the same span (the
    polar factor ``U V^T`` of their SVD, Lowdin's symmetric orthonormalisation). The old rows
    do not change.

    Why (``docs/design-choices.md``): a streamed subspace rule leaves new rows slightly
    overlapping the old ones and each other; merged as they are, ``H H^T`` has eigenvalues above 1
    (1.27 after five digit tasks, 1.49 after ten), so ``I - H^T H`` has negative ones and the
    protected update runs against the error along them: the readout collapsed in the sixth
    task and, with more rows, diverged."""
    new = lateral[n_old:n_rows]
    if new.shape[0] == 0:
        return
    old = lateral[:n_old]
    if n_old:
        new -= (new @ old.T) @ old
    u, _, vt = np.linalg.svd(new, full_matrices=False)
    lateral[n_old:n_rows] = u @ vt


def grow_exact_basis(state: ProtectionState, energy_threshold: float) -> int:
    """GPM's criterion on the task's second moment ``C``: add the top eigenvectors of the
    residual ``(I - B^T B) C (I - B^T B)`` until the basis holds ``energy_threshold`` of
    ``trace(C)``; ``C`` is then cleared. Returns the number of vectors added."""
    moment = state.second_moment
    total = float(np.trace(moment))
    n_old = int(state.counts[0])
    added = 0
    if total > 0.0:
        basis = state.lateral[:n_old]
        kept = float(np.sum((basis @ moment) * basis)) if n_old else 0.0
        complement = np.eye(moment.shape[0]) - basis.T @ basis
        residual = complement @ moment @ complement
        values, vectors = np.linalg.eigh((residual + residual.T) / 2)
        order = np.argsort(values)[::-1]
        room = state.lateral.shape[0] - n_old
        captured = kept
        for index in order:
            if captured >= energy_threshold * total or added >= room or values[index] <= 0:
                break
            state.lateral[n_old + added] = vectors[:, index]
            captured += float(values[index])
            added += 1
    state.counts[0] = state.counts[1] = n_old + added
    moment[...] = 0.0
    return added


def unit_mask(n_units: int, group_slices: dict[str, slice], groups: Sequence[str]) -> np.ndarray:
    """``(K,)`` True for the units of ``groups``."""
    mask = np.zeros(n_units, dtype=np.bool_)
    for name in groups:
        mask[group_slices[name]] = True
    return mask
