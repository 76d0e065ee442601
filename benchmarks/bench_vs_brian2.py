"""Speed of the engine against Brian2 2.9 on the same networks, single thread against single thread.

Run::

    .venv/bin/python benchmarks/bench_vs_brian2.py                # full run (several minutes)
    .venv/bin/python benchmarks/bench_vs_brian2.py --quick        # small smoke run
    .venv/bin/python benchmarks/bench_vs_brian2.py --repeats 3    # repeats for every side

What is measured
----------------
Two networks, both simulated for 1 s with identical numerics on both sides (Brian2 runs the
network built by :mod:`reservoir.backends.brian2`, whose ``run_regularly`` code is the engine's
integration scheme operation for operation; spike detection, propagation and reset in the
engine's order):

(a) ``net.m`` of Izhikevich (2003): preset ``izhikevich2003``, N=1000, dense all-to-all (10^6
    synapses), Gaussian noise 5/2, delta synapses, 1 ms steps in the two-half-step scheme.
(b) The same model at N=10,000 with Bernoulli p=0.1 connectivity (self-connections allowed,
    sparse storage, about 10^7 synapses; weights rescaled to the in-degree by the preset's
    weight scheme).

Timings exclude network construction and compilation:

* engine: ``Simulation.run`` only. The network is built and the kernel loaded (a short warm-up
  run on another ``Simulation``) beforehand. The time includes drawing the noise (inside the
  kernel, xoshiro256++ with a ziggurat) and recording the spikes; the kernel is serial.
* Brian2 runtime, ``cython`` target: a short run compiles everything, the initial state is
  stored, and each repeat restores it and times a 1-s ``Network.run``. The table reports
  Brian2's own loop time (``device._last_run_time``: the time-step loop, after ``before_run``);
  the full ``net.run`` wall time, which also regenerates code and resolves namespaces, is given
  in brackets. Brian2's time includes its ``randn()`` and its ``SpikeMonitor``.
* Brian2 ``cpp_standalone``, single thread (``openmp_threads = 0``): the project is generated
  and compiled once in a temporary directory; the binary is run ``repeats`` times and the time
  is ``device._last_run_time`` (from ``results/last_run_info.txt``: the simulation loop only).

Each time is the median over the repeats (default 5 for the engine and the runtime target, 3
for standalone). Ratios are Brian2 time / engine time (above 1: the engine is faster). Mean
firing rates (Hz) of every side are shown so that equal activity is compared. Brian2 compiles
with its default flags (``-O3 -ffast-math -march=native``); the engine is Numba without fast
math. Results go to stdout and to ``benchmarks/results/vs_brian2.md`` (git-ignored).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from machine import describe, publish  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reservoir import Simulation, build_network, resolve_config  # noqa: E402
from reservoir.backends.brian2 import build_brian2_network  # noqa: E402


@dataclass
class Case:
    label: str
    overrides: dict
    n_neurons: int = 0
    n_synapses: int = 0
    n_steps: int = 0
    results: dict = field(default_factory=dict)  # side -> (times, rates, extra)


def make_cases(quick: bool) -> list[Case]:
    duration = 200.0 if quick else 1000.0
    large_n = 2000 if quick else 10_000
    return [
        Case("(a) net.m: N=1000 dense all-to-all, noise, 1 ms two half steps",
             {"duration_ms": duration}),
        Case(f"(b) N={large_n:,} Bernoulli p=0.1, noise, 1 ms two half steps",
             {"duration_ms": duration,
              "network": {"n_neurons": large_n,
                          "connectivity": {"rule": "bernoulli", "probability": 0.1,
                                           "allow_self_connections": True, "storage": "sparse"}}}),
    ]


def mean_rate(n_spikes: int, n_neurons: int, duration_s: float) -> float:
    return n_spikes / n_neurons / duration_s


def time_engine(network, n_steps: int, repeats: int):
    Simulation(network, seed=10_000).run(n_steps=min(n_steps, 20))  # loads (or compiles) the kernel
    times, rates = [], []
    duration_s = n_steps * network.dt_ms / 1000.0
    for seed in range(repeats):
        sim = Simulation(network, seed=seed)
        start = time.perf_counter()
        sim.run(n_steps=n_steps)
        times.append(time.perf_counter() - start)
        rates.append(mean_rate(sim.recorder.spike_ids.size, network.n_neurons, duration_s))
    return times, rates, {}


def time_brian2_runtime(network, n_steps: int, repeats: int):
    import brian2

    model = build_brian2_network(network, target="cython")
    model.network.store("initial")
    start = time.perf_counter()
    model.run(10, seed=10_000)  # code generation and Cython compilation (cached on disk)
    compile_s = time.perf_counter() - start
    times, walls, rates = [], [], []
    duration_s = n_steps * network.dt_ms / 1000.0
    for seed in range(repeats):
        model.network.restore("initial")
        start = time.perf_counter()
        model.run(n_steps, seed=seed)
        walls.append(time.perf_counter() - start)
        times.append(float(brian2.device._last_run_time))
        rates.append(mean_rate(model.spike_trains()[0].size, network.n_neurons, duration_s))
    return times, rates, {"wall": walls, "compile_s": compile_s}


def time_brian2_standalone(network, n_steps: int, repeats: int, build_root: str, name: str):
    import brian2
    from brian2 import device, prefs, set_device

    directory = os.path.join(build_root, name)
    set_device("cpp_standalone", build_on_run=False)
    prefs.devices.cpp_standalone.openmp_threads = 0
    try:
        model = build_brian2_network(network, target="cython")  # target ignored by the device
        model.run(n_steps)  # recorded into the project; no seed: a fresh one every binary run
        start = time.perf_counter()
        device.build(directory=directory, compile=True, run=True, debug=False, with_output=False)
        build_s = time.perf_counter() - start - float(device._last_run_time)
        duration_s = n_steps * network.dt_ms / 1000.0
        times = [float(device._last_run_time)]
        rates = [mean_rate(model.spike_trains()[0].size, network.n_neurons, duration_s)]
        for _ in range(repeats - 1):
            device.run(directory=directory, with_output=False)
            times.append(float(device._last_run_time))
            rates.append(mean_rate(model.spike_trains()[0].size, network.n_neurons, duration_s))
        return times, rates, {"build_s": build_s}
    finally:
        device.reinit()
        set_device("runtime")
        brian2.start_scope()


def fmt_time(times) -> str:
    return f"{statistics.median(times):.3f}"


def fmt_rate(rates) -> str:
    return f"{np.mean(rates):.2f}"


def render_table(cases: list[Case], repeats: dict, header: str) -> str:
    lines = [header, "",
             "| network | synapses | engine (s) | Brian2 cython (s) [net.run wall] | cython / engine "
             "| Brian2 cpp_standalone (s) | standalone / engine | rate engine / cython / standalone (Hz) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for case in cases:
        r = case.results
        engine_t = statistics.median(r["engine"][0])
        row = [case.label, f"{case.n_synapses:,}", fmt_time(r["engine"][0])]
        rate_parts = [fmt_rate(r["engine"][1])]
        if "cython" in r:
            times, rates, extra = r["cython"]
            row += [f"{fmt_time(times)} [{fmt_time(extra['wall'])}]",
                    f"{statistics.median(times) / engine_t:.1f}x"]
            rate_parts.append(fmt_rate(rates))
        else:
            row += ["-", "-"]
            rate_parts.append("-")
        if "standalone" in r:
            times, rates, _ = r["standalone"]
            row += [fmt_time(times), f"{statistics.median(times) / engine_t:.1f}x"]
            rate_parts.append(fmt_rate(rates))
        else:
            row += ["-", "-"]
            rate_parts.append("-")
        row.append(" / ".join(rate_parts))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", f"Medians over {repeats['engine']} (engine), {repeats['runtime']} (cython) and "
                  f"{repeats['standalone']} (standalone) runs of {cases[0].n_steps} steps each; single thread."]
    for case in cases:
        r = case.results
        notes = [f"engine runs {', '.join(f'{t:.3f}' for t in r['engine'][0])} s"]
        if "cython" in r:
            notes.append(f"cython loop {', '.join(f'{t:.3f}' for t in r['cython'][0])} s "
                         f"(first run with compilation {r['cython'][2]['compile_s']:.1f} s)")
        if "standalone" in r:
            notes.append(f"standalone {', '.join(f'{t:.3f}' for t in r['standalone'][0])} s "
                         f"(generation + compilation {r['standalone'][2]['build_s']:.0f} s)")
        lines.append(f"- {case.label.split(':')[0]}: " + "; ".join(notes))
    return "\n".join(lines)


def machine_header(quick: bool) -> str:
    return (f"## Engine vs Brian2{' (quick smoke run)' if quick else ''}\n\n"
            + describe(("Brian2",)) + ".")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per side (default: 5 engine and cython, 3 standalone)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200 ms, N=2000 for (b), 2 repeats (1 standalone)")
    parser.add_argument("--no-standalone", action="store_true", help="skip cpp_standalone")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "vs_brian2.md")
    args = parser.parse_args(argv)
    if args.repeats is not None:
        repeats = {"engine": args.repeats, "runtime": args.repeats, "standalone": args.repeats}
    elif args.quick:
        repeats = {"engine": 2, "runtime": 2, "standalone": 1}
    else:
        repeats = {"engine": 5, "runtime": 5, "standalone": 3}

    cases = make_cases(args.quick)
    with tempfile.TemporaryDirectory(prefix="bench_vs_brian2_") as build_root:
        for index, case in enumerate(cases):
            cfg = resolve_config("izhikevich2003", case.overrides)
            network = build_network(cfg.network, cfg.integration, seed=1)
            case.n_neurons, case.n_steps = network.n_neurons, cfg.n_steps
            case.n_synapses = network.connectivity.n_synapses
            print(f"{case.label}: {case.n_synapses:,} synapses, {case.n_steps} steps", flush=True)
            case.results["engine"] = time_engine(network, case.n_steps, repeats["engine"])
            print(f"  engine      median {fmt_time(case.results['engine'][0])} s, "
                  f"rate {fmt_rate(case.results['engine'][1])} Hz", flush=True)
            case.results["cython"] = time_brian2_runtime(network, case.n_steps, repeats["runtime"])
            print(f"  cython      median {fmt_time(case.results['cython'][0])} s, "
                  f"rate {fmt_rate(case.results['cython'][1])} Hz", flush=True)
            if not args.no_standalone:
                case.results["standalone"] = time_brian2_standalone(
                    network, case.n_steps, repeats["standalone"], build_root, f"case_{index}")
                print(f"  standalone  median {fmt_time(case.results['standalone'][0])} s, "
                      f"rate {fmt_rate(case.results['standalone'][1])} Hz", flush=True)
            del network
    table = render_table(cases, repeats, machine_header(args.quick))
    publish(table, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
