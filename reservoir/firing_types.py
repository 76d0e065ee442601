"""The twenty firing types of Izhikevich (2004) as single-neuron presets with their protocols.

Parameters, initial states, time steps and input protocols follow the figure script that
accompanies the paper (``figure1.m`` on izhikevich.org): every type is integrated with the
``izhikevich2004`` scheme (one Euler step of ``v``, then ``u`` from the new ``v``) at the
script's own step ``tau``. The script's ``(R) accommodation`` panel uses a modified recovery
equation, ``du/dt = a b (v + 65)`` (no ``-u`` term); the preset reproduces it through the
per-neuron ``u_reference_mV = -65`` and ``u_leak = 0``.

References
----------
Izhikevich, E. M. (2004). Which model to use for cortical spiking neurons? IEEE Transactions on
Neural Networks, 15(5), 1063-1070. doi:10.1109/TNN.2004.832719
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .neurons import NeuronParameters


def _when(condition: np.ndarray, value, otherwise=0.0) -> np.ndarray:
    return np.where(condition, value, otherwise).astype(np.float64)


def _pulses(t: np.ndarray, starts: list[float], width: float, amplitude: float, base: float = 0.0):
    on = np.zeros_like(t, dtype=bool)
    for start in starts:
        on |= (t > start) & (t < start + width)
    return _when(on, amplitude, base)


@dataclass(frozen=True)
class FiringType:
    """One panel of Izhikevich (2004) Fig. 1: parameters, initial state and input protocol."""

    name: str
    panel: str
    a: float
    b: float
    c: float
    d: float
    v_initial_mV: float
    dt_ms: float
    duration_ms: float
    current: Callable[[np.ndarray, float], np.ndarray]
    u_initial: float | None = None
    u_reference_mV: float = 0.0
    u_leak: float = 1.0
    quadratic_coefficients: tuple[float, float, float] = (0.04, 5.0, 140.0)

    def neuron_parameters(self) -> NeuronParameters:
        u0 = self.b * self.v_initial_mV if self.u_initial is None else self.u_initial
        one = lambda x: np.array([float(x)])  # noqa: E731
        return NeuronParameters(
            model="izhikevich2003", a=one(self.a), b=one(self.b), c=one(self.c), d=one(self.d),
            v_peak_mV=one(30.0), is_excitatory=np.array([True]), v_initial_mV=one(self.v_initial_mV),
            u_initial=one(u0), quadratic_coefficients=np.array([self.quadratic_coefficients]),
            u_reference_mV=one(self.u_reference_mV), u_leak=one(self.u_leak),
        )

    @property
    def n_steps(self) -> int:
        """Steps of the script's ``tspan = 0:tau:T`` (``T/tau + 1`` points)."""
        return int(round(self.duration_ms / self.dt_ms)) + 1

    def input_current(self) -> np.ndarray:
        """Input current at each step's start time ``t = n dt`` (shape ``(n_steps,)``)."""
        t = np.arange(self.n_steps) * self.dt_ms
        return self.current(t, self.duration_ms)


_CLASS1_QUADRATIC = (0.04, 4.1, 108.0)

_TYPES = [
    FiringType("tonic_spiking", "A", 0.02, 0.2, -65, 6, -70, 0.25, 100,
               lambda t, T: _when(t > T / 10, 14.0)),
    FiringType("phasic_spiking", "B", 0.02, 0.25, -65, 6, -64, 0.25, 200,
               lambda t, T: _when(t > 20, 0.5)),
    FiringType("tonic_bursting", "C", 0.02, 0.2, -50, 2, -70, 0.25, 220,
               lambda t, T: _when(t > 22, 15.0)),
    FiringType("phasic_bursting", "D", 0.02, 0.25, -55, 0.05, -64, 0.2, 200,
               lambda t, T: _when(t > 20, 0.6)),
    FiringType("mixed_mode", "E", 0.02, 0.2, -55, 4, -70, 0.25, 160,
               lambda t, T: _when(t > T / 10, 10.0)),
    FiringType("spike_frequency_adaptation", "F", 0.01, 0.2, -65, 8, -70, 0.25, 85,
               lambda t, T: _when(t > T / 10, 30.0)),
    FiringType("class_1_excitable", "G", 0.02, -0.1, -55, 6, -60, 0.25, 300,
               lambda t, T: _when(t > 30, 0.075 * (t - 30)), quadratic_coefficients=_CLASS1_QUADRATIC),
    FiringType("class_2_excitable", "H", 0.2, 0.26, -65, 0, -64, 0.25, 300,
               lambda t, T: _when(t > 30, -0.5 + 0.015 * (t - 30), -0.5)),
    FiringType("spike_latency", "I", 0.02, 0.2, -65, 6, -70, 0.2, 100,
               lambda t, T: _pulses(t, [T / 10], 3.0, 7.04)),
    FiringType("subthreshold_oscillations", "J", 0.05, 0.26, -60, 0, -62, 0.25, 200,
               lambda t, T: _pulses(t, [T / 10], 5.0, 2.0)),
    FiringType("resonator", "K", 0.1, 0.26, -60, -1, -62, 0.25, 400,
               lambda t, T: _pulses(t, [T / 10, T / 10 + 20, 0.7 * T, 0.7 * T + 40], 4.0, 0.65)),
    FiringType("integrator", "L", 0.02, -0.1, -55, 6, -60, 0.25, 100,
               lambda t, T: _pulses(t, [T / 11, T / 11 + 5, 0.7 * T, 0.7 * T + 10], 2.0, 9.0),
               quadratic_coefficients=_CLASS1_QUADRATIC),
    FiringType("rebound_spike", "M", 0.03, 0.25, -60, 4, -64, 0.2, 200,
               lambda t, T: _pulses(t, [20], 5.0, -15.0)),
    FiringType("rebound_burst", "N", 0.03, 0.25, -52, 0, -64, 0.2, 200,
               lambda t, T: _pulses(t, [20], 5.0, -15.0)),
    FiringType("threshold_variability", "O", 0.03, 0.25, -60, 4, -64, 0.25, 100,
               lambda t, T: _pulses(t, [10], 5.0, 1.0) + _pulses(t, [70], 5.0, -6.0)
               + _pulses(t, [80], 5.0, 1.0)),
    FiringType("bistability", "P", 0.1, 0.26, -60, 0, -61, 0.25, 300,
               lambda t, T: _pulses(t, [T / 8, 216], 5.0, 1.24, base=0.24)),
    FiringType("depolarizing_after_potential", "Q", 1.0, 0.2, -60, -21, -70, 0.1, 50,
               lambda t, T: _when(np.abs(t - 10) < 1, 20.0)),
    FiringType("accommodation", "R", 0.02, 1.0, -55, 4, -65, 0.5, 400,
               lambda t, T: np.select([t < 200, t < 300, t < 312.5], [t / 25, 0.0 * t, (t - 300) / 12.5 * 4], 0.0),
               u_initial=-16.0, u_reference_mV=-65.0, u_leak=0.0),
    FiringType("inhibition_induced_spiking", "S", -0.02, -1.0, -60, 8, -63.8, 0.5, 350,
               lambda t, T: _when((t < 50) | (t > 250), 80.0, 75.0)),
    FiringType("inhibition_induced_bursting", "T", -0.026, -1.0, -45, -2, -63.8, 0.5, 350,
               lambda t, T: _when((t < 50) | (t > 250), 80.0, 75.0)),
]

#: Firing type name -> :class:`FiringType`, in the paper's panel order A-T.
FIRING_TYPES: dict[str, FiringType] = {ft.name: ft for ft in _TYPES}
