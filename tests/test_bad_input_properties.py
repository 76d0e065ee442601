"""Property-based bad-input tests of the command line (issue 20, item 2).

Hypothesis builds wrong inputs for the three things a user hands the command line, from the
shipped files, so that the key paths are real:

- experiment files for ``reservoir run FILE.toml``: a shipped experiment (experiments/*.toml)
  with a value of the wrong type, a number out of range (negative, above its bound, ``nan``,
  ``inf``, huge), an unknown key at any level, a table replaced by a value, or the file cut at a
  random byte;
- ``--set KEY.PATH=VALUE`` for ``reservoir run`` and ``reservoir simulate``: wrong values, unknown
  keys, a key below a value, wrong list indices, malformed assignments;
- sweep files for ``reservoir sweep``: the shipped sweeps (experiments/sweeps/*.toml) and one with
  every section, mutated in the same ways, plus bad grids, distributions, seeds and sizes.

Each case must exit with status 2, print a message on stderr that names the offending key (for
a TOML syntax error: the file and the line), show no traceback and write nothing: the --out
folder stays absent (or empty, where the case created it beforehand) and no other file appears
in the case's folder.

Only invalid inputs are checked. A mutation that stays valid (a number replaced by another in
range, ``true`` read as 1) is recognised first by the validation the command line itself uses
(``load_experiment``, ``resolve_config``, ``load_sweep``) and discarded with ``assume``, so no case
starts a simulation; should one get through anyway, the run, simulate and sweep entry points are
replaced by one that fails the test.

Reproducible (``derandomize=True``, no example database) and fast (about 10 s on 2 cores). The
number of cases that ran is printed at the end of the module, with or without ``-s`` (each
property also fails if fewer than half its examples were invalid inputs that it checked):

    .venv/bin/pytest tests/test_bad_input_properties.py -p no:randomly -q

(per property: add ``--hypothesis-show-statistics``).
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import re
import shutil
import tempfile
import tomllib
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pydantic
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reservoir.config import ConfigError, resolve_config
from reservoir.experiment import runner
from reservoir.experiment import sweep as sweep_command
from reservoir.experiment.cli import main, parse_assignment, set_path
from reservoir.experiment.config import ExperimentConfig, load_experiment
from reservoir.experiment.sweep_file import MAX_POINTS, load_sweep
from reservoir.presets import preset_names

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
EXPERIMENT_FILES = sorted(EXPERIMENTS.glob("*.toml"))
SWEEP_FILES = sorted((EXPERIMENTS / "sweeps").glob("*.toml"))

FULL_SWEEP = """\
# every section of a sweep file (docs/sweeps.md), on the default experiment: 16 points
experiment = "whatwhen.toml"
seeds = [1, 2]
name = "full"

[set]
"task.test_trials" = 20
"readouts.groups.0.three_factor.learning_rate" = 3e-5

[grid]
"network.n_neurons" = [1000, 2000]
"network.noise.excitatory_std,network.noise.inhibitory_std" = [[0.25, 0.125], [0.5, 0.25]]

[random]
n_samples = 2
seed = 0
"network.bias_current" = { uniform = [4.0, 6.0] }
"readouts.groups.1.three_factor.learning_rate" = { log_uniform = [1e-3, 1e-1] }
"task.outcome_amplitude" = { choice = [0.0, 10.0] }
"""

CASES: Counter = Counter()
"""Cases checked (invalid inputs run through the command line) per property, and generated in all."""


def _settings(n_examples: int):
    return settings(max_examples=n_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def report_case_count(request):
    yield
    checked = sum(n for key, n in CASES.items() if key != "generated")
    if checked:
        per_property = ", ".join(f"{key} {n}" for key, n in sorted(CASES.items()) if key != "generated")
        line = (f"bad-input property cases: {checked} checked, {CASES['generated']} generated "
                f"(the rest were valid and skipped): {per_property}")
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print("\n" + line)


def run_property(name: str, prop, n_examples: int) -> None:
    """Run the hypothesis property ``prop`` and check that at least half of its examples were
    invalid inputs that it checked (not all filtered away as valid)."""
    before = CASES[name]
    prop()
    checked = CASES[name] - before
    assert checked >= n_examples // 2, f"{name}: only {checked} of {n_examples} examples were invalid inputs"


# --- running the command line ----------------------------------------------------------------------

class SimulationStarted(AssertionError):
    """The command line got as far as starting a run on an input the test made invalid."""


def _refuse_to_run(*args, **kwargs):
    raise SimulationStarted("the command line started a run, a simulation or a sweep on an invalid input")


@dataclass
class Outcome:
    argv: list[str]
    code: Any
    stderr: str

    @property
    def error(self) -> str:
        """The message after argparse's ``error:`` (the usage text before it names every option)."""
        return self.stderr.partition("error: ")[2]


def invoke(argv: list[str]) -> Outcome:
    """``reservoir ARGV`` in this process, with stderr captured and the entry points that would
    start a run replaced by :func:`_refuse_to_run`."""
    err = io.StringIO()
    with (mock.patch.object(runner, "run_experiment", _refuse_to_run),
          mock.patch.object(runner, "simulate", _refuse_to_run),
          mock.patch.object(runner, "resume", _refuse_to_run),
          mock.patch.object(sweep_command, "run_sweep", _refuse_to_run),
          contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO())):
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        except SimulationStarted:
            raise
        except Exception as error:  # noqa: BLE001 - the defect this file looks for
            raise AssertionError(f"reservoir {' '.join(argv)}: a traceback instead of a message: "
                                 f"{type(error).__name__}: {error}") from error
    return Outcome(argv, code, err.getvalue())


def names(text: str, key: str) -> bool:
    """Whether ``text`` names ``key`` as a whole (``seed`` is not named by ``seeds``, nor
    ``a.b`` by ``xa.b``; a longer path below it, ``a.b.c``, names it)."""
    return re.search(rf"(?<![\w.-]){re.escape(key)}(?!\w)", text) is not None


KEY_LINE = re.compile(r"^(?:\S+: )?(?:[A-Za-z_][\w]*|\"\")(?:\.[^\s.:]+)*: \S", re.M)
"""A message line that starts with a key path (``task.cues.0.latency_ms: ...``), possibly after the
file or point it is about."""


def names_file_and_line(text: str, path: Path) -> bool:
    return str(path) in text and re.search(r"\bline \d+", text) is not None


class Workspace:
    """The folder of one case: its input files and the --out folder, absent or created empty
    beforehand; :meth:`assert_untouched` checks that the command wrote nothing in it."""

    def __init__(self, root: Path, precreate_out: bool, experiment_copies: bool = False):
        self.root = root
        self.out = root / "out"
        if precreate_out:
            self.out.mkdir()
        if experiment_copies:  # so that a mutated file's `base` resolves as it does in experiments/
            for path in EXPERIMENT_FILES:
                shutil.copy(path, root / path.name)
        self.listing: list[str] | None = None

    def _listing(self) -> list[str]:
        return sorted(str(path.relative_to(self.root)) for path in self.root.rglob("*"))

    def freeze(self) -> None:
        self.listing = self._listing()

    def assert_untouched(self) -> None:
        now = self._listing()
        assert now == self.listing, f"files written: {sorted(set(now) - set(self.listing))}"


@contextlib.contextmanager
def workspace(precreate_out: bool, experiment_copies: bool = False):
    with tempfile.TemporaryDirectory(prefix="bad-input-") as folder:
        yield Workspace(Path(folder), precreate_out, experiment_copies)


def assert_rejected(outcome: Outcome, space: Workspace, keys: list[str] | None = None,
                    toml_file: Path | None = None) -> None:
    """Exit status 2, no traceback, nothing written, and a message that names one of ``keys``
    (or, where ``keys`` is None, some key path, or the file and the line of a TOML error)."""
    assert outcome.code == 2, f"exit status {outcome.code!r}, not 2:\n{outcome.stderr}"
    assert "Traceback" not in outcome.stderr, outcome.stderr
    message = outcome.error
    assert message.strip(), f"no error message:\n{outcome.stderr}"
    if toml_file is not None:
        assert names_file_and_line(message, toml_file), f"the message names not the file and the line:\n{message}"
    elif keys is not None:
        assert any(names(message, key) for key in keys), f"the message names none of {keys}:\n{message}"
    else:
        assert KEY_LINE.search(message), f"the message names no key:\n{message}"
    space.assert_untouched()


# --- the shipped files and their keys --------------------------------------------------------------

def _is_array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def leaf_paths(table: dict, prefix: tuple = ()) -> list[tuple[str, ...]]:
    """The paths of the values (not tables) in ``table``; items of arrays of tables by index."""
    paths = []
    for key, value in table.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            paths += leaf_paths(value, path)
        elif _is_array_of_tables(value):
            for index, item in enumerate(value):
                paths += leaf_paths(item, path + (str(index),))
        else:
            paths.append(path)
    return paths


def table_paths(table: dict, prefix: tuple = ()) -> list[tuple[str, ...]]:
    """The paths of the tables in ``table`` (the root is ``()``), items of arrays of tables included."""
    paths = [prefix]
    for key, value in table.items():
        if isinstance(value, dict) and value:
            paths += table_paths(value, prefix + (key,))
        elif _is_array_of_tables(value):
            for index, item in enumerate(value):
                paths += table_paths(item, prefix + (key, str(index)))
    return paths


def list_paths(table: dict, prefix: tuple = ()) -> list[tuple[tuple[str, ...], list]]:
    """``(path, list)`` of every list in ``table``."""
    found = []
    for key, value in table.items():
        path = prefix + (key,)
        if isinstance(value, list):
            found.append((path, value))
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    found += list_paths(item, path + (str(index),))
        elif isinstance(value, dict):
            found += list_paths(value, path)
    return found


def value_at(table: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        table = table[int(part)] if isinstance(table, list) else table[part]
    return table


def replaced(table: dict, path: tuple[str, ...], value: Any) -> dict:
    """A copy of ``table`` with the item at ``path`` set to ``value`` (added where it is new)."""
    table = copy.deepcopy(table)
    parent = value_at(table, path[:-1])
    if isinstance(parent, list):
        parent[int(path[-1])] = value
    else:
        parent[path[-1]] = value
    return table


def _field_names(model: type[pydantic.BaseModel], seen: set) -> set[str]:
    names_ = set()
    if model in seen:
        return names_
    seen.add(model)

    def models(annotation):
        for argument in typing.get_args(annotation):
            yield from models(argument)
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            yield annotation

    for name, info in model.model_fields.items():
        names_.add(name)
        for sub in models(info.annotation):
            names_ |= _field_names(sub, seen)
    return names_


FIELD_NAMES = _field_names(ExperimentConfig, set())
KNOWN_NAMES = FIELD_NAMES | {"base", "A", "B", "C", "D", "C1", "C2", "C3", "C4", "C5", "C6"}
"""Every key an experiment knows, and the identity and cue names of the shipped files: an
"unknown key" is none of these."""

FILE_TABLES = {path: tomllib.loads(path.read_text()) for path in EXPERIMENT_FILES}
CONFIG_TREES = {path: load_experiment(path).model_dump() for path in EXPERIMENT_FILES}
PRESET_TREES = {name: resolve_config(name).model_dump() for name in preset_names()}
SWEEP_TEXTS = {path.name: path.read_text() for path in SWEEP_FILES} | {"full.toml": FULL_SWEEP}
SWEEP_TABLES = {name: tomllib.loads(text) for name, text in SWEEP_TEXTS.items()}
WHATWHEN_TREE = CONFIG_TREES[EXPERIMENTS / "whatwhen.toml"]


def field_name(path: tuple[str, ...]) -> str:
    """The name of the setting at ``path``: its last part that is a field (``latency_ms`` of
    ``task.cues.0.latency_ms``, ``probabilities`` of ``task.cues.0.probabilities.A``). A check across
    keys, such as a cue's latency against the trial's length, names the setting, not its full path."""
    return next((part for part in reversed(path) if part in FIELD_NAMES), ".".join(path))


def scalar_leaves(tree: dict) -> list[tuple[str, ...]]:
    return [p for p in leaf_paths(tree) if isinstance(value_at(tree, p), (bool, int, float, str))]


def number_leaves(tree: dict) -> list[tuple[str, ...]]:
    return [p for p in leaf_paths(tree)
            if isinstance(value_at(tree, p), (int, float)) and not isinstance(value_at(tree, p), bool)]


# --- values ----------------------------------------------------------------------------------------

BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0"}


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


words = st.text(st.characters(categories=["L"]) | st.sampled_from(" _-"), min_size=1, max_size=10).filter(
    lambda text: not _numeric(text) and text.strip().lower() not in BOOLEAN_WORDS and text != "auto")
"""Text that no number, boolean or ``auto`` is read from."""
numbers = st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
small_lists = st.lists(st.integers(-5, 5) | words, max_size=3)
small_tables = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.integers(-3, 3), min_size=1, max_size=2)
out_of_range = (st.sampled_from([-1, 0, -0.5, 1.5, 2, 1e300, -1e300, math.nan, math.inf, -math.inf])
                | st.integers(min_value=2**63, max_value=2**80) | st.integers(min_value=-2**80, max_value=-1)
                | st.floats())


def wrong_type_for(original: Any) -> st.SearchStrategy:
    """Values of another type than ``original``'s (a value pydantic would convert, such as the
    text "12" for a number, is not among them; ``true`` for a number is, and the oracle skips it)."""
    if isinstance(original, bool):
        return words | st.integers().filter(lambda n: n not in (0, 1)) | small_lists | small_tables
    if isinstance(original, (int, float)):
        return words | small_lists | small_tables | st.booleans()
    if isinstance(original, str):
        return numbers | small_lists | small_tables | st.booleans()
    if isinstance(original, list):
        return words | numbers | small_tables | st.booleans()
    return words | numbers | st.booleans() | st.lists(st.integers(-5, 5), min_size=1, max_size=3)  # for a table


@st.composite
def unknown_name(draw, existing: list[str]) -> str:
    """A key no section knows: a typo of a key that is there, or a new word."""
    base = draw(st.sampled_from(sorted(existing) or ["key"]))
    edit = draw(st.sampled_from(["drop", "swap", "double", "insert", "upper", "suffix", "word"]))
    at = draw(st.integers(0, max(len(base) - 1, 0)))
    if edit == "drop" and len(base) > 1:
        name = base[:at] + base[at + 1:]
    elif edit == "swap" and len(base) > 1:
        at = min(at, len(base) - 2)
        name = base[:at] + base[at + 1] + base[at] + base[at + 2:]
    elif edit == "double":
        name = base[:at] + base[at] + base[at:]
    elif edit == "insert":
        name = base[:at] + draw(st.sampled_from("aeiouxz_")) + base[at:]
    elif edit == "upper":
        name = base.upper()
    elif edit == "suffix":
        name = base + draw(st.sampled_from(["s", "_ms", "2", " "]))
    else:
        name = draw(st.text(st.characters(exclude_categories=["C"], exclude_characters=".="), min_size=1,
                            max_size=8).filter(str.strip))
    assume(name.strip() and name not in KNOWN_NAMES and name not in existing and "." not in name and "=" not in name)
    return name


# --- 1. experiment files -----------------------------------------------------------------------------

@dataclass
class BadFile:
    """A shipped experiment file made invalid: the table to write as ``file``'s namesake and the
    key paths the message may name."""

    file: Path
    table: dict
    keys: list[str]
    what: str


@st.composite
def mutated_experiment_files(draw) -> BadFile:
    file = draw(st.sampled_from(EXPERIMENT_FILES))
    table = FILE_TABLES[file]
    kind = draw(st.sampled_from(["wrong type", "out of range", "unknown key", "table replaced"]))
    if kind == "wrong type":
        path = draw(st.sampled_from(leaf_paths(table)))
        value = draw(wrong_type_for(value_at(table, path)))
    elif kind == "out of range":
        path = draw(st.sampled_from(number_leaves(table) or leaf_paths(table)))
        value = draw(out_of_range)
    elif kind == "unknown key":
        section = draw(st.sampled_from(table_paths(table)))
        existing = list(value_at(table, section))
        path = section + (draw(unknown_name(existing)),)
        value = draw(numbers | words | st.booleans())
        if existing and not set(existing) & FIELD_NAMES:  # a table of names (a cue's probabilities, a block's
            # changes): the task's own checks name the unknown name or the setting, not the full path
            return BadFile(file, replaced(table, path, value), [".".join(path), repr(path[-1]), field_name(path)],
                           f"unknown name: {'.'.join(path)} = {value!r}")
    else:
        sections = [p for p in table_paths(table) if p] + [p for p, v in list_paths(table) if _is_array_of_tables(v)]
        assume(sections)
        path = draw(st.sampled_from(sections))
        value = draw(wrong_type_for({}))
    keys = [".".join(path)] + [field_name(path)] * (kind == "out of range")
    return BadFile(file, replaced(table, path, value), keys, f"{kind}: {'.'.join(path)} = {value!r}")


def _rejected_by(validate, *args) -> bool:
    """The oracle: what the command line's own validation says (any exception counts as invalid:
    a crash is an input whose command-line reaction is then checked)."""
    try:
        validate(*args)
    except Exception:  # noqa: BLE001 - ConfigError / SweepError, or a crash
        return True
    return False


def _is_invalid_experiment(path: Path, overrides: dict | None = None) -> bool:
    return _rejected_by(load_experiment, path, overrides)


@given(bad=mutated_experiment_files(), precreate_out=st.booleans())
@_settings(150)
def _mutated_experiment_files_are_rejected(bad: BadFile, precreate_out: bool):
    CASES["generated"] += 1
    with workspace(precreate_out, experiment_copies=True) as space:
        target = space.root / bad.file.name
        target.write_text(tomli_w.dumps(bad.table))
        assume(_is_invalid_experiment(target))
        CASES["experiment files"] += 1
        space.freeze()
        outcome = invoke(["run", str(target), "--out", str(space.out), "--no-progress"])
        assert_rejected(outcome, space, bad.keys)


def test_mutated_experiment_files_exit_2_naming_the_key():
    run_property("experiment files", _mutated_experiment_files_are_rejected, 150)


def _content_start(text: str) -> int:
    """The offset of the first line that is not a comment or blank (cutting before it leaves
    an empty, valid file)."""
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            return offset
        offset += len(line)
    return offset


@st.composite
def truncated_experiment_files(draw) -> tuple[Path, bytes]:
    file = draw(st.sampled_from(EXPERIMENT_FILES))
    raw = file.read_bytes()
    cut = draw(st.integers(_content_start(raw.decode()), len(raw) - 1))
    return file, raw[:cut]


@given(case=truncated_experiment_files(), precreate_out=st.booleans())
@_settings(80)
def _truncated_experiment_files_are_rejected(case: tuple[Path, bytes], precreate_out: bool):
    CASES["generated"] += 1
    file, content = case
    with workspace(precreate_out, experiment_copies=True) as space:
        target = space.root / file.name
        target.write_bytes(content)
        assume(_is_invalid_experiment(target))
        CASES["truncated experiment files"] += 1
        space.freeze()
        outcome = invoke(["run", str(target), "--out", str(space.out), "--no-progress"])
        try:
            tomllib.loads(content.decode())
        except tomllib.TOMLDecodeError:
            assert_rejected(outcome, space, toml_file=target)
        else:  # cut at the end of a line: valid TOML with keys missing
            assert_rejected(outcome, space)


def test_truncated_experiment_files_exit_2_naming_the_file_and_line_or_a_key():
    run_property("truncated experiment files", _truncated_experiment_files_are_rejected, 80)


# --- 2. --set overrides ----------------------------------------------------------------------------

BAD_VALUE_TEXTS = ["abc", '"text"', "[1, 2]", "{x = 1}", "true", "false", "-1", "0", "-0.5", "1.5", "2", "nan",
                   "inf", "-inf", "+inf", "1e400", "99999999999999999999", "-99999999999999999999", "[]", '""',
                   "1e-400", "[[1], 2]", "{a = {b = 1}}"]
bad_value_texts = st.sampled_from(BAD_VALUE_TEXTS) | words | st.integers().map(str) | st.floats().map(repr)
BAD_INDICES = ["-1", "x", "first", "\u00b2", "\u0661", "\uff10", "1.0", "0x1", "+1", " 1", "1 ", "[0]"]


def toml_value_text(value: Any) -> str:
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


@dataclass
class BadSet:
    """``--set`` assignments, one of them wrong, and the keys its message may name."""

    assignments: list[str]
    keys: list[str]


@st.composite
def bad_assignments(draw, tree: dict) -> BadSet:
    kind = draw(st.sampled_from(["wrong value", "unknown key", "below a value", "wrong index", "malformed"]))
    leaves = leaf_paths(tree)
    if kind == "wrong value":
        path = draw(st.sampled_from(leaves))
        bad, keys = f"{'.'.join(path)}={draw(bad_value_texts)}", [".".join(path), field_name(path)]
    elif kind == "unknown key":
        section = draw(st.sampled_from(table_paths(tree)))
        name = draw(unknown_name(list(value_at(tree, section))))
        assume(name.strip() == name)  # parse_assignment strips the key's ends
        path = section + (name,)
        bad, keys = f"{'.'.join(path)}={draw(st.sampled_from(['1', 'abc', 'true']))}", [".".join(path)]
    elif kind == "below a value":
        path = draw(st.sampled_from(leaves))
        name = draw(st.sampled_from(["x", "value", "0", "ms"]))
        bad, keys = f"{'.'.join(path + (name,))}=1", [".".join(path)]
    elif kind == "wrong index":
        path, items = draw(st.sampled_from(list_paths(tree)))
        index = draw(st.sampled_from(BAD_INDICES) | st.integers(len(items), len(items) + 10**20).map(str))
        rest = ()
        if items and isinstance(items[0], dict) and draw(st.booleans()):
            rest = (draw(st.sampled_from(sorted(items[0]))),)
        # a list that only the model's default gives (not the file, base or preset) is named itself
        bad, keys = f"{'.'.join(path + (index,) + rest)}=1", [".".join(path + (index,)), ".".join(path)]
    else:
        key = ".".join(draw(st.sampled_from(leaves)))
        bad = draw(st.sampled_from([key, "=1", " =1", f"{key}.=1", f".{key}=1", f"{key}..x=1",
                                    f"{key.replace('.', '..', 1)}=1" if "." in key else f"..{key}=1"]))
        keys = ["--set"]
    harmless = [f"{'.'.join(p)}={toml_value_text(value_at(tree, p))}"
                for p in draw(st.lists(st.sampled_from(scalar_leaves(tree)), max_size=2))]
    at = draw(st.integers(0, len(harmless)))
    return BadSet(harmless[:at] + [bad] + harmless[at:], keys)


def _is_invalid_override(assignments: list[str], validate) -> bool:
    """The command line's own steps: parse each assignment, set it, validate the whole."""
    import argparse

    overrides: dict = {}
    try:
        for text in assignments:
            path, value = parse_assignment(text)
            set_path(overrides, path, value)
        validate(overrides)
    except (argparse.ArgumentTypeError, ConfigError):
        return True
    except Exception:  # noqa: BLE001 - a crash: the command line's reaction to it is checked
        return True
    return False


@st.composite
def bad_run_overrides(draw) -> tuple[Path, BadSet]:
    file = draw(st.sampled_from(EXPERIMENT_FILES))
    return file, draw(bad_assignments(CONFIG_TREES[file]))


@given(case=bad_run_overrides(), precreate_out=st.booleans())
@_settings(120)
def _bad_run_overrides_are_rejected(case: tuple[Path, BadSet], precreate_out: bool):
    CASES["generated"] += 1
    file, bad = case
    assume(_is_invalid_override(bad.assignments, lambda overrides: load_experiment(file, overrides)))
    CASES["--set of run"] += 1
    with workspace(precreate_out) as space:
        space.freeze()
        argv = ["run", str(file), "--out", str(space.out), "--no-progress"]
        outcome = invoke(argv + [arg for text in bad.assignments for arg in ("--set", text)])
        assert_rejected(outcome, space, bad.keys)


def test_bad_set_overrides_of_run_exit_2_naming_the_key():
    run_property("--set of run", _bad_run_overrides_are_rejected, 120)


@st.composite
def bad_simulate_overrides(draw) -> tuple[str, BadSet]:
    preset = draw(st.sampled_from(sorted(PRESET_TREES)))
    return preset, draw(bad_assignments(PRESET_TREES[preset]))


@given(case=bad_simulate_overrides(), precreate_out=st.booleans())
@_settings(60)
def _bad_simulate_overrides_are_rejected(case: tuple[str, BadSet], precreate_out: bool):
    CASES["generated"] += 1
    preset, bad = case
    assume(_is_invalid_override(bad.assignments, lambda overrides: resolve_config(preset, {"seed": 0, **overrides})))
    CASES["--set of simulate"] += 1
    with workspace(precreate_out) as space:
        space.freeze()
        argv = ["simulate", "--preset", preset, "--out", str(space.out), "--no-progress"]
        outcome = invoke(argv + [arg for text in bad.assignments for arg in ("--set", text)])
        assert_rejected(outcome, space, bad.keys)


def test_bad_set_overrides_of_simulate_exit_2_naming_the_key():
    run_property("--set of simulate", _bad_simulate_overrides_are_rejected, 60)


# --- 3. sweep files --------------------------------------------------------------------------------

@dataclass
class BadSweep:
    table: dict
    keys: list[str]
    what: str


def _grid_of(table: dict) -> dict:
    return dict(table.get("grid", {}))


def _random_of(table: dict) -> dict:
    return dict(table.get("random") or {"n_samples": 2, "network.bias_current": {"uniform": [4.0, 6.0]}})


@st.composite
def real_keys(draw) -> str:
    """A key of the sweeps' experiment (whatwhen.toml) other than ``seed``."""
    path = draw(st.sampled_from([p for p in scalar_leaves(WHATWHEN_TREE) if p != ("seed",)]))
    return ".".join(path)


@st.composite
def mutated_sweep_files(draw) -> BadSweep:
    name = draw(st.sampled_from(sorted(SWEEP_TABLES)))
    table = copy.deepcopy(SWEEP_TABLES[name])
    kind = draw(st.sampled_from(["top-level type", "unknown top-level key", "grid", "set", "random"]))
    if kind == "top-level type":
        key = draw(st.sampled_from(["experiment", "seeds", "name", "set", "grid", "random"]))
        value = draw({
            "experiment": numbers | small_lists | small_tables | st.booleans() | st.sampled_from(["", ".", "sweeps"])
            | words.map(lambda w: f"{w}.toml"),
            "seeds": words | small_tables | st.just([]) | st.lists(words, min_size=1, max_size=2)
            | st.lists(st.integers(max_value=-1), min_size=1, max_size=2) | st.just([1, 1])
            | st.lists(st.integers(min_value=2**63, max_value=2**70), min_size=1, max_size=1),
            "name": numbers | small_lists | small_tables | st.booleans(),
        }.get(key, words | numbers | small_lists | st.booleans()))
        table[key] = value
        return BadSweep(table, [key, "seed"] if key == "seeds" else [key], f"{key} = {value!r}")
    if kind == "unknown top-level key":
        key = draw(unknown_name(["experiment", "seeds", "name", "set", "grid", "random"]))
        table[key] = draw(numbers | words | small_lists)
        return BadSweep(table, [key], f"unknown {key!r}")
    if kind == "grid":
        grid = _grid_of(table)
        change = draw(st.sampled_from(["not a list", "empty", "linked width", "unknown key", "bad value", "seed",
                                       "wrong index", "empty part"]))
        key = draw(real_keys())
        keys = [key]
        if change == "not a list":
            grid[key] = draw(words | numbers | st.booleans() | small_tables)
        elif change == "empty":
            grid[key] = []
        elif change == "linked width":
            other = draw(real_keys())
            assume(other != key)
            key = f"{key},{other}"
            grid[key] = draw(st.lists(st.lists(numbers, max_size=4).filter(lambda v: len(v) != 2)
                                      | numbers, min_size=1, max_size=3))
            keys = [key]
        elif change == "unknown key":
            parts = key.split(".")
            at = draw(st.integers(0, len(parts) - 1))
            parts[at] = draw(unknown_name([parts[at]]))
            key = ".".join(parts)
            grid[key] = [1]
            keys = [".".join(parts[:at + 1])]
        elif change == "bad value":
            grid[key] = [draw(wrong_type_for(value_at(WHATWHEN_TREE, tuple(key.split(".")))) | out_of_range)]
        elif change == "seed":
            key = "seed"
            grid[key] = [1, 2]
            keys = ["seed"]
        elif change == "wrong index":
            key = f"task.cues.{draw(st.integers(3, 10**6))}.latency_ms"
            grid[key] = [100.0]
            keys = [key.rsplit(".", 1)[0]]
        else:
            key = key.replace(".", "..", 1) if "." in key else key + "."
            grid[key] = [1]
            keys = [key]
        table["grid"] = grid
        return BadSweep(table, keys + [f"grid.{k}" for k in keys], f"grid: {change}: {key!r} = {grid[key]!r}")
    if kind == "set":
        fixed = dict(table.get("set", {}))
        change = draw(st.sampled_from(["unknown key", "bad value", "seed", "empty part"]))
        key = draw(real_keys())
        keys = [key]
        if change == "unknown key":
            parts = key.split(".")
            parts[-1] = draw(unknown_name([parts[-1]]))
            key = ".".join(parts)
            value = 1
            keys = [key]
        elif change == "bad value":
            value = draw(wrong_type_for(value_at(WHATWHEN_TREE, tuple(key.split(".")))) | out_of_range)
        elif change == "seed":
            key, value, keys = "seed", 3, ["set.seed"]
        else:
            key, value = key.replace(".", "..", 1) if "." in key else "." + key, 1
            keys = [repr(key)]
        fixed[key] = value
        table["set"] = fixed
        return BadSweep(table, keys, f"set: {change}: {key!r} = {value!r}")
    draws = _random_of(table)
    change = draw(st.sampled_from(["n_samples", "seed", "distribution", "choice value", "no parameter"]))
    parameters = [k for k in draws if k not in ("n_samples", "seed")]
    if change == "n_samples":
        draws["n_samples"] = draw(st.sampled_from([0, -1, 1.5, "two", [2]]) | st.integers(MAX_POINTS + 1, 10**30))
        keys = ["random.n_samples"]
    elif change == "seed":
        draws["seed"] = draw(st.sampled_from([-1, "zero", [0], 1.5]))
        keys = ["random.seed"]
    elif change == "distribution":
        key = draw(st.sampled_from(parameters))
        draws[key] = draw(st.sampled_from([
            {"normal": [0.0, 1.0]}, {}, {"uniform": [0.0, 1.0], "choice": [1]}, {"uniform": [2.0, 1.0]},
            {"uniform": [math.nan, 1.0]}, {"uniform": [0.0, math.inf]}, {"uniform": [1.0]}, {"uniform": "abc"},
            {"log_uniform": [0.0, 1.0]}, {"log_uniform": [-1.0, 1.0]}, {"choice": []}, {"choice": "abc"}, 5,
            {"uniform": [0.0, 1.0], "extra": 1}]))
        keys = [f"random.{key}"]
    elif change == "choice value":
        key = draw(real_keys())
        draws[key] = {"choice": [draw(wrong_type_for(value_at(WHATWHEN_TREE, tuple(key.split(".")))) | out_of_range)]}
        keys = [key]
    else:
        draws = {k: draws[k] for k in ("n_samples", "seed") if k in draws}
        keys = ["random"]
    table["random"] = draws
    return BadSweep(table, keys, f"random: {change}: {draws!r}")


def _is_invalid_sweep(path: Path) -> bool:
    return _rejected_by(load_sweep, path)


@given(bad=mutated_sweep_files(), precreate_out=st.booleans())
@_settings(120)
def _mutated_sweep_files_are_rejected(bad: BadSweep, precreate_out: bool):
    CASES["generated"] += 1
    with workspace(precreate_out) as space:
        target = space.root / "sweep.toml"
        target.write_text(tomli_w.dumps(bad.table))
        assume(_is_invalid_sweep(target))
        CASES["sweep files"] += 1
        space.freeze()
        outcome = invoke(["sweep", str(target), "--out", str(space.out), "--no-progress"])
        assert_rejected(outcome, space, bad.keys)


def test_mutated_sweep_files_exit_2_naming_the_key():
    run_property("sweep files", _mutated_sweep_files_are_rejected, 120)


@st.composite
def truncated_sweep_files(draw) -> bytes:
    raw = SWEEP_TEXTS[draw(st.sampled_from(["when_ceiling_noise_by_size.toml", "full.toml"]))].encode()
    return raw[:draw(st.integers(_content_start(raw.decode()), len(raw) - 1))]


@given(content=truncated_sweep_files(), precreate_out=st.booleans())
@_settings(40)
def _truncated_sweep_files_are_rejected(content: bytes, precreate_out: bool):
    CASES["generated"] += 1
    with workspace(precreate_out) as space:
        target = space.root / "sweep.toml"
        target.write_bytes(content)
        assume(_is_invalid_sweep(target))
        CASES["truncated sweep files"] += 1
        space.freeze()
        outcome = invoke(["sweep", str(target), "--out", str(space.out), "--no-progress"])
        try:
            tomllib.loads(content.decode())
        except tomllib.TOMLDecodeError:
            assert_rejected(outcome, space, toml_file=target)
        else:
            assert_rejected(outcome, space)


def test_truncated_sweep_files_exit_2_naming_the_file_and_line_or_a_key():
    run_property("truncated sweep files", _truncated_sweep_files_are_rejected, 40)


# --- regressions: the defects the properties found, one input each ------------------------------------

def _run_file(tmp_path: Path, text: str, *args: str, name: str = "bad.toml") -> tuple[Outcome, Workspace]:
    space = Workspace(tmp_path, precreate_out=False)
    path = tmp_path / name
    path.write_text(text)
    space.freeze()
    return invoke(["run", str(path), "--out", str(space.out), "--no-progress", *args]), space


def _run_set(tmp_path: Path, *assignments: str, command: str = "run") -> tuple[Outcome, Workspace]:
    space = Workspace(tmp_path, precreate_out=False)
    space.freeze()
    argv = ["run", str(EXPERIMENTS / "whatwhen.toml")] if command == "run" else ["simulate"]
    argv += ["--out", str(space.out), "--no-progress"]
    return invoke(argv + [arg for text in assignments for arg in ("--set", text)]), space


def _sweep(tmp_path: Path, text: str) -> tuple[Outcome, Workspace]:
    space = Workspace(tmp_path, precreate_out=False)
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    space.freeze()
    return invoke(["sweep", str(path), "--out", str(space.out), "--no-progress"]), space


def test_every_shipped_file_the_mutations_start_from_is_valid():
    for path in EXPERIMENT_FILES:
        load_experiment(path)
    for name, text in SWEEP_TEXTS.items():
        folder = Path(tempfile.mkdtemp(prefix="bad-input-"))
        try:
            (folder / name).write_text(text)
            assert load_sweep(folder / name).points, name
        finally:
            shutil.rmtree(folder)


@pytest.mark.parametrize("assignment, key", [
    ("duration_ms=inf", "duration_ms"),              # was: OverflowError (round(inf)), a traceback
    ("network.bias_current=nan", "network.bias_current"),  # was: accepted, a run of NaN currents
    ("task.trial_ms=-inf", "task.trial_ms"),
    ("readouts.groups.0.three_factor.weight_max=inf", "readouts.groups.0.three_factor.weight_max"),
])
def test_non_finite_numbers_exit_2_naming_the_key(tmp_path, assignment, key):
    outcome, space = _run_set(tmp_path, assignment)
    assert_rejected(outcome, space, [key])
    assert "finite" in outcome.error


@pytest.mark.parametrize("assignment, key", [
    ("network.n_neurons=true", "network.n_neurons"),  # was: accepted as 1 neuron (a bool taken for an int)
    ('network.n_neurons="1000"', "network.n_neurons"),  # was: the string converted to a number
    ("task.cues.0.latency_ms=true", "task.cues.0.latency_ms"),
    ('readouts.groups.0.three_factor.learning_rate="3e-5"', "readouts.groups.0.three_factor.learning_rate"),
    ("recording.spikes=1", "recording.spikes"),  # was: 1 taken for true
])
def test_values_of_the_wrong_type_are_not_converted(tmp_path, assignment, key):
    outcome, space = _run_set(tmp_path, assignment)
    assert_rejected(outcome, space, [key])


@pytest.mark.parametrize("command", ["run", "simulate"])
@pytest.mark.parametrize("assignment, key", [
    ("network.slow_synapses.fraction=1.5", "network.slow_synapses.fraction"),
    ("network.slow_synapses.fraction=-0.1", "network.slow_synapses.fraction"),
    ("network.slow_synapses.tau_ms=0.0", "network.slow_synapses.tau_ms"),
    ("network.slow_synapses.tau_ms=inf", "network.slow_synapses.tau_ms"),
    ("network.slow_synapses.weight_scale=-1.0", "network.slow_synapses.weight_scale"),
    ("network.slow_synapses.tau=50.0", "network.slow_synapses.tau"),
])
def test_bad_slow_synapse_settings_exit_2_naming_the_key(tmp_path, command, assignment, key):
    outcome, space = _run_set(tmp_path, assignment, command=command)
    assert_rejected(outcome, space, [key])


def test_a_step_count_beyond_int64_exits_2_naming_duration_ms(tmp_path):
    # was: OverflowError (1e308 / 0.5 ms is inf steps), a traceback
    outcome, space = _run_set(tmp_path, "duration_ms=1e308", command="simulate")
    assert_rejected(outcome, space, ["duration_ms"])
    assert "integration.dt_ms" in outcome.error


def test_a_folder_or_a_file_that_is_not_utf8_as_experiment_exits_2_naming_it(tmp_path):
    space = Workspace(tmp_path, precreate_out=False)
    (tmp_path / "folder.toml").mkdir()
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    space.freeze()
    outcome = invoke(["run", str(tmp_path / "folder.toml"), "--out", str(space.out)])  # was: IsADirectoryError
    assert_rejected(outcome, space, [str(tmp_path / "folder.toml")])
    outcome = invoke(["run", str(tmp_path / "latin1.toml"), "--out", str(space.out)])  # was: UnicodeDecodeError
    assert_rejected(outcome, space, toml_file=tmp_path / "latin1.toml")


def test_a_toml_error_at_the_end_of_the_file_names_its_line(tmp_path):
    # was: "... (at end of document)", no line
    outcome, space = _run_file(tmp_path, 'name = "cut"\nduration_ms = 100.0\n[network]\nn_neur')
    assert_rejected(outcome, space, toml_file=tmp_path / "bad.toml")
    assert "line 4" in outcome.error


@pytest.mark.parametrize("text", ["preset = [1]\n", "preset = { name = 'izhikevich2003' }\n"])
def test_a_preset_that_is_not_text_exits_2_naming_preset(tmp_path, text):
    outcome, space = _run_file(tmp_path, text)  # was: TypeError (unhashable type), a traceback
    assert_rejected(outcome, space, ["preset"])


@pytest.mark.parametrize("text", ["base = 0\n", "base = ['whatwhen.toml']\n", "base = 'missing.toml'\n",
                                  "base = '.'\n"])
def test_a_base_that_is_not_the_name_of_a_file_exits_2_naming_base(tmp_path, text):
    # was: TypeError (Path / int) for a number or a list, IsADirectoryError for '.', and for a
    # missing file a message that named the file but not the key
    outcome, space = _run_file(tmp_path, text)
    assert_rejected(outcome, space, ["base"])


@pytest.mark.parametrize("assignment", [".=3", "a..b=3", "seed.=1", ".seed=1"])
def test_set_paths_with_an_empty_part_exit_2_naming_the_assignment(tmp_path, assignment):
    # was: "unknown key" with no key at all (".=3"), or "a: unknown key" (the path cut at the gap)
    outcome, space = _run_set(tmp_path, assignment)
    assert_rejected(outcome, space, ["--set"])
    assert repr(assignment) in outcome.error


@pytest.mark.parametrize("assignment, key", [
    ("task.cues.\u00b2.latency_ms=300", "task.cues.\u00b2"),  # was: ValueError from int('²'), a traceback
    ("task.cues.\u0661.latency_ms=300", "task.cues.\u0661"),  # was: silently cue 1 (an Arabic-Indic digit)
    ("task.cues.5.latency_ms=300", "task.cues.5"),            # was: "cues.5: index out of range"
    ("task.cues.x.latency_ms=300", "task.cues.x"),            # was: "task.cues: Input should be a valid list"
])
def test_wrong_list_indices_exit_2_naming_the_full_path(tmp_path, assignment, key):
    outcome, space = _run_set(tmp_path, assignment)
    assert_rejected(outcome, space, [key])


def test_an_index_into_a_list_that_only_the_default_gives_says_so(tmp_path):
    outcome, space = _run_set(tmp_path, "recording.trace_neurons.0=5")  # was: "Input should be a valid list"
    assert_rejected(outcome, space, ["recording.trace_neurons"])
    assert "index" in outcome.error and "whole list" in outcome.error


def test_a_wrong_task_kind_names_task_kind(tmp_path):
    outcome, space = _run_set(tmp_path, "task.kind=foo")  # was: "task: Input tag 'foo' found using 'kind'..."
    assert_rejected(outcome, space, ["task.kind"])
    assert "task.kind: expected one of 'none', 'sine'" in outcome.error


def test_a_missing_task_kind_names_task_kind(tmp_path):
    # was: "task: Unable to extract tag using discriminator 'kind'"
    outcome, space = _run_file(tmp_path, "[task]\ngroup = 'when'\n")
    assert_rejected(outcome, space, ["task.kind"])
    assert "task.kind: missing" in outcome.error


@pytest.mark.parametrize("assignment, key", [
    ("task.blocks.0.n_trials=100000", "n_trials"),  # was: "trials x (trial_ms + iti_ms)", no key named
    ("task.iti_ms=1e9", "task.iti_ms"),
])
def test_a_task_longer_than_the_run_names_the_task_keys(tmp_path, assignment, key):
    outcome, space = _run_set(tmp_path, assignment)
    assert_rejected(outcome, space, [key])
    assert names(outcome.error, "duration_ms")


SWEEP_HEAD = 'experiment = "whatwhen.toml"\nseeds = [1]\n'


@pytest.mark.parametrize("entry, named", [
    ('"network..n_neurons" = 500', "'network..n_neurons'"),  # was: "point seed1: network: unknown key"
    ('"" = 1', "''"),                                        # was: "point seed1: unknown key"
    ("seed = 3", "set.seed"),                               # was: accepted, and overridden by seeds
])
def test_sweep_set_keys_are_checked_like_swept_keys(tmp_path, entry, named):
    outcome, space = _sweep(tmp_path, f"{SWEEP_HEAD}[set]\n{entry}\n")
    assert_rejected(outcome, space, [named])


@pytest.mark.parametrize("experiment", [".", "sweeps"])
def test_a_sweep_experiment_that_is_a_folder_exits_2_naming_experiment(tmp_path, experiment):
    (tmp_path / "sweeps").mkdir()
    outcome, space = _sweep(tmp_path, f'experiment = "{experiment}"\nseeds = [1]\n')  # was: IsADirectoryError
    assert_rejected(outcome, space, ["experiment"])


@pytest.mark.parametrize("text, named", [
    ("[random]\nn_samples = 1_000_000_000_000\n'network.bias_current' = { uniform = [4.0, 6.0] }\n",
     "random.n_samples"),
    ("[grid]\n'network.bias_current' = [" + ", ".join(str(x) for x in range(400)) + "]\n"
     "'network.n_neurons' = [" + ", ".join(str(x) for x in range(1, 301)) + "]\n", "grid"),
])
def test_a_sweep_with_too_many_points_exits_2_at_once(tmp_path, text, named):
    # was: the points were expanded (a trillion random draws) and each validated: it hung
    outcome, space = _sweep(tmp_path, SWEEP_HEAD + text)
    assert_rejected(outcome, space, [named])
    assert f"at most {MAX_POINTS:,}" in outcome.error


def test_a_random_section_without_parameters_names_random(tmp_path):
    outcome, space = _sweep(tmp_path, SWEEP_HEAD + "[random]\nn_samples = 2\n")
    assert_rejected(outcome, space, ["random"])
    assert "random.parameters" not in outcome.error  # was: the model's internal name
