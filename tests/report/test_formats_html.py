"""The HTML report: self-contained, opened in headless Chromium (a
screenshot shows the line colours; the DOM holds the tables; a scripted
click sorts them), sources read at render time, atomic directory output."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import lxml.html
import pytest

from formats_fixtures import SRC, basic, chromium, png_pixels
from kcov.report import CoverageData, Frame, Module, ReportError, formats
from kcov.report.formats.html import write as html_write


def page_of(report: Path, rel: str) -> Path:
    return report / html_write.file_page_name(rel)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    out = tmp_path / "report"
    formats.write(basic(), "html", out)
    return out


def test_self_contained(report: Path, tmp_path: Path) -> None:
    """No external resource, and every link lands on a page and an id that
    exist (directory layout and single page)."""
    single = tmp_path / "one.html"
    formats.write(basic(), "html", single)
    pages = {p.name: p.read_text() for p in report.glob("*.html")}
    assert len(pages) == 5  # index + 4 source files
    for name, text in [*pages.items(), (single.name, single.read_text())]:
        for bad in ("http:", "https:", "<link", "<img", "src=", "url(",
                    "@import", "<iframe"):
            assert bad not in text, (name, bad)
        ids = set(re.findall(r' id="([^"]+)"', text))
        for href in re.findall(r'href="([^"]*)"', text):
            target, _, frag = href.partition("#")
            if target:
                assert target in pages, (name, href)
                tids = set(re.findall(r' id="([^"]+)"', pages[target]))
            else:
                tids = ids
            assert not frag or frag in tids, (name, href)


def test_hover_names_and_counts(report: Path) -> None:
    doc = lxml.html.fromstring(page_of(report, "drv/main.c").read_text())
    row = doc.get_element_by_id("L10")
    assert row.get("class") == "p"
    tc = row.find_class("tc")[0]
    assert tc.text == "1"
    assert tc.get("title") == ("1 of 2 points reached; tests:\n"
                               "test_read[big, slow]")
    row8 = doc.get_element_by_id("L8")
    assert row8.find_class("tc")[0].get("title").endswith(
        "tests:\ntest_open\ntest_read[big, slow]")
    assert doc.get_element_by_id("L16").get("class") == "u"
    assert doc.get_element_by_id("L11").get("class") == "c"
    assert doc.get_element_by_id("L20").get("class") == "n"
    # the source text is there, escaped
    assert "if (v &gt; 5) state = v;" in page_of(report,
                                                 "drv/main.c").read_text()


def test_many_test_names_are_capped(tmp_path: Path) -> None:
    d = basic()
    key = next(iter(d.modules))
    for i in range(30):
        d.add_hit(key, 0x138, f"t{i:02d}")
    formats.write(d, "html", tmp_path / "r", max_test_names=5)
    doc = lxml.html.fromstring(page_of(tmp_path / "r", "drv/main.c")
                               .read_text())
    title = doc.get_element_by_id("L11").find_class("tc")[0].get("title")
    assert title.splitlines()[1:] == ["t00", "t01", "t02", "t03", "t04",
                                      "... and 27 more"]


def test_missing_and_stale_source(tmp_path: Path) -> None:
    d = basic()
    m = Module("name:y", "y")
    d.add_module(m)
    d.add_point(m.key, 1, (Frame("list_len", str(SRC / "lib/list.c"), 40),))
    formats.write(d, "html", tmp_path / "r")
    gen = page_of(tmp_path / "r", "drv/gen.c").read_text()
    assert f"Source file not found: {SRC}/drv/gen.c." in gen
    doc = lxml.html.fromstring(gen)
    assert [r.get("id") for r in doc.get_element_by_id("source")
            .iter("tr")] == ["L12", "L14"]
    lst = page_of(tmp_path / "r", "lib/list.c").read_text()
    assert "The source has 9 lines but coverage names line 40" in lst
    assert 'id="L40"' in lst


def test_source_map(tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(SRC, moved)
    formats.write(basic(moved.parent / "nowhere"), "html", tmp_path / "r",
                  source_map=f"{moved.parent / 'nowhere'}={moved}")
    text = page_of(tmp_path / "r", "drv/main.c").read_text()
    assert "int handle(int cmd)" in text and "not found" not in text
    with pytest.raises(ReportError) as e:
        formats.write(basic(), "html", tmp_path / "r2", source_map="nope")
    assert e.value.exit_status == 64


# -- Chromium -----------------------------------------------------------------


def screenshot(page: Path, tmp_path: Path
               ) -> tuple[dict[tuple[int, int, int], int], dict[str, int]]:
    """Open ``page`` in a 1000x1000 window: (pixels per colour, pixel rows
    per line status whose only status fill is that status's: the rows of
    a line's count cell, not the legend's)."""
    png = tmp_path / f"{page.stem}.png"
    r = chromium(f"--screenshot={png}", "--window-size=1000,1000",
                 page.as_uri())
    assert png.is_file(), r.stderr[-2000:]
    w, h, rows = png_pixels(png.read_bytes())
    assert (w, h) == (1000, 1000)
    counts: dict[tuple[int, int, int], int] = {}
    fills = {rgb: k for k, rgb in html_write.FILL.items()}
    rows_with: dict[str, int] = {k: 0 for k in html_write.FILL}
    for row in rows:
        seen = set()
        for x in range(0, len(row), 3):
            px = (row[x], row[x + 1], row[x + 2])
            counts[px] = counts.get(px, 0) + 1
            if px in fills:
                seen.add(fills[px])
        if len(seen) == 1:
            rows_with[seen.pop()] += 1
    white = counts.get((255, 255, 255), 0)
    assert white < 0.97 * w * h, "page is blank"
    assert len(counts) > 50, "page has hardly any content"
    return counts, rows_with


def near(counts: dict[tuple[int, int, int], int],
         c: tuple[int, int, int]) -> int:
    """Pixels within 24 per channel of colour ``c``."""
    return sum(n for px, n in counts.items()
               if max(abs(a - b) for a, b in zip(px, c)) <= 24)


def test_screenshot_shows_line_colours(report: Path, tmp_path: Path) -> None:
    counts, rows_with = screenshot(page_of(report, "drv/main.c"), tmp_path)
    # The test-count cells: main.c has covered, partial and uncovered
    # lines, each at least one text line (~17 pixel rows) high.
    for status, n in rows_with.items():
        assert n >= 12, (status, rows_with)
    # Bold red (uncovered) and orange (partial) source text is drawn.
    assert near(counts, (255, 0, 0)) > 20
    assert near(counts, (200, 100, 0)) > 20


def parse(text: str) -> lxml.html.HtmlElement:
    """The page as lxml sees it; huge_tree: libxml2 stops at a text node
    of 10 MB otherwise (the hostile page has one)."""
    return lxml.html.fromstring(text,
                                parser=lxml.html.HTMLParser(huge_tree=True))


def dump_dom(page: Path) -> lxml.html.HtmlElement:
    r = chromium("--dump-dom", page.as_uri())
    assert r.returncode == 0 and "<html" in r.stdout, r.stderr[-2000:]
    return parse(r.stdout)


def test_dom_renders_tables(report: Path) -> None:
    doc = dump_dom(report / "index.html")
    dirs = doc.get_element_by_id("dirs")
    assert [r.xpath("string(td[1])") for r in dirs.xpath("tbody/tr")] == [
        "drv/", "lib/"]
    tables = [t for t in doc.iter("table")
              if (t.get("id") or "").startswith("files-")]
    names = [[r.xpath("string(td[1])") for r in t.xpath("tbody/tr")]
             for t in tables]
    assert names == [["gen.c", "main.c", "util.h"], ["list.c"]]
    totals = doc.get_element_by_id("totals")
    assert [c.text_content() for c in totals.xpath("tbody/tr[2]/td")] == [
        "Lines", "13", "16", "81.25%"]


@pytest.mark.parametrize("clicks,column,want", [
    (1, 3, ["gen.c", "util.h", "main.c"]),    # Points, ascending
    (2, 3, ["main.c", "util.h", "gen.c"]),    # again: descending
    (2, 1, ["util.h", "main.c", "gen.c"]),    # File, descending
    (1, 4, ["gen.c", "main.c", "util.h"]),    # %, ascending
])
def test_click_sorts(report: Path, clicks: int, column: int,
                     want: list[str]) -> None:
    """A click on a header (a real click event, through the page's own
    handler) sorts the rows; a second click reverses."""
    index = (report / "index.html").read_text()
    table = re.search(r'<table class="sortable" id="(files-[^"]+)">',
                      index).group(1)
    script = ("<script>var th=document.querySelector('#%s thead th:nth-child"
              "(%d)');for(var i=0;i<%d;i++)th.click();</script>"
              % (table, column, clicks))
    page = report / "clicked.html"
    page.write_text(index.replace("</body>", script + "</body>"))
    doc = dump_dom(page)
    t = doc.get_element_by_id(table)
    assert [r.xpath("string(td[1])") for r in t.xpath("tbody/tr")] == want
    th = t.xpath(f"thead/tr/th[{column}]")[0]
    assert th.get("data-dir") == ("asc" if clicks == 1 else "desc")


# -- hostile input ------------------------------------------------------------

#: A source whose text, names and tests try to break out of the page.  The
#: payloads that would run leave a mark (data-pwned) if they ever did.
HOSTILE_LINES = [
    b"int a; /* </script><script>document.body.setAttribute("
    b"'data-pwned','script')</script> */",
    b'char *s = "<img src=x onerror=alert(1)>";',
    b"char *t = \"<img src=x onerror=document.body.setAttribute("
    b"'data-pwned','img')>\";",
    b'char *u = "\xff\xfe\xc3( \xed\xa0\x80 \xe2\x82";',  # not UTF-8
    # 10 MiB on one line, with markup in every chunk
    (b"int v = a < b && c > d; /* </td></tr></table> */ " * 205600)[
        :10 * 1024 * 1024],
    b"int w;",
]
HOSTILE_TESTS = ("</script><img src=x onerror=alert(2)>",
                 '" onmouseover="alert(3)')
HOSTILE_FUNCTION = "<img src=x onerror=alert(4)>"
HOSTILE_TITLE = "</title><script>alert(5)</script>"


def hostile(src: Path) -> tuple[CoverageData, Path]:
    """Lines 1, 4: covered; 2, 5: partly covered; 3, 6: uncovered."""
    path = src / "evil.c"
    path.write_bytes(b"\n".join(HOSTILE_LINES) + b"\n")
    d = CoverageData()
    m = Module(Module.make_key("<script>alert(6)</script>", "ee"),
               "<script>alert(6)</script>", "/b/evil", "ee", "exe", True)
    d.add_module(m)
    hits = {1: 2, 2: 1, 3: 0, 4: 2, 5: 1, 6: 0}  # of 2 points per line
    for line, nhit in hits.items():
        for k in range(2):
            off = line * 16 + k * 4
            d.add_point(m.key, off, (Frame(HOSTILE_FUNCTION, str(path),
                                           line, k + 1),))
            if k < nhit:
                for t in HOSTILE_TESTS:
                    d.add_hit(m.key, off, t)
    return d, path


def test_hostile_source_is_escaped(tmp_path: Path) -> None:
    """Source text, test, function and module names and the title are
    text in the page, never markup: the one script is ours, no <img>,
    and every cell reads back as the original text (invalid UTF-8 as
    U+FFFD, the 10 MiB line whole)."""
    d, path = hostile(tmp_path)
    formats.write(d, "html", tmp_path / "r", title=HOSTILE_TITLE)
    formats.write(d, "html", tmp_path / "one.html", title=HOSTILE_TITLE)
    pages = [page_of(tmp_path / "r", "evil.c"), tmp_path / "r/index.html",
             tmp_path / "one.html"]
    for page in pages:
        text = page.read_text()
        assert text.count("<script") == 1 and text.count("</script>") == 1
        for bad in ("<img", "<b>", "</td></tr></table> */", "onmouseover=\"",
                    "</title><"):
            assert bad not in text, (page.name, bad)
        doc = parse(text)
        assert doc.findtext(".//title").endswith(HOSTILE_TITLE)
    doc = parse(pages[0].read_text())
    assert [doc.get_element_by_id(f"L{n}").find_class("code")[0]
            .text_content() for n in range(1, 7)] == [
                ln.decode("utf-8", "replace") for ln in HOSTILE_LINES]
    assert "\ufffd" in doc.get_element_by_id("L4").text_content()
    assert doc.get_element_by_id("L1").find_class("tc")[0].get("title") == (
        "2 of 2 points reached; tests:\n" + "\n".join(sorted(HOSTILE_TESTS)))
    assert doc.get_element_by_id("functions").xpath(
        "string(tbody/tr/td[1])") == HOSTILE_FUNCTION
    index = parse(pages[1].read_text())
    assert "modules: <script>alert(6)</script> (exe)" in index.xpath(
        "string(//p[@class='meta'])")


@pytest.mark.slow
def test_hostile_source_renders_in_chromium(tmp_path: Path) -> None:
    """In Chromium the hostile page runs none of its payloads (an alert
    would be recorded by the hook put first in the page, a payload's
    setAttribute would mark the body), holds no <img> nor any event
    attribute, still sorts its tables with our script, and draws its
    lines in their colours."""
    d, _ = hostile(tmp_path)
    formats.write(d, "html", tmp_path / "r", title=HOSTILE_TITLE)
    page = page_of(tmp_path / "r", "evil.c")
    text = page.read_text()
    hook = ("<script>window.alert=function(m){document.documentElement"
            ".setAttribute('data-alert',String(m))}</script>")
    click = ("<script>document.querySelector('#functions thead th')"
             ".click();</script>")
    probe = tmp_path / "r/probe.html"
    probe.write_text(text.replace('<meta charset="utf-8">',
                                  '<meta charset="utf-8">' + hook, 1)
                     .replace("</body>", click + "</body>"))
    doc = dump_dom(probe)
    assert doc.get("data-alert") is None
    assert doc.find("body").get("data-pwned") is None
    assert doc.xpath("//img") == []
    assert doc.xpath("//*[@onerror or @onmouseover or @onload]") == []
    assert len(doc.xpath("//script")) == 3  # the hook, ours, the click
    assert doc.xpath("string(//title)").endswith(HOSTILE_TITLE)
    assert doc.get_element_by_id("functions").xpath(
        "thead/tr/th[1]")[0].get("data-dir") == "asc"
    assert [len(doc.get_element_by_id(f"L{n}").find_class("code")[0]
                .text_content()) for n in range(1, 7)] == [
                    len(ln.decode("utf-8", "replace"))
                    for ln in HOSTILE_LINES]
    counts, rows_with = screenshot(page, tmp_path)
    for status, n in rows_with.items():
        assert n >= 12, (status, rows_with)
    assert near(counts, (255, 0, 0)) > 20


# -- atomic output ------------------------------------------------------------


def test_directory_rewrite_and_refusal(tmp_path: Path) -> None:
    out = tmp_path / "r"
    formats.write(basic(), "html", out)
    first = sorted(p.name for p in out.iterdir())
    formats.write(basic(), "html", out)  # an earlier report is replaced
    assert sorted(p.name for p in out.iterdir()) == first
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ReportError, match="not a kcov html report") as e:
        formats.write(basic(), "html", mine)
    assert e.value.exit_status == 73
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    empty = tmp_path / "empty"
    empty.mkdir()
    formats.write(basic(), "html", empty)
    assert (empty / "index.html").is_file()
    assert sorted(os.listdir(tmp_path)) == ["empty", "mine", "r"]


def test_failure_leaves_old_report(tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r"
    formats.write(basic(), "html", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []
    real = Path.write_text

    def failing(self: Path, *a: object, **k: object) -> int:
        calls.append(self)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", failing)
    d = basic()
    d.add_hit(next(iter(d.modules)), 0x140, "new")
    with pytest.raises(ReportError, match="No space left") as e:
        formats.write(d, "html", out)
    assert e.value.exit_status == 73
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert os.listdir(tmp_path) == ["r"]  # no temporary directory left


def test_not_to_stdout() -> None:
    with pytest.raises(ReportError) as e:
        formats.write(basic(), "html", "-")
    assert e.value.exit_status == 64


def test_empty_data(tmp_path: Path) -> None:
    formats.write(CoverageData(), "html", tmp_path / "r")
    assert "Points" in (tmp_path / "r" / "index.html").read_text()
