"""What a task is: inputs, teacher signals, a schedule of segments, metrics and figures.

A task never touches the engine's internals: it returns an :class:`~reservoir.inputs.ExternalInput`
and a :class:`~reservoir.readouts.Teacher` for the whole run, cuts the run into segments (a
trial, a training phase) and may act between segments (offline replay, an RLS reset), then
reads the finished run file back for its metrics and figures.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reservoir.inputs import ExternalInput
from reservoir.readouts import Readouts, Teacher


@dataclass
class Segment:
    """A stretch of the run simulated by one ``Simulation.run`` call."""

    start_step: int
    n_steps: int
    label: str = ""


class Task:
    """Base class: no input, idle readouts, one segment, no metrics."""

    def __init__(self, config, n_steps: int, dt_ms: float, seed: int):
        self.config = config
        self.n_steps = n_steps
        self.dt_ms = dt_ms
        self.seed = seed

    def prepare(self, network, readouts: Readouts | None) -> tuple[ExternalInput, Teacher | None]:
        return ExternalInput.none(), None

    def segments(self) -> list[Segment]:
        return [Segment(0, self.n_steps, "run")]

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        """Tables written to ``/task/<name>/<column>`` of the run file (e.g. the trial table)."""
        return {}

    def after_segment(self, simulation, index: int) -> None:
        """Called between segments (replay, resets...)."""

    def consolidate(self, simulation, trial_index: int) -> None:
        """Offline consolidation of the readouts whose rule replays stored windows.

        ``replay``: the window stored during this trial is replayed right away, with the targets
        and gates the teacher holds for those steps (known only after the trial). ``batch_replay``:
        windows are collected and replayed together every ``batch_every_trials`` trials.
        """
        readouts = simulation.readouts
        if readouts is None or readouts.stored_steps.size == 0:
            return
        replayed = [u for u in readouts.three_factor_units if u not in set(readouts.online_units.tolist())]
        if not replayed:
            return
        consolidation = readouts._group_config(int(replayed[0])).three_factor.consolidation
        steps, features, eligibility = readouts.take_stored_window()
        pending = getattr(self, "_pending_windows", [])
        pending.append((steps, features, eligibility))
        self._pending_windows = pending
        if consolidation.mode == "batch_replay" and (trial_index + 1) % consolidation.batch_every_trials:
            return
        steps = np.concatenate([w[0] for w in pending])
        teacher = simulation.teacher
        readouts.replay(np.concatenate([w[1] for w in pending]), np.concatenate([w[2] for w in pending]),
                        teacher.targets[steps], teacher.gates[steps])
        self._pending_windows = []

    def metrics(self, run, out_dir: Path) -> dict:
        return {}

    def figures(self, run, out_dir: Path) -> list[Path]:
        return []

    # helpers
    def steps(self, ms: float) -> int:
        return int(round(ms / self.dt_ms))

    @staticmethod
    def group_columns(readouts: Readouts, name: str) -> np.ndarray:
        if name not in readouts.group_slices:
            raise ValueError(f"task: readout group {name!r} does not exist; groups are {list(readouts.group_slices)}")
        sl = readouts.group_slices[name]
        return np.arange(sl.start, sl.stop)
