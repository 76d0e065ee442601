"""Experiment files end to end: validation, shortened runs in the fast suite, full ones as slow tests."""
import json
from pathlib import Path

import numpy as np
import pytest

from reservoir.config import ConfigError
from reservoir.experiment import load_experiment, make_simulation, prepare, run_experiment
from reservoir.experiment.cli import main

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def test_shipped_experiments_validate():
    for path in sorted(EXPERIMENTS.glob("*.toml")):
        config = load_experiment(path)
        assert config.name == path.stem


@pytest.mark.parametrize("overrides,named", [
    ({"readouts": {"groups": {"0": {"rule": "frozen"}}}}, "task.group"),
    ({"task": {"group": "nope"}}, "task.group"),
    ({"task": {"learn_stop_ms": 20000.0}}, "task.learn_stop_ms"),
    ({"readouts": {"groups": {"0": {"rls": {"alpha": -1}}}}}, "readouts.groups.0.rls.alpha"),
    ({"readouts": {"bogus": 1}}, "readouts.bogus"),
    ({"task": {"kind": "nope"}}, "task"),
])
def test_experiment_errors_name_the_key(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_experiment(EXPERIMENTS / "force_sine.toml", overrides)


def test_cli_run_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('preset = "izhikevich2003"\n[readouts]\ntraces = 3\n')
    for args, named in ([str(tmp_path / "missing.toml")], "does not exist"), ([str(bad)], "readouts.traces"), \
            ([str(EXPERIMENTS / "force_sine.toml"), "--set", "task.frequency_hz=-1"], "task.frequency_hz"), \
            (["--set", "task.cues.0.latency_ms=900"], "task.cues"):
        with pytest.raises(SystemExit) as exit_info:
            main(["run", *args, "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_short_force_sine_learns_while_rls_is_on(tmp_path):
    """A 1000-neuron, 4 s version: RLS from 1 to 3 s must track the sine closely by its end."""
    overrides = {"duration_ms": 4000.0, "network": {"n_neurons": 1000},
                 "task": {"learn_start_ms": 1000.0, "learn_stop_ms": 3000.0, "analysis_window_ms": 1000.0}}
    config = load_experiment(EXPERIMENTS / "force_sine.toml", overrides)
    metrics = run_experiment(config, tmp_path / "sine", progress=False)
    assert metrics["rms_error_last_second_of_training"] < 0.1  # the untrained output (z = 0) scores 0.71
    assert (tmp_path / "sine/figures/force_sine.png").exists()
    saved = json.loads((tmp_path / "sine/metrics.json").read_text())
    assert saved["rms_error_during_training"] == metrics["rms_error_during_training"]


def test_short_cue_bump_learning_beats_the_silent_readout(tmp_path):
    overrides = {"duration_ms": 60 * 600.0, "network": {"n_neurons": 400}, "task": {"n_trials": 60, "test_trials": 10}}
    config = load_experiment(EXPERIMENTS / "three_factor_cue_bump.toml", overrides)
    metrics = run_experiment(config, tmp_path / "cue", progress=False)
    t = np.arange(0, 400, 1.0)
    silent = np.sqrt(np.mean(np.exp(-0.5 * ((t - 150) / 20) ** 2) ** 2))  # error of z = 0
    assert metrics["rms_error_last_trials"] < 0.9 * silent
    assert abs(metrics["peak_error_ms"]) < 50
    assert (tmp_path / "cue/figures/cue_bump.png").exists()


@pytest.mark.slow
def test_force_sine_reproduces_nicola_clopath(tmp_path):
    """The full 15 s validation: reference (a NumPy transcription, 3 runs) error about 0.01 while
    learning, then 4.94-4.98 Hz at amplitude about 0.95; rates about 5 Hz before, 37 Hz after. The
    claims (frequency, amplitude, tracking) are judged on ``analysis.claims.FORCE_SINE``."""
    metrics = run_experiment(load_experiment(EXPERIMENTS / "force_sine.toml"), tmp_path / "sine", progress=False)
    print(json.dumps(metrics, indent=1))
    assert [item["holds"] for item in metrics["claims"]["items"]] == [True, True, True], metrics["claims"]
    assert 3.5 <= metrics["rate_before_training_hz"] <= 6.5
    assert metrics["rate_after_training_hz"] > 20


@pytest.mark.slow
def test_cue_bump_learns_a_bump_at_the_latency(tmp_path):
    metrics = run_experiment(load_experiment(EXPERIMENTS / "three_factor_cue_bump.toml"), tmp_path / "cue",
                             progress=False)
    print(json.dumps(metrics, indent=1))
    assert [item["holds"] for item in metrics["claims"]["items"]] == [True, True], metrics["claims"]
    assert metrics["half_rise_time_ms"] < metrics["latency_ms"]  # the prediction rises before the outcome
    assert metrics["rms_error_last_trials"] < metrics["rms_error_first_trials"]


@pytest.mark.parametrize("mode", ["replay", "batch_replay"])
def test_offline_consolidation_learns_between_trials(tmp_path, mode):
    overrides = {"duration_ms": 12 * 600.0, "network": {"n_neurons": 300},
                 "task": {"n_trials": 12, "test_trials": 4},
                 "readouts": {"groups": {"0": {"three_factor": {
                     "consolidation": {"mode": mode, "n_replay": 2, "batch_every_trials": 4}}}}}}
    config = load_experiment(EXPERIMENTS / "three_factor_cue_bump.toml", overrides)
    prepared = prepare(config)
    sim = make_simulation(config, prepared)
    task = prepared.task
    history = []
    for index, segment in enumerate(task.segments()):
        sim.run(n_steps=segment.n_steps)
        task.after_segment(sim, index)
        history.append(sim.readouts.weights.copy())
    changed = [not np.array_equal(a, b) for a, b in zip([np.zeros_like(history[0])] + history, history)]
    if mode == "replay":
        assert all(changed)  # every trial's window is replayed after the trial
    else:
        assert changed == [(i + 1) % 4 == 0 for i in range(12)]  # only every 4th trial
