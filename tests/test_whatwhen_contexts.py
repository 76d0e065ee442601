"""Sequential what/when contexts: blocks that draw their own cues, the readouts' task boundary
at each block start, and the retention measure of the earlier context's prediction."""
import h5py
import numpy as np
import pytest

from analysis.features import trial_features
from paradigms.whatwhen import WhatWhenTask
from reservoir.config import ConfigError
from reservoir.experiment import load_experiment, run_experiment

from .test_experiments import EXPERIMENTS

TINY = {"network": {"n_neurons": 300}, "duration_ms": 24 * 1200.0,
        "task": {"test_trials": 3, "blocks": {"0": {"n_trials": 12}, "1": {"n_trials": 12}}},
        "readouts": {"protection": {"neurons_per_task": 10}}}


def _tiny(name="whatwhen_contexts.toml"):
    return load_experiment(EXPERIMENTS / name, TINY)


def test_each_context_draws_only_its_cues():
    config = load_experiment(EXPERIMENTS / "whatwhen_contexts.toml")
    task = WhatWhenTask(config.task, config.n_steps, config.integration.dt_ms, config.seed)
    table = task.table
    first, second = table["block"] == 0, table["block"] == 1
    assert set(table["cue"][first].tolist()) == {0, 1, 2}
    assert set(table["cue"][second].tolist()) == {3, 4, 5}
    assert set(table["identity"][second].tolist()) <= {-1, 2, 3}  # context 2's outcomes are C and D


def test_a_block_with_unknown_cues_is_refused():
    with pytest.raises(ConfigError, match="blocks: block 'context 2' draws unknown or no cues"):
        load_experiment(EXPERIMENTS / "whatwhen_contexts.toml", {"task": {"blocks": {"1": {"cues": ["C9"]}}}})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("contexts")
    config = _tiny()
    metrics = run_experiment(config, out, progress=False)
    return config, out, metrics


def test_blocks_are_tasks_for_the_protection_and_retention_is_measured(tiny_run):
    config, out, metrics = tiny_run
    retention = metrics["retention"]
    assert {r["cue"] for r in retention} <= {"C1", "C2", "C3"} and retention
    for entry in retention:
        assert entry["block"] == 0 and entry["n_omissions"] >= 1
        assert abs(entry["peak_time_after_own_ms"] - entry["latency_ms"]) <= 200.0
        own = entry["amplitude_after_own"]
        assert entry["amplitude_change"] == pytest.approx((entry["amplitude_after_last"] - own) / abs(own))


def test_retention_reads_the_block_end_weights_on_rebuilt_features(tiny_run):
    """The amplitude after the first context equals the kept weights applied by hand to the
    omission trials' features (rebuilt from the spikes)."""
    from analysis import load_run
    from analysis.whatwhen import WhatWhenDesign

    config, out, metrics = tiny_run
    run = load_run(out)
    design = WhatWhenDesign.from_run(run)
    table = run.tables["trials"]
    entry = metrics["retention"][0]
    ci = design.cues.index(entry["cue"])
    rows = np.flatnonzero((table["block"] == 0) & (table["cue"] == ci) & (table["identity"] < 0))
    features = trial_features(run, table["onset_step"][rows][-40:] * run.dt_ms, design.trial_ms, 2.0,
                              dtype=np.float64)
    with h5py.File(out / "continual.h5") as f:
        weights, bias = f["block_weights"][0, design.when_column], f["block_bias"][0, design.when_column]
    t = np.arange(features.shape[1]) * 2.0
    due = (t >= entry["latency_ms"]) & (t < entry["latency_ms"] + design.outcome_ms)
    by_hand = (features @ weights + bias).mean(axis=0)[due].mean()
    assert entry["amplitude_after_own"] == pytest.approx(by_hand, rel=1e-9)
    assert weights.any()
