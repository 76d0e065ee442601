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

import errno
import json
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w
from tqdm import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

from analysis import load_run
from analysis.plots import raster_figure, save, trace_figure
from analysis.spikes import rate_spectrum, spectral_peak_hz, tally_spikes
from paradigms import Task

from ..config import SimulationConfig, config_to_dict
from ..inputs import ExternalInput
from ..network import Network, build_network, build_stimulus
from ..readouts import Readouts, Teacher
from ..recording import DiskFullError, RunFileRecorder
from ..simulation import Simulation
from .config import make_task, validate_run_config
from .guards import InterruptRequest, RunFolderError, RunFolderLock, check_resources

RUN_FILE = "run.h5"
CONFIG_FILE = "config.resolved.toml"
CHECKPOINT_FILE = "checkpoint.h5"
METRICS_FILE = "metrics.json"


class RunInterrupted(RuntimeError):
    """The run was stopped by ctrl-C; it checkpointed where it stopped and can be resumed."""

    def __init__(self, out: Path, step: int, resumable: bool = True, phase: str = "simulation"):
        self.out, self.step, self.resumable = out, step, resumable
        if phase == "metrics":
            text = (f"interrupted while computing the metrics; the simulation is complete ({step} steps) and "
                    f"checkpointed: reservoir run --resume {out} computes them")
        elif resumable:
            text = f"interrupted at step {step}; resume it with: reservoir run --resume {out}"
        else:
            text = (f"interrupted at step {step}, between checkpoints; resume from the last periodic checkpoint, "
                    f"if any, with: reservoir run --resume {out}")
        super().__init__(text)


class RunFailedError(RuntimeError):
    """Writing the run failed (disk full, file too large, I/O error); the run file is marked
    failed and the last checkpoint, if any, is left whole.

    ``hdf5_broken`` is True when HDF5 itself failed a write (the disk filled between the room
    check and the write): the library then cannot close that file, and a process that ends
    normally crashes in HDF5's clean-up, so the command line leaves with ``os._exit``."""

    def __init__(self, message: str, hdf5_broken: bool = False):
        super().__init__(message)
        self.hdf5_broken = hdf5_broken


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


def make_simulation(config: SimulationConfig, prepared: Prepared, recorder=None, progress: bool = False,
                    threads=None) -> Simulation:
    """The :class:`~reservoir.simulation.Simulation` of a prepared configuration, with its task
    attached to the checkpoints (``threads``: replaces the configuration's thread count)."""
    network = prepared.network
    chunk_steps = max(1, int(round(config.chunk_ms / config.integration.dt_ms)))
    sim = Simulation(network, prepared.external_input, seed=config.seed, recorder=recorder,
                     trace_ids=config.recording.trace_neurons,
                     trace_every_steps=config.recording.trace_every_steps,
                     chunk_steps=min(chunk_steps, max(1, 20_000_000 // network.n_neurons)), progress=progress,
                     readouts=prepared.readouts, teacher=prepared.teacher,
                     threads=config.threads if threads is None else threads)
    sim.attach("task", prepared.task)
    return sim


def make_recorder(config: SimulationConfig, out: Path, prepared: Prepared, resume=None) -> RunFileRecorder:
    """The run file recorder of a prepared configuration (with ``resume``: reopened and cut back to those counts)."""
    config_toml = tomli_w.dumps(config_to_dict(config))
    return RunFileRecorder(
        out / RUN_FILE, prepared.network.dt_ms, population=config.recording.population,
        trace_ids=config.recording.trace_neurons, trace_every_steps=config.recording.trace_every_steps,
        attributes={"config_toml": config_toml, "seed": config.seed, "preset": config.preset or ""},
        network=prepared.network, store_connectivity=config.recording.store_connectivity,
        record_spikes=config.recording.spikes, readouts=prepared.readouts, resume=resume)


def simulate(config: SimulationConfig, out_dir, progress: bool = True, overwrite: bool = False) -> dict:
    """Run ``config`` (a plain simulation or an experiment) into ``out_dir``; returns the metrics
    (also written to ``metrics.json``).

    Refused before anything is written: an existing run without ``overwrite``, a folder another
    process is writing (:class:`RunFolderError`), a run too large for the disk or the memory
    (:class:`~reservoir.config.ConfigError`). Ctrl-C checkpoints and raises
    :class:`RunInterrupted`; a failed write raises :class:`RunFailedError`.
    """
    out = Path(out_dir)
    if (out / RUN_FILE).exists() and not overwrite:
        raise RunFolderError(f"{out / RUN_FILE} exists; choose another --out or pass --overwrite")
    check_resources(config, out)
    prepared = prepare(config)
    out.mkdir(parents=True, exist_ok=True)
    with RunFolderLock(out):
        if (out / RUN_FILE).exists() and not overwrite:  # written meanwhile by another process
            raise RunFolderError(f"{out / RUN_FILE} exists; choose another --out or pass --overwrite")
        for stale in (CHECKPOINT_FILE, METRICS_FILE):
            (out / stale).unlink(missing_ok=True)
        (out / CONFIG_FILE).write_text(tomli_w.dumps(config_to_dict(config)))
        recorder = make_recorder(config, out, prepared)
        for name, columns in prepared.task.tables().items():
            recorder.write_table(name, columns)
        sim = make_simulation(config, prepared, recorder)
        return _execute(config, sim, recorder, prepared.task, out, progress)


def run_experiment(config, out_dir, progress: bool = True, overwrite: bool = False) -> dict:
    """Alias of :func:`simulate` for experiment configurations (readouts and a task)."""
    return simulate(config, out_dir, progress=progress, overwrite=overwrite)


def run_status(out_dir) -> str:
    """The status a run folder's ``run.h5`` records (``running``, ``complete``, ``failed``,
    ``interrupted``), or ``missing``; a file that cannot be read is ``damaged``."""
    from reservoir.recording import FileFormatError, open_hdf5

    file = Path(out_dir) / RUN_FILE
    if not file.exists():
        return "missing"
    try:
        with open_hdf5(file) as f:
            return str(f.attrs.get("status", "damaged"))
    except (FileFormatError, OSError):
        return "damaged"


def resume(out_dir, progress: bool = True, threads=None) -> dict:
    """Continue the run in ``out_dir`` from its ``checkpoint.h5`` to the configured duration
    (with ``threads``: that many kernel threads instead of the configuration's; the results do not
    depend on it).

    The run file is cut back to what the checkpoint covers, so the finished folder is the one
    an uninterrupted run writes (same datasets)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise RunFolderError(f"cannot resume {out}: no such folder")
    with RunFolderLock(out):
        for name in (CONFIG_FILE, RUN_FILE, CHECKPOINT_FILE):
            if not (out / name).exists():
                hint = (" (the run wrote no checkpoint before it stopped: set checkpoint_every_ms, or rerun it)"
                        if name == CHECKPOINT_FILE else "")
                raise RunFolderError(f"cannot resume {out}: {name} is missing{hint}")
        if run_status(out) == "complete" and (out / METRICS_FILE).exists():
            raise RunFolderError(f"cannot resume {out}: the run is complete")
        config = validate_run_config(tomllib.loads((out / CONFIG_FILE).read_text()))
        prepared = prepare(config)
        sim = make_simulation(config, prepared, threads=threads)
        counts = sim.load_checkpoint(out / CHECKPOINT_FILE)
        (out / METRICS_FILE).unlink(missing_ok=True)
        recorder = make_recorder(config, out, prepared, resume=counts)
        sim.recorder = recorder
        return _execute(config, sim, recorder, prepared.task, out, progress)


def _write_failure(error: Exception) -> bool:
    """True for the errors of a write that cannot go on (disk full, file too large, I/O); HDF5
    reports them as ``OSError`` or ``RuntimeError`` with the C library's errno in the text."""
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT, errno.EROFS):
        return True
    text = str(error).lower()
    return any(word in text for word in ("no space left", "file too large", "file write failed", "disk quota"))


def _execute(config: SimulationConfig, sim: Simulation, recorder: RunFileRecorder, task: Task, out: Path,
             progress: bool = True) -> dict:
    dt = config.integration.dt_ms
    checkpoint_every = None
    if config.checkpoint_every_ms is not None:
        checkpoint_every = max(1, int(round(config.checkpoint_every_ms / dt)))
    snapshot_every = None
    readouts_config = getattr(config, "readouts", None)
    if readouts_config is not None and readouts_config.snapshot_every_ms is not None:
        snapshot_every = max(1, int(round(readouts_config.snapshot_every_ms / dt)))
    segments = task.segments()
    started = time.perf_counter()
    hdf5_broken = False  # HDF5 failed a write: its handle of the run file must be left alone
    # one bar for the whole run (None: tqdm hides it when stderr is not a terminal)
    bar = tqdm(total=round(config.n_steps * dt, 6), initial=round(sim.step * dt, 6), unit="ms", desc=config_name(config),
               disable=True if not progress else None, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} ms [{elapsed}<{remaining}{postfix}]")
    try:
        with InterruptRequest() as stop:
            for index, segment in enumerate(segments):
                if index < task.segments_done:
                    continue  # done before the checkpoint this run resumed from
                if len(segments) > 1:
                    bar.set_postfix_str(f"{segment.label} ({index + 1}/{len(segments)})", refresh=False)
                finished = sim.run(n_steps=segment.start_step + segment.n_steps - sim.step,
                                   checkpoint_path=out / CHECKPOINT_FILE, checkpoint_every_steps=checkpoint_every,
                                   snapshot_every_steps=snapshot_every, progress_bar=bar, should_stop=stop)
                if finished:
                    task.after_segment(sim, index)
                    task.segments_done = index + 1
                if stop.requested and task.segments_done < len(segments):
                    sim.save_checkpoint(out / CHECKPOINT_FILE)
                    error = RunInterrupted(out, sim.step)
                    recorder.mark("interrupted", str(error), sim.step)
                    raise error
        checkpoint_end(sim, out)
        recorder.mark("complete", "", sim.step)
    except KeyboardInterrupt:  # a second ctrl-C: no safe point to checkpoint at
        error = RunInterrupted(out, sim.step, resumable=False)
        _mark_quietly(recorder, "interrupted", str(error), sim.step)
        raise error from None
    except (OSError, RuntimeError) as error:
        if isinstance(error, RunInterrupted) or not _write_failure(error):
            raise
        hdf5_broken = not isinstance(error, DiskFullError)
        message = (f"writing {out} failed at step {sim.step} (t = {sim.step * dt:g} ms): {error}. "
                   + ("The last checkpoint is whole; free space and resume with: reservoir run --resume "
                      f"{out}" if (out / CHECKPOINT_FILE).exists() else
                      "No checkpoint was written (set checkpoint_every_ms to make long runs resumable)."))
        if not hdf5_broken:
            recorder.mark("failed", message, sim.step)
        raise RunFailedError(message, hdf5_broken) from error
    finally:
        bar.close()
        if not hdf5_broken:
            recorder.close()
    wall = time.perf_counter() - started
    try:
        metrics = write_outputs(out, task)
    except KeyboardInterrupt:
        raise RunInterrupted(out, sim.step, phase="metrics") from None
    metrics["wall_time_s"] = wall
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    if config.checkpoint_every_ms is None:
        (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    return metrics


def checkpoint_end(sim: Simulation, out: Path) -> None:
    """Checkpoint the final state, so that a run stopped while computing its metrics can be
    resumed to them (removed once they are written, unless checkpoints were asked for)."""
    sim.save_checkpoint(out / CHECKPOINT_FILE)


def config_name(config) -> str:
    return getattr(config, "name", None) or "run"


def _mark_quietly(recorder: RunFileRecorder, status: str, message: str, step: int) -> None:
    """Mark the run file, if it can still be written (a full disk may refuse even that)."""
    try:
        recorder.mark(status, message, step)
    except (OSError, RuntimeError):
        pass


def write_outputs(out: Path, task: Task | None = None) -> dict:
    """Compute the summary metrics (the task's too) and write the figures of a finished run folder.

    The spikes stay in the run file (a lazy run): the rates and the population rhythm come from
    one pass over it in blocks, the analyses read the windows they need."""
    run = load_run(out, lazy_spikes=True)
    with_rhythm = run.n_neurons > 1 and run.n_spikes > 0 and run.duration_ms >= 500
    window_ms = min(1000.0, run.duration_ms)
    tally = tally_spikes(run, bin_ms=1.0 if with_rhythm else None, window_ms=window_ms)
    rates = tally.firing_rates_hz()
    at_limit = tally.neurons_at_step_limit(run.dt_ms)
    exc = run.is_excitatory
    metrics: dict = {
        "n_neurons": run.n_neurons, "duration_ms": run.duration_ms, "n_spikes": tally.n_spikes,
        "mean_rate_hz": float(rates.mean()),
        "mean_rate_excitatory_hz": float(rates[exc].mean()) if exc.any() else None,
        "mean_rate_inhibitory_hz": float(rates[~exc].mean()) if (~exc).any() else None,
        "neurons_at_step_limit": at_limit.tolist(),
    }
    if at_limit.size:
        remedy = ("integration.scheme = 'izhikevich2003' or a smaller integration.dt_ms"
                  if run.config.get("integration", {}).get("scheme") == "euler"
                  else "a smaller integration.dt_ms or a weaker input")
        print(f"warning: {at_limit.size} neuron(s) fired every other step for {window_ms:g} ms (e.g. neuron "
              f"{at_limit[0]}): a spurious cycle of the integration, not a firing pattern; use {remedy} "
              f"(docs/model-and-numerics.md, 'Step-limit cycles')",
              file=sys.stderr)
    if with_rhythm:
        freqs, power = rate_spectrum(tally.population_rate_hz()[1], bin_ms=1.0)
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
