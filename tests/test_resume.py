"""A resumed experiment equals the uninterrupted one: the task's memory (segments done, pending
replay windows, the rows stored so far in a trial, its logs) travels in the checkpoint."""
import json

import h5py
import numpy as np
import pytest

from reservoir.experiment import load_experiment, resume, run_experiment

from .test_experiments import EXPERIMENTS

TRIALS = 8
OVERRIDES = {
    "network": {"n_neurons": 200}, "duration_ms": TRIALS * 1200.0,
    "readouts": {"snapshot_every_ms": 1200.0,
                 "groups": {"1": {"three_factor": {"consolidation": {"mode": "batch_replay", "batch_every_trials": 3}}}}},
    "task": {"blocks": [{"name": "only", "n_trials": TRIALS}], "test_trials": 2},
}


def _datasets(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
        out["attrs"] = {k: v for k, v in f.attrs.items() if k != "writer"}
    return out


def _metrics(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("wall_time_s")
    return metrics


SLOW_OVERRIDES = {**OVERRIDES, "network": {"n_neurons": 200,
                                           "slow_synapses": {"fraction": 0.3, "tau_ms": 100.0, "weight_scale": 1.0}}}
"""The same with slow synapses: their filter's state travels in the checkpoint."""


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    run_experiment(load_experiment(EXPERIMENTS / "whatwhen.toml", OVERRIDES), out, progress=False)
    return out


@pytest.fixture(scope="module")
def straight_slow(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight_slow")
    run_experiment(load_experiment(EXPERIMENTS / "whatwhen.toml", SLOW_OVERRIDES), out, progress=False)
    return out


@pytest.mark.parametrize("checkpoint_every_ms,last_checkpoint_ms", [
    (1700.0, 8500.0),   # inside trial 7: trial 6 pending for replay, trial 7 partly stored
    (3600.0, 7200.0),   # at the end of trial 5, before its batch replay and its trial-start reset
    (2400.0, 9600.0),   # at the end of the run, before the last trial's replay
])
def test_resumed_trial_task_equals_the_uninterrupted_run(straight, tmp_path, monkeypatch, checkpoint_every_ms,
                                                         last_checkpoint_ms):
    _resume_and_compare(straight, OVERRIDES, tmp_path, monkeypatch, checkpoint_every_ms, last_checkpoint_ms)


def test_resumed_run_with_slow_synapses_equals_the_uninterrupted_run(straight_slow, tmp_path, monkeypatch):
    _resume_and_compare(straight_slow, SLOW_OVERRIDES, tmp_path, monkeypatch, 1700.0, 8500.0)


def _resume_and_compare(straight, overrides, tmp_path, monkeypatch, checkpoint_every_ms, last_checkpoint_ms):
    import reservoir.experiment.runner as runner

    class Crash(Exception):
        pass

    def crash(sim, out):  # the process dies at the very end, after everything was simulated and written
        raise Crash

    config = load_experiment(EXPERIMENTS / "whatwhen.toml", {**overrides, "checkpoint_every_ms": checkpoint_every_ms})
    out = tmp_path / "resumed"
    monkeypatch.setattr(runner, "checkpoint_end", crash)
    with pytest.raises(Crash):
        run_experiment(config, out, progress=False)
    monkeypatch.undo()
    with h5py.File(out / "checkpoint.h5") as checkpoint:
        assert checkpoint.attrs["step"] * config.integration.dt_ms == last_checkpoint_ms
        assert len(checkpoint["attached/task/offline_errors"]) > 0
        slow = config.network.slow_synapses.fraction > 0
        assert ("state/slow_filter_state" in checkpoint) == slow
        assert not slow or np.abs(checkpoint["state/slow_filter_state"][()]).max() > 0
    resume(out, progress=False)  # as after a crash: back to the last checkpoint, then to the end
    expected, actual = _datasets(straight / "run.h5"), _datasets(out / "run.h5")
    assert expected.keys() == actual.keys()
    for name in expected:
        if name == "attrs":
            continue
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert actual["attrs"]["status"] == "complete"
    assert _metrics(out) == _metrics(straight)


def test_checkpoint_of_another_task_memory_is_refused(straight, tmp_path):
    from reservoir.experiment import make_simulation, prepare

    config = load_experiment(EXPERIMENTS / "whatwhen.toml", OVERRIDES)
    prepared = prepare(config)
    sim = make_simulation(config, prepared)
    sim.run(n_steps=100)
    sim.save_checkpoint(tmp_path / "cp.h5")
    other = make_simulation(config, prepare(config))
    del other.attached["task"]
    with pytest.raises(ValueError, match=r"holds the state of \['task'\]"):
        other.load_checkpoint(tmp_path / "cp.h5")
