"""Fuzzing the file readers users feed (issue 7, point 4), and their CLIs.

Readers: kcov-pcs dumps, bare PCs (with --module), kcov JSON and lcov, the
inputs of kcov-report; raw profiles (.profraw v8 and v10) and indexed ones
(.profdata), the inputs of kcov.profile and `kcov-build pgo merge`; and
.sancov, which kcov.profile writes.  The seeds are real files
(fuzzhelp.build_corpus); the malformed inputs are

* every truncation at a structural boundary of every seed (and one byte
  either side of it), and every raw profile header field set to edge
  values;
* hypothesis mutations of the seeds: bytes (flips, insertions, deletions,
  bad UTF-8, very long lines), lines and tokens, JSON nodes, header fields,
  versions and magics, and the contents of files of another type;
* random command lines from each CLI's own vocabulary.

Most run in this process, through the Python API and through each CLI's
main(), each under a deadline and a bound on the memory it may add (so a
hang or a runaway allocation fails the test, not the machine); a sample
runs the installed CLIs in a child process, where a crash is a signal and
a hang a timeout.  The contract: a malformed input gets a one-line error with a
documented exit status -- never a traceback, a signal or a hang; an input
that a mutation left valid succeeds, with output that reads back (and, for
the CLIs, the same answer as the API); an output file is either complete
or the old one untouched, with no temporary file left.  Budgets are fixed
and the search derandomized; KCOV_FUZZ_EXAMPLES scales them.  The
executions per reader are printed at the end of the run (conftest.py).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fuzzhelp as F
from fuzzhelp import (PGO_STATUS, PROFILE, PROFILE_STATUS, REPORT, REPORT_STATUS, Corpus, budget,
                      check_cli, check_no_temporaries, check_output_file, check_untouched, count, mutate,
                      mutations, run_inprocess, run_subprocess, tree)

REPORT_KINDS = ("pcs", "bare", "json", "lcov")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return F.build_corpus(tmp_path_factory.mktemp("fuzz-corpus"))


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-work")


class Workdir:
    """A fresh directory per execution (removed after), with `out/` holding
    an earlier output that a failed run must leave as it was."""

    def __init__(self, root: Path, c: Corpus) -> None:
        self.dir = Path(tempfile.mkdtemp(dir=root, prefix="ex"))
        self.out = self.dir / "out"
        self.out.mkdir()
        (self.out / "prev.json").write_bytes(c.of("json")[0].data)
        (self.out / "prev.info").write_bytes(c.of("lcov")[0].data)
        (self.out / "prev.profdata").write_bytes(c.of("profdata")[0].data)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def workdir(root: Path, c: Corpus) -> Iterator[Workdir]:
    w = Workdir(root, c)
    try:
        yield w
    finally:
        w.close()


def _input_name(kind: str) -> str:
    return {"pcs": "in.pcs", "bare": "in.txt", "json": "in.json", "lcov": "in.info", "profraw": "in.profraw",
            "profdata": "in.profdata", "sancov": "in.1.sancov"}[kind]


# --- kcov-report readers ----------------------------------------------------------------


def api_report(c: Corpus, kind: str, path: Path) -> tuple[Any, int]:
    """(CoverageData, 0) or (None, exit status of the reader's error)."""
    from kcov.report import CoverageData, ReportError, collect, formats, read_pcs

    try:
        if kind == "pcs":
            dump = read_pcs(path)
            assert all(v.dtype == np.uint64 for v in dump.tests.values())
            data = collect(path)
        elif kind == "bare":
            mods = F.modules_of(c)
            dump = read_pcs(path, mods)
            assert all(v.dtype == np.uint64 for v in dump.tests.values())
            data = collect(path, modules=mods)
        else:
            data = formats.read(path)
    except ReportError as e:
        return None, F.report_error(e)
    # What was read goes through the interchange format unchanged, and
    # every writer takes it (a writer may refuse with a one-line error).
    assert CoverageData.from_json(json.loads(data.dumps())) == data, "JSON round trip changed the data"
    for fmt in ("text", "lcov", "cobertura", "json-summary"):
        try:
            text = formats.render(data, fmt)
        except ReportError as e:
            F.report_error(e)
            continue
        if fmt == "lcov":  # kcov's lcov reads back
            formats.read_bytes(text.encode(), "lcov output", "lcov")
        elif fmt == "cobertura":
            import xml.etree.ElementTree as ET

            ET.fromstring(text.encode())
    return data, 0


#: kcov-report command lines around one input (IN) and outputs in out/;
#: the first six read IN alone (their output is compared with the API's).
REPORT_COMMANDS = [
    ("convert", "IN", "-o", "out/prev.json"),
    ("convert", "IN", "-o", "out/r.info", "-o", "out/r.json"),
    ("merge", "IN", "-o", "out/prev.info", "-o", "out/m.json"),
    ("convert", "IN", "-o", "out/r.xml", "-o", "out/r.json", "--fail-under-line", "50"),
    ("convert", "IN", "-o", "html:out/r.html", "-o", "out/r.json"),
    ("convert", "IN", "-o", "out/site/", "-o", "out/r.json", "-q"),
    ("summary", "IN", "--functions", "all"),
    ("convert", "IN", "-o", "out/site2/"),
    ("convert", "IN", "-o", "html:out/one.html", "--title", "t"),
    ("tests", "IN"),
    ("tests", "IN", "--function", "main"),
    ("diff", "IN", "SEED", "-o", "out/d.json"),
    ("diff", "SEED", "IN"),
    ("convert", "IN", "SEED", "-o", "json-summary:out/s.json", "--fail-under-point", "99"),
]
SINGLE_INPUT = 6


def _outputs(argv: list[str]) -> list[tuple[Path, str]]:
    from kcov.report import formats

    outs = []
    for i, a in enumerate(argv):
        if a in ("-o", "--output") and i + 1 < len(argv):
            spec = argv[i + 1]
            name, sep, rest = spec.partition(":")
            if sep and name in formats.FORMATS:
                outs.append((Path(rest), name))
            elif spec.endswith("/"):
                outs.append((Path(spec), "html"))
            else:
                outs.append((Path(spec), formats.for_path(spec) or "?"))
    return outs


def report_argv(c: Corpus, kind: str, cmd: int, seed_path: Path) -> list[str]:
    argv = [a.replace("IN", _input_name(kind)).replace("SEED", str(seed_path))
            for a in REPORT_COMMANDS[cmd % len(REPORT_COMMANDS)]]
    if kind == "bare":
        for m in c.bare_modules:
            argv += ["--module", m]
    return argv


def check_report_run(c: Corpus, w: Workdir, kind: str, argv: list[str], r: F.CliResult,
                     before: dict[str, bytes | None], api: tuple[Any, int] | None, single: bool) -> None:
    """The outcome of one kcov-report run on a mutated input in w."""
    from kcov.report import ReportError
    from kcov.report.inputs import classify

    what = f"kcov-report {' '.join(argv)}"
    check_cli(r, REPORT, REPORT_STATUS, what)
    check_no_temporaries(w.dir, what)
    outs = _outputs(argv)
    if r.status >= 64:
        check_untouched(before, w.out, what)
    else:
        for path, fmt in outs:
            check_output_file(w.dir / path, fmt)
    if api is None or not single:
        return
    # The CLI reads as the API does, when it takes the input for the same kind.
    try:
        seen = classify(str(w.dir / _input_name(kind)))[0]
    except ReportError:
        seen = None
    if seen != kind:
        return
    data, status = api
    if data is None:
        assert r.status == status, f"{what}: the API failed with {status}, the CLI with {r.status}:\n{r.stderr}"
        return
    assert r.status < 64, f"{what}: the API read it, the CLI failed:\n{r.stderr}"
    for path, fmt in outs:
        if fmt == "json":
            got = check_output_file(w.dir / path, "json")
            if kind in ("json", "lcov"):
                assert got == data, f"{what}: the output is not what the API read"
            else:  # the CLI also lists the dump's tests that reached nothing
                assert (got.points, got.hits, got.modules) == (data.points, data.hits, data.modules)


def exercise_report(c: Corpus, root: Path, kind: str, data: bytes, cmd: int | None, how: str = "inprocess") -> None:
    """One malformed input through the API and one kcov-report command."""
    from kcov.report.cli import main

    with workdir(root, c) as w:
        inp = w.dir / _input_name(kind)
        inp.write_bytes(data)
        with F.bounded():
            api = api_report(c, kind, inp)
        count(kind, "api")
        if cmd is None:
            return
        seed = c.root / c.pick(kind, cmd).name
        argv = report_argv(c, kind, cmd, seed)
        before = tree(w.out)
        if how == "inprocess":
            r = run_inprocess(main, argv, w.dir)
        else:
            r = run_subprocess([F.BIN / "kcov-report", *argv], w.dir)
        count(kind, how)
        check_report_run(c, w, kind, argv, r, before, api, cmd % len(REPORT_COMMANDS) < SINGLE_INPUT)


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_truncation_at_every_boundary_report(corpus: Corpus, scratch: Path, kind: str) -> None:
    """Every seed cut at each line end, separator and structural boundary
    (and one byte either side): the API, and every 4th through the CLI."""
    k = 0
    for seed in corpus.of(kind):
        cuts = sorted({b + d for b in seed.boundaries for d in (-1, 0, 1) if 0 <= b + d < len(seed.data)})
        for cut in cuts[::max(1, len(cuts) // F.scaled(120))]:
            exercise_report(corpus, scratch, kind, seed.data[:cut], k if k % 4 == 0 else None)
            k += 1
    assert F.executions(kind) >= k


def _report_fuzz(kind: str, n: int) -> Any:
    def run(corpus: Corpus, scratch: Path, seed: int, ops: list[Any], cmd: int) -> None:
        s = corpus.pick(kind, seed)
        exercise_report(corpus, scratch, kind, mutate(s, ops, corpus), cmd)

    run.__name__ = run.__qualname__ = f"test_fuzz_{kind}"
    run.__doc__ = f"Mutated {kind} seeds through the API and kcov-report's main()."
    return budget(n)(given(seed=st.integers(0, 100), ops=mutations(kind), cmd=st.integers(0, 1000))(run))


test_fuzz_pcs = _report_fuzz("pcs", 350)
test_fuzz_bare = _report_fuzz("bare", 200)
test_fuzz_json = _report_fuzz("json", 800)
test_fuzz_lcov = _report_fuzz("lcov", 800)


@budget(30)
@given(kind=st.sampled_from(REPORT_KINDS), seed=st.integers(0, 100), cmd=st.integers(0, 1000), data=st.data())
def test_fuzz_report_subprocess(corpus: Corpus, scratch: Path, kind: str, seed: int, cmd: int,
                                data: st.DataObject) -> None:
    """A sample through the installed kcov-report: no signal, no hang."""
    s = corpus.pick(kind, seed)
    ops = data.draw(mutations(kind))
    exercise_report(corpus, scratch, kind, mutate(s, ops, corpus), cmd, how="subprocess")


# --- Raw profiles -------------------------------------------------------------------------


def api_profraw(data: bytes) -> tuple[list[Any] | None, int]:
    from kcov.profile import ProfileError, raw

    try:
        profs = raw.parse(data, "in.profraw")
    except ProfileError as e:
        return None, F.profile_error(e)
    # What the reader vouches for lies inside the file, back to back.
    assert profs and profs[0].offset == 0
    end = 0
    for p in profs:
        assert p.offset >= end and p.size > 0 and p.offset + p.size <= len(data)
        assert p.version == profs[0].version and p.version in raw.SUPPORTED_VERSIONS
        assert max(p.num_data, p.num_counters, p.names_size) <= len(data)
        assert data[end:p.offset].strip(b"\0") == b""
        end = p.offset + p.size
    assert data[end:].strip(b"\0") == b""
    return profs, 0


def exercise_profraw(c: Corpus, root: Path, data: bytes, cli: bool = True) -> None:
    from kcov.profile.__main__ import main

    with F.bounded():
        profs, status = api_profraw(data)
    count("profraw", "api")
    if not cli:
        return
    with workdir(root, c) as w:
        (w.dir / "in.profraw").write_bytes(data)
        r = run_inprocess(main, ["info", "in.profraw"], w.dir)
        count("profraw", "inprocess")
        check_cli(r, PROFILE, PROFILE_STATUS, "info")
        if profs is None:
            assert r.status == status, (r.status, status, r.stderr)
        else:
            assert r.status == 0 and len(r.stdout.splitlines()) == len(profs), r.stdout


def test_truncation_at_every_boundary_profraw(corpus: Corpus, scratch: Path) -> None:
    """Every raw profile cut at each header field, binary ID, record and
    section boundary, and one byte either side."""
    k = 0
    for seed in corpus.of("profraw"):
        for cut in sorted({b + d for b in seed.boundaries for d in (-1, 0, 1) if 0 <= b + d < len(seed.data)}):
            exercise_profraw(corpus, scratch, seed.data[:cut], cli=k % 3 == 0)
            k += 1
    assert k > 100 and F.executions("profraw") >= k


def test_profraw_header_fields(corpus: Corpus, scratch: Path) -> None:
    """Every header field of every raw profile in every seed, set to each
    edge value (0, 1, one off, doubled, 2^32, 2^40, 2^63, ~0, the file's
    length...), and every version, variant and magic."""
    from kcov.profile import raw

    k = 0
    for seed in corpus.of("profraw"):
        for i, (_, version, _) in enumerate(F.profraw_layout(seed.data)):
            for f in range(len(raw._header_fields(version))):
                for v in F.FIELD_VALUES:
                    exercise_profraw(corpus, scratch, mutate(seed, [("field", i, f, v)], corpus), cli=k % 4 == 0)
                    k += 1
            for v in (0, 5, 7, 8, 9, 10, 11, 0xFFFFFFFF, "byte", "temporal", "dbg", "magic32", "magic-be",
                      "indexed"):
                exercise_profraw(corpus, scratch, mutate(seed, [("version", i, v)], corpus))
                k += 1
    assert k > 500


@budget(2500)
@given(seed=st.integers(0, 100), ops=mutations("profraw"))
def test_fuzz_profraw(corpus: Corpus, scratch: Path, seed: int, ops: list[Any]) -> None:
    s = corpus.pick("profraw", seed)
    exercise_profraw(corpus, scratch, mutate(s, ops, corpus), cli=seed % 4 == 0)


def exercise_profile_tools(c: Corpus, root: Path, kind: str, data: bytes, action: int, seed: F.Seed,
                           how: str = "inprocess") -> None:
    """A mutated raw or indexed profile through the llvm tools: merge (the
    output replaces out/prev.profdata or leaves it), show, report, and
    kcov-build pgo merge."""
    from kcov.profile.__main__ import main as profile_main
    from kcov_build.pgo import main as pgo_main

    with workdir(root, c) as w:
        inp = w.dir / _input_name(kind)
        inp.write_bytes(data)
        good = c.root / "prof" / "fz19.profraw"
        binary = c.prof_binary[seed.name]
        act = action % 6
        if act == 0:
            argv, prog, statuses, m = ["merge", "-o", "out/prev.profdata", inp.name], PROFILE, PROFILE_STATUS, "profile"
        elif act == 1:
            argv, prog, statuses, m = ["show", inp.name], PROFILE, PROFILE_STATUS, "profile"
        elif act == 2:
            argv, prog, statuses, m = (["report", "--format", "lcov", "-o", "out/r.info", "--profile", inp.name,
                                        str(binary)], PROFILE, PROFILE_STATUS, "profile")
        elif act == 3:
            argv, prog, statuses, m = (["pgo", "merge", "-o", "out/prev.profdata", inp.name], F.KCOV_BUILD,
                                       PGO_STATUS, "pgo")
        elif act == 4:  # a good raw profile with the bad one
            argv, prog, statuses, m = (["merge", "--allow-mixed-binaries", "-o", "out/prev.profdata", str(good),
                                        inp.name], PROFILE, PROFILE_STATUS, "profile")
        else:
            argv, prog, statuses, m = ["info", inp.name], PROFILE, PROFILE_STATUS, "profile"
        before = tree(w.out)
        if how == "inprocess":
            r = run_inprocess(pgo_main if m == "pgo" else profile_main, argv[1:] if m == "pgo" else argv, w.dir)
        elif m == "pgo":
            r = run_subprocess([F.BIN / "kcov-build", *argv], w.dir)
        else:
            r = run_subprocess([sys.executable, "-m", "kcov.profile", *argv], w.dir)
        count(kind, how)
        what = f"{prog} {' '.join(argv)}"
        check_cli(r, prog, statuses, what)
        check_no_temporaries(w.dir, what)
        if r.status != 0:
            check_untouched(before, w.out, what)
        elif "out/prev.profdata" in argv:
            from kcov.profile import raw

            out = (w.out / "prev.profdata").read_bytes()
            assert struct.unpack_from("<Q", out)[0] == raw.INDEXED_MAGIC, f"{what}: not an indexed profile"
            check_cli(run_inprocess(profile_main, ["show", "out/prev.profdata"], w.dir), PROFILE, PROFILE_STATUS)
        elif act == 2:  # llvm-cov's lcov reads back
            check_output_file(w.out / "r.info", "lcov")


@budget(150)
@given(seed=st.integers(0, 100), ops=mutations("profraw"), action=st.integers(0, 1000))
def test_fuzz_profraw_tools(corpus: Corpus, scratch: Path, seed: int, ops: list[Any], action: int) -> None:
    s = corpus.pick("profraw", seed)
    exercise_profile_tools(corpus, scratch, "profraw", mutate(s, ops, corpus), action, s)


# --- Indexed profiles ----------------------------------------------------------------------


def api_profdata(path: Path) -> None:
    from kcov_build.pgo import PgoError, read_indexed

    try:
        p = read_indexed(str(path))
        assert p.version == struct.unpack_from("<Q", path.read_bytes(), 8)[0] & 0xFFFFFFFF
        assert p.writers()
    except PgoError as e:
        F.check_message(e, PGO_STATUS, "status")
    count("profdata", "api")


def test_truncation_at_every_boundary_profdata(corpus: Corpus, scratch: Path) -> None:
    """Each .profdata cut at every header word and every 64th byte: the
    --pgo-use check, and every 3rd through llvm-profdata (show, merge)."""
    k = 0
    for seed in corpus.of("profdata"):
        for cut in sorted({b + d for b in seed.boundaries for d in (-1, 0) if 0 <= b + d < len(seed.data)}):
            with workdir(scratch, corpus) as w:
                (w.dir / "in.profdata").write_bytes(seed.data[:cut])
                api_profdata(w.dir / "in.profdata")
            if k % 3 == 0:
                exercise_profile_tools(corpus, scratch, "profdata", seed.data[:cut], k // 3, seed)
            k += 1
    assert k > 50


@budget(150)
@given(seed=st.integers(0, 100), ops=mutations("profdata"), action=st.integers(0, 1000))
def test_fuzz_profdata(corpus: Corpus, scratch: Path, seed: int, ops: list[Any], action: int) -> None:
    s = corpus.pick("profdata", seed)
    data = mutate(s, ops, corpus)
    with workdir(scratch, corpus) as w:
        (w.dir / "in.profdata").write_bytes(data)
        api_profdata(w.dir / "in.profdata")
    exercise_profile_tools(corpus, scratch, "profdata", data, action, s)


@budget(20)
@given(kind=st.sampled_from(["profraw", "profdata"]), seed=st.integers(0, 100), action=st.integers(0, 1000),
       data=st.data())
def test_fuzz_profile_subprocess(corpus: Corpus, scratch: Path, kind: str, seed: int, action: int,
                                 data: st.DataObject) -> None:
    """A sample through `python -m kcov.profile` and `kcov-build pgo merge`
    in a child: no signal, no hang."""
    s = corpus.pick(kind, seed)
    ops = data.draw(mutations(kind))
    exercise_profile_tools(corpus, scratch, kind, mutate(s, ops, corpus), action, s, how="subprocess")


# --- .sancov -------------------------------------------------------------------------------


def _sancov_expected(pcs: list[int]) -> dict[str, list[int]]:
    """The model: per image holding a PC, magic then (return address - 1 -
    load bias) for each distinct PC, ascending (x86-64)."""
    from kcov.profile.runtime import image_of

    out: dict[str, list[int]] = {}
    for pc in sorted(set(pcs)):
        found = image_of(pc)
        if found is not None:
            name, bias, lo, hi = found
            if lo <= pc < hi:
                out.setdefault(name, []).append((pc - 1 - bias) & (2**64 - 1))
    return out


def sancov_pcs(c: Corpus) -> st.SearchStrategy[list[int]]:
    bias, lo, hi = c.sancov_range
    edges = [lo, lo + 1, hi - 1, hi, lo - 1, 0, 1, 2**64 - 1, 2**63, bias, *c.sancov_pcs]
    import ctypes

    libc = ctypes.CDLL(None)
    edges.append(ctypes.cast(libc.printf, ctypes.c_void_p).value or 0)
    return st.lists(st.one_of(st.sampled_from(edges), st.integers(lo, hi - 1), st.integers(0, 2**64 - 1)),
                    max_size=300)


@budget(400)
@given(data=st.data())
def test_fuzz_sancov_writer(corpus: Corpus, scratch: Path, data: st.DataObject) -> None:
    """kcov.profile.sancov of random PCs (inside the library, at its edges,
    in other images, nowhere) against the model; a sample is written with
    write_sancov and read back by sancov-19 -print."""
    import kcov.profile as kp

    pcs = data.draw(sancov_pcs(corpus))
    files = kp.sancov(np.array(pcs, dtype=np.uint64))
    count("sancov", "api")
    want = _sancov_expected(pcs)
    assert sorted(files) == sorted(want)
    for name, blob in files.items():
        assert struct.unpack_from("<Q", blob)[0] == 0xC0BFFFFFFFFFFF64
        assert len(blob) % 8 == 0
        assert list(struct.unpack_from(f"<{len(blob) // 8 - 1}Q", blob, 8)) == want[name], name
    if data.draw(st.integers(0, 9)) == 0 and corpus.sancov_lib is not None:
        with workdir(scratch, corpus) as w:
            written = kp.write_sancov(np.array(pcs, dtype=np.uint64), w.out, pid=7)
            check_no_temporaries(w.dir)
            mine = [f for f in written if f.name.startswith(corpus.sancov_lib.name)]
            for f in mine:
                r = run_subprocess(["sancov-19", "-print", f], w.dir)
                count("sancov", "subprocess")
                assert r.status == 0, r.stderr
                assert {int(x, 16) for x in r.stdout.split()} == {x for x in want[str(corpus.sancov_lib)] if x}


@budget(200)
@given(seed=st.integers(0, 100), ops=mutations("sancov"), reader=st.integers(0, 5))
def test_fuzz_sancov_as_input(corpus: Corpus, scratch: Path, seed: int, ops: list[Any], reader: int) -> None:
    """A (mutated) .sancov handed to the readers that do not read it: a
    clear error, or a success when a mutation made it another valid file."""
    s = corpus.pick("sancov", seed)
    data = mutate(s, ops, corpus)
    if reader < 2:
        exercise_report(corpus, scratch, ("json", "lcov")[reader], data, reader * 7)
    elif reader < 4:
        exercise_profraw(corpus, scratch, data)
    else:
        with workdir(scratch, corpus) as w:
            (w.dir / "in.profdata").write_bytes(data)
            api_profdata(w.dir / "in.profdata")
    count("sancov", "as-input")


# --- Command lines -------------------------------------------------------------------------
#
# Every path a random command line names is relative, inside the run's own
# directory (which holds copies of the files it needs): an output option may
# land on any of them, and a CLI run as root could otherwise replace
# /dev/null or a seed.

REPORT_WORDS = [
    "convert", "merge", "summary", "diff", "tests", "bogus", "-o", "--output", "-f", "--format", "--binary",
    "--binaries", "--inventory", "--module", "--no-universe", "--force", "--progress", "-q", "--quiet",
    "--help-all", "--version", "--fail-under-line", "--fail-under-function", "--fail-under-point",
    "--functions", "--root", "--function", "--test", "--baseline", "--title", "--timestamp", "--test-name",
    "--source-map", "--max-test-names", "-h", "--", "-", "json", "lcov", "html", "cobertura", "text",
    "json-summary", "bogus", "50", "100", "101", "-1", "nan", "1e3", "0", "all", "unreached", "digits",
    "main", "prog_digits", "a=b", "=", "a,b", "@x300", "", "\u00e9",
]
REPORT_PATHS = [
    "run.json", "gcov.info", "digits.pcs", "letters.pcs", "digits.rawcover", "fixprog", "fixprog@0x0",
    "fixprog@zz", "{module}", "@", "out/a.json", "out/a.info", "out/a.xml", "out/a.html", "out/site/",
    "out/a.txt", "json:out/b", "lcov:out/c", "html:out/d", "out/prev.json", "out", "out/x/y/z.json",
    "out/prev.json/x.json", "in-missing.json", "bin", "fixprog.c",
]
#: name in the run's directory -> file of the corpus
REPORT_FILES = {"run.json": "run.json", "gcov.info": "gcov.info", "digits.pcs": "digits.pcs",
                "letters.pcs": "letters.pcs", "digits.rawcover": "digits.rawcover", "fixprog": "fx/fixprog",
                "fixprog.c": "fx/fixprog.c"}


ARGV = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10000)), min_size=0, max_size=9)


def _word(words: list[str], paths: list[str], i: int, j: int) -> str:
    w = words[j % len(words)] if i % 2 else paths[j % len(paths)]
    return F.LONG.get(w, w)


def _report_argv(c: Corpus, raw: list[tuple[int, int]], first: int) -> list[str]:
    argv = [["convert", "merge", "summary", "diff", "tests"][first % 5]] if first < 5 else []
    spec = "fixprog@" + c.bare_modules[0].rpartition("@")[2] if c.bare_modules else "fixprog@0x0"
    return argv + [_word(REPORT_WORDS, REPORT_PATHS, i, j).replace("{module}", spec) for i, j in raw]


@contextlib.contextmanager
def argv_workdir(root: Path, c: Corpus, files: dict[str, str]) -> Iterator[Workdir]:
    with workdir(root, c) as w:
        for name, src in files.items():
            shutil.copy(c.root / src, w.dir / name)
        yield w


def check_argv_run(w: Workdir, r: F.CliResult, prog: str, statuses: frozenset[int], argv: list[str]) -> None:
    what = f"{prog} {' '.join(argv)}"
    check_cli(r, prog, statuses, what)
    check_no_temporaries(w.dir, what)
    # Every file an output option named is complete (several outputs may be
    # written before a later one fails: each whole).
    if prog == REPORT:
        for path, fmt in _outputs(argv):
            p = w.dir / path
            if fmt != "?" and p.exists() and path.parts[:1] == ("out",) and path.name not in ("prev.json", "out"):
                if fmt != "html" or p.is_file() or (p / F.STAMP).exists():
                    check_output_file(p, fmt)


@budget(500)
@given(argv=ARGV, first=st.integers(0, 6))
def test_fuzz_report_argv(corpus: Corpus, scratch: Path, argv: list[tuple[int, int]], first: int) -> None:
    """kcov-report with random command lines (in-process; no stdin)."""
    from kcov.report.cli import main

    args = [a for a in _report_argv(corpus, argv, first) if a != "-"]
    with argv_workdir(scratch, corpus, REPORT_FILES) as w:
        r = run_inprocess(main, args, w.dir)
        count("argv:kcov-report", "inprocess")
        check_argv_run(w, r, REPORT, REPORT_STATUS, args)


@budget(20)
@given(argv=ARGV, first=st.integers(0, 6))
def test_fuzz_report_argv_subprocess(corpus: Corpus, scratch: Path, argv: list[tuple[int, int]],
                                     first: int) -> None:
    """kcov-report with random command lines in a child ('-' reads lcov
    from stdin)."""
    args = _report_argv(corpus, argv, first)
    with argv_workdir(scratch, corpus, REPORT_FILES) as w:
        r = run_subprocess([F.BIN / "kcov-report", *args], w.dir, stdin=corpus.of("lcov")[0].data)
        count("argv:kcov-report", "subprocess")
        check_argv_run(w, r, REPORT, REPORT_STATUS, args)


PROFILE_WORDS = [
    "merge", "report", "show", "info", "bogus", "-o", "--output", "--llvm", "14", "16", "19", "99", "0", "-1",
    "x", "--allow-mixed-binaries", "--format", "report", "text", "html", "lcov", "json", "--profile",
    "--source", "-h", "--help", "--", "", "\u00e9", "@x300", "--compiler", "--sparse", "clang-19", "clang-14",
    "gcc-12", "nosuch-cc", "merge",
]
PROFILE_PATHS = ["fz19.profraw", "fz14.profraw", "fzpgo.profraw", "fzcrt.profraw", "fz19.profdata",
                 "fz14.profdata", "fz19", "fz14", "run.json", "x.1.sancov", "out/a.profdata", "out/prev.profdata",
                 "out/h", "out/r.txt", "out", "missing.profraw", "out/prev.profdata/x", "fuzzprof.c"]
PROFILE_FILES = {"fz19.profraw": "prof/fz19.profraw", "fz14.profraw": "prof/fz14.profraw",
                 "fzpgo.profraw": "prof/fzpgo.profraw", "fzcrt.profraw": "prof/fzcrt.profraw",
                 "fz19.profdata": "prof/fz19.profdata", "fz14.profdata": "prof/fz14.profdata", "fz19": "prof/fz19",
                 "fz14": "prof/fz14", "run.json": "run.json", "x.1.sancov": "sancov/libfzcov.so.1.sancov",
                 "fuzzprof.c": "prof/fuzzprof.c"}


def _profile_argv(raw: list[tuple[int, int]], first: int) -> list[str]:
    argv = [["merge", "report", "show", "info", "pgo", "pgo"][first]] if first < 6 else []
    return argv + [_word(PROFILE_WORDS, PROFILE_PATHS, i, j) for i, j in raw]


@budget(250)
@given(argv=ARGV, first=st.integers(0, 7))
def test_fuzz_profile_argv(corpus: Corpus, scratch: Path, argv: list[tuple[int, int]], first: int) -> None:
    """python -m kcov.profile and kcov-build pgo with random command lines
    (in-process)."""
    from kcov.profile.__main__ import main
    from kcov_build.pgo import main as pgo_main

    args = _profile_argv(argv, first)
    with argv_workdir(scratch, corpus, PROFILE_FILES) as w:
        if args[:1] == ["pgo"]:
            r = run_inprocess(pgo_main, args[1:], w.dir)
            count("argv:kcov-build pgo", "inprocess")
            check_argv_run(w, r, F.KCOV_BUILD, PGO_STATUS, args)
        else:
            r = run_inprocess(main, args, w.dir)
            count("argv:kcov.profile", "inprocess")
            check_argv_run(w, r, PROFILE, PROFILE_STATUS, args)
        if r.status == 0 and "out/prev.profdata" in args and "merge" in args:
            from kcov.profile import raw

            data = (w.out / "prev.profdata").read_bytes()
            assert struct.unpack_from("<Q", data)[0] == raw.INDEXED_MAGIC


@budget(12)
@given(argv=ARGV, first=st.integers(0, 7))
def test_fuzz_profile_argv_subprocess(corpus: Corpus, scratch: Path, argv: list[tuple[int, int]],
                                      first: int) -> None:
    args = _profile_argv(argv, first)
    with argv_workdir(scratch, corpus, PROFILE_FILES) as w:
        if args[:1] == ["pgo"]:
            r = run_subprocess([F.BIN / "kcov-build", *args], w.dir)
            count("argv:kcov-build pgo", "subprocess")
            check_argv_run(w, r, F.KCOV_BUILD, PGO_STATUS, args)
        else:
            r = run_subprocess([sys.executable, "-m", "kcov.profile", *args], w.dir)
            count("argv:kcov.profile", "subprocess")
            check_argv_run(w, r, PROFILE, PROFILE_STATUS, args)


def test_fuzz_executions_reached_every_reader() -> None:
    """After the fuzzers above (run last, in file order): every reader was
    fuzzed in-process and through a child process (the counts are printed
    at the end of the run by conftest.py)."""
    readers = {"pcs", "bare", "json", "lcov", "profraw", "profdata", "sancov"}
    if not readers <= {r for r, _ in F.EXECUTIONS}:
        pytest.skip("run with the whole file: some fuzzers did not run")
    for r in sorted(readers):
        assert F.EXECUTIONS[(r, "api")] >= F.scaled(100), (r, F.EXECUTIONS)
    for r in sorted(readers - {"pcs", "bare", "json", "lcov"}):
        assert F.EXECUTIONS[(r, "inprocess")] + F.EXECUTIONS[(r, "as-input")] >= F.scaled(50), (r, F.EXECUTIONS)
    subprocess_runs = {r for (r, how), n in F.EXECUTIONS.items() if how == "subprocess" and n}
    assert {"profraw", "profdata", "sancov"} <= subprocess_runs, subprocess_runs
    assert len(subprocess_runs & set(REPORT_KINDS)) >= 3, subprocess_runs
