"""Task paradigms: what each trial feeds in and what each readout should learn.

Each task kind has a configuration model (the ``[task]`` section of an experiment file) and a
:class:`~paradigms.base.Task` class; :data:`TASKS` maps ``kind`` to both.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from .base import Segment, Task
from .cue_bump import CueBumpTask, CueBumpTaskConfig
from .force_sine import SineTask, SineTaskConfig
from .whatwhen import WhatWhenTask, WhatWhenTaskConfig


class NoTaskConfig(BaseModel):
    """No task: the network runs with the ``[stimulus]`` section's input, readouts are idle."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["none"] = "none"


TASKS: dict[str, tuple[type[BaseModel], type[Task]]] = {
    "none": (NoTaskConfig, Task),
    "sine": (SineTaskConfig, SineTask),
    "cue_bump": (CueBumpTaskConfig, CueBumpTask),
    "whatwhen": (WhatWhenTaskConfig, WhatWhenTask),
}

__all__ = ["TASKS", "NoTaskConfig", "Segment", "Task", "SineTaskConfig", "CueBumpTaskConfig", "WhatWhenTaskConfig"]
