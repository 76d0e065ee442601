"""Slow: the continual-learning targets of HLOP at a seed and a task count the shipped files do
not use (seed 7, 6 tasks; the files use seed 1 and 10 tasks, the results page seeds 1-3), and
the sequential what/when contexts (seed 2).

Targets: ``analysis.claims.CONTINUAL`` and ``WHATWHEN`` (docs/claims.md), the ones every run's
verdict uses: permuted digits, HLOP BWT >= -3 points while unprotected sequential learning is
<= -15; HLOP ACC >= 80 % and within 2 points of the exact SVD projection; spiking lateral neurons
(100 sub-steps) within 3 points of the rate ones (issue 22); and (older, this file's own) within
5 of joint training; sequential contexts, the first context's omission-trial 'when' amplitude and
peak time change by less than 20 % / 30 ms under HLOP. Targets that this reservoir does not reach
are strict xfails carrying the measured numbers (docs/results-continual.md), so a change that
meets them shows up as an XPASS.

    pytest -m slow tests/test_continual_reproduction.py       (about 25 minutes on 2 cores)
"""
import numpy as np
import pytest

from analysis.claims import CONTINUAL, WHATWHEN
from reservoir.experiment import load_experiment, run_experiment

from .test_experiments import EXPERIMENTS

pytestmark = pytest.mark.slow

SEED, N_TASKS = 7, 6
METHODS = {"hlop": "permuted_digits.toml", "unprotected": "permuted_digits_unprotected.toml",
           "svd": "permuted_digits_svd.toml", "joint": "permuted_digits_joint.toml",
           "spiking": "permuted_digits_spiking.toml"}
SPIKING_GAP_MAX_POINTS = 3.0
"""Issue 22: spiking lateral neurons (at most 100 sub-steps) within this many points of ACC of the rate ones."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    out = {}
    for method, name in METHODS.items():
        config = load_experiment(EXPERIMENTS / name, {"seed": SEED, "task": {"n_tasks": N_TASKS}})
        task = config.task
        config = config.model_copy(update={"duration_ms": task.duration_ms()})
        out[method] = run_experiment(config, tmp_path_factory.mktemp(method), progress=False)
    return out


def test_unprotected_sequential_learning_forgets(digits):
    assert 100 * digits["unprotected"]["bwt"] <= CONTINUAL.unprotected_bwt_max_points


def test_hlop_forgets_far_less_than_unprotected_learning(digits):
    """What holds at this scale: HLOP keeps most of what the unprotected readout loses."""
    assert digits["hlop"]["bwt"] > 0.5 * digits["unprotected"]["bwt"]
    assert digits["hlop"]["acc"] > digits["unprotected"]["acc"] + 0.2


@pytest.mark.xfail(strict=True, reason="HLOP's BWT is -5.6 points here (seed 7, 6 tasks) and -7.4 +- 0.4 at seeds "
                                       "1-3 with 10 tasks; the exact SVD projection -3.6 and -7.1: most of what "
                                       "remains is trial-to-trial variation (docs/results-continual.md)")
def test_hlop_backward_transfer_meets_the_target(digits):
    assert 100 * digits["hlop"]["bwt"] >= CONTINUAL.bwt_min_points


def test_hlop_accuracy_meets_the_target(digits):
    """87.4 % here (seed 7, 6 tasks), 82.2 +- 0.7 % at seeds 1-3 with 10 tasks."""
    assert 100 * digits["hlop"]["acc"] >= CONTINUAL.acc_min_percent


def test_hlop_accuracy_close_to_the_svd_projection(digits):
    """87.4 against 87.6 % here; 82.2 against 80.8 % at seeds 1-3 with 10 tasks."""
    assert 100 * abs(digits["hlop"]["acc"] - digits["svd"]["acc"]) <= CONTINUAL.acc_gap_to_svd_max_points


def test_spiking_lateral_neurons_close_to_the_rate_ones(digits):
    """100 sub-steps from half threshold, two rounds: 85.7 against 87.4 % here."""
    assert digits["spiking"]["acc"] >= digits["hlop"]["acc"] - SPIKING_GAP_MAX_POINTS / 100


def test_hlop_accuracy_within_5_points_of_joint_training(digits):
    """Joint training with the same rule and the same presentations (one pass) is no ceiling
    here: HLOP exceeds it (87.4 against 66.6 %); the ideal ridge readout's joint ceiling is
    about 92 %."""
    assert digits["hlop"]["acc"] >= digits["joint"]["acc"] - 0.05


@pytest.fixture(scope="module")
def contexts(tmp_path_factory):
    out = {}
    for name in ("whatwhen_contexts.toml", "whatwhen_contexts_unprotected.toml"):
        config = load_experiment(EXPERIMENTS / name, {"seed": 2})
        out[name] = run_experiment(config, tmp_path_factory.mktemp(name.split(".")[0]), progress=False)["retention"]
    return out


def test_contexts_peak_time_kept_under_hlop(contexts):
    retention = contexts["whatwhen_contexts.toml"]
    assert {r["cue"] for r in retention} == {"C1", "C2", "C3"}
    for entry in retention:
        assert abs(entry["peak_shift_ms"]) < WHATWHEN.retention_peak_shift_ms, entry


@pytest.mark.xfail(strict=True, reason="under HLOP the first context's omission amplitude drops by 10-25 % at seed 2 "
                                       "(C2: -25 %), 10-35 % over seeds 1-3 (docs/results-continual.md)")
def test_contexts_amplitude_kept_within_20_percent_under_hlop(contexts):
    for entry in contexts["whatwhen_contexts.toml"]:
        assert abs(entry["amplitude_change"]) < WHATWHEN.retention_amplitude_change_max, entry


def test_contexts_protection_changes_the_first_context_less(contexts):
    protected = np.mean([abs(r["amplitude_change"]) for r in contexts["whatwhen_contexts.toml"]])
    unprotected = np.mean([abs(r["amplitude_change"]) for r in contexts["whatwhen_contexts_unprotected.toml"]])
    assert protected < unprotected, (protected, unprotected)
