"""Reading run files back and measuring them: the public analysis API.

``analysis`` reads run files (:func:`load_run`) and the engine's public types; it never
builds a network or a task to read a file. The paradigms use it for their metrics; the
experiment layer for a run's summary. A notebook reads like a methods section:

- :mod:`analysis.io`: :func:`load_run` (``lazy_spikes=True``: a :class:`LazyRun` that leaves
  the spikes in the file and reads them by window or block), :func:`load_metrics`, and windowed
  reads of a long run that read only the rows asked for (:func:`read_spikes`: a time window and
  set of neurons; :class:`SpikeFile` for many windows; :func:`read_outputs`,
  :func:`read_traces`, :func:`read_weight_snapshots`);
- :mod:`analysis.trials`: trial onsets, readout outputs aligned to them, peak and half-rise
  times, trial-to-trial reliability of the reservoir's response;
- :mod:`analysis.fits`: line fits with their statistics (:mod:`scipy.stats`);
- :mod:`analysis.geometry`: readout weight trajectories, angles and principal angles between
  readouts with exact (or seeded, from the run's own random stream) nulls, feature PCs and
  projections onto them;
- :mod:`analysis.whatwhen`: the what/when design and the measures of its six claims;
- :mod:`analysis.continual`: accuracy matrix, ACC/BWT, learning curves, lateral-subspace
  diagnostics of continual tasks;
- :mod:`analysis.figures` (what/when and geometry), :mod:`analysis.plots` (rasters, traces) and
  :mod:`analysis.continual`: one function per figure, each returning the figure; importing them
  selects no Matplotlib backend;
- :mod:`analysis.export`: spikes to neo / NWB; :mod:`analysis.spikes`: rates and spectra.
"""
from .io import (LazyRun, Run, SpikeFile, load_metrics, load_run, read_outputs, read_spikes,  # noqa: F401
                 read_traces, read_weight_snapshots)
