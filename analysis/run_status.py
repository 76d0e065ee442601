"""How far a run got, read from its run file's root attributes alone: the check every analysis
command line makes before it reads a run (:func:`read_run_status`), which windows a run that
stopped early recorded whole (:func:`recorded_whole`), and the command lines' exits for runs they
cannot analyse (:func:`run_errors_exit`)."""
from __future__ import annotations

import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reservoir.recording import FileFormatError, check_format, open_hdf5

from .io import _run_file


#: The statuses a run file records (:mod:`reservoir.recording`): ``running`` while it is written
#: (and for good, if its process was killed), then ``complete``, ``failed`` or ``interrupted``.
RUN_STATUSES = ("running", "complete", "failed", "interrupted")


class IncompleteRunError(ValueError):
    """The run stopped (or is still running) before the part an analysis needs; the message names
    the run file, its status, how far it got and why it stopped."""


@dataclass(frozen=True)
class RunStatus:
    """How far a run got, from its run file's root attributes (:func:`read_run_status`).

    A run that stopped early (``failed``, ``interrupted``, or ``running`` still or for good) holds
    valid records up to ``steps_completed``: the analyses use what lies before
    :attr:`completed_ms` (:func:`recorded_whole`) and say so (:meth:`partial`), or refuse
    (:meth:`incomplete`)."""

    file: Path
    status: str
    message: str
    steps_completed: int
    dt_ms: float
    planned_ms: float | None
    """The configured ``duration_ms`` (None if the file's configuration does not say)."""
    config: dict = field(default_factory=dict, repr=False)
    """The run's resolved configuration, as the file records it (``config_toml``)."""

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def completed_ms(self) -> float:
        """Simulated time recorded: ``steps_completed x dt_ms``."""
        return self.steps_completed * self.dt_ms

    def describe(self) -> str:
        """``.../run.h5 records status 'interrupted' at step 4800 (t = 2400 ms of 12000 ms)``."""
        of = f" of {self.planned_ms:g} ms" if self.planned_ms is not None else ""
        return (f"{self.file} records status {self.status!r} at step {self.steps_completed} "
                f"(t = {self.completed_ms:g} ms{of})")

    def reason(self) -> str:
        """Why the run stopped: the file's message, or what ``running`` means; empty if neither."""
        if self.message:
            return self.message
        if self.status == "running":
            return "it is still being written, or the process writing it was killed"
        return ""

    def partial(self, what: str) -> str:
        """The note of an analysis of this run's complete part: ``<describe>: <what>``, and why
        the run stopped."""
        reason = self.reason()
        return f"{self.describe()}: {what}" + (f" ({reason})" if reason else "")

    def incomplete(self, needs: str) -> IncompleteRunError:
        """The error of an analysis that cannot use this run: ``<describe>: <needs>``, and why
        the run stopped."""
        return IncompleteRunError(self.partial(needs))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_run_status(path) -> RunStatus:
    """The :class:`RunStatus` of the run folder (or run file) ``path``, read from the run file's
    root attributes alone (nothing else is loaded): the check every analysis command line makes
    before it reads a run.

    Raises ``FileNotFoundError`` naming the folder when it does not exist or holds no
    ``run.h5``, and :class:`~reservoir.recording.FileFormatError` for a file that cannot be read
    as a run file, lacks the status attributes or records an unknown status."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder")
    file = _run_file(path)
    if not file.exists():
        raise FileNotFoundError(f"{path} is not a complete run folder: {file.name} is missing")
    with open_hdf5(file, "r") as f:
        check_format(f, file)
        attrs = f.attrs
        try:
            status, steps, dt = _text(attrs["status"]), int(attrs["steps_completed"]), float(attrs["dt_ms"])
            message = _text(attrs.get("message", ""))
            config = tomllib.loads(_text(attrs.get("config_toml", "")))
        except (KeyError, ValueError, TypeError, OSError) as error:  # TOMLDecodeError is a ValueError
            raise FileFormatError(f"{file} is a damaged reservoir run file: {error}") from error
    if status not in RUN_STATUSES:
        raise FileFormatError(f"{file} records the unknown status {status!r} (a run file's status is one of "
                              f"{', '.join(RUN_STATUSES)})")
    planned = config.get("duration_ms")
    return RunStatus(file=file, status=status, message=message, steps_completed=steps, dt_ms=dt,
                     planned_ms=float(planned) if planned is not None else None, config=config)


def recorded_whole(run, starts_ms, length_ms: float) -> np.ndarray:
    """Which of the windows ``[start, start + length_ms)`` the run recorded to their end: every
    window of a complete run's design, those that end by its last completed step for a run that
    stopped early (``run.duration_ms``). Boolean, one per start."""
    return np.asarray(starts_ms, dtype=float) + float(length_ms) <= run.duration_ms + 0.5 * run.dt_ms


@contextmanager
def run_errors_exit(parser):
    """Around an analysis command line's work: a run it cannot analyse exits with status 2 and
    the message (``FileNotFoundError``: no such folder, no ``run.h5``; :class:`IncompleteRunError`:
    stopped before what the command needs), as a bad argument does; a damaged run file
    (:class:`~reservoir.recording.FileFormatError`) exits with status 1 and the message naming
    it. No traceback: the messages of ``reservoir report``."""
    try:
        yield
    except (FileNotFoundError, IncompleteRunError) as error:
        parser.error(str(error))
    except FileFormatError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
