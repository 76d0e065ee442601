"""Compile time and on-disk cache of the kernels, as a user meets them: whole `reservoir` commands.

Run::

    .venv/bin/python benchmarks/bench_compile.py                   # this checkout, 3 repeats
    .venv/bin/python benchmarks/bench_compile.py --repo /path/to/other/checkout   # compare a version

Each case is one command line run in a fresh Python process (imports, compilation or cache
load, a tiny simulation, the run folder with its figures):

(a) ``simulate``: `net.m` (preset ``izhikevich2003``) for 100 ms - the network kernel alone;
(b) ``whatwhen``: the default what/when experiment cut to 2 trials of a 100-neuron reservoir -
    the kernel with three-factor readouts, offline replay;
(c) ``force``: ``experiments/force_sine.toml`` cut to 300 ms of a 200-neuron reservoir - the
    kernel with an RLS readout and feedback.

(d), (e) the network kernel alone, in a fresh process through the public engine API (the same in
older checkouts): the time of the first ``Simulation.run`` of 10 steps of a 100-neuron network,
without readouts (d) and with three-factor, RLS and frozen readout groups (e). Only *cold* is
measured there; it is the kernel's compilation without imports, run folders or figures.

*cold*: an empty ``NUMBA_CACHE_DIR``, so every kernel is compiled (and written to the cache);
*warm*: the same command again on that cache. cold - warm is the compilation time; the cache
files written by the cold run and the number the warm run adds (0 when every kernel loads from
the cache) are shown. Medians over ``--repeats`` (a fresh cache directory per repeat). The
command is ``python -m reservoir`` where the checkout has ``reservoir/__main__.py``, else
``python -m reservoir.cli`` (older checkouts). Results go to stdout and to
``benchmarks/results/compile.md`` (git-ignored).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import describe, publish  # noqa: E402

CASES = {
    "(a) simulate net.m, 100 ms": ["simulate", "--preset", "izhikevich2003", "--duration-ms", "100", "--seed", "1"],
    "(b) what/when, 2 trials, N = 100": ["run", "{repo}/experiments/whatwhen.toml", "--set", "network.n_neurons=100",
                                         "--set", "task.blocks.0.n_trials=2", "--set", "duration_ms=2400",
                                         "--set", "readouts.snapshot_every_ms=1200"],
    "(c) FORCE sine, 300 ms, N = 200": ["run", "{repo}/experiments/force_sine.toml", "--set", "network.n_neurons=200",
                                        "--set", "duration_ms=300", "--set", "task.learn_start_ms=100",
                                        "--set", "task.learn_stop_ms=200"],
}


KERNEL_ONLY = {
    "(d) kernel compile, no readouts": "",
    "(e) kernel compile, three-factor + RLS + frozen readouts": (
        "r = Readouts(ReadoutsConfig.model_validate({'groups': [{'name': 'a', 'n_units': 2}, "
        "{'name': 'b', 'rule': 'rls'}, {'name': 'c', 'rule': 'frozen'}]}), 100, net.dt_ms, seed=1); "
        "kw = dict(readouts=r, teacher=Teacher(np.ones((20, 4))))"),
}
KERNEL_SCRIPT = """
import time
import numpy as np
from reservoir import Simulation, build_network, resolve_config
from reservoir.readouts import Readouts, ReadoutsConfig, Teacher
cfg = resolve_config("izhikevich2003", {{"duration_ms": 10, "network": {{"n_neurons": 100}}}})
net = build_network(cfg.network, cfg.integration, seed=1)
kw = {{}}
{setup}
sim = Simulation(net, seed=1, **kw)
start = time.perf_counter()
sim.run(n_steps=10)
print(time.perf_counter() - start)
"""


def kernel_compile(repo: Path, setup: str, cache: Path) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(repo), "NUMBA_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", KERNEL_SCRIPT.format(setup=setup)], env=env, capture_output=True,
                            text=True, cwd=str(repo))
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return float(result.stdout.split()[-1])


def cache_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


def run_command(repo: Path, args: list[str], cache: Path, out: Path) -> float:
    module = "reservoir" if (repo / "reservoir" / "__main__.py").exists() else "reservoir.cli"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", module, *[a.format(repo=repo) for a in args], "--out", str(out), "--no-progress"]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(repo))
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def measure(repo: Path, repeats: int) -> dict:
    results = {}
    for label, args in CASES.items():
        cold, warm, written, added = [], [], [], []
        for repeat in range(repeats):
            with tempfile.TemporaryDirectory(prefix="bench_compile_") as tmp:
                cache = Path(tmp) / "cache"
                cold.append(run_command(repo, args, cache, Path(tmp) / "cold"))
                written.append(cache_files(cache))
                warm.append(run_command(repo, args, cache, Path(tmp) / "warm"))
                added.append(cache_files(cache) - written[-1])
            print(f"  {label}, repeat {repeat + 1}/{repeats}: cold {cold[-1]:.2f} s, warm {warm[-1]:.2f} s, "
                  f"{written[-1]} cache files, +{added[-1]} on the warm run", flush=True)
        results[label] = {"cold": cold, "warm": warm, "written": written, "added": added}
    for label, setup in KERNEL_ONLY.items():
        cold = []
        for repeat in range(repeats):
            with tempfile.TemporaryDirectory(prefix="bench_compile_") as tmp:
                cold.append(kernel_compile(repo, setup, Path(tmp)))
            print(f"  {label}, repeat {repeat + 1}/{repeats}: {cold[-1]:.2f} s", flush=True)
        results[label] = {"cold": cold}
    return results


def render(repo: Path, results: dict, repeats: int) -> str:
    lines = ["## Compile time and cache", "", describe(cores_note=" (one thread used)") + ".", "",
             f"Checkout: `{repo}`. Medians of {repeats} runs; each run a fresh process.", "",
             "| command | cold (compile) | warm (cache) | compilation = cold - warm | cache files | added when warm |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, r in results.items():
        cold = statistics.median(r["cold"])
        if "warm" not in r:
            lines.append(f"| {label} | {cold:.2f} s | - | {cold:.2f} s | - | - |")
            continue
        warm = statistics.median(r["warm"])
        lines.append(f"| {label} | {cold:.2f} s | {warm:.2f} s | {cold - warm:.2f} s | {max(r['written'])} "
                     f"| {max(r['added'])} |")
    for label, r in results.items():
        lines.append(f"- {label.split(' ', 1)[0]}: cold " + ", ".join(f"{t:.2f}" for t in r["cold"]) + " s"
                     + ("; warm " + ", ".join(f"{t:.2f}" for t in r["warm"]) + " s" if "warm" in r else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose reservoir package is measured")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per case (fresh cache each)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "compile.md")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    results = measure(repo, args.repeats)
    publish(render(repo, results, args.repeats), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
