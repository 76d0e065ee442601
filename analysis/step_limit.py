"""Neurons locked at the step limit: a check of a run's numerics, with its figure.

    python -m analysis.step_limit RUN_DIR [--window-ms 1000] [--figure F.png]

A spike-and-reset neuron integrated with step ``dt`` fires at most every other step. The
Izhikevich model integrated by forward Euler with ``dt`` of about 1 ms has, besides its real
dynamics, a spurious period-2 cycle: after a strong input has raised ``u``, the reset value
``c`` puts ``v`` on the steep part of the quadratic, one step throws it far below rest (-130 to
-250 mV), the next far past the peak (+100 to +900 mV), and ``u``, fed by ``b v`` at those
values, stays high. The neuron then fires every other step for as long as the run lasts,
with or without input (``docs/model-and-numerics.md``, "Step-limit cycles"). Each such lock-in
adds a permanent, feature-sized jump to the reservoir's activity: in a continual-learning run
it looks like a slow drift of the response to the same images.

The command lists the neurons that fired on at least 90 % of every other step for one whole
window of ``--window-ms`` (:meth:`analysis.spikes.SpikeTally.neurons_at_step_limit`, also in
every run's ``metrics.json`` as ``neurons_at_step_limit``), the second each locked in, and
with ``--figure`` draws their rates over the run beside the population rate, and the traced
``v`` and ``u`` of the first of them around its lock-in when the run traced it
(``recording.trace_neurons``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .io import load_run
from .plots import save
from .spikes import tally_spikes

STEP_LIMIT_FRACTION = 0.9


def rates_per_window(run, neurons: np.ndarray, window_ms: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(window_starts_ms, rates_hz (len(neurons), W), population_rate_hz (W,))`` over consecutive
    windows of ``window_ms``, in one pass over the run's spike blocks."""
    n_windows = max(1, int(np.ceil(run.duration_ms / window_ms)))
    neurons = np.asarray(neurons, dtype=np.int64)
    own = np.zeros((neurons.size, n_windows), dtype=np.int64)
    population = np.zeros(n_windows, dtype=np.int64)
    lookup = np.full(run.n_neurons, -1, dtype=np.int64)
    lookup[neurons] = np.arange(neurons.size)
    for times, ids in run.spike_blocks():
        window = np.minimum((np.asarray(times) // window_ms).astype(np.int64), n_windows - 1)
        population += np.bincount(window, minlength=n_windows)
        row = lookup[np.asarray(ids, dtype=np.int64)]
        mine = row >= 0
        np.add.at(own, (row[mine], window[mine]), 1)
    seconds = window_ms / 1000.0
    return np.arange(n_windows) * window_ms, own / seconds, population / seconds / run.n_neurons


def lock_in_ms(rates_hz: np.ndarray, window_ms: float, dt_ms: float) -> np.ndarray:
    """The start (ms) of each neuron's first window at the step limit (NaN where none)."""
    limit = STEP_LIMIT_FRACTION * 1000.0 / (2.0 * dt_ms)
    at = rates_hz >= limit
    return np.where(at.any(axis=1), np.argmax(at, axis=1) * window_ms, np.nan)


def window_after(run) -> float:
    """How far past a lock-in window's start the figure looks for the first regular spikes (ms)."""
    return min(2000.0, run.duration_ms)


def step_limit_figure(run, neurons, starts_ms, rates_hz, population_hz, lock_ms):
    """Rates of the locked neurons and the population over the run, and the first traced
    locked neuron's ``v`` and ``u`` around its lock-in."""
    import matplotlib.pyplot as plt
    traced = [int(n) for n in neurons if int(n) in list(run.trace_ids)]
    fig, axes = plt.subplots(1, 2 if traced else 1, figsize=(11 if traced else 6, 3.6), squeeze=False)
    ax = axes[0, 0]
    seconds = starts_ms / 1000.0
    for i, n in enumerate(neurons[:6]):
        ax.plot(seconds, rates_hz[i], lw=1, label=f"neuron {n}")
    ax.plot(seconds, population_hz, color="k", lw=1.2, label="population mean")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("rate (Hz)")
    ax.axhline(1000.0 / (2.0 * run.dt_ms), color="0.6", ls=":", lw=1)
    ax.set_title(f"{len(neurons)} neuron(s) at the step limit (dt {run.dt_ms:g} ms)")
    ax.legend(fontsize=7, frameon=False)
    if traced:
        n = traced[0]
        column = list(run.trace_ids).index(n)
        t_lock = lock_ms[list(neurons).index(n)]
        times = run.trace_time_ms
        spikes, ids = run.spikes_between(t_lock - 1000.0, t_lock + window_after(run))
        own = np.asarray(spikes)[np.asarray(ids) == n]
        # the first spike of 20 in a row at the step limit
        regular = np.convolve(np.diff(own) <= 2 * run.dt_ms + 1e-9, np.ones(20), "valid") == 20
        centre = own[np.argmax(regular)] if regular.any() else t_lock
        keep = (times >= centre - 60) & (times <= centre + 40)
        ax2 = axes[0, 1]
        ax2.plot(times[keep], run.trace_v[keep, column], lw=0.8, label="v (mV)")
        ax2.plot(times[keep], run.trace_u[keep, column], lw=0.8, label="u")
        ax2.set_xlabel("time (ms)")
        ax2.set_title(f"neuron {n} around its lock-in")
        ax2.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.step_limit", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder")
    parser.add_argument("--window-ms", type=float, default=1000.0, help="the window a locked neuron fills (ms)")
    parser.add_argument("--figure", type=Path, help="write the figure here")
    args = parser.parse_args(argv)
    if not (args.run / "run.h5").is_file():
        parser.exit(2, f"error: {args.run}: no run.h5 (not a run folder)\n")
    if args.window_ms <= 0:
        parser.exit(2, f"error: --window-ms must be > 0, got {args.window_ms:g}\n")
    run = load_run(args.run, lazy_spikes=True)
    window = min(args.window_ms, run.duration_ms)
    neurons = tally_spikes(run, window_ms=window).neurons_at_step_limit(run.dt_ms, STEP_LIMIT_FRACTION)
    print(f"{args.run}: {neurons.size} neuron(s) at the step limit (every other step of {run.dt_ms:g} ms for "
          f"{window:g} ms)" + (":" if neurons.size else ""))
    starts, rates, population = rates_per_window(run, neurons, window)
    lock = lock_in_ms(rates, window, run.dt_ms)
    for n, t in zip(neurons, lock):
        print(f"  neuron {n}: locked from the window at {t / 1000:g} s")
    if args.figure:
        path = save(step_limit_figure(run, neurons, starts, rates, population, lock), args.figure)
        print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
