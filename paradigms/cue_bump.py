"""Three-factor sanity task: a cue, then a target bump at a fixed latency, trial after trial.

Each trial: a current pulse (the cue) into a fixed random subset of excitatory neurons at
``t = 0``; the "when" readout's target is a Gaussian bump centred at ``latency_ms``; the
attention gate is 1 from the cue to the end of the trial and 0 in the inter-trial interval.
With an eligibility trace the rule credits activity before the bump, so the learned output
rises before the latency (anticipation) and peaks near it.

Optionally the reservoir's state is reset at each trial start (``reset_between_trials``): an
explicit simplification that makes the cue-evoked trajectory reliable across trials
(``docs/design-choices.md``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis.claims import cue_bump_claims
from analysis.plots import cue_bump_figure, save
from analysis.trials import aligned
from reservoir.inputs import PieceSchedule, ScheduledInput
from reservoir.readouts import Intervals, Readouts, ScheduledTeacher
from reservoir.rng import stream

from .base import Segment, Task


class CueBumpTaskConfig(BaseModel):
    """A cue, then a target bump at a fixed latency, trial after trial (the three-factor sanity task)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["cue_bump"] = "cue_bump"
    group: str = Field("when", description="the readout group that learns the bump")
    n_trials: int = Field(200, ge=2, description="number of trials")
    trial_ms: float = Field(400.0, gt=0.0, description="cue onset to end of the attended window")
    iti_ms: float = Field(200.0, ge=0.0, description="inter-trial interval (no input, gate 0)")
    cue_ms: float = Field(50.0, gt=0.0, description="cue pulse duration")
    cue_amplitude: float = Field(20.0, description="cue pulse current")
    cue_fraction: float = Field(0.5, gt=0.0, le=1.0, description="fraction of excitatory neurons cued")
    latency_ms: float = Field(150.0, gt=0.0, description="centre of the target bump after the cue")
    bump_width_ms: float = Field(20.0, gt=0.0, description="standard deviation of the Gaussian bump")
    bump_amplitude: float = Field(1.0, gt=0.0, description="height of the target bump")
    reset_between_trials: bool = Field(False, description="restart the reservoir from its initial state at each trial")
    test_trials: int = Field(20, ge=1, description="last trials averaged for the metrics")

    @model_validator(mode="after")
    def _fits(self) -> "CueBumpTaskConfig":
        if self.latency_ms >= self.trial_ms:
            raise ValueError("latency_ms must lie inside the trial (below trial_ms)")
        if self.test_trials >= self.n_trials:
            raise ValueError("test_trials must be fewer than n_trials")
        return self

    @property
    def period_ms(self) -> float:
        return self.trial_ms + self.iti_ms

    def duration_ms(self) -> float:
        return self.n_trials * self.period_ms


class CueBumpTask(Task):
    """See the module docstring; ``cued`` is the cue's neuron subset, set by :meth:`prepare`."""

    def __init__(self, config, n_steps: int, dt_ms: float, seed: int):
        super().__init__(config, n_steps, dt_ms, seed)
        self.cued = np.zeros(0, dtype=np.int64)

    def prepare(self, network, readouts: Readouts | None):
        c = self.config
        if readouts is None:
            raise ValueError("task.kind = 'cue_bump' needs a readouts section")
        period = self.steps(c.period_ms)
        if period * c.n_trials > self.n_steps:
            raise ValueError(f"duration_ms must be at least n_trials * (trial_ms + iti_ms) = {c.duration_ms():g}")
        exc = np.flatnonzero(network.neurons.is_excitatory)
        rng = stream(self.seed, "task")
        cued = np.sort(rng.choice(exc, size=max(1, int(round(c.cue_fraction * exc.size))), replace=False))
        columns = readouts.group_columns(c.group)
        t_trial = np.arange(self.steps(c.trial_ms)) * self.dt_ms
        bump = c.bump_amplitude * np.exp(-0.5 * ((t_trial - c.latency_ms) / c.bump_width_ms) ** 2)
        self.cued = cued
        onsets = np.arange(c.n_trials, dtype=np.int64) * period
        cue_steps = self.steps(c.cue_ms)
        external = ScheduledInput.from_subsets([np.full((1, 1), c.cue_amplitude)], onsets, np.zeros(c.n_trials),
                                               np.zeros(c.n_trials), [cued], length_steps=np.full(c.n_trials, cue_steps),
                                               n_steps=self.n_steps)
        # each trial: the bump as the target and the gate open in every unit of the group
        trial_of = np.repeat(np.arange(c.n_trials), columns.size)
        column_of = np.tile(columns, c.n_trials)
        bumps = PieceSchedule(readouts.n_units, [bump[:, None]], onsets[trial_of], np.zeros(trial_of.size),
                              column_of, n_steps=self.n_steps)
        gates = Intervals(onsets[trial_of], np.full(trial_of.size, bump.size), column_of, np.ones(trial_of.size))
        learn = Intervals.from_rows([(0, self.n_steps, 0, 1.0)])  # RLS events allowed everywhere
        # units that consolidate offline store their gated window; they do not learn online
        store = None
        if readouts.store.capacity_steps and columns.size:
            store = Intervals(onsets, np.full(c.n_trials, bump.size), np.zeros(c.n_trials), np.ones(c.n_trials))
        return external, ScheduledTeacher(readouts.n_units, targets=bumps, gates=gates, learn=learn, store=store,
                                          n_steps=self.n_steps)

    def segments(self) -> list[Segment]:
        period = self.steps(self.config.period_ms)
        segments = [Segment(i * period, period, f"trial {i}") for i in range(self.config.n_trials)]
        rest = self.n_steps - period * self.config.n_trials
        if rest > 0:
            segments.append(Segment(period * self.config.n_trials, rest, "after"))
        return segments

    def after_segment(self, simulation, index: int) -> None:
        if index < self.config.n_trials:
            self.consolidate(simulation, index)
        if self.config.reset_between_trials:
            simulation.reset_state()

    def trial_outputs(self, run, column: int) -> np.ndarray:
        """``(n_trials, samples)`` output of ``column`` aligned to each cue."""
        c = self.config
        onsets = np.arange(c.n_trials) * self.steps(c.period_ms) * self.dt_ms
        return aligned(run, column, onsets, c.trial_ms)

    def metrics(self, run, out_dir: Path) -> dict:
        c = self.config
        start, _ = run.readout_groups[c.group]
        trials = self.trial_outputs(run, start)
        t = np.arange(trials.shape[1]) * run.output_dt_ms
        target = c.bump_amplitude * np.exp(-0.5 * ((t - c.latency_ms) / c.bump_width_ms) ** 2)
        first = trials[: c.test_trials].mean(axis=0)
        last = trials[-c.test_trials:].mean(axis=0)
        peak = int(np.argmax(last))
        above = np.flatnonzero(last[: peak + 1] < 0.5 * last[peak])
        rise_ms = float(t[above[-1] + 1]) if above.size else 0.0
        errors = np.sqrt(np.mean((trials - target) ** 2, axis=1))
        metrics = {
            "latency_ms": c.latency_ms,
            "peak_time_ms": float(t[peak]),
            "peak_error_ms": float(t[peak] - c.latency_ms),
            "peak_amplitude": float(last[peak]),
            "half_rise_time_ms": rise_ms,
            "anticipatory_lead_ms": float(c.latency_ms - rise_ms),
            "correlation_with_target_last_trials": float(np.corrcoef(last, target)[0, 1]),
            "rms_error_first_trials": float(errors[: c.test_trials].mean()),
            "rms_error_last_trials": float(errors[-c.test_trials:].mean()),
            "peak_time_first_trials_ms": float(t[int(np.argmax(first))]),
        }
        return {**metrics, "claims": cue_bump_claims(metrics)}

    def figures(self, run, out_dir: Path, metrics: dict) -> list[Path]:
        c = self.config
        start, _ = run.readout_groups[c.group]
        trials = self.trial_outputs(run, start)
        fig = cue_bump_figure(trials, run.output_dt_ms, c, metrics)
        return [save(fig, out_dir / "figures" / "cue_bump.png")]
