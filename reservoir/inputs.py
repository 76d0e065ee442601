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

    def per_neuron(self, n_neurons: int, first_step: int, n_steps: int) -> np.ndarray:
        """The projected current per step and neuron, ``(n_steps, n_neurons)`` (for checks)."""
        out = np.zeros((n_steps, n_neurons))
        sig = self.chunk(first_step, n_steps)
        for ch in range(self.n_channels):
            span = slice(self.indptr[ch], self.indptr[ch + 1])
            for idx, gain in zip(self.indices[span], self.gains[span]):
                out[:, idx] += gain * sig[:, ch]
        return out
