"""The verdict parts of a report (:mod:`analysis.report`): a run's claims (``metrics.json``'s
``claims`` section, :mod:`analysis.claims`) as a table with a badge per claim, several runs'
claims side by side, and a continual run's accuracy matrix as a coloured table. The functions
take the report's run folders (:class:`analysis.report.RunFolder`: ``metrics``, ``config``,
``label``) and return HTML."""
from __future__ import annotations

import html

import numpy as np

_e = html.escape


_HOLDS = {True: ("yes", "holds"), False: ("no", "does not hold"), None: ("unjudged", "not judged")}


def _holds_html(holds) -> str:
    kind, text = _HOLDS.get(holds, _HOLDS[None])
    return f'<span class="holds {kind}">{text}</span>'


def _claim_label(item: dict) -> str:
    return item["claim"] if item["claim"] == item["name"] else f"{item['claim']} ({item['name']})"


def _claims_context(claims: dict) -> str:
    parts = [f"paradigm {claims.get('paradigm', '?')}"]
    if claims.get("rule"):
        parts.append(f"'when' rule {claims['rule']}")
    if claims.get("method"):
        parts.append(f"method {claims['method']}")
    return ", ".join(parts)


def _no_claims(run) -> str:
    why = ("a plain simulation states no claims" if not isinstance(run.config.get("task"), dict)
           else "its metrics.json has no claims section (written before claims existed, or a task without claims)")
    return f'<p class="note">No verdict: {_e(why)}.</p>'


def claims_html(run) -> str:
    """The verdict: one row per claim with whether it holds, the value, the target and the measure."""
    claims = run.metrics.get("claims")
    if not isinstance(claims, dict) or not claims.get("items"):
        return _no_claims(run)
    rows = []
    for item in claims["items"]:
        value = _e(item.get("shown") or "")
        if item.get("note"):
            value += f'<div class="note">{_e(item["note"])}</div>'
        rows.append(f'<tr><th class="key">{_e(_claim_label(item))}</th><td>{_holds_html(item.get("holds"))}</td>'
                    f'<td>{value}</td><td>{_e(item.get("target", ""))}</td>'
                    f'<td class="measure">{_e(item.get("statement", ""))}<br>measure: {_e(item.get("measure", ""))}</td></tr>')
    return (f'<p class="verdict"><strong>{_e(claims.get("summary", ""))}</strong> '
            f'<span class="note">({_e(_claims_context(claims))}; one run is one seed; targets: docs/claims.md)</span></p>'
            '<div class="scroll"><table class="claims"><thead><tr><th>claim</th><th>verdict</th><th>value</th>'
            f'<th>target</th><th>what it says and how it is measured</th></tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></div>")


def _accuracy_matrix(run):
    matrix = run.metrics.get("accuracy_matrix")
    if not isinstance(matrix, list) or not matrix or not all(isinstance(row, list) for row in matrix):
        return None
    try:
        array = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 and array.shape[0] == array.shape[1] else None


def _heatmap_colour(fraction: float) -> tuple[str, str]:
    """Background (viridis, 0-100 %) and a readable text colour for an accuracy."""
    from matplotlib import colormaps

    r, g, b, _ = colormaps["viridis"](min(max(fraction, 0.0), 1.0))
    text = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "#fff"
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}", text


def heatmap_html(run, title: str = "") -> str:
    """The continual accuracy matrix (``R[i, j]``: accuracy on task j after training task i) as a
    coloured table, with ACC and BWT."""
    R = _accuracy_matrix(run)
    if R is None:
        return ""
    n = R.shape[0]
    head = "".join(f"<th>task {j}</th>" for j in range(n))
    body = []
    for i in range(n):
        cells = []
        for j in range(n):
            if np.isfinite(R[i, j]):
                background, colour = _heatmap_colour(R[i, j])
                cells.append(f'<td style="background:{background};color:{colour}">{100 * R[i, j]:.1f}</td>')
            else:
                cells.append("<td></td>")
        body.append(f"<tr><th>after task {i}</th>{''.join(cells)}</tr>")
    acc, bwt = run.metrics.get("acc"), run.metrics.get("bwt")
    facts = []
    if isinstance(acc, float):
        facts.append(f"ACC {100 * acc:.1f} %")
    if isinstance(bwt, float):
        facts.append(f"BWT {100 * bwt:+.1f} points")
    caption = (title + ": " if title else "") + (", ".join(facts) or "accuracy matrix")
    return (f'<div><p class="note">{_e(caption)} (accuracy in %, rows: after training task i, columns: '
            f'evaluated on task j)</p><div class="scroll"><table class="heatmap"><thead><tr><th></th>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div></div>')


def comparison_claims_html(runs: list) -> str:
    """The runs' verdicts side by side: one row per claim (the union, in order of appearance), a
    column per run with whether it holds there and its value."""
    by_run = []
    for run in runs:
        claims = run.metrics.get("claims")
        items = claims.get("items", []) if isinstance(claims, dict) else []
        by_run.append({(i["claim"], i["name"]): i for i in items})
    keys = list(dict.fromkeys(k for items in by_run for k in items))
    if not keys:
        return '<p class="note">No run states claims (plain simulations, or metrics written before claims existed).</p>'
    summaries = []
    for run in runs:
        claims = run.metrics.get("claims")
        summaries.append(f"<td><strong>{_e(claims.get('summary', ''))}</strong><br><span class=\"note\">"
                         f"{_e(_claims_context(claims))}</span></td>" if isinstance(claims, dict) and claims.get("items")
                         else '<td class="absent">no claims</td>')
    rows = [f'<tr><th class="key">verdict</th><td></td>{"".join(summaries)}</tr>']
    for key in keys:
        target = next(items[key]["target"] for items in by_run if key in items)
        cells = []
        for items in by_run:
            item = items.get(key)
            if item is None:
                cells.append('<td class="absent">—</td>')
                continue
            note = f'<div class="note">{_e(item["note"])}</div>' if item.get("note") else ""
            cells.append(f"<td>{_holds_html(item.get('holds'))} {_e(item.get('shown') or '')}{note}</td>")
        label = _claim_label(next(items[key] for items in by_run if key in items))
        rows.append(f'<tr><th class="key">{_e(label)}</th><td>{_e(target)}</td>{"".join(cells)}</tr>')
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    return (f'<div class="scroll"><table class="claims"><thead><tr><th>claim</th><th>target</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')
