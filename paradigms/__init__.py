"""Task paradigms: what each trial feeds in and what each readout should learn.

Each task kind has a configuration model (the ``[task]`` section of an experiment file) and a
:class:`~paradigms.base.Task` class; the experiment layer's registry
(:data:`reservoir.experiment.TASKS`) maps ``kind`` to both. Paradigms import the engine
(:mod:`reservoir`, never its experiment layer) and measure their runs with :mod:`analysis`.
"""
from __future__ import annotations

from .base import NoTaskConfig, Segment, Task
from .cue_bump import CueBumpTask, CueBumpTaskConfig
from .force_sine import SineTask, SineTaskConfig
from .permuted_digits import PermutedDigitsTask, PermutedDigitsTaskConfig
from .whatwhen import WhatWhenTask, WhatWhenTaskConfig

__all__ = ["CueBumpTask", "CueBumpTaskConfig", "NoTaskConfig", "PermutedDigitsTask", "PermutedDigitsTaskConfig", "Segment", "SineTask", "SineTaskConfig", "Task",
           "WhatWhenTask", "WhatWhenTaskConfig"]
