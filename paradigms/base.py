"""What a task is: inputs, teacher signals, a schedule of segments, metrics and figures.

A task never touches the engine's internals: it returns an :class:`~reservoir.inputs.ExternalInput`
and a :class:`~reservoir.readouts.Teacher` for the whole run, cuts the run into segments (a
trial, a training phase) and may act between segments (offline replay, an RLS reset), then
reads the finished run file back for its metrics and figures (with :mod:`analysis`).

Everything a task remembers during a run lives in attributes made in ``__init__`` and is
returned by :meth:`Task.get_state`: the runner attaches the task to the simulation's
checkpoints, so a resumed run continues with the same memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from reservoir.inputs import ExternalInput
from reservoir.readouts import Readouts, Teacher


class NoTaskConfig(BaseModel):
    """No task: the network runs with the ``[stimulus]`` section's input, readouts are idle."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["none"] = Field("none", description="no task")


@dataclass
class Segment:
    """A stretch of the run simulated by one ``Simulation.run`` call."""

    start_step: int
    n_steps: int
    label: str = ""


class Task:
    """Base class: no input, idle readouts, one segment, no metrics.

    Attributes
    ----------
    segments_done : int
        Segments simulated and followed by :meth:`after_segment` (the runner counts them; a
        checkpoint saves the count, so a resumed run skips exactly those).
    """

    def __init__(self, config, n_steps: int, dt_ms: float, seed: int):
        self.config = config
        self.n_steps = n_steps
        self.dt_ms = dt_ms
        self.seed = seed
        self.segments_done = 0

    def prepare(self, network, readouts: Readouts | None) -> tuple[ExternalInput, Teacher | None]:
        """The run's external input and teacher (built once, before the run)."""
        return ExternalInput.none(), None

    def segments(self) -> list[Segment]:
        return [Segment(0, self.n_steps, "run")]

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        """Tables written to ``/task/<name>/<column>`` of the run file (e.g. the trial table)."""
        return {}

    def after_segment(self, simulation, index: int) -> None:
        """Called after segment ``index`` (replay, resets...)."""

    def consolidate(self, simulation, trial_index: int) -> None:
        """Offline consolidation of the readouts whose rule replays stored windows
        (:meth:`reservoir.readouts.Readouts.consolidate`), at the end of trial ``trial_index``."""
        if simulation.readouts is not None:
            simulation.readouts.consolidate(simulation.teacher, trial_index)

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, np.ndarray]:
        """What the task remembers during a run (saved in checkpoints)."""
        return {"segments_done": np.array(self.segments_done, dtype=np.int64)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.segments_done = int(state["segments_done"])

    # ------------------------------------------------------------------ results
    def metrics(self, run, out_dir: Path) -> dict:
        """The task's measures of a finished run (``run``: :class:`analysis.Run`)."""
        return {}

    def figures(self, run, out_dir: Path, metrics: dict) -> list[Path]:
        """The task's figures, written under ``out_dir/figures`` (``metrics``: from :meth:`metrics`)."""
        return []

    # helpers
    def steps(self, ms: float) -> int:
        return int(round(ms / self.dt_ms))
