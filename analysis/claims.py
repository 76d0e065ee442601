"""What a run showed: each paradigm's claims, the measure each is judged on, its target, and
whether it holds in the run (the ``claims`` section of ``metrics.json``).

The targets live here and nowhere else: the paradigms write the verdict into ``metrics.json``,
``reservoir run`` prints it, ``reservoir report`` leads with it, the slow reproductions assert
it over seeds, and ``docs/claims.md`` is generated from this module
(``python -m analysis.claims --markdown > docs/claims.md``; a test keeps the page in step).

A verdict is one record per claim::

    {"claim": "2", "name": "probability", "statement": ..., "measure": ..., "value": ...,
     "shown": "slope 1.07, intercept -0.05, r 0.98 (3 points)", "target": ..., "holds": true,
     "note": ""}

``holds`` is ``true`` or ``false`` where the run can judge the claim, and ``null`` where it
cannot (the claim needs a switch the run has not, another rule, more points), with ``note``
saying why. A single run is one seed: the paper-level statement over seeds is the slow
reproduction's (``tests/test_whatwhen_reproduction.py``), with the same targets.

>>> verdict = force_sine_claims({"frequency_after_training_hz": 4.95, "amplitude_after_training": 0.93,
...                              "target_frequency_hz": 5.0, "target_amplitude": 1.0,
...                              "rms_error_last_second_of_training": 0.01})
>>> [(item["name"], item["holds"]) for item in verdict["items"]]
[('frequency', True), ('amplitude', True), ('tracking', True)]

Length: every paradigm's targets and judges in one place, so the docs page, the CLI verdict
and the slow tests read one source; the judges per paradigm could move to one module each if
it grows further.
"""
from __future__ import annotations

import argparse
import math
import sys
import textwrap
from dataclasses import dataclass

__all__ = ["WHATWHEN", "CONTINUAL", "FORCE_SINE", "CUE_BUMP", "whatwhen_claims", "permuted_digits_claims",
           "force_sine_claims", "cue_bump_claims", "verdict_table", "targets_markdown"]


@dataclass(frozen=True)
class WhatWhenTargets:
    """Targets of the what/when claims (Yamada & Chao 2025; the numbers are this project's
    reading of the abstract's words, docs/claims.md)."""

    peak_error_ms: float = 30.0
    """Claim 1: the trial-averaged 'when' output peaks within this many ms of the latency."""
    min_lead_ms: float = 0.0
    """Claim 1: its half-rise comes at least this long before the latency (0: no later than it)."""
    omission_slope_min: float = 0.8
    """Claim 2: omission-trial output in the outcome window against P(outcome): slope at least this."""
    omission_intercept_max: float = 0.1
    """Claim 2: |intercept| at most this."""
    omission_r_min: float = 0.95
    """Claim 2: Pearson r at least this (judged from 3 points on: with 2, |r| is 1 by construction)."""
    identity_r_min: float = 0.9
    """Claim 3: pre-outcome 'what' outputs against P(identity | cue): Pearson r at least this."""
    adaptation_trials_max: int = 30
    """Claim 4: trials of the changed cue until the rule re-times (latency switch) or re-scales
    (probability switch); claim 5: an RLS readout without a reset does not within this many."""
    rls_slowdown_factor: float = 3.0
    """Claim 5 over seeds (the reproduction): RLS without a reset re-times at least this many
    times later than the rule, or never."""
    null_fraction_max: float = 0.05
    """Claim 6, both of its measures, for every 'what' unit: the share of random directions in the
    top-10 feature-PC space at least as close to 90 degrees as the learned w_when, w_what pair (0:
    more orthogonal than any random pair), and the share of permutations of w_what whose output is
    at most as correlated with the 'when' output as the learned w_what's is (the functional
    overlap, :func:`analysis.geometry.functional_overlap`)."""
    retention_amplitude_change_max: float = 0.2
    """Sequential contexts: the first context's omission amplitude changes by less than this
    fraction after the next context is learned."""
    retention_peak_shift_ms: float = 30.0
    """Sequential contexts: and its peak time by less than this."""


@dataclass(frozen=True)
class ContinualTargets:
    """Targets of continual learning on permuted digits (the HLOP issue; docs/results-continual.md)."""

    bwt_min_points: float = -3.0
    """A protected readout (HLOP, SVD) forgets at most this much: BWT >= -3 points."""
    acc_min_percent: float = 80.0
    """A protected readout's average accuracy over the tasks after the last: at least this."""
    acc_gap_to_svd_max_points: float = 2.0
    """HLOP's ACC within this many points of the exact SVD projection's (across runs)."""
    unprotected_bwt_max_points: float = -15.0
    """The unprotected reference does forget: BWT <= -15 points (else the benchmark is too easy)."""


@dataclass(frozen=True)
class ForceSineTargets:
    """Targets of the FORCE sine (Nicola & Clopath 2017, Fig. 2; the reference transcription
    gives 4.94-4.98 Hz at amplitude about 0.95 after training)."""

    frequency_error_max: float = 0.03
    """|f - f_target| / f_target after training, at most this."""
    amplitude_error_max: float = 0.2
    """|A - A_target| / A_target after training, at most this."""
    training_rms_max: float = 0.05
    """RMS error of the readout in the last second of training, at most this."""


@dataclass(frozen=True)
class CueBumpTargets:
    """Targets of the three-factor cue bump (a timed bump learned from a cue alone)."""

    peak_error_ms: float = 15.0
    """|peak - latency| of the last trials' mean output, at most this."""
    correlation_min: float = 0.5
    """Correlation of the last trials' mean output with the target bump, at least this."""


WHATWHEN = WhatWhenTargets()
CONTINUAL = ContinualTargets()
FORCE_SINE = ForceSineTargets()
CUE_BUMP = CueBumpTargets()

#: How each claim's target reads (docs, printed table, report); the numbers come from the targets above.
WHATWHEN_TEXT = {
    "1": f"|peak - L| <= {WHATWHEN.peak_error_ms:g} ms and half-rise no later than L, every cue",
    "2": (f"slope >= {WHATWHEN.omission_slope_min:g}, |intercept| <= {WHATWHEN.omission_intercept_max:g}, "
          f"r >= {WHATWHEN.omission_r_min:g}"),
    "3": f"r >= {WHATWHEN.identity_r_min:g}",
    "4": f"<= {WHATWHEN.adaptation_trials_max} trials of the changed cue",
    "5": (f"no reset: not re-timed within {WHATWHEN.adaptation_trials_max} trials; reset: re-timed within "
          f"{WHATWHEN.adaptation_trials_max}"),
    "6": f"both null fractions <= {WHATWHEN.null_fraction_max:g} for every 'what' unit",
    "retention": (f"|amplitude change| < {WHATWHEN.retention_amplitude_change_max:.0%} and "
                  f"|peak shift| < {WHATWHEN.retention_peak_shift_ms:g} ms, every cue of the first context"),
}

WHATWHEN_STATEMENTS = {
    "1": "the 'when' readout rises before the outcome and peaks at the learned latency",
    "2": "its amplitude scales in proportion to the probability that the outcome occurs",
    "3": "the 'what' readouts encode which outcome is expected, in proportion to its probability",
    "4": "after a change of latency or probability the rule re-adapts within a few tens of trials, with no reset",
    "5": "a least-squares (RLS) readout adapts slowly or not at all after the same change unless reset",
    "6": ("the 'what' and 'when' readouts become near-orthogonal beyond chance, in their weights and in their "
          "outputs over the activity"),
    "retention": "learning the next context keeps the first context's 'when' prediction (HLOP)",
}

WHATWHEN_MEASURES = {
    "1": "peak time - L and half-rise of the 'when' output, mean of each cue's last test_trials trials (ms)",
    "2": "omission-trial 'when' output in the outcome window [L, L + outcome_ms) against P(outcome): line fit",
    "3": "'what' output between the cue and L against P(identity | cue): line fit",
    "4": "trials after the switch until the 5-trial average peaks within 50 ms of the new L (latency) or its "
         "outcome-window output is within 20 % of the new P (probability)",
    "5": "trials after the switch until the RLS 'when' output re-times (as claim 4)",
    "6": ("final w_when vs w_what: their angle in the top-10 feature-PC space (null fraction: share of random "
          "directions as close to 90 deg) and the correlation of their outputs over the attended-window activity, "
          "the angle in the covariance metric (null fraction: share of permuted w_what as uncorrelated)"),
    "retention": "first context's 'when' omission amplitude and peak time, after its own block and after the last",
}


def _item(claim: str, name: str, statement: str, measure: str, target: str, value=None, shown: str = "",
          holds: bool | None = None, note: str = "") -> dict:
    return {"claim": claim, "name": name, "statement": statement, "measure": measure, "value": value,
            "shown": shown, "target": target, "holds": holds, "note": note}


def _whatwhen_item(claim: str, name: str, **kwargs) -> dict:
    return _item(claim, name, WHATWHEN_STATEMENTS[claim], WHATWHEN_MEASURES[claim], WHATWHEN_TEXT[claim], **kwargs)


def _fmt(value, spec: str = ".3g", none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def _finite(value):
    """``value`` as a float, or None where it is missing or not finite (NaN: nothing measured)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a bare ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def _summary(paradigm: str, items: list[dict], **extra) -> dict:
    judged = [i for i in items if i["holds"] is not None]
    held = sum(1 for i in judged if i["holds"])
    text = f"{held} of {len(judged)} judged claims hold"
    if len(judged) < len(items):
        text += f"; {len(items) - len(judged)} not judged in this run"
    return {"paradigm": paradigm, **extra, "summary": text, "items": items}


# ------------------------------------------------------------------------------- what/when

def _when_rule(config: dict) -> str:
    """The rule of the run's 'when' group (``three_factor`` or ``rls``), from its configuration."""
    task = config.get("task", {})
    for group in config.get("readouts", {}).get("groups", []):
        if group.get("name") == task.get("group"):
            return str(group.get("rule", "three_factor"))
    return "three_factor"


def _timing_claim(metrics: dict) -> dict:
    conditions = [e for e in metrics.get("conditions", []) if e.get("n_trials")]
    if not conditions:
        return _whatwhen_item("1", "timing", note="no condition has test trials")
    errors = {f"b{e['block']}.{e['cue']}": e["peak_error_ms"] for e in conditions}
    leads = {f"b{e['block']}.{e['cue']}": e["lead_ms"] for e in conditions}
    holds = all(abs(e["peak_error_ms"]) <= WHATWHEN.peak_error_ms and e["lead_ms"] >= WHATWHEN.min_lead_ms
                for e in conditions)
    several_blocks = len({e["block"] for e in conditions}) > 1
    names = ", ".join(f"b{e['block']} {e['cue']}" if several_blocks else e["cue"] for e in conditions)
    shown = (f"peak - L ({names}): " + ", ".join(f"{e['peak_error_ms']:+.0f}" for e in conditions)
             + " ms; half-rise before L: " + ", ".join(f"{e['lead_ms']:+.0f}" for e in conditions) + " ms")
    return _whatwhen_item("1", "timing", value={"peak_error_ms": errors, "lead_ms": leads}, shown=shown, holds=holds)


def _probability_claim(metrics: dict) -> dict:
    fit = metrics.get("probability_scaling_omission") or {}
    n = fit.get("n", 0)
    if fit.get("slope") is None:
        return _whatwhen_item("2", "probability", value=fit or None,
                              note=f"needs omissions at 3 different P(outcome); {n} here")
    shown = (f"slope {_fmt(fit['slope'], '.2f')}, intercept {_fmt(fit['intercept'], '+.2f')}, "
             f"r {_fmt(fit['r'], '.3f')} ({n} points)")
    if n < 3:
        return _whatwhen_item("2", "probability", value=fit, shown=shown,
                              note="2 points (|r| = 1 by construction); needs 3")
    holds = (fit["slope"] >= WHATWHEN.omission_slope_min and abs(fit["intercept"]) <= WHATWHEN.omission_intercept_max
             and fit["r"] is not None and fit["r"] >= WHATWHEN.omission_r_min)
    return _whatwhen_item("2", "probability", value=fit, shown=shown, holds=holds)


def _identity_claim(metrics: dict) -> dict:
    fit = metrics.get("identity")
    if not fit:
        return _whatwhen_item("3", "identity", note="no 'what' readouts in this run (task.what_group)")
    shown = f"r {_fmt(fit.get('r'), '.3f')}, slope {_fmt(fit.get('slope'), '.2f')} ({fit.get('n', 0)} points)"
    if fit.get("r") is None or fit.get("n", 0) < 3:
        return _whatwhen_item("3", "identity", value=fit, shown=shown,
                              note="r undefined (under 3 points, or one P(identity | cue))")
    return _whatwhen_item("3", "identity", value=fit, shown=shown, holds=fit["r"] >= WHATWHEN.identity_r_min)


def _switch_kind(entry: dict) -> list[str]:
    """What a block's change did to a cue: ``latency``, ``probability`` or both."""
    kinds = []
    if entry.get("previous_latency_ms") is not None and entry["latency_ms"] != entry["previous_latency_ms"]:
        kinds.append("latency")
    if entry.get("previous_p_outcome") is not None and entry["p_outcome"] != entry["previous_p_outcome"]:
        kinds.append("probability")
    return kinds


_SWITCH_MEASURE = {"latency": "trials_to_timing", "probability": "trials_to_probability"}


def _adaptation_claims(metrics: dict, rule: str, reset_at_switch: bool) -> tuple[dict, dict]:
    switches = [(entry, kind) for entry in metrics.get("adaptation", []) for kind in _switch_kind(entry)]
    if not switches:
        return (_whatwhen_item("4", "adaptation", note="no switch in this run (see whatwhen_timing_switch.toml)"),
                _whatwhen_item("5", "RLS baseline", note="no switch in this run (see whatwhen_force.toml)"))
    values = {f"b{e['block']}.{e['cue']}.{kind}": e[_SWITCH_MEASURE[kind]] for e, kind in switches}
    shown = "; ".join(f"{e['cue']} {kind} switch: " + (f"{e[_SWITCH_MEASURE[kind]]} trials"
                                                       if e[_SWITCH_MEASURE[kind]] is not None else "never")
                      for e, kind in switches)
    within = [e[_SWITCH_MEASURE[kind]] is not None and e[_SWITCH_MEASURE[kind]] <= WHATWHEN.adaptation_trials_max
              for e, kind in switches]
    if rule != "rls":
        return (_whatwhen_item("4", "adaptation", value=values, shown=shown, holds=all(within)),
                _whatwhen_item("5", "RLS baseline", note="judged on an RLS run of the switch (whatwhen_force.toml)"))
    timing = [(e, ok) for (e, kind), ok in zip(switches, within) if kind == "latency"]
    claim4 = _whatwhen_item("4", "adaptation", note="the rule's claim; this run's 'when' readout is RLS (claim 5)")
    if not timing:
        return claim4, _whatwhen_item("5", "RLS baseline", value=values, shown=shown,
                                      note="judged on a latency switch; this run's is a probability switch")
    if reset_at_switch:
        holds = all(ok for _, ok in timing)
        shown += " (P reset at the switch)"
    else:
        holds = not any(ok for _, ok in timing)
        shown += " (no reset)"
    return claim4, _whatwhen_item("5", "RLS baseline", value=values, shown=shown, holds=holds)


def _geometry_claim(metrics: dict, identities: list[str]) -> dict:
    """Claim 6 on both measures: the PC-space angle and the functional overlap (the correlation
    of the readouts' outputs); it holds where both are orthogonal beyond their nulls for every
    'what' unit, and is not judged where either is missing."""
    geometry = metrics.get("geometry") or {}
    fractions = geometry.get("final_pc_null_fraction_as_orthogonal") or []
    functional = geometry.get("functional_null_fraction_as_orthogonal") or []
    if not geometry:
        return _whatwhen_item("6", "geometry", note="no 'what' readouts or no weight snapshots in this run")
    angles = geometry.get("final_pc_angles_deg", [])
    correlations = geometry.get("functional_correlation", [])
    names = [identities[k] if k < len(identities) else str(k) for k in range(max(len(fractions), len(functional)))]
    parts = []
    for k, name in enumerate(names):
        pieces = []
        if k < len(fractions):
            pieces.append(f"PC angle {_fmt(_finite(angles[k]) if k < len(angles) else None, '.0f')} deg, "
                          f"null fraction {_fmt(_finite(fractions[k]), '.2f')}")
        if k < len(functional):
            r = _finite(correlations[k]) if k < len(correlations) else None
            pieces.append(f"output correlation {_fmt(r, '+.2f')}, null fraction {_fmt(_finite(functional[k]), '.2f')}")
        parts.append(f"what {name}: " + ", ".join(pieces))
    value = {"final_pc_angles_deg": angles, "null_fraction": fractions,
             "functional_correlation": correlations, "functional_null_fraction": functional}
    missing = [why for have, why in ((fractions, "no feature PCs (they need exponential trace filters)"),
                                     (functional, "no functional overlap (no first-block trials to sample)"))
               if not have]
    if missing:
        return _whatwhen_item("6", "geometry", value=value if fractions or functional else None,
                              shown="; ".join(parts), note="; ".join(missing))
    within = [f is not None and f <= WHATWHEN.null_fraction_max for f in map(_finite, [*fractions, *functional])]
    return _whatwhen_item("6", "geometry", value=value, shown="; ".join(parts), holds=all(within))


def _retention_claim(metrics: dict) -> dict | None:
    retention = metrics.get("retention")
    if retention is None:
        return None
    if not retention:
        return _whatwhen_item("retention", "retention", note="no cue of the first context was measured")
    shown = "; ".join(f"{r['cue']} amplitude {r['amplitude_change']:+.0%}, peak {r['peak_shift_ms']:+.0f} ms"
                      for r in retention)
    holds = all(abs(r["amplitude_change"]) < WHATWHEN.retention_amplitude_change_max
                and abs(r["peak_shift_ms"]) < WHATWHEN.retention_peak_shift_ms for r in retention)
    value = [{"cue": r["cue"], "amplitude_change": r["amplitude_change"], "peak_shift_ms": r["peak_shift_ms"]}
             for r in retention]
    return _whatwhen_item("retention", "retention", value=value, shown=shown, holds=holds)


def whatwhen_claims(metrics: dict, config: dict) -> dict:
    """Claims 1-6 of the what/when paradigm judged on one run's measures
    (:func:`analysis.whatwhen.whatwhen_metrics`, plus ``retention`` for sequential contexts) and
    its resolved configuration (which rule the 'when' readout uses, whether RLS is reset)."""
    rule = _when_rule(config)
    reset = bool(config.get("task", {}).get("rls_reset_at_switch", False))
    claim4, claim5 = _adaptation_claims(metrics, rule, reset)
    items = [_timing_claim(metrics), _probability_claim(metrics), _identity_claim(metrics), claim4, claim5,
             _geometry_claim(metrics, list(config.get("task", {}).get("identities", [])))]
    retention = _retention_claim(metrics)
    if retention is not None:
        items.append(retention)
    return _summary("whatwhen", items, rule=rule)


# ------------------------------------------------------------------------------- permuted digits

def permuted_digits_claims(metrics: dict, config: dict) -> dict:
    """ACC and BWT of a permuted-digits run against the continual targets, by method: a
    protected sequential run (HLOP, SVD) must keep what it learned; the unprotected one is the
    reference that must forget; joint training has no BWT."""
    method = str(config.get("readouts", {}).get("protection", {}).get("method", "none"))
    schedule = metrics.get("schedule", config.get("task", {}).get("schedule", "sequential"))
    acc, bwt = _finite(metrics.get("acc")), _finite(metrics.get("bwt"))
    acc_points = None if acc is None else 100.0 * acc
    bwt_points = None if bwt is None else 100.0 * bwt
    label = "joint training" if schedule == "joint" else {"none": "unprotected", "hlop": "HLOP", "svd": "SVD projection"}.get(method, method)
    lateral = config.get("readouts", {}).get("protection", {}).get("lateral", {})
    if method == "hlop" and lateral.get("kind"):
        label += f" ({lateral['kind']} lateral neurons)"
    measure_acc = "mean accuracy over the tasks after the last task (test images, %)"
    measure_bwt = "mean change of each earlier task's accuracy from just after it was learned to the end (points)"
    acc_shown = f"{_fmt(acc_points, '.1f')} %"
    bwt_shown = f"{_fmt(bwt_points, '+.1f')} points"
    if schedule == "joint":
        items = [_item("ACC", "accuracy", "joint training: the one-pass rule's reference on all tasks at once",
                       measure_acc, "reference (no target)", acc_points, acc_shown,
                       note="joint training is a reference for the sequential methods, not judged"),
                 _item("BWT", "forgetting", "no task order, so no backward transfer", measure_bwt, "n/a",
                       note="joint schedule: no backward transfer")]
    elif method == "none":
        items = [_item("ACC", "accuracy", "unprotected sequential learning: the lower reference", measure_acc,
                       "reference (no target)", acc_points, acc_shown, note="the unprotected run is a reference"),
                 _item("BWT", "forgetting", "without protection, learning later tasks overwrites earlier ones",
                       measure_bwt, f"BWT <= {CONTINUAL.unprotected_bwt_max_points:g} points", bwt_points, bwt_shown,
                       holds=None if bwt_points is None else bwt_points <= CONTINUAL.unprotected_bwt_max_points)]
    else:
        items = [_item("ACC", "accuracy", f"{label}: the readout learns every task well", measure_acc,
                       f"ACC >= {CONTINUAL.acc_min_percent:g} %", acc_points, acc_shown,
                       holds=None if acc_points is None else acc_points >= CONTINUAL.acc_min_percent),
                 _item("BWT", "forgetting", f"{label}: learning later tasks keeps the earlier ones", measure_bwt,
                       f"BWT >= {CONTINUAL.bwt_min_points:g} points", bwt_points, bwt_shown,
                       holds=None if bwt_points is None else bwt_points >= CONTINUAL.bwt_min_points)]
    return _summary("permuted_digits", items, method=label)


# ------------------------------------------------------------------------------- FORCE sine, cue bump

def force_sine_claims(metrics: dict) -> dict:
    """Frequency, amplitude and tracking error of the FORCE sine after training (Nicola & Clopath 2017)."""
    f, f_target = _finite(metrics.get("frequency_after_training_hz")), metrics.get("target_frequency_hz")
    a, a_target = _finite(metrics.get("amplitude_after_training")), metrics.get("target_amplitude")
    rms = _finite(metrics.get("rms_error_last_second_of_training"))
    f_error = None if f is None or not f_target else (f - f_target) / f_target
    a_error = None if a is None or not a_target else (a - a_target) / a_target
    items = [
        _item("frequency", "frequency", "after training, the network alone oscillates at the target frequency",
              "dominant frequency of the readout after training, relative error", f"|error| <= {FORCE_SINE.frequency_error_max:.0%}",
              f_error, f"{_fmt(f, '.3g')} Hz against {_fmt(f_target, 'g')} Hz ({_fmt(f_error, '+.1%')})",
              None if f_error is None else abs(f_error) <= FORCE_SINE.frequency_error_max,
              "" if f_error is not None else "no oscillation after training"),
        _item("amplitude", "amplitude", "... at the target amplitude",
              "peak-to-peak amplitude / 2 of the readout after training, relative error",
              f"|error| <= {FORCE_SINE.amplitude_error_max:.0%}", a_error,
              f"{_fmt(a, '.3g')} against {_fmt(a_target, 'g')} ({_fmt(a_error, '+.1%')})",
              None if a_error is None else abs(a_error) <= FORCE_SINE.amplitude_error_max,
              "" if a_error is not None else "no oscillation after training"),
        _item("tracking", "tracking", "while learning, RLS keeps the readout on the target",
              "RMS error of the readout in the last second of training", f"RMS <= {FORCE_SINE.training_rms_max:g}",
              rms, _fmt(rms, ".3g"), None if rms is None else rms <= FORCE_SINE.training_rms_max),
    ]
    return _summary("force_sine", items)


def cue_bump_claims(metrics: dict) -> dict:
    """Peak time and shape of the bump the three-factor rule learns after a cue."""
    error, lead = _finite(metrics.get("peak_error_ms")), _finite(metrics.get("anticipatory_lead_ms"))
    r = _finite(metrics.get("correlation_with_target_last_trials"))
    items = [
        _item("timing", "timing", "the readout learns a bump at the latency, rising before it",
              "peak time - latency and half-rise of the last trials' mean output (ms)",
              f"|peak - L| <= {CUE_BUMP.peak_error_ms:g} ms and half-rise before L", {"peak_error_ms": error, "lead_ms": lead},
              f"peak {_fmt(error, '+.0f')} ms, half-rise {_fmt(lead, '+.0f')} ms before L",
              None if error is None else abs(error) <= CUE_BUMP.peak_error_ms and lead > 0),
        _item("shape", "shape", "the learned output has the target's shape",
              "correlation of the last trials' mean output with the target bump", f"r >= {CUE_BUMP.correlation_min:g}",
              r, _fmt(r, ".3f"), None if r is None else r >= CUE_BUMP.correlation_min),
    ]
    return _summary("cue_bump", items)


# ------------------------------------------------------------------------------- presenting

def _holds_word(holds: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[holds]


def verdict_table(claims: dict, width: int = 100) -> str:
    """The verdict as a short plain-text table (what ``reservoir run`` prints): one row per claim,
    the value (or why the run cannot judge it) and the target, wrapped to ``width`` columns."""
    rows = [("claim", "holds", "value", "target")]
    for item in claims["items"]:
        label = f"{item['claim']} {item['name']}" if item["claim"] != item["name"] else item["name"]
        value = item["shown"] or ""
        if item["holds"] is None and item["note"]:
            value = (value + "; " if value else "") + "not judged: " + item["note"]
        rows.append((label, _holds_word(item["holds"]), value, item["target"]))
    fixed = [max(len(r[i]) for r in rows) for i in range(2)]
    room = max(40, width - fixed[0] - fixed[1] - 8)
    target_width = min(max(len(r[3]) for r in rows), max(18, room * 2 // 5))
    value_width = max(20, room - target_width)
    lines = []
    for r in rows:
        value_lines = textwrap.wrap(r[2], value_width) or [""]
        target_lines = textwrap.wrap(r[3], target_width) or [""]
        for k in range(max(len(value_lines), len(target_lines))):
            first = (r[0], r[1]) if k == 0 else ("", "")
            value = value_lines[k] if k < len(value_lines) else ""
            target = target_lines[k] if k < len(target_lines) else ""
            lines.append(f"  {first[0]:<{fixed[0]}}  {first[1]:<{fixed[1]}}  {value:<{value_width}}  {target}".rstrip())
    context = {"rule": "'when' rule", "method": "method"}
    title = f"claims ({claims['paradigm']}" + "".join(f", {context[k]} {claims[k]}" for k in context if k in claims)
    return title + f"): {claims['summary']}\n" + "\n".join(lines)


def targets_markdown() -> str:
    """``docs/claims.md``: every paradigm's claims with measure and target, from this module."""
    lines = ["# Claims and their targets", "",
             "Generated from `analysis/claims.py` (`python -m analysis.claims --markdown > docs/claims.md`); the",
             "targets live there and nowhere else. Every run of a paradigm below writes a `claims` section into",
             "its `metrics.json` (measure, value, target, holds), `reservoir run` prints it as a table at the",
             "end, and `reservoir report` shows it first. A single run is one seed; the statements over seeds",
             "are the slow reproductions' (`pytest -m slow`), with the same targets. A claim a run cannot judge",
             "(no switch in the run, another rule) is listed with `holds` null and the reason.", "",
             "## What/when (Yamada & Chao 2025)", "",
             "The paper's methods are not public: the measures and the numbers are this project's reading of",
             "its claims ([design choices](design-choices.md), [results](results-whatwhen.md)).", "",
             "| claim | statement | measure | target |", "|---|---|---|---|"]
    for claim in ("1", "2", "3", "4", "5", "6", "retention"):
        lines.append(f"| {claim} | {_cell(WHATWHEN_STATEMENTS[claim])} | {_cell(WHATWHEN_MEASURES[claim])} | "
                     f"{_cell(WHATWHEN_TEXT[claim])} |")
    lines += ["", f"Over seeds, claim 5 also asks that RLS without a reset re-time at least "
                  f"{WHATWHEN.rls_slowdown_factor:g} times later than the rule, or never.", "",
              "## Permuted digits (continual learning)", "",
              "| method | ACC target | BWT target |", "|---|---|---|",
              f"| HLOP, SVD projection (protected, sequential) | ACC >= {CONTINUAL.acc_min_percent:g} % | "
              f"BWT >= {CONTINUAL.bwt_min_points:g} points |",
              f"| unprotected (the lower reference) | reference | BWT <= {CONTINUAL.unprotected_bwt_max_points:g} points |",
              "| joint training (reference) | reference | n/a |", "",
              f"Across runs of one seed, HLOP's ACC should come within {CONTINUAL.acc_gap_to_svd_max_points:g} points "
              "of the SVD projection's ([results](results-continual.md)).", "",
              "## FORCE sine (Nicola & Clopath 2017)", "",
              "| claim | target |", "|---|---|",
              f"| frequency after training | relative error within {FORCE_SINE.frequency_error_max:.0%} |",
              f"| amplitude after training | relative error within {FORCE_SINE.amplitude_error_max:.0%} |",
              f"| tracking while learning | RMS error in the last second of training <= {FORCE_SINE.training_rms_max:g} |", "",
              "## Three-factor cue bump", "",
              "| claim | target |", "|---|---|",
              f"| timing | {_cell(f'|peak - L| <= {CUE_BUMP.peak_error_ms:g} ms')}, half-rise before L |",
              f"| shape | correlation with the target bump >= {CUE_BUMP.correlation_min:g} |", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.claims", description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print docs/claims.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(targets_markdown())
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
