"""External inputs: a (time x channels) signal projected onto neuron subsets.

``signal[t, ch]`` is the value of channel ``ch`` during step ``t``; neuron ``i`` receives
``sum_ch gain[ch, i] * signal[t, ch]``. The projection is stored per channel as CSR
(``indptr``, neuron ``indices``, ``gains``), so a cue that drives 100 of 10,000 neurons costs
100 additions per step, and nothing when the channel is zero. Steps past the end of the signal
receive no external input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ExternalInput:
    """A signal of shape ``(n_steps, n_channels)`` and its channel -> neuron projection."""

    signal: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    gains: np.ndarray

    def __post_init__(self) -> None:
        self.signal = np.ascontiguousarray(np.atleast_2d(self.signal.T).T, dtype=np.float64)
        self.indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        self.gains = np.ascontiguousarray(self.gains, dtype=np.float64)
        if self.indptr.shape != (self.n_channels + 1,) or self.indptr[-1] != self.indices.size:
            raise ValueError("input projection indptr does not match the signal's channel count")
        if self.gains.shape != self.indices.shape:
            raise ValueError("input projection indices and gains differ in length")
        if not np.all(np.isfinite(self.signal)):
            raise ValueError("input signal contains NaN or inf")

    @property
    def n_channels(self) -> int:
        return self.signal.shape[1]

    @classmethod
    def from_subsets(cls, signal: np.ndarray, subsets: list[np.ndarray], gains: list[float] | None = None):
        """One channel per neuron subset, each with a uniform gain (default 1)."""
        gains = [1.0] * len(subsets) if gains is None else gains
        indptr = np.concatenate([[0], np.cumsum([len(s) for s in subsets])])
        indices = np.concatenate([np.asarray(s, dtype=np.int32) for s in subsets]) if subsets else np.zeros(0)
        gain_values = np.concatenate([np.full(len(s), g, dtype=np.float64) for s, g in zip(subsets, gains)]) if subsets else np.zeros(0)
        return cls(np.asarray(signal, dtype=np.float64).reshape(len(signal), -1), indptr, indices, gain_values)

    @classmethod
    def none(cls) -> "ExternalInput":
        return cls(np.zeros((0, 0)), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0))

    def chunk(self, first_step: int, n_steps: int) -> np.ndarray:
        """Signal rows for steps ``first_step .. first_step + n_steps - 1`` (zero-padded)."""
        out = np.zeros((n_steps, self.n_channels))
        stop = min(first_step + n_steps, self.signal.shape[0])
        if stop > first_step:
            out[: stop - first_step] = self.signal[first_step:stop]
        return out

    def digest_arrays(self) -> list[np.ndarray]:
        """The arrays that define this input (for a simulation's fingerprint)."""
        return [self.signal, self.indices, self.gains]

    def per_neuron(self, n_neurons: int, first_step: int, n_steps: int) -> np.ndarray:
        """The projected current per step and neuron, ``(n_steps, n_neurons)`` (for checks)."""
        out = np.zeros((n_steps, n_neurons))
        sig = self.chunk(first_step, n_steps)
        for ch in range(self.n_channels):
            span = slice(self.indptr[ch], self.indptr[ch + 1])
            for idx, gain in zip(self.indices[span], self.gains[span]):
                out[:, idx] += gain * sig[:, ch]
        return out


class PatternSequenceInput(ExternalInput):
    """Patterns presented one after another, generated chunk by chunk (memory independent of
    the run's length).

    ``patterns`` is ``(P, C)``: one current per channel for each pattern; presentation ``i``
    holds pattern ``pattern_index[i]`` on the channels from step ``onset_steps[i]`` for
    ``duration_steps`` steps, and every channel is 0 between presentations. The channel ->
    neuron projection is as in :class:`ExternalInput`. ``signal`` holds the patterns, not the
    time course; :meth:`chunk` is what the engine reads.
    """

    def __init__(self, patterns, onset_steps, pattern_index, duration_steps: int, indptr, indices, gains):
        self.onset_steps = np.ascontiguousarray(onset_steps, dtype=np.int64)
        self.pattern_index = np.ascontiguousarray(pattern_index, dtype=np.int64)
        self.duration_steps = int(duration_steps)
        if self.onset_steps.shape != self.pattern_index.shape:
            raise ValueError("onset_steps and pattern_index differ in length")
        if self.onset_steps.size > 1 and np.any(np.diff(self.onset_steps) < self.duration_steps):
            raise ValueError("presentations overlap: onsets must be at least duration_steps apart and increasing")
        if self.duration_steps < 1:
            raise ValueError(f"duration_steps must be >= 1, got {duration_steps}")
        super().__init__(np.asarray(patterns, dtype=np.float64), indptr, indices, gains)
        if self.pattern_index.size and (self.pattern_index.min() < 0 or self.pattern_index.max() >= len(self.signal)):
            raise ValueError(f"pattern_index must lie in [0, {len(self.signal)})")

    def chunk(self, first_step: int, n_steps: int) -> np.ndarray:
        out = np.zeros((n_steps, self.n_channels))
        for i, rows in windows_in_chunk(self.onset_steps, self.duration_steps, first_step, n_steps):
            out[rows] = self.signal[self.pattern_index[i]]
        return out

    def digest_arrays(self) -> list[np.ndarray]:
        return super().digest_arrays() + [self.onset_steps, self.pattern_index, np.array([self.duration_steps])]


def windows_in_chunk(starts: np.ndarray, length: int, first_step: int, n_steps: int):
    """``(window index, row slice)`` of every window ``[starts[i], starts[i] + length)`` (sorted,
    non-overlapping) that meets the steps ``first_step .. first_step + n_steps - 1``; the slice
    indexes rows of that chunk."""
    stop = first_step + n_steps
    lo = max(0, int(np.searchsorted(starts, first_step - length, side="right")))
    hi = int(np.searchsorted(starts, stop, side="left"))
    for i in range(lo, hi):
        a = max(int(starts[i]), first_step)
        b = min(int(starts[i]) + length, stop)
        if b > a:
            yield i, slice(a - first_step, b - first_step)
