"""The regime table: what carries time in each what/when run, as one Markdown row per run.

For each run folder it reads the resolved configuration (which mechanisms are on, the noise),
``metrics.json`` (firing rates, wall time) and ``decodability.json`` (the ideal readout,
written by ``python -m analysis.decodability``), and prints a table with, per run: the
mechanism, the background noise, the ideal readout's omission slope / intercept / r against
P(outcome), its peak and half-rise against the latency per cue, the mean firing rate and the
cost per simulated second (the run's wall time over its simulated time, learning and analysis
included). Runs without ``decodability.json`` are listed with the ceiling missing.

``python -m analysis.regime_table runs/sweeps/reservoir_clock_regimes/*/seed1 --figure regimes.png``
(the figure: the ceiling's omission slope against the noise, one line per mechanism).
"""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path


def mechanism_label(config: dict) -> str:
    """A short name of what may carry time in this run: time basis, adaptation, slow synapses,
    and the readout trace bank's time constants."""
    network, task = config.get("network", {}), config.get("task", {})
    parts = []
    basis = task.get("time_basis")
    if basis and basis.get("amplitude", 0) > 0:
        parts.append("time basis")
    adaptation = network.get("adaptation", {})
    if adaptation.get("fraction", 0) > 0:
        parts.append(f"adaptation {adaptation['fraction']:g} (a {adaptation.get('a_min', 0.002):g}-"
                     f"{adaptation.get('a_max', 0.02):g})")
    slow = network.get("slow_synapses", {})
    if slow.get("fraction", 0) > 0:
        parts.append(f"slow synapses {slow['fraction']:g} ({slow.get('tau_ms', 100.0):g} ms)")
    if task.get("cue_hold_amplitude", 0):
        parts.append(f"cue held at {task['cue_hold_amplitude']:g}")
    if not parts:
        parts.append("pulse only")
    taus = []
    for trace in config.get("readouts", {}).get("traces", []):
        taus.append(f"{trace.get('tau_ms', trace.get('tau_decay_ms'))}".rstrip("0").rstrip("."))
    return ", ".join(parts) + f"; traces {'/'.join(taus)} ms"


def regime_row(folder: Path) -> dict:
    """The measures of one run folder (missing ones are None)."""
    config = tomllib.loads((folder / "config.resolved.toml").read_text())
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").exists() else {}
    ceiling_path = folder / "decodability.json"
    ceiling = json.loads(ceiling_path.read_text()) if ceiling_path.exists() else None
    noise = config.get("network", {}).get("noise", {})
    duration_s = float(config.get("duration_ms", 0.0)) / 1000.0
    wall = metrics.get("wall_time_s")
    row = {"run": str(folder), "mechanism": mechanism_label(config),
           "noise": (noise.get("excitatory_std", 0.0), noise.get("inhibitory_std", 0.0)),
           "rate_hz": metrics.get("mean_rate_hz"),
           "cost_s_per_s": wall / duration_s if wall and duration_s else None,
           "slope": None, "intercept": None, "r": None, "timing": None, "note": ""}
    if ceiling:
        fit = ceiling.get("omission_scaling") or {}
        row.update(slope=fit.get("slope"), intercept=fit.get("intercept"), r=fit.get("r"))
        row["timing"] = [(e["cue"], e["peak_error_ms"], -e["lead_ms"]) for e in ceiling.get("cues", [])]
        status = ceiling.get("run", {})
        if status.get("status", "complete") != "complete":  # the ceiling of the trials recorded whole
            row["note"] = (f"run {status['status']} at {status.get('completed_ms', 0) / 1000:.0f} s; ceiling from "
                           f"{ceiling.get('n_train', 0) + ceiling.get('n_test', 0)} trials")
    return row


def _number(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def regime_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table, in the order given."""
    lines = ["| mechanism | noise E / I | ceiling slope / intercept / r | peak, half-rise vs L (ms) per cue "
             "| rate (Hz) | cost (s per simulated s) | note |",
             "|---|---|---|---|---:|---:|---|"]
    for row in rows:
        timing = ("n/a" if row["timing"] is None else
                  "; ".join(f"{cue} {peak + 0.0:+.0f}, {rise + 0.0:+.0f}" for cue, peak, rise in row["timing"]))
        lines.append(f"| {row['mechanism']} | {row['noise'][0]:g} / {row['noise'][1]:g} | "
                     f"{_number(row['slope'], '.2f')} / {_number(row['intercept'], '+.2f')} / {_number(row['r'], '.3f')} | "
                     f"{timing} | {_number(row['rate_hz'], '.1f')} | {_number(row['cost_s_per_s'], '.3f')} | {row['note']} |")
    return "\n".join(lines) + "\n"


def regime_figure(rows: list[dict], path: Path) -> Path:
    """The ideal readout's omission slope against the background noise, one line per mechanism
    (the dashed line is claim 2's slope target)."""
    from .claims import WHATWHEN
    from .plots import plt, save, use_file_backend
    use_file_backend()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for mechanism in sorted({r["mechanism"] for r in rows}):
        mine = sorted((r for r in rows if r["mechanism"] == mechanism and r["slope"] is not None),
                      key=lambda r: r["noise"][0])
        if mine:
            ax.plot([r["noise"][0] for r in mine], [r["slope"] for r in mine], "o-", label=mechanism)
    ax.axhline(WHATWHEN.omission_slope_min, color="k", ls="--", lw=0.8, label=f"claim 2 target (slope {WHATWHEN.omission_slope_min:g})")
    ax.set_xlabel("background noise, excitatory std (inhibitory = half)")
    ax.set_ylabel("ideal readout: omission output vs P(outcome), slope")
    ax.set_title("What keeps time after a cue pulse: the ceiling against noise")
    ax.legend(fontsize=7)
    return save(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.regime_table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="what/when run folders")
    parser.add_argument("--figure", type=Path, default=None, help="also write the ceiling-against-noise figure here")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.runs if not (f / "config.resolved.toml").exists()]
    if missing:
        parser.error(f"not run folders (no config.resolved.toml): {', '.join(missing)}")
    rows = [regime_row(folder) for folder in args.runs]
    rows.sort(key=lambda r: (r["mechanism"], r["noise"]))
    sys.stdout.write(regime_markdown(rows))
    if args.figure is not None:
        print(f"figure: {regime_figure(rows, args.figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
