"""The default experiment end to end, as a user runs it: wall time split into start-up,
simulation and analysis, and peak memory (RSS) of each phase.

Each repeat runs ``reservoir run --no-progress --out TMP [--set ...]`` in a child process and
samples its RSS every 50 ms. The simulation phase is the run's own ``wall_time_s`` (from the first
segment to the closed run file); start-up is the median time of a child that only imports what
``reservoir run`` imports (Python, NumPy, Numba, SciPy, h5py, Matplotlib, the package) and loads
the cached kernels' module; the analysis (metrics and figures) is the rest. The end of the
simulation is not observable from outside, so the simulation-phase peak RSS is the peak of the
samples up to start-up + simulation time, and the analysis peak that of the samples after.

    .venv/bin/python benchmarks/bench_default_run.py --repeats 3
    .venv/bin/python benchmarks/bench_default_run.py --repeats 1 --set task.blocks.0.n_trials=100 --set duration_ms=120000

The kernel cache must be warm (run ``reservoir run`` once before), or the first repeat includes
compilation.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ("import reservoir.experiment.cli, reservoir.experiment.runner, reservoir.kernels, paradigms, "
           "analysis.figures")


def start_up_s(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS], cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def one_run(overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [str(Path(sys.executable).parent / "reservoir"), "run", "--no-progress", "--out", str(out)]
        for item in overrides:
            command += ["--set", item]
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        process, samples = psutil.Process(child.pid), []
        while child.poll() is None:
            try:
                samples.append((time.perf_counter() - start, process.memory_info().rss))
            except psutil.Error:
                break
            time.sleep(0.05)
        total = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"reservoir run failed: {child.stderr.read().decode()[-2000:]}")
        metrics = json.loads((out / "metrics.json").read_text())
        size = (out / "run.h5").stat().st_size
    return {"total_s": total, "simulation_s": metrics["wall_time_s"], "samples": samples, "run_h5_bytes": size}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to reservoir run")
    args = parser.parse_args(argv)
    startup = start_up_s(max(3, args.repeats))
    runs = [one_run(args.set) for _ in range(args.repeats)]
    total = statistics.median(r["total_s"] for r in runs)
    simulation = statistics.median(r["simulation_s"] for r in runs)
    analysis = total - simulation - startup
    peaks_sim, peaks_after = [], []
    for r in runs:
        edge = startup + r["simulation_s"]
        peaks_sim.append(max((rss for t, rss in r["samples"] if t <= edge), default=0))
        peaks_after.append(max((rss for t, rss in r["samples"] if t > edge), default=0))
    mib = 2 ** 20
    print(f"default run end to end ({args.repeats} repeats, medians; overrides: {args.set or 'none'})")
    print("| phase | wall (s) | share | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    print(f"| start-up (imports) | {startup:.1f} | {startup / total:.0%} | |")
    print(f"| simulation | {simulation:.1f} | {simulation / total:.0%} | {statistics.median(peaks_sim) / mib:.0f} |")
    print(f"| analysis (metrics, figures) | {analysis:.1f} | {analysis / total:.0%} | "
          f"{statistics.median(peaks_after) / mib:.0f} |")
    print(f"| **total** | **{total:.1f}** | | **{max(statistics.median(peaks_sim), statistics.median(peaks_after)) / mib:.0f}** |")
    print(f"run.h5: {runs[0]['run_h5_bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
