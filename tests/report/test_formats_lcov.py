"""lcov: the tracefile genhtml reads (its numbers must be ours), and the
reader (our own output round-trips byte for byte; real tools' output is
read with its lines and functions)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from formats_fixtures import SCENARIOS, SRC, basic, need_tool
from kcov.report import FormatError, ReportError, formats
from kcov.report.formats.lcov import read as lcov_read

_FILE_ROW = re.compile(
    r'class="coverFile"><a href="[^"]*">([^<]+)</a>.*?'
    r'class="coverNum\w*">(\d+) / (\d+)</td>.*?'
    r'class="coverNum\w*">(\d+) / (\d+)</td>', re.S)
_LINE = re.compile(r'<a name="(\d+)"><span class="lineNum">\s*\d+ </span>'
                   r'<span class="line(?:Cov|NoCov)">\s*(\d+) :')
_HEADER = re.compile(r'headerItem">(Lines|Functions):</td>\s*'
                     r'<td class="headerCovTableEntry">(\d+)</td>\s*'
                     r'<td class="headerCovTableEntry">(\d+)</td>')


def genhtml(info: Path, out: Path) -> dict[str, tuple[int, int]]:
    """Run genhtml; ``{"Lines": (hit, total), "Functions": ...}`` from its
    index page."""
    exe = need_tool("genhtml")
    r = subprocess.run([exe, "-q", "--ignore-errors", "source", "-o",
                        str(out), str(info)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    page = (out / "index.html").read_text()
    return {k: (int(h), int(t)) for k, h, t in _HEADER.findall(page)}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_genhtml_agrees(scenario: str, tmp_path: Path) -> None:
    d = SCENARIOS[scenario]()
    formats.write(d, "lcov", tmp_path / "c.info")
    head = genhtml(tmp_path / "c.info", tmp_path / "out")
    t = d.totals()
    assert head == {"Lines": (t.lines_hit, t.lines),
                    "Functions": (t.functions_hit, t.functions)}
    files = d.files()
    # Per file (genhtml's directory pages) and per line (its source pages).
    for sub in ("drv", "lib"):
        page = (tmp_path / "out" / sub / "index.html").read_text()
        rows = _FILE_ROW.findall(page)
        assert rows
        for name, lh, lt, fh, ft in rows:
            st = files[str(SRC / sub / name)]
            assert (int(lh), int(lt)) == (
                sum(1 for ls in st.lines.values() if ls.hit), len(st.lines))
            assert (int(fh), int(ft)) == (
                sum(1 for f in st.functions.values() if f.hit),
                sum(1 for f in st.functions.values() if f.instrumented))
    page = (tmp_path / "out" / "drv" / "main.c.gcov.html").read_text()
    counts = {int(n): int(c) for n, c in _LINE.findall(page)}
    st = files[str(SRC / "drv/main.c")]
    assert counts == {n: len(ls.tests) for n, ls in st.lines.items()}
    if scenario == "basic":
        assert counts[8] == 2 and counts[10] == 1 and counts[16] == 0


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_round_trip_is_exact(scenario: str) -> None:
    text = formats.render(SCENARIOS[scenario](), "lcov")
    d = formats.read_bytes(text.encode(), "c.info")
    assert formats.render(d, "lcov") == text
    # ... and the model read back is a fixed point of write+read
    again = formats.read_bytes(formats.render(d, "lcov").encode(), "c.info")
    assert again == d
    assert d.merge(d) == d


def test_read_model_shape() -> None:
    """How lcov is represented: a module per source file, a point per line
    (offset = line), a point per function (line 0), counts as tests."""
    d = formats.read_bytes(formats.render(basic(), "lcov").encode(), "x")
    main = str(SRC / "drv/main.c")
    key = lcov_read.module_key(main)
    assert d.modules[key].kind == "lcov" and d.modules[key].universe
    assert d.points[(key, 10)][0].function == "handle"
    assert d.hits[(key, 8)] == {"", "#2"}  # count 2: two anonymous tests
    assert (key, 16) not in d.hits         # count 0
    fn = (key, lcov_read.function_offset("cleanup"))
    assert d.points[fn][0].line == 0 and fn not in d.hits
    assert d.functions[(main, "handle")].start_line == 6
    # merged with the point data of the same run: lines keep their numbers
    both = basic().merge(d)
    assert both.totals().lines == basic().totals().lines


def test_sections_per_test_and_foreign_records() -> None:
    text = """TN:first
SF:/s/a.c
FN:3,f
FN:10,20,g
FNDA:1,f
FNDA:7,g
DA:3,1
DA:4,0,abcd
DA:11,5000000
BRDA:11,0,0,1
BRF:1
BRH:1
LF:3
LH:2
end_of_record
TN:second
SF:/s/a.c
FN:3,f
DA:3,1
DA:4,1
end_of_record
"""
    d = formats.read_bytes(text.encode(), "t.info")
    key = lcov_read.module_key("/s/a.c")
    assert d.hits[(key, 3)] == {"first", "second"}
    assert d.hits[(key, 4)] == {"second"}
    assert len(d.hits[(key, 11)]) == lcov_read.MAX_COUNT  # clamped
    assert d.points[(key, 11)][0].function == "g"
    assert d.functions[("/s/a.c", "g")].end_line == 20
    out = formats.render(d, "lcov")
    assert "DA:3,2\n" in out and "DA:4,1\n" in out
    assert f"DA:11,{lcov_read.MAX_COUNT}\n" in out


@pytest.mark.parametrize("text,message", [
    ("SF:/a.c\nDA:1,1\n", "no end_of_record"),
    ("SF:/a.c\nDA:x,1\nend_of_record\n", "t.info:2: malformed DA"),
    ("SF:/a.c\nDA:1,-1\nend_of_record\n", "t.info:2: malformed DA"),
    ("DA:1,1\nend_of_record\n", "t.info:1: DA record before SF"),
    ("SF:/a.c\nFNDA:1\nend_of_record\n", "t.info:2: malformed FNDA"),
    ("SF:/a.c\nthis is not lcov\nend_of_record\n", "not an lcov line"),
])
def test_bad_input(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message) as e:
        formats.read_bytes(text.encode(), "t.info", "lcov")
    assert e.value.exit_status == 65
    assert "\n" not in str(e.value)


def test_not_utf8() -> None:
    with pytest.raises(FormatError, match="not UTF-8"):
        formats.read_bytes(b"TN:\nSF:/a\xff\n", "t.info")


def test_test_name_option() -> None:
    out = formats.render(basic(), "lcov", test_name="nightly")
    assert out.startswith("TN:nightly\n")
    with pytest.raises(ReportError) as e:
        formats.render(basic(), "lcov", test_name="a,b")
    assert e.value.exit_status == 64


def test_llvm_cov_lcov_is_read(tmp_path: Path) -> None:
    """A real producer: llvm-cov export -format=lcov for a program built
    with source-based coverage.  Every line and function it lists is read
    with the right reached/unreached state, and genhtml shows the same
    totals for its tracefile and for ours."""
    cc, profdata, cov = (need_tool("clang-19"), need_tool("llvm-profdata-19"),
                         need_tool("llvm-cov-19"))
    src = tmp_path / "prog.c"
    src.write_text("""#include <stdlib.h>
static int sq(int x) { return x * x; }
int never(int x) { return x + 1; }
int main(int argc, char **argv)
{
\tint s = 0;
\tfor (int i = 0; i < argc + 3; i++)
\t\ts += sq(i);
\tif (argc > 5)
\t\ts = never(s);
\treturn s == 14 ? 0 : 1;
}
""")
    exe = tmp_path / "prog"
    subprocess.run([cc, "-g", "-fprofile-instr-generate", "-fcoverage-mapping",
                    str(src), "-o", str(exe)], check=True)
    subprocess.run([str(exe)], check=True,
                   env={"LLVM_PROFILE_FILE": str(tmp_path / "p.profraw")})
    subprocess.run([profdata, "merge", "-o", str(tmp_path / "p.profdata"),
                    str(tmp_path / "p.profraw")], check=True)
    theirs = subprocess.run(
        [cov, "export", "-format=lcov", f"-instr-profile={tmp_path}/p.profdata",
         str(exe)], check=True, capture_output=True, text=True).stdout
    (tmp_path / "theirs.info").write_text(theirs)
    d = formats.read(tmp_path / "theirs.info")  # detected as lcov
    files = d.files()
    st = files[str(src)]
    da = {int(n): int(c) for n, c in re.findall(r"^DA:(\d+),(\d+)", theirs,
                                                re.M)}
    assert da and {n: bool(ls.hit) for n, ls in st.lines.items()} == {
        n: c > 0 for n, c in da.items()}
    fnda = {name: int(c) for c, name in re.findall(r"^FNDA:(\d+),(.+)$",
                                                   theirs, re.M)}
    assert {f.name: bool(f.hit) for f in st.functions.values()} == {
        n: c > 0 for n, c in fnda.items()}
    byname = {n.rsplit(":", 1)[-1]: f for n, f in st.functions.items()}
    assert not byname["never"].hit and byname["sq"].hit
    formats.write(d, "lcov", tmp_path / "ours.info")
    assert genhtml(tmp_path / "ours.info", tmp_path / "o1") == genhtml(
        tmp_path / "theirs.info", tmp_path / "o2")


def test_lcov_input_feeds_every_writer(tmp_path: Path) -> None:
    """Data read from lcov (no points, only lines and functions) goes
    through every writer: the Cobertura is valid, the HTML has the lines."""
    from test_formats_cobertura import DTD, parse

    d = formats.read_bytes(formats.render(basic(), "lcov").encode(), "x")
    assert DTD.validate(parse(formats.render(d, "cobertura")))
    formats.write(d, "html", tmp_path / "r")
    page = next((tmp_path / "r").glob("main.c.*.html")).read_text()
    assert '<tr class="c" id="L11">' in page  # covered...
    assert '<tr class="c" id="L10">' in page  # ...lcov has no partial lines
    assert '<tr class="u" id="L16">' in page
    text = formats.render(d, "text", functions="unreached")
    assert "cleanup" in text and "TOTAL" in text
