"""What a task tells the readouts, step by step: targets, gates, and when to learn or store."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..inputs import windows_in_chunk


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

    def digest_arrays(self) -> list[np.ndarray]:
        return [self.start_steps, np.array([self.length_steps]), self.targets, self.gates]
