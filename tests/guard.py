"""The behaviour guard: three short runs whose files must not change unless on purpose.

Each case runs the ``reservoir`` command line into a fresh folder and digests

- ``run.h5``: its SHA-256 (the file's bytes) and a content digest (every dataset's dtype, shape
  and bytes and every attribute, in sorted order), which does not depend on the HDF5 library's
  layout choices;
- ``metrics.json`` without ``wall_time_s``: the SHA-256 of its canonical JSON.

``tests/data/guard/checksums.json`` keeps the digests, the environment they were made in and
the note of why they were last written. ``tests/test_guard.py`` compares, where the kernels'
environment (CPU, C library, Numba and LLVM) is the recorded one - elsewhere the runs agree only
to rounding, which a chaotic network amplifies (``docs/reproducibility.md``), and the test says
so and skips: the content digest must match; the file's bytes where the HDF5 library is also
the recorded one; the metrics where NumPy, SciPy are too, and else to within 1e-9 of the stored
reference ``<case>.metrics.json``.

Regenerate only deliberately, saying why (the note is stored)::

    .venv/bin/python -m tests.guard --write --why "what changed and why it should"
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "guard"
CHECKSUMS = DATA / "checksums.json"
EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

CASES = {
    "whatwhen": ["run", str(EXPERIMENTS / "whatwhen.toml"), "--set", "task.blocks.0.n_trials=40",
                 "--set", "duration_ms=48000"],
    "force_sine": ["run", str(EXPERIMENTS / "force_sine.toml"), "--set", "duration_ms=3000",
                   "--set", "task.learn_start_ms=1000", "--set", "task.learn_stop_ms=2000"],
    "simulate_netm": ["simulate", "--preset", "izhikevich2003", "--duration-ms", "1000", "--seed", "1"],
}
"""The issue's guard commands (the default experiment and FORCE sine shortened, a plain run)."""


def run_case(name: str, out: Path) -> Path:
    from reservoir.experiment.cli import main

    folder = out / name
    assert main([*CASES[name], "--out", str(folder), "--no-progress"]) == 0
    return folder


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_sha256(path: Path) -> str:
    """SHA-256 over every dataset (name, dtype, shape, bytes) and attribute of an HDF5 file."""
    h = hashlib.sha256()

    def attributes(obj):
        for key in sorted(obj.attrs):
            value = np.asarray(obj.attrs[key])
            h.update(f"@{key}:{value.dtype.str}:{value.shape}".encode())
            h.update(str(value.tolist()).encode() if value.dtype.kind in "OSU" else value.tobytes())

    with h5py.File(path, "r") as f:
        attributes(f)
        names = []
        f.visit(names.append)
        for name in sorted(names):
            item = f[name]
            h.update(f"/{name}".encode())
            attributes(item)
            if isinstance(item, h5py.Dataset):
                values = np.ascontiguousarray(item[()])
                h.update(f":{values.dtype.str}:{values.shape}".encode())
                h.update(str(values.tolist()).encode() if values.dtype.kind in "OSU" else values.tobytes())
    return h.hexdigest()


def metrics_without_wall_time(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("wall_time_s", None)
    return metrics


def metrics_sha256(metrics: dict) -> str:
    return hashlib.sha256(json.dumps(metrics, sort_keys=True).encode()).hexdigest()


def digests(folder: Path) -> dict:
    return {"run_h5_sha256": file_sha256(folder / "run.h5"), "run_h5_content_sha256": content_sha256(folder / "run.h5"),
            "metrics_sha256": metrics_sha256(metrics_without_wall_time(folder))}


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"})


def environment() -> dict:
    """What the digests depend on besides the code."""
    import llvmlite
    import numba
    import scipy

    return {
        "python": platform.python_version(), "machine": platform.machine(), "cpu_flags": _cpu_flags(),
        "libc": " ".join(platform.libc_ver()),
        "numpy": np.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
        "llvmlite": llvmlite.__version__, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
    }


KERNEL_KEYS = ("machine", "cpu_flags", "libc", "numba", "llvmlite")
FILE_KEYS = ("h5py", "hdf5")
NUMERIC_KEYS = ("numpy", "scipy")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.guard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write new checksums and reference metrics")
    parser.add_argument("--why", default=None, help="why the files change (required with --write)")
    args = parser.parse_args(argv)
    if args.write and not args.why:
        parser.error("argument --why: say why the guarded files change")
    record = {"environment": environment(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            folder = run_case(name, Path(tmp))
            record["cases"][name] = digests(folder)
            if args.write:
                (DATA / f"{name}.metrics.json").write_text(json.dumps(metrics_without_wall_time(folder), indent=1) + "\n")
    if args.write:
        record["note"] = args.why
        CHECKSUMS.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
