"""HTML reports of run folders: one self-contained page per run, or one page comparing runs.

    from analysis.report import write_report

    write_report(["runs/whatwhen-seed1"])                            # runs/whatwhen-seed1/report.html
    write_report(["runs/whatwhen_timing_switch-seed1", "runs/whatwhen_force-seed1"], "compare.html")

or from the shell: ``reservoir report RUN_DIR [RUN_DIR ...] [--out PATH]``.

A page is one file with nothing outside it: the figures are embedded as base64 PNG ``data:``
URIs, the style sheet is inline, and there is no script, so it opens offline, from an e-mail or
an archive. One run's page leads with the verdict: the claims (``metrics.json``'s ``claims``
section, :mod:`analysis.claims`: each claim, whether it holds, its value, target and measure),
then a continual run's accuracy matrix as a heatmap, every ``figures/*.png`` under its file name,
the metrics (``metrics.json`` flattened to dotted keys; long lists summarised, lists of records
as sub-tables), the run's facts (folder, experiment, task, seed, status, time simulated, wall
time), the resolved configuration and a summary of ``run.h5`` (format version, datasets and
their sizes, spike count, N). A comparison page puts the runs side by side in the same order:
the claims of every run in one table, the accuracy matrices, the figures of the same name in one
row, one metrics column per run with the rows that differ highlighted, and the differences
between the resolved configurations (``difflib``). The reading layer only: this module reads
the folder's files and never builds a network or a task (docs/reports.md).

Length: page assembly, the metric tables, the inline SVG sparklines and the inline CSS of a
self-contained page; the CSS and the SVG helpers could move out (issue 23).
"""
from __future__ import annotations

import argparse
import base64
import difflib
import html
import json
import math
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reservoir import __version__
from reservoir.recording import FileFormatError, check_format, open_hdf5

from .report_verdict import claims_html, comparison_claims_html, heatmap_html

RUN_FILE = "run.h5"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.resolved.toml"
FIGURES_DIR = "figures"
REPORT_FILE = "report.html"

#: Lists of numbers up to this length are shown whole; longer ones are summarised.
SHORT_LIST = 8
#: Lists of records (dicts) up to this length become sub-tables (one run) or indexed keys
#: (comparison); longer ones are summarised.
MAX_RECORDS = 30

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportError(ValueError):
    """A folder given to the report is not a (complete) run folder; the message names the
    folder and what is missing."""


@dataclass
class RunFolder:
    """What a report shows of one run folder (read without loading the spikes)."""

    path: Path
    metrics: dict
    config_text: str
    config: dict
    attributes: dict
    datasets: list = field(default_factory=list)  # (name, shape, dtype, stored bytes)
    n_spikes: int | None = None
    n_neurons: int | None = None
    file_bytes: int = 0
    figures: list = field(default_factory=list)  # paths of figures/*.png, sorted by name
    label: str = ""

    @property
    def status(self) -> str:
        return str(self.attributes.get("status", "unknown"))

    @property
    def simulated_ms(self) -> float | None:
        try:
            return float(self.attributes["steps_completed"]) * float(self.attributes["dt_ms"])
        except (KeyError, TypeError, ValueError):
            return None


# ---------------------------------------------------------------------------------------------
# reading a run folder

def read_run_folder(path) -> RunFolder:
    """The parts of the run folder ``path`` a report shows.

    Raises :class:`ReportError` naming the folder when it does not exist, is not a folder, or
    lacks ``run.h5`` or ``metrics.json`` (a run that stopped early has no metrics: the error
    says what its run file records), and :class:`~reservoir.recording.FileFormatError` for a
    damaged run file."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such run folder")
    if not path.is_dir():
        raise ReportError(f"{path} is not a run folder (give the folder that holds {RUN_FILE} and {METRICS_FILE})")
    missing = [name for name in (RUN_FILE, METRICS_FILE) if not (path / name).is_file()]
    if missing:
        what = " and ".join(missing) + (" are" if len(missing) > 1 else " is")
        hint = ""
        if RUN_FILE not in missing:
            try:
                with open_hdf5(path / RUN_FILE) as f:
                    status, message = str(f.attrs.get("status", "unknown")), str(f.attrs.get("message", ""))
                hint = f" ({RUN_FILE} records status {status!r}{': ' + message if message else ''})"
            except (FileFormatError, OSError):
                hint = f" ({RUN_FILE} cannot be read either)"
        raise ReportError(f"{path} is not a complete run folder: {what} missing{hint}")
    try:
        metrics = json.loads((path / METRICS_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path / METRICS_FILE} is not valid JSON: {error}") from None
    if not isinstance(metrics, dict):
        raise ReportError(f"{path / METRICS_FILE} does not hold a JSON object")
    run = RunFolder(path=path, metrics=metrics, config_text="", config={}, attributes={})
    _read_run_file(run, path / RUN_FILE)
    config_file = path / CONFIG_FILE
    run.config_text = config_file.read_text() if config_file.is_file() else str(run.attributes.get("config_toml", ""))
    try:
        run.config = tomllib.loads(run.config_text)
    except tomllib.TOMLDecodeError:
        run.config = {}
    run.attributes.pop("config_toml", None)
    run.figures = sorted((path / FIGURES_DIR).glob("*.png"), key=lambda p: p.name)
    return run


def _read_run_file(run: RunFolder, file: Path) -> None:
    """Root attributes, datasets (shape, dtype, stored size), spike count and N of ``run.h5``."""
    run.file_bytes = file.stat().st_size
    with open_hdf5(file) as f:
        check_format(f, file)
        run.attributes = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        run.attributes = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in run.attributes.items()}

        def visit(name, obj):
            if hasattr(obj, "shape") and hasattr(obj, "dtype"):
                run.datasets.append((name, tuple(obj.shape), str(obj.dtype), int(obj.id.get_storage_size())))

        f.visititems(visit)
        if "spikes" in f:
            run.n_spikes = sum(int(group["timestamps"].shape[0]) for group in f["spikes"].values()
                               if "timestamps" in group)
        if "network" in f and "n_neurons" in f["network"].attrs:
            run.n_neurons = int(f["network"].attrs["n_neurons"])
    if run.n_neurons is None and isinstance(run.metrics.get("n_neurons"), int):
        run.n_neurons = run.metrics["n_neurons"]


def _labels(paths: list[Path]) -> list[str]:
    """Short, distinct names for the runs: the folder names, with parents added where they clash."""
    resolved = [p.resolve() for p in paths]
    for depth in range(1, 6):
        labels = ["/".join(p.parts[-depth:]) for p in resolved]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label} (#{i + 1})" for i, label in enumerate(labels)]


# ---------------------------------------------------------------------------------------------
# formatting values

_e = html.escape


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _is_records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def format_number(x) -> str:
    """A number for reading: integers whole (with thousands separators), other floats to four
    significant digits without trailing zeros, very large or small ones in scientific form."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    magnitude = abs(x)
    if x == round(x) and magnitude < 1e15:
        return f"{int(round(x)):,}"
    if 1e-3 <= magnitude < 1e6:
        decimals = max(0, 3 - math.floor(math.log10(magnitude)))
        text = f"{x:,.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{x:.3e}"


def _scalar_html(value) -> str:
    if value is None:
        return '<span class="null">null</span>'
    if isinstance(value, str):
        return _e(value)
    text = format_number(value)
    if isinstance(value, float) and text != repr(value):
        return f'<span title="{_e(repr(value))}">{_e(text)}</span>'
    return _e(text)


def _sparkline(values: np.ndarray, width: int = 140, height: int = 26) -> str:
    """An inline SVG line of a numeric list (NaNs leave gaps)."""
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return ""
    lo, hi = float(values[finite].min()), float(values[finite].max())
    span = hi - lo or 1.0
    xs = np.linspace(1, width - 1, values.size)
    ys = height - 2 - (values - lo) / span * (height - 4)
    runs, current = [], []
    for x, y, ok in zip(xs, ys, finite):
        if ok:
            current.append(f"{x:.1f},{y:.1f}")
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    lines = "".join(f'<polyline points="{" ".join(r)}"/>' for r in runs if len(r) > 1)
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="values from {_e(format_number(lo))} to {_e(format_number(hi))}">{lines}</svg>')


def _numbers_summary(values: list, what: str, sparkline: bool = True) -> str:
    array = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    finite = array[np.isfinite(array)]
    parts = [f"{what}"]
    if finite.size:
        parts.append(f"mean {format_number(float(finite.mean()))}")
        parts.append(f"range {format_number(float(finite.min()))} … {format_number(float(finite.max()))}")
    parts.append(f"first {format_number(float(array[0]))}, last {format_number(float(array[-1]))}")
    n_missing = int(array.size - finite.size)
    if n_missing:
        parts.append(f"{n_missing} NaN/null")
    return _e(", ".join(parts)) + (" " + _sparkline(array) if sparkline else "")


def _list_html(values: list) -> str:
    """A list for reading: short ones whole, long ones summarised (never dumped)."""
    n = len(values)
    if n == 0:
        return '<span class="null">empty list</span>'
    if all(_is_scalar(v) for v in values):
        if n <= SHORT_LIST:
            return "[" + ", ".join(_scalar_html(v) for v in values) + "]"
        if all(v is None or _is_number(v) for v in values):
            return _numbers_summary(values, f"list of {n:,} numbers")
        if all(isinstance(v, str) for v in values):
            return _e(f"list of {n:,} strings: {values[0]!r}, {values[1]!r}, … {values[-1]!r}")
        return _e(f"list of {n:,} values")
    if all(isinstance(v, list) for v in values):
        try:
            array = np.array([[np.nan if x is None else x for x in row] for row in values], dtype=float)
        except (TypeError, ValueError):
            array = None
        if array is not None and array.ndim == 2 and array.size:
            flat = array.ravel().tolist()
            shape = " × ".join(f"{s:,}" for s in array.shape)
            return _numbers_summary(flat, f"{shape} nested list of numbers", sparkline=False)
        return _e(f"list of {n:,} lists")
    if _is_records(values):
        return _e(f"list of {n:,} records")
    return _e(f"list of {n:,} items")


def _value_html(value) -> str:
    if isinstance(value, list):
        return _list_html(value)
    if isinstance(value, dict):
        return '<span class="null">empty</span>' if not value else _e(json.dumps(value)[:200])
    return _scalar_html(value)


def flatten(tree: dict, prefix: str = "", expand_records: bool = False,
            skip=("figures", "claims")) -> list[tuple[str, object]]:
    """``(dotted key, value)`` pairs of a nested metrics dict. Lists of records (dicts) stay one
    value, or with ``expand_records`` (up to :data:`MAX_RECORDS` of them) become
    ``key[i].field`` keys."""
    items = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if not prefix and key in skip:
            continue
        if isinstance(value, dict) and value:
            items += flatten(value, name + ".", expand_records, skip)
        elif expand_records and _is_records(value) and len(value) <= MAX_RECORDS:
            for i, record in enumerate(value):
                items += flatten(record, f"{name}[{i}].", True, skip) if record else [(f"{name}[{i}]", record)]
        else:
            items.append((name, value))
    return items


def _records_html(records: list) -> str:
    """A list of records (dicts) as a table: one row per record, one column per (dotted) field."""
    rows = [dict(flatten(r)) for r in records[:MAX_RECORDS]]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{_breakable(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{_cell_class(row.get(c))}">{_value_html(row[c]) if c in row else ""}</td>'
                         for c in columns) + "</tr>"
        for row in rows)
    more = (f'<p class="note">… and {len(records) - MAX_RECORDS:,} more records (see {METRICS_FILE})</p>'
            if len(records) > MAX_RECORDS else "")
    return f'<div class="scroll"><table class="records"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def _breakable(name: str) -> str:
    """An escaped field name that may wrap after its underscores and dots (narrow columns)."""
    return "".join(_e(ch) + ("<wbr>" if ch in "_." else "") for ch in name)


def _cell_class(value) -> str:
    return "num" if _is_number(value) else "text"


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def _seconds(s: float) -> str:
    if s < 60:
        return f"{format_number(s if s < 10 else round(s, 1))} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60)):02d} s"
    return f"{int(s // 3600)} h {int(round(s % 3600 / 60)):02d} min"


# ---------------------------------------------------------------------------------------------
# page parts

CSS = """
:root { --fg: #1d2430; --muted: #5b6573; --line: #d9dee5; --soft: #f4f6f9; --accent: #2456a6;
        --diff: #fff3c4; --diffline: #e0a800; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; color: var(--fg); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; }
main.wide { max-width: none; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 8px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.path { color: var(--muted); font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; margin: 0; }
nav { margin: 12px 0 0; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
.note { color: var(--muted); margin: 4px 0 10px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 4px 9px; vertical-align: top; text-align: left; }
thead th { background: var(--soft); position: sticky; top: 0; }
tbody tr:nth-child(even) > td, tbody tr:nth-child(even) > th { background: #fafbfc; }
td.key, th.key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; white-space: nowrap;
                 font-weight: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.facts th { background: var(--soft); font-weight: 600; white-space: nowrap; }
table.metrics { min-width: 60%; }
table.single { width: 100%; table-layout: fixed; }
table.single col.keys { width: 36%; }
table.single td.key { white-space: normal; overflow-wrap: anywhere; }
table.single td.num { text-align: left; }
td.records-cell .key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; margin-bottom: 4px; }
table.records { margin: 2px 0; font-size: 13px; }
table.records th { background: var(--soft); font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-weight: normal; }
tr.differs > td, tr.differs > th { background: var(--diff) !important; }
tr.differs > .key { border-left: 4px solid var(--diffline); }
.absent { color: var(--muted); font-style: italic; }
.null { color: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; max-width: 100%; }
.status { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600; color: #fff; background: #6b7280; }
.status.complete { background: #1f8a4c; } .status.interrupted { background: #b7791f; }
.status.failed { background: #c0392b; } .status.running { background: #2563eb; }
.message { color: var(--muted); margin-left: 8px; }
svg.spark { vertical-align: middle; margin-left: 8px; }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.3; }
figure { margin: 14px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-family: ui-monospace, "DejaVu Sans Mono", monospace; color: var(--muted); margin-top: 5px; }
.row { display: grid; gap: 16px; align-items: start; }
.row figure { margin: 0; }
.missing-figure { border: 1px dashed var(--line); padding: 40px 12px; text-align: center; color: var(--muted); }
pre { background: var(--soft); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto;
      font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; margin: 6px 0; }
pre.config { max-height: 640px; overflow-y: auto; }
.configs { display: grid; gap: 16px; }
pre.diff .add { background: #e6f6ea; color: #11632f; display: block; }
pre.diff .del { background: #fdecec; color: #a12020; display: block; }
pre.diff .hunk { color: var(--accent); display: block; }
pre.diff .file { font-weight: 600; display: block; }
details > summary { cursor: pointer; color: var(--accent); margin: 10px 0; }
.verdict { font-size: 16px; margin: 10px 0 4px; }
table.claims { width: 100%; }
table.claims td { font-size: 13.5px; }
table.claims td.measure { color: var(--muted); font-size: 12.5px; }
.holds { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; white-space: nowrap; }
.holds.yes { background: #d9f2e3; color: #11632f; } .holds.no { background: #fbe0dd; color: #a12020; }
.holds.unjudged { background: var(--soft); color: var(--muted); font-weight: normal; }
table.heatmap td { text-align: center; font-variant-numeric: tabular-nums; min-width: 48px; padding: 5px 6px; }
table.heatmap th { background: var(--soft); font-weight: normal; white-space: nowrap; }
.heatmaps { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def _page(title: str, body: str, wide: bool = False) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"{'<main class=wide>' if wide else '<main>'}\n{body}\n"
            f"<footer>Written by <code>reservoir report</code> (reservoir {_e(__version__)}). "
            "Self-contained: figures are embedded, nothing is loaded from elsewhere.</footer>\n"
            "</main>\n</body>\n</html>\n")


def _figure_src(path: Path) -> str | None:
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure_html(run: RunFolder, path: Path | None, caption: str) -> str:
    if path is None:
        return f'<figure><div class="missing-figure">no {_e(caption)} in this run</div></figure>'
    src = _figure_src(path)
    name = f"{FIGURES_DIR}/{path.name}"
    if src is None:
        return (f'<figure><div class="missing-figure">{_e(name)} is not a PNG file</div>'
                f"<figcaption>{_e(caption)}</figcaption></figure>")
    return (f'<figure><img src="{src}" alt="{_e(name)}"><figcaption>{_e(caption)}</figcaption></figure>')


def _experiment(run: RunFolder) -> str:
    name = run.config.get("name")
    preset = run.config.get("preset") or run.attributes.get("preset") or ""
    if name:
        return f"{name}" + (f" (preset {preset})" if preset else "")
    return f"plain simulation of preset {preset}" if preset else "plain simulation"


def _task(run: RunFolder) -> str:
    task = run.config.get("task")
    if isinstance(task, dict) and task.get("kind"):
        return str(task["kind"])
    return "none (no learning)"


def _status_html(run: RunFolder) -> str:
    status = run.status
    message = str(run.attributes.get("message", ""))
    return (f'<span class="status {_e(status)}">{_e(status)}</span>'
            + (f'<span class="message">{_e(message)}</span>' if message else ""))


def _simulated(run: RunFolder) -> str:
    done = run.simulated_ms
    if done is None:
        return "unknown"
    text = f"{format_number(done)} ms ({_seconds(done / 1000)})"
    configured = run.config.get("duration_ms")
    if _is_number(configured) and not math.isclose(done, configured):
        text += f" of {format_number(configured)} ms configured"
    return text


def _wall(run: RunFolder) -> str:
    wall = run.metrics.get("wall_time_s")
    return _seconds(float(wall)) if _is_number(wall) else "not recorded"


def _facts(run: RunFolder) -> list[tuple[str, str]]:
    """(label, HTML) rows of the run's header."""
    seed = run.attributes.get("seed", run.config.get("seed", ""))
    integration = run.config.get("integration", {})
    step = (f"dt {format_number(run.attributes['dt_ms'])} ms" if "dt_ms" in run.attributes else "")
    if integration.get("scheme"):
        step += f", {integration['scheme']} scheme"
    return [
        ("Run folder", f'<span class="path">{_e(str(run.path.resolve()))}</span>'),
        ("Experiment", _e(_experiment(run))),
        ("Task", _e(_task(run))),
        ("Seed", _e(str(seed))),
        ("Status", _status_html(run)),
        ("Simulated", _e(_simulated(run))),
        ("Wall time", _e(_wall(run))),
        ("Network", _e(f"{format_number(run.n_neurons)} neurons, {step}" if run.n_neurons is not None else step)),
        ("Spikes", _e(format_number(run.n_spikes)) if run.n_spikes is not None else "not recorded"),
    ]


def _facts_table(rows: list[tuple[str, str]]) -> str:
    return ('<table class="facts"><tbody>'
            + "".join(f"<tr><th>{_e(label)}</th><td>{value}</td></tr>" for label, value in rows)
            + "</tbody></table>")


def _metrics_table(run: RunFolder) -> str:
    rows = []
    for key, value in flatten(run.metrics):
        if _is_records(value):  # a sub-table across the whole width, under its key
            rows.append(f'<tr><td colspan="2" class="records-cell"><div class="key">{_e(key)}</div>'
                        f"{_records_html(value)}</td></tr>")
        else:
            rows.append(f'<tr><td class="key">{_e(key)}</td><td class="{_cell_class(value)}">{_value_html(value)}</td></tr>')
    return ('<table class="metrics single"><colgroup><col class="keys"><col></colgroup>'
            '<thead><tr><th>metric</th><th>value</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _run_file_html(run: RunFolder) -> str:
    attributes = {k: v for k, v in run.attributes.items() if k not in ("status", "message")}
    facts = [
        ("File", _e(f"{RUN_FILE}, {_bytes(run.file_bytes)}")),
        ("Format", _e(f"{attributes.pop('format_name', '?')} version {attributes.pop('format_version', '?')}")),
        ("Written by", _e(str(attributes.pop("writer", "unknown")))),
        ("Neurons (N)", _e(format_number(run.n_neurons)) if run.n_neurons is not None else "unknown"),
        ("Spikes", _e(format_number(run.n_spikes)) if run.n_spikes is not None else "not recorded"),
    ]
    facts += [(f"attribute {k}", _value_html(v)) for k, v in attributes.items()]
    datasets = "".join(
        f'<tr><td class="key">/{_e(name)}</td><td class="num">{_e(" × ".join(f"{s:,}" for s in shape) or "scalar")}</td>'
        f'<td>{_e(dtype)}</td><td class="num">{_e(_bytes(size))}</td></tr>'
        for name, shape, dtype, size in run.datasets)
    return (_facts_table(facts)
            + f'<h3>Datasets ({len(run.datasets)})</h3><table><thead><tr><th>dataset</th><th>shape</th>'
              f"<th>dtype</th><th>stored</th></tr></thead><tbody>{datasets}</tbody></table>")


def render_run(run: RunFolder) -> str:
    """The page of one run folder."""
    figures = "".join(_figure_html(run, p, f"{FIGURES_DIR}/{p.name}") for p in run.figures) \
        or '<p class="note">This run has no figures.</p>'
    n_metrics = len(flatten(run.metrics))
    heatmap = heatmap_html(run)
    heatmap_link = '<a href="#accuracy">Accuracy matrix</a>' if heatmap else ""
    heatmap_section = f'<section id="accuracy"><h2>Accuracy matrix</h2>{heatmap}</section>' if heatmap else ""
    body = f"""
<header>
<h1>Run report: {_e(run.path.resolve().name)}</h1>
<p class="path">{_e(str(run.path.resolve()))}</p>
<p>{_e(_experiment(run))}, seed {_e(str(run.attributes.get("seed", run.config.get("seed", ""))))}: {_status_html(run)}</p>
<nav><a href="#claims">Claims</a>{heatmap_link}<a href="#figures">Figures ({len(run.figures)})</a><a href="#metrics">Metrics ({n_metrics})</a><a href="#summary">Run</a><a href="#config">Configuration</a><a href="#run-file">Run file</a></nav>
</header>
<section id="claims"><h2>Claims</h2>{claims_html(run)}</section>
{heatmap_section}
<section id="figures"><h2>Figures</h2>{figures}</section>
<section id="metrics"><h2>Metrics</h2>
<p class="note">From {METRICS_FILE}, nested keys joined with dots (the claims are shown above). Numbers to four
significant digits (hover for full precision); long lists are summarised, lists of records shown as tables.</p>
{_metrics_table(run)}</section>
<section id="summary"><h2>Run</h2>{_facts_table(_facts(run))}</section>
<section id="config"><h2>Resolved configuration</h2>
<p class="note">{CONFIG_FILE}: the validated configuration with every default filled in; rerun it with
<code>reservoir run {_e(str(run.path / CONFIG_FILE))}</code>.</p>
<pre class="config">{_e(run.config_text) or '<span class="null">no configuration stored</span>'}</pre></section>
<section id="run-file"><h2>Run file</h2>{_run_file_html(run)}</section>
"""
    return _page(f"Run report: {run.path.resolve().name}", body)


# ---------------------------------------------------------------------------------------------
# comparison page

def _same(values: list) -> bool:
    texts = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return len(texts) == 1


_ABSENT = object()


def _comparison_row(key_html: str, values: list, cells: list[str]) -> tuple[str, bool]:
    present = [v for v in values if v is not _ABSENT]
    differs = len(present) != len(values) or not _same(present)
    return (f'<tr class="{"differs" if differs else "same"}"><td class="key">{key_html}</td>'
            + "".join(cells) + "</tr>"), differs


def _comparison_cell(value) -> str:
    if value is _ABSENT:
        return '<td class="absent">—</td>'
    return f'<td class="{_cell_class(value)}">{_value_html(value)}</td>'


#: Header rows that differ between any two runs by nature: not highlighted.
_ALWAYS_DIFFERENT = ("Run folder", "Wall time")


def _runs_table(runs: list[RunFolder]) -> str:
    facts = [dict(_facts(run)) for run in runs]
    rows = []
    for label in facts[0]:
        cells = [f"<td>{fact[label]}</td>" for fact in facts]
        differs = label not in _ALWAYS_DIFFERENT and not _same([fact[label] for fact in facts])
        rows.append(f'<tr class="{"differs" if differs else "same"}"><th class="key">{_e(label)}</th>{"".join(cells)}</tr>')
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    return f'<table class="facts"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _comparison_metrics(runs: list[RunFolder]) -> tuple[str, int, int]:
    flat = [dict(flatten(r.metrics, expand_records=True)) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows, n_differ = [], 0
    for key in keys:
        values = [f.get(key, _ABSENT) for f in flat]
        row, differs = _comparison_row(_e(key), values, [_comparison_cell(v) for v in values])
        rows.append(row)
        n_differ += differs
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    table = (f'<div class="scroll"><table class="metrics"><thead><tr><th>metric</th>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table></div>')
    return table, len(keys), n_differ


def _comparison_figures(runs: list[RunFolder]) -> str:
    names = sorted({p.name for r in runs for p in r.figures})
    if not names:
        return '<p class="note">None of the runs has figures.</p>'
    columns = f"grid-template-columns: repeat({len(runs)}, minmax(0, 1fr));"
    parts = []
    for name in names:
        cells = []
        for run in runs:
            path = next((p for p in run.figures if p.name == name), None)
            cells.append(_figure_html(run, path, f"{run.label}: {FIGURES_DIR}/{name}" if path else f"{FIGURES_DIR}/{name}"))
        parts.append(f'<h3>{_e(FIGURES_DIR)}/{_e(name)}</h3><div class="row" style="{columns}">{"".join(cells)}</div>')
    return "".join(parts)


def _diff_html(a: RunFolder, b: RunFolder) -> str:
    lines = list(difflib.unified_diff(a.config_text.splitlines(), b.config_text.splitlines(),
                                      fromfile=f"{a.label}/{CONFIG_FILE}", tofile=f"{b.label}/{CONFIG_FILE}",
                                      n=2, lineterm=""))
    if not lines:
        return f'<p class="note">{_e(a.label)} and {_e(b.label)}: identical resolved configurations.</p>'
    old_lines = a.config_text.splitlines()
    out = []
    for line in lines:
        if line.startswith("@@"):  # name the TOML table the hunk starts in, as git names the function
            start = int(line.split()[1].lstrip("-").split(",")[0])
            table = next((t for t in reversed(old_lines[:start + 2]) if t.startswith("[")), "")
            line = f"{line} {table}" if table else line
        kind = ("file" if line.startswith(("---", "+++")) else "hunk" if line.startswith("@@")
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx")
        out.append(f'<span class="{kind}">{_e(line)}</span>' if kind != "ctx" else _e(line) + "\n")
    n_changed = sum(1 for line in lines if line[:1] in "+-" and not line.startswith(("---", "+++")))
    return (f'<p class="note">{_e(a.label)} → {_e(b.label)}: {n_changed} changed lines '
            f'(<span class="del">−</span> only in the first, + only in the second).</p>'
            f'<pre class="diff">{"".join(out)}</pre>')


def render_comparison(runs: list[RunFolder]) -> str:
    """The page comparing several run folders."""
    metrics, n_keys, n_differ = _comparison_metrics(runs)
    diffs = "".join(_diff_html(runs[0], other) for other in runs[1:])
    columns = f"grid-template-columns: repeat({len(runs)}, minmax(0, 1fr));"
    configs = "".join(f'<div><h3>{_e(r.label)}</h3><pre class="config">{_e(r.config_text)}</pre></div>' for r in runs)
    labels = ", ".join(r.label for r in runs)
    n_figures = len({p.name for r in runs for p in r.figures})
    heatmaps = [heatmap_html(r, r.label) for r in runs]
    heatmap_link = '<a href="#accuracy">Accuracy matrices</a>' if any(heatmaps) else ""
    heatmap_section = (f'<section id="accuracy"><h2>Accuracy matrices</h2><div class="heatmaps">{"".join(heatmaps)}</div>'
                       "</section>" if any(heatmaps) else "")
    body = f"""
<header>
<h1>Comparison of {len(runs)} runs</h1>
<p class="path">{_e(labels)}</p>
<nav><a href="#claims">Claims</a>{heatmap_link}<a href="#figures">Figures ({n_figures})</a><a href="#metrics">Metrics ({n_keys}, {n_differ} differ)</a><a href="#runs">Runs</a><a href="#config">Configuration differences</a></nav>
</header>
<section id="claims"><h2>Claims</h2>{comparison_claims_html(runs)}</section>
{heatmap_section}
<section id="figures"><h2>Figures</h2><p class="note">Figures of the same name side by side.</p>
{_comparison_figures(runs)}</section>
<section id="metrics"><h2>Metrics</h2>
<p class="note">One column per run (from each {METRICS_FILE}). <span style="background: var(--diff)">Highlighted</span>
rows differ between the runs ({n_differ} of {n_keys}); — marks a metric a run does not have. Numbers to four
significant digits (hover for full precision).</p>
{metrics}</section>
<section id="runs"><h2>Runs</h2>{_runs_table(runs)}</section>
<section id="config"><h2>Configuration differences</h2>
<p class="note">Unified diff of {CONFIG_FILE}, each run against the first.</p>
{diffs}
<details><summary>The full resolved configurations side by side</summary>
<div class="configs" style="{columns}">{configs}</div></details></section>
"""
    return _page(f"Comparison: {labels}", body, wide=True)


# ---------------------------------------------------------------------------------------------

def write_report(run_dirs, out_path=None) -> Path:
    """Write the HTML report of ``run_dirs`` (one run folder: its page; several: one page
    comparing them) and return its path.

    Default ``out_path``: ``RUN_DIR/report.html`` for one run, ``report.html`` in the current
    directory for several; an existing folder gets ``report.html`` inside it. Raises
    :class:`ReportError` (naming the folder and what is missing) for a folder that is not a
    complete run folder, before anything is written."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ReportError("no run folder given")
    runs = [read_run_folder(p) for p in paths]
    for run, label in zip(runs, _labels(paths)):
        run.label = label
    if out_path is None:
        out = paths[0] / REPORT_FILE if len(runs) == 1 else Path(REPORT_FILE)
    else:
        out = Path(out_path)
        if out.is_dir():
            out = out / REPORT_FILE
    page = render_run(runs[0]) if len(runs) == 1 else render_comparison(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    try:
        print(f"wrote {write_report(args.run_dirs, args.out)}")
    except ReportError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
