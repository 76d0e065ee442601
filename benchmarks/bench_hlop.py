"""What HLOP (and the SVD reference) add to a permuted-digits run's simulation time.

    .venv/bin/python benchmarks/bench_hlop.py [--tasks 10] [--repeats 3]

Runs `experiments/permuted_digits*.toml` (unprotected, HLOP rate, HLOP spiking, SVD) one after
another, `--repeats` times in alternation, and prints the median simulation-phase wall time of
each (the runner's `wall_time_s`: compilation excluded after the first round, analysis
excluded), the ratio to the unprotected run, and the median whole-command time. The targets
(issue 22): HLOP at most 1.5x the unprotected run; the 10-task HLOP run at most 3 minutes.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {"unprotected": "permuted_digits_unprotected.toml", "hlop (rate)": "permuted_digits.toml",
         "hlop (spiking)": "permuted_digits_spiking.toml", "svd": "permuted_digits_svd.toml"}


def run_once(name: str, n_tasks: int, out: Path) -> tuple[float, float]:
    import json

    duration = (n_tasks * 1257 + n_tasks * 540) * 80.0
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reservoir", "run", str(ROOT / "experiments" / name), "--set",
                    f"task.n_tasks={n_tasks}", "--set", f"duration_ms={duration}", "--out", str(out), "--overwrite",
                    "--no-progress"], check=True, capture_output=True)
    whole = time.perf_counter() - started
    return json.loads((out / "metrics.json").read_text())["wall_time_s"], whole


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=list(FILES), default=list(FILES),
                        help="methods to time (unprotected is always included)")
    args = parser.parse_args(argv)
    files = {label: FILES[label] for label in FILES if label in args.methods or label == "unprotected"}
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in files}
    with tempfile.TemporaryDirectory() as tmp:
        for label, name in files.items():  # a first round compiles the kernels; not counted
            run_once(name, 1, Path(tmp) / "warm")
        for _ in range(args.repeats):
            for label, name in files.items():
                times[label].append(run_once(name, args.tasks, Path(tmp) / label.replace(" ", "_")))
    base = statistics.median(t[0] for t in times["unprotected"])
    print(f"permuted digits, {args.tasks} tasks, medians of {args.repeats} runs (one at a time)")
    print("| method | simulation (s) | / unprotected | whole command (s) |")
    print("|---|---:|---:|---:|")
    for label, values in times.items():
        simulation = statistics.median(t[0] for t in values)
        whole = statistics.median(t[1] for t in values)
        print(f"| {label} | {simulation:.1f} | {simulation / base:.2f}x | {whole:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
