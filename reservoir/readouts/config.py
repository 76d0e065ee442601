"""Configuration of the readouts (the ``[readouts]`` section of an experiment file)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..rules.hlop import ProtectionConfig
from ..rules.rls import RLSConfig
from ..rules.three_factor import ThreeFactorConfig
from ..synapses import SynapticFilter


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TraceFilterConfig(_Section):
    """One filter of the trace bank: the synaptic filters' unit-area kernels applied to spike trains."""

    kind: Literal["exponential", "double_exponential"] = Field("exponential", description="filter kind")
    tau_ms: float = Field(20.0, gt=0.0, description="decay time constant of the exponential filter")
    tau_rise_ms: float = Field(2.0, gt=0.0, description="rise time constant of the double exponential")
    tau_decay_ms: float = Field(20.0, gt=0.0, description="decay time constant of the double exponential")

    def synaptic_filter(self) -> SynapticFilter:
        """The same filter as a :class:`~reservoir.synapses.SynapticFilter` (its coefficients are the trace bank's)."""
        return SynapticFilter(self.kind, self.tau_ms, self.tau_rise_ms, self.tau_decay_ms)


class ReadoutGroupConfig(_Section):
    """One named group of readout units and the rule they learn by."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="unit names are `name[i]`")
    n_units: int = Field(1, ge=1, description="units in the group")
    rule: Literal["frozen", "three_factor", "rls"] = Field(
        "three_factor", description="`frozen`, `three_factor` or `rls` (at most one `rls` group)")
    rectify: bool = Field(False, description="`z = max(0, w . x)`")
    feedback_gain: float = Field(0.0, ge=0.0, description="Q of the feedback encoders Q U(-1,1); 0: none")
    initial_weight_std: float = Field(0.0, ge=0.0, description="weights start N(0, std^2); 0: zeros")
    three_factor: ThreeFactorConfig = ThreeFactorConfig()
    rls: RLSConfig = RLSConfig()


class ReadoutsConfig(_Section):
    """Readout units over the reservoir's filtered spike trains."""

    traces: list[TraceFilterConfig] = Field(
        default_factory=lambda: [TraceFilterConfig()], min_length=1,
        description="the trace bank: filters applied to every neuron's spike train; features are concatenated")
    groups: list[ReadoutGroupConfig] = Field(default_factory=list, description="the readout groups")
    output_every_steps: int = Field(1, ge=1, description="decimation of the recorded outputs")
    snapshot_every_ms: float | None = Field(None, gt=0.0, description="weight snapshots in `run.h5` (none: off)")
    store_capacity_steps: int = Field(4000, ge=1, description="longest window kept for offline consolidation")
    protection: ProtectionConfig = Field(ProtectionConfig(), description=(
        "orthogonal protection of three-factor groups across tasks (HLOP, or the exact SVD reference)"))

    @model_validator(mode="after")
    def _consistent(self) -> "ReadoutsConfig":
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"groups: readout group names must be unique, got {names}")
        if sum(g.rule == "rls" for g in self.groups) > 1:
            raise ValueError("groups: at most one group may use the rls rule (its units share one P)")
        protection = self.protection
        if protection.method != "none":
            if not protection.groups:
                raise ValueError(f"protection.groups: method {protection.method!r} needs the protected groups, "
                                 f"from {names}")
            rules = {g.name: g.rule for g in self.groups}
            for name in protection.groups:
                if name not in rules:
                    raise ValueError(f"protection.groups: no readout group {name!r}; groups are {names}")
                if rules[name] != "three_factor":
                    raise ValueError(f"protection.groups: group {name!r} learns by {rules[name]!r}; protection "
                                     "projects three-factor updates only")
                group = next(g for g in self.groups if g.name == name)
                if group.three_factor.normalization != "none":
                    raise ValueError(
                        f"protection.groups: group {name!r} uses normalization = "
                        f"{group.three_factor.normalization!r}; a projected, per-feature normalised update "
                        "(P D^-1 times the gradient) is not a descent direction, so protected groups need "
                        "normalization = 'none' (docs/design-choices.md)")
        return self
