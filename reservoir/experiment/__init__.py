"""The experiment layer: experiment files with the task registry, the runner, the command line.

It sits on top of the others: it builds the engine's network and readouts (:mod:`reservoir`),
the paradigm's task (:mod:`paradigms`), runs them into a run folder and measures the result
(:mod:`analysis`). Nothing below imports it.

- :mod:`.config`: :class:`ExperimentConfig`, :data:`TASKS`, :func:`load_experiment`;
- :mod:`.runner`: :func:`simulate` / :func:`run_experiment` / :func:`resume` into a run folder;
- :mod:`.cli`: the ``reservoir`` command; :mod:`.reproduce`: multi-seed reproductions;
- :mod:`.reference`: the configuration reference (``docs/configuration.md``), generated from the models.
"""
from .config import TASKS, ExperimentConfig, load_experiment, make_task, validate_experiment, validate_run_config
from .runner import Prepared, RunFolderError, make_simulation, prepare, resume, run_experiment, simulate, write_outputs

__all__ = ["TASKS", "ExperimentConfig", "Prepared", "RunFolderError", "load_experiment", "make_simulation",
           "make_task", "prepare", "resume", "run_experiment", "simulate", "validate_experiment",
           "validate_run_config", "write_outputs"]
