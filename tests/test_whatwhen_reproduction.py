"""The 5-seed reproduction of the default what/when experiment (slow: ``pytest -m slow``).

Claims that hold under the defaults are asserted; claims that do not are strict xfails that
state the measured numbers, so that a change that makes them hold is noticed (the xfail then
fails) and the results page gets updated. Numbers: docs/results-whatwhen.md.
"""
import pytest

from reservoir.experiment.reproduce import main as reproduce

from .test_experiments import EXPERIMENTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    reproduce([str(EXPERIMENTS / "whatwhen.toml"), "--seeds", "1", "2", "3", "4", "5", "--jobs", "2",
               "--out", str(out)])
    import json

    return json.loads((out / "summary.json").read_text())["whatwhen"]


def test_default_run_fits_the_time_budget(summary):
    assert summary["wall_time_s"]["mean"] < 120


def test_what_outputs_track_identity_probability(summary):
    """Claim 3: pre-stimulus 'what' outputs vs P(identity | cue), pooled over cues and identities."""
    assert summary["identity.r"]["mean"] >= 0.8
    assert summary["identity.slope"]["mean"] > 0.3


def test_when_output_peaks_within_30_ms_after_the_latency(summary):
    """For the two cues whose outcome is likely (p >= 0.6). This is the readout's in-trial
    response to its target, not evidence for claim 1 (which the xfail below covers)."""
    for cue in ("C1", "C2"):
        assert abs(summary[f"when.b0.{cue}.peak_error_ms"]["mean"]) <= 30


@pytest.mark.xfail(strict=True, reason="claims 1-2 (anticipation, probability scaling) do not reproduce under "
                   "the defaults: on omission trials the 'when' output in the outcome window is about 0.01 "
                   "for p = 0.3-0.9 (docs/results-whatwhen.md)")
def test_when_prediction_scales_with_probability(summary):
    assert summary["probability_scaling_omission.slope"]["mean"] >= 0.5
    assert summary["probability_scaling_omission.r"]["mean"] >= 0.95


@pytest.mark.xfail(strict=True, reason="claim 6 does not separate from the null under the defaults: the final "
                   "angles lie inside the random-direction null in raw and PC space (docs/results-whatwhen.md)")
def test_what_and_when_weights_more_orthogonal_than_the_null(summary):
    for k in (0, 1):
        assert summary[f"geometry.pc_null_fraction_as_orthogonal_what{k}"]["mean"] >= 0.95
