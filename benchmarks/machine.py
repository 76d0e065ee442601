"""What machine a benchmark ran on, for the header of its table."""
from __future__ import annotations

import os
import platform
from datetime import datetime

import numpy as np


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def describe(extra_packages: tuple[str, ...] = (), cores_note: str = "") -> str:
    """``date, CPU, N cores[note]; Python x, NumPy y, Numba z[, extras]``."""
    import importlib

    import numba

    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}", f"Numba {numba.__version__}"]
    for name in extra_packages:
        module = importlib.import_module(name.lower())
        versions.append(f"{name} {module.__version__}")
    return f"{datetime.now():%Y-%m-%d %H:%M}, {cpu_name()}, {os.cpu_count()} cores{cores_note}; " + ", ".join(versions)


def publish(table: str, path) -> None:
    """Print a benchmark's markdown table and write it to ``path`` (under benchmarks/results)."""
    from pathlib import Path

    path = Path(path)
    print()
    print(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")
    print(f"\nwritten to {path}")
