"""Figures of plain runs: spike raster with population rate, and membrane-potential traces.

Importing this module selects no Matplotlib backend (a notebook keeps its inline one); the
command lines, which only write figures to files, call :func:`use_file_backend` first.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .io import Run
from .spikes import population_rate_hz, rate_bin_edges_ms


def use_file_backend() -> None:
    """Select the Agg backend, for programs that only write figures to files."""
    matplotlib.use("Agg")


def raster_figure(run: Run, max_ms: float | None = 1000.0, max_neurons: int = 1000, bin_ms: float = 5.0):
    """Raster (excitatory blue, inhibitory red) above the population rate; returns the figure.

    Only the spikes up to the end of the last rate bin are read (:meth:`analysis.io.Run.spikes_between`),
    so a :class:`~analysis.io.LazyRun` of a long run reads its first second, not the whole run."""
    end = run.duration_ms if max_ms is None else min(max_ms, run.duration_ms)
    last_bin_edge_ms = rate_bin_edges_ms(end, bin_ms)[-1]  # the rate's last bin holds this edge
    shown_times, shown_ids = run.spikes_between(-np.inf, np.nextafter(last_bin_edge_ms, np.inf))
    keep = (shown_times < end) & (shown_ids < max_neurons)
    times, ids = shown_times[keep], shown_ids[keep]
    exc = run.is_excitatory
    fig, (ax_raster, ax_rate) = plt.subplots(2, 1, figsize=(9, 6), sharex=True,
                                             gridspec_kw={"height_ratios": [3, 1]})
    is_exc = exc[ids] if exc.size else np.ones(ids.size, dtype=bool)
    ax_raster.plot(times[is_exc], ids[is_exc], ".", ms=1.2, mew=0, color="tab:blue", label="excitatory")
    ax_raster.plot(times[~is_exc], ids[~is_exc], ".", ms=1.2, mew=0, color="tab:red", label="inhibitory")
    ax_raster.set_ylabel("neuron")
    ax_raster.set_ylim(-0.5, min(max_neurons, run.n_neurons) - 0.5)
    title = run.config.get("preset") or "run"
    ax_raster.set_title(f"{title}: {run.n_neurons} neurons, seed {run.config.get('seed', '?')}")
    centres, rate = population_rate_hz(shown_times, run.n_neurons, end, bin_ms)
    ax_rate.plot(centres, rate, color="k", lw=0.8)
    ax_rate.set_xlabel("time (ms)")
    ax_rate.set_ylabel(f"rate (Hz, {bin_ms:g} ms bins)")
    ax_rate.set_xlim(0, end)
    fig.tight_layout()
    return fig


def trace_figure(run: Run, max_neurons: int = 5):
    """Membrane potential of up to ``max_neurons`` traced neurons."""
    n = min(max_neurons, run.trace_v.shape[1])
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.2 * n), sharex=True, squeeze=False)
    for k in range(n):
        ax = axes[k, 0]
        ax.plot(run.trace_time_ms, run.trace_v[:, k], color="k", lw=0.8)
        ax.set_ylabel(f"v (mV), #{run.trace_ids[k]}")
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].set_title(run.config.get("preset") or "membrane potential")
    fig.tight_layout()
    return fig


def save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def sine_training_figure(run: Run, column: int, config, metrics: dict | None = None):
    """FORCE sine: output and target before, at the end of, and after training; raster below.
    With ``metrics`` (the task's), the panels name the measures the claims are judged on: the
    RMS error at the end of training, and the frequency and amplitude after it."""
    t, z = run.output_time_ms, run.outputs[:, column]
    target = config.amplitude * np.sin(2 * np.pi * config.frequency_hz * t / 1000.0)
    metrics = metrics or {}
    rms, frequency, amplitude = (metrics.get(k) for k in ("rms_error_last_second_of_training",
                                                           "frequency_after_training_hz", "amplitude_after_training"))
    end_title = "end of training (RLS on)" + (f"\nRMS error {rms:.3f}" if rms is not None else "")
    after_title = "after training (RLS off)" + (
        f"\n{frequency:.2f} Hz (target {config.frequency_hz:g}), amplitude {amplitude:.2f} (target {config.amplitude:g})"
        if frequency is not None and amplitude is not None and np.isfinite(frequency) else "")
    windows = [(max(0.0, config.learn_start_ms - 1000), config.learn_start_ms, "before training"),
               (max(config.learn_start_ms, config.learn_stop_ms - 1000), config.learn_stop_ms, end_title),
               (config.learn_stop_ms, min(run.duration_ms, config.learn_stop_ms + 1000), after_title)]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), gridspec_kw={"height_ratios": [2, 3]})
    for col, (start, stop, title) in enumerate(windows):
        keep = (t >= start) & (t < stop)
        ax = axes[0, col]
        ax.plot(t[keep], target[keep], color="0.6", lw=2, label="target")
        ax.plot(t[keep], z[keep], color="tab:blue", lw=1, label="output z")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-2 * config.amplitude, 2 * config.amplitude)
        spikes = (run.spike_times_ms >= start) & (run.spike_times_ms < stop) & (run.spike_ids < 200)
        axes[1, col].plot(run.spike_times_ms[spikes], run.spike_ids[spikes], ".", ms=1, mew=0, color="k")
        axes[1, col].set_xlabel("time (ms)")
    axes[0, 0].set_ylabel("readout output z")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[1, 0].set_ylabel("neuron (first 200)")
    fig.tight_layout()
    return fig


def cue_bump_figure(trials: np.ndarray, dt_ms: float, config, metrics: dict | None = None):
    """Trial-averaged readout (first and last trials) against the target, and the learning curve;
    with ``metrics`` (the task's), the title names the measures the claims are judged on."""
    t = np.arange(trials.shape[1]) * dt_ms
    target = config.bump_amplitude * np.exp(-0.5 * ((t - config.latency_ms) / config.bump_width_ms) ** 2)
    n = config.test_trials
    fig, (ax, ax_curve) = plt.subplots(1, 2, figsize=(12, 4))
    ax.plot(t, target, color="0.6", lw=2, label="target")
    ax.plot(t, trials[:n].mean(axis=0), color="tab:orange", label=f"first {n} trials")
    ax.plot(t, trials[-n:].mean(axis=0), color="tab:blue", label=f"last {n} trials")
    ax.axvspan(0, config.cue_ms, color="tab:green", alpha=0.15, label="cue")
    ax.axvline(config.latency_ms, color="k", ls=":", lw=1)
    ax.set_xlabel("time since cue (ms)")
    ax.set_ylabel("readout output (mean over trials)")
    metrics = metrics or {}
    if metrics.get("peak_error_ms") is not None and metrics.get("correlation_with_target_last_trials") is not None:
        ax.set_title(f"last {n} trials: peak {metrics['peak_error_ms']:+.0f} ms from L, half-rise "
                     f"{metrics['anticipatory_lead_ms']:+.0f} ms before L, r with target "
                     f"{metrics['correlation_with_target_last_trials']:.2f}", fontsize=9)
    ax.legend(fontsize=8)
    errors = np.sqrt(np.mean((trials - target) ** 2, axis=1))
    ax_curve.plot(np.arange(1, len(errors) + 1), errors, color="k", lw=0.8)
    ax_curve.set_xlabel("trial")
    ax_curve.set_ylabel("RMS error of the output in the trial")
    ax_curve.set_title("learning curve", fontsize=9)
    fig.tight_layout()
    return fig
