"""Shared builders for tests."""
import numpy as np


def small_network(model="izhikevich2003", scheme="euler", synapse="delta", storage="sparse", noise=0.0,
                  n_neurons=60, seed=3, dt_ms=0.5, probability=0.2, bias=0.0, slow_synapses=None):
    """A small recurrent network for kernel tests (``slow_synapses``: the ``network.slow_synapses`` table)."""
    from reservoir import build_network, resolve_config

    preset = "izhikevich2003" if model == "izhikevich2003" else "nicola_clopath2017"
    overrides = {
        "network": {"n_neurons": n_neurons,
                    "connectivity": {"rule": "bernoulli", "probability": probability, "storage": storage},
                    "synapse": {"kind": synapse, "tau_ms": 5.0, "tau_rise_ms": 2.0, "tau_decay_ms": 20.0},
                    "noise": {"excitatory_std": noise, "inhibitory_std": noise / 2}},
        "integration": {"dt_ms": dt_ms, "scheme": scheme},
        "duration_ms": 10 * dt_ms,
    }
    if model == "izhikevich2003":
        overrides["network"]["bias_current"] = bias
    if slow_synapses is not None:
        overrides["network"]["slow_synapses"] = slow_synapses
    cfg = resolve_config(preset, overrides)
    return build_network(cfg.network, cfg.integration, seed)


def drive(network, n_steps, amplitude, seed=0):
    """A deterministic external input: three channels of steps and ramps into random subsets."""
    from reservoir import ExternalInput

    rng = np.random.default_rng(seed)
    n = network.n_neurons
    t = np.arange(n_steps)
    signal = np.stack([
        np.where((t > 5) & (t < n_steps // 2), 1.0, 0.0),
        np.linspace(0.0, 1.5, n_steps),
        np.where(t % 40 < 10, 1.0, 0.0),
    ], axis=1) * amplitude
    subsets = [np.sort(rng.choice(n, size=n // 3, replace=False)) for _ in range(3)]
    return ExternalInput.from_subsets(signal, subsets, gains=[1.0, 0.8, 1.2])


def package_kernels():
    """Every compiled kernel of the package: ``{"module.name": dispatcher}`` (each listed once,
    under the module that defines it)."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import reservoir

    kernels = {}
    for info in pkgutil.walk_packages(reservoir.__path__, "reservoir."):
        if info.name.startswith(("reservoir.experiment", "reservoir.backends", "reservoir.__main__")):
            continue  # the experiment layer and the Brian2 backend hold no kernels
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == info.name:
                kernels[f"{info.name}.{name}"] = value
    return kernels


def interpret_kernels(monkeypatch, record=None):
    """Replace every compiled kernel, wherever the package refers to it, by its plain-Python
    body, so a call runs interpreted all the way down (each kernel looks up the others by
    name). With a set ``record``, each kernel adds its qualified name when it runs."""
    import sys

    from numba.core.registry import CPUDispatcher

    kernels = package_kernels()
    names = {id(d): name for name, d in kernels.items()}
    for module_name, module in list(sys.modules.items()):
        if not (module_name == "reservoir" or module_name.startswith("reservoir.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, CPUDispatcher) and id(value) in names:
                monkeypatch.setattr(module, attr, _recording(value.py_func, names[id(value)], record))


def _recording(function, name, record):
    if record is None:
        return function

    def wrapper(*args, **kwargs):
        record.add(name)
        return function(*args, **kwargs)

    return wrapper


def run_file_datasets(path) -> dict:
    """Every dataset of an HDF5 file, by its path, read into memory."""
    import h5py

    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def differing_datasets(left: dict, right: dict) -> list[str]:
    """The dataset paths whose values differ between two :func:`run_file_datasets` (NaN equals
    NaN), and those only one side has."""
    only = sorted(left.keys() ^ right.keys())
    return only + [k for k in left.keys() & right.keys()
                   if not np.array_equal(left[k], right[k], equal_nan=left[k].dtype.kind == "f")]


def metric_leaves(tree, path=""):
    """``(dotted path, value)`` of every leaf of a nested dict/list (JSON-like)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from metric_leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from metric_leaves(value, f"{path}[{i}]")
    else:
        yield path, tree


def metrics_differences(actual, expected, rtol: float = 1e-9, atol: float = 1e-12) -> list[str]:
    """Where two metrics trees differ: every leaf equal, floats to ``rtol`` / ``atol`` (results of
    linear algebra round differently with the BLAS kernel, its thread split and the arrays'
    alignment, so they are never compared by digest)."""
    import math

    here, recorded = dict(metric_leaves(actual)), dict(metric_leaves(expected))
    problems = [f"{key}: {'unexpected' if key in here else 'missing'}" for key in sorted(set(here) ^ set(recorded))]
    for key in recorded.keys() & here.keys():
        a, b = here[key], recorded[key]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if numbers and isinstance(b, float):
            if not (math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or (math.isnan(a) and math.isnan(b))):
                problems.append(f"{key}: {a!r}, expected {b!r} (rtol {rtol:g})")
        elif a != b:
            problems.append(f"{key}: {a!r}, expected {b!r}")
    return sorted(problems)
