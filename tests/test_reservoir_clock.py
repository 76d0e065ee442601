"""The reservoir-clock mechanisms as configuration keys: slow, spread recovery
(``network.adaptation``), a cue held for the attended window (``task.cue_hold_amplitude``), a
delayed learning gate (``task.gate_delay_ms``), and the regime table that reports them."""
from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.regime_table import main as regime_main
from analysis.regime_table import mechanism_label, regime_markdown, regime_row
from reservoir.config import ConfigError, resolve_config
from reservoir.experiment import load_experiment, prepare
from reservoir.network import build_network
from reservoir.neurons import izhikevich2003_heterogeneous, with_slow_recovery


def _network(adaptation=None, n_neurons=500, seed=4):
    overrides = {"network": {"n_neurons": n_neurons, "connectivity": {"rule": "bernoulli", "probability": 0.1}}}
    if adaptation is not None:
        overrides["network"]["adaptation"] = adaptation
    cfg = resolve_config("izhikevich2003", overrides)
    return build_network(cfg.network, cfg.integration, seed=seed)


def test_slow_recovery_changes_only_the_chosen_excitatory_neurons():
    plain = _network()
    slow = _network({"fraction": 0.5, "a_min": 0.001, "a_max": 0.01, "d": 3.0})
    changed = np.flatnonzero(slow.neurons.a != plain.neurons.a)
    n_exc = int(plain.neurons.is_excitatory.sum())
    assert changed.size == round(0.5 * n_exc)
    assert np.all(plain.neurons.is_excitatory[changed])
    assert np.all((slow.neurons.a[changed] >= 0.001) & (slow.neurons.a[changed] <= 0.01))
    np.testing.assert_array_equal(slow.neurons.d[changed], 3.0)
    unchanged = np.setdiff1d(np.arange(plain.n_neurons), changed)
    for name in ("a", "b", "c", "d"):
        np.testing.assert_array_equal(getattr(slow.neurons, name)[unchanged], getattr(plain.neurons, name)[unchanged])
    # its own random stream: the connectivity and the rest of the population are the ones without it
    np.testing.assert_array_equal(slow.connectivity.weights, plain.connectivity.weights)


def test_slow_recovery_is_log_uniform():
    rng = np.random.default_rng(0)
    neurons = izhikevich2003_heterogeneous(20000, 0, np.random.default_rng(1))
    a = with_slow_recovery(neurons, 1.0, 0.001, 0.1, None, rng).a
    # log10(a) uniform on [-3, -1]: a quarter of the draws in each half decade
    counts = np.histogram(np.log10(a), bins=4, range=(-3, -1))[0]
    assert np.all(np.abs(counts / a.size - 0.25) < 0.02)
    np.testing.assert_array_equal(with_slow_recovery(neurons, 1.0, 0.001, 0.1, None, np.random.default_rng(0)).a, a)


def test_adaptation_off_by_default_and_same_network():
    assert resolve_config("izhikevich2003").network.adaptation.fraction == 0.0
    np.testing.assert_array_equal(_network().neurons.a, _network({"fraction": 0.0}).neurons.a)


@pytest.mark.parametrize(("adaptation", "message"), [
    ({"fraction": 1.5}, "network.adaptation.fraction"),
    ({"a_min": 0.05, "a_max": 0.01}, "a_min"),
    ({"a_min": 0.0}, "network.adaptation.a_min"),
    ({"d": -1.0}, "network.adaptation.d"),
])
def test_adaptation_bad_values_name_the_key(adaptation, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        resolve_config("izhikevich2003", {"network": {"adaptation": adaptation}})


CLOCK = "experiments/whatwhen_reservoir_clock.toml"
SHORT = {"network": {"n_neurons": 300}, "duration_ms": 6000.0, "task": {"blocks": [{"name": "b", "n_trials": 5}]}}


def _prepared(**task):
    return prepare(load_experiment(CLOCK, {**SHORT, "task": {**SHORT["task"], **task}}))


def test_cue_hold_is_the_pulse_then_a_constant_current_for_the_attended_window():
    prepared = _prepared(cue_hold_amplitude=2.5)
    task = prepared.task
    signal = prepared.external_input.materialize(task.n_steps)
    pulse, window = task.steps(10.0), task.steps(800.0)
    for row in range(3):
        onset, cue = task.table["onset_step"][row], task.table["cue"][row]
        np.testing.assert_array_equal(signal[onset:onset + pulse, cue], 30.0)
        np.testing.assert_array_equal(signal[onset + pulse:onset + window, cue], 2.5)
        assert signal[onset + window, cue] == 0.0 and signal[onset - 1, cue] == 0.0
    plain = _prepared()
    plain_signal = plain.external_input.materialize(plain.task.n_steps)
    onset, cue = plain.task.table["onset_step"][0], plain.task.table["cue"][0]
    assert plain_signal[onset + pulse, cue] == 0.0


def test_gate_delay_opens_the_gates_after_the_cue():
    prepared = _prepared(gate_delay_ms=30.0)
    task = prepared.task
    teacher = prepared.teacher.materialize(task.n_steps)
    delay, window = task.steps(30.0), task.steps(800.0)
    for row in range(3):
        onset = task.table["onset_step"][row]
        assert np.all(teacher.gates[onset:onset + delay] == 0) and np.all(teacher.learn[onset:onset + delay] == 0)
        assert np.all(teacher.gates[onset + delay:onset + window] == 1)
        assert np.all(teacher.gates[onset + window:onset + window + 10] == 0)
    with pytest.raises(ConfigError, match="gate_delay_ms"):
        load_experiment(CLOCK, {"task": {"gate_delay_ms": 900.0}})


def test_reservoir_clock_experiment_has_no_time_basis_and_random_connectivity():
    experiment = load_experiment(CLOCK)
    task = experiment.task
    assert task.time_basis is None
    assert experiment.network.connectivity.rule == "bernoulli"
    assert experiment.network.adaptation.fraction > 0
    assert experiment.network.noise.excitatory_std == 0.5


def test_regime_table_reads_run_folders(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.resolved.toml").write_text(
        'duration_ms = 2000.0\n[network]\nnoise = { excitatory_std = 0.5, inhibitory_std = 0.25 }\n'
        'adaptation = { fraction = 1.0, a_min = 0.001, a_max = 0.02 }\n'
        '[readouts]\ntraces = [{ kind = "exponential", tau_ms = 20.0 }, { kind = "exponential", tau_ms = 300.0 }]\n'
        '[task]\nkind = "whatwhen"\n')
    (folder / "metrics.json").write_text(json.dumps({"mean_rate_hz": 12.5, "wall_time_s": 1.0}))
    (folder / "decodability.json").write_text(json.dumps({
        "omission_scaling": {"slope": 0.9, "intercept": -0.05, "r": 0.99},
        "cues": [{"cue": "C1", "peak_error_ms": 20.0, "lead_ms": 0.0}]}))
    assert mechanism_label({"network": {}, "readouts": {"traces": [{"tau_ms": 20.0}]}}) == "pulse only; traces 20 ms"
    row = regime_row(folder)
    assert row["cost_s_per_s"] == pytest.approx(0.5)
    table = regime_markdown([row])
    assert "adaptation 1 (a 0.001-0.02); traces 20/300 ms" in table
    assert "0.90 / -0.05 / 0.990" in table and "C1 +20, +0" in table and "12.5" in table
    assert regime_main([str(folder), "--figure", str(tmp_path / "regimes.png")]) == 0
    assert (tmp_path / "regimes.png").stat().st_size > 1000
    stopped = json.loads((folder / "decodability.json").read_text())
    stopped.update(run={"status": "failed", "completed_ms": 388906.0}, n_train=227, n_test=97)
    (folder / "decodability.json").write_text(json.dumps(stopped))
    assert "run failed at 389 s; ceiling from 324 trials" in regime_markdown([regime_row(folder)])
    with pytest.raises(SystemExit):
        regime_main([str(tmp_path / "missing")])


def test_omission_blocks_match_a_direct_computation(small_whatwhen_run, capsys):
    """Claim 2's measure per block (``analysis.omission_blocks``) against the outputs read
    trial by trial here; the CLI prints one line per block."""
    from analysis.io import load_run
    from analysis.omission_blocks import main as blocks_main
    from analysis.omission_blocks import omission_blocks
    from analysis.whatwhen import WhatWhenDesign
    run = load_run(small_whatwhen_run)
    design = WhatWhenDesign.from_run(run)
    table = run.tables["trials"]
    block = 5
    result = omission_blocks([small_whatwhen_run], block)
    assert result
    for entry in result:
        b = entry["first_trial"] // block
        for p, mean, n in zip(entry["p_outcome"], entry["omission_output"], entry["n_omissions"]):
            cue = next(ci for ci in range(len(design.cues)) if sum(design.settings[0][ci][1].values()) == p)
            rows = [r for r in range(b * block, b * block + block) if r < len(table["trial"])
                    and table["cue"][r] == cue and table["identity"][r] < 0 and table["block"][r] == 0]
            values = []
            for r in rows:
                due = table["onset_step"][r] * run.dt_ms + table["latency_ms"][r]
                inside = (run.output_time_ms >= due) & (run.output_time_ms < due + design.outcome_ms)
                values.append(run.outputs[inside, design.when_column].mean())
            assert n == len(rows) and mean == pytest.approx(np.mean(values), rel=1e-12)
    assert blocks_main([str(small_whatwhen_run), "--block", str(block)]) == 0
    assert capsys.readouterr().out.count("trials ") == len(result)
