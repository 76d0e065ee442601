"""The what/when paradigm: schedule, inputs and targets, validation, and a shortened run."""
import numpy as np
import pytest

from reservoir.config import ConfigError
from reservoir.experiment import load_experiment, prepare, run_experiment

from .test_experiments import EXPERIMENTS

SMALL = {"network": {"n_neurons": 300}, "readouts": {"snapshot_every_ms": 6000.0}}


def _config(**task):
    overrides = {**SMALL, "task": task} if task else dict(SMALL)
    return load_experiment(EXPERIMENTS / "whatwhen_timing_switch.toml", overrides)


def test_schedule_follows_the_probabilities_and_blocks():
    config = _config()
    task = prepare(config).task
    table = task.table
    assert len(table["trial"]) == 400 and np.all(np.diff(table["onset_step"]) == task.steps(1200.0))
    assert np.all(table["block"][:200] == 0) and np.all(table["block"][200:] == 1)
    c1 = table["cue"] == 0
    assert set(table["latency_ms"][c1 & (table["block"] == 0)]) == {250.0}
    assert set(table["latency_ms"][c1 & (table["block"] == 1)]) == {400.0}
    outcome_rate = np.mean(table["identity"][c1] >= 0)
    assert abs(outcome_rate - 0.9) < 4 * np.sqrt(0.9 * 0.1 / c1.sum())  # binomial, 4 sd
    a_share = np.mean(table["identity"][c1 & (table["identity"] >= 0)] == 0)
    assert abs(a_share - 0.7 / 0.9) < 0.12


def test_targets_gates_and_inputs_line_up_with_the_trial_table():
    config = _config()
    prepared = prepare(config)
    task, external, teacher = prepared.task, prepared.external_input, prepared.teacher
    table = task.table
    when = task.when_column
    for row in range(5):
        onset, latency, identity = table["onset_step"][row], table["latency_ms"][row], table["identity"][row]
        arrival = onset + task.steps(latency)
        assert np.all(teacher.gates[onset:onset + task.steps(800.0), when] == 1)
        assert np.all(teacher.gates[onset + task.steps(800.0):onset + task.steps(1200.0), when] == 0)
        assert external.signal[onset, table["cue"][row]] == 30.0
        assert np.all(teacher.store[onset:arrival]) and not teacher.store[arrival]
        expected = 1.0 if identity >= 0 else 0.0
        assert teacher.targets[arrival, when] == expected
        assert teacher.targets[arrival - 1, when] == 0.0
        if identity >= 0:
            assert external.signal[arrival, 2 + identity] == 10.0
            assert teacher.targets[onset, task.what_columns[identity]] == 1.0
        else:
            assert np.all(teacher.targets[onset:arrival][:, task.what_columns] == 0)


@pytest.mark.parametrize("overrides,named", [
    ({"task": {"cues": {"0": {"probabilities": {"Z": 0.05}}}}}, "unknown identities"),
    ({"task": {"cues": {"0": {"latency_ms": 790.0}}}}, r"latency_ms \+ outcome_ms"),
    ({"task": {"cues": {"0": {"probabilities": {"A": 0.8, "B": 0.5}}}}}, "sum to at most 1"),
    ({"task": {"blocks": {"1": {"changes": {"C9": {"latency_ms": 100.0}}}}}}, "unknown cue"),
    ({"duration_ms": 1000.0}, "duration_ms"),
    ({"task": {"what_group": "nope"}}, "task.what_group"),
])
def test_invalid_whatwhen_configs_name_the_problem(overrides, named):
    with pytest.raises(ConfigError, match=named):
        load_experiment(EXPERIMENTS / "whatwhen_timing_switch.toml", overrides)


def test_short_run_moves_the_readouts_towards_their_targets(tmp_path):
    """30 trials of one cue (outcome A with probability 1 at 250 ms) in a small network: the
    'when' output in the outcome window and the 'what A' output before it grow, 'what B' does
    not overtake 'what A'."""
    overrides = {**SMALL, "duration_ms": 30 * 1200.0,
                 "task": {"cues": [{"name": "C1", "latency_ms": 250.0, "probabilities": {"A": 1.0}}],
                          "blocks": [{"name": "only", "n_trials": 30}], "test_trials": 5}}
    config = load_experiment(EXPERIMENTS / "whatwhen.toml", overrides)
    metrics = run_experiment(config, tmp_path / "ww", progress=False)
    from analysis import load_run
    from analysis.whatwhen import aligned

    run = load_run(tmp_path / "ww")
    onsets = run.tables["trials"]["onset_step"] * run.dt_ms
    when = aligned(run, 0, onsets, 800.0)
    what = aligned(run, 1, onsets, 800.0), aligned(run, 2, onsets, 800.0)
    window = slice(250, 300)
    assert when[-5:, window].mean() > when[:5, window].mean() + 0.1
    assert what[0][-5:, 10:250].mean() > what[0][:5, 10:250].mean()
    assert what[0][-5:, 10:250].mean() > what[1][-5:, 10:250].mean()
    for name in ("readouts_by_cue_and_block.png", "amplitude_vs_probability.png", "reliability.png", "angles.png"):
        assert (tmp_path / "ww/figures" / name).exists(), name
    assert metrics["conditions"][0]["cue"] == "C1"


def test_cue_patterns_reach_every_excitatory_neuron_with_their_own_gains():
    config = load_experiment(EXPERIMENTS / "whatwhen.toml", {**SMALL, "task": {"cue_fraction": 1.0,
                                                                                "cue_gain_spread": 0.5}})
    prepared = prepare(config)
    network, external = prepared.network, prepared.external_input
    n_exc = int(network.neurons.is_excitatory.sum())
    for cue in range(len(config.task.cues)):
        span = slice(external.indptr[cue], external.indptr[cue + 1])
        assert external.indptr[cue + 1] - external.indptr[cue] == n_exc
        gains = external.gains[span]
        assert gains.min() >= 0.5 and gains.max() <= 1.5 and gains.std() > 0.2
    first, second = (external.gains[external.indptr[i]:external.indptr[i + 1]] for i in (0, 1))
    assert not np.allclose(first, second)  # each cue has its own pattern


@pytest.mark.parametrize("name", ["whatwhen.toml", "whatwhen_timing_switch.toml", "whatwhen_probability_switch.toml",
                                  "whatwhen_force.toml"])
def test_analysis_reads_the_same_design_from_the_run_file(name):
    """``analysis`` reads the trial design from a run file's resolved configuration, without the
    paradigm: cue settings per block (changes carried over), block changes, columns."""
    import tomllib
    from types import SimpleNamespace

    import tomli_w

    from analysis.whatwhen import WhatWhenDesign
    from reservoir.config import config_to_dict

    config = load_experiment(EXPERIMENTS / name)
    prepared = prepare(config)
    readouts = prepared.readouts
    run = SimpleNamespace(path=name, config=tomllib.loads(tomli_w.dumps(config_to_dict(config))),  # as in run.h5
                          readout_groups={g: [s.start, s.stop] for g, s in readouts.group_slices.items()})
    design = WhatWhenDesign.from_run(run)
    task = config.task
    assert design.settings == task.cue_settings()
    assert design.block_changes == [list(block.changes) for block in task.blocks]
    assert design.cues == [cue.name for cue in task.cues] and design.identities == task.identities
    assert design.when_column == prepared.task.when_column
    np.testing.assert_array_equal(design.what_columns, prepared.task.what_columns)
