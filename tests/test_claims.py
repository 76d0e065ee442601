"""The verdict of a run (``analysis.claims``): each claim judged on its measure against the one
set of targets, at and around the thresholds; claims a run cannot judge say why; the docs page
is generated from the same targets; ``reservoir run`` prints the verdict."""
import copy
from pathlib import Path

import pytest

from analysis import claims as claims_module
from analysis.claims import (CONTINUAL, FORCE_SINE, WHATWHEN, cue_bump_claims, force_sine_claims,
                             permuted_digits_claims, targets_markdown, verdict_table, whatwhen_claims)

DOCS = Path(__file__).resolve().parent.parent / "docs"

CONFIG = {"task": {"kind": "whatwhen", "group": "when", "identities": ["A", "B"]},
          "readouts": {"groups": [{"name": "when", "rule": "three_factor"}, {"name": "what", "rule": "three_factor"}]}}


def _condition(cue, block=0, peak_error=10.0, lead=5.0):
    return {"block": block, "cue": cue, "peak_error_ms": peak_error, "lead_ms": lead, "n_trials": 30}


def _whatwhen_metrics():
    """Measures of a run where every judged claim holds, with no switch."""
    return {
        "conditions": [_condition("C1"), _condition("C2"), _condition("C3")],
        "probability_scaling_omission": {"slope": 1.0, "intercept": 0.0, "r": 0.99, "n": 3},
        "identity": {"slope": 0.8, "intercept": 0.05, "r": 0.97, "n": 6},
        "adaptation": [],
        "geometry": {"final_pc_angles_deg": [89.0, 91.0], "final_pc_null_fraction_as_orthogonal": [0.01, 0.02],
                     "functional_correlation": [0.01, -0.02], "functional_null_fraction_as_orthogonal": [0.02, 0.03]},
    }


def _by_claim(verdict):
    return {item["claim"]: item for item in verdict["items"]}


def test_a_run_meeting_every_target_holds_and_unjudged_claims_say_why():
    verdict = _by_claim(whatwhen_claims(_whatwhen_metrics(), CONFIG))
    assert [verdict[c]["holds"] for c in "1236"] == [True] * 4
    for claim in "45":  # no switch in the run
        assert verdict[claim]["holds"] is None and "no switch" in verdict[claim]["note"]
    summary = whatwhen_claims(_whatwhen_metrics(), CONFIG)["summary"]
    assert summary == "4 of 4 judged claims hold; 2 not judged in this run"


@pytest.mark.parametrize("field, value, holds", [
    ("peak_error_ms", WHATWHEN.peak_error_ms, True), ("peak_error_ms", WHATWHEN.peak_error_ms + 0.5, False),
    ("peak_error_ms", -WHATWHEN.peak_error_ms - 0.5, False), ("lead_ms", 0.0, True), ("lead_ms", -1.0, False),
])
def test_claim_1_timing_thresholds(field, value, holds):
    metrics = _whatwhen_metrics()
    metrics["conditions"][1][field] = value
    assert _by_claim(whatwhen_claims(metrics, CONFIG))["1"]["holds"] is holds


@pytest.mark.parametrize("fit, holds", [
    ({"slope": WHATWHEN.omission_slope_min, "intercept": 0.1, "r": 0.95, "n": 3}, True),
    ({"slope": 0.79, "intercept": 0.0, "r": 0.99, "n": 3}, False),
    ({"slope": 1.0, "intercept": -0.11, "r": 0.99, "n": 3}, False),
    ({"slope": 1.0, "intercept": 0.0, "r": 0.94, "n": 3}, False),
    ({"slope": 1.0, "intercept": 0.0, "r": 1.0, "n": 2}, None),  # two points: |r| = 1 by construction
    ({}, None),
])
def test_claim_2_is_judged_on_the_omission_fit(fit, holds):
    metrics = _whatwhen_metrics()
    metrics["probability_scaling_omission"] = fit
    metrics["probability_scaling"] = {"slope": 5.0, "intercept": 0.0, "r": 1.0, "n": 3}  # not the claim's measure
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["2"]
    assert item["holds"] is holds
    assert (item["note"] != "") == (holds is None)


def test_claim_3_needs_what_readouts():
    metrics = _whatwhen_metrics()
    metrics["identity"]["r"] = 0.89
    assert _by_claim(whatwhen_claims(metrics, CONFIG))["3"]["holds"] is False
    del metrics["identity"]
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["3"]
    assert item["holds"] is None and "no 'what' readouts" in item["note"]


def _switch(kind, trials_to_timing, trials_to_probability):
    entry = {"block": 1, "cue": "C1", "latency_ms": 250.0, "previous_latency_ms": 250.0, "p_outcome": 0.9,
             "previous_p_outcome": 0.9, "trials_to_timing": trials_to_timing,
             "trials_to_probability": trials_to_probability}
    if kind == "latency":
        entry["latency_ms"] = 400.0
    else:
        entry["p_outcome"] = 0.2
    return entry


@pytest.mark.parametrize("kind, timing, probability, holds", [
    ("latency", 7, None, True),  # re-timed; the probability measure is not this switch's
    ("latency", WHATWHEN.adaptation_trials_max + 1, 5, False),
    ("latency", None, 5, False),
    ("probability", None, 12, True),  # re-scaled; timing is not this switch's measure
    ("probability", 5, None, False),
])
def test_claim_4_judges_the_measure_of_the_switch(kind, timing, probability, holds):
    metrics = _whatwhen_metrics()
    metrics["adaptation"] = [_switch(kind, timing, probability)]
    verdict = _by_claim(whatwhen_claims(metrics, CONFIG))
    assert verdict["4"]["holds"] is holds
    assert verdict["5"]["holds"] is None and "RLS run" in verdict["5"]["note"]


@pytest.mark.parametrize("reset, timing, holds", [
    (False, None, True), (False, 92, True), (False, 6, False), (True, 5, True), (True, None, False),
])
def test_claim_5_on_an_rls_run(reset, timing, holds):
    config = copy.deepcopy(CONFIG)
    config["readouts"]["groups"][0]["rule"] = "rls"
    config["task"]["rls_reset_at_switch"] = reset
    metrics = _whatwhen_metrics()
    metrics["adaptation"] = [_switch("latency", timing, None)]
    verdict = whatwhen_claims(metrics, config)
    assert verdict["rule"] == "rls"
    items = _by_claim(verdict)
    assert items["5"]["holds"] is holds
    assert items["4"]["holds"] is None and "RLS" in items["4"]["note"]


def test_claim_6_against_its_null():
    metrics = _whatwhen_metrics()
    metrics["geometry"]["final_pc_null_fraction_as_orthogonal"] = [0.01, WHATWHEN.null_fraction_max + 0.01]
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["6"]
    assert item["holds"] is False and "what B" in item["shown"]
    metrics["geometry"] = {}
    assert _by_claim(whatwhen_claims(metrics, CONFIG))["6"]["holds"] is None


@pytest.mark.parametrize("fractions, holds", [
    ([0.0, WHATWHEN.null_fraction_max], True), ([0.01, WHATWHEN.null_fraction_max + 0.001], False),
    ([float("nan"), 0.01], False),
])
def test_claim_6_needs_the_functional_overlap_orthogonal_beyond_its_null_too(fractions, holds):
    metrics = _whatwhen_metrics()
    metrics["geometry"]["functional_null_fraction_as_orthogonal"] = fractions
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["6"]
    assert item["holds"] is holds
    assert item["value"]["functional_null_fraction"] == fractions and item["value"]["null_fraction"] == [0.01, 0.02]
    assert "what A: PC angle 89 deg, null fraction 0.01, output correlation +0.01" in item["shown"]


def test_claim_6_is_not_judged_on_one_measure_alone():
    metrics = _whatwhen_metrics()
    for key in ("functional_correlation", "functional_null_fraction_as_orthogonal"):
        del metrics["geometry"][key]
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["6"]
    assert item["holds"] is None and "no functional overlap" in item["note"] and "PC angle 89" in item["shown"]
    metrics = _whatwhen_metrics()
    del metrics["geometry"]["final_pc_null_fraction_as_orthogonal"]
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["6"]
    assert item["holds"] is None and "no feature PCs" in item["note"] and "output correlation -0.02" in item["shown"]


def test_retention_claim_of_sequential_contexts():
    metrics = _whatwhen_metrics()
    metrics["retention"] = [{"cue": "C1", "amplitude_change": -0.1, "peak_shift_ms": 5.0},
                            {"cue": "C2", "amplitude_change": -0.25, "peak_shift_ms": 0.0}]
    item = _by_claim(whatwhen_claims(metrics, CONFIG))["retention"]
    assert item["holds"] is False and "-25%" in item["shown"]
    assert "retention" not in _by_claim(whatwhen_claims(_whatwhen_metrics(), CONFIG))


@pytest.mark.parametrize("method, schedule, acc, bwt, expected", [
    ("hlop", "sequential", 0.81, -0.02, {"ACC": True, "BWT": True}),
    ("hlop", "sequential", 0.705, -0.156, {"ACC": False, "BWT": False}),
    ("svd", "sequential", 0.85, -0.03, {"ACC": True, "BWT": True}),
    ("none", "sequential", 0.2, -0.73, {"ACC": None, "BWT": True}),
    ("none", "sequential", 0.9, -0.01, {"ACC": None, "BWT": False}),  # an unprotected run that does not forget
    ("none", "joint", 0.52, None, {"ACC": None, "BWT": None}),
])
def test_permuted_digits_acc_and_bwt_by_method(method, schedule, acc, bwt, expected):
    config = {"readouts": {"protection": {"method": method}}, "task": {"schedule": schedule}}
    verdict = permuted_digits_claims({"acc": acc, "bwt": bwt, "schedule": schedule}, config)
    assert {i["claim"]: i["holds"] for i in verdict["items"]} == expected
    assert verdict["method"] in ("HLOP", "SVD projection", "unprotected", "joint training")
    assert f"{100 * acc:.1f} %" in verdict["items"][0]["shown"]


def test_permuted_digits_targets_are_the_continual_ones():
    config = {"readouts": {"protection": {"method": "hlop"}}, "task": {"schedule": "sequential"}}
    at = permuted_digits_claims({"acc": CONTINUAL.acc_min_percent / 100, "bwt": CONTINUAL.bwt_min_points / 100,
                                 "schedule": "sequential"}, config)
    assert [i["holds"] for i in at["items"]] == [True, True]


@pytest.mark.parametrize("frequency, amplitude, rms, expected", [
    (4.95, 0.95, 0.01, [True, True, True]),
    (5.0 * (1 + FORCE_SINE.frequency_error_max) + 0.01, 0.95, 0.01, [False, True, True]),
    (4.95, 0.79, 0.06, [True, False, False]),
    (float("nan"), float("nan"), 0.01, [None, None, True]),  # no oscillation after training
])
def test_force_sine_frequency_and_amplitude_errors(frequency, amplitude, rms, expected):
    verdict = force_sine_claims({"frequency_after_training_hz": frequency, "amplitude_after_training": amplitude,
                                 "target_frequency_hz": 5.0, "target_amplitude": 1.0,
                                 "rms_error_last_second_of_training": rms})
    assert [i["holds"] for i in verdict["items"]] == expected


def test_cue_bump_claims():
    good = {"peak_error_ms": 5.0, "anticipatory_lead_ms": 20.0, "correlation_with_target_last_trials": 0.8}
    assert [i["holds"] for i in cue_bump_claims(good)["items"]] == [True, True]
    late = {**good, "peak_error_ms": 16.0, "correlation_with_target_last_trials": 0.4}
    assert [i["holds"] for i in cue_bump_claims(late)["items"]] == [False, False]


def test_the_printed_table_names_every_claim_and_its_target():
    verdict = whatwhen_claims(_whatwhen_metrics(), CONFIG)
    text = verdict_table(verdict, width=100)
    lines = text.splitlines()
    assert lines[0].startswith("claims (whatwhen, 'when' rule three_factor): 4 of 4 judged claims hold")
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    for label in ("1 timing", "2 probability", "3 identity", "4 adaptation", "5 RLS baseline", "6 geometry"):
        assert any(line.strip().startswith(label) for line in lines), label
    assert "not judged: no switch" in " ".join(text.split())


def test_docs_claims_page_is_generated_from_the_targets():
    assert (DOCS / "claims.md").read_text() == targets_markdown(), (
        "docs/claims.md is out of date: python -m analysis.claims --markdown > docs/claims.md")
    for text in claims_module.WHATWHEN_TEXT.values():
        assert text.replace("|", "\\|") in targets_markdown()


def test_reservoir_run_writes_and_prints_the_verdict(tmp_path, capsys):
    import json
    import tomllib

    from reservoir.experiment.cli import main

    out = tmp_path / "tiny"
    assert main(["run", "--set", "network.n_neurons=100", "--set", 'task.blocks=[{name="b", n_trials=6}]',
                 "--set", "duration_ms=7200", "--set", "readouts.snapshot_every_ms=1200", "--set", "task.test_trials=2",
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    config = tomllib.loads((out / "config.resolved.toml").read_text())
    assert metrics["claims"] == whatwhen_claims({k: v for k, v in metrics.items() if k != "claims"}, config)
    title = verdict_table(metrics["claims"]).splitlines()[0]
    assert title in printed and printed.index("wrote ") < printed.index(title)  # the verdict comes last
    rows = [line.split()[0:2] for line in printed[printed.index(title):].splitlines()[2:] if line[:3].strip()]
    assert rows == [["1", "timing"], ["2", "probability"], ["3", "identity"], ["4", "adaptation"], ["5", "RLS"],
                    ["6", "geometry"]]
