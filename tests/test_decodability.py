"""Time-decodability (the ideal least-squares 'when' readout) and the offline convergence of the
three-factor rule, on short deterministic what/when runs."""
import json

import numpy as np
import pytest

from analysis.convergence import NotDeterministicError, rule_convergence
from analysis.convergence import main as convergence_main
from analysis.decodability import main as decodability_main
from analysis.decodability import when_decodability
from analysis.features import trial_features
from analysis.io import load_run
from analysis.replay import replay_when_rule
from analysis.whatwhen import WhatWhenDesign, trial_views, whatwhen_metrics
from reservoir.experiment import load_experiment, run_experiment

from .naive_features import naive_trial_traces
from .test_experiments import EXPERIMENTS

N_TRIALS = 60


def _run(tmp_path_factory, name, n_trials=N_TRIALS, **overrides):
    base = {"network": {"n_neurons": 300}, "duration_ms": n_trials * 1200.0,
            "readouts": {"snapshot_every_ms": 12000.0}, "task": {"blocks": {"0": {"n_trials": n_trials}}}}
    for key, value in overrides.items():
        base.setdefault(key, {}).update(value)
    config = load_experiment(EXPERIMENTS / "whatwhen_deterministic.toml", base)
    out = tmp_path_factory.mktemp(name)
    run_experiment(config, out, progress=False, overwrite=True)
    run = load_run(out)
    return WhatWhenDesign.from_run(run), run


@pytest.fixture(scope="module")
def deterministic(tmp_path_factory):
    return _run(tmp_path_factory, "deterministic")


def test_trial_features_agree_with_the_step_by_step_twin(deterministic):
    design, run = deterministic
    onsets = run.tables["trials"]["onset_step"][:3] * run.dt_ms
    fast = trial_features(run, onsets, 800.0, every_ms=5.0)
    exact = trial_features(run, onsets, 800.0, every_ms=5.0, lead_in_ms=100.0, dtype=np.float64)
    n = run.n_neurons
    for k, tau in enumerate(f["tau_ms"] for f in run.config["readouts"]["traces"]):
        slow = naive_trial_traces(run, onsets, 800.0, tau_ms=tau, every_ms=5.0, lead_in_ms=0.0)
        np.testing.assert_allclose(fast[:, :, k * n:(k + 1) * n], slow, rtol=1e-5, atol=1e-7)  # float32
        slow = naive_trial_traces(run, onsets, 800.0, tau_ms=tau, every_ms=5.0, lead_in_ms=100.0)
        # the rebuild sums the recurrence in closed form between samples: equal up to rounding
        np.testing.assert_allclose(exact[:, :, k * n:(k + 1) * n], slow, rtol=1e-12, atol=1e-15)


def test_ideal_readout_predicts_the_outcome_frequency_when_trials_are_identical(deterministic):
    design, run = deterministic
    result = when_decodability(design, run, test_fraction=0.5)  # enough held-out omissions of two cues
    table = run.tables["trials"]
    train = np.arange(result["n_train"])
    with_omissions = 0
    for ci, entry in enumerate(result["cues"]):
        mine = train[table["cue"][train] == ci]
        frequency = np.mean(table["identity"][mine] >= 0)  # least squares on identical features -> the mean
        if entry["n_omissions"] == 0:
            assert entry["omission_amplitude"] is None, entry
        else:
            assert abs(entry["omission_amplitude"] - frequency) < 0.1, entry
            with_omissions += 1
        t = np.array(result["time_ms"])
        box = (t >= entry["latency_ms"]) & (t < entry["latency_ms"] + design.outcome_ms)
        assert np.abs(np.array(entry["curve"]) - frequency * box).mean() < 0.05  # time-locked, 0 elsewhere
        assert 0 <= entry["peak_error_ms"] < design.outcome_ms
    assert with_omissions >= 2  # the omission check ran for at least two cues


def test_ideal_readout_detects_rather_than_predicts_when_the_outcome_enters_the_reservoir(tmp_path_factory,
                                                                                          deterministic):
    design, run = _run(tmp_path_factory, "with_outcome", task={"outcome_amplitude": 10.0})
    result = when_decodability(design, run)
    high = max(result["cues"], key=lambda e: e["p_outcome"] if e["omission_amplitude"] is not None else -1)
    assert high["omission_amplitude"] < 0.5 * high["p_outcome"], high
    # the test trials are fitted better than by the best prediction (the same trials with the
    # outcome kept out of the reservoir, no noise: identical features within a cue)
    blind = when_decodability(*deterministic)
    assert result["test_r2"] > blind["test_r2"], (result["test_r2"], blind["test_r2"])


def test_offline_rule_replays_what_the_engine_learned(deterministic):
    design, run = deterministic
    rate = next(g for g in run.config["readouts"]["groups"] if g["name"] == "when")["three_factor"]["learning_rate"]
    snapshot_ms = 12000.0  # after 10 trials
    k = int(np.flatnonzero(np.isclose(run.snapshot_time_ms, snapshot_ms))[0])
    engine = run.weight_snapshots()[k, design.when_column]
    offline = rule_convergence(design, run, [rate], n_trials=10, trials_from_run=True)
    np.testing.assert_allclose(offline["runs"][0]["weights"], engine, rtol=1e-6, atol=1e-8)  # rounding, amplified by the normalised step


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return _run(tmp_path_factory, "noisy", n_trials=12, network={"noise": {"excitatory_std": 0.5, "inhibitory_std": 0.25}})


def test_offline_rule_refuses_noisy_runs(noisy):
    design, run = noisy
    with pytest.raises(NotDeterministicError, match="network.noise = 0"):
        rule_convergence(design, run, [3e-5], n_trials=5)


def test_replay_of_the_runs_own_rule_reproduces_the_engine_on_a_noisy_run(noisy):
    """The candidate replay (analysis.replay) steps the run's own 'when' rule through the run's
    own trials and features: it gives the engine's outputs, to rounding."""
    design, run = noisy
    rule = dict(next(g for g in run.config["readouts"]["groups"] if g["name"] == "when")["three_factor"])
    rule.pop("consolidation")
    result = replay_when_rule(design, run, {"own": {}, "slower": {"learning_rate": rule["learning_rate"] / 10}}, rule)
    _, _, when, _ = trial_views(design, run)
    np.testing.assert_allclose(result["own"]["when"], when, rtol=0, atol=1e-9)
    assert np.abs(result["slower"]["when"] - when).max() > 1e-3  # a candidate does change the outputs
    engine = [{k: v for k, v in e.items() if not k.startswith("what_")} for e in whatwhen_metrics(run, design)["conditions"]]
    assert result["own"]["conditions"] == engine


def test_replay_command_line_writes_each_candidate_and_refuses_runs_without_reset(noisy, tmp_path_factory, capsys):
    folder = noisy[1].path.parent
    assert convergence_main([str(folder), "--own-features", "--candidate", "own",
                             "--candidate", "plain:centering=none,normalization=none,learning_rate=0.001"]) == 0
    written = json.loads((folder / "candidates.json").read_text())
    assert set(written) == {"own", "plain"} and written["plain"]["rule"]["centering"] == "none"
    assert (folder / "figures" / "candidates.png").exists()
    with pytest.raises(SystemExit):
        convergence_main([str(folder), "--own-features", "--candidate", "bad:learning_rate"])
    assert "key=value" in capsys.readouterr().err
    _, no_reset = _run(tmp_path_factory, "no_reset", n_trials=3, task={"reset_between_trials": False})
    with pytest.raises(SystemExit):
        convergence_main([str(no_reset.path.parent), "--own-features"])
    assert "reset_between_trials" in capsys.readouterr().err


def test_command_lines_write_their_results_and_refuse_bad_input(deterministic, noisy, capsys):
    folder = deterministic[1].path.parent
    assert decodability_main([str(folder)]) == 0
    assert (folder / "decodability.json").exists() and (folder / "figures" / "decodability.png").exists()
    assert convergence_main([str(folder), "--trials", "10", "--learning-rates", "3e-5"]) == 0
    assert json.loads((folder / "convergence.json").read_text())["n_trials"] == 10
    for args, named in (([str(noisy[1].path.parent)], "network.noise = 0"), ([str(folder), "--trials", "0"], "--trials"),
                        ([str(folder), "--tau-eligibility-ms", "-1"], "--tau-eligibility-ms"),
                        ([str(folder), "--name", "../x"], "--name")):
        with pytest.raises(SystemExit) as exit_info:
            convergence_main(args)
        assert exit_info.value.code == 2
        assert named in capsys.readouterr().err


def test_offline_rule_reports_divergence(deterministic):
    design, run = deterministic
    result = rule_convergence(design, run, [3e-5, 1.0], n_trials=20, checkpoints=[20])
    stable, unstable = result["runs"]
    assert stable["diverged_at_trial"] is None and len(stable["history"]) == 1
    assert unstable["diverged_at_trial"] is not None and unstable["history"] == []
