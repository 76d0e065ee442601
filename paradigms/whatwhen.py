"""The what/when prediction paradigm (Yamada & Chao 2025, arXiv:2510.14382; the methods are not
public, so the trial structure below is the project's design; ``docs/design-choices.md``).

Trial: a cue (a current pulse into the cue's own subset of excitatory neurons, and optionally
the cue's time basis, :class:`TimeBasisConfig`) at ``t = 0``; the outcome (a pulse into the
identity's own subset, or only the readouts' target with ``outcome_amplitude = 0``) arrives at
the cue's latency ``L`` with the identity's probability, or is omitted; the attended window
lasts ``trial_ms`` from the cue; an inter-trial interval with no input and gate 0 follows. Cues are interleaved at random. Blocks
change a cue's latency or probabilities (switches), and the whole schedule (the trial table) is
drawn from the run's ``task`` stream before the run.

Readouts:

* ``when`` (one unit, learning online every step): target 1 while an outcome of any identity is
  present, gate 1 inside the attended window. With a constant learning rate it tends to the
  conditional expectation ``p(outcome) x`` the outcome's time course.
* ``what`` (one unit per identity, consolidated offline): the features and eligibility of the
  anticipation window (cue onset to ``L``) are stored during the trial; after the trial, when the
  identity is known, the window is replayed with target 1 for the identity that occurred and 0
  for the others (all 0 on omission), so the outputs tend to ``P(identity | cue)``.

An RLS "when" readout (FORCE baseline) may replace the three-factor one: same features, same
targets, learning while the gate is open; ``rls_reset_at_switch`` resets ``P`` (and, with
``rls_reset_weights``, the weights) at each block start.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import h5py
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis.retention import when_retention
from analysis.figures import whatwhen_figures
from analysis.whatwhen import WhatWhenDesign, whatwhen_metrics, with_claims
from reservoir.inputs import ScheduledInput
from reservoir.readouts import Intervals, Readouts, ScheduledTeacher
from reservoir.rng import stream_seed

from .base import Segment, Task


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CueConfig(_Strict):
    """One cue of the task (a `[[task.cues]]` table)."""

    name: str = Field(description="the cue's name (blocks change cues by name)")
    latency_ms: float = Field(gt=0.0, description="outcome onset after the cue")
    probabilities: dict[str, float] = Field(description="identity -> probability; the rest is omission")

    @model_validator(mode="after")
    def _valid(self) -> "CueConfig":
        if any(p < 0 for p in self.probabilities.values()) or sum(self.probabilities.values()) > 1 + 1e-9:
            raise ValueError(f"cue {self.name!r}: probabilities must be >= 0 and sum to at most 1")
        return self


class TimeBasisConfig(_Strict):
    """A cue's time basis: channels whose currents peak one after another after the cue.

    Channel ``i`` of a cue carries ``amplitude * exp(-(ln(t / c_i))^2 / (2 s^2))`` at time ``t``
    after the cue, with centres ``c_i`` spaced evenly (``spacing = "linear"``) or geometrically
    (``"log"``, scale-invariant: later channels are broader, as in Weber's law) from
    ``first_ms`` to ``last_ms``, and ``s = width * ln(c_(i+1) / c_i)`` for the log spacing; for
    the linear spacing each channel is a Gaussian in time of standard deviation ``width x`` the
    spacing. Each (cue, channel) drives its own subset of excitatory neurons. A temporal
    backbone of this kind is what Ludvig, Sutton & Kehoe (Neural Comput 2008, "microstimuli")
    and Pogodin et al. (arXiv 1910.10559) give a Hebbian readout; it is the project's choice for
    carrying time under noise (docs/design-choices.md).
    """

    n_channels: int = Field(24, ge=1, description="channels per cue")
    first_ms: float = Field(20.0, gt=0.0, description="centre of the first channel after the cue")
    last_ms: float | None = Field(None, gt=0.0, description="centre of the last channel (none: trial_ms)")
    spacing: Literal["linear", "log"] = Field("linear", description="`linear` or `log` (geometric) centres")
    width: float = Field(0.6, gt=0.0, description="channel width relative to the spacing of the centres")
    amplitude: float = Field(10.0, description="peak current of each channel")
    fraction: float = Field(0.01, gt=0.0, le=1.0, description="fraction of excitatory neurons per (cue, channel)")

    def centres_ms(self, trial_ms: float) -> np.ndarray:
        last = self.last_ms if self.last_ms is not None else trial_ms
        if self.n_channels == 1:
            return np.array([self.first_ms])
        if self.spacing == "log":
            return np.geomspace(self.first_ms, last, self.n_channels)
        return np.linspace(self.first_ms, last, self.n_channels)

    def waveforms(self, t_ms: np.ndarray, trial_ms: float) -> np.ndarray:
        """``(len(t_ms), n_channels)`` channel currents at times ``t_ms`` after the cue."""
        centres = self.centres_ms(trial_ms)
        t = np.asarray(t_ms, dtype=float)[:, None]
        if self.n_channels == 1:
            step = centres[0]
        elif self.spacing == "log":
            step = np.log(centres[1] / centres[0])
        else:
            step = centres[1] - centres[0]
        sigma = self.width * step
        if self.spacing == "log":
            with np.errstate(divide="ignore"):
                z = np.where(t > 0, np.log(np.maximum(t, 1e-300) / centres[None, :]), -np.inf)
            return self.amplitude * np.exp(-0.5 * (z / sigma) ** 2)
        return self.amplitude * np.exp(-0.5 * ((t - centres[None, :]) / sigma) ** 2)


class CueChange(_Strict):
    """What a block changes about one cue (the rest carries over)."""

    latency_ms: float | None = Field(None, gt=0.0, description="the cue's new latency")
    probabilities: dict[str, float] | None = Field(None, description="the cue's new identity probabilities")


class BlockConfig(_Strict):
    """A block of trials (a `[[task.blocks]]` table); its changes hold from its start on."""

    name: str = Field("", description="the block's name (figures, metrics)")
    n_trials: int = Field(ge=1, description="trials in the block")
    changes: dict[str, CueChange] = Field(default_factory=dict, description="cue name -> what changes in this block")
    cues: list[str] | None = Field(None, description=(
        "the cues drawn in this block (a context: a cue set with its own identities, latencies and probabilities); "
        "none: every cue"))


class WhatWhenTaskConfig(_Strict):
    """The what/when prediction task: cues predict which outcome comes, when, and how likely (docs/design-choices.md)."""

    kind: Literal["whatwhen"] = "whatwhen"
    group: str = Field("when", description="the 'when' readout group (one unit)")
    what_group: str | None = Field("what", description="the 'what' group (one unit per identity), or none")
    identities: list[str] = Field(default_factory=lambda: ["A", "B"], min_length=1,
                                  description="outcome identities, each with its own input subset")
    cues: list[CueConfig] = Field(min_length=1, description="the cues, drawn at random each trial")
    blocks: list[BlockConfig] = Field(min_length=1, description="blocks of trials, in order")
    trial_ms: float = Field(800.0, gt=0.0, description="attended window from the cue (gate 1)")
    iti_ms: float = Field(400.0, ge=0.0, description="inter-trial interval (no input, gate 0)")
    cue_ms: float = Field(10.0, gt=0.0, description="cue pulse duration")
    cue_amplitude: float = Field(30.0, description="cue pulse current")
    cue_hold_amplitude: float = Field(0.0, description=(
        "current held on the cue's own neurons from the end of the pulse to the end of the attended window "
        "(trial_ms): a cue-specific constant input, no temporal structure (0: the pulse only)"))
    cue_fraction: float = Field(0.4, gt=0.0, le=1.0, description="fraction of excitatory neurons per cue")
    cue_gain_spread: float = Field(0.0, ge=0.0, le=1.0, description=(
        "per-neuron cue gains drawn from U(1 - spread, 1 + spread): with cue_fraction = 1 every cue "
        "reaches every excitatory neuron, in its own pattern"))
    time_basis: TimeBasisConfig | None = Field(None, description=(
        "a time basis per cue (channels peaking one after another, each into its own neuron subset), "
        "in addition to the pulse; none: the pulse only"))
    outcome_ms: float = Field(50.0, gt=0.0, description="outcome pulse duration (and the 'when' target's)")
    outcome_amplitude: float = Field(10.0, description="outcome pulse current (0: a teacher signal only)")
    outcome_fraction: float = Field(0.1, gt=0.0, le=1.0, description="fraction of excitatory neurons per identity")
    gate_delay_ms: float = Field(0.0, ge=0.0, description=(
        "the readouts' gates (and the RLS learn signal) open this long after the cue and stay open to the end of "
        "the attended window: learning skips the cue's own burst (0: from the cue on)"))
    reset_between_trials: bool = Field(False, description="restart the reservoir from its initial state at each "
                                                          "trial (a simplification)")
    rls_reset_at_switch: bool = Field(False, description="FORCE baseline: `P <- I/alpha` at each block start")
    rls_reset_weights: bool = Field(False, description="FORCE baseline: also `W <- 0` at each block start")
    test_trials: int = Field(30, ge=1, description="trials of each cue at the end of a block used for metrics")
    blocks_are_tasks: bool = Field(False, description=(
        "each block after the first starts a new task for the readouts' protection (`[readouts.protection]`, "
        "HLOP): sequential contexts; the retention of each block's 'when' prediction after the last block is "
        "measured"))

    @model_validator(mode="after")
    def _consistent(self) -> "WhatWhenTaskConfig":
        names = [c.name for c in self.cues]
        if len(set(names)) != len(names):
            raise ValueError(f"cues: names must be unique, got {names}")
        if self.gate_delay_ms >= self.trial_ms:
            raise ValueError(f"gate_delay_ms: {self.gate_delay_ms} must be shorter than trial_ms ({self.trial_ms})")
        known = set(self.identities)
        for cue in self.cues:
            if set(cue.probabilities) - known:
                raise ValueError(f"cues: cue {cue.name!r} names unknown identities {sorted(set(cue.probabilities) - known)}")
            if cue.latency_ms + self.outcome_ms > self.trial_ms:
                raise ValueError(f"cues: cue {cue.name!r}: latency_ms + outcome_ms must fit in trial_ms")
        for block in self.blocks:
            if block.cues is not None and (not block.cues or set(block.cues) - set(names)):
                raise ValueError(f"blocks: block {block.name!r} draws unknown or no cues {block.cues}; cues are {names}")
            for name, change in block.changes.items():
                if name not in names:
                    raise ValueError(f"blocks: block {block.name!r} changes unknown cue {name!r}")
                if change.probabilities is not None:
                    if set(change.probabilities) - known or sum(change.probabilities.values()) > 1 + 1e-9:
                        raise ValueError(f"blocks: block {block.name!r}, cue {name!r}: invalid probabilities")
                if change.latency_ms is not None and change.latency_ms + self.outcome_ms > self.trial_ms:
                    raise ValueError(f"blocks: block {block.name!r}, cue {name!r}: latency does not fit the trial")
        return self

    @property
    def period_ms(self) -> float:
        return self.trial_ms + self.iti_ms

    @property
    def n_trials(self) -> int:
        return sum(b.n_trials for b in self.blocks)

    def duration_ms(self) -> float:
        return self.n_trials * self.period_ms

    def cue_settings(self) -> list[list[tuple[float, dict[str, float]]]]:
        """For each block, each cue's ``(latency_ms, probabilities)`` in force (changes carry over)."""
        current = [(c.latency_ms, dict(c.probabilities)) for c in self.cues]
        names = [c.name for c in self.cues]
        out = []
        for block in self.blocks:
            if block.cues is not None and (not block.cues or set(block.cues) - set(names)):
                raise ValueError(f"blocks: block {block.name!r} draws unknown or no cues {block.cues}; cues are {names}")
            for name, change in block.changes.items():
                i = names.index(name)
                latency, probs = current[i]
                current[i] = (change.latency_ms or latency,
                              dict(change.probabilities) if change.probabilities is not None else probs)
            out.append(list(current))
        return out


TRIAL_FIELDS = ("trial", "block", "cue", "identity", "latency_ms", "onset_step", "p_outcome")


class WhatWhenTask(Task):
    """See the module docstring.

    Attributes
    ----------
    table : dict of arrays
        The trial table (:meth:`schedule`), drawn when the task is made.
    when_column, what_columns, subsets
        The readout units of the 'when' and 'what' groups and the input subsets of the cues
        and identities, set by :meth:`prepare`.
    offline_errors : list of float
        Mean ``|error|`` of the 'what' units over each stored window, before its replay
        (known only during the run; saved in checkpoints).
    """

    def __init__(self, config, n_steps: int, dt_ms: float, seed: int):
        super().__init__(config, n_steps, dt_ms, seed)
        self.table = self.schedule()
        self.when_column: int | None = None
        self.what_columns = np.zeros(0, dtype=np.int64)
        self.subsets: list[np.ndarray] = []
        self.offline_errors: list[float] = []
        self.block_weights = np.zeros((len(config.blocks), 0, 0))
        self.block_bias = np.zeros((len(config.blocks), 0))

    def schedule(self) -> dict[str, np.ndarray]:
        """The trial table, drawn from the ``task`` stream (``identity`` -1 is an omission)."""
        c = self.config
        rng = np.random.default_rng(stream_seed(self.seed, "task").spawn(2)[0])
        settings = c.cue_settings()
        period = self.steps(c.period_ms)
        rows = []
        trial = 0
        for b, block in enumerate(c.blocks):
            allowed = None if block.cues is None else [[x.name for x in c.cues].index(n) for n in block.cues]
            for _ in range(block.n_trials):
                cue = int(rng.integers(len(c.cues))) if allowed is None else allowed[int(rng.integers(len(allowed)))]
                latency, probs = settings[b][cue]
                p = np.array([probs.get(name, 0.0) for name in c.identities])
                u = rng.random()
                edges = np.cumsum(p)
                identity = int(np.searchsorted(edges, u, side="right")) if u < edges[-1] else -1
                rows.append((trial, b, cue, identity, latency, trial * period, float(p.sum())))
                trial += 1
        table = np.array(rows, dtype=float)
        return {name: (table[:, i].astype(np.int64) if name not in ("latency_ms", "p_outcome") else table[:, i])
                for i, name in enumerate(TRIAL_FIELDS)}

    def prepare(self, network, readouts: Readouts | None):
        c = self.config
        if readouts is None:
            raise ValueError("task.kind = 'whatwhen' needs a [readouts] section")
        when = readouts.group_columns(c.group)
        if when.size != 1:
            raise ValueError(f"task.group: the 'when' group {c.group!r} must have exactly one unit")
        what = readouts.group_columns(c.what_group) if c.what_group else np.zeros(0, dtype=int)
        if c.what_group and what.size != len(c.identities):
            raise ValueError(f"task.what_group: {c.what_group!r} needs one unit per identity ({len(c.identities)})")
        self.when_column, self.what_columns = int(when[0]), what
        rng = np.random.default_rng(stream_seed(self.seed, "task").spawn(2)[1])  # input subsets
        exc = np.flatnonzero(network.neurons.is_excitatory)
        n_cue = max(1, int(round(c.cue_fraction * exc.size)))
        n_out = max(1, int(round(c.outcome_fraction * exc.size)))
        basis = c.time_basis
        n_basis = 0 if basis is None else basis.n_channels
        n_per_channel = 0 if basis is None else max(1, int(round(basis.fraction * exc.size)))
        order = rng.permutation(exc)
        sizes = [n_cue] * len(c.cues) + [n_out] * len(c.identities) + [n_per_channel] * (n_basis * len(c.cues))
        subsets, start = [], 0
        for size in sizes:  # disjoint while the neurons last, then reused
            subsets.append(np.sort(np.take(order, np.arange(start, start + size), mode="wrap")))
            start = (start + size) % exc.size
        self.subsets = subsets
        gains = [np.ones(len(sub)) for sub in subsets]
        if c.cue_gain_spread > 0:
            for i in range(len(c.cues)):
                gains[i] = rng.uniform(1 - c.cue_gain_spread, 1 + c.cue_gain_spread, len(subsets[i]))
        first_basis = len(c.cues) + len(c.identities)
        self.block_weights = np.zeros((len(c.blocks), readouts.n_units, readouts.n_features))
        self.block_bias = np.zeros((len(c.blocks), readouts.n_units))
        indptr = np.concatenate([[0], np.cumsum([len(sub) for sub in subsets])])
        external = self._input(indptr, np.concatenate(subsets), np.concatenate(gains), first_basis)
        return external, self._teacher(readouts.n_units)

    def _trial_steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per trial: onset step, cue, identity (-1: omission) and latency in steps."""
        table = self.table
        latency_steps = np.array([self.steps(latency) for latency in table["latency_ms"]], dtype=np.int64)
        return table["onset_step"].astype(np.int64), table["cue"], table["identity"], latency_steps

    def _input(self, indptr, indices, gains, first_basis: int) -> ScheduledInput:
        """The cues' pulses and time bases and the outcomes' pulses, as a schedule of pieces:
        every trial places a cue pulse (``cue_ms``) on its cue's channel at its onset, the cue's
        time basis (the first ``trial_ms`` of the waveforms, cut at the run's end) on the cue's
        basis channels, and, unless the outcome is omitted, an outcome pulse (``outcome_ms``) on
        the identity's channel at the cue's latency. Channels: the cues, the identities, then
        ``n_channels`` basis channels per cue."""
        c = self.config
        basis = c.time_basis
        n_basis = 0 if basis is None else basis.n_channels
        onset, cue, identity, latency_steps = self._trial_steps()
        cue_steps, outcome_steps, trial_steps = self.steps(c.cue_ms), self.steps(c.outcome_ms), self.steps(c.trial_ms)
        cue_template = np.full((1, 1), c.cue_amplitude)
        cue_length = cue_steps
        if c.cue_hold_amplitude != 0.0 and trial_steps > cue_steps:  # the pulse, then the held current
            cue_template = np.full((trial_steps, 1), c.cue_hold_amplitude)
            cue_template[:cue_steps] = c.cue_amplitude
            cue_length = trial_steps
        templates = [cue_template, np.full((1, 1), c.outcome_amplitude)]
        occurs = identity >= 0
        n = onset.size
        parts = [(onset, np.zeros(n), cue, np.full(n, cue_length)),  # (start, template, first channel, length)
                 (onset[occurs] + latency_steps[occurs], np.ones(occurs.sum()), len(c.cues) + identity[occurs],
                  np.full(occurs.sum(), outcome_steps))]
        if basis is not None:
            templates.append(basis.waveforms(np.arange(trial_steps) * self.dt_ms, c.trial_ms))
            parts.insert(1, (onset, np.full(n, 2), first_basis + cue * n_basis, np.full(n, trial_steps)))
        start, template, first_channel, length = (np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(4))
        order = np.argsort(start, kind="stable")
        return ScheduledInput(templates, start[order], template[order], first_channel[order], indptr, indices, gains,
                              length_steps=length[order], n_steps=self.n_steps)

    def _teacher(self, n_units: int) -> ScheduledTeacher:
        """The readouts' teacher as intervals: every trial opens the gates of all units for
        ``trial_ms`` from the cue (and so the RLS ``learn`` signal: the 'when' gate), sets the
        'when' target to 1 during the outcome (unless omitted) and, with a 'what' group, stores
        the anticipation window (cue onset to the latency) with target 1 for the identity that
        occurs."""
        c = self.config
        onset, _, identity, latency_steps = self._trial_steps()
        outcome_steps, trial_steps = self.steps(c.outcome_ms), self.steps(c.trial_ms)
        n = onset.size
        occurs = identity >= 0
        ones = np.ones(n)
        targets = [Intervals(onset[occurs] + latency_steps[occurs], np.full(occurs.sum(), outcome_steps),
                             np.full(occurs.sum(), self.when_column), ones[occurs])]
        store = []
        if self.what_columns.size:
            targets.append(Intervals(onset[occurs], latency_steps[occurs], self.what_columns[identity[occurs]],
                                     ones[occurs]))
            store.append(Intervals(onset, latency_steps, np.zeros(n), ones))
        delay = self.steps(c.gate_delay_ms) if c.gate_delay_ms > 0 else 0
        window = np.full(n, trial_steps - delay)
        gates = [Intervals(onset + delay, window, np.full(n, column), ones) for column in range(n_units)]
        learn = Intervals(onset + delay, window, np.zeros(n), ones)  # the 'when' gate is open
        return ScheduledTeacher(n_units, targets=Intervals.concatenate(targets), gates=Intervals.concatenate(gates),
                                learn=learn, store=Intervals.concatenate(store), n_steps=self.n_steps)

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"trials": self.table}

    def segments(self) -> list[Segment]:
        period = self.steps(self.config.period_ms)
        n = self.config.n_trials
        segments = [Segment(i * period, period, f"trial {i}") for i in range(n)]
        if self.n_steps > n * period:
            segments.append(Segment(n * period, self.n_steps - n * period, "after"))
        return segments

    def after_segment(self, simulation, index: int) -> None:
        c = self.config
        if index >= c.n_trials:
            return
        readouts = simulation.readouts
        if readouts.store.n_stored:
            self._record_offline_error(simulation)
        self.consolidate(simulation, index)
        if c.reset_between_trials:
            simulation.reset_state()
        next_index = index + 1
        ends = np.cumsum([b.n_trials for b in c.blocks])
        starts = ends[:-1]
        if next_index in set(ends.tolist()):  # a block's end: keep its readouts for the retention measure
            block = int(np.searchsorted(ends, next_index))
            self.block_weights[block] = readouts.weights
            self.block_bias[block] = readouts.three_factor.bias
            if c.blocks_are_tasks and block < len(c.blocks) - 1:
                readouts.next_task()
        if c.rls_reset_at_switch and next_index in set(starts.tolist()) and readouts.rls_config is not None:
            readouts.reset_rls(reset_weights=c.rls_reset_weights)

    def _record_offline_error(self, simulation) -> None:
        """Mean |error| of the 'what' units over the stored window, before its replay: their
        outputs during the trial, as the kernel stored them with the window."""
        readouts = simulation.readouts
        steps, _, _ = readouts.store.window()
        z = readouts.store.window_outputs()[:, self.what_columns]
        targets, _ = simulation.teacher.rows_at(steps)
        errors = np.abs(targets[:, self.what_columns] - z)
        self.offline_errors.append(float(errors.mean()))

    def get_state(self) -> dict[str, np.ndarray]:
        return {**super().get_state(), "offline_errors": np.array(self.offline_errors, dtype=np.float64),
                "block_weights": self.block_weights, "block_bias": self.block_bias}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        super().set_state(state)
        self.offline_errors = [float(e) for e in state["offline_errors"]]
        self.block_weights[...] = state["block_weights"]
        self.block_bias[...] = state["block_bias"]

    def metrics(self, run, out_dir: Path) -> dict:
        metrics = whatwhen_metrics(run, offline_errors=self.offline_errors)
        if self.config.blocks_are_tasks:
            design = WhatWhenDesign.from_run(run)
            metrics["retention"] = when_retention(design, run, self.block_weights[:, self.when_column],
                                                  self.block_bias[:, self.when_column])
            with h5py.File(Path(out_dir) / "continual.h5", "w") as f:  # the readouts kept at each block's end
                f.attrs["format_name"] = "reservoir-continual"
                f.attrs["format_version"] = 1
                f["block_weights"] = self.block_weights
                f["block_bias"] = self.block_bias
        return with_claims(metrics, run)

    def figures(self, run, out_dir: Path, metrics: dict) -> list[Path]:
        return whatwhen_figures(run, out_dir, metrics)
