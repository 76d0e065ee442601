"""All readout units of a run: their layout, weights, trace bank, rule states and consolidation store."""
from __future__ import annotations

import numpy as np

from ..rng import stream, substream
from ..rules import hlop
from ..rules import rls as rls_rule
from ..rules import three_factor as tf
from .config import ReadoutGroupConfig, ReadoutsConfig
from .kernel import OutputBuffer, ReadoutKernelState, UnitState
from .store import ConsolidationStore
from .teacher import Teacher, TeacherSignals
from .traces import trace_bank

RULE_CODES = {"frozen": 0, "three_factor": 1, "rls": 2}


class Readouts:
    """All readout units of a run, as plain arrays in named bundles.

    Parameters
    ----------
    config : ReadoutsConfig
    n_neurons : int
    dt_ms : float
    seed : int
        Initial weights and feedback encoders come from its ``readout_init`` stream.

    Attributes
    ----------
    bank : TraceBankState
        The features: every neuron's spike train through each filter of ``config.traces``.
    units : UnitState
        Weights ``(K, F)``, outputs, rectification, feedback encoders.
    three_factor : ThreeFactorState
        State of the three-factor units (built by :func:`reservoir.rules.three_factor.three_factor_state`).
    rls : RLSState
        State of the RLS units (:func:`reservoir.rules.rls.rls_state`; inert without an ``rls`` group).
    store : ConsolidationStore
        Windows kept for offline consolidation.
    protection : ProtectionState
        Orthogonal protection of the protected groups' updates across tasks (HLOP lateral
        neurons or the SVD basis, :mod:`reservoir.rules.hlop`); inert unless
        ``config.protection.method`` is set. Tasks call :meth:`next_task` at their boundaries.
    unit_names, group_slices, rule, group_of
        The layout: ``group[i]`` names, each group's unit slice, each unit's rule code and group.
    """

    def __init__(self, config: ReadoutsConfig, n_neurons: int, dt_ms: float, seed: int):
        self.config = config
        self.n_neurons = n_neurons
        self.dt_ms = dt_ms
        self.bank = trace_bank([t.synaptic_filter() for t in config.traces], n_neurons, dt_ms)
        self.n_features = len(config.traces) * n_neurons
        self.unit_names: list[str] = []
        self.group_slices: dict[str, slice] = {}
        start = 0
        for g in config.groups:
            self.group_slices[g.name] = slice(start, start + g.n_units)
            self.unit_names += [f"{g.name}[{i}]" for i in range(g.n_units)]
            start += g.n_units
        k = self.n_units = start
        self.rule = np.zeros(k, dtype=np.int64)
        self.group_of = np.zeros(k, dtype=np.int64)
        rectify = np.zeros(k, dtype=np.bool_)
        weights = np.zeros((k, self.n_features))
        encoders = np.zeros((n_neurons, k))
        unit_rules: list[tf.ThreeFactorConfig | None] = [None] * k
        rng = stream(seed, "readout_init")
        rls_group = None
        for gi, g in enumerate(config.groups):
            sl = self.group_slices[g.name]
            self.rule[sl] = RULE_CODES[g.rule]
            rectify[sl] = g.rectify
            self.group_of[sl] = gi
            if g.initial_weight_std > 0:
                weights[sl] = rng.normal(0.0, g.initial_weight_std, (g.n_units, self.n_features))
            if g.feedback_gain > 0:
                encoders[:, sl] = g.feedback_gain * rng.uniform(-1.0, 1.0, (n_neurons, g.n_units))
            if g.rule == "three_factor":
                unit_rules[sl] = [g.three_factor] * g.n_units
            if g.rule == "rls":
                rls_group = g
        self.has_feedback = bool(np.any(encoders != 0))
        self.units = UnitState(weights, np.zeros(k), rectify, encoders if self.has_feedback else np.zeros((0, k)))
        self.three_factor = tf.three_factor_state(unit_rules, self.group_of, self.n_features, dt_ms)
        self.rls_config = rls_group.rls if rls_group is not None else None
        rls_units = self.group_slices[rls_group.name] if rls_group is not None else slice(0, 0)
        self.rls = rls_rule.rls_state(self.rls_config, self.n_features, rls_units.start, rls_units.stop)
        replayed = self.three_factor.replay_units
        if replayed.size:
            first = self._group(int(replayed[0]))
            self.store = ConsolidationStore(config.store_capacity_steps, self.n_features,
                                            int(self.three_factor.eligibility_of[replayed[0]]),
                                            first.three_factor.consolidation, self.n_units)
        else:
            self.store = ConsolidationStore(0, self.n_features, -1, n_units=self.n_units)
        self.seed = seed
        self.protection_config = config.protection
        protected = hlop.unit_mask(k, self.group_slices, config.protection.groups)
        uses_past_rows = bool(np.any(protected & (self.three_factor.lead_steps > 0))) or bool(
            np.intersect1d(np.flatnonzero(protected), self.three_factor.replay_units).size)
        self.protection = hlop.protection_state(
            config.protection, protected, self.three_factor.eligibility_of, self.three_factor.eligibility.shape[0],
            self.n_features, project_always=uses_past_rows)
        self.task_index = np.zeros(1, dtype=np.int64)
        self.begin_task()
        self.allocate_chunk_buffers(1)

    def _group(self, unit: int) -> ReadoutGroupConfig:
        return self.config.groups[int(self.group_of[unit])]

    # ------------------------------------------------------------------ views
    @property
    def weights(self) -> np.ndarray:
        """Readout weights ``(K, F)`` (the array the kernel updates)."""
        return self.units.weights

    @property
    def z(self) -> np.ndarray:
        return self.units.z

    @property
    def rectify(self) -> np.ndarray:
        return self.units.rectify

    @property
    def encoders(self) -> np.ndarray:
        """Feedback encoders ``(N, K)``, or ``(0, K)`` without feedback."""
        return self.units.feedback_encoders

    @property
    def features(self) -> np.ndarray:
        """The current feature vector (a view of the trace bank)."""
        return self.bank.traces.reshape(self.n_features)

    @property
    def rls_units(self) -> np.ndarray:
        return np.arange(self.rls.unit_start, self.rls.unit_stop, dtype=np.int64)

    def group_weights(self, name: str) -> np.ndarray:
        return self.weights[self.group_slices[name]]

    def group_columns(self, name: str) -> np.ndarray:
        """The unit indices of group ``name``; raises naming the groups if there is none of that name."""
        if name not in self.group_slices:
            raise ValueError(f"readout group {name!r} does not exist; groups are {list(self.group_slices)}")
        sl = self.group_slices[name]
        return np.arange(sl.start, sl.stop)

    # ------------------------------------------------------------------ tasks (protection)
    def begin_task(self) -> int:
        """Start task ``task_index``: HLOP adds its new lateral neurons (random orthonormal rows
        from the run's ``hlop`` stream and the task's index); returns how many. The readouts begin
        task 0 when they are built."""
        rng = substream(self.seed, "hlop", int(self.task_index[0]))
        return hlop.begin_task(self.protection, self.protection_config, rng)

    def end_task(self) -> int:
        """End the current task: merge the new lateral neurons into the projecting ones (HLOP) or
        extend the exact basis (SVD); protected units' biases stop learning. Returns the number
        of projecting rows. A gate window still open (``projection = "per_window"``) is committed
        first, with the rows that projected it."""
        if self.protection.per_window and self.protection.counts[4] == 1:
            if self.protection.counts[0] > 0:
                hlop.commit_window(self.protection, self.weights)
            self.protection.counts[4] = 0
        rows = hlop.end_task(self.protection, self.protection_config)
        if self.protection.method:
            self.three_factor.bias_learning_rate[self.protection.unit_protected] = 0.0
        return rows

    def next_task(self) -> int:
        """End the current task and begin the next; returns the number of projecting rows."""
        rows = self.end_task()
        self.task_index[0] += 1
        self.begin_task()
        return rows

    @property
    def lateral_weights(self) -> np.ndarray:
        """The lateral weights ``H`` (or the SVD basis) in use, ``(rows, F)`` (a copy)."""
        return self.protection.lateral[: int(self.protection.counts[1])].copy()

    @property
    def projecting_rows(self) -> int:
        """How many lateral rows project the updates (the old, frozen ones)."""
        return int(self.protection.counts[0])

    # ------------------------------------------------------------------ state
    def reset_state(self) -> None:
        """Zero the traces, eligibilities and outputs (the trial-start reset), keeping weights and ``P``."""
        tf_state = self.three_factor
        for values in (self.bank.traces, self.bank.traces_aux, tf_state.eligibility, self.units.z,
                       tf_state.output_history, tf_state.eligibility_history, tf_state.history_position):
            values[...] = 0

    def reset_rls(self, reset_weights: bool = False) -> None:
        """FORCE/RLS reset at a chunk boundary: ``P <- I/alpha`` (and ``W <- 0`` if asked)."""
        if self.rls_config is None:
            raise ValueError("no readout group uses the rls rule")
        rls_rule.rls_reset(self.rls.P, self.rls_config.alpha, self.rls.pending_pr, self.rls.pending_coefficients)
        if reset_weights:
            self.weights[self.rls_units] = 0.0

    def flush_rls(self) -> None:
        """Apply the fused RLS kernel's pending correction, so ``P`` is current."""
        if self.rls_config is not None:
            rls_rule.rls_flush(self.rls.P, self.rls.pending_pr, self.rls.pending_coefficients)

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything that changes during a run (for checkpoints)."""
        state = {"traces": self.bank.traces, "traces_aux": self.bank.traces_aux, "weights": self.weights,
                 "z": self.z, "eligibility": self.three_factor.eligibility, "P": self.rls.P,
                 "bias": self.three_factor.bias, "feature_mean": self.three_factor.feature_mean,
                 "feature_power": self.three_factor.feature_power,
                 "statistics_weight": self.three_factor.statistics_weight,
                 "output_history": self.three_factor.output_history,
                 "eligibility_history": self.three_factor.eligibility_history,
                 "history_position": self.three_factor.history_position,
                 "rls_pending_pr": self.rls.pending_pr, "rls_pending_coefficients": self.rls.pending_coefficients,
                 "bias_learning_rate": self.three_factor.bias_learning_rate, "task_index": self.task_index,
                 "lateral": self.protection.lateral, "lateral_counts": self.protection.counts,
                 "lateral_task_mean": self.protection.task_mean,
                 "lateral_window_start": self.protection.window_start,
                 "lateral_second_moment": self.protection.second_moment}
        state.update({f"store_{name}": values for name, values in self.store.get_state().items()})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned (into this readout's arrays)."""
        for name, values in self.get_state().items():
            if not name.startswith("store_"):
                values[...] = state[name]
        self.store.set_state({name.removeprefix("store_"): values for name, values in state.items()
                              if name.startswith("store_")})

    # ------------------------------------------------------------------ kernel interface
    def allocate_chunk_buffers(self, chunk_steps: int) -> None:
        rows = chunk_steps // self.config.output_every_steps + 2
        self.outputs = OutputBuffer(self.config.output_every_steps, np.zeros(rows, dtype=np.int64),
                                    np.zeros((rows, self.n_units)))

    def kernel_state(self, signals: TeacherSignals, offset: int = 0) -> ReadoutKernelState:
        """The bundle :func:`reservoir.readouts.kernel.readout_step` reads (teacher rows from ``offset``)."""
        return ReadoutKernelState(True, self.bank, self.units, self.three_factor, self.rls, signals.rows_from(offset),
                                  self.outputs, self.store.buffer, self.protection)

    # ------------------------------------------------------------ consolidation
    def replay(self, features: np.ndarray, eligibility: np.ndarray, targets: np.ndarray, gates: np.ndarray | None = None,
               units: np.ndarray | None = None, n_replay: int | None = None) -> None:
        """Offline consolidation (:func:`reservoir.rules.three_factor.replay`) of a stored window.

        ``targets`` (and ``gates``, default 1) are ``(T, K)`` over all units; ``units`` defaults
        to the three-factor units that are not online; ``n_replay`` to their group's setting.
        """
        if units is None:
            units = self.three_factor.replay_units
        if units.size == 0:
            return
        if n_replay is None:
            n_replay = self._group(int(units[0])).three_factor.consolidation.n_replay
        targets = np.ascontiguousarray(targets, dtype=np.float64).reshape(len(features), self.n_units)
        gates = np.ones_like(targets) if gates is None else np.ascontiguousarray(gates, dtype=np.float64)
        tf.replay(self.weights, np.ascontiguousarray(features), np.ascontiguousarray(eligibility), targets, gates,
                  np.asarray(units, dtype=np.int64), self.three_factor, self.rectify, self.dt_ms, int(n_replay),
                  self.n_neurons)

    def consolidate(self, teacher: Teacher, trial_index: int) -> None:
        """End of trial ``trial_index``: hand its stored window to the store and replay the
        pending windows when they are due, with the targets and gates the teacher holds for
        those steps (known only after the trial; :meth:`Teacher.rows_at`, so a streamed teacher
        builds only those rows)."""
        batch = self.store.collect(trial_index)
        if batch is not None:
            steps, features, eligibility = batch
            targets, gates = teacher.rows_at(steps)
            self.replay(features, eligibility, targets, gates)


_INACTIVE_STATE: ReadoutKernelState | None = None


def inactive_kernel_state() -> ReadoutKernelState:
    """A readout bundle of the right types and zero sizes, for runs without readouts."""
    global _INACTIVE_STATE
    if _INACTIVE_STATE is None:
        empty = Readouts(ReadoutsConfig(), n_neurons=0, dt_ms=1.0, seed=0)
        empty.allocate_chunk_buffers(0)
        _INACTIVE_STATE = empty.kernel_state(TeacherSignals.idle(0, 0))._replace(active=False)
    return _INACTIVE_STATE
