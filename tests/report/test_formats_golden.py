"""Golden files: every format of every hand-made scenario, byte for byte
(absolute paths and the kcov version normalised).  Regenerate with
KCOV_REGEN_GOLDEN=1 and review the diff."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from formats_fixtures import GOLDEN, REGEN, SCENARIOS, SRC, check_golden, normalise
from kcov.report import CoverageData, formats

OUTPUTS: dict[str, Callable[[CoverageData], str]] = {
    "coverage.info": lambda d: formats.render(d, "lcov"),
    "cobertura.xml": lambda d: formats.render(d, "cobertura", timestamp=0),
    "summary.txt": lambda d: formats.render(d, "text"),
    "summary-functions.txt": lambda d: formats.render(d, "text",
                                                      functions="all"),
    "summary.json": lambda d: formats.render(d, "json-summary"),
    "coverage.json": lambda d: formats.render(d, "json"),
    "report.html": lambda d: formats.render(d, "html"),
}


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden(scenario: str, output: str) -> None:
    got = normalise(OUTPUTS[output](SCENARIOS[scenario]()),
                    {str(SRC): "@SRC@"})
    check_golden(got, GOLDEN / scenario / output)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_golden_html_directory(scenario: str, tmp_path: Path) -> None:
    out = tmp_path / "html"
    formats.write(SCENARIOS[scenario](), "html", out)
    golden = GOLDEN / scenario / "html"
    got = sorted(p.name for p in out.iterdir() if p.name != ".kcov-report")
    if REGEN and golden.is_dir():
        for old in golden.iterdir():
            old.unlink()
    want = sorted(p.name for p in golden.iterdir()) if golden.is_dir() else []
    if not REGEN:
        assert got == want
    for name in got:
        check_golden(normalise((out / name).read_text(), {str(SRC): "@SRC@"}),
                     golden / name)


def test_write_equals_render(tmp_path: Path) -> None:
    """What the golden tests see through render() is what write() puts in
    the file."""
    d = SCENARIOS["basic"]()
    for fmt, name in (("lcov", "c.info"), ("text", "s.txt"),
                      ("json", "c.json"), ("json-summary", "s.json"),
                      ("html", "r.html")):
        formats.write(d, fmt, tmp_path / name)
        assert (tmp_path / name).read_text() == formats.render(d, fmt)
    formats.write(d, "cobertura", tmp_path / "c.xml", timestamp=7)
    assert (tmp_path / "c.xml").read_text() == formats.render(
        d, "cobertura", timestamp=7)


def test_regeneration_is_refused_under_ci() -> None:
    """KCOV_REGEN_GOLDEN=1 with CI=true fails and rewrites nothing."""
    goldens = sorted((Path(__file__).resolve().parent / "golden").rglob("*"))
    before = {p: p.read_bytes() for p in goldens if p.is_file()}
    env = dict(os.environ, KCOV_REGEN_GOLDEN="1", CI="true")
    env.pop("PYTEST_ADDOPTS", None)
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                        f"{__file__}::test_golden"], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "KCOV_REGEN_GOLDEN=1 is refused under CI=true" in p.stdout, p.stdout[-3000:]
    assert {p: p.read_bytes() for p in goldens if p.is_file()} == before
