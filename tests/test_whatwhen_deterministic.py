"""The deterministic what/when regime (slow: ``pytest -m slow``): no noise, trial-start reset,
outcome as teacher only (``experiments/whatwhen_deterministic.toml``). Seed 1 of the runs whose
5-seed numbers are in docs/results-whatwhen.md.

There, a least-squares "when" readout reaches the ideal prediction (claims 1 and 2), the RLS
baseline learns it, keeps the old latency after a switch without a reset and re-adapts with one
(claim 5). The default three-factor rule gets there within 400 trials but overshoots for the
less likely cues without noise: a strict xfail states it.
"""
import json

import numpy as np
import pytest

from analysis.convergence import rule_convergence
from analysis.decodability import when_decodability
from analysis.io import load_run
from analysis.whatwhen import WhatWhenDesign
from reservoir.experiment import load_experiment, run_experiment

from .test_experiments import EXPERIMENTS

pytestmark = pytest.mark.slow

DETERMINISTIC = {"network": {"noise": {"excitatory_std": 0.0, "inhibitory_std": 0.0}},
                 "task": {"outcome_amplitude": 0.0}}


def _run(tmp_path_factory, experiment, name, overrides=None):
    config = load_experiment(EXPERIMENTS / experiment, overrides or {})
    out = tmp_path_factory.mktemp(name)
    run_experiment(config, out, progress=False, overwrite=True)
    run = load_run(out)
    return WhatWhenDesign.from_run(run), run, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def deterministic(tmp_path_factory):
    return _run(tmp_path_factory, "whatwhen_deterministic.toml", "deterministic")


def _switch_run(tmp_path_factory, name, **task):
    overrides = {"network": DETERMINISTIC["network"], "task": {**DETERMINISTIC["task"], **task}}
    return _run(tmp_path_factory, "whatwhen_force.toml", name, overrides)[2]


def _condition(metrics, block, cue):
    return next(e for e in metrics["conditions"] if e["block"] == block and e["cue"] == cue)


def test_ideal_readout_predicts_in_proportion_to_probability(deterministic):
    """The ceiling of claims 1 and 2: on held-out omission trials the ridge readout places
    P(outcome) at each cue's latency."""
    task, run, _ = deterministic
    result = when_decodability(task, run)
    assert result["omission_scaling"]["r"] >= 0.95
    assert 0.8 <= result["omission_scaling"]["slope"] <= 1.2
    assert abs(result["omission_scaling"]["intercept"]) <= 0.1
    for entry in result["cues"]:
        assert 0 <= entry["peak_error_ms"] <= 50  # inside the 50 ms outcome


def test_rls_learns_the_prediction_then_keeps_the_old_latency_without_a_reset(tmp_path_factory):
    """Claims 1, 2 (for the RLS readout) and 5: before the switch the omission-trial output is
    close to P(outcome); after the latency switch it stays at the old latency without a reset
    and re-times within 30 trials with one."""
    plain = _switch_run(tmp_path_factory, "rls")
    reset = _switch_run(tmp_path_factory, "rls_reset", rls_reset_at_switch=True)
    for cue in ("C1", "C2"):
        before = _condition(plain, 0, cue)
        assert abs(before["omission_amplitude"] - before["p_outcome"]) <= 0.25 * before["p_outcome"], before
    switched = next(a for a in plain["adaptation"] if a["cue"] == "C1")
    assert switched["trials_to_timing"] is None, f"RLS without a reset re-timed after {switched['trials_to_timing']} trials"
    assert abs(_condition(plain, 1, "C1")["peak_error_ms"]) > 50  # still at the old latency
    readapted = next(a for a in reset["adaptation"] if a["cue"] == "C1")
    assert readapted["trials_to_timing"] is not None and readapted["trials_to_timing"] <= 30
    assert abs(_condition(reset, 1, "C1")["peak_error_ms"]) <= 30


@pytest.mark.xfail(strict=True, reason="without noise the default rule overshoots for the less likely cues: at "
                   "trial 400 its output is 0.83 / 1.28 / 1.58 of P(outcome) for C1 / C2 / C3 (seed 1; the "
                   "engine's own noise-free run: intercept +0.14); with the default noise it is calibrated "
                   "(docs/results-whatwhen.md)")
def test_three_factor_rule_reaches_the_prediction_within_400_trials(deterministic):
    """The default 'when' rule (centred, variance-normalised, bias, 5 ms lead), offline on the
    run's identical trials with fresh Bernoulli outcomes: within 20 % of P(outcome) for every
    cue at trial 400 (the old plain rule needed about 10^4 trials, docs/results-whatwhen.md)."""
    task, run, _ = deterministic
    rate = next(g for g in run.config["readouts"]["groups"] if g["name"] == "when")["three_factor"]["learning_rate"]
    result = rule_convergence(task, run, [rate], n_trials=400)
    final = result["runs"][0]["history"][-1]
    ratios = [e["amplitude"] / e["p_outcome"] for e in final["cues"]]
    assert np.min(ratios) >= 0.8 and np.max(ratios) <= 1.2, ratios
