"""Error-modulated, attention-gated three-factor Hebbian rule for readouts.

For readout unit ``k`` with weights ``w_k`` over the presynaptic features ``x`` (the
reservoir's filtered spike trains):

    output       z_k = w_k . x + b_k                               (b_k: a learned bias, or 0)
    presynaptic  u_j = (x_j - m_j) / (floor + v_j)                 (centring and normalisation: optional)
    eligibility  tau_e dE_kj/dt = -E_kj + u_j(t) h(z_k(t))       (h = 1, or h = z_k: "output")
    third factor eps_k(t) = target_k(t) - z_k(t)                  (the unit's own error)
    gate         g_k(t) in [0, 1]                                  (window, surprise, selective)
    update       dw_kj = eta g_k eps_k E_kj dt   (- lambda w_kj dt),  optionally clipped to bounds
                 db_k  = eta_b g_k eps_k dt

Discretised exactly for piecewise-constant input: ``E <- E e^(-dt/tau_e) + (1 - e^(-dt/tau_e))
u h``. The eligibility trace is what lets a reward-time error credit activity that came before
it, so a readout trained on an outcome becomes anticipatory.

The presynaptic factor ``u`` is the feature itself by default. Two optional transforms, each
local to the presynaptic feature, make gradient-like learning fast on positive spike traces
(``docs/design-choices.md``, "The three-factor rule"):

* **centring** (``centering = "running_mean"``): ``m_j`` is a running mean of ``x_j`` with time
  constant ``tau_mean_ms`` (longer than a trial, so the within-trial time course survives); the
  covariance rule of Sejnowski (J Math Biol 1977), for which LeCun, Kanter & Solla (PRL 1991) and
  Schraudolph (LNCS 1524, 1998) show the speed-up: the common rate stops dominating the feature
  correlations. A learned bias (``bias_learning_rate > 0``) then absorbs the mean output.
* **normalisation** (``normalization = "variance"``): ``v_j`` is a running mean of
  ``(x_j - m_j)^2`` over the same time constant, and the factor is divided by ``floor + v_j``:
  a diagonal approximation of the inverse feature covariance (a diagonal Newton step, as in
  LeCun et al.'s "Efficient BackProp", 1998), so the step no longer depends on the units or the
  power of each input (Kreutzer, Senn & Petrovici, eLife 2022, read plasticity scaled by
  presynaptic variance as a natural-gradient rule). The floor keeps rarely active inputs from
  taking huge steps.

**Prediction lead** (``prediction_lead_ms = h > 0``): the unit learns to predict its target
``h`` ms ahead. The error at ``t`` compares the target at ``t`` with the unit's output at
``t - h``, and it is paired with the eligibility of ``t - h``:
``dw_kj = eta g_k(t) (target_k(t) - z_k(t - h)) E_kj(t - h) dt``. Each unit keeps its last
``h / dt`` outputs and each eligibility set its last ``h / dt`` rows (a delay line: the
synapse's tag becomes eligible for the error ``h`` ms later). With time-locked features the
fixed point is the least-squares prediction of the target ``h`` ms ahead, so the output rises
about ``h`` ms before the outcome (project's choice, docs/design-choices.md). Online units only.

The running statistics are exponentially weighted averages divided by the total weight of the
steps seen so far (as Adam corrects its moments), so they are unbiased from the first step.
They take each step's features before its eligibility update, at every step, gate open or
closed: they are the synapse's own history, not the task's. The trial-start reset leaves them
(and the bias) alone, like the weights.

Gate kinds (per unit):

``window``     ``g`` is the paradigm's gate signal (1 inside the attended window, 0 outside).
``surprise``   ``g`` = window gate if ``|eps_k| > surprise_threshold``, else 0.
``selective``  ``g`` = window gate for the unit with the largest output in its group (the
               "winning" unit), 0 for the others. An "attended" unit chosen by the paradigm is
               the ``window`` kind with per-unit gates.

Offline consolidation: while the paradigm's ``store`` signal is on, the kernel stores each
step's features ``x`` and eligibility rows; between chunks, :func:`replay` runs the same update
over the stored window ``n_replay`` times with targets that became known only after the trial
(z recomputed from the stored ``x`` and the current weights). With one replay, the same gates
and the same targets this is exactly the online update (tested).

References
----------
Fremaux, N., & Gerstner, W. (2016). Neuromodulated spike-timing-dependent plasticity, and theory
of three-factor learning rules. Front. Neural Circuits, 9, 85. doi:10.3389/fncir.2015.00085
Gerstner, W., Lehmann, M., Liakoni, V., Corneil, D., & Brea, J. (2018). Eligibility traces and
plasticity on behavioral time scales. Front. Neural Circuits, 12, 53. doi:10.3389/fncir.2018.00053
Yamada & Chao (2025), arXiv:2510.14382 (the what/when model this rule serves; its methods are
not public, so the rule's form here is the project's choice, see docs/design-choices.md).

Length: the configuration, the state layout, the compiled per-feature and per-step kernels and
the stand-alone :class:`ThreeFactorReadout` share the state's layout, which is why they sit
together; the stand-alone learner (about 200 lines) and the configuration could move to their
own modules (issue 23).
"""
from __future__ import annotations

import math
from typing import Literal, NamedTuple, Sequence

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..parallel import WORK_BLOCK_NEURONS
from ..simd import lane_sums

GATE_CODES = {"window": 0, "surprise": 1, "selective": 2}


class ConsolidationConfig(BaseModel):
    """When the rule's updates happen: online, or by replaying stored windows between chunks."""

    model_config = ConfigDict(extra="forbid", strict=True)
    mode: Literal["online", "replay", "batch_replay"] = Field(
        "online", description="`online` (every step), `replay` (stored window replayed after each trial), "
                              "`batch_replay` (windows replayed together every `batch_every_trials`)")
    n_replay: int = Field(1, ge=1, description="replays of each stored window")
    batch_every_trials: int = Field(10, ge=1, description="batch_replay: replay after this many trials")


class ThreeFactorConfig(BaseModel):
    """Parameters of the three-factor rule for one readout group."""

    model_config = ConfigDict(extra="forbid", strict=True)
    learning_rate: float = Field(1e-3, gt=0.0, description="eta, per ms")
    tau_eligibility_ms: float = Field(100.0, gt=0.0, description="time constant of the eligibility trace")
    post_factor: Literal["none", "output"] = Field(
        "none", description="postsynaptic factor of the eligibility: `none` (1) or `output` (the unit's z)")
    gate: Literal["window", "surprise", "selective"] = Field(
        "window", description="`window` (the task's gate), `surprise` (`|error|` above `surprise_threshold`), "
                              "`selective` (only the group's largest output learns)")
    surprise_threshold: float = Field(0.1, ge=0.0, description="`|error|` that opens the surprise gate")
    weight_min: float | None = Field(None, description="lower weight bound (none: unbounded)")
    weight_max: float | None = Field(None, description="upper weight bound (none: unbounded)")
    weight_decay_per_ms: float = Field(0.0, ge=0.0, description="lambda of the decay term `-lambda w dt`")
    centering: Literal["none", "running_mean"] = Field(
        "none", description="presynaptic factor: the feature (`none`) or the feature minus its running mean "
                            "(`running_mean`, the covariance rule)")
    normalization: Literal["none", "variance"] = Field(
        "none", description="divide the presynaptic factor by `normalization_floor + running variance` "
                            "(`variance`) or not (`none`)")
    tau_mean_ms: float = Field(20000.0, gt=0.0, description="time constant of the running mean and variance "
                                                             "of each feature")
    normalization_floor: float = Field(1e-4, gt=0.0, description="added to the running variance (feature "
                                                                 "units squared)")
    statistics: Literal["always", "gated"] = Field("always", description=(
        "when the running mean and variance take the features: at every step (`always`) or only while the "
        "unit's gate is open (`gated`: the centring then matches the activity the rule learns from)"))
    clip_std: float | None = Field(None, gt=0.0, description=(
        "with centring: the centred presynaptic factor saturates at this many running standard deviations, "
        "`|x - m| <= clip_std sqrt(v)` (none: no saturation)"))
    bias_learning_rate: float = Field(0.0, ge=0.0, description="eta_b of a learned bias `b` (z = w . x + b), "
                                                               "per ms; 0: no bias")
    prediction_lead_ms: float = Field(0.0, ge=0.0, description=(
        "learn to predict the target this far ahead: the error at t uses the output and the eligibility of "
        "t - lead (online units only)"))
    consolidation: ConsolidationConfig = ConsolidationConfig()

    @model_validator(mode="after")
    def _bounds(self) -> "ThreeFactorConfig":
        if self.weight_min is not None and self.weight_max is not None and self.weight_min >= self.weight_max:
            raise ValueError("weight_min must be below weight_max")
        if self.clip_std is not None and self.centering != "running_mean":
            raise ValueError("clip_std needs centering = 'running_mean' (it saturates the centred factor)")
        if self.prediction_lead_ms > 0 and self.consolidation.mode != "online":
            raise ValueError("prediction_lead_ms needs consolidation.mode = 'online' (a replayed window has no "
                             "future to predict)")
        return self

    def lead_steps(self, dt_ms: float) -> int:
        return int(round(self.prediction_lead_ms / dt_ms))

    def eligibility_decay(self, dt_ms: float) -> float:
        return math.exp(-dt_ms / self.tau_eligibility_ms)

    def mean_decay(self, dt_ms: float) -> float:
        """``exp(-dt / tau_mean)`` with centring or normalisation, else 1 (statistics kept at 0)."""
        if self.centering == "none" and self.normalization == "none":
            return 1.0
        return math.exp(-dt_ms / self.tau_mean_ms)

    def presynaptic_key(self, dt_ms: float) -> tuple:
        """What the presynaptic factor depends on: units with equal keys share eligibility sets.
        ``(eligibility decay, statistics decay, centre, floor, clip, gated)``, the floor 0 without
        normalisation, the clip 0 without saturation, ``gated`` whether the statistics follow the gate."""
        floor = self.normalization_floor if self.normalization == "variance" else 0.0
        clip = 0.0 if self.clip_std is None else self.clip_std
        gated = self.statistics == "gated" and self.mean_decay(dt_ms) != 1.0
        return (self.eligibility_decay(dt_ms), self.mean_decay(dt_ms), self.centering == "running_mean", floor, clip,
                gated)

    def bounds(self) -> tuple[float, float]:
        """``(w_min, w_max)`` with infinities for absent bounds."""
        return (-np.inf if self.weight_min is None else self.weight_min,
                np.inf if self.weight_max is None else self.weight_max)


class ThreeFactorState(NamedTuple):
    """Per-unit parameters and eligibility traces of the three-factor units of a readout.

    Arrays over units have one entry per readout unit (``K``); units that do not learn by this
    rule have inert entries and appear in neither ``online_units`` nor ``replay_units``.
    Eligibility traces come in sets (rows of ``eligibility``): units without a postsynaptic
    factor share one set per time constant (an optimisation that changes no result), a unit
    with ``post_factor = "output"`` has its own. Built by :func:`three_factor_state` for the
    engine's readouts and for :class:`ThreeFactorReadout` alike.
    """

    online_units: np.ndarray
    """Units updated at every step inside the kernel."""
    replay_units: np.ndarray
    """Units updated by replaying stored windows between chunks (offline consolidation)."""
    learning_rate: np.ndarray
    gate_kind: np.ndarray
    """:data:`GATE_CODES`."""
    surprise_threshold: np.ndarray
    group_of: np.ndarray
    """Readout group of each unit (the selective gate compares units of one group)."""
    weight_min: np.ndarray
    weight_max: np.ndarray
    weight_decay_per_ms: np.ndarray
    eligibility: np.ndarray
    """``(S, F)`` eligibility traces, updated in place."""
    eligibility_decay: np.ndarray
    """``exp(-dt / tau_e)`` of each set."""
    eligibility_post: np.ndarray
    """The unit whose output is the postsynaptic factor of each set, or -1 (factor 1)."""
    eligibility_of: np.ndarray
    """The eligibility set of each unit."""
    feature_mean: np.ndarray
    """``(S, F)`` running mean of each feature, per set (zero and fixed without centring or
    normalisation), before the division by ``statistics_weight``."""
    feature_power: np.ndarray
    """``(S, F)`` running mean of the squared centred feature, per set."""
    mean_decay: np.ndarray
    """``exp(-dt / tau_mean)`` of each set (1: no running statistics)."""
    statistics_weight: np.ndarray
    """``1 - mean_decay^n`` after ``n`` steps, per set: the running statistics are divided by
    it, so they are unbiased from the first step on (as Adam corrects its moments)."""
    centre: np.ndarray
    """Whether each set subtracts the running mean."""
    normalize_floor: np.ndarray
    """Each set's floor under the variance, or 0 for no normalisation."""
    factor_clip: np.ndarray
    """Each set's saturation of the centred factor in running standard deviations, or 0 for none."""
    statistics_unit: np.ndarray
    """``(S,)`` the unit whose gate opens each set's running statistics, or -1 (they take every step)."""
    statistics_open: np.ndarray
    """``(S,)`` scratch of :func:`open_statistics`: whether each set's statistics take this step."""
    bias: np.ndarray
    """``(K,)`` learned bias of each unit (0 for units without one; every unit's output adds it)."""
    bias_learning_rate: np.ndarray
    lead_steps: np.ndarray
    """``(K,)`` prediction lead of each unit, in steps."""
    output_history: np.ndarray
    """``(K, H)`` each unit's last ``H`` outputs (a ring; ``H = 1`` when no unit has a lead)."""
    eligibility_history: np.ndarray
    """``(S, H, F)`` each set's last ``H`` eligibility rows (``(S, 0, F)`` when no unit has a lead);
    kept only for the sets of units with a lead (:attr:`history_sets`), the others stay zero."""
    history_sets: np.ndarray
    """The eligibility sets whose rows enter the ring (those of units with a prediction lead)."""
    history_position: np.ndarray
    """``(1,)`` the ring slot of the current step."""
    unit_scale: np.ndarray
    """``(K,)`` scratch of :func:`plan_updates`: each unit's step size this step (not state)."""
    unit_slot: np.ndarray
    """``(K,)`` scratch of :func:`plan_updates`: the eligibility row each unit learns from (not state)."""


def three_factor_state(unit_configs: Sequence[ThreeFactorConfig | None], group_of, n_features: int,
                       dt_ms: float) -> ThreeFactorState:
    """The rule's state for units whose configurations are ``unit_configs`` (``None``: the unit
    does not learn by this rule), all eligibility traces zero."""
    n_units = len(unit_configs)
    learning_rate = np.zeros(n_units)
    gate_kind = np.zeros(n_units, dtype=np.int64)
    threshold = np.zeros(n_units)
    w_min = np.full(n_units, -np.inf)
    w_max = np.full(n_units, np.inf)
    weight_decay = np.zeros(n_units)
    bias_rate = np.zeros(n_units)
    lead = np.zeros(n_units, dtype=np.int64)
    eligibility_of = np.zeros(n_units, dtype=np.int64)
    keys, posts, online, replayed, statistics_unit = [], [], [], [], []
    for unit, c in enumerate(unit_configs):
        if c is None:
            continue
        learning_rate[unit] = c.learning_rate
        gate_kind[unit] = GATE_CODES[c.gate]
        threshold[unit] = c.surprise_threshold
        w_min[unit], w_max[unit] = c.bounds()
        weight_decay[unit] = c.weight_decay_per_ms
        bias_rate[unit] = c.bias_learning_rate
        lead[unit] = c.lead_steps(dt_ms)
        (online if c.consolidation.mode == "online" else replayed).append(unit)
        key = c.presynaptic_key(dt_ms)
        shared = [s for s, (k, p) in enumerate(zip(keys, posts)) if k == key and p < 0]
        if c.post_factor == "none" and shared:
            eligibility_of[unit] = shared[0]
        else:
            eligibility_of[unit] = len(keys)
            statistics_unit.append(unit)
            keys.append(key)
            posts.append(unit if c.post_factor == "output" else -1)
    n_sets = len(keys)
    ring = int(lead.max()) + 1 if lead.size and lead.max() > 0 else 1
    return ThreeFactorState(
        online_units=np.array(online, dtype=np.int64), replay_units=np.array(replayed, dtype=np.int64),
        learning_rate=learning_rate, gate_kind=gate_kind, surprise_threshold=threshold,
        group_of=np.ascontiguousarray(group_of, dtype=np.int64), weight_min=w_min, weight_max=w_max,
        weight_decay_per_ms=weight_decay, eligibility=np.zeros((n_sets, n_features)),
        eligibility_decay=np.array([k[0] for k in keys], dtype=np.float64),
        eligibility_post=np.array(posts, dtype=np.int64), eligibility_of=eligibility_of,
        feature_mean=np.zeros((n_sets, n_features)), feature_power=np.zeros((n_sets, n_features)),
        mean_decay=np.array([k[1] for k in keys], dtype=np.float64), statistics_weight=np.zeros(n_sets),
        centre=np.array([k[2] for k in keys], dtype=np.bool_),
        normalize_floor=np.array([k[3] for k in keys], dtype=np.float64),
        factor_clip=np.array([k[4] for k in keys], dtype=np.float64),
        statistics_unit=np.array([statistics_unit[s] if keys[s][5] else -1 for s in range(n_sets)], dtype=np.int64),
        statistics_open=np.ones(n_sets, dtype=np.bool_),
        bias=np.zeros(n_units), bias_learning_rate=bias_rate, lead_steps=lead,
        output_history=np.zeros((n_units, ring)),
        eligibility_history=np.zeros((n_sets, ring if ring > 1 else 0, n_features)),
        history_sets=np.array(sorted({int(eligibility_of[k]) for k in range(n_units) if lead[k] > 0}), dtype=np.int64),
        history_position=np.zeros(1, dtype=np.int64), unit_scale=np.zeros(n_units),
        unit_slot=np.full(n_units, UNIT_IDLE, dtype=np.int64))


@njit(cache=True, inline="always")
def open_statistics(statistics_unit, gates_row, statistics_open):
    """Whether each set's running statistics take this step: always, or (``statistics =
    "gated"``) while the gate of the set's unit is open."""
    for s in range(statistics_unit.shape[0]):
        statistics_open[s] = statistics_unit[s] < 0 or gates_row[statistics_unit[s]] > 0.0


@njit(cache=True, inline="always")
def advance_statistics(decay, mean_decay, weight, statistics_open):
    """The once-per-step part of :func:`update_eligibility`: each set's total weight of the steps
    its running statistics have seen, ``weight[s] <- weight[s] mean_decay[s] + (1 - mean_decay[s])``
    (sets without running statistics, or whose statistics are closed this step, keep theirs)."""
    for s in range(decay.shape[0]):
        if mean_decay[s] != 1.0 and statistics_open[s]:
            weight[s] = weight[s] * mean_decay[s] + (1.0 - mean_decay[s])


@njit(cache=True, inline="always")
def eligibility_range(eligibility, decay, post_unit, features, z, mean, power, mean_decay, weight, centre, floor,
                      clip, statistics_open, start, stop):
    """The per-feature part of :func:`update_eligibility` for features ``[start, stop)`` (after
    :func:`advance_statistics` of this step). The loops run over views of the range (a loop over
    ``range(start, stop)`` keeps Numba's negative-index wrap and does not vectorise). One loop per
    (centring, normalisation) case instead of the branches was measured only 7-15 % faster on this
    piece, not worth four copies."""
    x_all = features[start:stop]
    n_range = x_all.shape[0]
    for s in range(eligibility.shape[0]):
        keep = decay[s]
        gain = 1.0 - keep
        if post_unit[s] >= 0:
            gain = gain * z[post_unit[s]]
        row = eligibility[s, start:stop]
        if mean_decay[s] == 1.0:
            for f in range(n_range):
                row[f] = row[f] * keep + gain * x_all[f]
            continue
        m, v = mean[s, start:stop], power[s, start:stop]
        stay = mean_decay[s]
        take = 1.0 - stay
        if not statistics_open[s]:  # gated statistics, gate closed: mean and power stay as they are
            stay = 1.0
            take = 0.0
        unbias = 1.0 / weight[s] if weight[s] > 0.0 else 0.0  # gated statistics before their first open step
        subtract = centre[s]
        eps = floor[s]
        saturate = clip[s]
        for f in range(n_range):
            x = x_all[f]
            m[f] = m[f] * stay + take * x
            d = x - m[f] * unbias
            v[f] = v[f] * stay + take * d * d
            u = d if subtract else x
            if saturate > 0.0:  # the centred factor saturates at `saturate` running standard deviations
                bound = saturate * np.sqrt(v[f] * unbias)
                u = min(max(d, -bound), bound)
            if eps > 0.0:
                u = u / (eps + v[f] * unbias)
            row[f] = row[f] * keep + gain * u


@njit(cache=True)
def update_eligibility(eligibility, decay, post_unit, features, z, mean, power, mean_decay, weight, centre, floor,
                       clip, statistics_open):
    """``E[s] <- E[s] decay[s] + (1 - decay[s]) u h``, with ``h = z[post_unit[s]]`` or 1 and
    ``u`` the presynaptic factor of set ``s`` (the module docstring): first the running mean
    ``m`` and power ``v`` take the step's features (when ``mean_decay[s] < 1``; both are
    divided by ``weight[s]``, the total weight of the steps they have seen), then ``u = x - m``
    (``centre[s]``) or ``x``, saturated at ``+-clip[s] sqrt(v)`` when ``clip[s] > 0``, divided by
    ``floor[s] + v`` when ``floor[s] > 0``.

    The same arithmetic as :func:`advance_statistics` followed by :func:`eligibility_range` over
    all features, which is how the multi-threaded kernel runs it (one range per thread)."""
    advance_statistics(decay, mean_decay, weight, statistics_open)
    eligibility_range(eligibility, decay, post_unit, features, z, mean, power, mean_decay, weight, centre, floor,
                      clip, statistics_open, 0, features.shape[0])


@njit(cache=True)
def unit_gate(k, window_gate, error, gate_kind, threshold, group_of, z):
    """The gate of unit ``k`` (see module docstring)."""
    if window_gate == 0.0:
        return 0.0
    if gate_kind == 1 and not abs(error) > threshold:
        return 0.0
    if gate_kind == 2:
        for j in range(z.shape[0]):  # the winner: largest output, lowest index on ties
            if group_of[j] == group_of[k] and (z[j] > z[k] or (z[j] == z[k] and j < k)):
                return 0.0
    return window_gate


@njit(cache=True)
def apply_update(row, eligibility_row, scale, decay_step, w_min, w_max):
    """``w <- clip(w + scale E - decay_step w, w_min, w_max)`` for one unit (bounds may be inf)."""
    apply_update_range(row, eligibility_row, scale, decay_step, w_min, w_max, 0, row.shape[0])


@njit(cache=True, inline="always")
def apply_update_range(row, eligibility_row, scale, decay_step, w_min, w_max, start, stop):
    """:func:`apply_update` on the weights ``[start, stop)``."""
    weights, tags = row[start:stop], eligibility_row[start:stop]
    for f in range(weights.shape[0]):
        w = weights[f] + scale * tags[f]
        if decay_step != 0.0:
            w = w - decay_step * weights[f]
        if w < w_min:
            w = w_min
        elif w > w_max:
            w = w_max
        weights[f] = w


UNIT_IDLE = -2
""":func:`plan_updates`: the unit does not learn this step."""
UNIT_LIVE_ROW = -1
""":func:`plan_updates`: the unit learns from the current eligibility row."""


@njit(cache=True, inline="always")
def plan_updates(z, targets_row, gates_row, units, rule, dt_ms, unit_scale, unit_slot):
    """The once-per-step part of :func:`three_factor_step`: the outputs enter their ring, each
    listed unit's error and gate are evaluated and its bias learns; ``unit_scale[k]`` receives
    ``eta g error dt`` and ``unit_slot[k]`` the ring slot of the eligibility row it learns from
    (:data:`UNIT_LIVE_ROW`: the current row; :data:`UNIT_IDLE`: the gate is shut). Returns the
    ring slot this step's eligibility rows go to (-1: no ring), and advances the ring position."""
    gate_kind, threshold, group_of = rule.gate_kind, rule.surprise_threshold, rule.group_of
    learning_rate = rule.learning_rate
    bias, bias_rate, lead = rule.bias, rule.bias_learning_rate, rule.lead_steps
    outputs_past, position = rule.output_history, rule.history_position
    ring = outputs_past.shape[1]
    now = position[0]
    slot_now = -1
    if ring > 1:
        for k in range(z.shape[0]):
            outputs_past[k, now] = z[k]
        slot_now = now
        position[0] = (now + 1) % ring
    for k in range(unit_slot.shape[0]):
        unit_slot[k] = UNIT_IDLE
    for idx in range(units.shape[0]):
        k = units[idx]
        if lead[k] > 0:
            then = (now - lead[k]) % ring
            error = targets_row[k] - outputs_past[k, then]
            slot = then
        else:
            error = targets_row[k] - z[k]
            slot = UNIT_LIVE_ROW
        g = unit_gate(k, gates_row[k], error, gate_kind[k], threshold[k], group_of, z)
        if g == 0.0:
            continue
        unit_scale[k] = learning_rate[k] * g * error * dt_ms
        unit_slot[k] = slot
        bias[k] += bias_rate[k] * g * error * dt_ms
    return slot_now


@njit(cache=True, inline="always")
def updates_range(weights, rule, dt_ms, units, unit_scale, unit_slot, slot_now, start, stop):
    """The per-feature part of :func:`three_factor_step` for features ``[start, stop)``, as
    planned by :func:`plan_updates`: the eligibility rows enter the ring slot ``slot_now``, and
    each learning unit's weights move."""
    eligibility, eligibility_of = rule.eligibility, rule.eligibility_of
    weight_decay, w_min, w_max = rule.weight_decay_per_ms, rule.weight_min, rule.weight_max
    rows_past = rule.eligibility_history
    if slot_now >= 0:
        for index in range(rule.history_sets.shape[0]):
            s = rule.history_sets[index]
            past, row = rows_past[s, slot_now, start:stop], eligibility[s, start:stop]
            for f in range(row.shape[0]):
                past[f] = row[f]
    for idx in range(units.shape[0]):
        k = units[idx]
        slot = unit_slot[k]
        if slot == UNIT_IDLE:
            continue
        row = eligibility[eligibility_of[k]] if slot == UNIT_LIVE_ROW else rows_past[eligibility_of[k], slot]
        apply_update_range(weights[k], row, unit_scale[k], weight_decay[k] * dt_ms, w_min[k], w_max[k], start, stop)


@njit(cache=True)
def three_factor_step(weights, z, targets_row, gates_row, units, rule, dt_ms):
    """One online update of the listed three-factor ``units`` (outputs ``z`` already computed,
    eligibility already updated); ``rule`` is the :class:`ThreeFactorState`. With prediction
    leads, the step's outputs and eligibility rows first enter the rings, and a unit with lead
    ``h`` learns from its output and eligibility ``h`` steps back.

    :func:`plan_updates` then :func:`updates_range` over all features (the multi-threaded kernel
    runs the second over one range per thread)."""
    unit_scale, unit_slot = rule.unit_scale, rule.unit_slot
    slot_now = plan_updates(z, targets_row, gates_row, units, rule, dt_ms, unit_scale, unit_slot)
    updates_range(weights, rule, dt_ms, units, unit_scale, unit_slot, slot_now, 0, weights.shape[1])


@njit(cache=True)
def block_dot(row, features, start, stop):
    """``row[start:stop] . features[start:stop]`` in 8 interleaved partial sums (a fixed order,
    so results are reproducible, and independent chains, so the loop is fast), combined as
    ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``; the remainder of fewer than 8 entries
    joins ``s0``. The lanes are one 8-wide vector loop (:func:`reservoir.simd.lane_sums`), with
    the rounding of the scalar chains.

    Measured alternative: the plain loop compiled with ``fastmath={"reassoc"}`` vectorises as
    well, but its summation order then depends on the inlining context, so the replayed update
    no longer equals the online one bit for bit.
    """
    s0, s1, s2, s3, s4, s5, s6, s7 = lane_sums(row, features, start, stop)
    for f in range(stop - (stop - start) % 8, stop):
        s0 += row[f] * features[f]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True)
def readout_value(row, features, offset, rectify, bank_size):
    """``w . x + offset`` (the unit's bias), optionally rectified.

    The features are banks of ``bank_size`` consecutive entries (one per neuron and trace bank),
    each cut into blocks of :data:`reservoir.parallel.WORK_BLOCK_NEURONS`;
    each block's :func:`block_dot` is added in bank-major, block order, then the offset. The
    multi-threaded kernel computes the blocks' partial sums on the threads that own them and adds
    them in the same order, so outputs do not depend on the thread count; a single block (at
    most one block of features per bank, one bank) is exactly the plain 8-chain sum."""
    n = features.shape[0]
    total = 0.0
    for bank_start in range(0, n, bank_size):
        bank_stop = min(bank_start + bank_size, n)
        for start in range(bank_start, bank_stop, WORK_BLOCK_NEURONS):
            total += block_dot(row, features, start, min(start + WORK_BLOCK_NEURONS, bank_stop))
    total = total + offset
    if rectify and total < 0.0:
        return 0.0
    return total


@njit(cache=True)
def replay(weights, stored_features, stored_eligibility, targets, gates, units, rule, rectify, dt_ms, n_replay,
           bank_size):
    """Offline consolidation: replay a stored window ``n_replay`` times.

    ``stored_features`` and ``stored_eligibility`` are ``(T, F)``: the features and the
    eligibility row (of the set the store keeps) at each stored step; ``targets`` and ``gates``
    are ``(T, K)``. For each replay and step, every unit's output is recomputed from the stored
    features and its current weights (summed as the engine does, :func:`readout_value` with the
    features' ``bank_size``), and the online update is applied. Only ``units`` learn.
    """
    n_units = weights.shape[0]
    z = np.zeros(n_units)
    gate_kind, threshold, group_of = rule.gate_kind, rule.surprise_threshold, rule.group_of
    learning_rate, weight_decay, w_min, w_max = rule.learning_rate, rule.weight_decay_per_ms, rule.weight_min, rule.weight_max
    bias, bias_rate = rule.bias, rule.bias_learning_rate
    for _ in range(n_replay):
        for t in range(stored_features.shape[0]):
            x = stored_features[t]
            for k in range(n_units):
                z[k] = readout_value(weights[k], x, bias[k], rectify[k], bank_size)
            for idx in range(units.shape[0]):
                k = units[idx]
                error = targets[t, k] - z[k]
                g = unit_gate(k, gates[t, k], error, gate_kind[k], threshold[k], group_of, z)
                if g == 0.0:
                    continue
                scale = learning_rate[k] * g * error * dt_ms
                apply_update(weights[k], stored_eligibility[t], scale, weight_decay[k] * dt_ms, w_min[k], w_max[k])
                bias[k] += bias_rate[k] * g * error * dt_ms


@njit(cache=True)
def online_rows(weights, z, rule, features, targets, gates, rectify, dt_ms, outputs, stored_eligibility):
    """Run the online rule over consecutive feature rows, in the engine's per-step order
    (outputs, eligibility, update); ``outputs[t]`` and ``stored_eligibility[t]`` (set 0) receive
    each row's outputs and eligibility. The features are one bank."""
    eligibility, decay, post, units = rule.eligibility, rule.eligibility_decay, rule.eligibility_post, rule.online_units
    mean, power, mean_decay, centre, floor, clip = (rule.feature_mean, rule.feature_power, rule.mean_decay,
                                                    rule.centre, rule.normalize_floor, rule.factor_clip)
    weight = rule.statistics_weight
    bias = rule.bias
    for t in range(features.shape[0]):
        x = features[t]
        for k in range(weights.shape[0]):
            z[k] = readout_value(weights[k], x, bias[k], rectify[k], x.shape[0])
            outputs[t, k] = z[k]
        open_statistics(rule.statistics_unit, gates[t], rule.statistics_open)
        update_eligibility(eligibility, decay, post, x, z, mean, power, mean_decay, weight, centre, floor, clip,
                           rule.statistics_open)
        stored_eligibility[t] = eligibility[0]
        three_factor_step(weights, z, targets[t], gates[t], units, rule, dt_ms)


class ThreeFactorReadout:
    """The three-factor rule as a stand-alone learner (scikit-learn / reservoirpy vocabulary).

    Rows of ``X`` are consecutive time steps of ``dt_ms``: the rule is temporal (its
    eligibility trace carries over from row to row), so ``partial_fit`` continues where the last
    call stopped and ``fit`` starts afresh. Runs the same compiled functions, over the same
    :class:`ThreeFactorState` (built by :func:`three_factor_state`), as the engine.

    Parameters
    ----------
    learning_rate, tau_eligibility_ms, post_factor, gate, surprise_threshold, weight_min,
    weight_max, weight_decay_per_ms, centering, normalization, tau_mean_ms, normalization_floor,
    bias_learning_rate, prediction_lead_ms, clip_std, statistics
        As in :class:`ThreeFactorConfig`.
    dt_ms : float
        Time step between rows.
    rectify : bool
        Rectify the outputs.

    Attributes
    ----------
    weights_ : ndarray, shape (K, F)
    bias_ : ndarray, shape (K,)
        The learned biases (zero unless ``bias_learning_rate > 0``).
    state_ : ThreeFactorState
        The rule's state (its ``eligibility`` carries over between ``partial_fit`` calls).
    z_ : ndarray, shape (K,)
        The outputs at the last row seen.
    last_outputs_, last_eligibility_ : ndarray
        Outputs ``(T, K)`` and eligibility (set 0, ``(T, F)``) of each row of the last
        ``partial_fit`` call.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((2000, 5)); w_true = np.array([1.0, -2.0, 0.5, 0.0, 1.0])
    >>> learner = ThreeFactorReadout(learning_rate=0.5, tau_eligibility_ms=0.01, dt_ms=1.0)
    >>> learner = learner.fit(X, X @ w_true)
    >>> bool(np.allclose(learner.weights_[0], w_true, atol=0.05))
    True
    """

    def __init__(self, *, learning_rate: float = 1e-3, tau_eligibility_ms: float = 100.0, dt_ms: float = 1.0,
                 post_factor: str = "none", gate: str = "window", surprise_threshold: float = 0.1,
                 weight_min: float | None = None, weight_max: float | None = None,
                 weight_decay_per_ms: float = 0.0, centering: str = "none", normalization: str = "none",
                 tau_mean_ms: float = 20000.0, normalization_floor: float = 1e-4, bias_learning_rate: float = 0.0,
                 prediction_lead_ms: float = 0.0, rectify: bool = False, clip_std: float | None = None,
                 statistics: str = "always"):
        self.config = ThreeFactorConfig(
            learning_rate=learning_rate, tau_eligibility_ms=tau_eligibility_ms, post_factor=post_factor, gate=gate,
            surprise_threshold=surprise_threshold, weight_min=weight_min, weight_max=weight_max,
            weight_decay_per_ms=weight_decay_per_ms, centering=centering, normalization=normalization,
            tau_mean_ms=tau_mean_ms, normalization_floor=normalization_floor, bias_learning_rate=bias_learning_rate,
            prediction_lead_ms=prediction_lead_ms, clip_std=clip_std, statistics=statistics)
        if not dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {dt_ms!r}")
        self.dt_ms = float(dt_ms)
        self.rectify = bool(rectify)
        self.weights_: np.ndarray | None = None
        self.state_: ThreeFactorState | None = None
        self.z_: np.ndarray | None = None

    def start(self, n_features: int, n_outputs: int = 1) -> "ThreeFactorReadout":
        """Start afresh: zero weights, biases, traces and running statistics for ``n_features``
        inputs and ``n_outputs`` units (what :meth:`fit` does before its rows)."""
        self._allocate(int(n_features), int(n_outputs))
        return self

    def _allocate(self, n_features: int, n_outputs: int) -> None:
        self.weights_ = np.zeros((n_outputs, n_features))
        self.z_ = np.zeros(n_outputs)
        self.state_ = three_factor_state([self.config] * n_outputs, np.zeros(n_outputs, dtype=np.int64), n_features,
                                         self.dt_ms)
        self._rectify_units = np.full(n_outputs, self.rectify)

    @property
    def bias_(self) -> np.ndarray:
        if self.state_ is None:
            raise ValueError("this ThreeFactorReadout is not fitted yet")
        return self.state_.bias

    @property
    def eligibility_(self) -> np.ndarray:
        """The eligibility traces ``(S, F)`` (one set, or one per unit with ``post_factor = "output"``)."""
        if self.state_ is None:
            raise ValueError("this ThreeFactorReadout is not fitted yet")
        return self.state_.eligibility

    def _rows(self, X, Y, gates):
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        if len(Y) != len(X):
            raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
        Y = np.ascontiguousarray(Y.reshape(len(X), -1))
        if self.weights_ is None:
            self._allocate(X.shape[1], Y.shape[1])
        if X.shape[1] != self.weights_.shape[1] or Y.shape[1] != self.weights_.shape[0]:
            raise ValueError(f"expected {self.weights_.shape[1]} features and {self.weights_.shape[0]} targets "
                             f"per row, got {X.shape[1]} and {Y.shape[1]}")
        G = np.ones_like(Y) if gates is None else np.ascontiguousarray(np.broadcast_to(gates, Y.shape), dtype=np.float64)
        return X, Y, G

    def partial_fit(self, X, Y, gates=None) -> "ThreeFactorReadout":
        """Continue online learning over the rows of ``X`` (features) and ``Y`` (targets)."""
        X, Y, G = self._rows(X, Y, gates)
        self.last_outputs_ = np.empty_like(Y)  # the kernel writes every row of both
        self.last_eligibility_ = np.empty_like(X)
        online_rows(self.weights_, self.z_, self.state_, X, Y, G, self._rectify_units, self.dt_ms,
                    self.last_outputs_, self.last_eligibility_)
        return self

    def reset_state(self) -> "ThreeFactorReadout":
        """Zero the eligibility trace and the last output, keeping the weights, the bias and the
        running feature statistics: the trial-start reset of
        :meth:`reservoir.simulation.Simulation.reset_state`, for the learner."""
        if self.weights_ is not None:
            for values in (self.state_.eligibility, self.z_, self.state_.output_history,
                           self.state_.eligibility_history, self.state_.history_position):
                values[...] = 0
        return self

    def fit(self, X, Y, gates=None) -> "ThreeFactorReadout":
        """Start afresh (zero weights and eligibility) and learn online over the rows."""
        self.weights_ = None
        return self.partial_fit(X, Y, gates)

    def replay(self, X, eligibility, Y, gates=None, n_replay: int = 1) -> "ThreeFactorReadout":
        """Offline consolidation: replay stored feature and eligibility rows ``n_replay`` times."""
        X, Y, G = self._rows(X, Y, gates)
        replay(self.weights_, X, np.ascontiguousarray(eligibility, dtype=np.float64), Y, G, self.state_.online_units,
               self.state_, self._rectify_units, self.dt_ms, int(n_replay), X.shape[1])
        return self

    def predict(self, X) -> np.ndarray:
        """Outputs ``z`` for each row (no learning)."""
        if self.weights_ is None:
            raise ValueError("this ThreeFactorReadout is not fitted yet")
        z = np.atleast_2d(X) @ self.weights_.T + self.state_.bias
        return np.maximum(z, 0.0) if self.rectify else z
