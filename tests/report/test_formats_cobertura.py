"""Cobertura XML: valid against the coverage-04 DTD (vendored in data/),
with the model's numbers."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from formats_fixtures import DATA, SCENARIOS, SRC, basic
from kcov.report import CoverageData, Frame, Module, formats

DTD = etree.DTD(str(DATA / "coverage-04.dtd"))


def parse(text: str) -> etree._Element:
    # no network, no external DTD loading: the DOCTYPE only names the DTD
    parser = etree.XMLParser(no_network=True, load_dtd=False,
                             resolve_entities=False)
    return etree.fromstring(text.encode("utf-8"), parser)


def assert_valid(doc: etree._Element) -> None:
    ok = DTD.validate(doc)
    assert ok, DTD.error_log.filter_from_errors()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_valid_and_numbers(scenario: str) -> None:
    d = SCENARIOS[scenario]()
    doc = parse(formats.render(d, "cobertura", timestamp=0))
    assert_valid(doc)
    t = d.totals()
    assert int(doc.get("lines-valid")) == t.lines
    assert int(doc.get("lines-covered")) == t.lines_hit
    assert doc.findtext("sources/source") == str(SRC)
    files = d.files()
    classes = doc.findall(".//class")
    assert sorted(c.get("filename") for c in classes) == sorted(
        str(Path(p).relative_to(SRC)) for p, st in files.items())
    for c in classes:
        st = files[str(SRC / c.get("filename"))]
        lines = {int(ln.get("number")): ln for ln in c.findall("lines/line")}
        assert set(lines) == set(st.lines)
        for n, ln in lines.items():
            ls = st.lines[n]
            assert int(ln.get("hits")) == len(ls.tests)
            assert (ln.get("branch") == "true") == (ls.points > 1)
            if ls.points > 1:
                assert ln.get("condition-coverage").endswith(
                    f"({ls.hit}/{ls.points})")
        methods = {m.get("name") for m in c.findall("methods/method")}
        assert methods == {f.name for f in st.functions.values()
                           if f.instrumented}


def test_partial_line_is_a_partial_branch() -> None:
    doc = parse(formats.render(basic(), "cobertura", timestamp=0))
    line = doc.find(".//class[@filename='drv/main.c']/lines/line[@number='10']")
    assert line.get("branch") == "true"
    assert line.get("condition-coverage") == "50% (1/2)"
    assert line.get("hits") == "1"


def test_dtd_rejects_a_broken_document() -> None:
    """The validation has teeth: a line without hits is refused."""
    doc = parse(formats.render(basic(), "cobertura", timestamp=0))
    del doc.find(".//line").attrib["hits"]
    assert not DTD.validate(doc)


def test_escaping() -> None:
    """Names that need escaping (C++ templates, quotes, ampersands) keep
    the document well-formed and valid."""
    d = CoverageData()
    m = Module("name:x", "x")
    d.add_module(m)
    name = 'f<int, "a&b">(char const*)'
    d.add_point(m.key, 1, (Frame(name, "/s/q&a <1>.cc", 3),))
    d.add_hit(m.key, 1, "t")
    doc = parse(formats.render(d, "cobertura", timestamp=0))
    assert_valid(doc)
    assert doc.find(".//method").get("name") == name
    assert doc.find(".//class").get("filename") == "q&a <1>.cc"


def test_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert parse(formats.render(basic(), "cobertura")).get(
        "timestamp") == "1700000000"
    assert parse(formats.render(basic(), "cobertura", timestamp=5)).get(
        "timestamp") == "5"
