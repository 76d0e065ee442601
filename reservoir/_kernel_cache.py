"""Where the compiled kernels are cached, so that a cache never outlives the code it came from.

Numba's ``cache=True`` checks only the file that defines a kernel: a kernel that calls a kernel
of another module keeps the callee's old machine code, from its cache, after the callee's source
has changed (``readout_step`` in ``readouts/kernel.py`` inlines the rules of
``rules/three_factor.py``). Unless ``NUMBA_CACHE_DIR`` is set, the caches therefore go into a
folder named after a digest of the whole package's source, under ``reservoir/__pycache__``: any
change to any module starts from a fresh cache, and unchanged code reuses the old one. Other
digests' folders untouched for a day are removed (a process still running older code may be
writing to a recent one). Where the folder cannot be written (a read-only installation), Numba
falls back to its own locations.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CACHE_ROOT = PACKAGE / "__pycache__" / "kernels"
STALE_AFTER_S = 86400.0


def source_digest() -> str:
    """A digest of every Python source file of the package (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def configure() -> str | None:
    """Point Numba's cache at this source's folder (unless ``NUMBA_CACHE_DIR`` is set); returns it."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    import numba

    folder = CACHE_ROOT / source_digest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in CACHE_ROOT.iterdir():
            if old.is_dir() and old != folder and now - old.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        return None  # read-only: Numba's own locators decide
    numba.config.CACHE_DIR = str(folder)
    return str(folder)
