"""kcov-report, the command: convert, merge, summary, diff and tests on real
runs of the report fixture (data/fixprog.c, data/fixlib.c built by clang-19
and run under kcov-run on two inputs), the threshold bitmask, progress,
and every bad input with its one-line message, exit status and no output
left behind."""
from __future__ import annotations

import itertools
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reportfix import Run, fixture_runs
from reporthelp import VENV_BIN, Fixture, build_fixture, markers, run_fixture

from kcov.report import CoverageData, Frame, Module, ModuleMap, collect, read_pcs, write_pcs
from kcov.report.cli import EXIT_FUNCTION, EXIT_LINE, EXIT_POINT
from kcov.report.elf import read_elf
from kcov.report.formats import read as read_coverage
from kcov.report import query


def kcov_report() -> str:
    exe = VENV_BIN / "kcov-report"
    return str(exe) if exe.is_file() else "kcov-report"


def kr(*args: str | Path, cwd: Path | None = None, stdin: bytes | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kcov_report(), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, input=stdin.decode() if stdin is not None else None,
                          check=False, timeout=300)


def ok(p: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert p.returncode == 0, f"{p.args} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def failed(p: subprocess.CompletedProcess[str], status: int, message: str,
           *outputs: Path) -> None:
    """One line on stderr, the status, no traceback, no output and no
    temporary file beside the outputs."""
    assert p.returncode == status, f"{p.args} -> {p.returncode}, not {status}\n{p.stderr}"
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("kcov-report: "), p.stderr
    assert re.search(message, lines[0]), f"{message!r} not in {lines[0]!r}"
    assert "Traceback" not in p.stderr and p.stdout == ""
    for out in outputs:
        assert not out.exists(), out
        if out.parent.is_dir():
            assert not [f for f in os.listdir(out.parent) if f.startswith(f".{out.name}.")]


@pytest.fixture
def three(fx_clang: Fixture, tmp_path: Path) -> dict[str, Run]:
    """digits, letters, and a third run (digits "7": no overflow) that the
    other two do not fully contain."""
    runs = fixture_runs(fx_clang, tmp_path)
    pcs, mods = run_fixture(fx_clang, "digits", "7", tmp_path)
    dump = tmp_path / "seven.pcs"
    write_pcs(dump, {"seven": pcs}, mods)
    runs["seven"] = Run("seven", pcs, mods, dump)
    return runs


# -- the command itself -----------------------------------------------------------


def test_help_version_and_module(tmp_path: Path) -> None:
    p = ok(kr("--help"))
    for cmd in ("convert", "merge", "summary", "diff", "tests"):
        assert cmd in p.stdout
    assert "exit status:" in p.stdout and "--fail-under-point (8)" in p.stdout
    v = ok(kr("--version")).stdout
    mod = subprocess.run([sys.executable, "-m", "kcov.report", "--version"],
                         capture_output=True, text=True, check=False)
    assert mod.returncode == 0 and mod.stdout == v and re.match(r"kcov-report \(kcov\) \d", v)
    # Two help tiers: the rare options only with --help-all.
    short = ok(kr("convert", "--help")).stdout
    full = ok(kr("convert", "--help-all")).stdout
    for flag in ("--binary", "--fail-under-line", "--progress", "-o"):
        assert flag in short and flag in full
    for flag in ("--module", "--no-universe", "--force", "--title", "--test-name"):
        assert flag not in short and flag in full, flag


def test_usage_errors_are_64_not_a_threshold_bit(tmp_path: Path) -> None:
    failed(kr(), 64, r"required")
    failed(kr("bogus"), 64, r"invalid choice: 'bogus'")
    failed(kr("convert", "x.json"), 64, r"convert: the following arguments are required: -o")
    failed(kr("summary", "x.json", "--fail-under-line", "120"), 64, r"120 is not between 0 and 100")
    failed(kr("summary", "x.json", "--functions", "some"), 64, r"invalid choice: 'some'")
    failed(kr("tests", "x.json", "--baseline", "y.json"), 64, r"--baseline goes with --test")


# -- convert and summary ------------------------------------------------------------


def test_convert_every_format_in_one_run(fx_clang: Fixture, runs_clang: dict[str, Run],
                                         tmp_path: Path) -> None:
    dumps = [r.dump for r in runs_clang.values()]
    out = tmp_path / "out"
    ok(kr("convert", *dumps, "-o", out / "cov.json", "-o", out / "cov.info", "-o", out / "cov.xml",
          "-o", f"{out}/html/", "-o", out / "one.html", "-o", out / "sum.txt",
          "-o", f"json-summary:{out / 'summary.json'}", "-o", f"lcov:{out / 'other.dat'}"))
    want = collect(dumps)
    got = read_coverage(out / "cov.json")
    assert got == want
    lcov = read_coverage(out / "cov.info")
    assert lcov == read_coverage(out / "other.dat")
    # lcov keeps lines and functions, not test names.
    assert lcov.tests_reaching("prog_digits") == {""} and lcov.tests_reaching("prog_unreached") == set()
    assert (out / "cov.xml").read_text().startswith("<?xml")
    assert (out / "html" / "index.html").is_file() and (out / "one.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    t = want.totals()
    assert summary["format"] == "kcov-summary" and summary["tests"] == 2
    assert (summary["totals"]["points"], summary["totals"]["points_hit"]) == (t.points, t.hit)
    assert (summary["totals"]["lines"], summary["totals"]["lines_hit"]) == (t.lines, t.lines_hit)
    assert "TOTAL" in (out / "sum.txt").read_text()
    # --format names the format of an output whose name does not.
    ok(kr("convert", *dumps, "-o", tmp_path / "cov.dat", "--format", "lcov"))
    assert read_coverage(tmp_path / "cov.dat") == read_coverage(out / "cov.info")
    # "-" is stdout.
    p = ok(kr("convert", *dumps, "-o", "-", "--format", "json"))
    assert CoverageData.from_json(json.loads(p.stdout)) == want


def test_summary_lists_unreached_functions(runs_clang: dict[str, Run]) -> None:
    dumps = [r.dump for r in runs_clang.values()]
    p = ok(kr("summary", *dumps, "--functions", "unreached"))
    assert "TOTAL" in p.stdout and "fixprog.c" in p.stdout and "fixlib.c" in p.stdout
    tail = p.stdout.split("never reached", 1)[1]
    assert "prog_unreached" in tail and "lib_unreached" in tail
    assert "prog_digits" not in tail and "lib_checksum" not in tail
    t = collect(dumps).totals()
    total = next(ln for ln in p.stdout.splitlines() if ln.startswith("TOTAL")).split()
    assert total[1:3] == [str(t.points), str(t.hit)]


def test_thresholds_bitmask(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    dumps = [r.dump for r in runs_clang.values()]
    t = collect(dumps).totals()
    assert 0 < t.line_percent < 100 and 0 < t.function_percent < 100 and 0 < t.point_percent < 100
    cases = {
        (t.line_percent, t.function_percent, t.point_percent): 0,  # equal is not below
        (t.line_percent + 0.01, 0, 0): EXIT_LINE,
        (0, t.function_percent + 0.01, 0): EXIT_FUNCTION,
        (0, 0, t.point_percent + 0.01): EXIT_POINT,
        (100, 100, 100): EXIT_LINE | EXIT_FUNCTION | EXIT_POINT,
        (100, 0, 100): EXIT_LINE | EXIT_POINT,
    }
    for (line, func, point), status in cases.items():
        out = tmp_path / f"cov-{status}-{line:.3f}.json"
        p = kr("convert", *dumps, "-o", out, "--fail-under-line", repr(line),
               "--fail-under-function", repr(func), "--fail-under-point", repr(point))
        assert p.returncode == status, (line, func, point, p.stderr)
        assert out.is_file()  # written before the check, as gcovr does
        assert len(p.stderr.splitlines()) == bin(status).count("1"), p.stderr
        if status & EXIT_LINE:
            assert f"line coverage {t.line_percent:.2f}% ({t.lines_hit} of {t.lines} lines)" \
                in p.stderr
    assert EXIT_LINE | EXIT_FUNCTION | EXIT_POINT < 64
    # summary and merge take them too; no threshold: 0.
    assert kr("summary", *dumps, "--fail-under-function", "100").returncode == EXIT_FUNCTION
    assert kr("merge", *dumps, "-o", tmp_path / "m.json",
              "--fail-under-point", "100").returncode == EXIT_POINT
    ok(kr("summary", *dumps))


def test_progress_on_a_terminal_or_when_asked(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    dumps = [r.dump for r in runs_clang.values()]
    quiet = ok(kr("convert", *dumps, "-o", tmp_path / "a.json"))
    assert quiet.stderr == ""
    asked = ok(kr("convert", *dumps, "-o", tmp_path / "b.json", "--progress"))
    steps = asked.stderr.splitlines()
    assert any(re.match(r"kcov-report: \[ *\d+\.\d+s\] symbolising \d+ points of fixprog", s)
               for s in steps), steps
    assert any("writing json to" in s for s in steps)
    # stderr a terminal: progress without asking.
    master, slave = pty.openpty()
    try:
        p = subprocess.run([kcov_report(), "convert", *map(str, dumps), "-o", str(tmp_path / "c.json")],
                           stderr=slave, stdout=subprocess.PIPE, check=False, timeout=300)
        os.close(slave)
        slave = -1
        text = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            text += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0
    assert b"symbolising" in text, text
    assert ok(kr("convert", *dumps, "-o", tmp_path / "d.json", "-q", "--progress")).stderr == ""


# -- merge ---------------------------------------------------------------------------


def test_merge_is_associative_commutative_idempotent(three: dict[str, Run], tmp_path: Path) -> None:
    """Byte-identical outputs whatever the order and grouping, for the
    JSON and the lcov form; a merged file merges again."""
    js = {}
    info = {}
    for name, r in three.items():
        js[name] = tmp_path / f"{name}.json"
        info[name] = tmp_path / f"{name}.info"
        ok(kr("convert", r.dump, "-o", js[name], "-o", info[name]))
    names = list(three)
    for kind, files, ext in (("json", js, "json"), ("lcov", info, "info")):
        outs = []
        for i, order in enumerate(itertools.permutations(names)):
            out = tmp_path / f"{kind}-perm{i}.{ext}"
            ok(kr("merge", *(files[n] for n in order), "-o", out))
            outs.append(out.read_bytes())
        assert len(set(outs)) == 1, kind
        abc = outs[0]
        # (A+B)+C and A+(B+C): merged files merge again.
        ab, bc = tmp_path / f"{kind}-ab.{ext}", tmp_path / f"{kind}-bc.{ext}"
        ok(kr("merge", files[names[0]], files[names[1]], "-o", ab))
        ok(kr("merge", files[names[1]], files[names[2]], "-o", bc))
        left, right = tmp_path / f"{kind}-l.{ext}", tmp_path / f"{kind}-r.{ext}"
        ok(kr("merge", ab, files[names[2]], "-o", left))
        ok(kr("merge", files[names[0]], bc, "-o", right))
        assert left.read_bytes() == abc and right.read_bytes() == abc, kind
        # Idempotent: A+A = A, (A+B+C)+A = A+B+C.
        aa = tmp_path / f"{kind}-aa.{ext}"
        ok(kr("merge", files[names[0]], files[names[0]], "-o", aa))
        assert aa.read_bytes() == files[names[0]].read_bytes(), kind
        again = tmp_path / f"{kind}-again.{ext}"
        ok(kr("merge", left, files[names[0]], right, "-o", again))
        assert again.read_bytes() == abc, kind
    # The merged JSON is the union: each test keeps what it reached.
    merged = CoverageData.from_json(json.loads((tmp_path / "json-l.json").read_text()))
    assert merged.tests == {"digits", "letters", "seven"}
    assert merged.tests_reaching("prog_digits") == {"digits", "seven"}
    assert merged.tests_reaching("lib_note_overflow") == {"digits"}
    # Dumps in, in any order, give the same bytes as their converted JSON.
    dumps = [r.dump for r in three.values()]
    d1, d2 = tmp_path / "d1.json", tmp_path / "d2.json"
    ok(kr("merge", *dumps, "-o", d1))
    ok(kr("merge", *reversed(dumps), "-o", d2))
    assert d1.read_bytes() == d2.read_bytes() == (tmp_path / "json-l.json").read_bytes()
    # A mix: one dump and two JSON files.
    mix = tmp_path / "mix.json"
    ok(kr("merge", js[names[2]], three[names[0]].dump, js[names[1]], "-o", mix))
    assert mix.read_bytes() == d1.read_bytes()


def test_merge_writes_only_mergeable_formats(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    out = tmp_path / "m.html"
    failed(kr("merge", runs_clang["digits"].dump, "-o", out), 64,
           r"merge writes a format that can be merged again \(json, lcov\); use convert")


# -- diff and tests -----------------------------------------------------------------


def test_diff_of_two_runs(fx_clang: Fixture, runs_clang: dict[str, Run], tmp_path: Path) -> None:
    d, lt = runs_clang["digits"].dump, runs_clang["letters"].dump
    p = ok(kr("diff", d, lt))
    text = p.stdout
    head, rest = text.split("\n", 1)
    a, b = collect(d), collect(lt)
    new = {pid for pid in a.hits if pid not in b.hits}
    assert head == f"reached by {d} and not by {lt}: {len(new)} points"
    never = rest.split(f"functions {lt} never reached", 1)[1].split("\nfunctions ", 1)[0]
    never = never.split("\nlines ", 1)[0]
    for fn in ("prog_digits", "clamp_digit", "lib_note_overflow"):
        assert re.search(rf"  \S+:\d+  {fn}  \d+ of \d+ points?  \[digits\]", never), (fn, text)
    for fn in ("prog_letters", "lib_checksum", "prog_unreached"):
        assert fn not in never, (fn, text)
    # prog_run: both reached it, digits reached its other branch.
    assert re.search(rf"functions {re.escape(str(lt))} reached, with points it did not \(\d+\):\n"
                     r"(  .*\n)*  fixprog\.c:\d+  prog_run  \+\d+ of \d+ points", text), text
    # Lines: the markers of what only digits reached.
    mark = markers(fx_clang.prog_src)
    lines = re.search(r"\n  fixprog\.c +(.*)\n", text.split(f"lines {lt} never reached", 1)[1])
    assert lines is not None, text
    spans = [tuple(map(int, s.split("-"))) for s in lines.group(1).split(", ")]
    listed = {n for s in spans for n in range(s[0], s[-1] + 1)}
    assert {mark["digits_call"], mark["clamp_big"], mark["run_digits"]} <= listed, (listed, mark)
    assert mark["letters_lower"] not in listed and mark["run_letters"] not in listed
    # The other way round.
    back = ok(kr("diff", lt, d)).stdout
    assert "prog_letters" in back and "prog_digits" not in back
    # -o: A's universe with only the new hits, in any format.
    out = tmp_path / "diff.json"
    ok(kr("diff", d, lt, "-o", out, "-q"))
    got = read_coverage(out)
    assert set(got.hits) == new and set(got.points) == set(a.points)
    assert got.tests_reaching("prog_digits") == {"digits"}
    assert got.tests_reaching("prog_letters") == set()
    # Same run on both sides: nothing new.
    same = ok(kr("diff", d, d)).stdout
    assert same.startswith(f"reached by {d} and not by {d}: 0 points") and "functions" not in same


def test_tests_which_reach_and_what_added(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    both = tmp_path / "both.json"
    ok(kr("merge", *(r.dump for r in runs_clang.values()), "-o", both))
    assert ok(kr("tests", both, "--function", "prog_digits")).stdout == "digits\n"
    assert ok(kr("tests", both, "--function", "lib_checksum")).stdout == "digits\nletters\n"
    assert ok(kr("tests", both, "--function", "fixlib.c:lib_checksum")).stdout == "digits\nletters\n"
    assert ok(kr("tests", both, "--function", "prog_unreached")).stdout == ""
    failed(kr("tests", both, "--function", "prog_digit"), 65,
           r"no function 'prog_digit' in the coverage data \(did you mean 'prog_digits'")
    failed(kr("tests", both, "--function", "nofile.c:lib_checksum"), 65, r"no function")
    failed(kr("tests", both, "--test", "digit"), 65, r"no test 'digit' .*did you mean 'digits'")
    # What digits added over letters: as the diff of the two runs.
    added = ok(kr("tests", both, "--test", "digits")).stdout
    assert added.startswith("added by digits: reached by it and not by any other test: ")
    first = added.split("functions no other test reached", 1)[1].split("\nfunctions", 1)[0]
    for fn in ("prog_digits", "clamp_digit", "lib_note_overflow"):
        assert fn in first
    assert "lib_checksum" not in first and "prog_letters" not in added
    diff = ok(kr("diff", runs_clang["digits"].dump, runs_clang["letters"].dump)).stdout
    assert added.split(":", 2)[2].split("\n", 1)[0] == diff.split(":", 1)[1].split("\n", 1)[0]
    out = tmp_path / "added.json"
    ok(kr("tests", both, "--test", "digits", "-o", out))
    data = read_coverage(both)
    only = {pid for pid, t in data.hits.items() if t == {"digits"}}
    assert set(read_coverage(out).hits) == only
    # Against a baseline run instead of the other tests.
    base = tmp_path / "letters.json"
    ok(kr("convert", runs_clang["letters"].dump, "-o", base))
    vs = ok(kr("tests", both, "--test", "letters", "--baseline", base)).stdout
    assert vs.startswith("added by letters: reached by it and not by the baseline: 0 points")
    # The table: per test, points, points only it reached, functions.
    table = ok(kr("tests", both)).stdout.splitlines()
    assert table[0].split() == ["test", "points", "only", "it", "functions"]
    rows = {ln.split()[0]: list(map(int, ln.split()[1:])) for ln in table[1:]}
    for test in ("digits", "letters"):
        pts = {pid for pid, t in data.hits.items() if test in t}
        uniq = {pid for pid, t in data.hits.items() if t == {test}}
        funcs = {(f.file, f.function) for pid in pts for f in data.points[pid]}  # inlined too
        assert rows[test] == [len(pts), len(uniq), len(funcs)], (test, rows)
    assert rows["digits"][2] > rows["letters"][2] >= 3


def test_stdin_and_lcov_inputs(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    js = tmp_path / "d.json"
    info = tmp_path / "d.info"
    ok(kr("convert", runs_clang["digits"].dump, "-o", js, "-o", info))
    p = ok(kr("summary", "-", stdin=js.read_bytes()))
    assert "TOTAL" in p.stdout
    assert ok(kr("tests", info, "--function", "prog_digits")).stdout == '""\n'  # lcov: no names
    failed(kr("summary", "-", stdin=runs_clang["digits"].dump.read_bytes()), 64,
           r"read PC dumps from a file")


# -- finding binaries -----------------------------------------------------------------


def test_binaries_directory_and_bare_pcs(fx_clang: Fixture, runs_clang: dict[str, Run],
                                         tmp_path: Path) -> None:
    """Binaries moved since the run: --binaries DIR finds them by build id
    (under other names); --binary names one."""
    r = runs_clang["letters"]
    d = read_pcs(r.dump)
    gone = tmp_path / "gone"
    mods = [ModuleMap(m.start, m.end, m.file_offset, m.kind, m.build_id,
                      str(gone / Path(m.path).name))
            if m.path in (str(fx_clang.prog), str(fx_clang.lib)) else m for m in d.modules]
    dump = tmp_path / "moved.pcs"
    write_pcs(dump, d.tests, mods)
    out = tmp_path / "x.json"
    failed(kr("convert", dump, "-o", out), 66, r"gone/fixprog: no such file \(\d+ PCs were recorded")
    bins = tmp_path / "bins" / "sub"
    bins.mkdir(parents=True)
    shutil.copy2(fx_clang.prog, bins / "prog-copy")
    shutil.copy2(fx_clang.lib, bins / "lib-copy.so")
    (bins / "notes.txt").write_text("not a binary\n")
    ok(kr("convert", dump, "--binaries", tmp_path / "bins", "-o", out))
    got = read_coverage(out)
    assert sorted(m.path for m in got.modules.values()) == sorted(
        [str(bins / "lib-copy.so"), str(bins / "prog-copy")])
    assert got.tests_reaching("prog_letters") == {"letters"}
    assert got.points == collect(r.dump).points
    # Bare PCs (rawcover) of the PIE, placed with --module BINARY@BIAS.
    exe = [m for m in r.modules if m.path == str(fx_clang.prog)]
    text = next(m for m in exe if any(m.start <= pc - 5 < m.end for pc in r.pcs.tolist()))
    off, okk = read_elf(fx_clang.prog).offsets_from_file([text.file_offset])
    assert okk[0]
    bias = text.start - int(off[0])
    raw = tmp_path / "rawcover"
    raw.write_text("".join(f"0x{pc:x}\n" for pc in r.pcs.tolist() if text.start <= pc - 5 < text.end))
    failed(kr("convert", raw, "-o", out), 65, r"rawcover: bare PCs .*--module BINARY@BASE")
    ok(kr("convert", raw, "--module", f"{fx_clang.prog}@{bias:#x}", "-o", out))
    assert read_coverage(out).tests_reaching("prog_letters") == {""}


# -- bad input -------------------------------------------------------------------------


def test_missing_inputs_and_wrong_file_types(fx_clang: Fixture, runs_clang: dict[str, Run],
                                             tmp_path: Path) -> None:
    out = tmp_path / "o" / "x.json"
    dump = runs_clang["digits"].dump
    failed(kr("convert", tmp_path / "nothere.pcs", "-o", out), 66, r"nothere\.pcs: no such file")
    failed(kr("convert", tmp_path, "-o", out), 66, r"is a directory")
    failed(kr("convert", fx_clang.prog, "-o", out), 65,
           r"fixprog: an ELF binary, not coverage data \(give binaries with --binary\)")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello, world\n")
    failed(kr("convert", junk, "-o", out), 65, r"junk\.txt: unknown coverage format")
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}\n')
    failed(kr("convert", other, "-o", out), 65, r"other\.json: JSON, but not a kcov coverage file")
    failed(kr("convert", dump, "--binary", fx_clang.prog_src, "-o", out), 65,
           r"fixprog\.c: not an ELF file")
    failed(kr("convert", dump, "--binary", tmp_path / "nope.so", "-o", out), 66, r"nope\.so")
    failed(kr("convert", dump, "--binaries", tmp_path / "nodir", "-o", out), 66,
           r"--binaries \S+nodir: no such directory")
    bad = tmp_path / "bad.pcs"
    bad.write_text("kcov-pcs v1\nmodule zz 0x1 0 exe - /x\n")
    failed(kr("convert", bad, "-o", out), 65, r"bad\.pcs:2: module addresses must be hex")
    inv = tmp_path / "inv.json"
    inv.write_text("{}")
    js = tmp_path / "d.json"
    ok(kr("convert", dump, "-o", js))
    failed(kr("convert", js, "--inventory", inv, "-o", out), 64, r"--inventory needs a kcov-pcs")


def test_stripped_and_other_builds(fx_clang: Fixture, runs_clang: dict[str, Run],
                                   tmp_path: Path) -> None:
    nodebug = build_fixture("clang-19", tmp_path / "nodebug", debug=False)
    (tmp_path / "runs").mkdir()
    r = fixture_runs(nodebug, tmp_path / "runs")["digits"]
    out = tmp_path / "x.json"
    failed(kr("convert", r.dump, "-o", out), 65, r"no DWARF line info in \S+/fixprog: rebuild with -g")
    # The -g0 build given for the run of the -g build: another build id.
    failed(kr("convert", runs_clang["digits"].dump, "--binary", nodebug.prog, "-o", out), 65,
           r"fixprog: build id [0-9a-f]+, but the run's fixprog had [0-9a-f]+")


def test_pcs_that_match_no_module_or_no_callback(fx_clang: Fixture, runs_clang: dict[str, Run],
                                                 tmp_path: Path) -> None:
    d = read_pcs(runs_clang["digits"].dump)
    out = tmp_path / "x.json"
    far = [ModuleMap(m.start + (1 << 40), m.end + (1 << 40), m.file_offset, m.kind, m.build_id,
                     m.path) for m in d.modules]
    dump = tmp_path / "far.pcs"
    write_pcs(dump, d.tests, far)
    failed(kr("convert", dump, "-o", out), 65, r"far\.pcs: \d+ of \d+ PCs lie in no module")
    shifted = [ModuleMap(m.start - 0x40, m.end - 0x40, m.file_offset, m.kind, m.build_id, m.path)
               if m.path == str(fx_clang.prog) else m for m in d.modules]
    dump = tmp_path / "shifted.pcs"
    write_pcs(dump, d.tests, shifted)
    failed(kr("convert", dump, "-o", out), 65, r"do not match coverage callbacks in fixprog: "
                                                r"wrong binary or base\?")
    # --force keeps going.
    ok(kr("convert", dump, "-o", out, "--force", "-q"))
    assert read_coverage(out).unmatched()


def test_unknown_formats_and_unwritable_outputs(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    dump = runs_clang["digits"].dump
    tmp_path = tmp_path / "outs"
    tmp_path.mkdir()
    failed(kr("convert", dump, "-o", tmp_path / "x.foo"), 64,
           r"cannot tell the format of \S+x\.foo from its name: give --format")
    failed(kr("convert", dump, "-o", tmp_path / "x.json", "--format", "docx"), 64,
           r"unknown format 'docx' \(known: json")
    failed(kr("convert", dump, "-o", tmp_path / "x.json", "--title", "T"), 64,
           r"--title applies to html output only")
    # A file where a directory should be; a directory where a file should be.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    failed(kr("convert", dump, "-o", blocker / "x.json"), 73, r"cannot write \S+/file/x\.json")
    (tmp_path / "d.json").mkdir()
    failed(kr("convert", dump, "-o", tmp_path / "d.json"), 73, r"d\.json: is a directory")
    # A directory that is not an HTML report is not replaced.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    p = kr("convert", dump, "-o", f"html:{mine}")
    failed(p, 73, r"not a kcov html report")
    assert (mine / "keep.txt").read_text() == "keep" and len(list(mine.iterdir())) == 1
    # An earlier output survives a failed run untouched, with no leftovers.
    old = tmp_path / "old.json"
    old.write_text("previous\n")
    p = kr("convert", tmp_path / "nothere.pcs", "-o", old)
    assert p.returncode == 66 and old.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["file", "d.json", "mine", "old.json"])


def test_no_traceback_on_a_broken_pipe(runs_clang: dict[str, Run], tmp_path: Path) -> None:
    js = tmp_path / "d.json"
    ok(kr("convert", runs_clang["digits"].dump, "-o", js))
    p = subprocess.run(f"{kcov_report()} convert {js} -o - --format json | true; "
                       "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                       capture_output=True, text=True, check=False)
    assert "Traceback" not in p.stderr and p.stdout.strip() in ("0", "141"), p


def test_function_names_with_files_and_cxx() -> None:
    """--function NAME, FILE:NAME (the path or its tail) and C++ names
    (which contain "::"), on data built in memory."""
    d = CoverageData()
    d.add_module(Module("name:m", "m"))
    d.add_point("name:m", 1, [Frame("f", "/src/a/x.c", 3)])
    d.add_point("name:m", 2, [Frame("f", "/src/b/x.c", 4)])
    d.add_point("name:m", 3, [Frame("ns::g(int)", "/src/a/y.cc", 5)])
    d.add_point("name:m", 4, [Frame("h", "/src/a/x.c", 9)])
    d.add_hit("name:m", 1, "t1")
    d.add_hit("name:m", 2, "t2")
    d.add_hit("name:m", 3, "t3")
    assert query.tests_reaching(d, "f") == {"t1", "t2"}
    assert query.tests_reaching(d, "a/x.c:f") == {"t1"} and query.tests_reaching(d, "/src/b/x.c:f") == {"t2"}
    assert query.tests_reaching(d, "ns::g(int)") == {"t3"}
    assert query.tests_reaching(d, "h") == set()
    for bad in ("c/x.c:f", "x.c:g", "nothing"):
        with pytest.raises(query.UnknownNameError) as ei:
            query.tests_reaching(d, bad)
        assert ei.value.exit_status == 65
