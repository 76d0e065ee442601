"""Permuted digits: a sequence of classification tasks for continual learning of a readout.

The images are scikit-learn's bundled 8x8 handwritten digits (1797 images, no download),
split once into a stratified training and test set. Task ``t`` shows every image through a
fixed random permutation of its 64 pixels (task 0 too). A presentation holds the permuted
pixels for ``presentation_ms`` as currents into the reservoir: pixel channel ``c`` reaches a
random ``input_fraction`` of all neurons, each with its own gain drawn from
``N(0, input_gain^2)``, times ``pixel / 16``; a gap of ``gap_ms`` with no input follows. One
shared readout group of 10 units learns by the three-factor rule: in the last ``readout_ms``
of each training presentation its gate is 1 and its target is the one-hot label (error =
target minus output); the class read out is the unit with the largest mean output over that
window.

Schedules: ``sequential`` (the tasks one after another, ``epochs_per_task`` shuffled passes over
each task's training images) or ``joint`` (every task's training images shuffled together,
the same number of presentations: the multitask ceiling). After training, every test image of
every task is presented once with the gate closed. Accuracies come from the readout weights
the task keeps at each task's end (and at ``curve_points_per_task`` points of each task, for
the learning curves), applied to the test presentations' window-mean features rebuilt from
the spikes: the readout is linear and does not feed back into the reservoir, so this is what
presenting the test set after each task would read, for the same noise.

Protection across tasks (HLOP, the SVD reference, or none) is the readouts' business
(``[readouts.protection]``): the task calls :meth:`reservoir.readouts.Readouts.next_task` at
each task boundary of the sequential schedule. Benchmark conventions follow GPM (Saha et al.,
ICLR 2021) and HLOP (Xiao et al., ICLR 2024).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import h5py
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis import continual
from analysis.claims import permuted_digits_claims
from analysis.features import window_means
from analysis.plots import save
from reservoir.inputs import PatternSequenceInput
from reservoir.readouts import Readouts, WindowTeacher
from reservoir.rng import stream, substream

from .base import Segment, Task

N_CLASSES = 10
N_PIXELS = 64
CONTINUAL_FILE = continual.CONTINUAL_FILE


class PermutedDigitsTaskConfig(BaseModel):
    """Permuted 8x8 digits: tasks learned one after another (or jointly) by one shared readout."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["permuted_digits"] = "permuted_digits"
    group: str = Field("digit", description="the readout group (10 units, three-factor rule)")
    n_tasks: int = Field(10, ge=1, le=1000, description="tasks (pixel permutations; task 0 is permuted too)")
    schedule: Literal["sequential", "joint"] = Field(
        "sequential", description="`sequential` (one task after another) or `joint` (all tasks shuffled together)")
    epochs_per_task: int = Field(2, ge=1, description="shuffled passes over each task's training images")
    presentation_ms: float = Field(50.0, gt=0.0, description="how long an image drives the reservoir")
    gap_ms: float = Field(30.0, ge=0.0, description="no input between presentations")
    readout_ms: float = Field(30.0, gt=0.0, description="the last part of a presentation: gate, target, read-out")
    input_fraction: float = Field(0.1, gt=0.0, le=1.0, description="fraction of all neurons each pixel reaches")
    input_gain: float = Field(10.0, gt=0.0, description="std of the per-synapse input gains (current per pixel "
                                                        "value 16)")
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="stratified test split of the 1797 images")
    max_train_images: int | None = Field(None, ge=10, description="use only this many training images per task")
    max_test_images: int | None = Field(None, ge=10, description="use only this many test images per task")
    curve_points_per_task: int = Field(4, ge=1, description="readout snapshots per task (learning curves)")
    split_seed: int = Field(0, ge=0, description="seed of the train/test split (the same for every run seed)")

    @model_validator(mode="after")
    def _fits(self) -> "PermutedDigitsTaskConfig":
        if self.readout_ms > self.presentation_ms:
            raise ValueError("readout_ms must not exceed presentation_ms")
        return self

    @property
    def period_ms(self) -> float:
        return self.presentation_ms + self.gap_ms

    def split_sizes(self) -> tuple[int, int]:
        """Training and test images per task."""
        n_test = int(np.ceil(self.test_fraction * 1797))
        n_train = 1797 - n_test
        if self.max_train_images is not None:
            n_train = min(n_train, self.max_train_images)
        if self.max_test_images is not None:
            n_test = min(n_test, self.max_test_images)
        return n_train, n_test

    def n_presentations(self) -> tuple[int, int]:
        """Training and test presentations of the whole run."""
        n_train, n_test = self.split_sizes()
        return self.n_tasks * self.epochs_per_task * n_train, self.n_tasks * n_test

    def duration_ms(self) -> float:
        return sum(self.n_presentations()) * self.period_ms


def load_split(test_fraction: float, seed: int, max_train: int | None = None, max_test: int | None = None):
    """``(train_images, train_labels, test_images, test_labels)`` of the bundled digits (pixels 0-16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=test_fraction, stratify=labels,
                                                        random_state=seed)
    return x_train[:max_train], y_train[:max_train], x_test[:max_test], y_test[:max_test]


class PermutedDigitsTask(Task):
    """See the module docstring. Memory (checkpointed): the readout snapshots taken so far."""

    def __init__(self, config: PermutedDigitsTaskConfig, n_steps: int, dt_ms: float, seed: int):
        super().__init__(config, n_steps, dt_ms, seed)
        c = config
        x_train, y_train, x_test, y_test = load_split(c.test_fraction, c.split_seed, c.max_train_images,
                                                      c.max_test_images)
        self.train_labels, self.test_labels = y_train.astype(np.int64), y_test.astype(np.int64)
        rng = stream(seed, "task")
        self.permutations = np.stack([rng.permutation(N_PIXELS) for _ in range(c.n_tasks)])
        n_train, n_test = len(x_train), len(x_test)
        # the pattern table: every (task, image) of the training set, then of the test set
        self.patterns = np.concatenate([x_train[:, p] for p in self.permutations] +
                                       [x_test[:, p] for p in self.permutations]) / 16.0
        # the schedule: rows (task, image, split) in presentation order
        order = []
        if c.schedule == "sequential":
            for task in range(c.n_tasks):
                for _ in range(c.epochs_per_task):
                    order.append(task * n_train + rng.permutation(n_train))
        else:
            everything = np.arange(c.n_tasks * n_train)
            for _ in range(c.epochs_per_task):
                order.append(rng.permutation(everything))
        train_rows = np.concatenate(order)
        test_rows = c.n_tasks * n_train + np.arange(c.n_tasks * n_test)
        self.pattern_index = np.concatenate([train_rows, test_rows])
        self.n_train_presentations = train_rows.size
        self.task_of = np.concatenate([train_rows // n_train, (test_rows - c.n_tasks * n_train) // n_test])
        self.label_of = np.concatenate([self.train_labels[train_rows % n_train],
                                        self.test_labels[(test_rows - c.n_tasks * n_train) % n_test]])
        self.is_test = np.arange(self.pattern_index.size) >= train_rows.size
        self.period_steps = self.steps(c.period_ms)
        self.onset_steps = np.arange(self.pattern_index.size, dtype=np.int64) * self.period_steps
        self.readout_offset_steps = self.steps(c.presentation_ms - c.readout_ms)
        self.readout_steps = self.steps(c.readout_ms)
        # segment ends (in presentations): curve points inside each task, task ends, the test block
        per_task = c.epochs_per_task * n_train
        ends = set()
        for task in range(c.n_tasks):
            for point in range(1, c.curve_points_per_task + 1):
                ends.add(task * per_task + int(round(point * per_task / c.curve_points_per_task)))
        self.segment_ends = np.array(sorted(ends) + [self.pattern_index.size], dtype=np.int64)
        self.task_end_presentations = np.arange(1, c.n_tasks + 1, dtype=np.int64) * per_task
        # memory: readout snapshots at every training segment end
        n_snapshots = len(ends)
        self.snapshot_weights = np.zeros((n_snapshots, 0, 0))
        self.snapshot_bias = np.zeros((n_snapshots, 0))
        self.snapshot_presentations = np.zeros(n_snapshots, dtype=np.int64)
        self.projecting_rows_after_task = np.zeros(c.n_tasks, dtype=np.int64)
        self.orthonormality_before_merge = np.full(c.n_tasks, np.nan)
        """``max |H H^T - I|`` of the lateral rows as the subspace rule left them at each task's end."""
        self.snapshots_taken = 0
        self.columns = np.zeros(0, dtype=np.int64)
        self.lateral = np.zeros((0, 0))
        """The readouts' lateral weights (or SVD basis) at the end of training."""

    # ------------------------------------------------------------------ run
    def prepare(self, network, readouts: Readouts | None):
        c = self.config
        if readouts is None:
            raise ValueError("task.kind = 'permuted_digits' needs a readouts section")
        self.columns = readouts.group_columns(c.group)
        if self.columns.size != N_CLASSES:
            raise ValueError(f"readouts.groups: the {c.group!r} group needs {N_CLASSES} units (one per digit), "
                             f"it has {self.columns.size}")
        needed = self.onset_steps[-1] + self.period_steps
        if needed > self.n_steps:
            raise ValueError(f"duration_ms: the permuted_digits task needs at least {c.duration_ms():g} ms "
                             f"({self.pattern_index.size} presentations x {c.period_ms:g} ms)")
        n = network.n_neurons
        input_rng = substream(self.seed, "task", 1)  # the input weights: independent of the schedule
        indptr, indices, gains = [0], [], []
        per_pixel = max(1, int(round(c.input_fraction * n)))
        for _ in range(N_PIXELS):
            targets = np.sort(input_rng.choice(n, per_pixel, replace=False))
            indices.append(targets)
            gains.append(input_rng.normal(0.0, c.input_gain, per_pixel))
            indptr.append(indptr[-1] + per_pixel)
        external = PatternSequenceInput(self.patterns, self.onset_steps, self.pattern_index,
                                        self.steps(c.presentation_ms), np.array(indptr), np.concatenate(indices),
                                        np.concatenate(gains))
        n_units = readouts.n_units
        train = ~self.is_test
        targets = np.zeros((train.sum(), n_units))
        targets[np.arange(train.sum()), self.columns[self.label_of[train]]] = 1.0
        gates = np.zeros_like(targets)
        gates[:, self.columns] = 1.0
        teacher = WindowTeacher(self.onset_steps[train] + self.readout_offset_steps, self.readout_steps, targets, gates)
        self.snapshot_weights = np.zeros((self.snapshot_presentations.size, N_CLASSES, readouts.n_features))
        self.snapshot_bias = np.zeros((self.snapshot_presentations.size, N_CLASSES))
        return external, teacher

    def segments(self) -> list[Segment]:
        starts = np.concatenate([[0], self.segment_ends[:-1]])
        segments = [Segment(int(a) * self.period_steps, int(b - a) * self.period_steps,
                            "test" if a >= self.n_train_presentations else f"presentations {a}-{b}")
                    for a, b in zip(starts, self.segment_ends)]
        rest = self.n_steps - int(self.segment_ends[-1]) * self.period_steps
        if rest > 0:
            segments.append(Segment(int(self.segment_ends[-1]) * self.period_steps, rest, "after"))
        return segments

    def after_segment(self, simulation, index: int) -> None:
        if index >= self.snapshot_presentations.size:
            return
        end = int(self.segment_ends[index])
        readouts = simulation.readouts
        self.snapshot_weights[index] = readouts.weights[self.columns]
        self.snapshot_bias[index] = readouts.three_factor.bias[self.columns]
        self.snapshot_presentations[index] = end
        self.snapshots_taken = index + 1
        task_end = np.flatnonzero(self.task_end_presentations == end)
        if task_end.size and self.config.schedule == "sequential":
            task = int(task_end[0])
            if readouts.protection.method:
                self.orthonormality_before_merge[task] = continual.orthonormality_error(readouts.lateral_weights)
            if task < self.config.n_tasks - 1:
                self.projecting_rows_after_task[task] = readouts.next_task()
            else:
                self.projecting_rows_after_task[task] = readouts.end_task()
        if end == self.n_train_presentations:
            self.lateral = readouts.lateral_weights

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, np.ndarray]:
        state = super().get_state()
        state.update(snapshot_weights=self.snapshot_weights, snapshot_bias=self.snapshot_bias,
                     snapshot_presentations=self.snapshot_presentations,
                     projecting_rows_after_task=self.projecting_rows_after_task,
                     orthonormality_before_merge=self.orthonormality_before_merge,
                     snapshots_taken=np.array(self.snapshots_taken), lateral=self.lateral)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        super().set_state(state)
        for name in ("snapshot_weights", "snapshot_bias", "snapshot_presentations", "projecting_rows_after_task",
                     "orthonormality_before_merge"):
            getattr(self, name)[...] = state[name]
        self.snapshots_taken = int(state["snapshots_taken"])
        self.lateral = np.array(state["lateral"])

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"presentations": {
            "onset_ms": self.onset_steps * self.dt_ms, "task": self.task_of, "label": self.label_of,
            "test": self.is_test, "pattern": self.pattern_index}}

    # ------------------------------------------------------------------ results
    def test_features(self, run) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each task's test features (window means, ``(n_test, F)``) and labels."""
        c = self.config
        test = np.flatnonzero(self.is_test)
        starts = (self.onset_steps[test] + self.readout_offset_steps) * self.dt_ms
        means = window_means(run, starts, c.readout_ms)
        tasks = self.task_of[test]
        return ([means[tasks == t] for t in range(c.n_tasks)], [self.label_of[test][tasks == t]
                                                                for t in range(c.n_tasks)])

    def task_end_snapshots(self) -> np.ndarray:
        """Indices of the snapshots taken at each task's end."""
        return np.searchsorted(self.snapshot_presentations, self.task_end_presentations)

    def metrics(self, run, out_dir: Path) -> dict:
        c = self.config
        features, labels = self.test_features(run)
        ends = self.task_end_snapshots()
        R = continual.accuracy_matrix(self.snapshot_weights[ends], self.snapshot_bias[ends], features, labels)
        curves = continual.learning_curves(self.snapshot_weights, self.snapshot_bias, features, labels)
        metrics = {
            "schedule": c.schedule, "n_tasks": c.n_tasks,
            "acc": continual.average_accuracy(R),
            "bwt": continual.backward_transfer(R) if c.schedule == "sequential" else None,
            "accuracy_matrix": R.tolist(),
            "final_accuracy_per_task": R[-1].tolist(),
            "just_learned_accuracy": np.diag(R).tolist(),
            "projecting_rows_after_task": self.projecting_rows_after_task.tolist(),
        }
        # the readout's recorded outputs over the test windows against the rebuilt features
        # (a check of the reconstruction, and of the read-out rule, on the last weights)
        metrics["test_readout_check_max_abs"] = self._check_outputs(run, features)
        lateral = self.lateral if self.lateral.size else np.zeros((0, run.n_neurons))
        diagnostics = self._lateral_diagnostics(lateral, run, features)
        if c.schedule == "sequential" and np.isfinite(diagnostics["energy_captured"]).any():
            metrics["lateral_energy_captured_after_task"] = diagnostics["energy_captured"].tolist()
            metrics["lateral_energy_captured_by_exact_after_task"] = diagnostics["energy_captured_by_exact"].tolist()
            metrics["lateral_orthonormality_before_merge"] = self.orthonormality_before_merge.tolist()
            for name in ("energy_outside_lateral", "energy_outside_exact", "variance_outside_lateral",
                         "variance_outside_exact"):
                metrics[f"test_{name}_per_task"] = diagnostics[name].tolist()
        with h5py.File(Path(out_dir) / CONTINUAL_FILE, "w") as f:
            f.attrs["format_name"] = "reservoir-continual"
            f.attrs["format_version"] = 1
            f["accuracy_matrix"] = R
            f["learning_curves"] = curves
            f["snapshot_presentations"] = self.snapshot_presentations
            f["snapshot_weights"] = self.snapshot_weights
            f["snapshot_bias"] = self.snapshot_bias
            f["lateral"] = lateral
            f["projecting_rows_after_task"] = self.projecting_rows_after_task
            for key, values in diagnostics.items():
                f[f"lateral_diagnostics/{key}"] = values
        self._curves, self._R, self._diagnostics = curves, R, diagnostics
        metrics["claims"] = permuted_digits_claims(metrics, run.config)
        return metrics

    def _check_outputs(self, run, features) -> float:
        """Max |mean recorded output - (W_final x_mean + b)| over the test windows (0 up to the
        reconstruction's precision)."""
        test = np.flatnonzero(self.is_test)
        output_steps = np.round(run.output_time_ms / self.dt_ms).astype(np.int64)
        if output_steps.size < 2:
            return float("nan")
        starts = self.onset_steps[test] + self.readout_offset_steps
        position = np.searchsorted(output_steps, starts)
        every = int(output_steps[1] - output_steps[0])
        length = max(1, self.readout_steps // every)
        if position.max() + length > output_steps.size:
            return float("nan")
        rows = position[:, None] + np.arange(length)[None, :]
        recorded = run.outputs[rows][:, :, self.columns].mean(axis=1)
        predicted = np.concatenate(features) @ self.snapshot_weights[-1].T + self.snapshot_bias[-1]
        return float(np.max(np.abs(recorded - predicted)))

    def training_features(self, run) -> list[np.ndarray]:
        """Each task's training features (window means of all its training presentations, ``(n, F)``)."""
        c = self.config
        train = np.flatnonzero(~self.is_test)
        starts = (self.onset_steps[train] + self.readout_offset_steps) * self.dt_ms
        means = window_means(run, starts, c.readout_ms)
        tasks = self.task_of[train]
        return [means[tasks == t] for t in range(c.n_tasks)]

    def _lateral_diagnostics(self, lateral, run, features) -> dict:
        """At each task's end: orthonormality of the projecting rows; their principal-angle cosines
        to the exact sequential subspace (the same growth, the same row counts, done with exact
        SVDs of each task's training activity); the share of the finished tasks' test activity
        energy that each holds; and per task, the share of its own test activity (energy, and
        variance about its mean) left outside the rows that protect it."""
        c = self.config
        rows = self.projecting_rows_after_task
        nan = np.full(c.n_tasks, np.nan)
        out = {"rows": rows.astype(float), "orthonormality_before_merge": self.orthonormality_before_merge.copy(),
               "orthonormality_error": nan.copy(), "min_principal_cosine": nan.copy(), "energy_captured": nan.copy(),
               "energy_captured_by_exact": nan.copy(), "energy_outside_lateral": nan.copy(),
               "energy_outside_exact": nan.copy(), "variance_outside_lateral": nan.copy(),
               "variance_outside_exact": nan.copy()}
        if lateral.shape[0] == 0 or c.schedule != "sequential":
            return out
        training = self.training_features(run)
        exact = np.zeros((0, lateral.shape[1]))
        for t in range(c.n_tasks):
            H = lateral[:rows[t]]
            added = rows[t] - (rows[t - 1] if t else 0)
            X = training[t]
            residual = X - (X @ exact.T) @ exact if exact.shape[0] else X
            if added > 0:
                exact = np.vstack([exact, continual.principal_subspace(residual, min(added, min(residual.shape)))])
            seen = np.concatenate(features[:t + 1])
            out["orthonormality_error"][t] = continual.orthonormality_error(H)
            if H.shape[0] and exact.shape[0]:
                out["min_principal_cosine"][t] = float(continual.principal_angle_cosines(H, exact).min())
                out["energy_captured"][t] = continual.energy_captured(H, seen)
                out["energy_captured_by_exact"][t] = continual.energy_captured(exact, seen)
                own, centred = features[t], features[t] - features[t].mean(axis=0)
                for name, basis in (("lateral", H), ("exact", exact)):
                    out[f"energy_outside_{name}"][t] = 1.0 - continual.energy_captured(basis, own)
                    out[f"variance_outside_{name}"][t] = 1.0 - continual.energy_captured(basis, centred)
        return out

    def figures(self, run, out_dir: Path, metrics: dict) -> list[Path]:
        figures = Path(out_dir) / "figures"
        c = self.config
        label = f"{c.schedule}, {run.config.get('readouts', {}).get('protection', {}).get('method', 'none')}"
        title = (f"permuted digits ({label}): accuracy matrix\nACC {100 * continual.average_accuracy(self._R):.1f} %"
                 + (f", BWT {100 * continual.backward_transfer(self._R):+.1f} points" if c.schedule == "sequential" else ""))
        paths = [save(continual.accuracy_matrix_figure(self._R, title=title),
                      figures / "accuracy_matrix.png"),
                 save(continual.learning_curves_figure(self._curves, self.snapshot_presentations,
                                                       task_starts=self.task_end_presentations[:-1],
                                                       task_names=[f"task {t}" for t in range(c.n_tasks)]),
                      figures / "learning_curves.png")]
        if c.schedule == "sequential" and np.isfinite(self._diagnostics["orthonormality_error"]).any():
            history = {k: v for k, v in self._diagnostics.items()
                       if k not in ("rows", "orthonormality_error") and "outside" not in k}
            # the rule's own orthonormality (before the merge's orthonormalisation, if any)
            history["orthonormality_error"] = history.pop("orthonormality_before_merge")
            paths.append(save(continual.subspace_diagnostics_figure(history, np.arange(c.n_tasks), "after task"),
                              figures / "lateral_subspace.png"))
        return paths
