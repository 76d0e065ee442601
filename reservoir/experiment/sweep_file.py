"""Sweep files: what a sweep runs (``reservoir sweep SWEEP.toml``; docs/sweeps.md).

A sweep file names an experiment, seeds, fixed overrides (``[set]``), a grid of overrides
(``[grid]``, linked keys comma-separated) and/or random draws (``[random]``). :func:`load_sweep`
validates it and every point's configuration, and expands it into :class:`Point` s (parameters
x seed), each an ordinary run folder ``OUT/<point>/seedN``. Running them is :mod:`.sweep`'s.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import ConfigError, format_validation_error
from .cli import set_path

DISTRIBUTIONS = ("uniform", "log_uniform", "choice")
MAX_POINTS = 100_000
"""The most points (parameter sets x seeds) a sweep may have: every one is validated before
anything runs, and a typo such as ``n_samples = 1000000000`` should fail at once, not hang."""


class SweepError(ValueError):
    """A sweep file that cannot be used; the message names the key."""


# ---------------------------------------------------------------------------------------------
# The sweep file


class Distribution(BaseModel):
    """One random parameter: exactly one of ``uniform``, ``log_uniform`` (``[lo, hi]``) or ``choice``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    uniform: list[float] | None = Field(None, min_length=2, max_length=2)
    log_uniform: list[float] | None = Field(None, min_length=2, max_length=2)
    choice: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> "Distribution":
        given = [name for name in DISTRIBUTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)} (got {given or 'none'})")
        for name in ("uniform", "log_uniform"):
            bounds = getattr(self, name)
            if bounds is not None:
                lo, hi = bounds
                if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                    raise ValueError(f"{name}: expected [lo, hi] with lo <= hi, got {list(bounds)}")
                if name == "log_uniform" and lo <= 0:
                    raise ValueError(f"log_uniform: bounds must be > 0, got {list(bounds)}")
        return self

    def draw(self, rng: np.random.Generator) -> Any:
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.log_uniform is not None:
            lo, hi = np.log(self.log_uniform)
            return float(np.exp(rng.uniform(lo, hi)))
        value = self.choice[int(rng.integers(len(self.choice)))]
        return value.item() if isinstance(value, np.generic) else value


class RandomSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    n_samples: int = Field(ge=1)
    seed: int = Field(0, ge=0)
    parameters: dict[str, Distribution] = Field(min_length=1)


class SweepFile(BaseModel):
    """A validated sweep file (dotted keys flattened)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    experiment: str = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    name: str | None = None
    set: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    random: RandomSpec | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        if any(s < 0 for s in seeds):
            raise ValueError(f"seeds must be >= 0, got {seeds}")
        return seeds

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"{key}: an empty list of values")
            width = len(key.split(","))
            if width > 1 and not all(isinstance(v, list) and len(v) == width for v in values):
                raise ValueError(f"{key}: linked keys take a list of [{width} values] per point")
        return grid


def _flatten(table: dict, prefix: str = "", leaf=lambda value: not isinstance(value, dict)) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` down to the values ``leaf`` accepts (TOML's bare dotted
    keys are nested tables; quoted ones are kept whole)."""
    out = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if leaf(value) or not value:
            out[path] = value
        else:
            out.update(_flatten(value, path + ".", leaf))
    return out


def _is_distribution(value) -> bool:
    return not isinstance(value, dict) or bool(set(value) & set(DISTRIBUTIONS))


def parse_sweep(data: dict[str, Any], where: str = "sweep file") -> SweepFile:
    """Validate a sweep file's table; :class:`SweepError` names the key."""
    data = dict(data)
    for section in ("set", "grid", "random"):
        if section in data and not isinstance(data[section], dict):
            raise SweepError(f"{where}: {section}: expected a table")
    if "set" in data:
        data["set"] = _flatten(data["set"])
    if "grid" in data:
        data["grid"] = _flatten(data["grid"], leaf=lambda v: not isinstance(v, dict))
    if "random" in data:
        table = dict(data["random"])
        fixed = {k: table.pop(k) for k in ("n_samples", "seed") if k in table}
        data["random"] = {**fixed, "parameters": _flatten(table, leaf=_is_distribution)}
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as error:
        message = format_validation_error(error)
        message = re.sub(r"^random\.parameters([.:])", r"random\1", message, flags=re.M)
        raise SweepError(f"{where}: {message}") from None
    grid_keys = [k for key in sweep.grid for k in key.split(",")]
    random_keys = list(sweep.random.parameters if sweep.random else [])
    swept = grid_keys + random_keys
    for section, key in ([("set", k) for k in sweep.set] + [("grid", k) for k in grid_keys]
                         + [("random", k) for k in random_keys]):
        if not key or any(not part.strip() for part in key.split(".")):
            raise SweepError(f"{where}: {section}: {key!r}: not a dotted key (names and list indices joined by "
                             "single dots)")
        if key == "seed":
            raise SweepError(f"{where}: {section}.seed: sweep seeds with the top-level 'seeds' list")
    n_grid = math.prod(len(values) for values in sweep.grid.values())
    n_samples = sweep.random.n_samples if sweep.random else 1
    n_points = n_grid * n_samples * len(sweep.seeds)
    if n_points > MAX_POINTS:
        factors = [f"{n_grid:,} grid points"] * bool(sweep.grid) + [f"random.n_samples = {n_samples:,}"] * bool(
            sweep.random) + [f"{len(sweep.seeds):,} seeds"]
        raise SweepError(f"{where}: too many points: {' x '.join(factors)} = {n_points:,}; "
                         f"a sweep has at most {MAX_POINTS:,}")
    duplicated = sorted({k for k in swept if swept.count(k) > 1})
    if duplicated:
        raise SweepError(f"{where}: {duplicated[0]}: swept twice (grid and random, or two linked groups)")
    return sweep


def resolve_experiment(name: str, base: Path) -> Path:
    """``name`` relative to the sweep file's folder, else a packaged experiment (``experiments/``)."""
    path = Path(name)
    if not path.is_absolute():
        local = base / path
        if local.is_file():
            return local.resolve()
        packaged = files("experiments") / name
        if packaged.is_file():
            return Path(str(packaged))
    if path.is_file():
        return path.resolve()
    raise SweepError(f"experiment: {name!r} is neither a file next to the sweep file nor a packaged experiment")


# ---------------------------------------------------------------------------------------------
# Points


@dataclass
class Point:
    """One run of the sweep: the swept values (dotted key -> value), the seed and its folder."""

    id: str
    seed: int
    params: dict[str, Any]
    overrides: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def folder(self) -> str:
        return self.id


@dataclass
class Sweep:
    file: Path | None
    spec: SweepFile
    experiment: Path
    points: list[Point]

    @property
    def name(self) -> str:
        return self.spec.name or (self.file.stem if self.file else self.experiment.stem)

    def parameter_keys(self) -> list[str]:
        keys = [k for key in self.spec.grid for k in key.split(",")]
        return keys + list(self.spec.random.parameters if self.spec.random else [])

    def resolved(self) -> dict:
        return {"name": self.name, "file": str(self.file) if self.file else None,
                "experiment": str(self.experiment), **self.spec.model_dump(mode="json"),
                "points": [{"id": p.id, "seed": p.seed, "params": p.params} for p in self.points]}


def _short_names(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        names[key] = suffix
    return names


def format_value(value: Any, digits: int | None = None) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}" if digits else f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_ID = 120


def _point_id(params: dict[str, Any], names: dict[str, str], prefix: str = "", digits: int | None = None) -> str:
    text = ",".join(f"{names[k]}={format_value(v, digits)}" for k, v in params.items())
    text = UNSAFE_CHARACTERS.sub("_", prefix + text).strip(".") or "default"
    if len(text) > MAX_ID:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
        text = f"{text[:MAX_ID - 12]}-{digest}"
    return text


def parameter_sets(spec: SweepFile) -> list[tuple[str, dict[str, Any]]]:
    """The sweep's parameter sets in order, as ``(label, {dotted key: value})``: the grid's
    product (first key slowest), then each random sample combined with it (deterministic: numpy
    ``default_rng(random.seed)``)."""
    groups = []
    for key, values in spec.grid.items():
        keys = key.split(",")
        groups.append([dict(zip(keys, v if len(keys) > 1 else [v])) for v in values])
    grid = [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*groups)] or [{}]
    keys = [k for key in spec.grid for k in key.split(",")]
    names = _short_names(keys + list(spec.random.parameters if spec.random else []))
    if spec.random is None:
        return [(_point_id(p, names) if p else "", p) for p in grid]
    rng = np.random.default_rng(spec.random.seed)
    samples = [{key: dist.draw(rng) for key, dist in spec.random.parameters.items()}
               for _ in range(spec.random.n_samples)]
    width = len(str(spec.random.n_samples - 1))
    out = []
    for g in grid:
        for index, sample in enumerate(samples):
            params = {**g, **sample}
            out.append((_point_id(params, names, prefix=f"s{index:0{width}d},", digits=4), params))
    return out


def _overrides(spec: SweepFile, params: dict[str, Any], seed: int) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    try:
        for key, value in {**spec.set, **params}.items():
            set_path(overrides, key.split("."), value)
    except argparse.ArgumentTypeError as error:
        raise SweepError(str(error)) from None
    overrides["seed"] = seed
    return overrides


def build_sweep(spec: SweepFile, experiment: Path, file: Path | None = None, validate: bool = True) -> Sweep:
    """Expand ``spec`` into points and (``validate``) load every point's configuration, so that a
    bad key fails here, before anything runs."""
    from .config import load_experiment

    points = []
    seen: dict[str, int] = {}
    for label, params in parameter_sets(spec):
        if label in seen:  # two values that print alike
            digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:6]
            label = f"{label}-{digest}"
        seen[label] = 1
        for seed in spec.seeds:
            point_id = f"{label}/seed{seed}" if label else f"seed{seed}"
            points.append(Point(point_id, seed, params, _overrides(spec, params, seed)))
    if validate:
        for point in points:
            try:
                load_experiment(experiment, point.overrides)
            except ConfigError as error:
                raise ConfigError(f"point {point.id}:\n{error}") from None
    return Sweep(file, spec, experiment, points)


def load_sweep(path, validate: bool = True) -> Sweep:
    """Read, validate and expand a sweep file (:class:`SweepError` or
    :class:`~reservoir.config.ConfigError`, naming the key)."""
    from .config import read_toml  # here: the experiment layer's config imports the paradigms

    path = Path(path)
    data = read_toml(path, "sweep file", SweepError)
    spec = parse_sweep(data, where=str(path))
    experiment = resolve_experiment(spec.experiment, path.parent)
    return build_sweep(spec, experiment, path, validate)
