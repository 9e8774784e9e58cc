"""Properties of the coverage data model: merging is associative,
order-independent and idempotent, a merged file can be merged again, diff
is exactly "reached here, not there", and JSON round-trips."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcov.report import (CoverageData, FormatError, Frame, FunctionDecl,
                         MergeConflictError, Module)

# One fixed "build": module -> offset -> frames, so random runs agree on
# where each point is (as runs of the same binaries do).
MODULES = [Module(Module.make_key("prog", "aa11"), "prog", "/b/prog", "aa11",
                  "exe", True),
           Module(Module.make_key("lib.so", "bb22"), "lib.so", "/b/lib.so",
                  "bb22", "dso", True)]
FRAMES = {
    (m.key, off): (Frame(f"f{off % 3}", f"/src/{m.name}/{'a' if off < 40 else 'b'}.c",
                         10 + off % 7),)
    + ((Frame("caller", f"/src/{m.name}/a.c", 99),) if off % 5 == 0 else ())
    for m in MODULES for off in range(0, 80, 4)
}
TESTS = ["t1", "t2", "t3", ""]


@st.composite
def runs(draw: st.DrawFn) -> CoverageData:
    d = CoverageData()
    for m in draw(st.sets(st.sampled_from(MODULES), min_size=1)):
        d.add_module(m)
        for (key, off), fr in FRAMES.items():
            if key == m.key and draw(st.booleans()):
                d.add_point(key, off, fr)
    for pid in sorted(d.points):
        for t in draw(st.sets(st.sampled_from(TESTS), max_size=2)):
            d.add_hit(pid[0], pid[1], t)
    if draw(st.booleans()):
        d.add_function(FunctionDecl("never", "/src/prog/a.c", 50, 60))
    return d


@settings(max_examples=200, deadline=None, derandomize=True)
@given(runs(), runs(), runs())
def test_merge_laws(a: CoverageData, b: CoverageData, c: CoverageData) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(b) == b.merge(a)
    assert a.merge(a) == a
    ab = a.merge(b)
    assert ab.merge(b) == ab
    # merged output can be written and merged again
    again = CoverageData.from_json(json.loads(ab.dumps()))
    assert again == ab
    assert again.merge(c) == ab.merge(c)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(runs(), runs())
def test_diff(a: CoverageData, b: CoverageData) -> None:
    d = a.diff(b)
    assert set(d.hits) == set(a.hits) - set(b.hits)
    assert d.points == a.points
    # what a reached = what a reached beyond b, plus what both reached
    assert set(d.hits) | (set(a.hits) & set(b.hits)) == set(a.hits)
    assert a.diff(a).hits == {}


@settings(max_examples=100, deadline=None, derandomize=True)
@given(runs())
def test_statistics_consistent(a: CoverageData) -> None:
    files = a.files()
    tot = a.totals(files)
    assert tot.hit == len([p for p in a.hits if a.points[p]])
    assert 0 <= tot.lines_hit <= tot.lines
    for f in files.values():
        for ls in f.lines.values():
            assert 0 <= ls.hit <= ls.points
            assert ls.status == ("uncovered" if not ls.hit else
                                 "covered" if ls.hit == ls.points else "partial")
    dirs = a.directories(files)
    if a.points:
        assert dirs["/"] == (len(a.points), len(a.hits))


def test_tests_reaching_and_only_tests() -> None:
    d = CoverageData()
    m = MODULES[0]
    d.add_module(m)
    d.add_point(m.key, 4, (Frame("inner", "/s/a.c", 3), Frame("outer", "/s/a.c", 9)))
    d.add_point(m.key, 8, (Frame("other", "/s/a.c", 20),))
    d.add_hit(m.key, 4, "test_a")
    d.add_hit(m.key, 8, "test_b")
    assert d.tests_reaching("outer") == {"test_a"}   # through the inline chain
    assert d.tests_reaching("other") == {"test_b"}
    only = d.only_tests(["test_b"])
    assert set(only.hits) == {(m.key, 8)} and only.tests == {"test_b"}
    st_ = d.files()["/s/a.c"]
    assert st_.lines[3].status == "covered" and st_.lines[9].status == "covered"
    assert st_.functions["outer"].hit == 1


def test_conflicting_frames_refused() -> None:
    a = CoverageData()
    a.add_point("build-id:aa", 4, (Frame("f", "/s/a.c", 3),))
    b = CoverageData()
    b.add_point("build-id:aa", 4, (Frame("g", "/s/b.c", 8),))
    with pytest.raises(MergeConflictError, match="two different source locations"):
        a.merge(b)


def test_module_kind_conflict_refused() -> None:
    a, b = CoverageData(), CoverageData()
    a.add_module(Module("name:x", "x", kind="exe"))
    b.add_module(Module("name:x", "x", kind="kmod"))
    with pytest.raises(MergeConflictError, match="kind"):
        a.merge(b)


@pytest.mark.parametrize("doc, msg", [
    ({}, "not a kcov coverage file"),
    ([], "not a kcov coverage file"),
    ({"format": "kcov-coverage", "version": 99, "producer": {"name": "kcov", "version": "9"}},
     "version 99 .*kcov 9.*reads version 1"),
    ({"format": "kcov-coverage", "version": 1}, "malformed"),
    ({"format": "kcov-coverage", "version": 1, "modules": [{"key": "k", "name": "n", "points": [
        {"offset": "12", "frames": []}]}]}, "malformed"),
    ({"format": "kcov-coverage", "version": 1, "modules": [{"key": "k", "name": "n", "points": [
        {"offset": -1, "frames": []}]}]}, "malformed"),
    ({"format": "kcov-coverage", "version": 1, "modules": [{"key": "k", "name": "n", "points": [
        {"offset": 1, "frames": [], "tests": []}]}]}, "empty test list"),
])
def test_bad_json(doc: object, msg: str) -> None:
    with pytest.raises(FormatError, match=msg) as ei:
        CoverageData.from_json(doc, "x.json")
    assert "\n" not in str(ei.value)
    assert ei.value.exit_status == 65


def test_json_numbers_are_numbers() -> None:
    d = CoverageData()
    d.add_module(MODULES[0])
    d.add_point(MODULES[0].key, 16, (Frame("f", "/s/a.c", 3, 7),))
    d.add_hit(MODULES[0].key, 16, "t")
    doc = json.loads(d.dumps())
    assert doc["format"] == "kcov-coverage" and doc["version"] == 1
    assert doc["producer"]["name"] == "kcov"
    p = doc["modules"][0]["points"][0]
    assert p == {"offset": 16, "frames": [["f", "/s/a.c", 3, 7]], "tests": ["t"]}


def test_unmatched_hits_are_not_points() -> None:
    d = CoverageData()
    m = MODULES[0]                       # universe known
    d.add_module(m)
    d.add_point(m.key, 4, (Frame("f", "/s/a.c", 3),))
    d.add_hit(m.key, 4, "t")
    d.add_hit(m.key, 999, "t")           # not a call site: wrong base, tail call
    assert d.unmatched() == [(m.key, 999)]
    t = d.totals()
    assert (t.points, t.hit) == (1, 1)
    # without a universe, every reached offset is all we know
    d2 = CoverageData()
    d2.add_module(Module("name:x", "x"))
    d2.add_hit("name:x", 7, "t")
    assert d2.unmatched() == [] and d2.totals().points == 1
