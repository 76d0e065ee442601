from pathlib import Path

import pytest

from .helpers import interpret_kernels

SMALL_WHATWHEN = {"network": {"n_neurons": 300}, "readouts": {"snapshot_every_ms": 2400.0}, "duration_ms": 16 * 1200.0,
                  "task": {"blocks": [{"name": "only", "n_trials": 16}], "test_trials": 4}}
"""The default what/when experiment made small: 300 neurons, 16 trials, a weight snapshot every 2 trials."""


@pytest.fixture(params=["compiled", "interpreted"])
def kernel_mode(request, monkeypatch):
    """Run a test body with the compiled kernels, and again with every kernel of the package as
    plain Python (``py_func``, like ``NUMBA_DISABLE_JIT=1`` but for this test only)."""
    if request.param == "interpreted":
        interpret_kernels(monkeypatch)
    return request.param


@pytest.fixture(scope="session")
def small_whatwhen_run(tmp_path_factory):
    """The folder of one :data:`SMALL_WHATWHEN` run, made once and shared by the analysis tests
    (which only read it)."""
    from reservoir.experiment import load_experiment, run_experiment

    folder = tmp_path_factory.mktemp("small_whatwhen") / "ww"
    experiment = Path(__file__).resolve().parent.parent / "experiments" / "whatwhen.toml"
    run_experiment(load_experiment(experiment, SMALL_WHATWHEN), folder, progress=False)
    return folder


_DESELECTED = []


def pytest_deselected(items):
    _DESELECTED.extend(items)


def pytest_sessionfinish(session, exitstatus):
    """A file whose tests are all slow reproductions, run alone without ``-m slow``, deselects
    them all: that is a pass (exit 0), not pytest's "no tests collected" (exit 5)."""
    if (exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and _DESELECTED
            and all(item.get_closest_marker("slow") for item in _DESELECTED)):
        session.exitstatus = pytest.ExitCode.OK
