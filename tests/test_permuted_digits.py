"""The permuted-digits paradigm on a short run: the schedule, the streamed input and teacher,
the read-out check, the accuracy matrix, and the protection of the first task's outputs
(HLOP and the SVD reference against no protection). The full 10-task comparison is the slow
reproduction (tests/test_continual_reproduction.py)."""
import h5py
import numpy as np
import pytest

from analysis import load_run
from paradigms.permuted_digits import CONTINUAL_FILE, PermutedDigitsTask, PermutedDigitsTaskConfig
from reservoir.config import ConfigError
from reservoir.experiment import load_experiment, resume, run_experiment
from reservoir.inputs import PatternSequenceInput
from reservoir.readouts import WindowTeacher

from .test_experiments import EXPERIMENTS

SHORT = {"network": {"n_neurons": 300},
         "task": {"n_tasks": 2, "max_train_images": 150, "max_test_images": 60, "curve_points_per_task": 2},
         "duration_ms": (2 * 150 + 2 * 60) * 80.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for method in ("none", "hlop", "svd"):
        folder = tmp_path_factory.mktemp(method)
        overrides = {**SHORT, "readouts": {"protection": {"method": method, "groups": [] if method == "none" else
                                                          ["digit"]}}}
        metrics = run_experiment(load_experiment(EXPERIMENTS / "permuted_digits.toml", overrides), folder,
                                 progress=False)
        out[method] = (folder, metrics)
    return out


def _first_task_outputs(folder):
    """Task 0's test outputs with the weights after task 0 and after task 1."""
    with h5py.File(folder / CONTINUAL_FILE) as f:
        weights, bias = f["snapshot_weights"][()], f["snapshot_bias"][()]
        presentations = f["snapshot_presentations"][()]
    return weights, bias, presentations


def test_recorded_outputs_equal_the_rebuilt_features_read_out(runs):
    """The readout's outputs recorded in the test block equal the last weights applied to the
    window-mean features rebuilt from the spikes (up to the trace rebuild's lead-in error)."""
    for folder, metrics in runs.values():
        assert metrics["test_readout_check_max_abs"] < 1e-3


def test_accuracy_matrix_and_learning(runs):
    for method, (folder, metrics) in runs.items():
        R = np.array(metrics["accuracy_matrix"])
        assert R.shape == (2, 2)
        assert R[0, 0] > 0.5, (method, R)  # a task is learned well above chance (0.1) in one pass
        assert metrics["acc"] == pytest.approx(R[1].mean())
        assert metrics["bwt"] == pytest.approx(R[1, 0] - R[0, 0])


def test_protection_keeps_the_first_tasks_outputs(runs):
    """Relative change of task 0's test-set outputs from the end of task 0 to the end of task 1:
    the protected readouts change them far less than the unprotected one."""
    from paradigms.permuted_digits import PermutedDigitsTask  # noqa: F401 (the layout below is its)
    change = {}
    for method, (folder, _) in runs.items():
        run = load_run(folder)
        table = run.tables["presentations"]
        weights, bias, presentations = _first_task_outputs(folder)
        task_ends = np.searchsorted(presentations, [150, 300])
        test0 = np.flatnonzero(table["test"] & (table["task"] == 0))
        from analysis.features import window_means
        features = window_means(run, table["onset_ms"][test0] + 20.0, 30.0)
        before = features @ weights[task_ends[0]].T + bias[task_ends[0]]
        after = features @ weights[task_ends[1]].T + bias[task_ends[1]]
        change[method] = np.linalg.norm(after - before) / np.linalg.norm(before)
    assert change["svd"] < 0.5 * change["none"], change
    assert change["hlop"] < 0.5 * change["none"], change


def test_schedule_and_streamed_signals():
    config = PermutedDigitsTaskConfig(n_tasks=3, max_train_images=20, max_test_images=10, epochs_per_task=2)
    task = PermutedDigitsTask(config, n_steps=int(config.duration_ms()), dt_ms=1.0, seed=4)
    n_train = 3 * 2 * 20
    assert task.pattern_index.size == n_train + 3 * 10
    # sequential: each task's presentations together, every image of it once per epoch
    tasks = task.task_of[:n_train]
    assert np.all(np.diff(tasks) >= 0)
    for t in range(3):
        shown = task.pattern_index[:n_train][tasks == t]
        assert sorted(shown) == sorted(list(range(t * 20, t * 20 + 20)) * 2)
    assert np.all(task.is_test[n_train:]) and not task.is_test[:n_train].any()
    assert len({tuple(p) for p in task.permutations}) == 3  # task 0 is permuted too
    joint = PermutedDigitsTask(config.model_copy(update={"schedule": "joint"}), n_steps=10 ** 6, dt_ms=1.0, seed=4)
    assert len(set(joint.task_of[:40].tolist())) == 3  # the tasks interleaved
    assert sorted(joint.pattern_index[:n_train]) == sorted(task.pattern_index[:n_train])


def test_pattern_input_and_window_teacher_chunks_equal_the_dense_signals():
    rng = np.random.default_rng(0)
    patterns = rng.random((5, 3))
    onsets, index = np.array([2, 10, 17, 30]), np.array([4, 0, 0, 2])
    stream = PatternSequenceInput(patterns, onsets, index, 6, np.array([0, 1, 2, 3]), np.array([0, 1, 2]),
                                  np.ones(3))
    dense = np.zeros((40, 3))
    for onset, i in zip(onsets, index):
        dense[onset:onset + 6] = patterns[i]
    for first, n in ((0, 40), (5, 9), (14, 3), (35, 10)):
        np.testing.assert_array_equal(stream.chunk(first, n), np.vstack([dense, np.zeros((10, 3))])[first:first + n])
    targets = rng.random((4, 2))
    teacher = WindowTeacher(onsets + 1, 4, targets, np.ones((4, 2)))
    full_t = np.zeros((40, 2))
    for start, row in zip(onsets + 1, targets):
        full_t[start:start + 4] = row
    for first, n in ((0, 40), (3, 11), (33, 5)):
        chunk = teacher.chunk(first, n)
        np.testing.assert_array_equal(chunk.targets, full_t[first:first + n])
        np.testing.assert_array_equal(chunk.gates, (full_t[first:first + n] != 0).astype(float))
    with pytest.raises(ValueError, match="overlap"):
        PatternSequenceInput(patterns, np.array([0, 3]), np.array([0, 1]), 6, np.array([0, 1, 2, 3]),
                             np.array([0, 1, 2]), np.ones(3))


def test_bad_configurations_name_the_key():
    with pytest.raises(ConfigError, match="duration_ms: the permuted_digits task needs at least"):
        load_experiment(EXPERIMENTS / "permuted_digits.toml", {"duration_ms": 1000.0})
    with pytest.raises(ConfigError, match="readout_ms"):
        load_experiment(EXPERIMENTS / "permuted_digits.toml", {"task": {"readout_ms": 80.0}})


def test_resumed_run_equals_the_uninterrupted_one(runs, tmp_path, monkeypatch):
    import reservoir.experiment.runner as runner

    class Crash(Exception):
        pass

    def crash(sim, out):  # the process dies after the last step
        raise Crash

    folder, metrics = runs["hlop"]
    overrides = {**SHORT, "checkpoint_every_ms": 13000.0}
    out = tmp_path / "resumed"
    monkeypatch.setattr(runner, "checkpoint_end", crash)
    with pytest.raises(Crash):
        run_experiment(load_experiment(EXPERIMENTS / "permuted_digits.toml", overrides), out, progress=False)
    monkeypatch.undo()
    resume(out, progress=False)  # back to the last checkpoint (inside task 1), then to the end
    resumed = np.array(load_run(out).spike_ids), h5py.File(out / CONTINUAL_FILE)["snapshot_weights"][()]
    straight = np.array(load_run(folder).spike_ids), h5py.File(folder / CONTINUAL_FILE)["snapshot_weights"][()]
    np.testing.assert_array_equal(resumed[0], straight[0])
    np.testing.assert_array_equal(resumed[1], straight[1])
