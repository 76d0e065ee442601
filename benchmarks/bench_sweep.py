"""Speed of ``reservoir sweep`` on a local Dask cluster against the same runs one after another.

Eight short what/when runs (the default experiment, shortened: ``--trials`` trials, seeds 1-8)
are timed (a) one after another in this process through ``run_experiment`` with the kernels
already compiled, and (b) as ``reservoir sweep --workers 2`` in a subprocess, cluster start-up,
warm-up and table included. Prints both, the ratio (target: <= 0.6 on 2 cores) and the load
average, which matters on a shared machine::

    .venv/bin/python benchmarks/bench_sweep.py                  # 3 repeats, medians
    .venv/bin/python benchmarks/bench_sweep.py --repeats 1 --trials 60

The kernels' on-disk cache is a fresh folder of this benchmark's (``NUMBA_CACHE_DIR``), filled
before anything is timed, so that source edits elsewhere in the checkout (which rename the
package's own cache folder) cannot make one side pay a compilation.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = tempfile.mkdtemp(prefix="bench-sweep-numba-")
os.environ.setdefault("NUMBA_CACHE_DIR", CACHE)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SWEEP = """
experiment = "whatwhen.toml"
seeds = [1, 2, 3, 4, 5, 6, 7, 8]
[set]
"network.n_neurons" = {n_neurons}
duration_ms = {duration}
"task.blocks.0.n_trials" = {trials}
"task.test_trials" = 10
"""


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=100, help="trials per run (each run ~15-30 s at 100)")
    parser.add_argument("--n-neurons", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from analysis.plots import use_file_backend
    from reservoir.experiment import run_experiment
    from reservoir.experiment.sweep import load_sweep, warm_up

    use_file_backend()
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    sweep_file = work / "bench.toml"
    sweep_file.write_text(SWEEP.format(n_neurons=args.n_neurons, duration=args.trials * 1200.0, trials=args.trials))
    sweep = load_sweep(sweep_file)
    print(f"{len(sweep.points)} runs: what/when, N = {args.n_neurons}, {args.trials} trials; "
          f"{os.cpu_count()} CPUs; kernel cache {os.environ['NUMBA_CACHE_DIR']}", flush=True)
    started = time.perf_counter()
    warm_up(sweep, sweep.points[0])  # compiles into the cache; not timed
    print(f"kernels compiled in {time.perf_counter() - started:.1f} s (not timed); load {load()}", flush=True)

    from reservoir.experiment import load_experiment

    sequential, parallel = [], []
    for repeat in range(args.repeats):
        out = work / f"sequential{repeat}"
        print(f"[{repeat + 1}/{args.repeats}] load before: {load()}", flush=True)
        started = time.perf_counter()
        for point in sweep.points:
            run_experiment(load_experiment(sweep.experiment, point.overrides), out / point.folder, progress=False,
                           overwrite=True)
        sequential.append(time.perf_counter() - started)
        print(f"  (a) one after another: {sequential[-1]:.1f} s; load {load()}", flush=True)

        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "reservoir", "sweep", str(sweep_file), "--workers", str(args.workers),
                        "--out", str(work / f"sweep{repeat}"), "--no-progress"], check=True, cwd=ROOT)
        parallel.append(time.perf_counter() - started)
        print(f"  (b) reservoir sweep --workers {args.workers}: {parallel[-1]:.1f} s "
              f"(ratio {parallel[-1] / sequential[-1]:.2f}); load {load()}", flush=True)

    a, b = statistics.median(sequential), statistics.median(parallel)
    print(f"median of {args.repeats}: one after another {a:.1f} s, sweep {b:.1f} s, ratio {b / a:.2f} "
          f"(target <= 0.6)")
    print(f"all: sequential {[round(x, 1) for x in sequential]}, sweep {[round(x, 1) for x in parallel]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
