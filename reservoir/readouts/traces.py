"""The trace bank: every neuron's spike train through one or more filters, the readouts' features.

Feature ``b N + j`` is neuron ``j`` through filter ``b``. The filters are the synaptic filters
(:class:`~reservoir.synapses.SynapticFilter`, same coefficients), driven by spikes: an
exponential trace decays by ``e^(-dt/tau)`` and jumps by ``1/tau`` at each spike; a double
exponential follows Nicola & Clopath's ``r``, ``hr`` (``r <- r e^(-dt/tau_r) + h dt``,
``h <- h e^(-dt/tau_d)``, ``+ 1/(tau_r tau_d)`` at a spike).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numba import njit

from ..synapses import SynapticFilter


class TraceBankState(NamedTuple):
    """Trace values ``(B, N)`` and their filters' coefficients (``B`` filters)."""

    traces: np.ndarray
    traces_aux: np.ndarray
    """The double exponential's second variable ``h`` (unused by exponential filters)."""
    kind: np.ndarray
    """:data:`reservoir.synapses.FILTER_CODES` of each filter (1 or 2)."""
    decay_primary: np.ndarray
    decay_secondary: np.ndarray
    jump: np.ndarray


def trace_bank(filters: Sequence[SynapticFilter], n_neurons: int, dt_ms: float) -> TraceBankState:
    """A zero trace bank of ``filters`` (exponential or double exponential) over ``n_neurons``."""
    kinds = [f.kind for f in filters]
    if "delta" in kinds:
        raise ValueError("a trace filter must be exponential or double_exponential, not delta")
    coefficients = [f.coefficients(dt_ms) for f in filters]
    return TraceBankState(
        traces=np.zeros((len(filters), n_neurons)), traces_aux=np.zeros((len(filters), n_neurons)),
        kind=np.array([f.code for f in filters], dtype=np.int64),
        decay_primary=np.array([c[0] for c in coefficients]), decay_secondary=np.array([c[1] for c in coefficients]),
        jump=np.array([c[2] for c in coefficients]))


@njit(cache=True)
def trace_bank_step(bank, fired, n_fired, dt_ms):
    """Advance every trace by one step in which the neurons ``fired[:n_fired]`` spiked."""
    trace_bank_range(bank, fired, 0, n_fired, 0, bank.traces.shape[1], dt_ms)


@njit(cache=True, inline="always")
def trace_bank_range(bank, fired, first, n_fired, start, stop, dt_ms):
    """:func:`trace_bank_step` for the neurons ``[start, stop)``, which spiked as listed in
    ``fired[first:first + n_fired]`` (all of them in that range)."""
    traces, traces_aux, kind, jump = bank.traces, bank.traces_aux, bank.kind, bank.jump
    for b in range(traces.shape[0]):
        d1 = bank.decay_primary[b]
        mine = traces[b, start:stop]  # a view: loops over range(start, stop) do not vectorise
        if kind[b] == 1:
            for i in range(mine.shape[0]):
                mine[i] = mine[i] * d1
            for f in range(first, first + n_fired):
                traces[b, fired[f]] += jump[b]
        else:
            d2 = bank.decay_secondary[b]
            mine_aux = traces_aux[b, start:stop]
            for i in range(mine.shape[0]):
                mine[i] = mine[i] * d1 + mine_aux[i] * dt_ms
                mine_aux[i] = mine_aux[i] * d2
            for f in range(first, first + n_fired):
                traces_aux[b, fired[f]] += jump[b]
