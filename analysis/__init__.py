"""Reading run files back: spikes, traces, network, readouts; rate and rhythm statistics;
what/when measures; figures.

``analysis`` reads run files (:func:`load_run`) and the engine's public types; it never
builds a network or a task to read a file. The paradigms use it for their metrics; the
experiment layer for a run's summary.
"""
from .io import Run, load_metrics, load_run, read_spikes  # noqa: F401
