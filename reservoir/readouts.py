"""Readouts: linear units over filtered spike trains, learning inside the compiled loop.

Each readout unit ``k`` has weights ``w_k`` over the feature vector ``x(t)``: the reservoir's
spike trains passed through one or more trace filters (a "trace bank"; feature ``b N + j`` is
neuron ``j`` through filter ``b``). Its output is ``z_k = w_k . x`` (optionally rectified).
Units come in named groups (``when``, ``what``, ...); each group has one rule:

``frozen``        no learning (weights as initialised or loaded);
``three_factor``  :mod:`reservoir.rules.three_factor`;
``rls``           FORCE / recursive least squares, :mod:`reservoir.rules.rls` (at most one group).

A group may feed its outputs back into the reservoir through fixed random encoders
``Q U(-1, 1)`` (closed-loop FORCE; Nicola & Clopath 2017).

What the task supplies per step (a :class:`TeacherSignals` chunk): targets ``(T, K)``, gates
``(T, K)`` in [0, 1], ``learn`` (RLS updates allowed) and ``store`` (keep this step for offline
consolidation).

Per-step order inside the kernel, right after spike detection: trace bank update -> outputs
``z`` -> eligibility -> three-factor update -> RLS update (every ``learn_every`` steps) ->
output recording and window storage; the feedback current ``E z`` enters this step's total
current.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .rules import three_factor as tf
from .rules.rls import RLSConfig
from .rng import stream

RULE_CODES = {"frozen": 0, "three_factor": 1, "rls": 2}
TRACE_CODES = {"exponential": 1, "double_exponential": 2}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceFilterConfig(_Section):
    """One filter of the trace bank (unit-area kernels, as the synaptic filters)."""

    kind: Literal["exponential", "double_exponential"] = "exponential"
    tau_ms: float = Field(20.0, gt=0.0)
    tau_rise_ms: float = Field(2.0, gt=0.0)
    tau_decay_ms: float = Field(20.0, gt=0.0)

    def coefficients(self, dt_ms: float) -> tuple[int, float, float, float]:
        """``(code, decay_primary, decay_secondary, jump)`` as :meth:`SynapticFilter.coefficients`."""
        code = TRACE_CODES[self.kind]
        if self.kind == "exponential":
            return code, math.exp(-dt_ms / self.tau_ms), 0.0, 1.0 / self.tau_ms
        return (code, math.exp(-dt_ms / self.tau_rise_ms), math.exp(-dt_ms / self.tau_decay_ms),
                1.0 / (self.tau_rise_ms * self.tau_decay_ms))


class ReadoutGroupConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    n_units: int = Field(1, ge=1)
    rule: Literal["frozen", "three_factor", "rls"] = "three_factor"
    rectify: bool = False
    feedback_gain: float = Field(0.0, ge=0.0, description="Q of the feedback encoders Q U(-1,1); 0: none")
    initial_weight_std: float = Field(0.0, ge=0.0, description="weights start N(0, std^2); 0: zeros")
    three_factor: tf.ThreeFactorConfig = tf.ThreeFactorConfig()
    rls: RLSConfig = RLSConfig()


class ReadoutsConfig(_Section):
    traces: list[TraceFilterConfig] = Field(default_factory=lambda: [TraceFilterConfig()], min_length=1)
    groups: list[ReadoutGroupConfig] = Field(default_factory=list)
    output_every_steps: int = Field(1, ge=1)
    snapshot_every_ms: float | None = Field(None, gt=0.0)
    store_capacity_steps: int = Field(4000, ge=1, description="longest window kept for consolidation")

    @model_validator(mode="after")
    def _consistent(self) -> "ReadoutsConfig":
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"groups: readout group names must be unique, got {names}")
        if sum(g.rule == "rls" for g in self.groups) > 1:
            raise ValueError("groups: at most one group may use the rls rule (its units share one P)")
        return self


@dataclass
class TeacherSignals:
    """What the task tells the readouts during ``T`` steps (see module docstring)."""

    targets: np.ndarray
    gates: np.ndarray
    learn: np.ndarray
    store: np.ndarray

    @classmethod
    def idle(cls, n_steps: int, n_units: int) -> "TeacherSignals":
        """No targets, no learning (gates 0), no storage."""
        return cls(np.zeros((n_steps, n_units)), np.zeros((n_steps, n_units)), np.zeros(n_steps, dtype=np.bool_),
                   np.zeros(n_steps, dtype=np.bool_))


class Teacher:
    """Supplies :class:`TeacherSignals` chunk by chunk from whole-run arrays.

    ``targets`` is ``(T, K)``; ``gates`` defaults to 1 everywhere, ``learn`` to True,
    ``store`` to False. Steps past the arrays' end are idle.
    """

    def __init__(self, targets, gates=None, learn=None, store=None):
        self.targets = np.ascontiguousarray(np.atleast_2d(np.asarray(targets, dtype=np.float64).T).T)
        n, k = self.targets.shape
        self.gates = np.ones((n, k)) if gates is None else np.ascontiguousarray(gates, dtype=np.float64).reshape(n, k)
        self.learn = np.ones(n, dtype=np.bool_) if learn is None else np.asarray(learn, dtype=np.bool_).reshape(n)
        self.store = np.zeros(n, dtype=np.bool_) if store is None else np.asarray(store, dtype=np.bool_).reshape(n)
        if np.any((self.gates < 0) | (self.gates > 1)):
            raise ValueError("gates must lie in [0, 1]")

    def chunk(self, first_step: int, n_steps: int) -> TeacherSignals:
        out = TeacherSignals.idle(n_steps, self.targets.shape[1])
        stop = min(first_step + n_steps, self.targets.shape[0])
        if stop > first_step:
            rows = slice(first_step, stop)
            m = stop - first_step
            out.targets[:m] = self.targets[rows]
            out.gates[:m] = self.gates[rows]
            out.learn[:m] = self.learn[rows]
            out.store[:m] = self.store[rows]
        return out


class Readouts:
    """All readout units of a run: configuration, weights and rule state as plain arrays."""

    def __init__(self, config: ReadoutsConfig, n_neurons: int, dt_ms: float, seed: int):
        self.config = config
        self.n_neurons = n_neurons
        self.dt_ms = dt_ms
        banks = [t.coefficients(dt_ms) for t in config.traces]
        self.trace_kind = np.array([b[0] for b in banks], dtype=np.int64)
        self.trace_decay1 = np.array([b[1] for b in banks])
        self.trace_decay2 = np.array([b[2] for b in banks])
        self.trace_jump = np.array([b[3] for b in banks])
        self.traces = np.zeros((len(banks), n_neurons))
        self.traces_aux = np.zeros((len(banks), n_neurons))
        self.n_features = len(banks) * n_neurons
        groups = config.groups
        self.unit_names: list[str] = []
        self.group_slices: dict[str, slice] = {}
        start = 0
        for g in groups:
            self.group_slices[g.name] = slice(start, start + g.n_units)
            self.unit_names += [f"{g.name}[{i}]" for i in range(g.n_units)]
            start += g.n_units
        k = start
        self.n_units = k
        rng = stream(seed, "readout_init")
        self.weights = np.zeros((k, self.n_features))
        self.z = np.zeros(k)
        self.rule = np.zeros(k, dtype=np.int64)
        self.rectify = np.zeros(k, dtype=np.bool_)
        self.group_of = np.zeros(k, dtype=np.int64)
        self.learning_rate = np.zeros(k)
        self.gate_kind = np.zeros(k, dtype=np.int64)
        self.threshold = np.zeros(k)
        self.w_min = np.full(k, -np.inf)
        self.w_max = np.full(k, np.inf)
        self.weight_decay = np.zeros(k)
        self.eligibility_of = np.zeros(k, dtype=np.int64)
        decays, posts = [], []
        encoders = np.zeros((n_neurons, k))
        self.rls_units = np.zeros(0, dtype=np.int64)
        self.rls_config: RLSConfig | None = None
        for gi, g in enumerate(groups):
            sl = self.group_slices[g.name]
            self.rule[sl] = RULE_CODES[g.rule]
            self.rectify[sl] = g.rectify
            self.group_of[sl] = gi
            if g.initial_weight_std > 0:
                self.weights[sl] = rng.normal(0.0, g.initial_weight_std, (g.n_units, self.n_features))
            if g.feedback_gain > 0:
                encoders[:, sl] = g.feedback_gain * rng.uniform(-1.0, 1.0, (n_neurons, g.n_units))
            if g.rule == "three_factor":
                c = g.three_factor
                self.learning_rate[sl] = c.learning_rate
                self.gate_kind[sl] = tf.GATE_CODES[c.gate]
                self.threshold[sl] = c.surprise_threshold
                self.w_min[sl], self.w_max[sl] = tf.bounds(c)
                self.weight_decay[sl] = c.weight_decay_per_ms
                if c.post_factor == "output":
                    for unit in range(sl.start, sl.stop):
                        self.eligibility_of[unit] = len(decays)
                        decays.append(c.eligibility_decay(dt_ms))
                        posts.append(unit)
                else:  # units without a post factor share one eligibility trace per time constant
                    decay = c.eligibility_decay(dt_ms)
                    shared = [s for s, (d, p) in enumerate(zip(decays, posts)) if d == decay and p < 0]
                    if shared:
                        self.eligibility_of[sl] = shared[0]
                    else:
                        self.eligibility_of[sl] = len(decays)
                        decays.append(decay)
                        posts.append(-1)
            if g.rule == "rls":
                self.rls_units = np.arange(sl.start, sl.stop, dtype=np.int64)
                self.rls_config = g.rls
        self.three_factor_units = np.flatnonzero(self.rule == RULE_CODES["three_factor"]).astype(np.int64)
        self.online_units = np.array([u for u in self.three_factor_units
                                      if self._group_config(u).three_factor.consolidation.mode == "online"],
                                     dtype=np.int64)
        self.eligibility = np.zeros((len(decays), self.n_features))
        self.eligibility_decay = np.array(decays, dtype=np.float64)
        self.eligibility_post = np.array(posts, dtype=np.int64)
        self.has_feedback = bool(np.any(encoders != 0))
        self.encoders = encoders if self.has_feedback else np.zeros((0, k))
        # RLS state: one P shared by the RLS units, updated by the fused kernel (its pending
        # rank-one correction is flushed at the end of every chunk, so P is current between chunks)
        from .rules import rls

        if self.rls_config is not None:
            self.P = rls.rls_initial_P(self.n_features, self.rls_config.alpha)
            self.rls_pending_pr, self.rls_pending_coefficients = rls.rls_pending_state(self.n_features)
            self.rls_every = self.rls_config.learn_every_steps
            self.rls_forgetting = self.rls_config.forgetting
            self.rls_form = rls.DECODER_FORMS[self.rls_config.decoder_form]
        else:
            self.P = np.zeros((0, 0))
            self.rls_pending_pr, self.rls_pending_coefficients = np.zeros(0), np.array([0.0, 1.0])
            self.rls_every, self.rls_forgetting, self.rls_form = 1, 1.0, 0
        self.rls_scratch = np.zeros(max(self.n_features, 1))
        self.rls_errors = np.zeros(max(len(self.rls_units), 1))
        # consolidation window storage
        capacity = config.store_capacity_steps if any(
            self._group_config(u).three_factor.consolidation.mode != "online" for u in self.three_factor_units) else 0
        self.stored_features = np.zeros((capacity, self.n_features))
        self.stored_eligibility = np.zeros((capacity, self.n_features))
        self.stored_steps = np.zeros(capacity, dtype=np.int64)
        self.n_stored = 0
        self.allocate_chunk_buffers(1)

    def _group_config(self, unit: int) -> ReadoutGroupConfig:
        return self.config.groups[int(self.group_of[unit])]

    @property
    def features(self) -> np.ndarray:
        """The current feature vector (a view of the trace bank)."""
        return self.traces.reshape(self.n_features)

    def group_weights(self, name: str) -> np.ndarray:
        return self.weights[self.group_slices[name]]

    def reset_rls(self, reset_weights: bool = False) -> None:
        """FORCE/RLS reset at a chunk boundary: ``P <- I/alpha`` (and ``W <- 0`` if asked)."""
        from .rules import rls

        if self.rls_config is None:
            raise ValueError("no readout group uses the rls rule")
        rls.rls_reset(self.P, self.rls_config.alpha, self.rls_pending_pr, self.rls_pending_coefficients)
        if reset_weights:
            self.weights[self.rls_units] = 0.0

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything that changes during a run (for checkpoints)."""
        return {"traces": self.traces, "traces_aux": self.traces_aux, "weights": self.weights, "z": self.z,
                "eligibility": self.eligibility, "P": self.P}

    # ------------------------------------------------------------------ kernel interface
    @property
    def store_set(self) -> int:
        """The eligibility set whose rows are stored for replay (-1: store the features)."""
        replayed = [u for u in self.three_factor_units if u not in set(self.online_units.tolist())]
        return int(self.eligibility_of[replayed[0]]) if replayed else -1

    def allocate_chunk_buffers(self, chunk_steps: int) -> None:
        rows = chunk_steps // self.config.output_every_steps + 2
        self.out_steps = np.zeros(rows, dtype=np.int64)
        self.out_z = np.zeros((rows, self.n_units))

    def kernel_state(self, signals: TeacherSignals, offset: int = 0) -> tuple:
        """The tuple :func:`reservoir.readout_kernel.readout_step` unpacks (teacher rows from ``offset``)."""
        lo = int(self.rls_units[0]) if self.rls_units.size else 0
        hi = int(self.rls_units[-1]) + 1 if self.rls_units.size else 0
        return (
            self.traces, self.traces_aux, self.trace_kind, self.trace_decay1, self.trace_decay2, self.trace_jump,
            self.weights, self.z, self.rectify, self.online_units, self.learning_rate, self.gate_kind, self.threshold,
            self.group_of, self.w_min, self.w_max, self.weight_decay, self.eligibility, self.eligibility_decay,
            self.eligibility_post, self.eligibility_of,
            signals.targets[offset:], signals.gates[offset:], signals.learn[offset:], signals.store[offset:],
            lo, hi, self.P, self.rls_pending_pr, self.rls_pending_coefficients, self.rls_every, self.rls_forgetting,
            self.rls_form, self.rls_scratch, self.rls_errors,
            self.config.output_every_steps, self.out_steps, self.out_z,
            self.stored_features, self.stored_eligibility, self.stored_steps, self.store_set,
        )

    def flush_rls(self) -> None:
        """Apply the fused RLS kernel's pending correction, so ``P`` is current."""
        if self.rls_config is not None:
            from .rules import rls

            rls.rls_flush(self.P, self.rls_pending_pr, self.rls_pending_coefficients)

    # ------------------------------------------------------------ consolidation
    def take_stored_window(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored ``(steps, features, eligibility)`` since the last call, and clear the store."""
        n = self.n_stored
        window = (self.stored_steps[:n].copy(), self.stored_features[:n].copy(), self.stored_eligibility[:n].copy())
        self.n_stored = 0
        return window

    def replay(self, features: np.ndarray, eligibility: np.ndarray, targets: np.ndarray, gates: np.ndarray | None = None,
               units: np.ndarray | None = None, n_replay: int | None = None) -> None:
        """Offline consolidation (:func:`reservoir.rules.three_factor.replay`) of a stored window.

        ``targets`` (and ``gates``, default 1) are ``(T, K)`` over all units; ``units`` defaults
        to the three-factor units that are not online; ``n_replay`` to their group's setting.
        """
        if units is None:
            units = np.array([u for u in self.three_factor_units if u not in set(self.online_units.tolist())],
                             dtype=np.int64)
        if units.size == 0:
            return
        if n_replay is None:
            n_replay = self._group_config(int(units[0])).three_factor.consolidation.n_replay
        targets = np.ascontiguousarray(targets, dtype=np.float64).reshape(len(features), self.n_units)
        gates = np.ones_like(targets) if gates is None else np.ascontiguousarray(gates, dtype=np.float64)
        tf.replay(self.weights, np.ascontiguousarray(features), np.ascontiguousarray(eligibility), 0, targets, gates,
                  np.asarray(units, dtype=np.int64), self.learning_rate, self.gate_kind, self.threshold, self.group_of,
                  self.w_min, self.w_max, self.weight_decay, self.rectify, self.dt_ms, int(n_replay))


_EMPTY_STATE: tuple | None = None


def empty_kernel_state() -> tuple:
    """A readout tuple of the right types and zero sizes, for runs without readouts."""
    global _EMPTY_STATE
    if _EMPTY_STATE is None:
        empty = Readouts(ReadoutsConfig(), n_neurons=0, dt_ms=1.0, seed=0)
        empty.allocate_chunk_buffers(0)
        _EMPTY_STATE = empty.kernel_state(TeacherSignals.idle(0, 0))
    return _EMPTY_STATE
