"""The experiment layer: experiment files with the task registry, the runner, the command line.

It sits on top of the others: it builds the engine's network and readouts (:mod:`reservoir`),
the paradigm's task (:mod:`paradigms`), runs them into a run folder and measures the result
(:mod:`analysis`). Nothing below imports it.

- :mod:`.config`: :class:`ExperimentConfig`, :data:`TASKS`, :func:`load_experiment`;
- :mod:`.runner`: :func:`simulate` / :func:`run_experiment` / :func:`resume` into a run folder;
- :mod:`.guards`: the run folder's lock, ctrl-C handling and the disk/memory estimate;
- :mod:`.cli`: the ``reservoir`` command; :mod:`.reproduce`: multi-seed reproductions;
- :mod:`.reference`: the configuration reference (``docs/configuration.md``), generated from the models.

The names below load their module on first use (PEP 562), so that ``reservoir --help`` does not
wait for the paradigms, the analysis and Matplotlib to import.
"""
from importlib import import_module

_EXPORTS = {
    "config": ["TASKS", "ExperimentConfig", "load_experiment", "make_task", "validate_experiment",
               "validate_run_config"],
    "runner": ["Prepared", "RunFailedError", "RunFolderError", "RunInterrupted", "make_simulation", "prepare", "resume",
               "run_experiment", "run_status", "simulate", "write_outputs"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
