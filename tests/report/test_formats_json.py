"""JSON: the kcov coverage file (read back, version-checked) and the
summary (numbers as numbers)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import kcov
from formats_fixtures import SCENARIOS, basic
from kcov.report import FormatError, formats


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_round_trip(scenario: str, tmp_path: Path) -> None:
    d = SCENARIOS[scenario]()
    formats.write(d, "json", tmp_path / "c.json")
    assert formats.read(tmp_path / "c.json") == d
    assert formats.read(tmp_path / "c.json", "json") == d


def test_version_is_checked(tmp_path: Path) -> None:
    doc = basic().to_json()
    doc["version"] = 2
    doc["producer"]["version"] = "9.9"
    (tmp_path / "new.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"version 2 \(written by kcov "
                       r"9\.9\); this kcov reads version 1") as e:
        formats.read(tmp_path / "new.json")
    assert e.value.exit_status == 65


def test_summary_numbers_are_numbers() -> None:
    d = basic()
    doc = json.loads(formats.render(d, "json-summary"))
    assert doc["format"] == "kcov-summary" and doc["version"] == 1
    assert doc["producer"] == {"name": "kcov", "version": kcov.__version__}
    t = d.totals()
    assert doc["totals"] == {
        "points": t.points, "points_hit": t.hit,
        "point_percent": round(t.point_percent, 2),
        "lines": t.lines, "lines_hit": t.lines_hit,
        "line_percent": round(t.line_percent, 2),
        "functions": t.functions, "functions_hit": t.functions_hit,
        "function_percent": round(t.function_percent, 2)}

    def walk(v: object) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k.endswith(("points", "hit", "lines", "functions",
                               "percent", "tests", "version")) \
                        and k != "producer":
                    assert isinstance(x, (int, float)) and not isinstance(
                        x, bool) or x is None, (k, x)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk({k: v for k, v in doc.items() if k != "producer"})
    files = {f["file"]: f for f in doc["files"]}
    assert files["drv/main.c"]["lines"] == 5
    assert files["drv/main.c"]["function_percent"] == 66.67


def test_summary_is_not_input(tmp_path: Path) -> None:
    formats.write(basic(), "json-summary", tmp_path / "s.json")
    with pytest.raises(FormatError, match="cannot be read back") as e:
        formats.read(tmp_path / "s.json")
    assert e.value.exit_status == 65


@pytest.mark.parametrize("text,message", [
    ('{"format": "kcov-coverage", "version": 1, "modules": [', "not valid JSON"),
    ('{"some": "thing"}', "not a kcov coverage file"),
    ('{"format": "kcov-coverage", "version": 1, "modules": [{"key": 3}]}',
     "malformed kcov coverage file"),
])
def test_bad_json(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(FormatError, match=message):
        formats.read(tmp_path / "x.json")
