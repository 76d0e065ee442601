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

from paradigms import CueBumpTaskConfig, NoTaskConfig, SineTaskConfig

from .config import ConfigError, SimulationConfig, deep_merge, format_validation_error
from .readouts import ReadoutsConfig

TaskConfig = Annotated[Union[NoTaskConfig, SineTaskConfig, CueBumpTaskConfig], Field(discriminator="kind")]


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
        if task.kind == "cue_bump" and self.duration_ms + 1e-9 < task.duration_ms():
            raise ValueError(f"duration_ms: the cue_bump task needs at least n_trials * (trial_ms + iti_ms) "
                             f"= {task.duration_ms():g} ms")
        return self


def load_experiment(path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, merge (preset < file < overrides) and validate an experiment file."""
    from .presets import preset_config

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"experiment file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    merged = deep_merge(data, overrides or {})
    preset = merged.get("preset")
    if preset is not None:
        try:
            merged = deep_merge(preset_config(preset), merged)
        except KeyError as error:
            raise ConfigError(f"preset: {error.args[0]}") from None
    merged.setdefault("name", path.stem)
    return validate_experiment(merged)


def validate_experiment(data: dict[str, Any]) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
