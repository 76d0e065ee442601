"""Run a plain (non-learning) simulation from a validated config into a run folder.

Run folder: ``config.resolved.toml``, ``run.h5``, ``metrics.json``, ``figures/*.png`` and,
when checkpointing is on, ``checkpoint.h5``. The configuration is validated and the network
built before anything is written, so bad input leaves no half-written folder behind.
"""
from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

from .config import SimulationConfig, config_to_dict
from .network import build_network, build_stimulus
from .recording import RunFileRecorder
from .simulation import Simulation

RUN_FILE = "run.h5"
CONFIG_FILE = "config.resolved.toml"
CHECKPOINT_FILE = "checkpoint.h5"


class RunFolderError(RuntimeError):
    """The output folder cannot be used (exists already, or is not a resumable run)."""


def _prepare(config: SimulationConfig):
    network = build_network(config.network, config.integration, config.seed)
    stimulus = build_stimulus(config.stimulus, network, config.n_steps, config.network.firing_type)
    return network, stimulus


def _simulation(config: SimulationConfig, network, stimulus, recorder, progress: bool) -> Simulation:
    chunk_steps = max(1, int(round(config.chunk_ms / config.integration.dt_ms)))
    return Simulation(network, stimulus, seed=config.seed, recorder=recorder,
                      trace_ids=config.recording.trace_neurons,
                      trace_every_steps=config.recording.trace_every_steps,
                      chunk_steps=min(chunk_steps, max(1, 4_000_000 // network.n_neurons)), progress=progress)


def simulate(config: SimulationConfig, out_dir, progress: bool = True, overwrite: bool = False) -> dict:
    """Run ``config`` into ``out_dir``; returns the metrics dict (also in ``metrics.json``)."""
    out = Path(out_dir)
    if (out / RUN_FILE).exists() and not overwrite:
        raise RunFolderError(f"{out / RUN_FILE} exists; choose another --out or pass --overwrite")
    network, stimulus = _prepare(config)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (CHECKPOINT_FILE, "metrics.json"):
        (out / stale).unlink(missing_ok=True)
    config_toml = tomli_w.dumps(config_to_dict(config))
    (out / CONFIG_FILE).write_text(config_toml)
    recorder = RunFileRecorder(
        out / RUN_FILE, network.dt_ms, population=config.recording.population,
        trace_ids=config.recording.trace_neurons, trace_every_steps=config.recording.trace_every_steps,
        attributes={"config_toml": config_toml, "seed": config.seed, "preset": config.preset or ""},
        network=network, store_connectivity=config.recording.store_connectivity,
        record_spikes=config.recording.spikes)
    sim = _simulation(config, network, stimulus, recorder, progress)
    return _execute(config, sim, recorder, out)


def resume(out_dir, progress: bool = True) -> dict:
    """Continue the run in ``out_dir`` from its ``checkpoint.h5`` to the configured duration."""
    out = Path(out_dir)
    for name in (CONFIG_FILE, RUN_FILE, CHECKPOINT_FILE):
        if not (out / name).exists():
            raise RunFolderError(f"cannot resume {out}: {name} is missing")
    config = SimulationConfig.model_validate(tomllib.loads((out / CONFIG_FILE).read_text()))
    network, stimulus = _prepare(config)
    probe = _simulation(config, network, stimulus, recorder=None, progress=False)
    counts = probe.load_checkpoint(out / CHECKPOINT_FILE)
    recorder = RunFileRecorder(out / RUN_FILE, network.dt_ms, population=config.recording.population,
                               trace_ids=config.recording.trace_neurons, resume=counts,
                               record_spikes=config.recording.spikes)
    probe.recorder = recorder
    probe.progress = progress
    return _execute(config, probe, recorder, out)


def _execute(config: SimulationConfig, sim: Simulation, recorder: RunFileRecorder, out: Path) -> dict:
    checkpoint_every = None
    if config.checkpoint_every_ms is not None:
        checkpoint_every = max(1, int(round(config.checkpoint_every_ms / config.integration.dt_ms)))
    started = time.perf_counter()
    try:
        sim.run(n_steps=config.n_steps - sim.step, checkpoint_path=out / CHECKPOINT_FILE,
                checkpoint_every_steps=checkpoint_every)
        recorder.mark("complete", "", sim.step)
    finally:
        recorder.close()
    wall = time.perf_counter() - started
    metrics = write_outputs(out)
    metrics["wall_time_s"] = wall
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def write_outputs(out: Path) -> dict:
    """Compute summary metrics and write the figures of a finished run folder."""
    from analysis import load_run
    from analysis.plots import raster_figure, save, trace_figure
    from analysis.spikes import firing_rates_hz, population_spectrum, spectral_peak_hz

    run = load_run(out)
    rates = firing_rates_hz(run.spike_ids, run.n_neurons, run.duration_ms)
    exc = run.is_excitatory
    metrics: dict = {
        "n_neurons": run.n_neurons, "duration_ms": run.duration_ms, "n_spikes": int(run.spike_ids.size),
        "mean_rate_hz": float(rates.mean()),
        "mean_rate_excitatory_hz": float(rates[exc].mean()) if exc.any() else None,
        "mean_rate_inhibitory_hz": float(rates[~exc].mean()) if (~exc).any() else None,
    }
    if run.n_neurons > 1 and run.spike_ids.size and run.duration_ms >= 500:
        freqs, power = population_spectrum(run.spike_times_ms, run.n_neurons, run.duration_ms)
        metrics["population_rhythm_peak_hz"] = spectral_peak_hz(freqs, power, (1.0, 100.0))
    figures = out / "figures"
    if run.n_neurons > 1 or run.trace_v.shape[1] == 0:
        save(raster_figure(run), figures / "raster.png")
    if run.trace_v.shape[1] > 0:
        save(trace_figure(run), figures / "traces.png")
    metrics["figures"] = sorted(str(p.relative_to(out)) for p in figures.glob("*.png"))
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
