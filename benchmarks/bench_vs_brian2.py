"""Speed of the engine against Brian2 2.9 on the same networks, at one or more thread counts.

Run::

    .venv/bin/python benchmarks/bench_vs_brian2.py                  # full run, 1 thread (several minutes)
    .venv/bin/python benchmarks/bench_vs_brian2.py --threads 1 2    # a table per thread count, and the scaling
    .venv/bin/python benchmarks/bench_vs_brian2.py --quick          # small smoke run
    .venv/bin/python benchmarks/bench_vs_brian2.py --repeats 3      # repeats for every side

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

Threads
-------
``--threads T [T ...]`` (default 1) gives one table per thread count ``T``:

* the engine on ``T`` threads: ``Simulation(network, ..., threads=T)`` (the keyword is passed
  only when ``T != 1``, so ``T = 1`` also runs an engine without it; an engine without it is
  not run at ``T > 1`` and the table says so);
* Brian2's runtime ``cython`` target, which is single-threaded only: the same single-thread
  time is compared with the engine at every ``T``;
* Brian2 ``cpp_standalone`` with ``prefs.devices.cpp_standalone.openmp_threads = T``. At ``T = 1``
  the ratio is taken against ``openmp_threads = 0`` instead: 0 is Brian2's default and generates
  its plain serial C++ (no OpenMP pragmas, no runtime, no per-thread bookkeeping), so it is the
  fastest single-thread Brian2 and the fair peer of a single-thread engine; ``openmp_threads =
  1`` (the OpenMP code on one thread, the baseline of Brian2's own scaling) is measured as well
  and shown next to it, with the difference between the two.

Before measuring with ``T > 1`` the script checks that the cores are free (``T`` copies of a
compute-only loop on ``T`` threads against one copy, :func:`engine_threads.core_check`) and
prints the result with the tables: on a machine whose cores are taken by another load the
multi-thread numbers say little. With more than one ``T`` a last table gives the thread
scaling: engine time at ``T = 1`` / time at ``T`` (and the same for standalone, from
``openmp_threads = 1`` and from ``0``). The issue's targets are printed next to the numbers:
(b) two threads at least 1.7x one thread, the engine at least 3x Brian2 cython and at least 2x
cpp_standalone at the same thread count (the cython target is checked at every ``T``); (a) at
least 10x cython and 4x cpp_standalone on a single thread. They apply to the full-size run only
(``--quick`` shrinks (b) to N=2000 and both runs to 200 ms).

Timings
-------
Timings exclude network construction and compilation:

* engine: ``Simulation.run`` only. The network is built and the kernel loaded (a short warm-up
  run on another ``Simulation`` with the same thread count) beforehand. The time includes
  drawing the noise (inside the kernel, xoshiro256++ with a ziggurat) and recording the spikes.
* Brian2 runtime, ``cython`` target: a short run compiles everything, the initial state is
  stored, and each repeat restores it and times a 1-s ``Network.run``. The table reports
  Brian2's own loop time (``device._last_run_time``: the time-step loop, after ``before_run``);
  the full ``net.run`` wall time, which also regenerates code and resolves namespaces, is given
  in brackets. Brian2's time includes its ``randn()`` and its ``SpikeMonitor``.
* Brian2 ``cpp_standalone``: for each ``openmp_threads`` setting the project is generated and
  compiled once (one directory per network, reused across settings, so only changed files are
  recompiled); the binary is run ``repeats`` times and the time is ``device._last_run_time``
  (from ``results/last_run_info.txt``: the simulation loop only).

Each time is the median over the repeats (default 5 for the engine and the runtime target, 3
for standalone). Ratios are Brian2 time / engine time (above 1: the engine is faster). Mean
firing rates (Hz) of every side are shown so that equal activity is compared. Brian2 compiles
with its default flags (``-O3 -ffast-math -march=native``, and ``-fopenmp`` when
``openmp_threads > 0``); the engine is Numba without fast math. ``NUMBA_NUM_THREADS`` and
``OMP_NUM_THREADS`` default to the largest ``T`` (BLAS stays on one thread). Results go to
stdout and to ``benchmarks/results/vs_brian2.md`` (git-ignored).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_threads import (add_threads_argument, check_threads, configure_threads, core_check_note,  # noqa: E402
                            large_network_overrides, make_simulation)

configure_threads()  # before NumPy and Numba: sizes NUMBA_NUM_THREADS / OMP_NUM_THREADS from --threads

import numpy as np  # noqa: E402
from machine import describe, publish  # noqa: E402

from reservoir.parallel import WORK_BLOCK_NEURONS, n_blocks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reservoir import build_network, resolve_config  # noqa: E402
from reservoir.backends.brian2 import build_brian2_network  # noqa: E402

# the targets (ratios Brian2 / engine, and engine scaling); None: no target
TARGETS = {
    "netm": {"cython": (10.0, "single"), "standalone": (4.0, "single"), "scaling": None},
    "large": {"cython": (3.0, "every"), "standalone": (2.0, "every"), "scaling": (1.7, 2)},
}


@dataclass
class Case:
    key: str
    short: str
    label: str
    overrides: dict
    n_neurons: int = 0
    n_synapses: int = 0
    n_steps: int = 0
    engine: dict = field(default_factory=dict)      # T -> (times, rates, extra)
    cython: tuple | None = None                     # (times, rates, extra)
    standalone: dict = field(default_factory=dict)  # openmp_threads -> (times, rates, extra)
    errors: dict = field(default_factory=dict)      # side -> message


def make_cases(quick: bool) -> list[Case]:
    duration = 200.0 if quick else 1000.0
    large_n = 2000 if quick else 10_000
    return [
        Case("netm", "(a) net.m", "(a) net.m: N=1000 dense all-to-all, noise, 1 ms two half steps",
             {"duration_ms": duration}),
        Case("large", f"(b) N={large_n:,} p=0.1", f"(b) N={large_n:,} Bernoulli p=0.1, noise, 1 ms two half steps",
             large_network_overrides(large_n, duration)),
    ]


def mean_rate(n_spikes: int, n_neurons: int, duration_s: float) -> float:
    return n_spikes / n_neurons / duration_s


def time_engine(network, n_steps: int, repeats: int, threads: int = 1):
    """``threads`` is capped at the network's work blocks (1024 neurons each: net.m has one, so it
    always runs on one thread; the notes say so)."""
    threads = min(threads, n_blocks(network.n_neurons))
    make_simulation(network, threads, seed=10_000).run(n_steps=min(n_steps, 20))  # loads (or compiles) the kernel
    times, rates = [], []
    duration_s = n_steps * network.dt_ms / 1000.0
    for seed in range(repeats):
        sim = make_simulation(network, threads, seed=seed)
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


def time_brian2_standalone(network, n_steps: int, repeats: int, directory: str, openmp_threads: int = 0):
    """Generate, compile and run the project ``repeats`` times with ``openmp_threads`` (0: no OpenMP)."""
    import brian2
    from brian2 import device, prefs, set_device

    set_device("cpp_standalone", build_on_run=False)
    prefs.devices.cpp_standalone.openmp_threads = int(openmp_threads)
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
        prefs.devices.cpp_standalone.openmp_threads = 0
        set_device("runtime")
        brian2.start_scope()


def standalone_settings(threads: list[int]) -> list[int]:
    """``openmp_threads`` values to build: 0 (serial code, the T = 1 peer) and 1 when T = 1 is asked; every T > 1."""
    settings = []
    if 1 in threads:
        settings += [0, 1]
    settings += [t for t in threads if t > 1]
    return settings


def standalone_peer(threads: int) -> int:
    """The ``openmp_threads`` setting compared with the engine on ``threads`` threads."""
    return 0 if threads == 1 else threads


def median(times) -> float:
    return statistics.median(times)


def fmt_seconds(value: float) -> str:
    return f"{value:.3f}" if value >= 0.1 else f"{value:.4f}"


def fmt_time(times) -> str:
    return fmt_seconds(median(times))


def fmt_rate(rates) -> str:
    return f"{np.mean(rates):.2f}"


def verdict(value: float, target: float, applies: bool) -> str:
    if not applies:
        return f"target >= {target:g}x at full size"
    return f"target >= {target:g}x: {'met' if value >= target else 'NOT met'}"


def ratio_cell(brian_times, engine_times, target_spec, threads: int, applies: bool) -> str:
    ratio = median(brian_times) / median(engine_times)
    cell = f"{ratio:.1f}x"
    if target_spec is not None:
        target, scope = target_spec
        if scope == "every" or threads == 1:
            cell += f" ({verdict(ratio, target, applies)})"
    return cell


def scaling_cell(case: Case, threads: int, applies: bool) -> str:
    if 1 not in case.engine or threads not in case.engine:
        return "-"
    scaling = median(case.engine[1][0]) / median(case.engine[threads][0])
    cell = f"{scaling:.2f}x"
    spec = TARGETS[case.key]["scaling"]
    if spec is not None and spec[1] == threads:
        cell += f" ({verdict(scaling, spec[0], applies)})"
    return cell


def render_thread_table(cases: list[Case], threads: int, applies: bool) -> list[str]:
    peer = standalone_peer(threads)
    peer_name = "openmp_threads = 0" if peer == 0 else f"openmp_threads = {peer}"
    lines = [f"### {threads} thread{'s' if threads > 1 else ''}", "",
             f"| network | synapses | engine, {threads} thread{'s' if threads > 1 else ''} (s) "
             f"| engine scaling T=1 / T "
             f"| Brian2 cython, 1 thread (s) [net.run wall] | cython / engine "
             f"| Brian2 cpp_standalone, {peer_name} (s) | standalone / engine "
             f"| rate engine / cython / standalone (Hz) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in cases:
        targets = TARGETS[case.key]
        engine = case.engine.get(threads)
        row = [case.label, f"{case.n_synapses:,}"]
        rates = []
        if engine is not None:
            row += [fmt_time(engine[0]), scaling_cell(case, threads, applies) if threads != 1 else "1.00x"]
            rates.append(fmt_rate(engine[1]))
        else:
            row += ["n/a", "-"]
            rates.append("-")
        if case.cython is not None:
            times, r, extra = case.cython
            row += [f"{fmt_time(times)} [{fmt_time(extra['wall'])}]",
                    ratio_cell(times, engine[0], targets["cython"], threads, applies) if engine else "-"]
            rates.append(fmt_rate(r))
        else:
            row += ["-", "-"]
            rates.append("-")
        standalone = case.standalone.get(peer)
        if standalone is not None:
            cell = fmt_time(standalone[0])
            if threads == 1 and 1 in case.standalone:
                cell += f" [openmp_threads = 1: {fmt_time(case.standalone[1][0])}]"
            row += [cell, ratio_cell(standalone[0], engine[0], targets["standalone"], threads, applies)
                    if engine else "-"]
            rates.append(fmt_rate(standalone[1]))
        else:
            row += ["-", "-"]
            rates.append("-")
        row.append(" / ".join(rates))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def render_scaling_table(cases: list[Case], threads: list[int], applies: bool) -> list[str]:
    lines = ["### Thread scaling (time at 1 thread / time at T)", "",
             "| network | T | engine (s) | engine scaling | Brian2 standalone (s) | standalone scaling from "
             "openmp_threads = 1 | from openmp_threads = 0 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        for t in threads:
            engine = case.engine.get(t)
            row = [case.short, str(t), fmt_time(engine[0]) if engine else "n/a",
                   "1.00x" if (t == 1 and engine) else scaling_cell(case, t, applies)]
            setting = 1 if t == 1 else t
            standalone = case.standalone.get(setting)
            if standalone is not None:
                base1, base0 = case.standalone.get(1), case.standalone.get(0)
                row += [f"{fmt_time(standalone[0])} (openmp_threads = {setting})",
                        f"{median(base1[0]) / median(standalone[0]):.2f}x" if base1 else "-",
                        f"{median(base0[0]) / median(standalone[0]):.2f}x" if base0 else "-"]
            else:
                row += ["-", "-", "-"]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def render(cases: list[Case], repeats: dict, threads: list[int], quick: bool, core_note: str = "") -> str:
    applies = not quick
    lines = [machine_header(quick), ""] + ([core_note, ""] if core_note else [])
    for t in threads:
        lines += render_thread_table(cases, t, applies) + [""]
    if len(threads) > 1:
        lines += render_scaling_table(cases, threads, applies) + [""]
    lines += [f"Medians over {repeats['engine']} (engine), {repeats['runtime']} (cython) and "
              f"{repeats['standalone']} (standalone) runs of {cases[0].n_steps} steps each. Brian2's cython "
              "target is single-threaded: the same time is compared with the engine at every T. At T = 1 the "
              "standalone peer is openmp_threads = 0 (Brian2's serial code); openmp_threads = 1 is shown in brackets."
              + ("" if applies else " Quick smoke run: the targets apply to the full-size run only.")]
    for case in cases:
        notes = []
        for t in threads:
            if t in case.engine:
                notes.append(f"engine {t}T runs {', '.join(fmt_seconds(x) for x in case.engine[t][0])} s")
                if t > n_blocks(case.n_neurons):
                    notes.append(f"engine at {t}T: N = {case.n_neurons} is {n_blocks(case.n_neurons)} work block(s) of "
                                 f"{WORK_BLOCK_NEURONS} neurons, so it ran on {n_blocks(case.n_neurons)} thread(s)")
        if case.cython is not None:
            notes.append(f"cython loop {', '.join(fmt_seconds(x) for x in case.cython[0])} s "
                         f"(first run with compilation {case.cython[2]['compile_s']:.1f} s)")
        for setting, (times, _, extra) in sorted(case.standalone.items()):
            notes.append(f"standalone openmp_threads = {setting}: {', '.join(fmt_seconds(x) for x in times)} s "
                         f"(generation + compilation {extra['build_s']:.0f} s)")
        if 0 in case.standalone and 1 in case.standalone:
            t0, t1 = median(case.standalone[0][0]), median(case.standalone[1][0])
            difference = (t1 - t0) / t0
            notes.append(f"standalone on one thread: OpenMP code {fmt_seconds(t1)} s vs serial code "
                         f"{fmt_seconds(t0)} s "
                         f"({difference:+.0%}{', a notable difference' if abs(difference) > 0.1 else ''})")
        for side, message in case.errors.items():
            notes.append(f"{side} failed: {message}")
        lines.append(f"- {case.short}: " + "; ".join(notes))
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
    add_threads_argument(parser)
    parser.add_argument("--no-standalone", action="store_true", help="skip cpp_standalone")
    parser.add_argument("--cases", nargs="+", choices=("a", "b"), default=["a", "b"],
                        help="networks to run: a (net.m), b (N=10k p=0.1); default both")
    parser.add_argument("--no-cython", action="store_true", help="skip Brian2's runtime cython target")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "vs_brian2.md")
    args = parser.parse_args(argv)
    threads = check_threads(parser, args.threads)
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be positive")
        repeats = {"engine": args.repeats, "runtime": args.repeats, "standalone": args.repeats}
    elif args.quick:
        repeats = {"engine": 2, "runtime": 2, "standalone": 1}
    else:
        repeats = {"engine": 5, "runtime": 5, "standalone": 3}
    core_note = core_check_note(threads)
    if core_note:
        print(core_note, flush=True)

    cases = [case for case in make_cases(args.quick) if case.short[1] in args.cases]
    with tempfile.TemporaryDirectory(prefix="bench_vs_brian2_") as build_root:
        for index, case in enumerate(cases):
            cfg = resolve_config("izhikevich2003", case.overrides)
            network = build_network(cfg.network, cfg.integration, seed=1)
            case.n_neurons, case.n_steps = network.n_neurons, cfg.n_steps
            case.n_synapses = network.connectivity.n_synapses
            print(f"{case.label}: {case.n_synapses:,} synapses, {case.n_steps} steps", flush=True)
            for t in threads:
                case.engine[t] = time_engine(network, case.n_steps, repeats["engine"], t)
                print(f"  engine, {t} thread(s)        median {fmt_time(case.engine[t][0])} s, "
                      f"rate {fmt_rate(case.engine[t][1])} Hz", flush=True)
            if not args.no_cython:
                case.cython = time_brian2_runtime(network, case.n_steps, repeats["runtime"])
                print(f"  cython, 1 thread             median {fmt_time(case.cython[0])} s, "
                      f"rate {fmt_rate(case.cython[1])} Hz", flush=True)
            if not args.no_standalone:
                directory = os.path.join(build_root, f"case_{index}")
                for setting in standalone_settings(threads):
                    try:
                        case.standalone[setting] = time_brian2_standalone(
                            network, case.n_steps, repeats["standalone"], directory, setting)
                    except Exception as error:  # e.g. no OpenMP in the compiler: report, go on
                        message = " ".join(f"{type(error).__name__}: {error}".split())[:300]
                        case.errors[f"standalone openmp_threads = {setting}"] = message
                        print(f"  standalone, openmp_threads = {setting} FAILED: {message}", flush=True)
                        continue
                    print(f"  standalone, openmp_threads = {setting}  median "
                          f"{fmt_time(case.standalone[setting][0])} s, rate "
                          f"{fmt_rate(case.standalone[setting][1])} Hz", flush=True)
            del network
    table = render(cases, repeats, threads, args.quick, core_note)
    publish(table, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
