"""Reading run files back: spikes, traces, network; rate and rhythm statistics; figures."""
from .io import Run, load_run  # noqa: F401
