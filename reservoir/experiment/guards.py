"""What keeps a run folder whole: one writer at a time, ctrl-C at a safe point, and a refusal
of runs that could not fit on the disk or in memory.

- :class:`RunFolderLock`: an exclusive ``flock`` on ``OUT/.lock`` for as long as a run writes
  the folder; a second process is refused with the first one's pid. The file is removed when the
  run ends, however it ends (complete, failed, interrupted). The kernel drops the lock when the
  process dies (even by ``kill -9``), so a killed run never leaves the folder locked: the next
  run finds a stale ``.lock`` holding a pid that is no longer running, says so, and takes it over.
- :class:`InterruptRequest`: the first ctrl-C (SIGINT) only sets a flag, which the simulation
  asks after every chunk; the runner then checkpoints at that chunk boundary and marks the run
  ``interrupted`` (resumable). A second ctrl-C interrupts at once.
- :func:`check_resources`: the run file's size is estimated from the configuration (spikes at
  an assumed mean rate, readout outputs, traces, weight snapshots) and compared with the free
  space of the output folder's disk, and the memory the metrics phase needs (it reads the
  spikes and outputs back) with the machine's memory, before anything is built or written.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from ..config import ConfigError

LOCK_FILE = ".lock"
#: Mean firing rate (Hz) assumed by the size estimate; the reservoirs of the shipped experiments
#: fire at 5-25 Hz. Spikes are written as a float64 time and a uint32 id (12 bytes); the
#: compressed copy made when the run completes is smaller, and is skipped if it does not fit.
ASSUMED_RATE_HZ = 20.0
SPIKE_BYTES = 12


class RunFolderError(RuntimeError):
    """The output folder cannot be used (exists already, is being written by another process,
    or is not a resumable run)."""


class RunFolderLock:
    """Exclusive lock of a run folder (``OUT/.lock``, holding the writer's pid while it writes).

    ``report`` receives the message printed when a stale lock is taken over (default: standard
    error): the ``.lock`` of a process that died without removing it (``kill -9``, a crash). Its
    ``flock`` went with the process; the pid written in it names the dead writer.
    """

    def __init__(self, folder, report=None):
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None
        self._report = report if report is not None else _print_to_stderr

    def __enter__(self) -> "RunFolderLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd) or "unknown"
                os.close(fd)
                raise RunFolderError(f"{self.path.parent} is being written by another process (pid {holder}); "
                                     "wait for it to finish or choose another --out") from None
            # The previous writer removes the file as it lets go: a file opened just before that is
            # no longer the lock of the folder, so lock the one now at the path instead.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        stale = _read_pid(fd)
        if stale and stale != str(os.getpid()):
            state = "is no longer running" if not _pid_alive(int(stale)) else "does not hold it (its pid was reused)"
            self._report(f"{self.path}: taking over the lock of pid {stale}, which {state}: that run stopped "
                         "without finishing (killed or crashed); its files are as it left them")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # still locked: nobody can take the file being removed
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _print_to_stderr(message: str) -> None:
    print(f"reservoir: {message}", file=sys.stderr, flush=True)


def _read_pid(fd: int) -> str:
    """The pid written in an open lock file ("" when there is none)."""
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else ""


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class InterruptRequest:
    """Within ``with``: the first SIGINT sets :attr:`requested` instead of raising; the second
    raises ``KeyboardInterrupt`` as usual. Outside the main thread (a Dask worker's task) it
    installs nothing: the signal is the host's business there."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)

    def __enter__(self) -> "InterruptRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def estimate_run_bytes(config) -> dict[str, float]:
    """Bytes the run file will hold, per stream, estimated from the configuration."""
    n_steps = config.duration_ms / config.integration.dt_ms
    n_neurons = config.network.n_neurons
    recording = config.recording
    sizes = {"spikes": n_neurons * ASSUMED_RATE_HZ * config.duration_ms / 1000.0 * SPIKE_BYTES
             if recording.spikes else 0.0}
    sizes["traces"] = n_steps / recording.trace_every_steps * (16 + 16 * len(recording.trace_neurons)) \
        if recording.trace_neurons else 0.0
    readouts = getattr(config, "readouts", None)
    if readouts is not None and readouts.groups:
        n_units = sum(g.n_units for g in readouts.groups)
        n_features = len(readouts.traces) * n_neurons
        sizes["outputs"] = n_steps / readouts.output_every_steps * 8 * (n_units + 2)
        if readouts.snapshot_every_ms is not None:
            sizes["snapshots"] = config.duration_ms / readouts.snapshot_every_ms * 8 * n_units * n_features
    return sizes


def check_resources(config, out_dir) -> None:
    """Refuse (:class:`~reservoir.config.ConfigError`, naming ``duration_ms``) a run whose file
    would not fit on the output folder's disk, or whose metrics phase would need more memory
    than the machine has."""
    sizes = estimate_run_bytes(config)
    total = sum(sizes.values())
    anchor = Path(out_dir).resolve()
    while not anchor.exists():
        anchor = anchor.parent
    free = shutil.disk_usage(anchor).free
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    in_memory = sizes.get("spikes", 0.0) + sizes.get("outputs", 0.0)
    parts = ", ".join(f"{name} {_format_bytes(size)}" for name, size in sizes.items() if size)
    if total > free:
        raise ConfigError(
            f"duration_ms = {config.duration_ms:g}: the run file would need about {_format_bytes(total)} "
            f"({parts}; spikes at an assumed {ASSUMED_RATE_HZ:g} Hz), but {anchor} has {_format_bytes(free)} free; "
            "shorten duration_ms, record less (recording.spikes = false, a larger readouts.output_every_steps) "
            "or write to a larger disk")
    if in_memory > memory:
        raise ConfigError(
            f"duration_ms = {config.duration_ms:g}: the metrics phase reads the spikes and readout outputs back, "
            f"about {_format_bytes(in_memory)}, and this machine has {_format_bytes(memory)} of memory; "
            "shorten duration_ms or record less (recording.spikes = false, a larger readouts.output_every_steps)")
