"""FORCE training of a sinusoid (Nicola & Clopath 2017, ``IZFORCESINE.m``).

The reservoir runs untrained, then RLS is on from ``learn_start_ms`` to ``learn_stop_ms`` with
the target ``amplitude sin(2 pi f t)`` fed back through the readout's encoders, then the network
runs on its own. Metrics: RMS error while RLS is on; frequency and amplitude of the output in
the second after RLS stops; firing rates before and after training.

References
----------
Nicola, W., & Clopath, C. (2017). Supervised learning in spiking neural networks with FORCE
training. Nature Communications, 8, 2208. doi:10.1038/s41467-017-01827-3
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis.claims import force_sine_claims
from analysis.plots import save, sine_training_figure
from analysis.spikes import firing_rates_hz
from reservoir.inputs import ExternalInput
from reservoir.readouts import Intervals, Readouts, ScheduledTeacher, TeacherSignals

from .base import Segment, Task


class SineTaskConfig(BaseModel):
    """FORCE training of a sinusoid (Nicola & Clopath 2017): RLS on between two times, then free running."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["sine"] = "sine"
    group: str = Field("force", description="the rls readout group trained on the sine")
    frequency_hz: float = Field(5.0, gt=0.0, description="target frequency")
    amplitude: float = Field(1.0, gt=0.0, description="target amplitude")
    learn_start_ms: float = Field(5000.0, ge=0.0, description="RLS on from here")
    learn_stop_ms: float = Field(10000.0, gt=0.0, description="RLS off from here")
    analysis_window_ms: float = Field(1000.0, gt=0.0, description="post-training window for frequency/amplitude")

    @model_validator(mode="after")
    def _order(self) -> "SineTaskConfig":
        if self.learn_stop_ms <= self.learn_start_ms:
            raise ValueError("learn_stop_ms must come after learn_start_ms")
        return self


def oscillation_frequency_and_amplitude(signal: np.ndarray, dt_ms: float) -> tuple[float, float]:
    """Frequency (Hz) from the mean period between upward zero crossings of the mean-removed
    signal (linearly interpolated), and amplitude as half the mean peak-to-trough range per cycle."""
    x = signal - signal.mean()
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    if up.size < 2:
        return float("nan"), float("nan")
    crossings = (up + (-x[up]) / (x[up + 1] - x[up])) * dt_ms
    frequency = 1000.0 / np.mean(np.diff(crossings))
    ranges = [np.ptp(signal[a:b]) for a, b in zip(up[:-1], up[1:])]
    return float(frequency), float(np.mean(ranges) / 2)


SINE_BLOCK_STEPS = 16
"""The sine target is evaluated over blocks of steps aligned to multiples of this (see :class:`SineTeacher`)."""


def sine_target(amplitude: float, frequency_hz: float, first_step: int, n_steps: int, dt_ms: float) -> np.ndarray:
    """``amplitude sin(2 pi f t)`` at ``t = step * dt_ms`` for the steps ``first_step .. first_step + n_steps - 1``."""
    t_ms = np.arange(first_step, first_step + n_steps) * dt_ms
    return amplitude * np.sin(2 * np.pi * frequency_hz * t_ms / 1000.0)


class SineTeacher(ScheduledTeacher):
    """The FORCE sine task's teacher, chunk by chunk: the target ``amplitude sin(2 pi f t)`` in
    ``columns`` (0 elsewhere) at every step before ``n_steps``, gates 1 in every unit, and RLS
    ``learn`` on in ``[learn_start_step, learn_stop_step)``.

    Each chunk's sine is computed from the step index over a span widened to multiples of
    :data:`SINE_BLOCK_STEPS` (and to the run's end when the chunk reaches its last block), so that
    a vectorised ``np.sin`` sees every step in the same position of its vector block as over the
    whole run: the values are the whole-run array's, bit for bit, wherever the chunks fall.
    """

    def __init__(self, n_units: int, columns, amplitude: float, frequency_hz: float, dt_ms: float,
                 learn_start_step: int, learn_stop_step: int, n_steps: int):
        self.columns = np.ascontiguousarray(columns, dtype=np.int64)
        self.amplitude, self.frequency_hz, self.dt_ms = float(amplitude), float(frequency_hz), float(dt_ms)
        gates = Intervals(np.zeros(n_units), np.full(n_units, n_steps), np.arange(n_units), np.ones(n_units))
        learn = Intervals.from_rows([(learn_start_step, max(0, learn_stop_step - learn_start_step), 0, 1.0)])
        super().__init__(n_units, gates=gates, learn=learn, n_steps=n_steps)

    def chunk(self, first_step: int, n_steps: int) -> TeacherSignals:
        out = super().chunk(first_step, n_steps)
        stop = min(first_step + n_steps, self.n_steps)
        if stop > first_step and self.columns.size:
            block = SINE_BLOCK_STEPS
            lo = first_step - first_step % block
            hi = min(-(-stop // block) * block, self.n_steps)
            values = sine_target(self.amplitude, self.frequency_hz, lo, hi - lo, self.dt_ms)
            out.targets[: stop - first_step, self.columns] = values[first_step - lo: stop - lo, None]
        return out

    def digest_arrays(self) -> list[np.ndarray]:
        return [*super().digest_arrays(), self.columns, np.array([self.amplitude, self.frequency_hz, self.dt_ms])]


class SineTask(Task):
    def target(self) -> np.ndarray:
        """The whole run's target (for checks; the run reads it chunk by chunk from :class:`SineTeacher`)."""
        c = self.config
        return sine_target(c.amplitude, c.frequency_hz, 0, self.n_steps, self.dt_ms)

    def prepare(self, network, readouts: Readouts | None):
        if readouts is None:
            raise ValueError("task.kind = 'sine' needs a readouts section with an rls group")
        c = self.config
        columns = readouts.group_columns(c.group)
        teacher = SineTeacher(readouts.n_units, columns, c.amplitude, c.frequency_hz, self.dt_ms,
                              self.steps(c.learn_start_ms), self.steps(c.learn_stop_ms), self.n_steps)
        return ExternalInput.none(), teacher

    def segments(self) -> list[Segment]:
        a = min(self.steps(self.config.learn_start_ms), self.n_steps)
        b = min(self.steps(self.config.learn_stop_ms), self.n_steps)
        parts = [(0, a, "before"), (a, b - a, "training"), (b, self.n_steps - b, "after")]
        return [Segment(start, n, label) for start, n, label in parts if n > 0]

    def metrics(self, run, out_dir: Path) -> dict:
        c = self.config
        column = int(self.group_columns_from_run(run)[0])
        t = run.output_time_ms
        z = run.outputs[:, column]
        target = c.amplitude * np.sin(2 * np.pi * c.frequency_hz * t / 1000.0)
        during = (t >= c.learn_start_ms) & (t < c.learn_stop_ms)
        after = (t >= c.learn_stop_ms) & (t < c.learn_stop_ms + c.analysis_window_ms)
        frequency, amplitude = oscillation_frequency_and_amplitude(z[after], run.output_dt_ms)

        def rate(start, stop):
            keep = (run.spike_times_ms >= start) & (run.spike_times_ms < stop)
            return float(firing_rates_hz(run.spike_ids[keep], run.n_neurons, stop - start).mean()) if stop > start else None

        last_second = (t >= c.learn_stop_ms - 1000.0) & (t < c.learn_stop_ms)
        rms = lambda keep: float(np.sqrt(np.mean((z[keep] - target[keep]) ** 2))) if keep.any() else None  # noqa: E731
        metrics = {
            "rms_error_during_training": rms(during),
            "rms_error_last_second_of_training": rms(last_second),
            "rms_error_after_training": rms(after),
            "frequency_after_training_hz": frequency,
            "amplitude_after_training": amplitude,
            "target_frequency_hz": c.frequency_hz,
            "target_amplitude": c.amplitude,
            "rate_before_training_hz": rate(0.0, min(c.learn_start_ms, run.duration_ms)),
            "rate_during_training_hz": rate(c.learn_start_ms, min(c.learn_stop_ms, run.duration_ms)),
            "rate_after_training_hz": rate(c.learn_stop_ms, run.duration_ms),
        }
        return {**metrics, "claims": force_sine_claims(metrics)}

    def group_columns_from_run(self, run) -> np.ndarray:
        start, stop = run.readout_groups[self.config.group]
        return np.arange(start, stop)

    def figures(self, run, out_dir: Path, metrics: dict) -> list[Path]:
        column = int(self.group_columns_from_run(run)[0])
        fig = sine_training_figure(run, column, self.config, metrics)
        return [save(fig, out_dir / "figures" / "force_sine.png")]
