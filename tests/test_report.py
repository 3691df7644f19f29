"""--report and --figures: one self-contained HTML file, PNG figures, the missing-extra error,
and (when Chromium is installed) a real browser rendering it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from losscli.cli import run

SAMPLES = ["regression", "binary", "multiclass", "counts"]


def cli(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    rc = run([str(a) for a in args])
    out, err = capfd.readouterr()
    return rc, out, err


class _Outline(HTMLParser):
    """Tags, section headings and every URL-carrying attribute of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.headings: list[str] = []
        self.urls: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_h2 = tag == "h2"
        for name, value in attrs:
            if name in ("href", "src", "xlink:href", "action") and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings.append(data.strip())
            self._in_h2 = False


def check_document(path: Path) -> _Outline:
    """The report parses, each SVG is well-formed XML, nothing is fetched from elsewhere."""
    text = path.read_text(encoding="utf-8")
    outline = _Outline()
    outline.feed(text)
    outline.close()
    assert outline.tags[:1] == ["html"]
    svgs = re.findall(r"<svg .*?</svg>", text, flags=re.S)
    assert svgs
    for s in svgs:
        root = ET.fromstring(s)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("viewBox")
    # the only http(s) text is the SVG namespace names, which are never fetched
    without_ns = re.sub(r'xmlns(:\w+)?="[^"]*"', "", text)
    assert not re.search(r"(https?:|ftp:)?//[\w.-]+\.\w+/", without_ns)
    assert "@import" not in text
    assert set(re.findall(r"url\((.)", text)) <= {"#"}  # references inside the page only
    ids = re.findall(r' id="([^"]+)"', text)
    assert len(ids) == len(set(ids))
    assert all(u.startswith(("data:", "#")) for u in outline.urls), outline.urls
    return outline


@pytest.mark.parametrize("name", SAMPLES)
def test_eval_report_of_each_sample(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                    name: str) -> None:
    out = tmp_path / "r.html"
    rc, stdout, err = cli(capfd, "eval", f"sample_data/{name}.parquet", "--report", out,
                          "--format", "json")
    assert rc == 0, err
    doc = json.loads(stdout)
    outline = check_document(out)
    # verdict first, then the table, the figures, the settings
    assert outline.headings == ["Losses", "Figures", "Settings and provenance"]
    text = out.read_text()
    assert text.index('class="verdict') < text.index("<h2>Losses")
    for r in doc["losses"]:
        assert f"<td>{r['spec']}</td>" in text
    assert "--report" in text and "sample_data/" in text  # the command line, the source
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left
    assert len(text) < 400_000
    if name == "binary":
        assert doc["calibration"]["ece"] > 0
        assert f"{doc['calibration']['ece']:.4f}" in text
    else:
        assert "calibration" not in doc


def test_the_verdict_lists_the_gates(capfd: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    rc, _, _ = cli(capfd, "eval", "sample_data/regression.parquet", "--max", "mse=1", "--max",
                   "mae=5", "--report", out, "-q")
    assert rc == 1  # the gate still decides; the report is written first
    text = out.read_text()
    verdict = text[text.index('<section class="verdict'):text.index("<h2>Losses")]
    assert 'class="verdict fail"' in verdict and "1 of 2 gate(s) failed" in verdict
    assert "FAIL: mse = 8.2094 &gt; max 1" in verdict
    assert "pass: mae = 1.24344 &lt;= max 5" in verdict


def test_figures_directory(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    figs = tmp_path / "figs" / "new"
    rc, _, err = cli(capfd, "eval", "sample_data/regression.parquet", "--figures", figs, "-q")
    assert rc == 0, err
    names = sorted(p.name for p in figs.iterdir())
    assert names == ["gradients.png", "predicted_vs_actual.png", "residuals.png"]
    for p in figs.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, _, err = cli(capfd, "eval", "sample_data/regression.parquet", "--figures",
                     figs / "residuals.png")
    assert rc == 2 and "is a file" in err


def test_compare_and_recommend_reports(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, 2000)
    path = tmp_path / "pair.parquet"
    pq.write_table(pa.table({"y": y, "a": y + rng.normal(0, 1, 2000),
                             "b": y + rng.normal(0, 0.7, 2000)}), path)
    out = tmp_path / "cmp.html"
    rc, _, err = cli(capfd, "compare", path, "--baseline-pred", "a", "--pred", "b",
                     "--target", "y", "--report", out, "--figures", tmp_path / "cf")
    assert rc == 0, err
    check_document(out)
    text = out.read_text()
    assert "significantly better" in text
    assert text.index("significantly better") < text.index("<h2>Losses")
    assert (tmp_path / "cf" / "deltas.png").exists()
    assert (tmp_path / "cf" / "diff_mse.png").exists()
    out = tmp_path / "rec.html"
    rc, _, err = cli(capfd, "recommend", "sample_data/regression.parquet", "--report", out)
    assert rc == 0, err
    check_document(out)
    assert "Recommended: <code>huber:delta=" in out.read_text()


def test_without_matplotlib_it_is_an_exit_2_naming_the_extra(
        capfd: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises
    for flag, target in (("--report", tmp_path / "r.html"), ("--figures", tmp_path / "f")):
        rc, out, err = cli(capfd, "eval", "sample_data/regression.parquet", flag, target)
        assert rc == 2
        assert out == ""
        assert err.strip() == ("losscli: error: --report and --figures draw with matplotlib, "
                               "which is not installed: pip install 'losscli[report]'")
    assert list(tmp_path.iterdir()) == []
    rc, _, err = cli(capfd, "eval", "sample_data/regression.parquet", "-q")
    assert rc == 0, err


def test_a_plain_eval_does_not_import_matplotlib() -> None:
    code = ("import sys; from losscli.cli import run; "
            "rc = run(['eval', 'sample_data/binary.parquet', '-q', '--format', 'json']); "
            "assert rc == 0; assert 'matplotlib' not in sys.modules, 'imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
    "google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chromium_renders_the_report(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                     scheme: str) -> None:
    import matplotlib.image

    out = tmp_path / "r.html"
    rc, _, err = cli(capfd, "eval", "sample_data/binary.parquet", "--report", out, "-q")
    assert rc == 0, err
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", "--window-size=900,1400",
            f"--screenshot={shot}", out.as_uri()]
    if scheme == "dark":
        args.insert(1, "--force-dark-mode")
    proc = subprocess.run(args, capture_output=True, timeout=120, check=False,
                          cwd=tmp_path)
    log = proc.stderr.decode(errors="replace")
    assert shot.exists(), log
    assert not [line for line in log.splitlines() if ":CONSOLE" in line]
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.std() > 0.05  # not blank: text, table and figures drawn
    corner = pixels[:40, -40:].mean()  # the page background
    assert (corner > 0.9) if scheme == "light" else (corner < 0.2)


def test_many_classes_show_the_most_confused_and_all_counts() -> None:
    """Beyond 30 classes the matrix shows the 30 most-confused; the folded table has all."""
    from losscli.engine import evaluate
    from losscli.render import html, plots

    rng = np.random.default_rng(3)
    k, n = 40, 4000
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (k, n))
    logits[y, np.arange(n)] += 2.0
    # classes 0 and 1 are mixed up most: half of class 0's rows predict 1
    logits[1, np.arange(n)[(y == 0)][::2]] += 10.0
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    report = evaluate({"y": y.astype(float), **{f"p{c:02d}": p[c] for c in range(k)}},
                      pred="p*", target="y", losses=["cce"], figures=True)
    counts = report.figures.confusion
    assert counts.shape == (k, k) and counts.sum() == n
    drawn = {d.name: d for d in plots.draw(report.figures)}
    conf = drawn["confusion"]
    assert "the 30 most-confused of 40 classes" in conf.caption
    shown = [t.get_text() for t in conf.figure.axes[0].get_yticklabels()]
    assert len(shown) == 30 and "00" in shown and "01" in shown
    off = counts.sum(axis=0) + counts.sum(axis=1) - 2 * np.diag(counts)
    left_out = sorted(set(report.columns["classes"]) - set(shown))
    assert max(off[report.columns["classes"].index(c)] for c in left_out) <= min(
        off[report.columns["classes"].index(c)] for c in shown)
    page = html.eval_html(report, list(drawn.values()),
                          html.Provenance("losscli eval", "0", "now", 0.0))
    details = page[page.index("<details>"):page.index("</details>")]
    assert details.count("<tr>") == k + 1
