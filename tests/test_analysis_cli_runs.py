"""The analysis command lines on every kind of run the engine writes (issue 20, item 6): a trace
bank of three filters (one a double exponential), readout layouts without a 'what' group, with
other group names and several units, or with an RLS 'when' group, runs that failed (a readout
diverged), were interrupted or are still 'running', a folder without run.h5 and a damaged
run.h5. Each command either analyses the part of the run that is complete and says so, or
refuses with a message naming what is wrong (exit status 2; 1 for a damaged file), never with a
traceback.

The runs are tiny (200 neurons, 10 trials) and made once per module; the stopped runs are
copies of complete ones cut back as the recorder leaves a run that stopped (:func:`stop_early`).
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis.continual_table import main as continual_table_main
from analysis.forgetting import main as forgetting_main
from analysis.convergence import main as convergence_main
from analysis.decodability import main as decodability_main
from analysis.digits_ceiling import main as digits_ceiling_main
from analysis.export import main as export_main
from analysis.features import SpikeIndex, run_filters, trial_features
from analysis.io import load_run
from analysis.run_status import read_run_status
from analysis.replay import replay_when_rule
from analysis.whatwhen import WhatWhenDesign, trial_views
from reservoir.experiment import load_experiment, run_experiment
from reservoir.readouts.traces import trace_bank, trace_bank_step
from reservoir.simulation import ReadoutDivergenceError

from .test_experiments import EXPERIMENTS

ROOT = Path(__file__).resolve().parent.parent
N_TRIALS = 10
PERIOD_MS = 1200.0  # trial_ms + iti_ms of the what/when experiments
TRIAL_MS = 800.0
SMALL = {"network": {"n_neurons": 200}, "duration_ms": N_TRIALS * PERIOD_MS,
         "readouts": {"snapshot_every_ms": 2400.0},
         "task": {"blocks": [{"name": "only", "n_trials": N_TRIALS}], "test_trials": 4}}
BANK = [{"kind": "exponential", "tau_ms": 20.0}, {"kind": "exponential", "tau_ms": 300.0},
        {"kind": "double_exponential", "tau_rise_ms": 5.0, "tau_decay_ms": 100.0}]
WHEN_RULE = {"learning_rate": 3e-5, "tau_eligibility_ms": 5.0, "gate": "window", "centering": "running_mean",
             "normalization": "variance", "bias_learning_rate": 0.01, "prediction_lead_ms": 5.0}
DIVERGING_LEARNING_RATE = 0.1
"""The 'when' rule at this learning rate diverges in the run's fifth trial (its output blows up)."""

DIGITS = {"network": {"n_neurons": 200}, "duration_ms": (2 * 20 + 2 * 10) * 80.0,
          "readouts": {"traces": [{"kind": "exponential", "tau_ms": 20.0},
                                  {"kind": "double_exponential", "tau_rise_ms": 2.0, "tau_decay_ms": 20.0}],
                       "groups": {"0": {"name": "classes"}}, "protection": {"groups": ["classes"]}},
          "task": {"group": "classes", "n_tasks": 2, "max_train_images": 20, "max_test_images": 10,
                   "curve_points_per_task": 1}}
"""Two permuted-digit tasks of 20 training and 10 test images (80 ms each): training until
3200 ms, task 0's tests until 4000 ms, task 1's until 4800 ms."""


def _make(folder: Path, experiment: str, overrides: dict) -> Path:
    run_experiment(load_experiment(EXPERIMENTS / experiment, overrides), folder, progress=False)
    return folder


def stop_early(source: Path, out: Path, status: str, at_ms: float, message: str = "") -> Path:
    """A copy of the complete run folder ``source`` as a run that stopped at ``at_ms`` leaves it:
    ``run.h5`` marked ``status`` with ``message`` and ``steps_completed`` (as
    ``RunFileRecorder.mark`` writes them), every stream cut back to the steps before (spikes,
    traces and outputs of steps ``< steps_completed``, weight snapshots up to it), no
    ``metrics.json`` and no figures."""
    out.mkdir(parents=True)
    for name in ("config.resolved.toml", "run.h5"):
        shutil.copy(source / name, out / name)
    with h5py.File(out / "run.h5", "r+") as f:
        step = int(round(at_ms / f.attrs["dt_ms"]))
        population = next(iter(f["spikes"]))
        spikes = f[f"spikes/{population}"]
        streams = [(spikes, np.round(spikes["timestamps"][()] / f.attrs["dt_ms"]) < step, ("timestamps", "node_ids")),
                   (f["traces"], f["traces/step"][()] < step, ("step", "time_ms", "v", "u"))]
        if "readouts" in f:
            r = f["readouts"]
            streams += [(r, r["output_step"][()] < step, ("output_step", "output_time_ms", "output")),
                        (r, r["snapshot_step"][()] <= step, ("snapshot_step", "snapshot_time_ms", "weights"))]
        for group, keep, names in streams:
            assert keep.size == 0 or np.all(keep[:keep.sum()]), "a stream is not in time order"
            for name in names:
                group[name].resize(int(keep.sum()), axis=0)
        f.attrs.modify("status", status)
        f.attrs.modify("message", message)
        f.attrs.modify("steps_completed", np.int64(step))
    return out


def _interrupted_message(step: int, out: Path) -> str:
    return f"interrupted at step {step}; resume it with: reservoir run --resume {out}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Every run folder the tests read, by name (complete runs, stopped copies, broken folders)."""
    base = tmp_path_factory.mktemp("cli_runs")
    made = {}
    made["bank"] = _make(base / "bank", "whatwhen_deterministic.toml",
                         {**SMALL, "readouts": {**SMALL["readouts"], "traces": BANK}})
    made["whatless"] = _make(base / "whatless", "whatwhen.toml", {
        **SMALL, "readouts": {**SMALL["readouts"], "groups": [
            {"name": "timing", "n_units": 1, "rule": "three_factor", "three_factor": WHEN_RULE},
            {"name": "extra", "n_units": 3, "rule": "frozen", "initial_weight_std": 0.01}]},
        "task": {**SMALL["task"], "group": "timing", "what_group": None}})
    made["rls"] = _make(base / "rls", "whatwhen_force.toml", SMALL)
    with pytest.raises(ReadoutDivergenceError, match=r"readout when\[0\] diverged"):
        _make(base / "diverged", "whatwhen.toml",
              {**SMALL, "readouts": {**SMALL["readouts"],
                                     "groups": {"0": {"three_factor": {"learning_rate": DIVERGING_LEARNING_RATE}}}}})
    made["diverged"] = base / "diverged"
    made["digits"] = _make(base / "digits", "permuted_digits.toml", DIGITS)
    at = 6.5 * PERIOD_MS  # within the seventh trial: six trials recorded whole
    made["interrupted"] = stop_early(made["bank"], base / "interrupted", "interrupted", at,
                                     _interrupted_message(int(at / 0.5), base / "interrupted"))
    made["running"] = stop_early(made["whatless"], base / "running", "running", 5.5 * PERIOD_MS)
    made["failed_early"] = stop_early(made["bank"], base / "failed_early", "failed", 1.5 * PERIOD_MS,
                                      "readout when[0] diverged at step 3600")
    made["digits_tested_0"] = stop_early(made["digits"], base / "digits_tested_0", "interrupted", 4400.0,
                                         _interrupted_message(4400, base / "digits_tested_0"))
    made["digits_training"] = stop_early(made["digits"], base / "digits_training", "interrupted", 2000.0,
                                         _interrupted_message(2000, base / "digits_training"))
    made["no_metrics"] = base / "no_metrics"  # complete, stopped while computing its metrics
    made["no_metrics"].mkdir()
    for name in ("config.resolved.toml", "run.h5"):
        shutil.copy(made["digits"] / name, made["no_metrics"] / name)
    made["missing"] = base / "missing"  # a folder whose run never wrote its file
    made["missing"].mkdir()
    shutil.copy(made["bank"] / "config.resolved.toml", made["missing"])
    made["damaged"] = base / "damaged"
    made["damaged"].mkdir()
    (made["damaged"] / "run.h5").write_bytes((made["bank"] / "run.h5").read_bytes()[:20000])
    return made


def _exit(main, args, capsys) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of a command line's ``main``; an exception fails the test."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --- the fixtures are what they claim ------------------------------------------------------------

def test_the_stopped_runs_record_what_the_engine_records(runs):
    diverged = read_run_status(runs["diverged"])
    assert diverged.status == "failed" and "diverged" in diverged.message
    assert not (runs["diverged"] / "metrics.json").exists()
    assert 3 * PERIOD_MS < diverged.completed_ms < diverged.planned_ms  # a few trials whole, not all
    interrupted = read_run_status(runs["interrupted"])
    assert (interrupted.status, interrupted.completed_ms, interrupted.planned_ms) == ("interrupted", 7800.0, 12000.0)
    run = load_run(runs["interrupted"])
    assert run.spike_times_ms.max() < 7800.0 and run.output_time_ms.max() < 7800.0
    assert read_run_status(runs["bank"]).complete and read_run_status(runs["running"]).status == "running"
    table = load_run(runs["digits"]).tables["presentations"]
    assert table["onset_ms"][table["test"]].min() >= 3200.0 and table["onset_ms"][~table["test"]].max() < 3200.0


# --- any trace bank ----------------------------------------------------------------------------

def test_features_of_a_bank_of_three_filters_are_the_engines(runs):
    """The rebuilt features equal the engine's trace bank stepped over the recorded spikes, for
    two exponential filters and a double exponential."""
    run = load_run(runs["bank"])
    filters = run_filters(run)
    assert [f.kind for f in filters] == ["exponential", "exponential", "double_exponential"]
    onsets = run.tables["trials"]["onset_step"][:2] * run.dt_ms
    every = 10
    rebuilt = trial_features(run, onsets, TRIAL_MS, every_ms=every * run.dt_ms, dtype=np.float64)
    for trial, onset in enumerate(onsets):
        bank = trace_bank(filters, run.n_neurons, run.dt_ms)
        lo, hi = np.searchsorted(run.spike_times_ms, [onset - 1e-9, onset + TRIAL_MS - 1e-9])
        steps = np.round((run.spike_times_ms[lo:hi] - onset) / run.dt_ms).astype(np.int64)
        ids = run.spike_ids[lo:hi]
        for step in range(int(TRIAL_MS / run.dt_ms)):
            fired = ids[steps == step]
            trace_bank_step(bank, fired, fired.size, run.dt_ms)
            if step % every == 0:
                np.testing.assert_allclose(rebuilt[trial, step // every], bank.traces.ravel(), rtol=1e-12, atol=1e-15)
    assert np.abs(rebuilt[:, :, 2 * run.n_neurons:]).max() > 0  # the double exponential carries spikes


def test_replaying_the_runs_own_rule_on_a_bank_of_three_filters_gives_the_engines_outputs(runs):
    run = load_run(runs["bank"])
    design = WhatWhenDesign.from_run(run)
    rule = dict(next(g for g in run.config["readouts"]["groups"] if g["name"] == "when")["three_factor"])
    rule.pop("consolidation")
    replayed = replay_when_rule(design, run, {"own": {}}, rule)["own"]["when"]
    _, _, when, _ = trial_views(design, run)
    np.testing.assert_allclose(replayed, when, rtol=0, atol=1e-9)


@pytest.mark.parametrize("filters", [[20.0], BANK], ids=["one", "bank"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_window_without_spikes_gives_zero_features(runs, filters, dtype):
    """np.bincount of no spikes is int64 whatever its weights: the window past an interrupted
    run's last step used to raise _UFuncOutputCastingError."""
    run = load_run(runs["interrupted"])
    with SpikeIndex(run) as spikes:
        X = spikes.filtered(run.duration_ms + 100.0, 200, np.arange(0, 200, 10), filters, dtype)
    assert X.dtype == dtype and X.shape == (20, run.n_neurons * len(filters)) and not X.any()


# --- analysis.decodability -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bank", "whatless", "rls"])
def test_decodability_of_any_bank_and_readout_layout(runs, name, capsys):
    code, out, _ = _exit(decodability_main, [runs[name]], capsys)
    assert code == 0
    result = json.loads((runs[name] / "decodability.json").read_text())
    assert result["n_train"] + result["n_test"] == N_TRIALS and result["run"]["status"] == "complete"
    assert "held-out R2" in out and "records status" not in out
    assert "omission output vs P(outcome): " in out  # a fit, or n/a with its reason: never a crash


@pytest.mark.parametrize("name,status,n_whole", [("interrupted", "interrupted", 6), ("running", "running", 5)])
def test_decodability_analyses_the_trials_a_stopped_run_recorded_and_says_so(runs, name, status, n_whole, capsys):
    code, out, _ = _exit(decodability_main, [runs[name]], capsys)
    assert code == 0
    assert f"run.h5 records status '{status}' at step" in out
    assert f"analysing the {n_whole} of the first block's {N_TRIALS} trials recorded whole" in out
    result = json.loads((runs[name] / "decodability.json").read_text())
    assert result["n_train"] + result["n_test"] == n_whole
    assert result["run"]["status"] == status and result["run"]["completed_ms"] < result["run"]["planned_ms"]
    if status == "running":
        assert "still being written, or the process writing it was killed" in out


def test_decodability_of_a_diverged_run_uses_its_trials_before_the_divergence(runs, capsys):
    status = read_run_status(runs["diverged"])
    n_whole = int((status.completed_ms - TRIAL_MS) // PERIOD_MS) + 1
    code, out, _ = _exit(decodability_main, [runs["diverged"]], capsys)
    assert code == 0
    assert "records status 'failed'" in out and f"analysing the {n_whole} of the first block's" in out
    assert "diverged" in out  # the run file's message says why it stopped
    result = json.loads((runs["diverged"] / "decodability.json").read_text())
    assert result["n_train"] + result["n_test"] == n_whole


def test_decodability_refuses_a_run_with_too_few_trials_naming_its_status(runs, capsys):
    code, out, err = _exit(decodability_main, [runs["failed_early"]], capsys)
    assert code == 2
    assert "records status 'failed' at step 3600 (t = 1800 ms of 12000 ms)" in err
    assert "needs at least 3 trials of the first block, 1 of its 10 are recorded whole" in err
    assert not (runs["failed_early"] / "decodability.json").exists()


# --- analysis.convergence ------------------------------------------------------------------------

def test_convergence_on_a_bank_of_three_filters(runs, capsys):
    code, out, _ = _exit(convergence_main, [runs["bank"], "--trials", "10", "--learning-rates", "3e-5"], capsys)
    assert code == 0 and "eta 3e-05, 10 trials" in out
    assert json.loads((runs["bank"] / "convergence.json").read_text())["run"]["status"] == "complete"


@pytest.mark.parametrize("name", ["bank", "whatless"])
def test_convergence_replays_candidates_on_any_layout(runs, name, capsys):
    code, out, _ = _exit(convergence_main, [runs[name], "--own-features", "--candidate", "own",
                                            "--candidate", "slower:learning_rate=1e-6"], capsys)
    assert code == 0
    assert set(json.loads((runs[name] / "candidates.json").read_text())) == {"own", "slower"}
    assert "own: omission output vs P(outcome): " in out and "slope nan" not in out


def test_convergence_refuses_an_rls_when_group(runs, capsys):
    for extra in ([], ["--own-features"]):
        code, _, err = _exit(convergence_main, [runs["rls"], *extra], capsys)
        assert code == 2 and "uses rule 'rls', not 'three_factor'" in err


@pytest.mark.parametrize("name,status,n_whole", [("interrupted", "interrupted", 6), ("running", "running", 5)])
def test_convergence_replays_the_trials_a_stopped_run_recorded_and_says_so(runs, name, status, n_whole, capsys):
    code, out, _ = _exit(convergence_main, [runs[name], "--own-features", "--name", "stopped"], capsys)
    assert code == 0
    assert f"records status '{status}'" in out and f"using the {n_whole} of its {N_TRIALS} trials recorded whole" in out
    conditions = json.loads((runs[name] / "stopped.json").read_text())["own"]["conditions"]
    run = load_run(runs[name])
    per_cue = np.bincount(run.tables["trials"]["cue"][:n_whole])  # each condition: its last test_trials (4) trials
    assert sorted(e["n_trials"] for e in conditions) == sorted(min(int(n), 4) for n in per_cue if n)


def test_convergence_refuses_more_trials_than_a_stopped_run_recorded(runs, capsys):
    code, _, err = _exit(convergence_main, [runs["interrupted"], "--trials", "8", "--trials-from-run",
                                            "--learning-rates", "3e-5"], capsys)
    assert code == 2
    assert "records status 'interrupted'" in err and "has 6 trials recorded whole (of 10), asked to replay 8" in err
    code, _, err = _exit(convergence_main, [runs["interrupted"], "--own-features", "--trials-own", "8"], capsys)
    assert code == 2 and "n_trials: expected 1 to 6 (the trials recorded whole, of 10), got 8" in err


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the replayed rule diverges too
def test_convergence_of_a_diverged_run(runs, capsys):
    code, out, _ = _exit(convergence_main, [runs["diverged"], "--own-features", "--name", "diverged"], capsys)
    assert code == 0 and "records status 'failed'" in out and "diverged" in out


# --- analysis.continual_table and analysis.digits_ceiling ----------------------------------------

def test_continual_table_and_digits_ceiling_of_a_bank_and_another_group_name(runs, capsys, tmp_path):
    code, out, _ = _exit(continual_table_main, [runs["digits"], "--heatmaps", str(tmp_path / "R.png")], capsys)
    assert code == 0 and "| hlop (rate) | 1 (1) | 2 |" in out
    assert (tmp_path / "R.png").stat().st_size > 0
    code, out, _ = _exit(digits_ceiling_main, [runs["digits"], "--alphas", "0.01", "0.1"], capsys)
    assert code == 0 and "records status" not in out
    assert out.splitlines()[1].split() == ["task:", "0", "1"]


def test_forgetting_of_a_finished_run_and_refusals(runs, capsys):
    code, out, _ = _exit(forgetting_main, [runs["digits"]], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("task  R[t,t]") and lines[1].split()[0] == "0" and len(lines) == 3
    assert lines[-1].startswith("BWT ")
    code, _, err = _exit(forgetting_main, [runs["digits_tested_0"]], capsys)
    assert code == 2 and "records status 'interrupted'" in err


def test_continual_table_refuses_a_run_that_did_not_complete(runs, capsys):
    code, _, err = _exit(continual_table_main, [runs["digits"], runs["digits_tested_0"]], capsys)
    assert code == 2
    assert "digits_tested_0/run.h5 records status 'interrupted' at step 4400 (t = 4400 ms of 4800 ms)" in err
    assert "ACC and BWT need the accuracy matrix that a run measures when it completes" in err
    code, _, err = _exit(continual_table_main, [runs["no_metrics"]], capsys)
    assert code == 2 and "metrics.json is missing" in err and "reservoir run --resume" in err


def test_digits_ceiling_measures_the_tasks_a_stopped_run_recorded_and_says_so(runs, capsys):
    code, out, _ = _exit(digits_ceiling_main, [runs["digits_tested_0"], "--alphas", "0.01", "0.1"], capsys)
    assert code == 0
    assert "records status 'interrupted'" in out and "measuring tasks 0 of 0-1" in out
    assert out.splitlines()[2].split() == ["task:", "0"]
    code, _, err = _exit(digits_ceiling_main, [runs["digits_training"]], capsys)
    assert code == 2
    assert "records status 'interrupted' at step 2000" in err and "none of its 2 tasks" in err


@pytest.mark.parametrize("main", [continual_table_main, digits_ceiling_main], ids=["continual_table", "digits_ceiling"])
@pytest.mark.parametrize("name", ["bank", "diverged"])
def test_the_digits_tools_refuse_a_whatwhen_run(runs, main, name, capsys):
    code, _, err = _exit(main, [runs[name]], capsys)
    assert code == 2 and "not a permuted-digits run (task.kind is 'whatwhen')" in err


# --- analysis.export ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bank", "whatless", "rls", "interrupted", "diverged"])
def test_export_of_any_layout_and_of_a_stopped_run(runs, name, tmp_path, capsys):
    pynwb = pytest.importorskip("pynwb")
    path = tmp_path / f"{name}.nwb"
    code, out, _ = _exit(export_main, [runs[name], "--nwb", path], capsys)
    assert code == 0
    status = read_run_status(runs[name])
    run = load_run(runs[name])
    n_whole = int(status.completed_ms // PERIOD_MS)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert len(nwb.trials) == n_whole
        outputs = nwb.acquisition["readout_outputs"]
        assert outputs.data.shape == run.outputs.shape
        assert outputs.description.endswith(", ".join(run.unit_names))
        assert ("stopped early" in nwb.session_description) == (not status.complete)
    if status.complete:
        assert "records status" not in out
    else:
        assert f"records status '{status.status}'" in out
        assert f"the {n_whole} of its {N_TRIALS} trials recorded whole" in out


# --- no run file, a damaged one ----------------------------------------------------------------

COMMANDS = {"decodability": decodability_main, "convergence": convergence_main,
            "continual_table": continual_table_main, "digits_ceiling": digits_ceiling_main, "export": export_main}


def _arguments(command: str, folder: Path) -> list:
    """The command's arguments for the run folder ``folder``."""
    return {"convergence": [folder, "--own-features"],
            "export": [folder, "--nwb", folder.parent / f"{folder.name}.nwb"]}.get(command, [folder])


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_without_run_file_exits_2_naming_it(runs, command, capsys):
    code, _, err = _exit(COMMANDS[command], _arguments(command, runs["missing"]), capsys)
    assert code == 2 and f"{runs['missing']} is not a complete run folder: run.h5 is missing" in err
    code, _, err = _exit(COMMANDS[command], _arguments(command, runs["missing"] / "nope"), capsys)
    assert code == 2 and f"{runs['missing'] / 'nope'}: no such run folder" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_run_file_exits_1_naming_it(runs, command, capsys):
    code, _, err = _exit(COMMANDS[command], _arguments(command, runs["damaged"]), capsys)
    assert code == 1
    assert f"{runs['damaged'] / 'run.h5'} cannot be opened as a reservoir run file: it is truncated" in err


def test_the_command_line_itself_refuses_without_a_traceback(runs):
    """As a user runs it: a new interpreter, the message on stderr, exit status 2."""
    done = subprocess.run([sys.executable, "-m", "analysis.decodability", str(runs["failed_early"])],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "records status 'failed'" in done.stderr
