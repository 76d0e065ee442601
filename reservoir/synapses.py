"""Synaptic current filters (also the filters that later produce readout traces).

Each filter turns the per-step sum of incoming spike weights ``x(t)`` (``syn_in`` in the
kernel) into a current ``I_syn(t)``. Exact exponential decay factors are used, so the filters
are exact for the piecewise-constant input of a clock-driven simulation:

``delta``               ``I_syn = x``: each spike's weight is a current lasting one step
                        (Izhikevich 2003, ``net.m``). Charge per spike: ``w dt``.
``exponential``         ``s <- s exp(-dt/tau) + x / tau``; ``I_syn = s``. Unit-area kernel:
                        charge per spike ``w`` (pA ms for the 2007 form).
``double_exponential``  ``s <- s exp(-dt/tau_r) + h dt``; ``h <- h exp(-dt/tau_d) +
                        x / (tau_r tau_d)``; ``I_syn = s`` (Nicola & Clopath 2017, rise
                        ``tau_r``, decay ``tau_d``, unit area).
"""
from __future__ import annotations

import math
from dataclasses import dataclass



FILTER_CODES = {"delta": 0, "exponential": 1, "double_exponential": 2}
"""Kernel codes of the filter kinds (shared by the synaptic filters and the readouts' trace bank)."""


@dataclass(frozen=True)
class SynapticFilter:
    """A synaptic filter and its time constants (ms).

    Parameters
    ----------
    kind : {"delta", "exponential", "double_exponential"}
    tau_ms : float
        Decay time constant of the exponential filter.
    tau_rise_ms, tau_decay_ms : float
        Rise and decay time constants of the double-exponential filter.
    """

    kind: str = "delta"
    tau_ms: float = 20.0
    tau_rise_ms: float = 2.0
    tau_decay_ms: float = 20.0

    def __post_init__(self) -> None:
        if self.kind not in FILTER_CODES:
            raise ValueError(f"synapse kind must be one of {sorted(FILTER_CODES)}, got {self.kind!r}")
        for name in ("tau_ms", "tau_rise_ms", "tau_decay_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def code(self) -> int:
        return FILTER_CODES[self.kind]

    def coefficients(self, dt_ms: float) -> tuple[float, float, float]:
        """``(decay_primary, decay_secondary, jump_scale)`` for the kernel at step ``dt_ms``."""
        if self.kind == "delta":
            return 0.0, 0.0, 1.0
        if self.kind == "exponential":
            return math.exp(-dt_ms / self.tau_ms), 0.0, 1.0 / self.tau_ms
        return (
            math.exp(-dt_ms / self.tau_rise_ms),
            math.exp(-dt_ms / self.tau_decay_ms),
            1.0 / (self.tau_rise_ms * self.tau_decay_ms),
        )
