"""The "when" rule replayed offline on a run's own trials, for comparing rule candidates.

Without readout feedback the reservoir never sees the readouts, so a run's features (rebuilt
from its recorded spikes) are what *any* readout rule would have learned from. This module
steps a candidate rule (:class:`reservoir.rules.three_factor.ThreeFactorReadout`, the engine's
compiled update) through every trial of the run, at the engine's time step, with the engine's
targets and gates (target 1 while an outcome is present, gate 1 from the cue to the end of the
attended window and 0 in the inter-trial interval), and measures its outputs with the same
functions as the run's own metrics (:func:`analysis.whatwhen.when_measures`). With the run's
own rule this reproduces the engine's "when" outputs to rounding (tested), so a table of
candidates costs one simulation.

It also measures the prediction each trial *carries in*: the output of the weights (and bias)
as they were at the trial's start, before any of that trial's errors (``carried_*``). Online,
the output within the outcome window also holds the rule's response to that trial's own
errors - on an omission trial the negative error lowers the output within the window - so
the two differ by the in-trial learning.

It needs the trial-start reset (``task.reset_between_trials``): each trial's features then
start from zero and are exact. The outcome's own input, if any, is in the features, as it was
for the run.

``python -m analysis.convergence RUN_DIR --own-features --candidate plain --candidate
covariance:centering=running_mean,bias_learning_rate=0.01``
"""
from __future__ import annotations

import numpy as np

from reservoir.rules.three_factor import ThreeFactorReadout

from .features import SpikeIndex, run_filters
from .run_status import recorded_whole
from .whatwhen import WhatWhenDesign, when_measures


class TooFewTrialsError(ValueError):
    """The run has fewer trials than an analysis asks for: in its design, or recorded whole when
    it stopped early (:func:`trials_recorded`)."""


def trials_recorded(design: WhatWhenDesign, run, length_ms: float | None = None) -> int:
    """How many trials, from the first, the run recorded whole: ``length_ms`` from each cue
    (default: the trial and its interval), all of them unless the run stopped early."""
    table = run.tables["trials"]
    length = design.trial_ms + design.iti_ms if length_ms is None else float(length_ms)
    whole = recorded_whole(run, table["onset_step"] * run.dt_ms, length)
    return int(whole.size if whole.all() else np.argmin(whole))


def parse_candidate(text: str) -> tuple[str, dict]:
    """``NAME`` or ``NAME:key=value,key=value`` (values read as numbers where they parse,
    ``true``/``false`` as booleans, ``null`` as none; other text stays text)."""
    name, _, rest = text.partition(":")
    if not name:
        raise ValueError(f"candidate {text!r}: expected NAME or NAME:key=value,...")
    settings = {}
    for item in filter(None, rest.split(",")):
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"candidate {text!r}: expected key=value, got {item!r}")
        try:
            value: object = float(raw)
        except ValueError:
            value = {"null": None, "true": True, "false": False}.get(raw.lower(), raw)
        settings[key.strip()] = value
    return name, settings


def replay_when_rule(design: WhatWhenDesign, run, candidates: dict[str, dict], base_rule: dict,
                     n_trials: int | None = None) -> dict[str, dict]:
    """Replay each candidate (``name -> settings`` that replace those of ``base_rule``, the run's
    "when" three-factor settings, :func:`analysis.convergence.when_rule`) over the first ``n_trials`` trials
    (default: all that the run recorded whole, :func:`trials_recorded`) and return, per
    candidate, :func:`when_measures` of its outputs and the ``(trials, samples)`` outputs
    themselves (key ``when``). :class:`TooFewTrialsError` if the run recorded fewer."""
    c = design
    if not c.reset_between_trials:
        raise ValueError("task.reset_between_trials: replaying a run's own trials needs the trial-start reset "
                         "(each trial's features then start from zero)")
    table = run.tables["trials"]
    recorded = trials_recorded(design, run)
    if recorded == 0:
        raise TooFewTrialsError(f"{run.path} holds no trial recorded whole "
                                f"(it has {len(table['trial'])} in its design)")
    total = recorded if n_trials is None else int(n_trials)
    if not 1 <= total <= recorded:
        whole = "" if recorded == len(table["trial"]) else f" (the trials recorded whole, of {len(table['trial'])})"
        raise TooFewTrialsError(f"n_trials: expected 1 to {recorded}{whole}, got {n_trials}")
    dt = run.dt_ms
    period_steps = int(round((c.trial_ms + c.iti_ms) / dt))
    trial_steps = int(round(c.trial_ms / dt))
    every = max(1, int(round(run.output_dt_ms / dt)))
    filters = run_filters(run)
    learners = {}
    for name, settings in candidates.items():
        rule = {**base_rule, **settings}
        learners[name] = ThreeFactorReadout(dt_ms=dt, **rule)
    t = np.arange(0, trial_steps, every) * dt
    outputs = {name: np.zeros((total, t.size)) for name in candidates}
    carried = {name: np.zeros((total, t.size)) for name in candidates}
    gates = np.zeros((period_steps, 1))
    gates[int(round(c.gate_delay_ms / dt)):trial_steps] = 1.0
    steps = np.arange(period_steps)
    with SpikeIndex(run) as spikes:
        for trial in range(total):
            onset_ms = table["onset_step"][trial] * dt
            X = spikes.filtered(onset_ms, period_steps, steps, filters)
            target = np.zeros((period_steps, 1))
            if table["identity"][trial] >= 0:
                arrival = int(round(table["latency_ms"][trial] / dt))
                target[arrival:arrival + int(round(c.outcome_ms / dt))] = 1.0
            for name, learner in learners.items():
                if learner.weights_ is None:
                    learner.start(X.shape[1])
                carried[name][trial] = learner.predict(X[:trial_steps:every])[:, 0]
                learner.partial_fit(X, target, gates)
                outputs[name][trial] = learner.last_outputs_[:trial_steps:every, 0]
                learner.reset_state()
    sub = {key: values[:total] for key, values in table.items()}
    results = {}
    for name in candidates:
        carried_measures = when_measures(c, sub, carried[name], t)
        results[name] = {**when_measures(c, sub, outputs[name], t), "when": outputs[name], "t": t,
                         "rule": {**base_rule, **candidates[name]},
                         "carried_conditions": carried_measures["conditions"],
                         "carried_scaling_omission": carried_measures["probability_scaling_omission"]}
    return results
