"""kcov.inventory: the one schema, writer and reader of the function
inventory, behind both kcov-build's and kcov-report's readers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kcov import inventory
from kcov.inventory import Function, InventoryError
from kcov.report import read_inventory as report_read
from kcov.report.elf import MissingFileError
from kcov.report.model import FormatError
from kcov_build.analysis import AnalysisError, read_inventory as build_read, write_inventory

F = Function("f", "_Z1fv", "src/a.c", 3, 9, False, None)
G = Function("g", "g", "src/b.c", 1, 2, True, "noinstr", external=False)


def test_round_trip_and_mode(tmp_path: Path) -> None:
    p = tmp_path / "inv.json"
    old = os.umask(0o027)
    try:
        write_inventory([F, G], p)
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o640
    doc = json.loads(p.read_text())
    assert doc["version"] == inventory.VERSION and doc["producer"].startswith("kcov-build ")
    assert inventory.read(p) == build_read(p) == [F, G]
    assert [(d.name, d.file, d.start_line, d.end_line) for d in report_read(p)] == \
        [("f", "src/a.c", 3, 9), ("g", "src/b.c", 1, 2)]


def test_minimal_entries_and_unknown_keys(tmp_path: Path) -> None:
    p = tmp_path / "inv.json"
    p.write_text(json.dumps({"version": 1, "functions": [
        {"name": "h", "file": "./x//y.c", "start_line": 1, "end_line": 4, "future": [1]}]}))
    assert inventory.read(p) == [Function("h", "h", "x/y.c", 1, 4, False, None, True)]


@pytest.mark.parametrize("text,status,words", [
    (None, os.EX_NOINPUT, "no such file"),
    ("{", os.EX_DATAERR, "malformed JSON"),
    ('{"version": 1}', os.EX_DATAERR, 'no "functions" list'),
    ('{"version": 2, "functions": []}', os.EX_DATAERR, "format version 2"),
    ('{"version": 1, "functions": [{"name": "f"}]}', os.EX_DATAERR, "entry 0 (KeyError"),
    ('{"version": 1, "functions": [{"name": "f", "file": "a.c", "start_line": "1", "end_line": 2}]}',
     os.EX_DATAERR, "must be integers"),
    ('{"version": 1, "functions": [7]}', os.EX_DATAERR, "not an object"),
])
def test_bad_files(tmp_path: Path, text: str | None, status: int, words: str) -> None:
    p = tmp_path / "inv.json"
    if text is not None:
        p.write_text(text)
    with pytest.raises(InventoryError) as ei:
        inventory.read(p)
    assert ei.value.exit_status == status and words in str(ei.value) and "\n" not in str(ei.value)
    # Each reader keeps its own error class, with the same status and words.
    with pytest.raises(AnalysisError) as ea:
        build_read(p)
    cls = MissingFileError if status == os.EX_NOINPUT else FormatError
    with pytest.raises(cls) as er:
        report_read(p)
    assert ea.value.exit_status == er.value.exit_status == status
    assert str(ea.value) == str(er.value) == str(ei.value)
