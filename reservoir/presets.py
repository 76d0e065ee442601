"""Named presets: partial configurations merged under the user's overrides.

``izhikevich2003``      the ``net.m`` network of Izhikevich (2003): 800 E / 200 I heterogeneous
                        neurons, dense all-to-all weights with self-connections, delta synapses,
                        thalamic noise 5 (E) / 2 (I), 1 ms steps in two half steps.
``nicola_clopath2017``  the reservoir of Nicola & Clopath (2017) ``IZFORCESINE.m`` without FORCE:
                        N=2000 2007-form neurons, p=0.1, G=5000, double-exponential 2/20 ms
                        synapses, bias 1000 pA, forward Euler at 0.04 ms.
``<firing type>``       each of the twenty Izhikevich (2004) types (:mod:`reservoir.firing_types`):
                        one neuron with the figure script's parameters, step and protocol.
"""
from __future__ import annotations

import copy
from typing import Any

from .firing_types import FIRING_TYPES

NETWORK_PRESETS: dict[str, dict[str, Any]] = {
    "izhikevich2003": {
        "duration_ms": 1000.0,
        "network": {
            "neuron_model": "izhikevich2003", "n_neurons": 1000, "excitatory_fraction": 0.8,
            "connectivity": {"rule": "all_to_all", "allow_self_connections": True,
                             "weight_scheme": "izhikevich2003"},
            "synapse": {"kind": "delta"},
            "noise": {"excitatory_std": 5.0, "inhibitory_std": 2.0},
        },
        "integration": {"dt_ms": 1.0, "scheme": "izhikevich2003"},
    },
    "nicola_clopath2017": {
        "duration_ms": 1000.0,
        "network": {
            "neuron_model": "izhikevich2007", "n_neurons": 2000, "excitatory_fraction": 1.0,
            "connectivity": {"rule": "bernoulli", "probability": 0.1, "allow_self_connections": True,
                             "weight_scheme": "nicola_clopath2017", "gain": 5000.0, "balance_rows": True},
            "synapse": {"kind": "double_exponential", "tau_rise_ms": 2.0, "tau_decay_ms": 20.0},
            "noise": {"excitatory_std": 0.0, "inhibitory_std": 0.0},
            "bias_current": 1000.0,
        },
        "integration": {"dt_ms": 0.04, "scheme": "euler"},
        "chunk_ms": 50.0,
    },
}


def _firing_type_preset(name: str) -> dict[str, Any]:
    ft = FIRING_TYPES[name]
    return {
        "duration_ms": ft.n_steps * ft.dt_ms,
        "network": {"n_neurons": 1, "neuron_model": "izhikevich2003", "firing_type": name,
                    "excitatory_fraction": 1.0, "connectivity": {"rule": "none"},
                    "noise": {"excitatory_std": 0.0, "inhibitory_std": 0.0}},
        "integration": {"dt_ms": ft.dt_ms, "scheme": "izhikevich2004"},
        "stimulus": {"kind": "firing_type_protocol"},
        "recording": {"trace_neurons": [0], "trace_every_steps": 1},
    }


def preset_names() -> list[str]:
    """Network presets first, then the firing types in panel order."""
    return list(NETWORK_PRESETS) + list(FIRING_TYPES)


def preset_config(name: str) -> dict[str, Any]:
    """The partial configuration of preset ``name`` (a fresh dict)."""
    if name in NETWORK_PRESETS:
        return copy.deepcopy(NETWORK_PRESETS[name])
    if name in FIRING_TYPES:
        return _firing_type_preset(name)
    raise KeyError(f"unknown preset {name!r}; expected one of {preset_names()}")
