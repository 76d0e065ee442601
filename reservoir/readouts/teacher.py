"""What a task tells the readouts, step by step: targets, gates, and when to learn or store.

:class:`Teacher` holds whole-run arrays; :class:`WindowTeacher` and :class:`ScheduledTeacher`
generate their rows chunk by chunk from a description whose size does not grow with the run's
length. The engine reads every teacher through :meth:`Teacher.chunk`; offline consolidation
reads the rows of the stored steps through :meth:`Teacher.rows_at`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..inputs import PieceSchedule, windows_in_chunk

ROWS_AT_GAP_STEPS = 4096
""":meth:`Teacher.rows_at` builds one span of rows per run of steps whose gaps are at most this."""


class TeacherSignals(NamedTuple):
    """The teacher's rows for ``T`` steps (also the kernel's view of them).

    ``targets`` and ``gates`` are ``(T, K)`` (gates in [0, 1]); ``learn`` allows RLS events;
    ``store`` keeps the step's features and eligibility for offline consolidation.
    """

    targets: np.ndarray
    gates: np.ndarray
    learn: np.ndarray
    store: np.ndarray

    @classmethod
    def idle(cls, n_steps: int, n_units: int) -> "TeacherSignals":
        """No targets, no learning (gates 0), no storage."""
        return cls(np.zeros((n_steps, n_units)), np.zeros((n_steps, n_units)), np.zeros(n_steps, dtype=np.bool_),
                   np.zeros(n_steps, dtype=np.bool_))

    def rows_from(self, offset: int) -> "TeacherSignals":
        """The rows from ``offset`` on (views)."""
        return TeacherSignals(self.targets[offset:], self.gates[offset:], self.learn[offset:], self.store[offset:])


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

    @property
    def n_units(self) -> int:
        return self.targets.shape[1]

    @property
    def end_step(self) -> int:
        """The first step from which on the teacher is idle for good (the arrays' length)."""
        return self.targets.shape[0]

    def materialize(self, n_steps: int | None = None) -> TeacherSignals:
        """The rows of steps ``0 .. n_steps - 1`` as :meth:`chunk` gives them (default:
        :attr:`end_step` rows), for short runs and checks."""
        n_steps = self.end_step if n_steps is None else int(n_steps)
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        return self.chunk(0, n_steps)

    def rows_at(self, steps) -> tuple[np.ndarray, np.ndarray]:
        """``(targets, gates)``, each ``(len(steps), K)``, at the given steps (sorted, >= 0), as
        :meth:`chunk` gives them (idle past the end). Built from one :meth:`chunk` per run of
        steps with gaps of at most :data:`ROWS_AT_GAP_STEPS`, so a streamed teacher builds only
        the span it needs."""
        steps = np.asarray(steps, dtype=np.int64).reshape(-1)
        k = self.n_units
        targets, gates = np.zeros((steps.size, k)), np.zeros((steps.size, k))
        if steps.size == 0:
            return targets, gates
        gaps = np.diff(steps)
        if steps[0] < 0 or np.any(gaps < 0):
            raise ValueError(f"rows_at needs sorted steps >= 0, got first step {steps[0]} and "
                             f"{int(np.sum(gaps < 0))} decreasing step(s)")
        breaks = (np.flatnonzero(gaps > ROWS_AT_GAP_STEPS) + 1).tolist()
        for lo, hi in zip([0, *breaks], [*breaks, steps.size]):
            first = int(steps[lo])
            span = self.chunk(first, int(steps[hi - 1]) - first + 1)
            rows = steps[lo:hi] - first
            targets[lo:hi] = span.targets[rows]
            gates[lo:hi] = span.gates[rows]
        return targets, gates

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

    def digest_arrays(self) -> list[np.ndarray]:
        """The arrays that define this teacher (for a simulation's fingerprint)."""
        return [self.targets, self.gates, self.learn, self.store]


class WindowTeacher(Teacher):
    """Targets in windows, generated chunk by chunk (memory independent of the run's length).

    Window ``i`` covers steps ``[start_steps[i], start_steps[i] + length_steps)``; in it the
    units' targets are ``targets[i]`` (``(n_windows, K)``) and their gates ``gates[i]``; outside
    every window the targets and gates are 0. ``learn`` (RLS events) is on inside windows and
    nothing is stored for replay. ``targets``/``gates`` hold one row per window, not per step.
    """

    def __init__(self, start_steps, length_steps: int, targets, gates):
        self.start_steps = np.ascontiguousarray(start_steps, dtype=np.int64)
        self.length_steps = int(length_steps)
        self.targets = np.ascontiguousarray(np.atleast_2d(targets), dtype=np.float64)
        self.gates = np.ascontiguousarray(gates, dtype=np.float64).reshape(self.targets.shape)
        self.learn = np.zeros(0, dtype=np.bool_)
        self.store = np.zeros(0, dtype=np.bool_)
        if self.start_steps.shape != (self.targets.shape[0],):
            raise ValueError("start_steps needs one entry per row of targets")
        if self.start_steps.size > 1 and np.any(np.diff(self.start_steps) < self.length_steps):
            raise ValueError("windows overlap: starts must be at least length_steps apart and increasing")
        if np.any((self.gates < 0) | (self.gates > 1)):
            raise ValueError("gates must lie in [0, 1]")

    def chunk(self, first_step: int, n_steps: int) -> TeacherSignals:
        out = TeacherSignals.idle(n_steps, self.targets.shape[1])
        for i, rows in windows_in_chunk(self.start_steps, self.length_steps, first_step, n_steps):
            out.targets[rows] = self.targets[i]
            out.gates[rows] = self.gates[i]
            out.learn[rows] = True
        return out

    @property
    def end_step(self) -> int:
        return int(self.start_steps[-1]) + self.length_steps if self.start_steps.size else 0

    def digest_arrays(self) -> list[np.ndarray]:
        return [self.start_steps, np.array([self.length_steps]), self.targets, self.gates]


class Intervals(NamedTuple):
    """Constant intervals of one teacher field: ``values[i]`` in column ``columns[i]`` for the
    steps ``[start_steps[i], start_steps[i] + length_steps[i])`` (sorted by start)."""

    start_steps: np.ndarray
    length_steps: np.ndarray
    columns: np.ndarray
    values: np.ndarray

    @classmethod
    def from_rows(cls, rows) -> "Intervals":
        """From ``(start_step, length_steps, column, value)`` tuples."""
        rows = list(rows)
        if not rows:
            return cls.empty()
        if any(len(row) != 4 for row in rows):
            raise ValueError("each interval is (start_step, length_steps, column, value)")
        start, length, column, value = zip(*rows)
        return cls(np.asarray(start, dtype=np.int64), np.asarray(length, dtype=np.int64),
                   np.asarray(column, dtype=np.int64), np.asarray(value, dtype=np.float64))

    @classmethod
    def empty(cls) -> "Intervals":
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                   np.zeros(0))

    @classmethod
    def concatenate(cls, parts: list["Intervals"]) -> "Intervals":
        """The intervals of ``parts`` in one list, sorted by start with a stable sort (at equal
        starts, and within each part, the given order is kept)."""
        if not parts:
            return cls.empty()
        start = np.concatenate([np.asarray(p.start_steps, dtype=np.int64).reshape(-1) for p in parts])
        order = np.argsort(start, kind="stable")
        return cls(start[order],
                   *(np.concatenate([np.asarray(getattr(p, name)).reshape(-1) for p in parts])[order]
                     for name in ("length_steps", "columns", "values")))


class ScheduledTeacher(Teacher):
    """A teacher defined by intervals, generated chunk by chunk (memory independent of the run's
    length).

    Each field - ``targets`` and ``gates`` (``(T, n_units)``), ``learn`` and ``store`` (``(T,)``,
    column 0) - is given as :class:`Intervals` (or a list of ``(start_step, length_steps, column,
    value)`` tuples), sorted by start step, or as a :class:`~reservoir.inputs.PieceSchedule`
    (time courses, e.g. a target bump per trial). Every field is 0 (False) outside its intervals.
    Intervals are written in the given order with **assignment**: where two overlap, the later
    one's value is kept (not added), as writing them one after another into whole-run arrays
    would; ``learn`` and ``store`` are True where their value is non-zero. Steps at and after
    ``n_steps`` (when given) are idle. There are no whole-run arrays: :meth:`chunk`,
    :meth:`rows_at` and :meth:`materialize` build the rows asked for.
    """

    FIELDS = ("targets", "gates", "learn", "store")

    def __init__(self, n_units: int, targets=None, gates=None, learn=None, store=None, n_steps: int | None = None):
        self._n_units = int(n_units)
        if self._n_units < 0:
            raise ValueError(f"n_units must be >= 0, got {n_units}")
        self.n_steps = None if n_steps is None else int(n_steps)
        given = {"targets": targets, "gates": gates, "learn": learn, "store": store}
        schedules = {name: self._schedule(name, spec) for name, spec in given.items()}
        gate_levels = np.concatenate([t.ravel() for t in schedules["gates"].templates] + [np.zeros(0)])
        if np.any((gate_levels < 0) | (gate_levels > 1)):
            raise ValueError(f"gates must lie in [0, 1], got values from {gate_levels.min():g} to {gate_levels.max():g}")
        self.n_intervals = {name: int(schedule.start_steps.size) for name, schedule in schedules.items()}
        # the four fields side by side (targets | gates | learn | store): one render per chunk
        self.schedule = PieceSchedule.side_by_side([schedules[name] for name in self.FIELDS])

    def _schedule(self, name: str, spec) -> PieceSchedule:
        n_channels = self._n_units if name in ("targets", "gates") else 1
        if isinstance(spec, PieceSchedule):
            if spec.n_channels != n_channels or spec.n_steps != self.n_steps:
                raise ValueError(f"{name}: the schedule has {spec.n_channels} channels and n_steps {spec.n_steps}; "
                                 f"expected {n_channels} channels and n_steps {self.n_steps}")
            return spec
        intervals = Intervals.empty() if spec is None else (spec if isinstance(spec, Intervals)
                                                            else Intervals.from_rows(spec))
        try:
            return PieceSchedule.from_intervals(n_channels, intervals.start_steps, intervals.length_steps,
                                                intervals.columns, intervals.values, n_steps=self.n_steps)
        except ValueError as error:
            raise ValueError(f"{name} intervals: {error}") from None

    def _no_arrays(self):
        raise AttributeError("a ScheduledTeacher has no whole-run arrays: read its rows with chunk(), rows_at() "
                             "or materialize()")

    targets = property(_no_arrays)
    gates = property(_no_arrays)
    learn = property(_no_arrays)
    store = property(_no_arrays)

    @property
    def n_units(self) -> int:
        return self._n_units

    @property
    def end_step(self) -> int:
        return self.schedule.end_step

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={n}" for name, n in self.n_intervals.items())
        return f"ScheduledTeacher(n_units={self._n_units}, n_steps={self.n_steps}, pieces: {counts})"

    def chunk(self, first_step: int, n_steps: int) -> TeacherSignals:
        k = self._n_units
        rows = self.schedule.render(first_step, n_steps)
        return TeacherSignals(np.ascontiguousarray(rows[:, :k]), np.ascontiguousarray(rows[:, k:2 * k]),
                              rows[:, 2 * k] != 0, rows[:, 2 * k + 1] != 0)

    def digest_arrays(self) -> list[np.ndarray]:
        return [np.array([self._n_units, -1 if self.n_steps is None else self.n_steps], dtype=np.int64),
                *self.schedule.digest_arrays()]
