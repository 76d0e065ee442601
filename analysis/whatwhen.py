"""Measures of the what/when paradigm (the six claims listed in ``docs/results-whatwhen.md``).

Everything is computed from the run file: outputs, weight snapshots, spikes, the trial table,
and the trial design read from the run's resolved configuration (:class:`WhatWhenDesign`). The
one exception is what only the running task could see, the 'what' units' errors over each
stored window before its offline replay, which the task hands in (``offline_errors``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import SpikeIndex, trial_features
from .plots import plt, save

SMOOTH_TRIALS = 5


@dataclass(frozen=True)
class WhatWhenDesign:
    """The trial design of a what/when run, read from its resolved configuration (``[task]``)
    and readout layout, so that a run file is enough to measure it.

    ``settings[b][c]`` is cue ``c``'s ``(latency_ms, {identity: probability})`` in force in
    block ``b`` (a block's changes carry over to the following blocks); ``block_changes[b]``
    names the cues that block ``b`` changes.
    """

    cues: list[str]
    identities: list[str]
    blocks: list[str]
    block_changes: list[list[str]]
    settings: list[list[tuple[float, dict[str, float]]]]
    trial_ms: float
    iti_ms: float
    cue_ms: float
    outcome_ms: float
    test_trials: int
    reset_between_trials: bool
    group: str
    when_column: int
    what_columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seed: int = 0

    @classmethod
    def from_run(cls, run) -> "WhatWhenDesign":
        """The design of ``run`` (an :class:`analysis.Run`); raises unless it is a what/when run."""
        task = run.config.get("task", {})
        if task.get("kind") != "whatwhen":
            raise ValueError(f"{run.path}: not a what/when run (task.kind is {task.get('kind')!r})")
        cues = task["cues"]
        names = [cue["name"] for cue in cues]
        current = [(cue["latency_ms"], dict(cue["probabilities"])) for cue in cues]
        settings, changed = [], []
        for block in task["blocks"]:
            changes = block.get("changes", {})
            for name, change in changes.items():
                i = names.index(name)
                latency, probabilities = current[i]
                current[i] = (change.get("latency_ms") or latency,
                              dict(change["probabilities"]) if change.get("probabilities") is not None else probabilities)
            settings.append(list(current))
            changed.append(list(changes))
        start, _ = run.readout_groups[task["group"]]
        what_group = task.get("what_group")
        what = np.arange(*run.readout_groups[what_group]) if what_group else np.zeros(0, dtype=np.int64)
        return cls(cues=names, identities=list(task["identities"]), blocks=[b.get("name", "") for b in task["blocks"]],
                   block_changes=changed, settings=settings, trial_ms=task["trial_ms"], iti_ms=task["iti_ms"],
                   cue_ms=task["cue_ms"], outcome_ms=task["outcome_ms"], test_trials=task["test_trials"],
                   reset_between_trials=task["reset_between_trials"], group=task["group"], when_column=int(start),
                   what_columns=what, seed=int(run.config.get("seed", 0)))


def aligned(run, column: int, onsets_ms: np.ndarray, length_ms: float) -> np.ndarray:
    """``(n_trials, samples)`` output of ``column`` from each onset, at the output resolution."""
    dt = run.output_dt_ms
    n = int(round(length_ms / dt))
    index = np.round((onsets_ms[:, None] + np.arange(n) * dt - run.output_time_ms[0]) / dt).astype(int)
    index = np.clip(index, 0, len(run.output_time_ms) - 1)
    return run.outputs[index, column]


def fit_line(x, y) -> dict:
    """Least-squares line ``y = slope x + intercept`` and the correlation ``r`` (``None`` where undefined)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": None, "intercept": None, "r": None, "n": int(len(x))}
    slope, intercept = np.polyfit(x, y, 1)
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(y) > 0 else None
    return {"slope": float(slope), "intercept": float(intercept), "r": r, "n": int(len(x))}


def peak_and_half_rise(curve, t):
    """``(peak time, peak value, half-rise time)`` of a curve over times ``t``: the half-rise is the
    first time after the last sample below half the peak, before the peak."""
    peak = int(np.argmax(curve))
    below = np.flatnonzero(curve[: peak + 1] < 0.5 * curve[peak])
    rise = float(t[below[-1] + 1]) if below.size else float(t[0])
    return float(t[peak]), float(curve[peak]), rise


def prediction_window(latency_ms: float) -> tuple[float, float]:
    """Where the 'when' prediction is read: the 20 ms before the outcome is due, plus 5 ms
    (the outcome's own input reaches the readout only through the 20 ms trace filter)."""
    return latency_ms - 20.0, latency_ms + 5.0


def trial_views(design: WhatWhenDesign, run):
    """``(trial table, t, when (trials, samples), [what per identity])``: the readouts' outputs
    aligned to each trial's cue, at the output resolution."""
    c = design
    table = run.tables["trials"]
    onsets = table["onset_step"] * run.dt_ms
    t = np.arange(int(round(c.trial_ms / run.output_dt_ms))) * run.output_dt_ms
    when = aligned(run, design.when_column, onsets, c.trial_ms)
    what = [aligned(run, int(col), onsets, c.trial_ms) for col in design.what_columns]
    return table, t, when, what


def when_measures(design: WhatWhenDesign, table, when, t, what=()) -> dict:
    """Claims 1-3 from the 'when' (and 'what') outputs aligned to each trial's cue
    (``(trials, samples)`` at times ``t``): per block and cue, the peak and half-rise of the
    curve averaged over the last ``test_trials`` trials, the prediction amplitude, and the
    omission-trial output in the outcome window (omission trials of the block's second half);
    the fits against P(outcome) and P(identity | cue); the timing summary."""
    c = design
    settings = c.settings
    per_condition, amplitudes, probabilities, identity_pairs = [], [], [], []
    for b in range(len(c.blocks)):
        for ci, cue_name in enumerate(c.cues):
            rows = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))[-c.test_trials:]
            if rows.size == 0:
                continue
            latency, probs = settings[b][ci]
            curve = when[rows].mean(axis=0)
            peak_t, peak_v, rise = peak_and_half_rise(curve, t)
            lo, hi = prediction_window(latency)
            window = (t >= lo) & (t < hi)
            amplitude = float(curve[window].mean())
            p_outcome = float(sum(probs.values()))
            # the prediction alone: omission trials of the block's second half, outcome window
            half = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))
            half = half[len(half) // 2:]
            omitted = half[table["identity"][half] < 0]
            due = (t >= latency) & (t < latency + c.outcome_ms)
            omission_amplitude = float(when[omitted][:, due].mean()) if omitted.size else None
            entry = {"block": b, "cue": cue_name, "latency_ms": latency, "p_outcome": p_outcome,
                     "omission_amplitude": omission_amplitude, "n_omissions": int(omitted.size),
                     "peak_time_ms": peak_t, "peak_error_ms": peak_t - latency, "half_rise_ms": rise,
                     "lead_ms": latency - rise, "prediction_amplitude": amplitude, "n_trials": int(rows.size)}
            anticipation = (t >= c.cue_ms) & (t < latency)  # the whole pre-stimulus period after the cue
            for k, name in enumerate(c.identities):
                if k < len(what):
                    value = float(what[k][rows][:, anticipation].mean())
                    entry[f"what_{name}"] = value
                    identity_pairs.append((probs.get(name, 0.0), value))
            per_condition.append(entry)
            amplitudes.append(amplitude)
            probabilities.append(p_outcome)
    metrics = {"conditions": per_condition}
    scaling = fit_line(probabilities, amplitudes)
    metrics["probability_scaling"] = scaling
    omission = [(e["p_outcome"], e["omission_amplitude"]) for e in per_condition if e["omission_amplitude"] is not None]
    metrics["probability_scaling_omission"] = fit_line(*zip(*omission)) if len(omission) > 1 else {}
    full = [a for a, p in zip(amplitudes, probabilities) if p == max(probabilities)]
    if full and np.mean(full) > 0:
        metrics["probability_scaling"]["amplitude_ratio_to_highest_p"] = [
            {"p": p, "ratio": a / float(np.mean(full))} for a, p in zip(amplitudes, probabilities)]
    if identity_pairs:
        metrics["identity"] = fit_line(*zip(*identity_pairs))
    metrics["timing"] = {
        "mean_abs_peak_error_ms": float(np.mean([abs(e["peak_error_ms"]) for e in per_condition])),
        "mean_lead_ms": float(np.mean([e["lead_ms"] for e in per_condition])),
    }
    return metrics


def whatwhen_metrics(run, design: WhatWhenDesign | None = None, offline_errors=None) -> dict:
    """Every measure of the six claims for a what/when run (``design`` defaults to the run's own;
    ``offline_errors``: the running task's log, see the module docstring)."""
    c = design if design is not None else WhatWhenDesign.from_run(run)
    table, t, when, what = trial_views(c, run)
    metrics = when_measures(c, table, when, t, what)
    metrics["reliability"] = reliability(c, run, table)
    metrics["adaptation"] = adaptation(c, table, when, t)
    metrics["phase_modulation"] = phase_modulation(c, table, when, t, offline_errors)
    metrics["geometry"] = geometry(c, run)
    return metrics


def reliability(design: WhatWhenDesign, run, table, n_trials: int = 20, every_ms: float = 5.0) -> dict:
    """Trial-to-trial reliability of the reservoir after each cue: the mean correlation, across
    pairs of trials of the same cue (the last ``n_trials``), of the population vector of 20 ms
    traces at the same time since the cue. Timing can only be learned as far as this reaches."""
    c = design
    result = {"time_ms": (np.arange(int(round(c.trial_ms / every_ms))) * every_ms).tolist()}
    for ci, cue_name in enumerate(c.cues):
        rows = np.flatnonzero(table["cue"] == ci)[-n_trials:]
        if rows.size < 2:
            continue
        traces = trial_features(run, table["onset_step"][rows] * run.dt_ms, c.trial_ms, every_ms=every_ms,
                                lead_in_ms=100.0, taus_ms=[20.0], dtype=np.float64)
        centred = traces - traces.mean(axis=2, keepdims=True)
        norms = np.linalg.norm(centred, axis=2)
        curve = []
        for k in range(traces.shape[1]):
            v = centred[:, k] / np.maximum(norms[:, k:k + 1], 1e-300)
            gram = v @ v.T
            curve.append(float((gram.sum() - np.trace(gram)) / (len(rows) * (len(rows) - 1))))
        result[cue_name] = curve
    return result


def adaptation(design: WhatWhenDesign, table, when, t) -> list[dict]:
    """Trials after each switch until the changed cue's readout reaches its new state.

    Timing: the peak of the 5-trial moving average within 50 ms of the new latency. Amplitude:
    the moving average's prediction amplitude within 10 % of its asymptote (the mean of the
    block's last ``test_trials`` trials of that cue). Probability: the moving average of the
    output in the outcome window (claim 2's measure, on every trial: without outcome input the
    features do not depend on the trial's outcome) within 20 % of the new P(outcome).
    ``None``: never within the block.
    """
    c = design
    settings = c.settings
    results = []
    for b in range(1, len(c.blocks)):
        for name in c.block_changes[b]:
            ci = c.cues.index(name)
            rows = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))
            if rows.size < SMOOTH_TRIALS + 1:
                continue
            latency, probs = settings[b][ci]
            old_latency = settings[b - 1][ci][0]
            lo, hi = prediction_window(latency)
            window = (t >= lo) & (t < hi)
            amplitude = when[rows][:, window].mean(axis=1)
            smooth_amp = np.convolve(amplitude, np.ones(SMOOTH_TRIALS) / SMOOTH_TRIALS, mode="valid")
            asymptote = float(amplitude[-c.test_trials:].mean())
            peaks = np.array([t[np.argmax(when[rows[i:i + SMOOTH_TRIALS]].mean(axis=0))]
                              for i in range(rows.size - SMOOTH_TRIALS + 1)])
            due = (t >= latency) & (t < latency + c.outcome_ms)
            outcome_window = np.convolve(when[rows][:, due].mean(axis=1), np.ones(SMOOTH_TRIALS) / SMOOTH_TRIALS,
                                         mode="valid")
            p_outcome = float(sum(probs.values()))
            probability_ok = np.flatnonzero(np.abs(outcome_window - p_outcome) <= 0.2 * p_outcome)
            timing_ok = np.flatnonzero(np.abs(peaks - latency) <= 50.0)
            tolerance = 0.1 * max(abs(asymptote), 1e-12)
            amp_ok = np.flatnonzero(np.abs(smooth_amp - asymptote) <= tolerance)
            results.append({
                "block": b, "cue": name, "latency_ms": latency, "previous_latency_ms": old_latency,
                "p_outcome": p_outcome, "asymptote": asymptote,
                "trials_to_probability": int(probability_ok[0] + SMOOTH_TRIALS) if probability_ok.size else None,
                "outcome_window_by_trial": outcome_window.tolist(),
                "trials_to_timing": int(timing_ok[0] + SMOOTH_TRIALS) if timing_ok.size else None,
                "trials_to_amplitude": int(amp_ok[0] + SMOOTH_TRIALS) if amp_ok.size else None,
                "peak_time_by_trial_ms": peaks.tolist(), "amplitude_by_trial": smooth_amp.tolist(),
            })
    return results


def phase_modulation(design: WhatWhenDesign, table, when, t, offline_errors=None) -> dict:
    """Mean gate x |error| of the 'when' unit in the anticipation and outcome phases, and the
    mean |error| of the 'what' units over each stored window before its offline replay
    (``offline_errors``, logged by the running task)."""
    c = design
    anticipation, outcome = [], []
    for row in range(len(table["trial"])):
        latency = table["latency_ms"][row]
        target = np.zeros_like(t)
        if table["identity"][row] >= 0:
            target[(t >= latency) & (t < latency + c.outcome_ms)] = 1.0
        error = np.abs(target - when[row])
        anticipation.append(error[t < latency].mean())
        outcome.append(error[(t >= latency) & (t < latency + c.outcome_ms)].mean())
    offline = list(offline_errors or [])
    return {"when_anticipation": float(np.mean(anticipation)), "when_outcome": float(np.mean(outcome)),
            "what_offline": float(np.mean(offline)) if offline else None}


def _angle(a, b) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(a @ b / norm, -1.0, 1.0))))


def geometry(design: WhatWhenDesign, run, n_null: int = 2000, n_components: int = 10) -> dict:
    """Angles between w_when and each w_what over learning, raw and in the top PC subspace of the
    readout features, each against random vectors (the null: uniformly random directions in the
    same space, whose angles concentrate near 90 degrees in raw space but not in k dimensions)."""
    if len(design.what_columns) == 0 or run.snapshot_time_ms.size == 0:
        return {}
    snapshots = run.weight_snapshots()
    when = snapshots[:, design.when_column]
    what = snapshots[:, design.what_columns]
    raw = [[_angle(when[s], what[s, k]) for k in range(what.shape[1])] for s in range(len(snapshots))]
    rng = np.random.default_rng(0)
    dim = snapshots.shape[2]
    null_raw = [_angle(rng.standard_normal(dim), rng.standard_normal(dim)) for _ in range(n_null)]
    basis = feature_pcs(run, n_components)
    result = {"snapshot_time_ms": run.snapshot_time_ms.tolist(), "raw_angles_deg": raw,
              "raw_null_deg": _summary(null_raw)}
    final = raw[-1]
    result["final_raw_angles_deg"] = final
    result["final_raw_null_fraction_as_orthogonal"] = [
        float(np.mean(np.abs(np.array(null_raw) - 90) <= abs(a - 90))) for a in final]
    if basis is not None:
        pc = [[_angle(basis @ when[s], basis @ what[s, k]) for k in range(what.shape[1])] for s in range(len(snapshots))]
        null_pc = [_angle(rng.standard_normal(n_components), rng.standard_normal(n_components)) for _ in range(n_null)]
        result.update({"pc_angles_deg": pc, "pc_null_deg": _summary(null_pc), "n_components": n_components,
                       "final_pc_angles_deg": pc[-1],
                       "final_pc_null_fraction_as_orthogonal": [
                           float(np.mean(np.abs(np.array(null_pc) - 90) <= abs(a - 90))) for a in pc[-1]]})
    return result


def _summary(values) -> dict:
    v = np.asarray(values)
    return {"mean": float(v.mean()), "sd": float(v.std()), "p5": float(np.percentile(v, 5)),
            "p95": float(np.percentile(v, 95))}


def feature_pcs(run, n_components: int, n_trials: int = 20) -> np.ndarray | None:
    """Top principal directions ``(k, F)`` of the readout features over the last trials,
    rebuilt from the recorded spikes with the run's exponential trace filters."""
    traces = run.config.get("readouts", {}).get("traces", [])
    if not traces or any(f.get("kind") != "exponential" for f in traces):
        return None
    table = run.tables["trials"]
    start_ms = float(table["onset_step"][-n_trials] * run.dt_ms) if len(table["onset_step"]) >= n_trials else 0.0
    n_steps = int(round((run.duration_ms - start_ms) / run.dt_ms))
    sample_steps = np.arange(0, n_steps, max(1, int(round(5.0 / run.dt_ms))))
    X = SpikeIndex(run).filtered(start_ms, n_steps, sample_steps, [f.get("tau_ms", 20.0) for f in traces])
    X = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    return vt[:n_components]


def whatwhen_figures(run, out_dir: Path, metrics: dict | None = None, design: WhatWhenDesign | None = None) -> list[Path]:
    """The what/when figures of a run under ``out_dir/figures`` (``metrics`` from
    :func:`whatwhen_metrics`, computed here if not given)."""
    c = design if design is not None else WhatWhenDesign.from_run(run)
    table, t, when, what = trial_views(c, run)
    settings = c.settings
    paths = []
    fig, axes = plt.subplots(len(c.blocks), len(c.cues), figsize=(4 * len(c.cues), 2.8 * len(c.blocks)),
                             squeeze=False, sharex=True, sharey=True)
    for b in range(len(c.blocks)):
        for ci, cue_name in enumerate(c.cues):
            ax = axes[b, ci]
            rows = np.flatnonzero((table["block"] == b) & (table["cue"] == ci))[-c.test_trials:]
            latency, probs = settings[b][ci]
            if rows.size:
                ax.plot(t, when[rows].mean(axis=0), color="k", label="when")
                for k, name in enumerate(c.identities[: len(what)]):
                    ax.plot(t, what[k][rows].mean(axis=0), label=f"what {name}")
            ax.axvline(latency, color="r", ls=":", lw=1)
            ax.set_title(f"block {b} ({c.blocks[b]}), {cue_name}: L={latency:g}, "
                         + ", ".join(f"{k}={v:g}" for k, v in probs.items()), fontsize=8)
    if axes[0, 0].get_legend_handles_labels()[0]:  # a cue without trials in the first block has no curves
        axes[0, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("time since cue (ms)")
    fig.tight_layout()
    paths.append(save(fig, out_dir / "figures" / "readouts_by_cue_and_block.png"))
    if metrics is None:
        metrics = whatwhen_metrics(run, c)
    cond = metrics["conditions"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot([e["p_outcome"] for e in cond], [e["prediction_amplitude"] for e in cond], "o")
    ax1.plot([0, 1], [0, 1], color="0.7", ls="--", lw=1, label="proportional")
    ax1.set_xlabel("P(outcome | cue, block)")
    ax1.set_ylabel("'when' prediction amplitude")
    ax1.legend(fontsize=8)
    for k, name in enumerate(c.identities[: len(what)]):
        ax2.plot([settings[e["block"]][c.cues.index(e["cue"])][1].get(name, 0.0) for e in cond],
                 [e[f"what_{name}"] for e in cond], "o", label=f"what {name}")
    ax2.plot([0, 1], [0, 1], color="0.7", ls="--", lw=1)
    ax2.set_xlabel("P(identity | cue)")
    ax2.set_ylabel("'what' output before the outcome")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    paths.append(save(fig, out_dir / "figures" / "amplitude_vs_probability.png"))
    if metrics["adaptation"]:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for a in metrics["adaptation"]:
            x = np.arange(len(a["peak_time_by_trial_ms"])) + SMOOTH_TRIALS
            axes[0].plot(x, a["peak_time_by_trial_ms"], label=f"{a['cue']}, block {a['block']}")
            axes[0].axhline(a["latency_ms"], color="r", ls=":", lw=1)
            axes[1].plot(x, a["amplitude_by_trial"], label=f"{a['cue']}, block {a['block']}")
            axes[2].plot(x, a["outcome_window_by_trial"], label=f"{a['cue']}, block {a['block']}")
            axes[2].axhspan(0.8 * a["p_outcome"], 1.2 * a["p_outcome"], color="r", alpha=0.1)
        axes[0].set_ylabel("peak time (ms, 5-trial average)")
        axes[1].set_ylabel("prediction amplitude (5-trial average)")
        axes[2].set_ylabel("outcome-window output (5-trial average);\nshaded: new P(outcome) +- 20 %")
        for ax in axes:
            ax.set_xlabel("trial of the cue after the switch")
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(save(fig, out_dir / "figures" / "adaptation.png"))
    rel = metrics["reliability"]
    if len(rel) > 1:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for cue_name in c.cues:
            if cue_name in rel:
                ax.plot(rel["time_ms"], rel[cue_name], label=cue_name)
        ax.set_xlabel("time since cue (ms)")
        ax.set_ylabel("trial-to-trial correlation")
        ax.set_title("reliability of the reservoir response (20 ms traces)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(save(fig, out_dir / "figures" / "reliability.png"))
    geo = metrics["geometry"]
    if geo:
        fig, ax = plt.subplots(figsize=(7, 4))
        times = np.array(geo["snapshot_time_ms"]) / 1000.0
        raw = np.array(geo["raw_angles_deg"])
        for k in range(raw.shape[1]):
            ax.plot(times, raw[:, k], label=f"raw, when vs what {c.identities[k]}")
        if "pc_angles_deg" in geo:
            pc = np.array(geo["pc_angles_deg"])
            for k in range(pc.shape[1]):
                ax.plot(times, pc[:, k], ls="--", label=f"top-{geo['n_components']} PCs, vs what {c.identities[k]}")
            ax.axhspan(geo["pc_null_deg"]["p5"], geo["pc_null_deg"]["p95"], color="tab:orange", alpha=0.15,
                       label="PC null 5-95 %")
        ax.axhspan(geo["raw_null_deg"]["p5"], geo["raw_null_deg"]["p95"], color="0.5", alpha=0.25, label="raw null 5-95 %")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("angle (degrees)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(save(fig, out_dir / "figures" / "angles.png"))
    return paths
