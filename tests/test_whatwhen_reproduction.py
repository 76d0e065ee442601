"""The 5-seed reproduction of the what/when claims with the three-factor rule, noise on
(slow: ``pytest -m slow``): the default experiment, its latency and probability switches, and the
RLS baseline on the latency switch.

Targets are ``analysis.claims.WHATWHEN`` (docs/claims.md), the ones every run's verdict uses. A
claim that does not hold is a strict xfail stating the measured numbers, so that a change
that makes it hold is noticed.
"""
import json

import numpy as np
import pytest

from analysis.claims import WHATWHEN
from reservoir.experiment.reproduce import main as reproduce

from .test_experiments import EXPERIMENTS

pytestmark = pytest.mark.slow

SEEDS = ["1", "2", "3", "4", "5"]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    for experiment, label, extra in (("whatwhen.toml", "whatwhen", []),
                                     ("whatwhen_timing_switch.toml", "timing", []),
                                     ("whatwhen_probability_switch.toml", "probability", []),
                                     ("whatwhen_force.toml", "rls_no_reset", [])):
        reproduce([str(EXPERIMENTS / experiment), "--seeds", *SEEDS, "--jobs", "2", "--out", str(out),
                   "--label", label, *extra])
    return json.loads((out / "summary.json").read_text())


def _mean(stats, key):
    return stats[key]["mean"]


def test_default_run_fits_the_time_budget(reproduced):
    assert _mean(reproduced["whatwhen"], "wall_time_s") < 120


def test_claim_2_omission_output_is_proportional_to_the_outcome_probability(reproduced):
    """Omission trials, outcome window: the line through the three cues' outputs (averaged over
    the seeds) against P(outcome), and the per-seed fits on average."""
    s = reproduced["whatwhen"]
    assert _mean(s, "pooled_omission.slope") >= WHATWHEN.omission_slope_min
    assert abs(_mean(s, "pooled_omission.intercept")) <= WHATWHEN.omission_intercept_max
    assert _mean(s, "pooled_omission.r") >= WHATWHEN.omission_r_min
    assert _mean(s, "probability_scaling_omission.slope") >= WHATWHEN.omission_slope_min


def test_claim_1_the_when_output_peaks_at_the_latency_and_rises_before_it(reproduced):
    s = reproduced["whatwhen"]
    for cue in ("C1", "C2", "C3"):
        assert abs(_mean(s, f"when.b0.{cue}.peak_error_ms")) <= WHATWHEN.peak_error_ms, cue
        assert _mean(s, f"when.b0.{cue}.lead_ms") >= WHATWHEN.min_lead_ms, cue  # half-rise no later than the latency


def test_claim_3_what_outputs_track_identity_probability(reproduced):
    assert _mean(reproduced["whatwhen"], "identity.r") >= WHATWHEN.identity_r_min


def test_claim_4_the_rule_re_times_and_re_scales_within_30_trials(reproduced):
    timing = reproduced["timing"]["adaptation.C1.block1.trials_to_timing"]
    probability = reproduced["probability"]["adaptation.C1.block1.trials_to_probability"]
    assert timing["n"] == timing["of"] and max(timing["values"]) <= WHATWHEN.adaptation_trials_max
    assert probability["n"] == probability["of"] and max(probability["values"]) <= WHATWHEN.adaptation_trials_max


def test_claim_5_rls_without_a_reset_is_three_times_slower_or_never_re_times(reproduced):
    rule = np.array(reproduced["timing"]["adaptation.C1.block1.trials_to_timing"]["values"], dtype=float)
    rls = np.array(reproduced["rls_no_reset"]["adaptation.C1.block1.trials_to_timing"]["values"], dtype=float)
    slower = np.isnan(rls) | (rls >= WHATWHEN.rls_slowdown_factor * rule)
    assert (np.isnan(rls) | (rls > WHATWHEN.adaptation_trials_max)).all(), rls  # each seed's verdict, too
    assert slower.all(), (rule, rls)


@pytest.mark.xfail(strict=True, reason="claim 6 does not separate from the null: see docs/results-whatwhen.md")
def test_what_and_when_weights_more_orthogonal_than_the_null(reproduced):
    """Near-orthogonal beyond the null, on both of claim 6's measures: at most 5 % of random
    directions in the top-10 PC space are as close to 90 degrees as the learned pair, and at most
    5 % of permutations of w_what give an output as uncorrelated with the 'when' output (the
    fractions are those shares)."""
    for k in (0, 1):
        assert _mean(reproduced["whatwhen"], f"geometry.pc_null_fraction_as_orthogonal_what{k}") <= WHATWHEN.null_fraction_max
        assert (_mean(reproduced["whatwhen"], f"geometry.functional_null_fraction_as_orthogonal_what{k}")
                <= WHATWHEN.null_fraction_max)
