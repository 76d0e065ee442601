"""Experiment files: a simulation configuration plus readouts and a task, loaded from TOML.

An experiment file is TOML with the keys of :class:`~reservoir.config.SimulationConfig` plus a
``[readouts]`` section (:class:`~reservoir.readouts.ReadoutsConfig`) and a ``[task]`` section
whose ``kind`` selects the paradigm (:data:`TASKS`, the task registry). A ``preset`` key merges
that preset's values under the file's; a ``base`` key names a file whose values this one
overrides. Everything is validated before anything runs; errors name the key path.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, ValidationError, model_validator

from paradigms import CueBumpTask, CueBumpTaskConfig, NoTaskConfig, SineTask, SineTaskConfig, Task, WhatWhenTask
from paradigms import PermutedDigitsTask, PermutedDigitsTaskConfig, WhatWhenTaskConfig

from ..config import ConfigError, SimulationConfig, deep_merge, format_validation_error, reject_non_finite
from ..presets import preset_config
from ..readouts import ReadoutsConfig

TASKS: dict[str, tuple[type[BaseModel], type[Task]]] = {
    "none": (NoTaskConfig, Task),
    "sine": (SineTaskConfig, SineTask),
    "cue_bump": (CueBumpTaskConfig, CueBumpTask),
    "whatwhen": (WhatWhenTaskConfig, WhatWhenTask),
    "permuted_digits": (PermutedDigitsTaskConfig, PermutedDigitsTask),
}
"""The task registry: ``[task] kind`` -> (its configuration model, its :class:`~paradigms.Task` class)."""

TaskConfig = Annotated[Union[tuple(config for config, _ in TASKS.values())], Field(discriminator="kind")]


class ExperimentConfig(SimulationConfig):
    """A full experiment: network, integration, recording, readouts and task."""

    name: str = Field("experiment", description="names the default output folder `runs/NAME-seedSEED`")
    readouts: ReadoutsConfig | None = None
    task: TaskConfig = NoTaskConfig()

    @model_validator(mode="after")
    def _task_fits(self) -> "ExperimentConfig":
        task = self.task
        if task.kind != "none":
            if self.readouts is None:
                raise ValueError(f"task: kind {task.kind!r} needs a [readouts] section")
            names = [g.name for g in self.readouts.groups]
            if task.group not in names:
                raise ValueError(f"task.group: {task.group!r} is not a readout group (groups: {names})")
            if self.stimulus.kind != "none":
                raise ValueError("stimulus.kind: a task supplies its own input; leave stimulus.kind = 'none'")
        if task.kind == "sine":
            rules = {g.name: g.rule for g in self.readouts.groups}
            if rules[task.group] != "rls":
                raise ValueError(f"task.group: the sine task trains an rls group; {task.group!r} uses {rules[task.group]!r}")
            if task.learn_stop_ms > self.duration_ms:
                raise ValueError("task.learn_stop_ms: must not exceed duration_ms")
        if task.kind in ("cue_bump", "whatwhen") and self.duration_ms + 1e-9 < task.duration_ms():
            trials = "task.n_trials" if task.kind == "cue_bump" else "the sum of task.blocks' n_trials"
            raise ValueError(f"duration_ms: the {task.kind} task needs at least its trials' total "
                             f"({trials} x (task.trial_ms + task.iti_ms)) = {task.duration_ms():g} ms")
        if task.kind == "permuted_digits" and self.duration_ms + 1e-9 < task.duration_ms():
            raise ValueError(f"duration_ms: the permuted_digits task needs at least its presentations' total "
                             f"(task.n_tasks x (task.epochs_per_task x training images + test images) x "
                             f"(task.presentation_ms + task.gap_ms)) = {task.duration_ms():g} ms")
        if task.kind == "whatwhen" and task.what_group is not None:
            names = [g.name for g in self.readouts.groups]
            if task.what_group not in names:
                raise ValueError(f"task.what_group: {task.what_group!r} is not a readout group (groups: {names})")
        return self


def make_task(config: SimulationConfig) -> Task:
    """The task object of ``config`` (a plain run gets the base :class:`~paradigms.Task`)."""
    task_config = getattr(config, "task", NoTaskConfig())
    return TASKS[task_config.kind][1](task_config, config.n_steps, config.integration.dt_ms, config.seed)


def load_experiment(path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, merge (preset < base files < file < overrides) and validate an experiment file."""
    path = Path(path)
    data = _read_with_bases(path)
    merged = deep_merge(data, overrides or {})
    preset = merged.get("preset")
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"preset: expected a preset name (text; 'reservoir presets' lists them), got {preset!r}")
        try:
            merged = deep_merge(preset_config(preset), merged)
        except KeyError as error:
            raise ConfigError(f"preset: {error.args[0]}") from None
    merged.setdefault("name", path.stem)
    return validate_experiment(merged)


def read_toml(path: Path, what: str, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """The table of the TOML file ``path``; ``error`` naming it (as ``what``) if it does not
    exist or is not valid TOML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file") from None
    except OSError as failure:
        raise error(f"{what} {path} cannot be read: {failure.strerror or failure}") from None
    except UnicodeDecodeError as decode:
        line = decode.object[:decode.start].count(b"\n") + 1
        raise error(f"{path} is not valid TOML: not UTF-8 text (byte {decode.start}, line {line})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as decode:
        message = str(decode)
        if message.endswith("(at end of document)"):  # say where that is
            lines = text.split("\n")
            message = message.removesuffix(")") + f": line {len(lines)}, column {len(lines[-1]) + 1})"
        raise error(f"{path} is not valid TOML: {message}") from None


def _read_with_bases(path: Path, seen: tuple = ()) -> dict[str, Any]:
    """The file's table merged over its ``base`` file's (a path relative to it), recursively.

    Arrays of tables (``[[task.cues]]``, ``[[task.blocks]]``) in a file replace the base's.
    """
    data = read_toml(path, "experiment file")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"base: expected the name of an experiment file (text, relative to {path}), got {base!r}")
    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise ConfigError(f"base: {base!r} in {path}: there is no file {base_path}")
    if base_path in seen:
        raise ConfigError(f"base: {path} and {base_path} include each other")
    merged = deep_merge(_read_with_bases(base_path, seen + (base_path,)), data)
    if "name" not in data:
        merged.pop("name", None)  # a derived file is named after itself
    return merged


def validate_experiment(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a merged experiment dictionary; raises :class:`~reservoir.config.ConfigError`."""
    reject_non_finite(data)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, union_tags={"task": set(TASKS)})) from None


def validate_run_config(data: dict[str, Any]) -> SimulationConfig:
    """The configuration of a run folder (``config.resolved.toml``): an experiment if it has a
    ``[task]`` or ``[readouts]`` section, else a plain simulation."""
    if "task" in data or "readouts" in data:
        return validate_experiment(data)
    reject_non_finite(data)
    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
