"""Cost of learning inside the compiled loop: three-factor readouts, the FORCE sine run, one RLS event.

Run::

    .venv/bin/python benchmarks/bench_learning.py                # full run (about 2 minutes)
    .venv/bin/python benchmarks/bench_learning.py --quick        # smoke run (shortened FORCE run)
    .venv/bin/python benchmarks/bench_learning.py --repeats 15   # more repeats for (a)

What is measured
----------------
(a) Overhead of three-factor learning. One network, built once with ``reservoir.resolve_config``
    and ``reservoir.build_network`` (seed 1): preset ``izhikevich2003`` with N = 1000, Bernoulli
    p = 0.1 connectivity (the preset's weight scheme, noise 5/2, delta synapses), forward Euler
    at dt = 0.5 ms, 1 s of simulated time (2000 steps). It is simulated in four variants:

    (i)   no readouts;
    (ii)  one group of 4 three-factor units over one exponential 20 ms trace filter (F = N
          features), gate ``window``, ``post_factor = "none"`` (the 4 units share one eligibility
          trace), learning rate 1e-4 per ms, tau_e = 20 ms, initial weights N(0, 0.01^2);
    (iii) as (ii) with ``post_factor = "output"`` (one eligibility trace per unit, 4 x F);
    (iv)  as (ii) over a 3-filter trace bank (exponential 20, 100, 300 ms: F = 3N).

    This network is quiet (about 1.8 Hz), so its step is cheap and the readouts' share large.
    (a') repeats (a) on the same network made to fire at a realistic 10-20 Hz: the same neurons,
    weights and noise, with a constant bias current into every neuron (``network.bias_current``,
    default ``--active-bias 2.5``: about 14 Hz on the development machine; the measured rate is
    printed, with a warning when it leaves 10-20 Hz). Its readouts are the same four variants.

    In (ii)-(iv) a :class:`~reservoir.readouts.Teacher` supplies target 1 for every unit and gate
    1 at every step, so every unit updates its weights at every step. Only ``Simulation.run`` is
    timed: the ``Simulation`` (and fresh ``Readouts``) are built beforehand, and one untimed
    warm-up run of each variant loads (or compiles) the kernels. Repeat ``r`` uses run seed ``r``
    for every variant, so all four see the same spikes (the readouts have no feedback) and differ
    only by the readout work; the variants are interleaved within each repeat so that slow drift
    of the machine affects them alike. Reported: median seconds of wall time per simulated
    second, and the overhead: the ratio of each median to (i)'s median. Target of the issue:
    (ii) at most 1.3x (i), on both networks (issue 13; issue 3 asked 1.5x on the quiet one).

(b) The whole FORCE sine validation run, ``experiments/force_sine.toml`` (Nicola & Clopath 2017:
    N = 2000, dt = 0.04 ms, 15 s simulated, RLS every 20 steps from 5 s to 10 s, feedback),
    loaded with ``reservoir.experiment.load_experiment`` and run with
    ``reservoir.experiment.run_experiment(config, tmpdir, progress=False)`` into a fresh temporary
    folder. Compilation is excluded by an untimed warm-up run of the same file shortened to
    200 ms (learning from 50 to 150 ms). The time is the wall time of the ``run_experiment`` call
    (building the network, simulating, writing ``run.h5``, metrics and figures); the runner's own
    ``wall_time_s`` (the simulation segments only) is shown next to it. Median of 3 runs (the run
    is deterministic, so the metrics are the same every run; those of the last run are shown).
    Target: at most 30 s.

(c) One RLS event at F = 2000 (K = 1, forgetting 1): ``reservoir.rules.rls.rls_update_fused``,
    the kernel the readout uses, timed event by event exactly as the ``fused`` variant of
    ``benchmarks/bench_rls.py`` (whose functions are reused): median of 200 events after 20
    warm-up events.

Everything runs on one thread (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` are set to 1 before NumPy is imported, unless
already set). ``--quick`` is a smoke run: 3 repeats of (a) and (a'), one FORCE run shortened to 3 s
(learning from 1 to 2 s), 20 RLS events. The table goes to stdout and to
``benchmarks/results/learning.md`` (git-ignored).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_rls import time_variant  # noqa: E402
from machine import describe, publish  # noqa: E402
from reservoir import Simulation, build_network, resolve_config  # noqa: E402
from reservoir.experiment import load_experiment, run_experiment  # noqa: E402
from reservoir.readouts import Readouts, ReadoutsConfig, Teacher  # noqa: E402

NETWORK_OVERRIDES = {
    "duration_ms": 1000.0,
    "network": {"n_neurons": 1000, "connectivity": {"rule": "bernoulli", "probability": 0.1}},
    "integration": {"dt_ms": 0.5, "scheme": "euler"},
}
ACTIVE_BIAS = 2.5          # bias current of (a'): about 14 Hz (0: 1.7 Hz, 2: 11.6 Hz, 3: 16.8 Hz, 4: 21.5 Hz)
ACTIVE_RATE_BAND = (10.0, 20.0)
N_UNITS = 4
LEARNING_RATE = 1e-4
FORCE_FILE = REPO / "experiments" / "force_sine.toml"
FORCE_WARM_UP = {"duration_ms": 200.0, "task": {"learn_start_ms": 50.0, "learn_stop_ms": 150.0}}
FORCE_QUICK = {"duration_ms": 3000.0, "task": {"learn_start_ms": 1000.0, "learn_stop_ms": 2000.0}}
RLS_FEATURES = 2000
TARGET_THREE_FACTOR = 1.3  # issue 13 (was 1.5 in issue 3)
TARGET_FORCE_S = 30.0


def readouts_config(tau_traces_ms, post_factor: str) -> ReadoutsConfig:
    return ReadoutsConfig.model_validate({
        "traces": [{"kind": "exponential", "tau_ms": tau} for tau in tau_traces_ms],
        "groups": [{"name": "learn", "n_units": N_UNITS, "rule": "three_factor", "initial_weight_std": 0.01,
                    "three_factor": {"learning_rate": LEARNING_RATE, "tau_eligibility_ms": 20.0,
                                     "post_factor": post_factor, "gate": "window"}}],
    })


VARIANTS = [
    ("(i) no readouts", None),
    ("(ii) 4 three-factor units, F = N, post factor none", readouts_config([20.0], "none")),
    ("(iii) 4 units, F = N, post factor output (4 eligibility traces)", readouts_config([20.0], "output")),
    ("(iv) 4 units, 3-filter trace bank (F = 3N), post factor none", readouts_config([20.0, 100.0, 300.0], "none")),
]


def one_run(network, n_steps: int, config: ReadoutsConfig | None, seed: int):
    """Build a fresh simulation, time ``run`` only; returns ``(seconds, n_spikes, max |z|)``."""
    readouts = teacher = None
    if config is not None:
        readouts = Readouts(config, network.n_neurons, network.dt_ms, seed=seed)
        teacher = Teacher(np.ones((n_steps, readouts.n_units)))  # target 1, gates 1 everywhere
    sim = Simulation(network, seed=seed, readouts=readouts, teacher=teacher)
    start = time.perf_counter()
    sim.run(n_steps=n_steps)
    elapsed = time.perf_counter() - start
    z = float(np.max(np.abs(readouts.z))) if readouts is not None else float("nan")
    return elapsed, int(sim.recorder.spike_ids.size), z


def active_overrides(bias: float) -> dict:
    """NETWORK_OVERRIDES with a constant bias current into every neuron."""
    return {**NETWORK_OVERRIDES, "network": {**NETWORK_OVERRIDES["network"], "bias_current": bias}}


def measure_three_factor(repeats: int, overrides: dict = NETWORK_OVERRIDES):
    cfg = resolve_config("izhikevich2003", overrides)
    network = build_network(cfg.network, cfg.integration, seed=1)
    n_steps = cfg.n_steps
    simulated_s = n_steps * network.dt_ms / 1000.0
    for _, config in VARIANTS:  # warm-up: kernels loaded or compiled
        one_run(network, n_steps, config, seed=10_000)
    times = {label: [] for label, _ in VARIANTS}
    spikes = {label: [] for label, _ in VARIANTS}
    outputs = {label: [] for label, _ in VARIANTS}
    for seed in range(repeats):
        for label, config in VARIANTS:
            elapsed, n_spikes, z = one_run(network, n_steps, config, seed)
            times[label].append(elapsed / simulated_s)
            spikes[label].append(n_spikes)
            outputs[label].append(z)
        print(f"  repeat {seed + 1}/{repeats}: " + ", ".join(
            f"{times[label][-1] * 1e3:.1f}" for label, _ in VARIANTS) + " ms per simulated s", flush=True)
    rate = float(np.mean(spikes[VARIANTS[0][0]])) / network.n_neurons / simulated_s
    info = {"n_synapses": network.connectivity.n_synapses, "n_steps": n_steps, "rate_hz": rate,
            "same_spikes": all(spikes[label] == spikes[VARIANTS[0][0]] for label, _ in VARIANTS),
            "max_abs_z": {label: max(outputs[label]) for label, _ in VARIANTS[1:]}}
    return times, info


def measure_force(runs: int, quick: bool):
    def run_once(overrides):
        config = load_experiment(FORCE_FILE, overrides)
        with tempfile.TemporaryDirectory(prefix="bench_learning_") as out:
            start = time.perf_counter()
            metrics = run_experiment(config, out, progress=False)
            return time.perf_counter() - start, metrics, config

    run_once(FORCE_WARM_UP)
    walls, loops, metrics, config = [], [], {}, None
    for index in range(runs):
        wall, metrics, config = run_once(FORCE_QUICK if quick else None)
        walls.append(wall)
        loops.append(float(metrics["wall_time_s"]))
        print(f"  FORCE run {index + 1}/{runs}: {wall:.2f} s (simulation segments {loops[-1]:.2f} s)", flush=True)
    task = config.task
    dt = config.integration.dt_ms
    learn_every = config.readouts.groups[0].rls.learn_every_steps
    info = {"duration_ms": config.duration_ms, "dt_ms": dt, "n_steps": config.n_steps,
            "n_neurons": config.network.n_neurons, "learn_ms": (task.learn_start_ms, task.learn_stop_ms),
            "n_events": int(round((task.learn_stop_ms - task.learn_start_ms) / dt)) // learn_every}
    return walls, loops, metrics, info


def measure_rls(events: int, warm_up: int) -> float:
    rng = np.random.default_rng(RLS_FEATURES)
    features = rng.random((warm_up + events, RLS_FEATURES)) / np.sqrt(RLS_FEATURES)
    targets = np.sin(0.05 * np.arange(warm_up + events))
    ms, _ = time_variant("fused", RLS_FEATURES, features, targets, warm_up)
    return ms


def machine_header(quick: bool) -> str:
    return (f"## Learning cost{' (quick smoke run)' if quick else ''}\n\n"
            + describe(cores_note=" (one thread used)") + ".")


def fmt_metric(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def three_factor_rows(section: str, times, info, rate_note: str = "") -> list[str]:
    base_label = VARIANTS[0][0]
    base = statistics.median(times[base_label])
    rows = []
    for label, _ in VARIANTS:
        median = statistics.median(times[label])
        ratio = median / base
        if label == base_label:
            verdict = "1.00x"
            notes = f"mean rate {info['rate_hz']:.2f} Hz{rate_note}, {info['n_synapses']:,} synapses"
        else:
            verdict = f"{ratio:.2f}x"
            if label.startswith("(ii)"):
                met = "met" if ratio <= TARGET_THREE_FACTOR else "NOT met"
                verdict += f" (target <= {TARGET_THREE_FACTOR}x: {met})"
            notes = f"max abs z at the end {info['max_abs_z'][label]:.3g}"
        rows.append(f"| {section} {label} | {median * 1e3:.1f} ms per simulated s | {verdict} | {notes} |")
    return rows


def rate_in_band(rate: float) -> bool:
    return ACTIVE_RATE_BAND[0] <= rate <= ACTIVE_RATE_BAND[1]


def render(times, info, force, rls_ms, repeats, force_runs, rls_events, rls_warm_up, quick, active=None) -> str:
    lines = [machine_header(quick), "",
             "| measurement | time | ratio to (i) / target | notes |",
             "|---|---:|---:|---|"]
    lines += three_factor_rows("(a)", times, info, " (quiet)")
    if active is not None:
        a_times, a_info, bias = active
        band = (f"; bias {bias:g}, {'in' if rate_in_band(a_info['rate_hz']) else 'OUTSIDE'} the "
                f"{ACTIVE_RATE_BAND[0]:g}-{ACTIVE_RATE_BAND[1]:g} Hz band")
        lines += three_factor_rows("(a')", a_times, a_info, band)
    walls, loops, metrics, finfo = force
    wall = statistics.median(walls)
    verdict = (f"target <= {TARGET_FORCE_S:.0f} s: {'met' if wall <= TARGET_FORCE_S else 'NOT met'}"
               if not quick else "(shortened run; target applies to the full run)")
    lines.append(
        f"| (b) FORCE sine, `experiments/force_sine.toml`{' shortened' if quick else ''} "
        f"({finfo['duration_ms'] / 1000:g} s simulated, {finfo['n_events']} RLS events) "
        f"| {wall:.2f} s wall (simulation segments {statistics.median(loops):.2f} s) | {verdict} "
        f"| RMS error during training {fmt_metric(metrics.get('rms_error_during_training'))}, "
        f"last second of training {fmt_metric(metrics.get('rms_error_last_second_of_training'))}; "
        f"after training: frequency {fmt_metric(metrics.get('frequency_after_training_hz'), 2)} Hz "
        f"(target {metrics.get('target_frequency_hz'):g}), amplitude "
        f"{fmt_metric(metrics.get('amplitude_after_training'))} (target {metrics.get('target_amplitude'):g}), "
        f"RMS error {fmt_metric(metrics.get('rms_error_after_training'))}; rates before / during / after "
        f"training {fmt_metric(metrics.get('rate_before_training_hz'), 1)} / "
        f"{fmt_metric(metrics.get('rate_during_training_hz'), 1)} / "
        f"{fmt_metric(metrics.get('rate_after_training_hz'), 1)} Hz |")
    lines.append(f"| (c) RLS event, `rls_update_fused`, F = {RLS_FEATURES}, K = 1 | {rls_ms:.3f} ms | - "
                 f"| median of {rls_events} events after {rls_warm_up} warm-up |")
    lines += ["",
              f"(a): N = 1000 `izhikevich2003` neurons, Bernoulli p = 0.1, Euler at dt = 0.5 ms, "
              f"{info['n_steps']} steps per run; median of {repeats} timed runs per variant after one warm-up run, "
              f"variants interleaved, run seed r for every variant in repeat r (same spikes in every variant: "
              f"{'yes' if info['same_spikes'] else 'NO'}); {N_UNITS} units learning at every step "
              f"(target 1, gate 1, learning rate {LEARNING_RATE:g} per ms, tau_e 20 ms). "
              + (f"(a'): the same with bias current {active[2]:g} into every neuron (same spikes in every variant: "
                 f"{'yes' if active[1]['same_spikes'] else 'NO'}). " if active is not None else "") +
              f"(b): median over {force_runs} run(s) of the wall time of `run_experiment` (network build, simulation, "
              f"run file, metrics, figures) after a 200 ms warm-up run; dt {finfo['dt_ms']:g} ms, "
              f"N = {finfo['n_neurons']}, RLS from {finfo['learn_ms'][0]:g} to {finfo['learn_ms'][1]:g} ms."]
    for label, _ in VARIANTS:
        lines.append(f"- (a) {label.split(' ', 1)[0]}: " + ", ".join(f"{t * 1e3:.1f}" for t in times[label])
                     + " ms per simulated s")
    if active is not None:
        for label, _ in VARIANTS:
            lines.append(f"- (a') {label.split(' ', 1)[0]}: " + ", ".join(f"{t * 1e3:.1f}" for t in active[0][label])
                         + " ms per simulated s")
    lines.append("- (b) FORCE runs: " + ", ".join(f"{w:.2f}" for w in walls) + " s wall; simulation segments "
                 + ", ".join(f"{t:.2f}" for t in loops) + " s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per variant in (a) (default 9)")
    parser.add_argument("--force-runs", type=int, default=None, help="timed FORCE runs in (b) (default 3)")
    parser.add_argument("--events", type=int, default=None, help="timed RLS events in (c) (default 200)")
    parser.add_argument("--active-bias", type=float, default=ACTIVE_BIAS,
                        help=f"bias current of the 10-20 Hz network (a') (default {ACTIVE_BIAS:g})")
    parser.add_argument("--no-active", action="store_true", help="skip (a'), the 10-20 Hz network")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 repeats, one FORCE run shortened to 3 s, 20 RLS events")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "learning.md")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 9)
    force_runs = args.force_runs if args.force_runs is not None else (1 if args.quick else 3)
    events = args.events if args.events is not None else (20 if args.quick else 200)
    warm_up = 5 if args.quick else 20
    if repeats < 1 or force_runs < 1 or events < 1:
        parser.error("--repeats, --force-runs and --events must be positive")

    print("(a) three-factor overhead: " + "; ".join(label for label, _ in VARIANTS), flush=True)
    times, info = measure_three_factor(repeats)
    active = None
    if not args.no_active:
        print(f"(a') the same at 10-20 Hz: bias current {args.active_bias:g}", flush=True)
        a_times, a_info = measure_three_factor(repeats, active_overrides(args.active_bias))
        print(f"  mean rate {a_info['rate_hz']:.2f} Hz", flush=True)
        if not rate_in_band(a_info["rate_hz"]):
            print(f"warning: (a') fires at {a_info['rate_hz']:.2f} Hz, outside {ACTIVE_RATE_BAND[0]:g}-"
                  f"{ACTIVE_RATE_BAND[1]:g} Hz: change --active-bias", file=sys.stderr, flush=True)
        active = (a_times, a_info, args.active_bias)
    print("(b) FORCE sine run", flush=True)
    force = measure_force(force_runs, args.quick)
    print("(c) RLS event", flush=True)
    rls_ms = measure_rls(events, warm_up)
    table = render(times, info, force, rls_ms, repeats, force_runs, events, warm_up, args.quick, active)
    publish(table, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
