"""Peak memory of a what/when run against its length: streamed inputs and teachers keep it flat.

Run::

    .venv/bin/python benchmarks/bench_memory.py                       # 1x, 10x, 100x of 40 trials (~10 min on 2 cores)
    .venv/bin/python benchmarks/bench_memory.py --quick               # 1x, 10x of 8 trials (smoke run)
    .venv/bin/python benchmarks/bench_memory.py --multiples 1 10 --repeats 3 --materialized
    .venv/bin/python benchmarks/bench_memory.py --spikes on            # spikes recorded (the default is off)

What is measured
----------------
The default experiment (``experiments/whatwhen.toml``: three cues, each with a 24-channel time
basis, 77 input channels, 'when' and 'what' readouts) on a small network (``--n-neurons``, 100 by
default) so that the long cases finish, with ``base-trials x multiple`` trials in one block and
``duration_ms`` = trials x 1200 ms (the trials fill the run), and ``chunk_ms`` = 1000 (see
:data:`CHUNK_MS`). Each case runs in its own child
process: first a 2-trial run of the same kind (the kernels compiled or loaded from the cache,
not measured), then :func:`reservoir.experiment.runner.prepare`, ``make_simulation`` with a
run-file recorder in a temporary folder, and the runner's segment loop (``Simulation.run`` per
trial, then ``task.after_segment``: replay, reset), without ``write_outputs`` (the metrics read
the whole file back, which is not what is measured here). The child reports the largest resident
set sampled (``psutil``, every 20 ms) during the loop, the same less the resident set before
``prepare``, its lifetime peak (``getrusage(RUSAGE_SELF).ru_maxrss``: imports, compilation, the
warm-up, the run) and the loop's wall time. Spikes are not
recorded by default (``recording.spikes = false``: at 100x the run file would hold hundreds of
millions of spikes; the file is on disk either way, but HDF5's chunk cache is not what this
measures); ``--spikes on`` records them.

``--materialized`` also runs the former behaviour: the same input and teacher turned back into
whole-run arrays (:meth:`ExternalInput.materialize`, :meth:`Teacher.materialize`) before the
run, as the paradigm built them before the schedules (77 channels x steps x 8 bytes for the
input alone: 590 MB for the default experiment's 400 trials). Cases whose whole-run arrays would
exceed ``--materialized-limit-mib`` are skipped.

A first, unreported child warms the compiled kernels' cache. The table gives the median over
``--repeats`` children per case. Results go to stdout and ``benchmarks/results/memory.md``
(git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PERIOD_MS = 1200.0  # trial_ms + iti_ms of experiments/whatwhen.toml
INPUT_CHANNELS = 77  # 3 cues + 2 identities + 3 x 24 basis channels
CHUNK_MS = 1000.0
"""Simulated time per compiled call: 1000 ms keeps Python's share of a 100-neuron run small (a
trial of 1200 ms is cut into two chunks). (With the default 100 ms a run of this length used to
stop after about 65,000 chunks: the run file's status attributes were replaced at every chunk
and HDF5 ran out of attribute creation indexes; they are now changed in place.)"""


def overrides(trials: int, n_neurons: int, spikes: bool) -> dict:
    return {"network": {"n_neurons": n_neurons}, "duration_ms": trials * PERIOD_MS, "chunk_ms": CHUNK_MS,
            "recording": {"spikes": spikes},
            "task": {"blocks": [{"name": "learning", "n_trials": trials}], "test_trials": min(30, trials)}}


def run_segments(config, prepared, folder: Path, materialized: bool = False, sampler=None) -> float:
    """The runner's segment loop (without ``write_outputs``) into ``folder``; returns its wall time."""
    from reservoir.experiment import runner
    from reservoir.experiment.runner import make_simulation
    from reservoir.inputs import ExternalInput
    from reservoir.readouts import Teacher

    if materialized:  # the former behaviour: whole-run arrays
        external = prepared.external_input
        prepared.external_input = ExternalInput(external.materialize(config.n_steps), external.indptr,
                                                external.indices, external.gains)
        rows = prepared.teacher.materialize(config.n_steps)
        prepared.teacher = Teacher(rows.targets, gates=rows.gates, learn=rows.learn, store=rows.store)
        del rows
    snapshot_every = max(1, int(round(config.readouts.snapshot_every_ms / config.integration.dt_ms)))
    make_recorder = runner.make_recorder
    recorder = make_recorder(config, folder, prepared)
    for name, columns in prepared.task.tables().items():
        recorder.write_table(name, columns)
    sim = make_simulation(config, prepared, recorder)
    if sampler is not None:
        sampler.start()
    task = prepared.task
    started = time.perf_counter()
    for index, segment in enumerate(task.segments()):
        sim.run(n_steps=segment.start_step + segment.n_steps - sim.step, snapshot_every_steps=snapshot_every)
        task.after_segment(sim, index)
        task.segments_done = index + 1
    recorder.mark("complete", "", sim.step)
    recorder.close()
    return time.perf_counter() - started


class RssSampler(threading.Thread):
    """The largest resident set seen every ``every_s`` seconds while the loop runs (psutil)."""

    def __init__(self, every_s: float = 0.02):
        import psutil

        super().__init__(daemon=True)
        self.process, self.every_s, self.peak_bytes, self.done = psutil.Process(), every_s, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_bytes = max(self.peak_bytes, self.process.memory_info().rss)
            time.sleep(self.every_s)


def child(trials: int, n_neurons: int, spikes: bool, materialized: bool) -> dict:
    """One case in this process; returns what it measured."""
    import resource

    import psutil

    from reservoir.experiment import load_experiment
    from reservoir.experiment.runner import prepare

    path = REPO / "experiments" / "whatwhen.toml"
    with tempfile.TemporaryDirectory() as folder:  # a 2-trial run first: the kernels compiled or loaded, not measured
        warm = load_experiment(path, overrides(2, n_neurons, spikes))
        run_segments(warm, prepare(warm), Path(folder), materialized)
    config = load_experiment(path, overrides(trials, n_neurons, spikes))
    with tempfile.TemporaryDirectory() as folder:
        rss_before_prepare_mib = psutil.Process().memory_info().rss / 2**20
        prepared = prepare(config)
        sampler = RssSampler()
        wall_s = run_segments(config, prepared, Path(folder), materialized, sampler)
        sampler.done.set()
        sampler.join()
        file_mib = (Path(folder) / "run.h5").stat().st_size / 2**20
    lifetime_peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"trials": trials, "duration_ms": config.duration_ms, "steps": config.n_steps,
            "loop_peak_mib": sampler.peak_bytes / 2**20, "lifetime_peak_mib": lifetime_peak_mib,
            "before_prepare_mib": rss_before_prepare_mib, "wall_s": wall_s, "file_mib": file_mib}


def run_child(trials: int, args, materialized: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(trials), "--n-neurons", str(args.n_neurons),
               "--spikes", args.spikes] + (["--materialized"] if materialized else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"case {trials} trials failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-trials", type=int, default=40, help="trials of the 1x case (1200 ms each)")
    parser.add_argument("--multiples", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--n-neurons", type=int, default=100)
    parser.add_argument("--spikes", choices=["on", "off"], default="off")
    parser.add_argument("--repeats", type=int, default=1, help="children per case (the median is reported)")
    parser.add_argument("--materialized", action="store_true", help="also run the former whole-run arrays")
    parser.add_argument("--materialized-limit-mib", type=float, default=2048.0)
    parser.add_argument("--quick", action="store_true", help="1x and 10x of 8 trials")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.n_neurons, args.spikes == "on", args.materialized)))
        return
    if args.quick:
        args.base_trials, args.multiples = 8, [1, 10]

    import numpy as np
    from machine import describe, publish

    run_child(2, args, materialized=False)  # fill the kernels' cache (each child also warms up in-process)
    modes = [("streamed", False)] + ([("whole-run arrays", True)] if args.materialized else [])
    rows, first = [], {}
    for multiple in args.multiples:
        trials = args.base_trials * multiple
        for label, materialized in modes:
            steps = int(round(trials * PERIOD_MS / 0.5))
            arrays_mib = steps * (INPUT_CHANNELS + 2 * 3 + 0.25) * 8 / 2**20
            if materialized and arrays_mib > args.materialized_limit_mib:
                rows.append(f"| {label} | {multiple}x | {trials * PERIOD_MS / 1000:g} | {steps:,} | skipped: "
                            f"the arrays alone need ~{arrays_mib:.0f} MiB | | | | | |")
                continue
            runs = [run_child(trials, args, materialized) for _ in range(args.repeats)]
            peak = float(np.median([r["loop_peak_mib"] for r in runs]))
            lifetime = float(np.median([r["lifetime_peak_mib"] for r in runs]))
            before = float(np.median([r["before_prepare_mib"] for r in runs]))
            wall = float(np.median([r["wall_s"] for r in runs]))
            first.setdefault(label, peak)
            spread = (f" ({min(r['loop_peak_mib'] for r in runs):.0f}-{max(r['loop_peak_mib'] for r in runs):.0f})"
                      if len(runs) > 1 else "")
            rows.append(f"| {label} | {multiple}x | {trials * PERIOD_MS / 1000:g} | {steps:,} | {peak:.0f}{spread} | "
                        f"{peak / first[label]:.2f} | {peak - before:.0f} | {lifetime:.0f} | {wall:.1f} | "
                        f"{runs[0]['file_mib']:.1f} |")
            print(rows[-1], flush=True)
    header = [f"# Peak memory of a what/when run against its length ({describe()})", "",
              f"`experiments/whatwhen.toml`, n_neurons = {args.n_neurons}, spikes recorded: {args.spikes}, "
              f"chunk_ms = {CHUNK_MS:g}, 1x = {args.base_trials} trials of 1200 ms; median of {args.repeats} child process(es) per case. "
              "Peak RSS: the largest resident set sampled every 20 ms during the segment loop (after a 2-trial warm-up "
              "run in the same process); above start: that peak less the RSS before `prepare`; lifetime: ru_maxrss.", "",
              "| input and teacher | length | duration (s) | steps | peak RSS in the loop (MiB) | ratio to 1x "
              "| above start (MiB) | lifetime peak (MiB) | loop wall (s) | run.h5 (MiB) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    publish("\n".join(header + rows), REPO / "benchmarks" / "results" / "memory.md")


if __name__ == "__main__":
    main()
