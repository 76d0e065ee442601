"""Run a configuration (a plain simulation or an experiment) into a run folder.

Run folder: ``config.resolved.toml``, ``run.h5``, ``metrics.json``, ``figures/*.png`` and,
when checkpointing is on, ``checkpoint.h5``. The configuration is validated and the network
built before anything is written, so bad input leaves no half-written folder behind.

The task cuts the run into segments (trials, training phases) and acts between them
(:meth:`paradigms.Task.after_segment`); it is attached to the simulation's checkpoints, so a
resumed run continues with the task's memory (pending replay windows, logs, segments done)
exactly where the checkpoint left it.
"""
from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w

from analysis import load_run
from analysis.plots import raster_figure, save, trace_figure
from analysis.spikes import firing_rates_hz, population_spectrum, spectral_peak_hz
from paradigms import Task

from ..config import SimulationConfig, config_to_dict
from ..inputs import ExternalInput
from ..network import Network, build_network, build_stimulus
from ..readouts import Readouts, Teacher
from ..recording import RunFileRecorder
from ..simulation import Simulation
from .config import make_task, validate_run_config

RUN_FILE = "run.h5"
CONFIG_FILE = "config.resolved.toml"
CHECKPOINT_FILE = "checkpoint.h5"
METRICS_FILE = "metrics.json"


class RunFolderError(RuntimeError):
    """The output folder cannot be used (exists already, or is not a resumable run)."""


@dataclass
class Prepared:
    """Everything a configuration builds before its run starts."""

    network: Network
    readouts: Readouts | None
    task: Task
    external_input: ExternalInput
    teacher: Teacher | None


def prepare(config: SimulationConfig) -> Prepared:
    """Build the network, the readouts and the task of ``config``, and the task's input and teacher."""
    network = build_network(config.network, config.integration, config.seed)
    readouts_config = getattr(config, "readouts", None)
    readouts = (Readouts(readouts_config, network.n_neurons, network.dt_ms, config.seed)
                if readouts_config is not None else None)
    task = make_task(config)
    external_input, teacher = task.prepare(network, readouts)
    if external_input.n_channels == 0:
        external_input = build_stimulus(config.stimulus, network, config.n_steps, config.network.firing_type)
    return Prepared(network, readouts, task, external_input, teacher)


def make_simulation(config: SimulationConfig, prepared: Prepared, recorder=None, progress: bool = False) -> Simulation:
    """The :class:`~reservoir.simulation.Simulation` of a prepared configuration, with its task
    attached to the checkpoints."""
    network = prepared.network
    chunk_steps = max(1, int(round(config.chunk_ms / config.integration.dt_ms)))
    sim = Simulation(network, prepared.external_input, seed=config.seed, recorder=recorder,
                     trace_ids=config.recording.trace_neurons,
                     trace_every_steps=config.recording.trace_every_steps,
                     chunk_steps=min(chunk_steps, max(1, 4_000_000 // network.n_neurons)), progress=progress,
                     readouts=prepared.readouts, teacher=prepared.teacher)
    sim.attach("task", prepared.task)
    return sim


def _recorder(config: SimulationConfig, out: Path, prepared: Prepared, resume=None) -> RunFileRecorder:
    config_toml = tomli_w.dumps(config_to_dict(config))
    return RunFileRecorder(
        out / RUN_FILE, prepared.network.dt_ms, population=config.recording.population,
        trace_ids=config.recording.trace_neurons, trace_every_steps=config.recording.trace_every_steps,
        attributes={"config_toml": config_toml, "seed": config.seed, "preset": config.preset or ""},
        network=prepared.network, store_connectivity=config.recording.store_connectivity,
        record_spikes=config.recording.spikes, readouts=prepared.readouts, resume=resume)


def simulate(config: SimulationConfig, out_dir, progress: bool = True, overwrite: bool = False) -> dict:
    """Run ``config`` (a plain simulation or an experiment) into ``out_dir``; returns the metrics
    (also written to ``metrics.json``)."""
    out = Path(out_dir)
    if (out / RUN_FILE).exists() and not overwrite:
        raise RunFolderError(f"{out / RUN_FILE} exists; choose another --out or pass --overwrite")
    prepared = prepare(config)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (CHECKPOINT_FILE, METRICS_FILE):
        (out / stale).unlink(missing_ok=True)
    (out / CONFIG_FILE).write_text(tomli_w.dumps(config_to_dict(config)))
    recorder = _recorder(config, out, prepared)
    for name, columns in prepared.task.tables().items():
        recorder.write_table(name, columns)
    sim = make_simulation(config, prepared, recorder, progress)
    return _execute(config, sim, recorder, prepared.task, out)


def run_experiment(config, out_dir, progress: bool = True, overwrite: bool = False) -> dict:
    """Alias of :func:`simulate` for experiment configurations (readouts and a task)."""
    return simulate(config, out_dir, progress=progress, overwrite=overwrite)


def resume(out_dir, progress: bool = True) -> dict:
    """Continue the run in ``out_dir`` from its ``checkpoint.h5`` to the configured duration."""
    out = Path(out_dir)
    for name in (CONFIG_FILE, RUN_FILE, CHECKPOINT_FILE):
        if not (out / name).exists():
            raise RunFolderError(f"cannot resume {out}: {name} is missing")
    config = validate_run_config(tomllib.loads((out / CONFIG_FILE).read_text()))
    prepared = prepare(config)
    sim = make_simulation(config, prepared, progress=progress)
    counts = sim.load_checkpoint(out / CHECKPOINT_FILE)
    recorder = _recorder(config, out, prepared, resume=counts)
    sim.recorder = recorder
    return _execute(config, sim, recorder, prepared.task, out)


def _execute(config: SimulationConfig, sim: Simulation, recorder: RunFileRecorder, task: Task, out: Path) -> dict:
    dt = config.integration.dt_ms
    checkpoint_every = None
    if config.checkpoint_every_ms is not None:
        checkpoint_every = max(1, int(round(config.checkpoint_every_ms / dt)))
    snapshot_every = None
    readouts_config = getattr(config, "readouts", None)
    if readouts_config is not None and readouts_config.snapshot_every_ms is not None:
        snapshot_every = max(1, int(round(readouts_config.snapshot_every_ms / dt)))
    started = time.perf_counter()
    try:
        for index, segment in enumerate(task.segments()):
            if index < task.segments_done:
                continue  # done before the checkpoint this run resumed from
            sim.run(n_steps=segment.start_step + segment.n_steps - sim.step, checkpoint_path=out / CHECKPOINT_FILE,
                    checkpoint_every_steps=checkpoint_every, snapshot_every_steps=snapshot_every)
            task.after_segment(sim, index)
            task.segments_done = index + 1
        recorder.mark("complete", "", sim.step)
    finally:
        recorder.close()
    wall = time.perf_counter() - started
    metrics = write_outputs(out, task)
    metrics["wall_time_s"] = wall
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def write_outputs(out: Path, task: Task | None = None) -> dict:
    """Compute the summary metrics (the task's too) and write the figures of a finished run folder."""
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
    if task is not None:
        task_metrics = task.metrics(run, out)
        metrics.update(task_metrics)
        task.figures(run, out, task_metrics)
    metrics["figures"] = sorted(str(p.relative_to(out)) for p in figures.glob("*.png"))
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
