"""Exports of a run to the tools neuroscientists already use: neo (and so elephant) and NWB.

    from analysis import load_run
    from analysis.export import to_neo, to_nwb

    run = load_run("runs/whatwhen-seed1")
    trains = to_neo(run)                       # neo SpikeTrainList, one train per neuron (ms)
    import elephant.statistics as es
    es.mean_firing_rate(trains[0])             # elephant runs on them
    to_nwb(run, "runs/whatwhen-seed1/run.nwb") # units table (s), readout outputs, trials

or from the shell: ``python -m analysis.export RUN_DIR --nwb OUT.nwb``.

A run that stopped early (status ``failed``, ``interrupted`` or ``running``) is exported as far as
it got: its spikes and outputs to the last completed step, the trials it recorded whole; the
NWB session description and the command's output say so. A folder without ``run.h5`` exits
with status 2, a damaged run file with status 1.

neo and pynwb are optional: ``pip install "reservoir[neo]"`` / ``"reservoir[nwb]"``. Times are
kept exactly: neo trains hold the run file's millisecond times unchanged; NWB, whose unit is the
second, holds ``time_ms / 1000`` as float64 (what :func:`to_nwb` writes is what pynwb reads back).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .io import Run, load_run
from .run_status import read_run_status, recorded_whole, run_errors_exit


def _require(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"exporting needs {module}: pip install 'reservoir[{extra}]'") from None


def _window(run: Run, t_start_ms: float, t_stop_ms: float | None) -> tuple[float, float, np.ndarray]:
    t_stop = run.duration_ms if t_stop_ms is None else float(t_stop_ms)
    if not 0.0 <= t_start_ms < t_stop:
        raise ValueError(f"t_start_ms must lie in [0, t_stop_ms), got {t_start_ms} and {t_stop}")
    keep = (run.spike_times_ms >= t_start_ms) & (run.spike_times_ms < t_stop)
    return float(t_start_ms), t_stop, keep


def to_neo(run: Run, t_start_ms: float = 0.0, t_stop_ms: float | None = None):
    """The run's spikes as a ``neo.SpikeTrainList`` (one ``SpikeTrain`` per neuron, in ms, empty
    trains included, each annotated with its ``neuron_id``), from ``t_start_ms`` to ``t_stop_ms``
    (default: the whole run)."""
    neo = _require("neo", "neo")
    import quantities as pq

    t_start, t_stop, keep = _window(run, t_start_ms, t_stop_ms)
    ids = np.arange(run.n_neurons)
    trains = neo.core.spiketrainlist.SpikeTrainList.from_spike_time_array(
        run.spike_times_ms[keep], run.spike_ids[keep], ids, t_stop=t_stop * pq.ms, units=pq.ms,
        t_start=t_start * pq.ms)
    for neuron, train in zip(ids, trains):
        train.annotate(neuron_id=int(neuron), excitatory=bool(run.is_excitatory[neuron]))
    return trains


#: HDF5 filters of the large NWB datasets (spike times, readout outputs): lossless, standard.
NWB_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def to_nwb(run: Run, path, session_description: str | None = None, overwrite: bool = False) -> Path:
    """Write the run as an NWB file: the units table (every neuron's spike times in seconds, with
    its excitatory flag), the readout outputs as a ``TimeSeries`` in ``acquisition`` (one column
    per unit, named in its description), and the task's trial table as NWB trials (start and
    stop in seconds, every column of the table; of a run that stopped early, the trials it
    recorded whole, and the default session description says how far it got). Returns the path."""
    pynwb = _require("pynwb", "nwb")
    from datetime import datetime, timezone

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    name = run.config.get("name") or run.config.get("preset") or "run"
    description = f"reservoir run {name}, seed {run.config.get('seed', '?')}"
    status = str(run.attributes.get("status", "complete"))
    if status != "complete":
        planned = run.config.get("duration_ms")
        description += (f"; stopped early: status {status!r} at t = {run.duration_ms:g} ms"
                        + (f" of {planned:g} ms" if planned is not None else ""))
    nwb = pynwb.NWBFile(
        session_description=session_description or description,
        identifier=f"{name}-seed{run.config.get('seed', '?')}-{run.path.resolve()}",
        session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc),  # simulated: time 0 of the run
        source_script="reservoir", source_script_file_name=str(run.path))
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf.common import VectorData, VectorIndex

    # the units table built whole from its columns (one ragged spike-time column), not unit by unit
    order = np.argsort(run.spike_ids, kind="stable")
    ids, times_s = run.spike_ids[order], run.spike_times_ms[order] / 1000.0
    bounds = np.searchsorted(ids, np.arange(run.n_neurons + 1))
    spike_times = VectorData(name="spike_times", description="the spike times of each unit, in seconds",
                             data=H5DataIO(times_s, **NWB_COMPRESSION))
    nwb.units = pynwb.misc.Units(name="units", description="the reservoir's neurons", id=np.arange(run.n_neurons),
                                 columns=[spike_times,
                                          VectorIndex(name="spike_times_index", data=bounds[1:], target=spike_times),
                                          VectorData(name="excitatory", data=run.is_excitatory[:run.n_neurons],
                                                     description="whether the neuron is excitatory"),
                                          VectorData(name="neuron_id", data=np.arange(run.n_neurons),
                                                     description="the neuron's id in the reservoir (run.h5)")])
    if run.outputs.size:
        nwb.add_acquisition(pynwb.TimeSeries(
            name="readout_outputs", data=H5DataIO(run.outputs, **NWB_COMPRESSION), timestamps=run.output_time_ms / 1000.0, unit="a.u.",
            description="readout unit outputs z, columns: " + ", ".join(run.unit_names)))
    trials = run.tables.get("trials")
    if trials:
        period_ms = _trial_period_ms(run)
        onset_s = trials["onset_step"] * run.dt_ms / 1000.0
        columns = [c for c in trials if c != "onset_step"]
        for column in columns:
            nwb.add_trial_column(column, f"the task's trial table column {column!r}")
        for i in np.flatnonzero(recorded_whole(run, onset_s * 1000.0, period_ms)):
            nwb.add_trial(start_time=float(onset_s[i]), stop_time=float(onset_s[i] + period_ms / 1000.0),
                          **{c: trials[c][i].item() for c in columns})
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _trial_period_ms(run: Run) -> float:
    task = run.config.get("task", {})
    period = task.get("trial_ms", 0.0) + task.get("iti_ms", 0.0)
    if period > 0:
        return float(period)
    onsets = np.asarray(run.tables["trials"]["onset_step"]) * run.dt_ms
    return float(np.median(np.diff(onsets))) if onsets.size > 1 else run.duration_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.export",
                                     description="Export a run folder's spikes, readout outputs and trials.")
    parser.add_argument("run", help="run folder (or its run.h5)")
    parser.add_argument("--nwb", metavar="OUT.nwb", required=True, help="write an NWB file")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT.nwb if it exists")
    args = parser.parse_args(argv)
    with run_errors_exit(parser):
        status = read_run_status(args.run)
        run = load_run(args.run)
        if not status.complete:
            trials = run.tables.get("trials")
            kept = ""
            if trials:
                whole = recorded_whole(run, trials["onset_step"] * run.dt_ms, _trial_period_ms(run))
                kept = f" and the {int(whole.sum())} of its {whole.size} trials recorded whole"
            print(status.partial(f"exporting its spikes and readout outputs to t = {status.completed_ms:g} ms{kept}"))
        try:
            path = to_nwb(run, args.nwb, overwrite=args.overwrite)
        except (ImportError, FileExistsError) as error:
            parser.error(str(error))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
