"""The format registry: detection, one-line errors with sysexits
statuses, and atomic single-file writes."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from formats_fixtures import basic
from kcov.report import FormatError, ReportError, formats


def test_registry() -> None:
    assert sorted(formats.FORMATS) == ["cobertura", "html", "json",
                                       "json-summary", "lcov", "text"]
    readable = sorted(n for n, h in formats.FORMATS.items() if h.can_read)
    assert readable == ["json", "lcov"]
    assert all(h.can_write for h in formats.FORMATS.values())
    for h in formats.FORMATS.values():
        for o in h.write_options:
            assert isinstance(o.default, o.type) and o.help


@pytest.mark.parametrize("path,fmt", [
    ("a.info", "lcov"), ("a.lcov", "lcov"), ("a.xml", "cobertura"),
    ("a.json", "json"), ("a.html", "html"), ("a.txt", "text"),
    ("report", None)])
def test_for_path(path: str, fmt: str | None) -> None:
    assert formats.for_path(path) == fmt


def test_detection_ignores_names(tmp_path: Path) -> None:
    d = basic()
    (tmp_path / "lcov.json").write_text(formats.render(d, "lcov"))
    (tmp_path / "json.info").write_text(formats.render(d, "json"))
    assert formats.read(tmp_path / "json.info") == d
    assert formats.read(tmp_path / "lcov.json").files().keys() == \
        d.files().keys()


@pytest.mark.parametrize("head,message", [
    (b"kcov-pcs v1\nmodule 0 1 0 exe - /x\n", "kcov-pcs dump"),
    (b'{"format": "other"}', "JSON, but not a kcov coverage file"),
    (b"<?xml version='1.0'?><coverage/>", "unknown coverage format"),
    (b"", "unknown coverage format"),
])
def test_undetected(head: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message) as e:
        formats.read_bytes(head, "in")
    assert e.value.exit_status == 65


def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such file") as e:
        formats.read(tmp_path / "nope.json")
    assert e.value.exit_status == 66
    with pytest.raises(ReportError, match="is a directory") as e:
        formats.read(tmp_path)
    assert e.value.exit_status == 66


def test_usage_errors() -> None:
    with pytest.raises(ReportError, match="unknown format 'pdf'") as e:
        formats.write(basic(), "pdf", "x")
    assert e.value.exit_status == 64
    with pytest.raises(ReportError, match="cannot be read") as e:
        formats.read_bytes(b"TN:\n", "x", "cobertura")
    assert e.value.exit_status == 64


def test_atomic_write_failure_keeps_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "c.info"
    out.write_text("old\n")

    def no_replace(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(ReportError, match="cannot write .*c.info: Input/"
                       "output error") as e:
        formats.write(basic(), "lcov", out)
    assert e.value.exit_status == 73
    monkeypatch.undo()
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["c.info"]


def test_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for fmt in ("lcov", "html"):
        with pytest.raises(ReportError, match="cannot write") as e:
            formats.write(basic(), fmt, tmp_path / "file" / "sub" / "out")
        assert e.value.exit_status == 73
    assert os.listdir(tmp_path) == ["file"]


def test_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        formats.write(basic(), "lcov", tmp_path / "c.info")
    finally:
        os.umask(old)
    assert (tmp_path / "c.info").stat().st_mode & 0o777 == 0o640


def test_html_directory_stamp(tmp_path: Path) -> None:
    """An output directory a different kcov writer made is not ours to
    replace."""
    d = tmp_path / "r"
    d.mkdir()
    (d / ".kcov-report").write_text("other\n")
    (d / "x").write_text("")
    with pytest.raises(ReportError, match="not a kcov html report"):
        formats.write(basic(), "html", d)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    d = basic()

    class Stdin:
        buffer = io.BytesIO(formats.render(d, "json").encode())

    monkeypatch.setattr(sys, "stdin", Stdin)
    assert formats.read("-") == d
