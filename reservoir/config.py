"""Typed, validated configuration of a simulation (pydantic).

Every section forbids unknown keys, so a typo is an error that names the key path rather than
a silently ignored setting. Presets (:mod:`reservoir.presets`) are partial dictionaries merged
under the user's overrides before validation; :func:`resolve_config` is the one entry point.
"""
from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .firing_types import FIRING_TYPES
from .neurons import Izhikevich2007Parameters
from .parallel import WORK_BLOCK_NEURONS, n_blocks
from .presets import preset_config


class ConfigError(ValueError):
    """A configuration is invalid; the message names each offending key path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class ConnectivityConfig(_Section):
    """Recurrent connectivity (see :mod:`reservoir.connectivity`)."""

    rule: Literal["none", "all_to_all", "bernoulli", "fixed_in_degree"] = Field(
        "bernoulli", description="which pairs are connected")
    probability: float = Field(0.1, gt=0.0, le=1.0, description="Bernoulli connection probability `p`")
    in_degree: int | None = Field(None, ge=1, description="`K` inputs per neuron of `fixed_in_degree`")
    allow_self_connections: bool = Field(False, description="allow `i -> i` synapses")
    weight_scheme: Literal["izhikevich2003", "nicola_clopath2017"] = Field(
        "izhikevich2003", description="how the weights are drawn (docs/model-and-numerics.md)")
    excitatory_weight_max: float = Field(0.5, ge=0.0, description="`izhikevich2003` scheme: weights from excitatory "
                                                                  "neurons `U(0, max)`")
    inhibitory_weight_max: float = Field(1.0, ge=0.0, description="`izhikevich2003` scheme: weights from inhibitory "
                                                                  "neurons `-U(0, max)`")
    reference_in_degree: float = Field(1000.0, gt=0.0, description="`izhikevich2003` scheme: weights scaled by "
                                                                    "this / the expected in-degree")
    gain: float = Field(5000.0, ge=0.0, description="G of the `nicola_clopath2017` scheme")
    balance_rows: bool = Field(True, description="`nicola_clopath2017` scheme: zero-mean input weights per neuron")
    storage: Literal["auto", "dense", "sparse"] = Field(
        "auto", description="propagation from a dense copy (`auto`: when at least 20 % of pairs are connected)")


class SynapseConfig(_Section):
    """Synaptic current filter (see :mod:`reservoir.synapses`)."""

    kind: Literal["delta", "exponential", "double_exponential"] = Field(
        "delta", description="filter from summed spike weights to current")
    tau_ms: float = Field(20.0, gt=0.0, description="decay time constant of `exponential`")
    tau_rise_ms: float = Field(2.0, gt=0.0, description="rise time constant of `double_exponential`")
    tau_decay_ms: float = Field(20.0, gt=0.0, description="decay time constant of `double_exponential`")


class NoiseConfig(_Section):
    """Gaussian current noise: ``std * N(0,1)`` drawn per neuron per step (as ``net.m``)."""

    excitatory_std: float = Field(0.0, ge=0.0, description="per-step current noise std of excitatory neurons")
    inhibitory_std: float = Field(0.0, ge=0.0, description="per-step current noise std of inhibitory neurons")


class AdaptationConfig(_Section):
    """Slow recovery on a fraction of the excitatory neurons (see :func:`reservoir.neurons.with_slow_recovery`).

    The chosen neurons get a recovery rate ``a`` drawn log-uniformly from ``[a_min, a_max]``
    (1/ms; the 2003 population's ``a`` is 0.02, a 50 ms time constant) and, when ``d`` is set,
    that recovery jump at each spike. A neuron whose ``u`` recovers over hundreds of ms remembers
    how much it fired for that long: a spread of such time constants is a spread of clocks.
    """

    fraction: float = Field(0.0, ge=0.0, le=1.0, description="share of the excitatory neurons given slow recovery "
                                                            "(0: none, the population as its model draws it)")
    a_min: float = Field(0.002, gt=0.0, le=1.0, description="slowest recovery rate (1/ms)")
    a_max: float = Field(0.02, gt=0.0, le=1.0, description="fastest recovery rate (1/ms)")
    d: float | None = Field(None, ge=0.0, description="recovery jump of the chosen neurons (none: keep the model's)")

    @model_validator(mode="after")
    def _ordered(self) -> "AdaptationConfig":
        if self.a_min > self.a_max:
            raise ValueError(f"a_min ({self.a_min}) must be at most a_max ({self.a_max})")
        return self


class SlowSynapsesConfig(_Section):
    """A slow (NMDA-like) synaptic component on a random fraction of the excitatory synapses
    (see :func:`reservoir.network.split_slow_synapses`).

    Each recurrent synapse whose presynaptic neuron is excitatory is slow with probability
    ``fraction`` (drawn per synapse from the ``slow_synapses`` random stream). A slow synapse
    leaves the fast population: its weight times ``weight_scale`` enters its own per-neuron
    exponential filter of time constant ``tau_ms`` (unit area, as synapse kind ``exponential``),
    whose current adds to the fast synapses' current. NMDA receptors' slow decay (about 100 ms)
    is what sustains persistent activity in Wang's models (Wang 1999, J Neurosci 19:9587; Wang
    2002, Neuron 36:955), and a spread of synaptic time constants helps a spiking network with
    tasks that have temporal structure (Perez-Nieves et al. 2021, Nat Commun 12:5791).
    """

    omit_when_default: ClassVar[bool] = True
    """Left out of the stored configuration (``config_toml``, ``config.toml``) while at its
    defaults, so that a run without slow synapses stores the text it stored before they existed."""

    fraction: float = Field(0.0, ge=0.0, le=1.0, description="share of the recurrent synapses from excitatory "
                                                            "neurons that are slow (0: none)")
    tau_ms: float = Field(100.0, gt=0.0, description="decay time constant of the slow synapses' exponential current")
    weight_scale: float = Field(1.0, ge=0.0, description="each slow synapse's weight is multiplied by this (its "
                                                        "charge relative to a fast synapse's)")


class NetworkConfig(_Section):
    """The reservoir: neurons, connectivity, synapses, noise and bias."""

    neuron_model: Literal["izhikevich2003", "izhikevich2007"] = Field(
        "izhikevich2003", description="dimensionless 2003 form (heterogeneous `net.m` population) or 2007 form")
    n_neurons: int = Field(1000, ge=1, description="number of neurons")
    excitatory_fraction: float = Field(0.8, ge=0.0, le=1.0, description="the first `round(f N)` neurons are excitatory")
    firing_type: str | None = Field(None, description="single-neuron Izhikevich 2004 type (`n_neurons = 1`)")
    izhikevich2007: Izhikevich2007Parameters = Field(
        Izhikevich2007Parameters(), description="parameters of the 2007 form (defaults: Nicola & Clopath 2017)")
    connectivity: ConnectivityConfig = ConnectivityConfig()
    synapse: SynapseConfig = SynapseConfig()
    noise: NoiseConfig = NoiseConfig()
    adaptation: AdaptationConfig = AdaptationConfig()
    slow_synapses: SlowSynapsesConfig = SlowSynapsesConfig()
    bias_current: float = Field(0.0, description="constant current into every neuron")


class IntegrationConfig(_Section):
    """Time step and integration scheme (docs/model-and-numerics.md)."""

    dt_ms: float = Field(0.5, gt=0.0, le=10.0, description="integration step")
    scheme: Literal["euler", "izhikevich2003", "izhikevich2004"] = Field(
        "euler", description="forward Euler, `net.m`'s two half steps for `v`, or the 2004 script's order")


class StimulusConfig(_Section):
    """External current for plain runs: none, a step, or the firing type's own protocol."""

    kind: Literal["none", "step", "firing_type_protocol"] = Field("none", description="what drives a plain run")
    amplitude: float = Field(0.0, description="`step`: current while on")
    start_ms: float = Field(0.0, ge=0.0, description="`step`: onset")
    stop_ms: float | None = Field(None, ge=0.0, description="`step`: offset (none: to the end)")
    target: Literal["all", "excitatory", "inhibitory"] = Field("all", description="`step`: which neurons receive it")


class RecordingConfig(_Section):
    """What goes into ``run.h5`` besides the network (docs/file-format.md)."""

    spikes: bool = Field(True, description="record spikes (SONATA layout)")
    population: str = Field("reservoir", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="SONATA population name")
    trace_neurons: list[int] = Field(default_factory=list, description="neurons whose `v`, `u` are traced")
    trace_every_steps: int = Field(1, ge=1, description="trace decimation")
    store_connectivity: bool = Field(True, description="store the recurrent weights in `run.h5`")


class SimulationConfig(_Section):
    """Everything a plain (non-learning) run needs; resolved from a preset plus overrides."""

    preset: str | None = Field(None, description="preset merged under the file's values (`reservoir presets`)")
    seed: int = Field(0, ge=0, lt=2**63, description="the run's one seed (docs/reproducibility.md)")
    duration_ms: float = Field(1000.0, gt=0.0, description="simulated time; a whole number of steps")
    chunk_ms: float = Field(1000.0, gt=0.0, description="simulated time per compiled call (at most 20 million "
                                                        "neuron-steps; the results do not depend on it)")
    threads: int | Literal["auto"] = Field(
        "auto", description="threads of the compiled kernel; every count gives the same run bit for bit "
                            "(`auto`: one per 1000 neurons, at most the cores; docs/performance.md)")
    checkpoint_every_ms: float | None = Field(None, gt=0.0, description="checkpoint interval (`checkpoint.h5`; "
                                                                        "none: no checkpoints)")
    network: NetworkConfig = NetworkConfig()
    integration: IntegrationConfig = IntegrationConfig()
    stimulus: StimulusConfig = StimulusConfig()
    recording: RecordingConfig = RecordingConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "SimulationConfig":
        net = self.network
        if self.threads != "auto":
            if self.threads < 1:
                raise ValueError(f"threads: expected a positive integer or 'auto', got {self.threads}")
            blocks = n_blocks(net.n_neurons)
            if self.threads > blocks:
                raise ValueError(f"threads: {self.threads} threads for {net.n_neurons} neurons; at most {blocks} "
                                 f"(each thread owns whole work blocks of {WORK_BLOCK_NEURONS} neurons)")
        if net.firing_type is not None:
            if net.firing_type not in FIRING_TYPES:
                raise ValueError(f"network.firing_type: unknown firing type {net.firing_type!r}; "
                                 f"expected one of {sorted(FIRING_TYPES)}")
            if net.n_neurons != 1:
                raise ValueError("network.n_neurons: a firing_type preset is a single neuron (n_neurons = 1)")
        if self.stimulus.kind == "firing_type_protocol" and net.firing_type is None:
            raise ValueError("stimulus.kind: 'firing_type_protocol' needs network.firing_type")
        if self.stimulus.stop_ms is not None and self.stimulus.stop_ms < self.stimulus.start_ms:
            raise ValueError("stimulus.stop_ms: must not be before stimulus.start_ms")
        if net.connectivity.rule == "fixed_in_degree":
            limit = net.n_neurons if net.connectivity.allow_self_connections else net.n_neurons - 1
            if net.connectivity.in_degree is None or net.connectivity.in_degree > limit:
                raise ValueError(f"network.connectivity.in_degree: must be set and at most {limit} "
                                 "for the fixed_in_degree rule")
        bad = [i for i in self.recording.trace_neurons if not 0 <= i < net.n_neurons]
        if bad:
            raise ValueError(f"recording.trace_neurons: ids {bad} are outside [0, {net.n_neurons})")
        n_steps = self.duration_ms / self.integration.dt_ms
        if not n_steps < 2**63:  # the kernels count steps in int64 (and round() fails on inf)
            raise ValueError(f"duration_ms: {self.duration_ms:g} ms at integration.dt_ms = {self.integration.dt_ms:g} "
                             f"is {n_steps:.3g} steps; at most 2^63 - 1")
        if abs(n_steps - round(n_steps)) > 1e-6 * max(1.0, n_steps):
            raise ValueError(f"duration_ms: {self.duration_ms} is not a whole number of "
                             f"integration.dt_ms = {self.integration.dt_ms} steps")
        return self

    @property
    def n_steps(self) -> int:
        return int(round(self.duration_ms / self.integration.dt_ms))


def deep_merge(base: dict[str, Any], override: dict[str, Any], _path: str = "") -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (override wins).

    A dict with integer-like keys merged onto a list addresses its items, so the command-line
    path ``readouts.groups.0.rule`` reaches the first readout group; an index that is out of
    range or not a number raises :class:`ConfigError` naming the full key path.
    """
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        path = f"{_path}{key}"
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = deep_merge(current, value, path + ".")
        elif isinstance(value, dict) and isinstance(current, list) and value:
            items = list(current)
            for index, item in value.items():
                if not (isinstance(index, str) and index.isascii() and index.isdigit()):
                    raise ConfigError(f"{path}.{index}: expected a list index (a whole number from 0 to "
                                      f"{len(items) - 1}; {path} is a list of {len(items)} items)")
                i = int(index)
                if i >= len(items):
                    raise ConfigError(f"{path}.{index}: index out of range (the list has {len(items)} items)")
                items[i] = (deep_merge(items[i], item, f"{path}.{index}.")
                            if isinstance(item, dict) and isinstance(items[i], dict) else item)
            merged[key] = items
        else:
            merged[key] = value
    return merged


def reject_non_finite(data: Any) -> None:
    """Raise :class:`ConfigError` naming every key of ``data`` (nested tables and lists) whose
    value is a non-finite float (TOML's ``nan``, ``inf``): no setting means anything with one."""
    bad = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(f"{path}: Input should be a finite number (got {value!r})")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")

    walk(data, "")
    if bad:
        raise ConfigError("\n".join(bad))


def format_validation_error(error: ValidationError, union_tags: dict[str, set[str]] | None = None) -> str:
    """One line per problem, each naming the full key path and what was expected.

    ``union_tags`` maps a section holding a discriminated union (the experiment layer's
    ``task``) to its tags, which pydantic adds to the location and which are dropped here.
    """
    lines = []
    for problem in error.errors():
        loc = list(problem["loc"])
        tags = (union_tags or {}).get(str(loc[0]), set()) if loc else set()
        if len(loc) > 1 and isinstance(loc[1], str) and loc[1] in tags:
            del loc[1]
        path = ".".join(str(part) if part != "" else '""' for part in loc)  # an empty TOML key shows as ""
        message = problem["msg"].removeprefix("Value error, ")
        unknown = problem["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        if unknown:
            message = "unknown key"
        given = problem.get("input")
        if problem["type"] == "list_type" and isinstance(given, dict) and given:  # KEY.0=... where there is no list
            message = (f"Input should be a valid list; items by index ({', '.join(map(str, given))}) reach only "
                       "the items of a list given by the file, its base or its preset (set the whole list instead)")
        suffix = "" if unknown or problem["type"] == "value_error" or isinstance(given, dict) else f" (got {given!r})"
        if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):  # name the discriminator key itself
            discriminator = str(problem.get("ctx", {}).get("discriminator", "")).strip("'")
            path = f"{path}.{discriminator}" if path and discriminator else path or discriminator
            expected = problem.get("ctx", {}).get("expected_tags") or ", ".join(repr(tag) for tag in sorted(tags))
            kind = given.get(discriminator) if isinstance(given, dict) else None
            message = (f"missing; expected one of {expected}" if problem["type"] == "union_tag_not_found"
                       else f"expected one of {expected} (got {kind!r})")
        keyed = re.match(r"^([A-Za-z_][\w.]*): (.*)$", message, re.S) if problem["type"] == "value_error" else None
        if keyed and path:  # a section's own check names a key inside it: "cues: ..." in [task]
            path, message = f"{path}.{keyed.group(1)}", keyed.group(2)
        lines.append(f"{path}: {message}{suffix}" if path else f"{message}{suffix}")
    return "\n".join(lines)


def resolve_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> SimulationConfig:
    """Merge ``preset`` (by name) and ``overrides`` and validate; raises :class:`ConfigError`."""
    data: dict[str, Any] = {}
    if preset is not None:
        data = deep_merge(preset_config(preset), {"preset": preset})
    data = deep_merge(data, overrides or {})
    reject_non_finite(data)
    try:
        return SimulationConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


def config_to_dict(config: BaseModel) -> dict[str, Any]:
    """A TOML-serialisable dict (``None`` values dropped, as TOML has no null; a section whose
    class sets ``omit_when_default`` left out while it equals its defaults)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    def omit_defaults(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if not isinstance(value, BaseModel) or name not in data:
                continue
            if getattr(type(value), "omit_when_default", False) and value == type(value)():
                del data[name]
            elif isinstance(data[name], dict):
                omit_defaults(value, data[name])
        return data

    return clean(omit_defaults(config, config.model_dump(mode="json")))
