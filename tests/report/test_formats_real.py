"""The formats on a real program: data/real/work.c built with clang-19 -g
-O2 -fsanitize-coverage=trace-pc, run twice (two tests), its PCs turned
into CoverageData by kcov.report.collect (with a kcov-build inventory);
golden files per toolchain in golden/real/clang-19/, checked by genhtml,
the Cobertura DTD and the lcov round trip."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from formats_fixtures import DATA, GOLDEN, check_golden, need_tool, normalise
from kcov.report import (CoverageData, collect, formats, modules_from_maps,
                         write_pcs)

TOOLCHAIN = "clang-19"
RUNS = (("digits", "d", "a19x7"), ("upper", "u", "AbC!"))


class Real:
    def __init__(self, data: CoverageData, src: Path) -> None:
        self.data = data
        self.src = src
        build_id = next(iter(data.modules.values())).build_id
        self.replacements = {str(src): "@SRC@", build_id: "@BUILDID@"}

    def norm(self, text: str) -> str:
        return normalise(text, self.replacements)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Real:
    cc = need_tool(TOOLCHAIN)
    src = tmp_path_factory.mktemp("real")
    for f in (DATA / "real").iterdir():
        shutil.copy2(f, src / f.name)

    def sh(*cmd: str) -> str:
        p = subprocess.run(cmd, cwd=src, capture_output=True, text=True,
                           check=False)
        assert p.returncode == 0, f"{cmd} failed:\n{p.stdout}{p.stderr}"
        return p.stdout

    flags = ["-g", "-O2", "-fsanitize-coverage=trace-pc", "-c", "work.c",
             "-o", "work.o"]
    sh(cc, *flags)
    sh(cc, "-g", "-O2", "-c", "main.c", "-o", "main.o")
    sh(cc, "-pie", "work.o", "main.o", "-o", "prog")
    dumps = []
    for test, kind, arg in RUNS:
        out = sh(str(src / "prog"), kind, arg, f"maps-{test}")
        pcs = np.array([int(x, 16) for x in out.split()], dtype=np.uint64)
        mods = modules_from_maps((src / f"maps-{test}").read_text())
        write_pcs(src / f"{test}.pcs", pcs, mods, test=test)
        dumps.append(src / f"{test}.pcs")
    (src / "compile_commands.json").write_text(json.dumps([{
        "directory": str(src), "file": str(src / "work.c"),
        "arguments": [cc, *flags]}]))
    kcov_build = Path(sys.executable).parent / "kcov-build"
    sh(str(kcov_build) if kcov_build.is_file() else "kcov-build",
       "inventory", "-p", str(src), "-o", "inventory.json", "--quiet")
    data = collect(dumps, binaries=[src / "prog"],
                   inventory=src / "inventory.json")
    return Real(data, src)


OUTPUTS = {
    "coverage.info": lambda d: formats.render(d, "lcov"),
    "cobertura.xml": lambda d: formats.render(d, "cobertura", timestamp=0),
    "summary.txt": lambda d: formats.render(d, "text", functions="all"),
    "summary.json": lambda d: formats.render(d, "json-summary"),
    "coverage.json": lambda d: formats.render(d, "json"),
    "report.html": lambda d: formats.render(d, "html"),
}


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_golden(real: Real, output: str) -> None:
    check_golden(real.norm(OUTPUTS[output](real.data)),
                 GOLDEN / "real" / TOOLCHAIN / output)


def test_scenario_shape(real: Real) -> None:
    """What the golden files are meant to show (so that a regenerated
    golden that lost it fails here)."""
    d = real.data
    st = d.files()[str(real.src / "work.c")]
    fs = st.functions
    assert fs["work"].tests == {"digits", "upper"}
    assert fs["clamp"].hit and fs["clamp"].tests == {"digits"}
    assert fs["never_called"].instrumented and not fs["never_called"].hit
    assert not fs["not_instrumented"].instrumented
    statuses = {ls.status for ls in st.lines.values()}
    assert statuses == {"covered", "partial", "uncovered"}
    assert d.tests == {"digits", "upper"}


def test_consumers(real: Real, tmp_path: Path) -> None:
    from test_formats_cobertura import DTD, parse
    from test_formats_lcov import genhtml

    d = real.data
    text = formats.render(d, "lcov")
    assert formats.render(formats.read_bytes(text.encode(), "r.info"),
                          "lcov") == text
    (tmp_path / "c.info").write_text(text)
    t = d.totals()
    assert genhtml(tmp_path / "c.info", tmp_path / "gh") == {
        "Lines": (t.lines_hit, t.lines),
        "Functions": (t.functions_hit, t.functions)}
    assert DTD.validate(parse(formats.render(d, "cobertura")))
    assert formats.read_bytes(formats.render(d, "json").encode()) == d


def test_html_directory(real: Real, tmp_path: Path) -> None:
    formats.write(real.data, "html", tmp_path / "r")
    golden = GOLDEN / "real" / TOOLCHAIN / "html"
    for page in sorted((tmp_path / "r").glob("*.html")):
        check_golden(real.norm(page.read_text()), golden / page.name)
    assert sorted(p.name for p in golden.iterdir()) == sorted(
        p.name for p in (tmp_path / "r").glob("*.html"))
