"""``reservoir report``: the HTML page of a run folder and the page comparing runs.

Checked twice: as structure (parsed with ``html.parser``: every figure an ``<img>`` whose
``data:`` URI decodes to the figure's PNG, one metrics row per flattened key, nothing loaded
from elsewhere, all text escaped), and rendered in a real headless browser (chromium): a
screenshot of the requested size that is not blank, and, read back from the DOM after the load
event, every image decoded by the browser at its real size and no horizontal overflow. Without
a browser on PATH the browser tests skip (``apt-get install chromium``; ``.ci/run`` installs it
and sets RESERVOIR_REQUIRE_BROWSER=1, which turns the skip into a failure).
"""
import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.report import ReportError, write_report
from reservoir.experiment.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("no headless browser on PATH (looked for chromium, chromium-browser, google-chrome): install it "
                "with 'apt-get install chromium' (Debian/Ubuntu; .ci/run does this) to run the browser check")
WINDOW = (1200, 2000)


# ---------------------------------------------------------------------------------------------
# run folders (the shortest runs that still write every part of a folder)

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    sim, whatwhen = base / "sim", base / "whatwhen"
    assert main(["simulate", "--preset", "izhikevich2003", "--duration-ms", "200", "--seed", "1",
                 "--out", str(sim), "--no-progress"]) == 0
    assert main(["run", "--set", "task.blocks.0.n_trials=6", "--set", "duration_ms=7200",
                 "--set", "network.n_neurons=300", "--set", "readouts.snapshot_every_ms=2400",
                 "--set", "task.test_trials=2", "--seed", "1", "--out", str(whatwhen), "--no-progress"]) == 0
    return sim, whatwhen


def metric_keys(tree, prefix=""):
    """The dotted keys a report shows for a metrics dict (lists, records included, are one row)."""
    keys = []
    for key, value in tree.items():
        if not prefix and key in ("figures", "claims"):  # the claims have their own section
            continue
        if isinstance(value, dict) and value:
            keys += metric_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


class Page(HTMLParser):
    """The parts of a report the tests look at."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.images, self.keys, self.pres, self.captions = [], [], [], [], []
        self.absent_cells, self.differs_rows = 0, []
        self._stack, self._capture, self._buffer = [], None, []
        self._row = None
        self.text = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        classes = (attrs.get("class") or "").split()
        if tag == "img":
            self.images.append(attrs)
        if tag == "tr":
            self._row = "differs" in classes
        if tag == "td" and "absent" in classes:
            self.absent_cells += 1
        if self._capture is None:
            if "key" in classes and any("metrics" in c for c in self._stack):
                self._capture, self._buffer = "key", []
            elif tag == "pre" and "config" in classes:
                self._capture, self._buffer = "pre", []
            elif tag == "figcaption":
                self._capture, self._buffer = "caption", []
        if tag not in ("img", "col", "meta", "br", "wbr"):
            self._stack.append(" ".join([tag, *classes]))

    def handle_endtag(self, tag):
        if tag in ("img", "col", "meta", "br", "wbr"):
            return
        if self._stack:
            self._stack.pop()
        if self._capture and tag in ("td", "th", "div", "pre", "figcaption"):
            text = "".join(self._buffer)
            if self._capture == "key" and tag in ("td", "th", "div"):
                self.keys.append(text)
                if self._row:
                    self.differs_rows.append(text)
            elif self._capture == "pre" and tag == "pre":
                self.pres.append(text)
            elif self._capture == "caption" and tag == "figcaption":
                self.captions.append(text)
            else:
                return
            self._capture = None

    def handle_data(self, data):
        self.text.append(data)
        if self._capture:
            self._buffer.append(data)


def check_self_contained(text: str, page: Page) -> None:
    """Nothing is loaded from elsewhere: every src/href is a data: URI or an anchor, no script,
    no linked style sheet, no url() other than data:."""
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "poster", "data"):
            if name in attrs:
                value = attrs[name] or ""
                assert value.startswith("data:") or value.startswith("#"), f"<{tag} {name}={value[:60]!r}> loads a file"
        assert tag not in ("script", "link", "iframe", "object", "embed"), f"<{tag}> in a self-contained page"
    assert not re.search(r"url\((?!\s*['\"]?data:)", text) and "@import" not in text


def decoded_png(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    data = base64.b64decode(src[len(prefix):], validate=True)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # a whole, valid PNG
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size[0] > 0 and image.size[1] > 0
    return data


# ---------------------------------------------------------------------------------------------
# structure

def test_report_of_one_run_holds_everything(runs, capsys):
    _, run = runs
    assert main(["report", str(run)]) == 0
    out = run / "report.html"
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    text = out.read_text()
    page = Page(text)
    check_self_contained(text, page)
    body = " ".join(" ".join(page.text).split())

    # every figure, embedded byte for byte, captioned with its file name
    figures = sorted((run / "figures").glob("*.png"))
    assert len(figures) >= 5
    by_alt = {img["alt"]: img for img in page.images}
    assert len(page.images) == len(figures)
    for figure in figures:
        name = f"figures/{figure.name}"
        assert decoded_png(by_alt[name]["src"]) == figure.read_bytes()
        assert name in page.captions

    # one row per flattened metric, in the file's order; long lists summarised, not dumped
    metrics = json.loads((run / "metrics.json").read_text())
    assert page.keys == metric_keys(metrics)
    assert "conditions" in page.keys and "timing.mean_abs_peak_error_ms" in page.keys
    n_curve = len(metrics["reliability"]["time_ms"])
    assert f"list of {n_curve} numbers" in body and "mean" in body
    curve = next(v for k, v in metrics["reliability"].items() if k != "time_ms")
    assert json.dumps(curve[:5])[1:-1] not in text
    assert f"{metrics['n_spikes']:,}" in body

    # header, configuration, run file
    assert "complete" in body and "whatwhen" in body and str(run.resolve()) in body
    assert "Seed 1" in body and "7,200 ms" in body
    assert page.pres == [(run / "config.resolved.toml").read_text()]
    assert "reservoir-run version 2" in body and "/spikes/reservoir/timestamps" in body
    assert "/readouts/weights" in body


def _section_order(text: str) -> list[str]:
    return re.findall(r'<section id="([a-z-]+)"', text)


def test_one_run_leads_with_its_claims(runs):
    _, run = runs
    text = write_report([run]).read_text()
    assert _section_order(text)[:3] == ["claims", "figures", "metrics"]
    claims = json.loads((run / "metrics.json").read_text())["claims"]
    section = text[text.index('<section id="claims">'):text.index('<section id="figures">')]
    assert section.count('<tr><th class="key">') == len(claims["items"]) == 6
    assert claims["summary"] in section
    for item in claims["items"]:
        assert html.escape(item["target"]) in section
        verdict = {True: "holds yes", False: "holds no", None: "holds unjudged"}[item["holds"]]
        row = section[section.index(f'<th class="key">{item["claim"]} ({item["name"]})'):]
        assert row[:row.index("</tr>")].count(verdict) == 1, item
    assert "No verdict" in write_report([runs[0]]).read_text()  # a plain simulation states none


def test_a_continual_run_shows_its_accuracy_matrix_as_a_heatmap(runs, tmp_path):
    sim, run = runs
    continual = tmp_path / "continual"
    shutil.copytree(sim, continual)
    metrics = json.loads((continual / "metrics.json").read_text())
    metrics.update({"accuracy_matrix": [[0.9, None], [0.7, 0.85]], "acc": 0.775, "bwt": -0.2})
    (continual / "metrics.json").write_text(json.dumps(metrics))
    text = write_report([continual]).read_text()
    assert _section_order(text)[:3] == ["claims", "accuracy", "figures"]
    section = text[text.index('<section id="accuracy">'):text.index('<section id="figures">')]
    assert "ACC 77.5 %, BWT -20.0 points" in section
    cells = re.findall(r'<td style="background:(#[0-9a-f]{6});color:(#[0-9a-f]{3})">([0-9.]+)</td>', section)
    assert [c[2] for c in cells] == ["90.0", "70.0", "85.0"] and len({c[0] for c in cells}) == 3
    assert section.count("<td></td>") == 1  # the task not yet learned
    compared = write_report([continual, run], tmp_path / "compare.html").read_text()
    assert _section_order(compared)[:3] == ["claims", "accuracy", "figures"]


def test_text_is_escaped(runs, tmp_path):
    sim, _ = runs
    odd = tmp_path / "odd"
    shutil.copytree(sim, odd)
    metrics = json.loads((odd / "metrics.json").read_text())
    metrics["<b>key</b>"] = "<script>alert(1)</script>"
    metrics["records"] = [{"a & b": "<i>x</i>", "n": 1}, {"a & b": "y", "n": 2.5}]
    (odd / "metrics.json").write_text(json.dumps(metrics))
    text = write_report([odd]).read_text()
    page = Page(text)
    check_self_contained(text, page)  # no <script> got through
    assert "<b>key</b>" in page.keys and "<script>alert(1)</script>" in " ".join(page.text)
    assert "<i>" not in text and "&lt;i&gt;x&lt;/i&gt;" in text


def test_comparison_page(runs, tmp_path, monkeypatch):
    sim, run = runs
    # a second simulation that differs in one metric and one configuration line
    other = tmp_path / "sim_other"
    shutil.copytree(sim, other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["mean_rate_hz"] += 1.0
    (other / "metrics.json").write_text(json.dumps(metrics))
    config = (other / "config.resolved.toml").read_text()
    (other / "config.resolved.toml").write_text(config.replace("chunk_ms = ", "chunk_ms = 1", 1))

    monkeypatch.chdir(tmp_path)
    out = write_report([sim, other])
    assert out == Path("report.html")  # several runs: in the current directory by default
    text = out.read_text()
    page = Page(text)
    check_self_contained(text, page)
    body = " ".join(page.text)
    assert page.differs_rows == ["mean_rate_hz"]  # wall_time_s is the copy's: equal too
    assert len(page.images) == 2 and {img["alt"] for img in page.images} == {"figures/raster.png"}
    assert "-chunk_ms = " in body and "+chunk_ms = 1" in body

    # a simulation against an experiment: the union of the metrics, absent ones marked
    out = write_report([sim, run], tmp_path / "nested" / "compare.html")
    text = out.read_text()
    page = Page(text)
    check_self_contained(text, page)
    expected = json.loads((run / "metrics.json").read_text())
    assert "timing.mean_abs_peak_error_ms" in page.keys and "conditions[0].cue" in page.keys
    assert _section_order(text)[:3] == ["claims", "figures", "metrics"]
    claims_section = text[text.index('<section id="claims">'):text.index('<section id="figures">')]
    n_claims = len(expected["claims"]["items"])
    assert claims_section.count('<td class="absent">—</td>') == n_claims + 0  # the simulation has none
    assert claims_section.count("no claims") == 1 and expected["claims"]["summary"] in claims_section
    assert page.absent_cells >= len(metric_keys(expected)) - len(metric_keys(json.loads((sim / "metrics.json").read_text())))
    assert "timing.mean_abs_peak_error_ms" in page.differs_rows
    figures = {p.name for p in (run / "figures").glob("*.png")}
    assert sorted(img["alt"] for img in page.images) == sorted(["figures/raster.png"] + [f"figures/{n}" for n in figures])
    for img in page.images:
        decoded_png(img["src"])
    assert text.count('class="missing-figure"') == len(figures - {"raster.png"})


def test_not_a_run_folder_is_an_error(runs, tmp_path, capsys):
    sim, _ = runs
    with pytest.raises(ReportError, match="no_such_run: no such run folder"):
        write_report([tmp_path / "no_such_run"])
    half = tmp_path / "half"
    shutil.copytree(sim, half)
    (half / "metrics.json").unlink()
    with pytest.raises(ReportError, match=r"half is not a complete run folder: metrics.json is missing \(run.h5 records status 'complete'\)"):
        write_report([sim, half])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(sim), str(empty), "--out", str(tmp_path / "r.html")])
    assert exit_info.value.code == 2
    assert f"{empty} is not a complete run folder: run.h5 and metrics.json are missing" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists() and not (empty / "report.html").exists()


# ---------------------------------------------------------------------------------------------
# in a real browser

PROBE = """<script>
addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var body = document.body;
  body.setAttribute("data-images", images.length);
  body.setAttribute("data-decoded", images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
  body.setAttribute("data-sizes", images.map(function (i) { return i.naturalWidth + "x" + i.naturalHeight; }).join(" "));
  body.setAttribute("data-overflow", document.documentElement.scrollWidth - window.innerWidth);
  body.setAttribute("data-height", document.documentElement.scrollHeight);
});
</script>"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture
def browser():
    path = find_browser()
    if path is None:
        if os.environ.get("RESERVOIR_REQUIRE_BROWSER"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return path


def headless(browser: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
               "--no-first-run", f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
               "--virtual-time-budget=10000", *args, page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-2000:]}"
    return done


def render(browser: str, report: Path, tmp_path: Path, name: str) -> tuple[dict, Image.Image, list]:
    """The DOM facts the probe writes after the load event, the screenshot, and the real sizes
    of the page's images."""
    html_text = report.read_text()
    sizes = []
    for img in Page(html_text).images:
        with Image.open(io.BytesIO(decoded_png(img["src"]))) as image:
            sizes.append(f"{image.size[0]}x{image.size[1]}")
    probe = tmp_path / f"{name}_probe.html"
    probe.write_text(html_text.replace("</body>", PROBE + "\n</body>"))
    dom = headless(browser, probe, tmp_path / f"{name}_profile", "--dump-dom").stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    facts = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    assert "images" in facts, f"the load event never ran: {body.group(0)[:300]}"
    shot = tmp_path / f"{name}.png"
    headless(browser, report, tmp_path / f"{name}_profile", f"--screenshot={shot}")
    return facts, Image.open(shot).convert("RGB"), sizes


def check_rendered(facts: dict, screenshot: Image.Image, sizes: list) -> None:
    # every image decoded by the browser, at the PNG's own size
    assert int(facts["images"]) == len(sizes) > 0
    assert int(facts["decoded"]) == len(sizes), facts
    assert facts["sizes"].split() == sizes
    # readable at this width: nothing sticks out sideways (wide tables scroll in their box)
    assert int(facts["overflow"]) <= 0, facts
    assert int(facts["height"]) > WINDOW[1] / 2
    # the screenshot: the requested size, not blank, text and figures drawn
    assert screenshot.size == WINDOW
    pixels = np.asarray(screenshot)
    non_white = float((pixels.min(axis=2) < 235).mean())
    dark = float((pixels.max(axis=2) < 90).mean())
    assert 0.03 < non_white < 0.9, non_white
    assert dark > 0.002, dark  # text
    packed = (pixels[..., 0].astype(np.uint32) << 16) | (pixels[..., 1].astype(np.uint32) << 8) | pixels[..., 2]
    assert np.unique(packed).size > 100  # anti-aliased text and figures, not a flat page


def test_report_renders_in_a_browser(runs, browser, tmp_path):
    _, run = runs
    report = write_report([run], tmp_path / "whatwhen.html")
    facts, screenshot, sizes = render(browser, report, tmp_path, "whatwhen")
    check_rendered(facts, screenshot, sizes)
    assert len(sizes) == len(list((run / "figures").glob("*.png")))


def test_comparison_renders_in_a_browser(runs, browser, tmp_path):
    sim, run = runs
    report = write_report([sim, run], tmp_path / "compare.html")
    facts, screenshot, sizes = render(browser, report, tmp_path, "compare")
    check_rendered(facts, screenshot, sizes)
