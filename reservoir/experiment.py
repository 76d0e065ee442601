"""Experiment files: a simulation configuration plus readouts and a task, loaded from TOML.

An experiment file is TOML with the keys of :class:`~reservoir.config.SimulationConfig` plus a
``[readouts]`` section (:class:`~reservoir.readouts.ReadoutsConfig`) and a ``[task]`` section
whose ``kind`` selects the paradigm (:data:`paradigms.TASKS`). A ``preset`` key merges that
preset's values under the file's. Everything is validated before anything runs; errors name the
key path.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field, ValidationError, model_validator

from paradigms import CueBumpTaskConfig, NoTaskConfig, SineTaskConfig, WhatWhenTaskConfig

from .config import ConfigError, SimulationConfig, deep_merge, format_validation_error
from .readouts import ReadoutsConfig

TaskConfig = Annotated[Union[NoTaskConfig, SineTaskConfig, CueBumpTaskConfig, WhatWhenTaskConfig],
                      Field(discriminator="kind")]


class ExperimentConfig(SimulationConfig):
    """A full experiment: network, integration, recording, readouts and task."""

    name: str = "experiment"
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
            raise ValueError(f"duration_ms: the {task.kind} task needs at least its trials' total "
                             f"(trials x (trial_ms + iti_ms)) = {task.duration_ms():g} ms")
        if task.kind == "whatwhen" and task.what_group is not None:
            names = [g.name for g in self.readouts.groups]
            if task.what_group not in names:
                raise ValueError(f"task.what_group: {task.what_group!r} is not a readout group (groups: {names})")
        return self


def load_experiment(path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, merge (preset < file < overrides) and validate an experiment file."""
    from .presets import preset_config

    path = Path(path)
    data = _read_with_bases(path)
    merged = deep_merge(data, overrides or {})
    preset = merged.get("preset")
    if preset is not None:
        try:
            merged = deep_merge(preset_config(preset), merged)
        except KeyError as error:
            raise ConfigError(f"preset: {error.args[0]}") from None
    merged.setdefault("name", path.stem)
    return validate_experiment(merged)


def _read_with_bases(path: Path, seen: tuple = ()) -> dict[str, Any]:
    """The file's table merged over its ``base`` file's (a path relative to it), recursively.

    Arrays of tables (``[[task.cues]]``, ``[[task.blocks]]``) in a file replace the base's.
    """
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"experiment file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = (path.parent / base).resolve()
    if base_path in seen:
        raise ConfigError(f"base: {path} and {base_path} include each other")
    merged = deep_merge(_read_with_bases(base_path, seen + (base_path,)), data)
    if "name" not in data:
        merged.pop("name", None)  # a derived file is named after itself
    return merged


def validate_experiment(data: dict[str, Any]) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
