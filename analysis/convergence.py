"""How many trials the three-factor "when" rule needs to reach its least-squares ceiling.

In a deterministic what/when run (no noise, trial-start reset, no outcome input into the
reservoir) every trial of a cue produces the same features, so the rule can be run offline, far
longer than a simulation allows: :class:`reservoir.rules.three_factor.ThreeFactorReadout` (the
engine's own compiled update) steps through each trial's features row by row, with a fresh
eligibility trace at each trial start as the reset gives, against Bernoulli outcomes drawn with
each cue's P(outcome). Because the features of omission and outcome trials are identical, the
output in the outcome window *is* the omission-trial prediction, whose ideal value is
P(outcome) (:mod:`analysis.decodability` measures that ceiling). The result says whether a
miss of claims 1 and 2 is the reservoir's (the ceiling is low) or the rule's (it converges too
slowly), and how slowly.

``python -m analysis.convergence RUN_DIR --trials 3200 --learning-rates 0.01 0.002``

A noisy run (any run with the trial-start reset) is measured instead with ``--own-features``:
each candidate rule replays the run's own trials, features and outcomes (:mod:`analysis.replay`),
which reproduces the engine's learning exactly for the run's own rule:

``python -m analysis.convergence RUN_DIR --own-features --candidate plain --candidate
covariance:centering=running_mean,bias_learning_rate=0.01``
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from reservoir.rng import stream_seed
from reservoir.rules.three_factor import ThreeFactorReadout

from .decodability import format_number
from .features import trial_features
from .fits import fit_line
from .io import load_run
from .run_status import read_run_status, recorded_whole, run_errors_exit
from .plots import plt, save, use_file_backend
from .replay import TooFewTrialsError, parse_candidate, replay_when_rule, trials_recorded
from .trials import peak_and_half_rise
from .whatwhen import WhatWhenDesign


DIVERGED_OUTPUT = 1e6
"""An output this large (the targets are 0 and 1), or a non-finite one, ends a learning rate's
run as diverged."""


class NotDeterministicError(ValueError):
    """The run's trials of one cue differ, so one trial's features cannot stand for all."""


def cue_features(design: WhatWhenDesign, run, length_ms: float | None = None) -> list[np.ndarray]:
    """Each cue's features ``(steps, F)`` at the engine's resolution over ``length_ms`` from the
    cue (default: the attended window), from its first trial; raises
    :class:`NotDeterministicError` unless its first two trials are identical, and
    :class:`~analysis.replay.TooFewTrialsError` unless the first block holds two of each cue
    (recorded whole, for a run that stopped early)."""
    c = design
    table = run.tables["trials"]
    length = length_ms or c.trial_ms
    whole = recorded_whole(run, table["onset_step"] * run.dt_ms, length)
    out = []
    for ci, cue_name in enumerate(c.cues):
        rows = np.flatnonzero((table["cue"] == ci) & (table["block"] == 0) & whole)[:2]
        if rows.size < 2:
            planned = int(np.sum((table["cue"] == ci) & (table["block"] == 0)))
            recorded = "" if whole.all() else f" recorded whole (of {planned})"
            raise TooFewTrialsError(f"cue {cue_name!r} needs two trials in the first block, has {rows.size}{recorded}")
        X = trial_features(run, table["onset_step"][rows] * run.dt_ms, length, every_ms=run.dt_ms)
        difference = float(np.abs(X[0] - X[1]).max())
        if difference > 0:
            raise NotDeterministicError(
                f"cue {cue_name!r}: two trials differ (max feature difference {difference:.3g}); the offline "
                "replay needs network.noise = 0, task.reset_between_trials = true and task.outcome_amplitude = 0")
        out.append(np.ascontiguousarray(X[0], dtype=np.float64))
    return out


def when_rule(design: WhatWhenDesign, run) -> dict:
    """The three-factor settings of the run's "when" group (as written in its configuration),
    without ``consolidation``: the keyword arguments of
    :class:`~reservoir.rules.three_factor.ThreeFactorReadout`. Raises ``ValueError`` if that
    group learns by another rule."""
    group = next(g for g in run.config["readouts"]["groups"] if g["name"] == design.group)
    if group.get("rule") != "three_factor":
        raise ValueError(f"readouts.groups: the 'when' group {design.group!r} uses rule "
                         f"{group.get('rule')!r}, not 'three_factor': this analysis replays the three-factor rule "
                         "(python -m analysis.decodability measures what any linear 'when' readout can reach)")
    return {key: value for key, value in group["three_factor"].items() if key != "consolidation"}


def _snapshot(learner, features, cues, t, outcome_ms) -> list[dict]:
    rows = []
    for X, (name, latency, p) in zip(features, cues):
        z = learner.predict(X[:t.size])[:, 0]
        peak_t, _, rise = peak_and_half_rise(z, t)
        due = (t >= latency) & (t < latency + outcome_ms)
        rows.append({"cue": name, "p_outcome": p, "amplitude": float(z[due].mean()),
                     "peak_error_ms": peak_t - latency, "lead_ms": latency - rise})
    return rows


def rule_convergence(design: WhatWhenDesign, run, learning_rates, n_trials: int = 3200, checkpoints=None,
                     trials_from_run: bool = False, rule_overrides: dict | None = None) -> dict:
    """Run the "when" group's three-factor rule offline for ``n_trials`` trials at each learning
    rate (other settings from the run's config) and report the per-cue outcome-window output
    at each checkpoint (trial counts), with the fit of amplitude against P(outcome).

    Trials are drawn afresh (uniform cue, Bernoulli outcome, from the seed's
    ``offline_analysis`` stream), or with ``trials_from_run`` taken from the run's own trial
    table (its first ``n_trials``, all in the first block and recorded whole), which then
    replays exactly what the engine learned from (``weights`` in the result are the final
    weights, for that comparison). ``rule_overrides`` replaces settings of the run's rule (e.g.
    ``{"tau_eligibility_ms": 5.0}``)."""
    c = design
    rule = when_rule(design, run)
    rule.pop("learning_rate", None)
    rule.update(rule_overrides or {})
    table = run.tables["trials"]
    if trials_from_run:
        recorded = trials_recorded(design, run)
        available = int(np.sum(table["block"][:recorded] == 0))
        if n_trials > available:
            planned = int(np.sum(table["block"] == 0))
            whole = "" if available == planned else f" recorded whole (of {planned})"
            raise TooFewTrialsError(f"n_trials: the run's first block has {available} trials{whole}, "
                                    f"asked to replay {n_trials}")
    period_ms = c.trial_ms + c.iti_ms
    features = cue_features(design, run, period_ms)  # the interval too: the running statistics see it
    settings = c.settings[0]
    cues = [(name, latency, float(sum(probs.values()))) for name, (latency, probs) in zip(c.cues, settings)]
    t_period = np.arange(features[0].shape[0]) * run.dt_ms
    t = t_period[t_period < c.trial_ms]
    boxes = [((t_period >= latency) & (t_period < latency + c.outcome_ms)).astype(float) for _, latency, _ in cues]
    gates = (t_period < c.trial_ms).astype(float)[:, None]
    checkpoints = sorted(set(checkpoints or [n for n in (50, 100, 200, 400, 800, 1600, 3200, 6400, 12800)
                                              if n <= n_trials] + [n_trials]))
    result = {"n_trials": n_trials, "checkpoints": checkpoints, "rule": rule, "runs": []}
    for rate in learning_rates:
        learner = ThreeFactorReadout(learning_rate=rate, dt_ms=run.dt_ms, **rule)
        rng = np.random.default_rng(stream_seed(design.seed, "offline_analysis"))
        history, diverged = [], None
        for trial in range(1, n_trials + 1):
            if trials_from_run:
                ci, present = int(table["cue"][trial - 1]), bool(table["identity"][trial - 1] >= 0)
            else:
                ci = int(rng.integers(len(cues)))
                present = bool(rng.random() < cues[ci][2])
            target = boxes[ci] * float(present)
            learner.reset_state().partial_fit(features[ci], target, gates)
            peak = float(np.max(np.abs(learner.last_outputs_)))
            if not peak <= DIVERGED_OUTPUT:
                diverged = trial
                break
            if trial in checkpoints:
                rows = _snapshot(learner, features, cues, t, c.outcome_ms)
                fit = fit_line([r["p_outcome"] for r in rows], [r["amplitude"] for r in rows])
                history.append({"trials": trial, "cues": rows, "scaling": fit})
        result["runs"].append({"learning_rate": rate, "history": history, "diverged_at_trial": diverged,
                               "weights": learner.weights_[0].tolist(), "bias": float(learner.bias_[0])})
    return result


def convergence_figure(result: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for run, color in zip(result["runs"], plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        if not run["history"]:
            continue
        trials = [h["trials"] for h in run["history"]]
        for k, style in zip(range(len(run["history"][0]["cues"])), ("-", "--", ":", "-.")):
            ratio = [h["cues"][k]["amplitude"] / h["cues"][k]["p_outcome"] for h in run["history"]]
            name = run["history"][0]["cues"][k]["cue"]
            ax.plot(trials, ratio, style, color=color, marker="o", ms=3,
                    label=f"eta {run['learning_rate']:g}, {name}")
    ax.axhline(1.0, color="0.6", ls="--", lw=1, label="least-squares ceiling")
    ax.set_xscale("log")
    ax.set_xlabel("training trials")
    ax.set_ylabel("omission-trial output / P(outcome)")
    ax.set_title("three-factor 'when' rule, offline on the run's deterministic features", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)


def candidates_summary(results: dict) -> dict:
    """The measures of each replayed candidate, without the outputs (for ``NAME.json``)."""
    return {name: {key: value for key, value in r.items() if key not in ("when", "t")} for name, r in results.items()}


def candidates_figure(design: WhatWhenDesign, table, results: dict, path: Path) -> Path:
    """Each candidate's "when" output averaged over the omission trials of the second half of the
    first block, per cue, against ``P(outcome) x`` the outcome's time course."""
    c = design
    names = list(results)
    fig, axes = plt.subplots(len(names), len(c.cues), figsize=(4 * len(c.cues), 2.4 * len(names)), squeeze=False,
                             sharex=True, sharey=True)
    for row, name in enumerate(names):
        when, t = results[name]["when"], results[name]["t"]
        n = len(when)
        for ci, cue in enumerate(c.cues):
            ax = axes[row, ci]
            mine = np.flatnonzero((table["cue"][:n] == ci) & (table["block"][:n] == 0))
            mine = mine[len(mine) // 2:]
            omitted = mine[table["identity"][mine] < 0]
            latency, probs = c.settings[0][ci]
            p = float(sum(probs.values()))
            ax.plot(t, p * ((t >= latency) & (t < latency + c.outcome_ms)), color="0.6", ls="--", lw=1)
            if omitted.size:
                ax.plot(t, when[omitted].mean(axis=0), color="tab:red", lw=1)
            ax.set_title(f"{name}: {cue}, P={p:.2g}", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time since cue (ms)")
    for ax in axes[:, 0]:
        ax.set_ylabel("'when' output,\nomission trials")
    fig.suptitle("claim 2's measure per candidate: the 'when' output on omission trials of the block's second half (red) "
                 "against P(outcome) x the outcome window (grey)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


SCALING_MISSING = {"slope": "one P(outcome) only", "intercept": "one P(outcome) only",
                   "r": "no spread in the outputs or in P(outcome)"}


def scaling_text(fit: dict, missing: str = "fewer than two cues with omission trials") -> str:
    """``slope S, intercept I, r R`` of a :func:`~analysis.fits.fit_line` result, each value
    ``n/a (why)`` where the fit leaves it undefined (``missing``: why there is no fit at all,
    an empty one)."""
    if not fit:
        return f"n/a ({missing})"
    return (f"slope {format_number(fit.get('slope'), '.3f', SCALING_MISSING['slope'])}, "
            f"intercept {format_number(fit.get('intercept'), '+.3f', SCALING_MISSING['intercept'])}, "
            f"r {format_number(fit.get('r'), '.3f', SCALING_MISSING['r'])}")


def _refuse(parser, status, error: ValueError):
    """Exit 2 with ``error``; a run that stopped early and has too few trials for the analysis
    is named with its status (:meth:`analysis.run_status.RunStatus.incomplete`)."""
    if isinstance(error, TooFewTrialsError) and not status.complete:
        raise status.incomplete(str(error))
    parser.error(str(error))


def _own_features(args, parser, status, design, run) -> int:
    try:
        candidates = dict(parse_candidate(text) for text in (args.candidate or ["own"]))
        base = when_rule(design, run)
        results = replay_when_rule(design, run, candidates, base, n_trials=args.trials_own)
    except ValueError as error:
        _refuse(parser, status, error)
    stem = args.name or "candidates"
    (args.run / f"{stem}.json").write_text(json.dumps(candidates_summary(results), indent=1) + "\n")
    candidates_figure(design, run.tables["trials"], results, args.run / "figures" / f"{stem}.png")
    for name, r in results.items():
        cells = ", ".join(f"{e['cue']} b{e['block']} {e['omission_amplitude']:.3f}/{e['p_outcome']:.2f} peak {e['peak_error_ms']:+.0f} "
                          f"half-rise {-e['lead_ms']:+.0f}" for e in r["conditions"] if e["omission_amplitude"] is not None)
        print(f"{name}: omission output vs P(outcome): {scaling_text(r['probability_scaling_omission'])}; "
              f"{cells or 'no omission trial'}")
        cells = ", ".join(f"{e['cue']} b{e['block']} {e['omission_amplitude']:.3f}/{e['p_outcome']:.2f}"
                          for e in r["carried_conditions"] if e["omission_amplitude"] is not None)
        print(f"  carried in (weights at the trial start): {scaling_text(r['carried_scaling_omission'])}; "
              f"{cells or 'no omission trial'}")
    return 0


def main(argv=None) -> int:
    """The command line (module docstring). A run that stopped early (status ``failed``,
    ``interrupted`` or ``running``) is used up to its last trial recorded whole, and the output
    says so; one with too few such trials is refused (status 2), as is a folder without
    ``run.h5``; a damaged run file exits with status 1."""
    use_file_backend()
    parser = argparse.ArgumentParser(prog="python -m analysis.convergence", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a what/when run folder (deterministic, unless --own-features)")
    parser.add_argument("--trials", type=int, default=3200, help="training trials (default 3200)")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=None,
                        help="learning rates to compare (default: the run's)")
    parser.add_argument("--tau-eligibility-ms", type=float, default=None,
                        help="eligibility time constant (default: the run's)")
    parser.add_argument("--trials-from-run", action="store_true",
                        help="replay the run's own trial sequence (cues and outcomes of its first block) "
                             "instead of drawing fresh trials")
    parser.add_argument("--name", default=None,
                        help="name of the result files, NAME.json and figures/NAME.png (default: convergence, or "
                             "convergence_tau<T>ms with --tau-eligibility-ms; candidates with --own-features); "
                             "reservoir.experiment.reproduce reads convergence.json")
    parser.add_argument("--own-features", action="store_true",
                        help="replay candidate rules on the run's own trials and features (noisy runs too; needs "
                             "the trial-start reset)")
    parser.add_argument("--candidate", action="append", metavar="NAME[:KEY=VALUE,...]",
                        help="with --own-features: a candidate, the run's 'when' rule with these settings replaced "
                             "(repeatable; default: the run's rule alone)")
    parser.add_argument("--trials-own", type=int, default=None,
                        help="with --own-features: replay the first N trials (default: all that the run recorded)")
    args = parser.parse_args(argv)
    if args.name is not None and not args.name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        parser.error(f"argument --name: expected letters, digits, '_', '-' or '.', got {args.name!r}")
    if not args.own_features:
        if args.tau_eligibility_ms is not None and not args.tau_eligibility_ms > 0:
            parser.error("argument --tau-eligibility-ms: expected a positive time constant, "
                         f"got {args.tau_eligibility_ms}")
        if args.trials < 1:
            parser.error(f"argument --trials: expected a positive number of trials, got {args.trials}")
    with run_errors_exit(parser):
        status = read_run_status(args.run)
        run = load_run(args.run)
        try:
            design = WhatWhenDesign.from_run(run)
        except ValueError as error:
            parser.error(str(error))
        if not status.complete:
            planned = len(run.tables["trials"]["trial"])
            print(status.partial(f"using the {trials_recorded(design, run)} of its {planned} trials recorded whole"))
        if args.own_features:
            return _own_features(args, parser, status, design, run)
        return _offline(args, parser, status, design, run)


def _offline(args, parser, status, design, run) -> int:
    overrides = {} if args.tau_eligibility_ms is None else {"tau_eligibility_ms": args.tau_eligibility_ms}
    try:
        rates = args.learning_rates or [when_rule(design, run)["learning_rate"]]
        result = rule_convergence(design, run, rates, args.trials, trials_from_run=args.trials_from_run,
                                  rule_overrides=overrides)
    except ValueError as error:  # another rule, a run whose trials differ, too few trials
        _refuse(parser, status, error)
    result["run"] = {"status": status.status, "message": status.message, "completed_ms": status.completed_ms,
                     "planned_ms": status.planned_ms}
    stem = args.name or ("convergence" if not overrides else f"convergence_tau{args.tau_eligibility_ms:g}ms")
    (args.run / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    convergence_figure(result, args.run / "figures" / f"{stem}.png")
    for r in result["runs"]:
        if r["diverged_at_trial"] is not None:
            print(f"eta {r['learning_rate']:g}: diverged at trial {r['diverged_at_trial']} (|output| > "
                  f"{DIVERGED_OUTPUT:g} or not finite)")
        for h in r["history"]:
            cells = ", ".join(f"{e['cue']} {e['amplitude']:.3f}/{e['p_outcome']:.2f}" for e in h["cues"])
            print(f"eta {r['learning_rate']:g}, {h['trials']} trials: output/P(outcome) {cells}; "
                  f"{scaling_text(h['scaling'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
