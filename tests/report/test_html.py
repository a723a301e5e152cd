"""``--format html``: a self-contained page with one bar per parameterized layer, the threshold
line, vanishing layers marked, the diagnostics with their (escaped) source lines, no external
URL — checked by parsing it and by rendering it once in headless Chromium."""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gradlint.core.values import Diagnostic, LayerEstimate, Location, ModelReport, Report
from gradlint.report.html import to_html

EXAMPLES = ("examples/deep_sigmoid.py", "examples/resnet_cnn.py",
            "examples/deep_sigmoid_fixed.py")


@dataclass
class Tag:
    name: str
    attrs: dict[str, str]
    section: str | None  # the enclosing model section's id

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Page(HTMLParser):
    """Every start tag (with its model section), all text, and the text of each source block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[Tag] = []
        self.sources: list[str] = []
        self.text: list[str] = []
        self.section: str | None = None
        self.in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and "model" in a.get("class", "").split():
            self.section = a.get("id")
        if tag == "pre" and "source" in a.get("class", "").split():
            self.in_pre = True
            self.sources.append("")
        self.tags.append(Tag(tag, a, self.section))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        if tag == "pre":
            self.in_pre = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.in_pre:
            self.sources[-1] += data

    def find(self, name: str, cls: str | None = None,
             section: str | None = None) -> list[Tag]:
        return [t for t in self.tags if t.name == name and (cls is None or cls in t.classes)
                and (section is None or t.section == section)]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def render(run_gradlint: Any, tmp: Path, *args: str, expect: int) -> tuple[str, Path]:
    out = tmp / "report.html"
    proc = run_gradlint(*args, "--format", "html", "--output", out)
    assert proc.returncode == expect, proc.stderr
    assert proc.stdout == ""
    return out.read_text(encoding="utf-8"), out


@pytest.fixture(scope="module")
def examples(run_gradlint: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One HTML and one JSON run over the three examples (two findings, two clean models)."""
    tmp = tmp_path_factory.mktemp("html")
    html, path = render(run_gradlint, tmp, *EXAMPLES, expect=1)
    proc = run_gradlint(*EXAMPLES, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    return {"html": html, "path": path, "page": parse(html), "json": json.loads(proc.stdout)}


def sections(page: Page, doc: dict[str, Any]) -> dict[str, str]:
    """JSON target -> the id of its section (sections follow the report's model order)."""
    ids = [t.attrs["id"] for t in page.find("section", "model")]
    assert len(ids) == len(doc["models"])
    return {m["target"]: sid for m, sid in zip(doc["models"], ids, strict=True)}


def test_one_bar_per_parameterized_layer(examples: dict[str, Any]) -> None:
    page, doc = examples["page"], examples["json"]
    assert len(doc["models"]) == 3
    for m in doc["models"]:
        sid = sections(page, doc)[m["target"]]
        assert m["target"] in examples["html"]
        bars = page.find("rect", "bar", sid)
        assert len(bars) == len(m["layers"]) > 0, m["target"]
        rows = [t.attrs["data-module"] for t in page.find("g", "row", sid)]
        assert rows == [le["module"] for le in m["layers"]]  # layer order as in the report
        (svg,) = page.find("svg", "chart", sid)
        assert page.find("line", "threshold", sid), "the threshold line"
        assert int(svg.attrs["height"]) > 18 * len(m["layers"])


def test_vanishing_layers_carry_the_warning_class(examples: dict[str, Any]) -> None:
    page, doc = examples["page"], examples["json"]
    ids = sections(page, doc)
    deep = next(m for m in doc["models"] if m["target"].endswith("::DeepSigmoidMLP"))
    sid = ids[deep["target"]]
    vanishing = [t.attrs["data-module"] for t in page.find("g", "vanishing", sid)]
    gl101 = next(d for d in doc["diagnostics"] if d["code"] == "GL101")
    count = int(re.search(r"(\d+) layers built here", gl101["message"]).group(1))  # type: ignore
    assert len(vanishing) == count == 18 and gl101["module"] in vanishing
    assert len(page.find("rect", "vanishing", sid)) == count
    layers = {le["module"]: le for le in deep["layers"]}
    limit = math.log10(1e-2)
    for name in vanishing:
        assert layers[name]["log10_attenuation"] < limit and layers[name]["factors"] >= 3
    assert "head" not in vanishing
    # the clean models have no warning-coloured layer
    for target, other in ids.items():
        if target != deep["target"]:
            assert not page.find("rect", "vanishing", other)
    # saturating activations are marked where the count grows, and the count is printed
    assert len(page.find("text", "sat-step", sid)) == 20
    assert not any(page.find("text", "sat-step", ids[t]) for t in ids if t != deep["target"])


def test_diagnostics_with_source_lines(examples: dict[str, Any], repo_root: Path) -> None:
    page, doc, html = examples["page"], examples["json"], examples["html"]
    arts = page.find("article", "diagnostic")
    assert [a.attrs["data-code"] for a in arts] == [d["code"] for d in doc["diagnostics"]]
    text = "".join(page.text)
    source = (repo_root / "examples/deep_sigmoid.py").read_text().splitlines()
    for d in doc["diagnostics"]:
        assert d["message"] in text and d["fix"]["message"] in text
        assert f"{d['file']}:{d['line']}:{d['col']}" in text
    # the reported line, numbered and marked, in a <pre class="source">
    line = source[15 - 1]
    assert any(f"15 > {line}" in s for s in page.sources)
    assert "f′ ≤ 1" in text  # non-ASCII survives
    assert "<script" not in html.lower()


def test_self_contained(examples: dict[str, Any]) -> None:
    page, html = examples["page"], examples["html"]
    for t in page.tags:
        for attr in ("src", "href", "xlink:href", "action", "data"):
            value = t.attrs.get(attr, "")
            assert not re.match(r"\s*(https?:)?//", value), (t.name, attr, value)
            if attr == "href" and value:
                assert value.startswith("#"), value  # only in-page anchors
    assert not page.find("script") and not page.find("link") and not page.find("img")
    assert not page.find("iframe") and "@import" not in html and "url(http" not in html
    assert re.search(r"https?://", html) is None


@pytest.mark.slow  # minutes matter in the default run: CI runs it in its slow step
def test_escaping_failed_models_and_verify(run_gradlint: Any, tmp_path: Path,
                                          repo_root: Path) -> None:
    """A source line with markup in it, a failed model, a file-level GL900 and --verify."""
    model = tmp_path / "tricky.py"
    model.write_text(
        "import torch.nn as nn\n\n\n"
        "class Tricky(nn.Module):\n"
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n"
        "        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.Sigmoid())"
        "  # <script>alert('&amp;')</script>\n"
        "                                      for _ in range(8)])\n"
        "        self.head = nn.Linear(16, 2)\n\n"
        "    def forward(self, x):\n"
        "        return self.head(self.layers(x))\n", encoding="utf-8")
    shutil.copy(repo_root / "rules/GL906-construction-failed/bad.py", tmp_path / "broken.py")
    shutil.copy(repo_root / "rules/GL900-syntax-error/bad.py", tmp_path / "syntax.py")
    out = tmp_path / "report.html"
    proc = run_gradlint("tricky.py", "broken.py", "syntax.py", "--verify", "--format", "html",
                        "--output", out, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    assert "<script" not in html and "&lt;script&gt;alert(&#x27;&amp;amp;&#x27;)" in html
    assert any("# <script>alert('&amp;')</script>" in s for s in page.sources)
    codes = [a.attrs["data-code"] for a in page.find("article", "diagnostic")]
    assert "GL906" in codes and "GL900" in codes and "GL101" in codes
    assert page.find("section", "failed") and page.find("section", "other")
    # --verify: a measured marker beside each bar of the checked model
    (ok,) = page.find("section", "ok")
    sid = ok.attrs["id"]
    assert len(page.find("circle", "measured", sid)) == len(page.find("rect", "bar", sid)) == 9
    assert "estimate vs autograd" in "".join(page.text)


def layer(module: str, rel: float | None, att: float | None, factors: int, sat: int,
          **kw: Any) -> LayerEstimate:
    fields: dict[str, Any] = dict(
        module=module, type="Linear", numel=10, location=Location("m.py", 3),
        log10_grad=rel, log10_relative=rel, log10_signal=rel, log10_attenuation=att,
        log10_bound=att, saturating=sat, depth=factors, factors=factors, gate=None,
        frozen=False, aliases=(), zero=rel is None, confidence="high")
    fields.update(kw)
    return LayerEstimate(**fields)


def test_states_and_determinism() -> None:
    """Frozen, zero and low-confidence layers are drawn (one bar each) and labelled in text;
    the page depends only on the report, not on timing (``seconds`` never appears)."""
    layers = (layer("a", -6.0, -6.0, 5, 3, confidence="low"),
              layer("b", -4.0, -4.0, 4, 2),
              layer("c", -2.5, -2.5, 1, 1, location=Location("m.py", 4)),
              layer("d", None, None, 0, 0, zero=True),
              layer("e", -1.0, 0.0, 0, 0, frozen=True),
              layer("f", 0.0, 0.0, 0, 0))
    gl101 = Diagnostic("GL101", "vanishing-gradient", "error", "vanishing <b>", Location("m.py", 3),
                       target="m.py::M", module="b")

    def page(seconds: float) -> str:
        model = ModelReport("m.py::M", "M", "m.py", 1, "ok", "fx", "actual", seconds, layers,
                            (gl101,))
        return to_html(Report((model,)), [gl101], 1e-2)

    html = page(321.987)
    assert html == page(654.321) and "987" not in html and "654" not in html
    doc = parse(html)
    state = {t.attrs["data-module"]: t.classes for t in doc.find("g", "row")}
    assert len(doc.find("rect", "bar")) == 6
    # a: low confidence keeps GL101 silent until 3 decades past the threshold (-6 < -2 - 3)
    assert {"vanishing", "low"} <= state["a"] and "vanishing" in state["b"]
    assert "below" in state["c"] and "zero" in state["d"] and "frozen" in state["e"]
    assert "healthy" in state["f"]
    assert "vanishing &lt;b&gt;" in html
    text = "".join(doc.text)
    assert "low conf." in text and "frozen" in text and "zero" in text
    assert 'fill="url(#gl-hatch-vanishing)"' in html  # hatched where confidence is low


def png_pixels(data: bytes) -> tuple[int, int, list[bytearray]]:
    """Width, height and RGB(A) rows of an 8-bit non-interlaced PNG (no PIL needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        rows.append(line)
        prev = line
    return width, height, [r[::bpp] + r[1::bpp] + r[2::bpp] for r in rows]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
def test_renders_in_headless_chromium(examples: dict[str, Any], tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", examples["path"].resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=False)
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    width, height, planes = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    n = width
    inked = warn = 0
    for row in planes:
        r, g, b = row[:n], row[n:2 * n], row[2 * n:]
        inked += sum(1 for x in range(n) if r[x] < 200 or g[x] < 200 or b[x] < 200)
        # the vanishing bars' colour (#c92a2a), allowing for antialiasing
        warn += sum(1 for x in range(n) if r[x] > 170 and g[x] < 80 and b[x] < 80)
    assert inked > 0.02 * width * height, "the page rendered (almost) blank"
    assert warn > 18 * 8 * 10, "the warning-coloured bars of the deep sigmoid MLP are visible"
