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
    config = _config(outcome_amplitude=10.0)
    prepared = prepare(config)
    task = prepared.task
    teacher = prepared.teacher.materialize(task.n_steps)  # streamed: the whole run's rows, built here
    external_signal = prepared.external_input.materialize(task.n_steps)
    table = task.table
    when = task.when_column
    for row in range(5):
        onset, latency, identity = table["onset_step"][row], table["latency_ms"][row], table["identity"][row]
        arrival = onset + task.steps(latency)
        assert np.all(teacher.gates[onset:onset + task.steps(800.0), when] == 1)
        assert np.all(teacher.gates[onset + task.steps(800.0):onset + task.steps(1200.0), when] == 0)
        assert external_signal[onset, table["cue"][row]] == 30.0
        assert np.all(teacher.store[onset:arrival]) and not teacher.store[arrival]
        expected = 1.0 if identity >= 0 else 0.0
        assert teacher.targets[arrival, when] == expected
        assert teacher.targets[arrival - 1, when] == 0.0
        if identity >= 0:
            assert external_signal[arrival, 2 + identity] == 10.0
            assert teacher.targets[onset, task.what_columns[identity]] == 1.0
        else:
            assert np.all(teacher.targets[onset:arrival][:, task.what_columns] == 0)


def test_each_cue_drives_its_own_time_basis_after_each_onset():
    """Channel i of a cue peaks at its centre after every onset of that cue, in its own neuron
    subset (disjoint from the other cues' while the neurons last), and is silent otherwise."""
    config = load_experiment(EXPERIMENTS / "whatwhen.toml", {"task": {"blocks": [{"name": "b", "n_trials": 12}]},
                                                             "duration_ms": 12 * 1200.0})
    prepared = prepare(config)
    task, external = prepared.task, prepared.external_input
    signal = external.materialize(task.n_steps)  # streamed: the whole run's time course, built here
    basis = config.task.time_basis
    centres = basis.centres_ms(config.task.trial_ms)
    n_cues, first = len(config.task.cues), len(config.task.cues) + len(config.task.identities)
    assert external.n_channels == first + n_cues * basis.n_channels
    table = task.table
    for row in range(6):
        onset, cue = table["onset_step"][row], table["cue"][row]
        channels = first + cue * basis.n_channels + np.arange(basis.n_channels)
        window = signal[onset:onset + task.steps(config.task.trial_ms)][:, channels]
        peaks = np.argmax(window, axis=0) * task.dt_ms
        np.testing.assert_allclose(peaks, centres, atol=task.dt_ms)
        np.testing.assert_allclose(window.max(axis=0), basis.amplitude, rtol=1e-3)  # sampled every dt
        others = np.setdiff1d(np.arange(first, external.n_channels), channels)
        assert not signal[onset:onset + task.steps(config.task.trial_ms)][:, others].any()
        assert not signal[onset + task.steps(config.task.trial_ms):onset + task.steps(1200.0)].any()
    subsets = task.subsets[first:]
    assert all(len(s) == round(basis.fraction * 1600) for s in subsets)
    assert len(np.unique(np.concatenate(subsets))) == sum(len(s) for s in subsets)  # disjoint: 1152 of 1600


def test_time_basis_log_spacing_is_scale_invariant():
    from paradigms.whatwhen import TimeBasisConfig

    basis = TimeBasisConfig(n_channels=5, first_ms=25.0, last_ms=400.0, spacing="log", width=0.5, amplitude=2.0)
    centres = basis.centres_ms(800.0)
    np.testing.assert_allclose(centres[1:] / centres[:-1], 2.0)
    t = np.linspace(1.0, 800.0, 8000)
    wave = basis.waveforms(t, 800.0)
    np.testing.assert_allclose(t[np.argmax(wave, axis=0)], centres, rtol=2e-3)
    widths = [(wave[:, i] > 1.0).sum() for i in range(5)]  # above half the peak: doubles with the centre
    np.testing.assert_allclose(np.array(widths[1:]) / np.array(widths[:-1]), 2.0, rtol=0.05)


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


def test_short_deterministic_run_learns_an_anticipatory_prediction_at_one_latency(tmp_path):
    """40 trials of one cue (outcome A with probability 1 at 250 ms), no background noise, the
    default rules: the 'when' output of the last 5 trials fills the outcome window, peaks within
    30 ms of the latency and is half-way up no later than it, and stays near 0 elsewhere; it
    started near 0. 'what A' goes to 1 before the outcome, 'what B' stays near 0."""
    overrides = {"network": {"n_neurons": 400, "noise": {"excitatory_std": 0.0, "inhibitory_std": 0.0}},
                 "readouts": {"snapshot_every_ms": 12000.0}, "duration_ms": 40 * 1200.0,
                 "task": {"cues": [{"name": "C1", "latency_ms": 250.0, "probabilities": {"A": 1.0}}],
                          "blocks": [{"name": "only", "n_trials": 40}], "test_trials": 5,
                          "time_basis": {"fraction": 0.03}}}
    config = load_experiment(EXPERIMENTS / "whatwhen.toml", overrides)
    metrics = run_experiment(config, tmp_path / "ww", progress=False)
    from analysis import load_run
    from analysis.trials import aligned, peak_and_half_rise

    run = load_run(tmp_path / "ww")
    onsets = run.tables["trials"]["onset_step"] * run.dt_ms
    when = aligned(run, 0, onsets, 800.0)
    t = np.arange(when.shape[1]) * run.output_dt_ms
    curve = when[-5:].mean(axis=0)
    due = (t >= 250) & (t < 300)
    assert when[:5][:, due].mean() < 0.4
    assert curve[due].mean() > 0.6
    assert np.abs(curve[(t >= 50) & (t < 200)]).mean() < 0.15 and np.abs(curve[t >= 350]).mean() < 0.15
    peak, _, half_rise = peak_and_half_rise(curve, t)
    assert abs(peak - 250) <= 30 and half_rise <= 250
    what = aligned(run, 1, onsets, 800.0), aligned(run, 2, onsets, 800.0)
    assert what[0][-5:, 10:250].mean() > 0.8 and abs(what[1][-5:, 10:250].mean()) < 0.2
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
