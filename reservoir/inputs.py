"""External inputs: a (time x channels) signal projected onto neuron subsets.

``signal[t, ch]`` is the value of channel ``ch`` during step ``t``; neuron ``i`` receives
``sum_ch gain[ch, i] * signal[t, ch]``. The projection is stored per channel as CSR
(``indptr``, neuron ``indices``, ``gains``), so a cue that drives 100 of 10,000 neurons costs
100 additions per step, and nothing when the channel is zero. Steps past the end of the signal
receive no external input.

:class:`ExternalInput` holds the whole signal; the streamed inputs generate it chunk by chunk
from a description whose size does not grow with the run's length: :class:`ScheduledInput`
(templates placed by a schedule of pieces, :class:`PieceSchedule`) and
:class:`PatternSequenceInput` (patterns presented one after another). The engine reads every
input through :meth:`ExternalInput.chunk`; :meth:`ExternalInput.materialize` builds a whole time
course for short runs (the Brian2 backend, checks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ExternalInput:
    """A signal of shape ``(n_steps, n_channels)`` and its channel -> neuron projection."""

    signal: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    gains: np.ndarray

    def __post_init__(self) -> None:
        self.signal = np.ascontiguousarray(np.atleast_2d(self.signal.T).T, dtype=np.float64)
        self.indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        self.gains = np.ascontiguousarray(self.gains, dtype=np.float64)
        _check_projection(self.indptr, self.indices, self.gains, self.n_channels)
        if not np.all(np.isfinite(self.signal)):
            raise ValueError("input signal contains NaN or inf")

    @property
    def n_channels(self) -> int:
        return self.signal.shape[1]

    @classmethod
    def from_subsets(cls, signal: np.ndarray, subsets: list[np.ndarray], gains: list[float] | None = None):
        """One channel per neuron subset, each with a uniform gain (default 1)."""
        indptr, indices, gain_values = _projection_from_subsets(subsets, gains)
        return cls(np.asarray(signal, dtype=np.float64).reshape(len(signal), -1), indptr, indices, gain_values)

    @classmethod
    def none(cls) -> "ExternalInput":
        return cls(np.zeros((0, 0)), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0))

    @property
    def end_step(self) -> int:
        """The first step from which on the input is 0 for good (the signal's length)."""
        return self.signal.shape[0]

    def materialize(self, n_steps: int | None = None) -> np.ndarray:
        """The whole time course ``(n_steps, n_channels)`` as :meth:`chunk` gives it (default:
        :attr:`end_step` rows), for short runs and checks; a long run reads it by chunks."""
        n_steps = self.end_step if n_steps is None else int(n_steps)
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        return self.chunk(0, n_steps)

    def chunk(self, first_step: int, n_steps: int) -> np.ndarray:
        """Signal rows for steps ``first_step .. first_step + n_steps - 1`` (zero-padded)."""
        out = np.zeros((n_steps, self.n_channels))
        stop = min(first_step + n_steps, self.signal.shape[0])
        if stop > first_step:
            out[: stop - first_step] = self.signal[first_step:stop]
        return out

    def digest_arrays(self) -> list[np.ndarray]:
        """The arrays that define this input (for a simulation's fingerprint)."""
        return [self.signal, self.indices, self.gains]

    def per_neuron(self, n_neurons: int, first_step: int, n_steps: int) -> np.ndarray:
        """The projected current per step and neuron, ``(n_steps, n_neurons)`` (for checks)."""
        out = np.zeros((n_steps, n_neurons))
        sig = self.chunk(first_step, n_steps)
        for ch in range(self.n_channels):
            span = slice(self.indptr[ch], self.indptr[ch + 1])
            for idx, gain in zip(self.indices[span], self.gains[span]):
                out[:, idx] += gain * sig[:, ch]
        return out


class PatternSequenceInput(ExternalInput):
    """Patterns presented one after another, generated chunk by chunk (memory independent of
    the run's length).

    ``patterns`` is ``(P, C)``: one current per channel for each pattern; presentation ``i``
    holds pattern ``pattern_index[i]`` on the channels from step ``onset_steps[i]`` for
    ``duration_steps`` steps, and every channel is 0 between presentations. The channel ->
    neuron projection is as in :class:`ExternalInput`. ``signal`` holds the patterns, not the
    time course; :meth:`chunk` is what the engine reads.
    """

    def __init__(self, patterns, onset_steps, pattern_index, duration_steps: int, indptr, indices, gains):
        self.onset_steps = np.ascontiguousarray(onset_steps, dtype=np.int64)
        self.pattern_index = np.ascontiguousarray(pattern_index, dtype=np.int64)
        self.duration_steps = int(duration_steps)
        if self.onset_steps.shape != self.pattern_index.shape:
            raise ValueError("onset_steps and pattern_index differ in length")
        if self.onset_steps.size > 1 and np.any(np.diff(self.onset_steps) < self.duration_steps):
            raise ValueError("presentations overlap: onsets must be at least duration_steps apart and increasing")
        if self.duration_steps < 1:
            raise ValueError(f"duration_steps must be >= 1, got {duration_steps}")
        super().__init__(np.asarray(patterns, dtype=np.float64), indptr, indices, gains)
        if self.pattern_index.size and (self.pattern_index.min() < 0 or self.pattern_index.max() >= len(self.signal)):
            raise ValueError(f"pattern_index must lie in [0, {len(self.signal)})")

    def chunk(self, first_step: int, n_steps: int) -> np.ndarray:
        out = np.zeros((n_steps, self.n_channels))
        for i, rows in windows_in_chunk(self.onset_steps, self.duration_steps, first_step, n_steps):
            out[rows] = self.signal[self.pattern_index[i]]
        return out

    def digest_arrays(self) -> list[np.ndarray]:
        return super().digest_arrays() + [self.onset_steps, self.pattern_index, np.array([self.duration_steps])]

    @property
    def end_step(self) -> int:
        return int(self.onset_steps[-1]) + self.duration_steps if self.onset_steps.size else 0


LONG_PIECE_FACTOR = 16
"""A piece longer than this times the median piece length is a long piece (:class:`PieceSchedule`)."""


class PieceSchedule:
    """Templates placed on a ``(steps x channels)`` grid, rendered chunk by chunk.

    Piece ``i`` writes template ``template_index[i]`` (a 2-D array ``(template_rows, width)``)
    from step ``start_steps[i]`` for ``length_steps[i]`` steps into the channels
    ``first_channel[i] .. first_channel[i] + width - 1``: offset ``o`` of the piece holds the
    template's row ``o`` (a piece must not outlast its template), except that a one-row template
    is held for the whole piece (a rectangular pulse of any length). ``length_steps`` defaults to
    each template's number of rows. Everything else is 0; steps at and after ``n_steps`` (when
    given) are 0 too, so a piece is cut at the run's end.

    Pieces must be sorted by start step. Where pieces overlap, the later piece in the list
    overwrites the earlier one (assignment, not addition), exactly as assigning the pieces one
    after another into a whole-run array would.

    Memory is the schedule's (a few numbers per piece, plus the templates), not the run's
    length: :meth:`render` finds the pieces that meet a chunk with ``np.searchsorted`` (using the
    longest piece; the few pieces longer than :data:`LONG_PIECE_FACTOR` x the median, such as a
    whole-run interval, are checked on their own) and builds only that chunk's rows, vectorised
    over the pieces (and looping over the few templates they use).
    """

    def __init__(self, n_channels: int, templates, start_steps, template_index, first_channel,
                 length_steps=None, n_steps: int | None = None):
        self.n_channels = int(n_channels)
        if self.n_channels < 0:
            raise ValueError(f"n_channels must be >= 0, got {n_channels}")
        self.templates = [np.ascontiguousarray(np.asarray(t, dtype=np.float64)) for t in templates]
        for k, template in enumerate(self.templates):
            if template.ndim != 2:
                raise ValueError(f"template {k} must be 2-D (length_steps, n_template_channels), "
                                 f"got shape {template.shape}")
            if not np.all(np.isfinite(template)):
                raise ValueError(f"template {k} contains NaN or inf")
        self.start_steps = np.ascontiguousarray(start_steps, dtype=np.int64).reshape(-1)
        self.template_index = np.ascontiguousarray(template_index, dtype=np.int64).reshape(-1)
        self.first_channel = np.ascontiguousarray(first_channel, dtype=np.int64).reshape(-1)
        n = self.start_steps.size
        if self.template_index.shape != (n,) or self.first_channel.shape != (n,):
            raise ValueError(f"start_steps, template_index and first_channel differ in length "
                             f"({n}, {self.template_index.size}, {self.first_channel.size})")
        self.n_steps = None if n_steps is None else int(n_steps)
        if self.n_steps is not None and self.n_steps < 0:
            raise ValueError(f"n_steps must be >= 0 or None, got {n_steps}")
        if n and (self.template_index.min() < 0 or self.template_index.max() >= len(self.templates)):
            bad = self.template_index[(self.template_index < 0) | (self.template_index >= len(self.templates))][0]
            raise ValueError(f"template_index {bad} is not in [0, {len(self.templates)})")
        if n and np.any(np.diff(self.start_steps) < 0):
            i = int(np.flatnonzero(np.diff(self.start_steps) < 0)[0])
            raise ValueError(f"pieces must be sorted by start step: piece {i + 1} starts at step "
                             f"{self.start_steps[i + 1]}, before piece {i} at step {self.start_steps[i]}")
        self._rows = np.array([t.shape[0] for t in self.templates], dtype=np.int64)
        self._width = np.array([t.shape[1] for t in self.templates], dtype=np.int64)
        self._data = (np.concatenate([t.ravel() for t in self.templates]) if self.templates
                      else np.zeros(0, dtype=np.float64))
        rows, width = self._rows[self.template_index], self._width[self.template_index]
        self.length_steps = (rows.copy() if length_steps is None
                             else np.ascontiguousarray(length_steps, dtype=np.int64).reshape(-1))
        if self.length_steps.shape != (n,):
            raise ValueError(f"length_steps needs one entry per piece ({n}), got {self.length_steps.size}")
        if np.any(self.length_steps < 0):
            raise ValueError(f"length_steps must be >= 0, got {self.length_steps.min()}")
        too_long = (self.length_steps > rows) & (rows != 1)
        if np.any(too_long):
            i = int(np.flatnonzero(too_long)[0])
            raise ValueError(f"piece {i} lasts {self.length_steps[i]} steps, longer than its template "
                             f"{self.template_index[i]} ({rows[i]} rows); only a one-row template is held")
        outside = (self.first_channel < 0) | (self.first_channel + width > self.n_channels)
        if np.any(outside):
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"piece {i} writes channels {self.first_channel[i]}..{self.first_channel[i] + width[i] - 1}, "
                             f"outside [0, {self.n_channels})")
        # the long pieces (e.g. a whole-run interval) are all checked at every chunk, so that the
        # start window searched for the others stays as short as they are (few long pieces expected)
        long = self.length_steps > LONG_PIECE_FACTOR * max(1.0, float(np.median(self.length_steps)) if n else 1.0)
        self._long, self._short = np.flatnonzero(long), np.flatnonzero(~long)
        self._short_starts = self.start_steps[self._short]
        self.max_length_steps = int(self.length_steps[self._short].max()) if self._short.size else 0
        self._overlaps_earlier = self._find_overlaps(width)

    def _find_overlaps(self, width: np.ndarray) -> np.ndarray:
        """Per piece: whether it may write a cell an earlier piece writes too (then :meth:`render`
        resolves the overlap by list order; elsewhere it assigns directly). Exact when pieces
        that share a channel share all their channels (the same first channel and width);
        otherwise every piece is marked."""
        n = self.start_steps.size
        if n == 0:
            return np.zeros(0, dtype=bool)
        keys = self.first_channel * (self.n_channels + 1) + width
        groups, group_of = np.unique(keys, return_inverse=True)
        group_first, group_width = groups // (self.n_channels + 1), groups % (self.n_channels + 1)
        used = group_width > 0
        group_end = np.maximum.accumulate((group_first + group_width)[used])
        ends = self.start_steps + self.length_steps
        big = int(ends.max()) + 1
        if np.any(group_first[used][1:] < group_end[:-1]) or big * groups.size >= 2**62:
            return np.ones(n, dtype=bool)  # channel groups that partly share channels: resolve everywhere
        order = np.lexsort((np.arange(n), group_of))  # by channel group, then in list (= start) order
        offset = group_of[order] * big
        latest_end = np.maximum.accumulate(offset + ends[order])
        previous = np.concatenate([[-1], latest_end[:-1]])
        overlaps = (ends[order] > self.start_steps[order]) & (offset + self.start_steps[order] < previous)
        out = np.zeros(n, dtype=bool)
        out[order[overlaps]] = True
        return out

    @classmethod
    def from_intervals(cls, n_channels: int, start_steps, length_steps, columns, values,
                       n_steps: int | None = None) -> "PieceSchedule":
        """Constant intervals: ``values[i]`` in channel ``columns[i]`` for steps
        ``[start_steps[i], start_steps[i] + length_steps[i])`` (sorted by start; later ones
        overwrite earlier ones where they overlap)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        levels, index = np.unique(values, return_inverse=True)
        return cls(n_channels, [np.full((1, 1), v) for v in levels], start_steps, index, columns,
                   length_steps=length_steps, n_steps=n_steps)

    @classmethod
    def side_by_side(cls, schedules: list["PieceSchedule"]) -> "PieceSchedule":
        """One schedule whose channels are those of ``schedules`` one after another (same
        ``n_steps``); each keeps its pieces' order, so the rows are the same, rendered at once."""
        if len({s.n_steps for s in schedules}) > 1:
            raise ValueError(f"schedules side by side need one n_steps, got {sorted({str(s.n_steps) for s in schedules})}")
        channel_offset = np.concatenate([[0], np.cumsum([s.n_channels for s in schedules])]).astype(np.int64)
        template_offset = np.concatenate([[0], np.cumsum([len(s.templates) for s in schedules])]).astype(np.int64)
        start = np.concatenate([s.start_steps for s in schedules])
        order = np.argsort(start, kind="stable")
        joined = [np.concatenate([getattr(s, name) + offset[i] for i, s in enumerate(schedules)])[order]
                  for name, offset in (("template_index", template_offset), ("first_channel", channel_offset))]
        return cls(int(channel_offset[-1]), [t for s in schedules for t in s.templates], start[order], *joined,
                   length_steps=np.concatenate([s.length_steps for s in schedules])[order],
                   n_steps=schedules[0].n_steps if schedules else None)

    @property
    def end_step(self) -> int:
        """The first step from which on every channel is 0 (the end of the last piece, cut at ``n_steps``)."""
        end = int((self.start_steps + self.length_steps).max()) if self.start_steps.size else 0
        return end if self.n_steps is None else min(end, self.n_steps)

    def _pieces_meeting(self, first_step: int, stop: int) -> np.ndarray:
        """Indices (in list order) of the pieces that may meet the steps ``first_step .. stop - 1``:
        the short pieces starting after ``first_step`` minus the longest short piece and before
        ``stop`` (two ``np.searchsorted``), and the long ones that overlap."""
        lo = int(np.searchsorted(self._short_starts, first_step - self.max_length_steps, side="right"))
        hi = int(np.searchsorted(self._short_starts, stop, side="left"))
        pieces = self._short[lo:hi]
        if self._long.size:
            long_starts = self.start_steps[self._long]
            meeting = self._long[(long_starts < stop) & (long_starts + self.length_steps[self._long] > first_step)]
            if meeting.size:
                pieces = np.sort(np.concatenate([pieces, meeting]))
        return pieces

    def render(self, first_step: int, n_steps: int) -> np.ndarray:
        """The rows for steps ``first_step .. first_step + n_steps - 1``, ``(n_steps, n_channels)``."""
        first_step, n_steps = int(first_step), int(n_steps)
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        out = np.zeros((n_steps, self.n_channels))
        stop = first_step + n_steps if self.n_steps is None else min(first_step + n_steps, self.n_steps)
        if stop <= first_step or self.start_steps.size == 0:
            return out
        pieces = self._pieces_meeting(first_step, stop)
        if pieces.size == 0:
            return out
        starts = self.start_steps[pieces]
        a = np.maximum(starts, first_step)
        b = np.minimum(starts + self.length_steps[pieces], stop)
        counts = np.maximum(b - a, 0)
        total = int(counts.sum())
        if total == 0:
            return out
        # one row per (piece, step): the piece, its chunk row and its offset in the piece
        which = np.repeat(np.arange(pieces.size), counts)
        piece = pieces[which]
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        row = (a - first_step)[which] + within
        offset = (a - starts)[which] + within
        template = self.template_index[piece]
        resolve = bool(self._overlaps_earlier[pieces].any())  # some cells are written twice
        flat_out = out.reshape(-1)
        used = (np.zeros(1, dtype=np.int64) if len(self.templates) == 1
                else np.flatnonzero(np.bincount(self.template_index[pieces], minlength=len(self.templates))))
        parts = []
        for t in used:  # per template (a few), vectorised over its pieces
            mine = slice(None) if used.size == 1 else template == t
            values = self.templates[t][offset[mine] % self._rows[t]]  # (rows, template channels)
            flat = (row[mine] * self.n_channels + self.first_channel[piece[mine]])[:, None] + np.arange(values.shape[1])
            if resolve:
                parts.append((flat.reshape(-1), values.reshape(-1), np.repeat(piece[mine], values.shape[1])))
            else:
                flat_out[flat] = values
        if resolve:  # assignment in list order: where pieces overlap, the later one's value is kept
            flat, values, rank = (np.concatenate(column) for column in zip(*parts))
            owner = np.full(out.size, -1, dtype=np.int64)
            np.maximum.at(owner, flat, rank)
            keep = owner[flat] == rank
            flat_out[flat[keep]] = values[keep]
        return out

    def digest_arrays(self) -> list[np.ndarray]:
        """The arrays that define this schedule (sizes included, so that no two schedules share them)."""
        return [np.array([self.n_channels, -1 if self.n_steps is None else self.n_steps, len(self.templates),
                          self.start_steps.size], dtype=np.int64),
                self._rows, self._width, self._data, self.start_steps, self.length_steps, self.template_index,
                self.first_channel]


class ScheduledInput(ExternalInput):
    """An input defined by a schedule of templates, generated chunk by chunk (memory independent
    of the run's length).

    ``templates`` are 2-D arrays ``(length_steps, n_template_channels)`` (a rectangular pulse is a
    constant template; one row is held for a piece's ``length_steps``); piece ``i`` places
    template ``template_index[i]`` from step ``start_steps[i]`` on the channels from
    ``first_channel[i]`` on. Pieces are sorted by start; where they overlap the later one
    overwrites (see :class:`PieceSchedule`). Steps at and after ``n_steps`` (when given) get no
    input. The channel -> neuron projection is as in :class:`ExternalInput`; the channel count
    is ``len(indptr) - 1``. There is no whole-run ``signal``: :meth:`chunk` is what the engine
    reads, :meth:`materialize` builds the time course for short runs.
    """

    def __init__(self, templates, start_steps, template_index, first_channel, indptr, indices, gains,
                 length_steps=None, n_steps: int | None = None):
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        if self.indptr.ndim != 1 or self.indptr.size < 1:
            raise ValueError(f"indptr must be 1-D with n_channels + 1 entries, got shape {self.indptr.shape}")
        self.schedule = PieceSchedule(self.indptr.size - 1, templates, start_steps, template_index, first_channel,
                                      length_steps=length_steps, n_steps=n_steps)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.gains = np.ascontiguousarray(gains, dtype=np.float64)
        _check_projection(self.indptr, self.indices, self.gains, self.n_channels)

    @classmethod
    def from_subsets(cls, templates, start_steps, template_index, first_channel, subsets: list[np.ndarray],
                     gains: list[float] | None = None, length_steps=None, n_steps: int | None = None):
        """One channel per neuron subset, each with a uniform gain (default 1)."""
        indptr, indices, gain_values = _projection_from_subsets(subsets, gains)
        return cls(templates, start_steps, template_index, first_channel, indptr, indices, gain_values,
                   length_steps=length_steps, n_steps=n_steps)

    @property
    def signal(self):
        raise AttributeError("a ScheduledInput has no whole-run signal: read it with chunk(first_step, n_steps) "
                             "or materialize(n_steps)")

    @property
    def n_channels(self) -> int:
        return self.schedule.n_channels

    @property
    def end_step(self) -> int:
        return self.schedule.end_step

    def __repr__(self) -> str:
        return (f"ScheduledInput(n_channels={self.n_channels}, n_pieces={self.schedule.start_steps.size}, "
                f"n_templates={len(self.schedule.templates)}, n_steps={self.schedule.n_steps})")

    def chunk(self, first_step: int, n_steps: int) -> np.ndarray:
        return self.schedule.render(first_step, n_steps)

    def digest_arrays(self) -> list[np.ndarray]:
        return [*self.schedule.digest_arrays(), self.indptr, self.indices, self.gains]


def _check_projection(indptr: np.ndarray, indices: np.ndarray, gains: np.ndarray, n_channels: int) -> None:
    """Check a channel -> neuron CSR projection against the channel count."""
    if indptr.shape != (n_channels + 1,) or indptr[-1] != indices.size:
        raise ValueError(f"input projection indptr (shape {indptr.shape}, last entry {indptr[-1] if indptr.size else None}) "
                         f"does not match the {n_channels} channels and {indices.size} neuron indices")
    if gains.shape != indices.shape:
        raise ValueError(f"input projection indices ({indices.size}) and gains ({gains.size}) differ in length")


def _projection_from_subsets(subsets: list[np.ndarray], gains: list[float] | None):
    """``(indptr, indices, gains)`` of one channel per neuron subset, each with a uniform gain (default 1)."""
    gains = [1.0] * len(subsets) if gains is None else gains
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in subsets])])
    indices = np.concatenate([np.asarray(s, dtype=np.int32) for s in subsets]) if subsets else np.zeros(0)
    gain_values = np.concatenate([np.full(len(s), g, dtype=np.float64) for s, g in zip(subsets, gains)]) if subsets else np.zeros(0)
    return indptr, indices, gain_values


def windows_in_chunk(starts: np.ndarray, length: int, first_step: int, n_steps: int):
    """``(window index, row slice)`` of every window ``[starts[i], starts[i] + length)`` (sorted,
    non-overlapping) that meets the steps ``first_step .. first_step + n_steps - 1``; the slice
    indexes rows of that chunk."""
    stop = first_step + n_steps
    lo = max(0, int(np.searchsorted(starts, first_step - length, side="right")))
    hi = int(np.searchsorted(starts, stop, side="left"))
    for i in range(lo, hi):
        a = max(int(starts[i]), first_step)
        b = min(int(starts[i]) + length, stop)
        if b > a:
            yield i, slice(a - first_step, b - first_step)
