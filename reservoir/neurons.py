"""Izhikevich neuron models as per-neuron parameter arrays.

Two forms are supported, both with the same reset rule (``v >= v_peak``: ``v <- c``,
``u <- u + d``):

``izhikevich2003`` (dimensionless form, Izhikevich 2003, IEEE TNN 14:1569)::

    dv/dt = q2 v^2 + q1 v + q0 - u + I        (q2, q1, q0 = 0.04, 5, 140)
    du/dt = a (b v - u)

The quadratic coefficients are per-neuron parameters because two of the 2004 firing types
(class 1 excitability, integrator) use ``0.04 v^2 + 4.1 v + 108``.

``izhikevich2007`` (dimensional form, Izhikevich 2007, "Dynamical Systems in Neuroscience";
as used by Nicola & Clopath 2017, Nat. Commun. 8:2208)::

    C dv/dt = k (v - v_r)(v - v_t) - u + I     (pF, mV, ms, pA)
    du/dt   = a (b (v - v_r) - u)

Time is in ms throughout; voltages in mV; currents in pA for the 2007 form and in the 2003
form's dimensionless units otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

MODEL_CODES = {"izhikevich2003": 0, "izhikevich2007": 1}


@dataclass
class NeuronParameters:
    """Per-neuron parameters of one reservoir (all arrays of length ``n_neurons``).

    Attributes
    ----------
    model : str
        ``"izhikevich2003"`` or ``"izhikevich2007"`` (see module docstring).
    a, b, c, d : ndarray
        Recovery rate (1/ms), recovery sensitivity, reset potential (mV, the 2007 ``v_reset``),
        recovery jump at a spike.
    v_peak_mV : ndarray
        Spike cut-off; a neuron spikes when ``v >= v_peak_mV``.
    quadratic_coefficients : ndarray, shape (n, 3)
        ``(q2, q1, q0)`` of the 2003 form; unused by the 2007 form.
    capacitance_pF, k, v_rest_mV, v_threshold_mV : ndarray
        Parameters of the 2007 form; unused by the 2003 form.
    u_reference_mV, u_leak : ndarray
        The recovery equation is ``du/dt = a (b (v - u_reference) - u_leak u)``: 0 and 1 for the
        2003 form, ``v_rest`` and 1 for the 2007 form (defaults); the 2004 accommodation panel
        uses -65 and 0.
    is_excitatory : ndarray of bool
        Population membership (Dale's law and per-population noise use it).
    v_initial_mV, u_initial : ndarray
        Initial state.
    """

    model: str
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    v_peak_mV: np.ndarray
    is_excitatory: np.ndarray
    v_initial_mV: np.ndarray
    u_initial: np.ndarray
    quadratic_coefficients: np.ndarray = field(default=None)  # type: ignore[assignment]
    capacitance_pF: np.ndarray = field(default=None)  # type: ignore[assignment]
    k: np.ndarray = field(default=None)  # type: ignore[assignment]
    v_rest_mV: np.ndarray = field(default=None)  # type: ignore[assignment]
    v_threshold_mV: np.ndarray = field(default=None)  # type: ignore[assignment]
    u_reference_mV: np.ndarray = field(default=None)  # type: ignore[assignment]
    u_leak: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.model not in MODEL_CODES:
            raise ValueError(f"neuron model must be one of {sorted(MODEL_CODES)}, got {self.model!r}")
        n = len(self.a)
        nan = np.full(n, np.nan)
        if self.quadratic_coefficients is None:
            self.quadratic_coefficients = np.tile([0.04, 5.0, 140.0], (n, 1))
        for name in ("capacitance_pF", "k", "v_rest_mV", "v_threshold_mV"):
            if getattr(self, name) is None:
                setattr(self, name, nan.copy())
        if self.u_reference_mV is None:
            self.u_reference_mV = np.zeros(n) if self.model == "izhikevich2003" else np.array(self.v_rest_mV, dtype=float)
        if self.u_leak is None:
            self.u_leak = np.ones(n)
        for f in fields(self):
            if f.name == "model":
                continue
            value = getattr(self, f.name)
            dtype = bool if f.name == "is_excitatory" else np.float64
            value = np.ascontiguousarray(value, dtype=dtype)
            setattr(self, f.name, value)
            if value.shape[0] != n:
                raise ValueError(f"neuron parameter {f.name!r} has {value.shape[0]} entries, expected {n}")
        if self.quadratic_coefficients.shape != (n, 3):
            raise ValueError("quadratic_coefficients must have shape (n_neurons, 3)")
        if self.model == "izhikevich2007":
            for name in ("capacitance_pF", "k", "v_rest_mV", "v_threshold_mV"):
                if not np.all(np.isfinite(getattr(self, name))):
                    raise ValueError(f"the izhikevich2007 model needs finite {name!r} for every neuron")
            if np.any(self.capacitance_pF <= 0):
                raise ValueError("capacitance_pF must be > 0")

    @property
    def n_neurons(self) -> int:
        return len(self.a)

    @property
    def model_code(self) -> int:
        return MODEL_CODES[self.model]

    def as_arrays(self) -> dict[str, np.ndarray]:
        """All parameters as a name -> array dict (for the run file)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}


def izhikevich2003_heterogeneous(
    n_excitatory: int, n_inhibitory: int, rng: np.random.Generator, v_initial_mV: float = -65.0
) -> NeuronParameters:
    """The heterogeneous excitatory/inhibitory population of Izhikevich (2003), ``net.m``.

    ``r ~ U(0, 1)`` per neuron. Excitatory: ``a=0.02, b=0.2, c=-65+15r^2, d=8-6r^2``;
    inhibitory: ``a=0.02+0.08r, b=0.25-0.05r, c=-65, d=2``. ``v(0) = -65``, ``u(0) = b v(0)``.

    References
    ----------
    Izhikevich, E. M. (2003). Simple model of spiking neurons. IEEE Transactions on Neural
    Networks, 14(6), 1569-1572. doi:10.1109/TNN.2003.820440
    """
    r_exc = rng.random(n_excitatory)
    r_inh = rng.random(n_inhibitory)
    a = np.concatenate([np.full(n_excitatory, 0.02), 0.02 + 0.08 * r_inh])
    b = np.concatenate([np.full(n_excitatory, 0.2), 0.25 - 0.05 * r_inh])
    c = np.concatenate([-65.0 + 15.0 * r_exc**2, np.full(n_inhibitory, -65.0)])
    d = np.concatenate([8.0 - 6.0 * r_exc**2, np.full(n_inhibitory, 2.0)])
    n = n_excitatory + n_inhibitory
    v0 = np.full(n, v_initial_mV)
    return NeuronParameters(
        model="izhikevich2003", a=a, b=b, c=c, d=d, v_peak_mV=np.full(n, 30.0),
        is_excitatory=np.arange(n) < n_excitatory, v_initial_mV=v0, u_initial=b * v0,
    )


def with_slow_recovery(neurons: NeuronParameters, fraction: float, a_min: float, a_max: float, d: float | None,
                       rng: np.random.Generator) -> NeuronParameters:
    """``neurons`` with slow recovery on ``round(fraction x n_excitatory)`` excitatory neurons.

    The neurons are a uniform random choice among the excitatory ones; each gets
    ``a = exp(U(ln a_min, ln a_max))`` (1/ms) and, unless ``d`` is None, the recovery jump ``d``.
    Nothing else changes (``u(0)`` stays ``b v(0)``). A spread of recovery time constants is
    one of the heterogeneous time scales that let a spiking network carry time: Izhikevich
    (2003) varies ``c`` and ``d`` only; Perez-Nieves et al. (2021, Nat Commun 12:5791) and
    Bellec et al. (2018, LSNN, NeurIPS) show slow, spread adaptation giving memory of hundreds
    of ms. The choice of range is the project's (docs/results-whatwhen.md, "The clock in the
    reservoir").
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if not 0.0 < a_min <= a_max:
        raise ValueError(f"need 0 < a_min <= a_max, got a_min={a_min!r}, a_max={a_max!r}")
    excitatory = np.flatnonzero(neurons.is_excitatory)
    n_slow = int(round(fraction * excitatory.size))
    chosen = np.sort(rng.choice(excitatory, size=n_slow, replace=False))
    a = neurons.a.copy()
    a[chosen] = np.exp(rng.uniform(np.log(a_min), np.log(a_max), n_slow))
    changes = {"a": a}
    if d is not None:
        new_d = neurons.d.copy()
        new_d[chosen] = d
        changes["d"] = new_d
    return replace(neurons, **changes)


@dataclass(frozen=True)
class Izhikevich2007Parameters:
    """Homogeneous parameters of the 2007 dimensional form (defaults: Nicola & Clopath 2017).

    Units: pF, mV, ms, pA. ``v_threshold_mV`` defaults to ``v_rest + 40 - b/k`` as in the
    ModelDB 190565 listing. Also the ``network.izhikevich2007`` configuration section.
    """

    __pydantic_config__ = {"extra": "forbid"}

    capacitance_pF: float = field(default=250.0, metadata={"description": "membrane capacitance C"})
    k: float = field(default=2.5, metadata={"description": "gain of the quadratic term (nS/mV)"})
    v_rest_mV: float = field(default=-60.0, metadata={"description": "resting potential v_r"})
    v_threshold_mV: float | None = field(default=None, metadata={
        "description": "threshold v_t (none: `v_rest + 40 - b/k`, as ModelDB 190565)"})
    v_peak_mV: float = field(default=30.0, metadata={"description": "spike cut-off"})
    v_reset_mV: float = field(default=-65.0, metadata={"description": "reset potential (c)"})
    a: float = field(default=0.01, metadata={"description": "recovery rate (1/ms)"})
    b: float = field(default=-2.0, metadata={"description": "recovery sensitivity (nS)"})
    d: float = field(default=200.0, metadata={"description": "recovery jump at a spike (pA)"})

    def __post_init__(self) -> None:
        if not self.capacitance_pF > 0:
            raise ValueError(f"capacitance_pF must be > 0, got {self.capacitance_pF!r}")

    @property
    def resolved_threshold_mV(self) -> float:
        if self.v_threshold_mV is not None:
            return self.v_threshold_mV
        return self.v_rest_mV + 40.0 - self.b / self.k


def izhikevich2007_homogeneous(
    n_neurons: int, params: Izhikevich2007Parameters, rng: np.random.Generator,
    n_excitatory: int | None = None,
) -> NeuronParameters:
    """A homogeneous population of the 2007 form.

    Initial state as in Nicola & Clopath (2017): ``v(0) ~ U(v_reset, v_peak)`` per neuron
    (their listing draws ``vreset + rand*(30 - vreset)``), ``u(0) = 0``.

    References
    ----------
    Nicola, W., & Clopath, C. (2017). Supervised learning in spiking neural networks with
    FORCE training. Nature Communications, 8, 2208. doi:10.1038/s41467-017-01827-3
    """
    n = n_neurons
    full = lambda value: np.full(n, float(value))  # noqa: E731
    v0 = params.v_reset_mV + rng.random(n) * (params.v_peak_mV - params.v_reset_mV)
    n_exc = n if n_excitatory is None else n_excitatory
    return NeuronParameters(
        model="izhikevich2007", a=full(params.a), b=full(params.b), c=full(params.v_reset_mV),
        d=full(params.d), v_peak_mV=full(params.v_peak_mV), is_excitatory=np.arange(n) < n_exc,
        v_initial_mV=v0, u_initial=np.zeros(n), capacitance_pF=full(params.capacitance_pF),
        k=full(params.k), v_rest_mV=full(params.v_rest_mV),
        v_threshold_mV=full(params.resolved_threshold_mV),
    )
