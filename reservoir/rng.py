"""One seed per run, split into named, independent random streams.

Every random draw of a run comes from one of the streams below, each derived from the run's
single integer seed with :class:`numpy.random.SeedSequence`. Each name has a fixed spawn key,
so adding a new stream later never changes the numbers an existing stream produces: a network
built with seed 7 today is the same network after the readout or task streams are added.
"""
from __future__ import annotations

import numpy as np

#: Stream names and their fixed spawn keys. Never renumber; only append.
STREAM_KEYS: dict[str, int] = {
    "connectivity": 0,
    "heterogeneity": 1,
    "noise": 2,
    "task": 3,
    "readout_init": 4,
    "initial_state": 5,
    "offline_analysis": 6,
    "hlop": 7,
    "adaptation": 8,
    "slow_synapses": 9,
}


def stream_seed(seed: int, name: str) -> np.random.SeedSequence:
    """Return the :class:`~numpy.random.SeedSequence` of the stream ``name`` for ``seed``."""
    if name not in STREAM_KEYS:
        raise KeyError(f"unknown random stream {name!r}; expected one of {sorted(STREAM_KEYS)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(STREAM_KEYS[name],))


def stream(seed: int, name: str) -> np.random.Generator:
    """A fresh PCG64 generator for the named stream of ``seed``."""
    return np.random.Generator(np.random.PCG64(stream_seed(seed, name)))


def substream(seed: int, name: str, index: int) -> np.random.Generator:
    """A generator for item ``index`` (a task, say) of the stream ``name``: independent of the
    other items, and drawn afresh without any saved state (so a resumed run needs none)."""
    parent = stream_seed(seed, name)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        entropy=parent.entropy, spawn_key=parent.spawn_key + (int(index),))))
