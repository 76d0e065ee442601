"""Run experiment files over several seeds (in parallel processes) and tabulate mean +- sd.

    python -m reservoir.experiment.reproduce experiments/whatwhen.toml --seeds 1 2 3 4 5 --jobs 2 --out runs/reproduce
    python -m reservoir.experiment.reproduce experiments/whatwhen_force.toml --seeds 1 2 3 4 5 \\
        --set task.rls_reset_at_switch=true --label rls_reset --out runs/reproduce

Each run goes to ``OUT/LABEL/seedN`` (LABEL defaults to the experiment's name); the summary of
every label found under OUT is written to ``OUT/summary.json`` and ``OUT/summary.md``. The seeds
run as a sweep (:mod:`reservoir.experiment.sweep`: a local Dask cluster of ``--jobs`` workers;
``OUT/LABEL/sweep.csv`` tabulates the runs); every seed is rerun unless ``--skip-finished``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import numpy as np

from analysis.plots import use_file_backend
from analysis.fits import fit_line

from ..config import ConfigError
from .cli import parse_assignment
from .config import make_task, validate_run_config
from .runner import CONFIG_FILE, write_outputs
from .sweep import SweepError, build_sweep, parse_sweep, resolve_experiment, run_sweep

SCALARS = [
    ("timing", "mean_abs_peak_error_ms"), ("timing", "mean_lead_ms"),
    ("probability_scaling", "slope"), ("probability_scaling", "intercept"), ("probability_scaling", "r"),
    ("probability_scaling_omission", "slope"), ("probability_scaling_omission", "intercept"),
    ("probability_scaling_omission", "r"),
    ("identity", "slope"), ("identity", "intercept"), ("identity", "r"),
    ("phase_modulation", "when_anticipation"), ("phase_modulation", "when_outcome"),
    ("phase_modulation", "what_offline"),
]


def _scalars(metrics: dict) -> dict[str, float]:
    out = {}
    for section, key in SCALARS:
        value = metrics.get(section, {}).get(key) if isinstance(metrics.get(section), dict) else None
        if value is not None:
            out[f"{section}.{key}"] = value
    for a in metrics.get("adaptation", []):
        for key in ("trials_to_timing", "trials_to_amplitude", "trials_to_probability"):
            value = a[key]
            out[f"adaptation.{a['cue']}.block{a['block']}.{key}"] = np.nan if value is None else value
    geo = metrics.get("geometry", {})
    for space in ("raw", "pc"):
        for k, angle in enumerate(geo.get(f"final_{space}_angles_deg", [])):
            out[f"geometry.{space}_angle_what{k}_deg"] = angle
            out[f"geometry.{space}_null_fraction_as_orthogonal_what{k}"] = geo[f"final_{space}_null_fraction_as_orthogonal"][k]
    functional = zip(geo.get("functional_correlation", []), geo.get("functional_null_fraction_as_orthogonal", []))
    for k, (r, fraction) in enumerate(functional):
        out[f"geometry.functional_correlation_what{k}"] = r
        out[f"geometry.functional_null_fraction_as_orthogonal_what{k}"] = fraction
    for entry in metrics.get("conditions", []):
        tag = f"b{entry['block']}.{entry['cue']}"
        out[f"when.{tag}.peak_error_ms"] = entry["peak_error_ms"]
        out[f"when.{tag}.lead_ms"] = entry["lead_ms"]
        out[f"when.{tag}.prediction_amplitude"] = entry["prediction_amplitude"]
        if entry.get("omission_amplitude") is not None:
            out[f"when.{tag}.omission_amplitude"] = entry["omission_amplitude"]
            out[f"when.{tag}.p_outcome"] = entry["p_outcome"]
    out["wall_time_s"] = metrics.get("wall_time_s")
    return out


def recompute(run_dir: Path) -> dict:
    """Recompute a finished run's metrics (and figures) from its files, e.g. after the measures
    changed; the offline-replay errors, known only during the run, are kept from metrics.json."""
    old = json.loads((run_dir / "metrics.json").read_text())
    task = make_task(validate_run_config(tomllib.loads((run_dir / CONFIG_FILE).read_text())))
    metrics = write_outputs(run_dir, task)
    for key in ("wall_time_s",):
        metrics[key] = old.get(key)
    if "phase_modulation" in old and "phase_modulation" in metrics:
        metrics["phase_modulation"]["what_offline"] = old["phase_modulation"].get("what_offline")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _diagnostic_scalars(run_dir: Path) -> dict[str, float]:
    """Scalars of the after-the-run diagnostics, where they were written into the run folder:
    ``decodability.json`` (``python -m analysis.decodability``) and ``convergence.json``
    (``python -m analysis.convergence``)."""
    out = {}
    file = run_dir / "decodability.json"
    if file.exists():
        result = json.loads(file.read_text())
        if result.get("test_r2") is not None:  # None: no outcome among the held-out trials
            out["decodability.test_r2"] = result["test_r2"]
        for key, value in result.get("omission_scaling", {}).items():
            if key != "n" and value is not None:
                out[f"decodability.omission_{key}"] = value
        for e in result["cues"]:
            if e["omission_amplitude"] is not None:
                out[f"decodability.{e['cue']}.omission_amplitude"] = e["omission_amplitude"]
            out[f"decodability.{e['cue']}.peak_error_ms"] = e["peak_error_ms"]
    file = run_dir / "convergence.json"
    if file.exists():
        for run in json.loads(file.read_text())["runs"]:
            for h in run["history"]:
                tag = f"convergence.eta{run['learning_rate']:g}.trials{h['trials']}"
                for key in ("slope", "intercept", "r"):
                    if h["scaling"].get(key) is not None:
                        out[f"{tag}.{key}"] = h["scaling"][key]
                for e in h["cues"]:
                    out[f"{tag}.{e['cue']}.output_over_p"] = e["amplitude"] / e["p_outcome"]
    return out


def _pooled_omission_fit(stats: dict) -> dict:
    """Claim 2 over seeds: the line through each (block, cue)'s omission-trial output averaged
    over the seeds, against its P(outcome) (``pooled_omission.slope`` etc., no sd)."""
    pairs = [(stats[key.replace("omission_amplitude", "p_outcome")]["mean"], s["mean"]) for key, s in stats.items()
             if key.startswith("when.") and key.endswith(".omission_amplitude") and s["mean"] is not None]
    if len(pairs) < 2:
        return {}
    fit = fit_line(*zip(*pairs))
    return {f"pooled_omission.{key}": {"mean": fit[key], "sd": None, "n": len(pairs), "of": len(pairs), "values": []}
            for key in ("slope", "intercept", "r") if fit[key] is not None}


def summarize(out: Path) -> dict:
    summary = {}
    for label_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        runs = sorted(label_dir.glob("seed*/metrics.json"))
        rows = [{**_scalars(json.loads(p.read_text())), **_diagnostic_scalars(p.parent)} for p in runs]
        if not rows:
            continue
        keys = sorted({k for r in rows for k in r})
        stats = {}
        for key in keys:
            values = np.array([r.get(key, np.nan) for r in rows], dtype=float)
            finite = values[np.isfinite(values)]
            stats[key] = {"mean": float(finite.mean()) if finite.size else None,
                          "sd": float(finite.std(ddof=1)) if finite.size > 1 else None,
                          "n": int(finite.size), "of": int(values.size), "values": values.tolist()}
        stats.update(_pooled_omission_fit(stats))
        summary[label_dir.name] = stats
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = []
    for label, stats in summary.items():
        lines += [f"## {label}", "", "| measure | mean +- sd | n (finite / runs) |", "|---|---:|---:|"]
        for key, s in stats.items():
            value = "-" if s["mean"] is None else f"{s['mean']:.3g}" + ("" if s["sd"] is None else f" +- {s['sd']:.2g}")
            lines.append(f"| {key} | {value} | {s['n']} / {s['of']} |")
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    return summary


def main(argv=None) -> int:
    use_file_backend()
    parser = argparse.ArgumentParser(prog="python -m reservoir.experiment.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", dest="assignments", type=parse_assignment, action="append", default=[])
    parser.add_argument("--label", default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--skip-finished", action="store_true",
                        help="keep the seeds whose run folder has a whole metrics.json instead of rerunning them")
    parser.add_argument("--recompute", action="store_true",
                        help="recompute the metrics of runs written before the current measures existed")
    args = parser.parse_args(argv)
    failed = 0
    if args.recompute:
        for run_dir in sorted(args.out.glob("*/seed*")):
            metrics_file = run_dir / "metrics.json"
            if metrics_file.exists() and "probability_scaling_omission" not in json.loads(metrics_file.read_text()):
                recompute(run_dir)
    if not args.summarize_only and not args.recompute:
        if args.experiment is None:
            parser.error("argument experiment: required unless --summarize-only")
        label = args.label or Path(args.experiment).stem
        try:
            spec = parse_sweep({"experiment": args.experiment, "seeds": args.seeds, "name": label,
                                "set": {".".join(path): value for path, value in args.assignments}}, where="arguments")
            sweep = build_sweep(spec, resolve_experiment(args.experiment, Path.cwd()))
        except (SweepError, ConfigError) as error:
            parser.error(str(error))
        result = run_sweep(sweep, args.out / label, workers=args.jobs, progress=sys.stderr.isatty(),
                           skip_finished=args.skip_finished)
        for row in result.rows:
            done = "done" if row["status"] == "complete" else row["status"]
            if row["point_wall_s"] is not None:
                done += f" in {row['point_wall_s']:.1f} s"
            print(f"{label} seed {row['seed']}: {done}" + (f" ({row['error']})" if row["error"] else ""), flush=True)
        failed = result.counts["failed"]
    summarize(args.out)
    print((args.out / "summary.md").read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
