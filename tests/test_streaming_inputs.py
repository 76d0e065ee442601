"""Streamed inputs and teachers (:class:`ScheduledInput`, :class:`ScheduledTeacher`): chunk by
chunk they give, bit for bit, the whole-run arrays the paradigms used to build - checked here
against slow, obviously correct NumPy references (the paradigms' former loops, copied) over the
whole run, with chunk boundaries anywhere."""
import numpy as np
import pytest

from paradigms.cue_bump import CueBumpTask
from paradigms.force_sine import SineTask
from paradigms.whatwhen import WhatWhenTask
from reservoir.experiment import load_experiment, prepare
from reservoir.inputs import ExternalInput, PatternSequenceInput, PieceSchedule, ScheduledInput
from reservoir.network import build_network
from reservoir.readouts import Intervals, Readouts, ScheduledTeacher, Teacher, WindowTeacher

from .test_experiments import EXPERIMENTS


# --------------------------------------------------------------------------- references
def reference_whatwhen(task: WhatWhenTask, n_units: int):
    """The what/when task's whole-run arrays, as ``WhatWhenTask.prepare`` built them before the
    schedules (the loop copied): ``(signal, targets, gates, learn, store)``."""
    c, table = task.config, task.table
    basis = c.time_basis
    n_basis = 0 if basis is None else basis.n_channels
    first_basis = len(c.cues) + len(c.identities)
    waveforms = (basis.waveforms(np.arange(task.steps(c.trial_ms)) * task.dt_ms, c.trial_ms)
                 if basis is not None else None)
    what = task.what_columns
    signal = np.zeros((task.n_steps, len(task.subsets)))
    targets = np.zeros((task.n_steps, n_units))
    gates = np.zeros((task.n_steps, n_units))
    store = np.zeros(task.n_steps, dtype=bool)
    cue_steps, outcome_steps, trial_steps = task.steps(c.cue_ms), task.steps(c.outcome_ms), task.steps(c.trial_ms)
    for onset, cue, identity, latency in zip(table["onset_step"], table["cue"], table["identity"], table["latency_ms"]):
        signal[onset:onset + cue_steps, cue] = c.cue_amplitude
        if waveforms is not None:
            span = min(trial_steps, task.n_steps - onset)
            first = first_basis + cue * n_basis
            signal[onset:onset + span, first:first + n_basis] = waveforms[:span]
        gates[onset:onset + trial_steps, :] = 1.0
        arrival = onset + task.steps(latency)
        if identity >= 0:
            signal[arrival:arrival + outcome_steps, len(c.cues) + identity] = c.outcome_amplitude
            targets[arrival:arrival + outcome_steps, task.when_column] = 1.0
        if what.size:
            store[onset:arrival] = True
            if identity >= 0:
                targets[onset:arrival, what[identity]] = 1.0
    learn = gates[:, task.when_column] > 0
    return signal, targets, gates, learn, store


def reference_cue_bump(task: CueBumpTask, readouts: Readouts):
    """The cue/bump task's whole-run arrays (the former loop): ``(signal, targets, gates, learn, store)``."""
    c = task.config
    period = task.steps(c.period_ms)
    signal = np.zeros(task.n_steps)
    columns = readouts.group_columns(c.group)
    targets = np.zeros((task.n_steps, readouts.n_units))
    gates = np.zeros((task.n_steps, readouts.n_units))
    t_trial = np.arange(task.steps(c.trial_ms)) * task.dt_ms
    bump = c.bump_amplitude * np.exp(-0.5 * ((t_trial - c.latency_ms) / c.bump_width_ms) ** 2)
    for trial in range(c.n_trials):
        onset = trial * period
        signal[onset:onset + task.steps(c.cue_ms)] = c.cue_amplitude
        targets[onset:onset + bump.size, columns] = bump[:, None]
        gates[onset:onset + bump.size, columns] = 1.0
    store = np.zeros(task.n_steps, dtype=bool)
    if readouts.store.capacity_steps:
        store = gates[:, columns].any(axis=1)
    return signal[:, None], targets, gates, np.ones(task.n_steps, dtype=bool), store


def reference_sine(task: SineTask, readouts: Readouts):
    """The FORCE sine task's whole-run teacher arrays (the former code): ``(targets, gates, learn, store)``."""
    c = task.config
    columns = readouts.group_columns(c.group)
    t_ms = np.arange(task.n_steps) * task.dt_ms
    targets = np.zeros((task.n_steps, readouts.n_units))
    targets[:, columns] = (c.amplitude * np.sin(2 * np.pi * c.frequency_hz * t_ms / 1000.0))[:, None]
    learn = np.zeros(task.n_steps, dtype=bool)
    learn[task.steps(c.learn_start_ms):task.steps(c.learn_stop_ms)] = True
    return targets, np.ones((task.n_steps, readouts.n_units)), learn, np.zeros(task.n_steps, dtype=bool)


def naive_pieces(n_steps, n_channels, templates, starts, template_index, first_channel, lengths, end=None):
    """Pieces assigned one after another into a whole array (a one-row template held)."""
    out = np.zeros((n_steps, n_channels))
    for start, t, ch, length in zip(starts, template_index, first_channel, lengths):
        template = templates[t]
        for offset in range(length):
            step = start + offset
            if step < n_steps and (end is None or step < end):
                out[step, ch:ch + template.shape[1]] = template[0 if template.shape[0] == 1 else offset]
    return out


# --------------------------------------------------------------------------- helpers
def irregular_chunks(n_steps: int, seed: int, largest: int = 2500):
    """``(first_step, n_steps)`` covering ``0 .. n_steps + 37`` (past the end too) in chunks of
    random sizes, single steps included."""
    rng = np.random.default_rng(seed)
    first, out = 0, []
    while first < n_steps + 37:
        size = int(rng.choice([1, 2, int(rng.integers(1, 50)), int(rng.integers(1, largest))]))
        out.append((first, size))
        first += size
    return out


def streamed_input(external, n_steps: int, seed: int) -> np.ndarray:
    parts = [external.chunk(first, size) for first, size in irregular_chunks(n_steps, seed)]
    whole = np.concatenate(parts)
    assert not whole[n_steps:].any(), "steps past the run's end get no input"
    return whole[:n_steps]


def streamed_teacher(teacher, n_steps: int, seed: int):
    parts = [teacher.chunk(first, size) for first, size in irregular_chunks(n_steps, seed)]
    whole = [np.concatenate([getattr(p, name) for p in parts]) for name in ("targets", "gates", "learn", "store")]
    for rows in whole:
        assert not rows[n_steps:].any(), "steps past the run's end are idle"
    return [rows[:n_steps] for rows in whole]


def assert_bit_identical(actual, expected, name):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, name
    assert np.array_equal(actual.view(np.uint8) if actual.dtype != bool else actual,
                          expected.view(np.uint8) if expected.dtype != bool else expected), name


def check_task(external, teacher, expected, n_steps, seed):
    signal, targets, gates, learn, store = expected
    if signal is not None:
        assert_bit_identical(streamed_input(external, n_steps, seed), signal, "signal")
        assert_bit_identical(external.materialize(n_steps), signal, "materialized signal")
    for name, actual, reference in zip(("targets", "gates", "learn", "store"),
                                       streamed_teacher(teacher, n_steps, seed + 1), (targets, gates, learn, store)):
        assert_bit_identical(actual, reference, name)
    steps = np.flatnonzero(store) if store.any() else np.arange(0, n_steps, 7)
    rows_targets, rows_gates = teacher.rows_at(steps)
    assert_bit_identical(rows_targets, targets[steps], "rows_at targets")
    assert_bit_identical(rows_gates, gates[steps], "rows_at gates")


def whatwhen_case(name: str, overrides: dict, n_steps: int | None = None):
    """A prepared what/when task (``n_steps``: a run shorter than its trials, to cut the last one)."""
    config = load_experiment(EXPERIMENTS / name, overrides)
    if n_steps is None:
        prepared = prepare(config)
        return prepared.task, prepared.external_input, prepared.teacher, prepared.readouts
    network = build_network(config.network, config.integration, config.seed)
    readouts = Readouts(config.readouts, network.n_neurons, network.dt_ms, config.seed)
    task = WhatWhenTask(config.task, n_steps, config.integration.dt_ms, config.seed)
    external, teacher = task.prepare(network, readouts)
    return task, external, teacher, readouts


WHATWHEN_CASES = {
    "default, shortened": ("whatwhen.toml", {"network": {"n_neurons": 300}, "duration_ms": 14 * 1200.0 + 700.0,
                                             "task": {"blocks": [{"name": "b", "n_trials": 14}]}}, None),
    "time basis, blocks, outcome pulses, cue gains": (
        "whatwhen_timing_switch.toml",
        {"network": {"n_neurons": 300}, "duration_ms": 16 * 1200.0,
         "task": {"outcome_amplitude": 10.0, "cue_gain_spread": 0.3,
                  "time_basis": {"n_channels": 5, "spacing": "log", "first_ms": 30.0, "last_ms": 600.0},
                  "blocks": {"0": {"n_trials": 8}, "1": {"n_trials": 8}}}}, None),
    "the last trial's time basis cut at the run's end": (
        "whatwhen.toml", {"network": {"n_neurons": 300}, "duration_ms": 6 * 1200.0,
                          "task": {"blocks": [{"name": "b", "n_trials": 6}]}}, 5 * 2400 + 700),
    "no what group, no time basis": (
        "whatwhen_timing_switch.toml",
        {"network": {"n_neurons": 300}, "duration_ms": 10 * 1200.0,
         "task": {"what_group": None, "time_basis": None, "blocks": {"0": {"n_trials": 5}, "1": {"n_trials": 5}}}},
        None),
}


# --------------------------------------------------------------------------- the paradigms, bit for bit
@pytest.mark.parametrize("case", sorted(WHATWHEN_CASES))
def test_whatwhen_streams_the_former_whole_run_arrays_bit_for_bit(case):
    name, overrides, n_steps = WHATWHEN_CASES[case]
    task, external, teacher, readouts = whatwhen_case(name, overrides, n_steps)
    assert isinstance(external, ScheduledInput) and isinstance(teacher, ScheduledTeacher)
    expected = reference_whatwhen(task, readouts.n_units)
    assert expected[0].any() and expected[2].any()
    check_task(external, teacher, expected, task.n_steps, seed=len(case))


def test_the_cut_case_really_cuts_a_time_basis():
    name, overrides, n_steps = WHATWHEN_CASES["the last trial's time basis cut at the run's end"]
    task, external, _, _ = whatwhen_case(name, overrides, n_steps)
    last_onset = task.table["onset_step"][task.table["onset_step"] < n_steps][-1]
    assert last_onset + task.steps(task.config.trial_ms) > n_steps
    assert external.chunk(n_steps - 5, 5).any() and not external.chunk(n_steps, 50).any()


@pytest.mark.parametrize("store", [False, True])
def test_cue_bump_streams_the_former_whole_run_arrays_bit_for_bit(store):
    overrides = {"network": {"n_neurons": 200}, "duration_ms": 12 * 600.0 + 300.0, "task": {"n_trials": 12,
                                                                                       "test_trials": 3}}
    if store:
        overrides["readouts"] = {"groups": {"0": {"three_factor": {"consolidation": {"mode": "replay", "n_replay": 1}}}}}
    config = load_experiment(EXPERIMENTS / "three_factor_cue_bump.toml", overrides)
    prepared = prepare(config)
    assert isinstance(prepared.task, CueBumpTask)
    expected = reference_cue_bump(prepared.task, prepared.readouts)
    assert expected[4].any() == store
    check_task(prepared.external_input, prepared.teacher, expected, prepared.task.n_steps, seed=3 + store)


def test_force_sine_streams_the_former_whole_run_arrays_bit_for_bit():
    config = load_experiment(EXPERIMENTS / "force_sine.toml", {"duration_ms": 3000.0, "task": {
        "learn_start_ms": 1000.0, "learn_stop_ms": 2000.0, "frequency_hz": 7.3}, "network": {"n_neurons": 200}})
    prepared = prepare(config)
    assert isinstance(prepared.task, SineTask)
    targets, gates, learn, store = reference_sine(prepared.task, prepared.readouts)
    assert_bit_identical(prepared.task.target(), targets[:, prepared.readouts.group_columns(config.task.group)[0]],
                         "target()")
    check_task(None, prepared.teacher, (None, targets, gates, learn, store), prepared.task.n_steps, seed=5)


# --------------------------------------------------------------------------- the schedules themselves
def test_overlapping_pieces_are_assigned_in_list_order_at_any_chunking():
    rng = np.random.default_rng(7)
    templates = [np.full((1, 1), 2.5), rng.normal(size=(9, 3)), rng.normal(size=(4, 2)), np.zeros((1, 2))]
    n_pieces = 60
    starts = np.sort(rng.integers(0, 300, n_pieces))
    index = rng.integers(0, len(templates), n_pieces)
    widths = np.array([templates[i].shape[1] for i in index])
    first = rng.integers(0, 6 - widths + 1)
    lengths = np.array([int(rng.integers(0, 40)) if templates[i].shape[0] == 1 else int(rng.integers(0, templates[i].shape[0] + 1))
                        for i in index])
    long = index == 0
    lengths[np.flatnonzero(long)[:4]] = [350, 200, 250, 300]  # long pieces (checked on their own), overlapping others
    for end in (None, 250):
        schedule = PieceSchedule(6, templates, starts, index, first, length_steps=lengths, n_steps=end)
        assert schedule._long.size == 4 and schedule._overlaps_earlier.any()
        expected = naive_pieces(360, 6, templates, starts, index, first, lengths, end)
        for seed in range(4):
            parts = [schedule.render(a, n) for a, n in irregular_chunks(360, seed, largest=80)]
            assert_bit_identical(np.concatenate(parts)[:360], expected, f"end {end}, seed {seed}")
        assert schedule.end_step == min(int((starts + lengths).max()), end or 10**9)


def test_scheduled_input_projects_like_external_input_and_materializes():
    subsets = [np.array([0, 3]), np.array([1, 2, 5])]
    templates = [np.full((1, 1), 4.0), np.array([[1.0, 2.0], [3.0, 4.0]])]
    scheduled = ScheduledInput.from_subsets(templates, [2, 3, 6], [0, 1, 0], [1, 0, 0], subsets, gains=[1.0, 0.5],
                                            length_steps=[3, 2, 1])
    dense = ExternalInput.from_subsets(scheduled.materialize(9), subsets, gains=[1.0, 0.5])
    assert scheduled.end_step == 7 and scheduled.n_channels == 2
    np.testing.assert_array_equal(scheduled.per_neuron(6, 0, 9), dense.per_neuron(6, 0, 9))
    np.testing.assert_array_equal(dense.materialize(), dense.signal)
    with pytest.raises(AttributeError, match="no whole-run signal"):
        scheduled.signal
    assert "ScheduledInput" in repr(scheduled)


def test_a_pattern_sequence_materializes_its_time_course():
    patterns = np.array([[1.0, 0.0], [0.0, 2.0]])
    external = PatternSequenceInput(patterns, [1, 5], [1, 0], 2, [0, 1, 2], [0, 1], [1.0, 1.0])
    expected = np.zeros((7, 2))
    expected[1:3] = patterns[1]
    expected[5:7] = patterns[0]
    np.testing.assert_array_equal(external.materialize(), expected)


@pytest.mark.parametrize("kwargs,named", [
    ({"start_steps": [5, 3]}, "sorted by start step: piece 1 starts at step 3, before piece 0 at step 5"),
    ({"first_channel": [0, 2]}, r"piece 1 writes channels 2..3, outside \[0, 3\)"),
    ({"template_index": [0, 2]}, r"template_index 2 is not in \[0, 2\)"),
    ({"length_steps": [1, 4]}, r"piece 1 lasts 4 steps, longer than its template 1 \(3 rows\)"),
    ({"length_steps": [-1, 1]}, "length_steps must be >= 0, got -1"),
])
def test_a_bad_schedule_is_refused_naming_the_value(kwargs, named):
    args = {"start_steps": [0, 3], "template_index": [0, 1], "first_channel": [0, 1], "length_steps": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=named):
        PieceSchedule(3, [np.ones((1, 1)), np.ones((3, 2))], args["start_steps"], args["template_index"],
                      args["first_channel"], length_steps=args["length_steps"])


def test_scheduled_teacher_refuses_gates_outside_0_1_and_unsorted_intervals():
    with pytest.raises(ValueError, match=r"gates must lie in \[0, 1\]"):
        ScheduledTeacher(1, gates=[(0, 5, 0, 1.5)])
    with pytest.raises(ValueError, match="targets intervals: pieces must be sorted"):
        ScheduledTeacher(1, targets=[(4, 1, 0, 1.0), (2, 1, 0, 1.0)])
    with pytest.raises(AttributeError, match="no whole-run arrays"):
        ScheduledTeacher(1).targets


def test_rows_at_equals_the_materialized_rows_for_every_teacher():
    rng = np.random.default_rng(3)
    n_steps, k = 20000, 3
    whole = Teacher(rng.random((n_steps, k)), gates=rng.random((n_steps, k)))
    window_starts = np.arange(10, n_steps, 900)
    windows = WindowTeacher(window_starts, 300, rng.random((window_starts.size, k)), rng.random((window_starts.size, k)))
    starts = np.sort(rng.integers(0, n_steps, 80))
    scheduled = ScheduledTeacher(k, targets=Intervals(starts, rng.integers(1, 700, 80), rng.integers(0, k, 80),
                                                      rng.normal(size=80)),
                                 gates=Intervals(starts, rng.integers(1, 700, 80), rng.integers(0, k, 80), rng.random(80)),
                                 n_steps=n_steps - 100)
    steps = np.unique(np.concatenate([rng.integers(0, n_steps + 50, 300), np.arange(5000, 5400),
                                      np.arange(n_steps - 120, n_steps + 10)]))
    for teacher in (whole, windows, scheduled):
        rows = teacher.materialize(n_steps + 60)
        targets, gates = teacher.rows_at(steps)
        np.testing.assert_array_equal(targets, rows.targets[steps])
        np.testing.assert_array_equal(gates, rows.gates[steps])
        empty_targets, _ = teacher.rows_at(np.zeros(0, dtype=np.int64))
        assert empty_targets.shape == (0, k)
    np.testing.assert_array_equal(whole.rows_at(steps[steps < n_steps])[0], whole.targets[steps[steps < n_steps]])
    with pytest.raises(ValueError, match="sorted steps"):
        whole.rows_at([5, 3])


def test_the_digest_changes_with_the_schedule():
    def digest(obj):
        import hashlib
        h = hashlib.sha256()
        for values in obj.digest_arrays():
            h.update(np.ascontiguousarray(values).tobytes())
        return h.hexdigest()

    templates = [np.full((1, 1), 3.0), np.arange(6.0).reshape(3, 2)]

    def make_input(templates=templates, starts=(0, 4), index=(0, 1), first=(0, 1), lengths=(2, 3), n_steps=None,
                   gains=(1.0, 1.0, 1.0)):
        return ScheduledInput(templates, starts, index, first, [0, 1, 2, 3], [0, 1, 2], gains, length_steps=lengths,
                              n_steps=n_steps)

    base = digest(make_input())
    changed = [make_input(starts=(0, 5)), make_input(lengths=(3, 3)), make_input(first=(1, 1)),
               make_input(n_steps=100), make_input(gains=(1.0, 2.0, 1.0)),
               make_input(templates=[np.full((1, 1), 3.5), templates[1]]),
               make_input(templates=[templates[0], np.arange(6.0).reshape(2, 3)], first=(0, 0), lengths=(2, 2))]
    assert base == digest(make_input())
    assert len({base, *map(digest, changed)}) == len(changed) + 1

    def make_teacher(value=1.0, start=3, n_steps=50):
        return ScheduledTeacher(2, targets=[(start, 4, 1, value)], gates=[(0, 10, 0, 1.0)], n_steps=n_steps)

    teachers = [make_teacher(), make_teacher(value=0.5), make_teacher(start=4), make_teacher(n_steps=60)]
    assert len({digest(t) for t in teachers}) == len(teachers)
    assert digest(make_teacher()) == digest(make_teacher())
