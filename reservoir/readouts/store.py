"""Offline consolidation: the windows a trial stores, the windows waiting for replay, and when to replay.

While the task's ``store`` signal is on, the kernel appends each step's features, the
eligibility row of one set and the units' outputs (:class:`StoreBuffer`) to the store's buffer. Between trials the task
hands the trial over (:meth:`ConsolidationStore.collect`): the stored window joins the pending
windows, and the store says when they are due for replay: after every trial (``replay``) or
every ``batch_every_trials`` trials (``batch_replay``). The replay itself is the rule's
(:meth:`reservoir.readouts.Readouts.consolidate`). Everything the store holds is part of the
checkpoint state (:meth:`get_state`), so a resumed run replays exactly what an uninterrupted one
would.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..rules.three_factor import ConsolidationConfig


class StoreBuffer(NamedTuple):
    """The kernel's view of the store: rows of features, eligibility and their steps."""

    features: np.ndarray
    eligibility: np.ndarray
    steps: np.ndarray
    eligibility_set: int
    """The eligibility set whose rows are stored (-1: store the features)."""
    outputs: np.ndarray
    """``(capacity, K)`` every unit's output ``z`` at each stored step (before any replay of it)."""


Window = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(steps, features, eligibility)`` of stored rows."""


class ConsolidationStore:
    """Stored and pending windows of the units that consolidate offline.

    Parameters
    ----------
    capacity_steps : int
        Rows the buffer holds (0 when no unit consolidates offline: nothing is stored).
    n_features : int
    eligibility_set : int
        The eligibility set of the replayed units.
    consolidation : ConsolidationConfig
        Their group's schedule (``replay`` or ``batch_replay``) and number of replays.
    n_units : int
        Readout units (their outputs are stored with each row).
    """

    def __init__(self, capacity_steps: int, n_features: int, eligibility_set: int,
                 consolidation: ConsolidationConfig | None = None, n_units: int = 0):
        self.consolidation = consolidation if consolidation is not None else ConsolidationConfig()
        self.buffer = StoreBuffer(np.zeros((capacity_steps, n_features)), np.zeros((capacity_steps, n_features)),
                                  np.zeros(capacity_steps, dtype=np.int64), int(eligibility_set),
                                  np.zeros((capacity_steps, n_units)))
        self.n_stored = 0
        self.pending: list[Window] = []

    @property
    def capacity_steps(self) -> int:
        return self.buffer.steps.shape[0]

    @property
    def n_features(self) -> int:
        return self.buffer.features.shape[1]

    def window(self) -> Window:
        """The rows stored since the last :meth:`take_window` (views)."""
        n = self.n_stored
        return self.buffer.steps[:n], self.buffer.features[:n], self.buffer.eligibility[:n]

    def window_outputs(self) -> np.ndarray:
        """``(T, K)`` the units' outputs at the rows stored since the last :meth:`take_window`
        (a view): what each unit answered during the trial, before any replay of it."""
        return self.buffer.outputs[:self.n_stored]

    def take_window(self) -> Window:
        """The stored rows (copies), and empty the buffer."""
        window = tuple(values.copy() for values in self.window())
        self.n_stored = 0
        return window

    def collect(self, trial_index: int) -> Window | None:
        """Move this trial's window to the pending windows; return them all, concatenated, when
        they are due for replay (``None`` otherwise, and always when nothing is stored).

        A window due at once with nothing pending (``replay`` after every trial) is returned as
        views of the buffer, not copied: valid until the kernel stores the next row, i.e. for the
        replay that follows between two segments."""
        if self.capacity_steps == 0:
            return None
        c = self.consolidation
        due = not (c.mode == "batch_replay" and (trial_index + 1) % c.batch_every_trials)
        if due and not self.pending:
            window = self.window()
            self.n_stored = 0
            return window
        self.pending.append(self.take_window())
        if not due:
            return None
        batch = tuple(np.concatenate([w[i] for w in self.pending]) for i in range(3))
        self.pending = []
        return batch

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, np.ndarray]:
        """The stored rows and the pending windows (concatenated, which replays identically)."""
        pending = [np.concatenate([w[i] for w in self.pending]) if self.pending else empty
                   for i, empty in enumerate((np.zeros(0, dtype=np.int64), np.zeros((0, self.n_features)),
                                              np.zeros((0, self.n_features))))]
        steps, features, eligibility = self.window()
        return {"stored_steps": steps, "stored_features": features, "stored_eligibility": eligibility,
                "stored_outputs": self.window_outputs(), "pending_steps": pending[0], "pending_features": pending[1], "pending_eligibility": pending[2]}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        n = len(state["stored_steps"])
        if n > self.capacity_steps:
            raise ValueError(f"the saved store holds {n} rows, more than this store's capacity {self.capacity_steps}")
        self.buffer.steps[:n] = state["stored_steps"]
        self.buffer.features[:n] = state["stored_features"]
        self.buffer.eligibility[:n] = state["stored_eligibility"]
        self.buffer.outputs[:n] = state["stored_outputs"]
        self.n_stored = n
        pending = (np.asarray(state["pending_steps"]), np.asarray(state["pending_features"]),
                   np.asarray(state["pending_eligibility"]))
        self.pending = [pending] if len(pending[0]) else []
