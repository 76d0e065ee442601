"""The drift probe: does the reservoir answer the same images the same way before and after a
sequence of other tasks?

    python -m reservoir.experiment.drift_probe [EXPERIMENT.toml] [--order blocked|mixed] [--repeat 300]
                                    [--set KEY=VALUE ...]

The network and the input of a permuted-digits experiment (default
``experiments/permuted_digits_unprotected.toml``) are built as a run builds them; the probe then
presents, with no readout, the first ``--repeat`` training images of task 0, then the training
images of tasks 1 to ``n_tasks - 1`` (``blocked``: in the run's order; ``mixed``: the same
images shuffled), then the same ``--repeat`` images of task 0 again. It prints the mean rate in
the read-out windows at both ends, the largest change of one neuron's rate, the neurons at the
step limit (:mod:`analysis.step_limit`), and the mean correlation of each image's two responses
(spike counts over the neurons). The network has no slow state: a response that changes is a
numerical artefact or chaos, and this probe tells which (``docs/results-continual.md``, "The
reservoir's drift").
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from analysis.step_limit import STEP_LIMIT_FRACTION

from ..inputs import PatternSequenceInput
from ..simulation import Simulation
from .cli import parse_assignment, set_path
from .config import load_experiment
from .runner import prepare

DEFAULT_EXPERIMENT = "experiments/permuted_digits_unprotected.toml"


def window_counts(spike_steps, spike_ids, presentations, period_steps, start_step, stop_step, n_neurons):
    """``(len(presentations), N)`` spike counts in steps ``[start_step, stop_step)`` of each presentation."""
    presentations = np.asarray(presentations, dtype=np.int64)
    index = spike_steps // period_steps
    phase = spike_steps % period_steps
    keep = np.isin(index, presentations) & (phase >= start_step) & (phase < stop_step)
    counts = np.zeros((presentations.size, n_neurons))
    np.add.at(counts, (np.searchsorted(presentations, index[keep]), spike_ids[keep]), 1.0)
    return counts


def probe(config, order: str = "blocked", repeat: int = 300, seed: int = 0) -> dict:
    """Run the probe for a resolved permuted-digits ``config`` (see the module docstring)."""
    prepared = prepare(config)
    task = prepared.task
    c = task.config
    n_train = task.train_labels.size
    if not 1 <= repeat <= n_train:
        raise ValueError(f"--repeat must be between 1 and the {n_train} training images per task, got {repeat}")
    rows = task.pattern_index[: c.n_tasks * n_train * c.epochs_per_task]
    first_pass = [rows[t * n_train * c.epochs_per_task:][:n_train] for t in range(c.n_tasks)]
    middle = np.concatenate(first_pass[1:]) if c.n_tasks > 1 else np.zeros(0, dtype=np.int64)
    if order == "mixed":
        middle = np.random.default_rng(seed).permutation(middle)
    images = np.concatenate([first_pass[0][:repeat], middle, first_pass[0][:repeat]])
    period = task.period_steps
    external = prepared.external_input
    sequence = PatternSequenceInput(external.signal, np.arange(images.size, dtype=np.int64) * period, images,
                                    task.steps(c.presentation_ms), external.indptr, external.indices, external.gains)
    sim = Simulation(prepared.network, sequence, seed=config.seed)
    started = time.perf_counter()
    sim.run(n_steps=images.size * period)
    wall = time.perf_counter() - started
    steps, ids = sim.recorder.spike_steps, sim.recorder.spike_ids
    n = prepared.network.n_neurons
    lo, hi = task.readout_offset_steps, task.readout_offset_steps + task.readout_steps
    window_s = task.readout_steps * config.integration.dt_ms / 1000.0
    before = window_counts(steps, ids, np.arange(repeat), period, lo, hi, n)
    after = window_counts(steps, ids, np.arange(images.size - repeat, images.size), period, lo, hi, n)
    rate_before, rate_after = before.mean(0) / window_s, after.mean(0) / window_s
    change = rate_after - rate_before
    worst = int(np.argmax(np.abs(change)))
    per_second = round(1000.0 / config.integration.dt_ms)
    last = steps >= max(0, images.size * period - per_second)
    late_rate = np.bincount(ids[last], minlength=n) * per_second / max(1, min(per_second, images.size * period))
    at_limit = np.flatnonzero(late_rate >= STEP_LIMIT_FRACTION * per_second / 2)
    correlation = np.mean([np.corrcoef(before[i], after[i])[0, 1] for i in range(repeat)])
    return {"order": order, "scheme": config.integration.scheme, "dt_ms": config.integration.dt_ms,
            "rate_before_hz": float(rate_before.mean()), "rate_after_hz": float(rate_after.mean()),
            "change_percent": float(100 * (rate_after.mean() / rate_before.mean() - 1)),
            "largest_change_hz": float(change[worst]), "largest_change_neuron": worst,
            "at_step_limit_at_the_end": at_limit.tolist(), "image_correlation": float(correlation),
            "presentations": int(images.size), "wall_s": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reservoir.experiment.drift_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", nargs="?", default=DEFAULT_EXPERIMENT, type=Path,
                        help=f"a permuted-digits experiment file (default {DEFAULT_EXPERIMENT})")
    parser.add_argument("--order", choices=["blocked", "mixed"], default="blocked",
                        help="the other tasks' images in the run's order, or shuffled together")
    parser.add_argument("--repeat", type=int, default=300, help="task-0 images presented at both ends")
    parser.add_argument("--set", dest="assignments", type=parse_assignment, action="append", default=[],
                        metavar="KEY=VALUE", help="override a key, as in `reservoir run` (repeatable)")
    args = parser.parse_args(argv)
    overrides: dict = {}
    try:
        for path, value in args.assignments:
            set_path(overrides, path, value)
    except argparse.ArgumentTypeError as error:
        parser.error(f"argument --set: {error}")
    config = load_experiment(args.experiment, overrides)
    if config.task is None or config.task.kind != "permuted_digits":
        parser.exit(2, f"error: {args.experiment}: task.kind must be 'permuted_digits'\n")
    try:
        result = probe(config, args.order, args.repeat)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(f"{args.experiment} ({result['order']}, {result['scheme']} at {result['dt_ms']:g} ms, "
          f"{result['presentations']} presentations, {result['wall_s']:.0f} s):")
    print(f"  read-out window rate, task 0's images before / after: {result['rate_before_hz']:.2f} / "
          f"{result['rate_after_hz']:.2f} Hz ({result['change_percent']:+.2f} %)")
    print(f"  largest change of one neuron: {result['largest_change_hz']:+.1f} Hz (neuron "
          f"{result['largest_change_neuron']})")
    print(f"  neurons at the step limit in the last second: {result['at_step_limit_at_the_end'] or 'none'}")
    print(f"  correlation of each image's two responses (mean): {result['image_correlation']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
