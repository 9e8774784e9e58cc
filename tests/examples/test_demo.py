"""`make demo`'s main job: build kvdev instrumented, trace it from Python."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_output() -> str:
    if not any(shutil.which(cc) for cc in ("clang-19", "clang-16", "clang-14", "gcc-12")):
        pytest.skip("no C compiler for the demo")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_each_call_is_traced_and_calls_differ(demo_output: str) -> None:
    rows = {}
    for line in demo_output.splitlines():
        m = re.match(r"(.{24}) +(-?\d+) +(\d+) +(\d+) +(\d+)$", line)
        if m:
            rows[m.group(1).strip()] = tuple(int(g) for g in m.groups()[1:])
    assert len(rows) == 10, demo_output
    # Return values are the driver's, so the calls really ran.
    assert rows["PUT alpha=1"][0] == 0
    assert rows["PUT alpha=3 (exists)"][0] == -17
    assert rows["GET gamma (missing)"][0] == -2
    assert rows["bogus cmd"][0] == -25
    # Every call recorded something, and different calls reached different code.
    assert all(r[1] > 0 for r in rows.values())
    assert rows["PUT alpha=1"][1] != rows["COUNT"][1]
    assert rows["GET alpha"][3] > 0  # GET reaches code PUT never did


def test_comparisons_show_the_input(demo_output: str) -> None:
    assert re.search(r"const size 4: 0xdeadbeef vs 0xdeadbeef", demo_output)


def test_summary_counts_points(demo_output: str) -> None:
    m = re.search(r"coverage: (\d+) of (\d+) points", demo_output)
    assert m, demo_output
    reached, total = int(m.group(1)), int(m.group(2))
    assert 0 < reached < total
    for fn in ("kvdev_ioctl", "kv_lookup", "kv_put"):
        assert re.search(rf"^\s+{fn}\s+\d+/\d+", demo_output, re.M), fn


def test_reports_written_and_agree(demo_output: str) -> None:
    """The demo's reports (kcov.report) say what its summary says."""
    import json

    m = re.search(r"coverage: (\d+) of (\d+) points", demo_output)
    assert m, demo_output
    reached, total = int(m.group(1)), int(m.group(2))
    # the terminal summary's TOTAL row: points, hit
    tot = re.search(r"^TOTAL\s+(\d+)\s+(\d+)\s", demo_output, re.M)
    assert tot and (int(tot.group(1)), int(tot.group(2))) == (total, reached), demo_output
    report = ROOT / "build" / "demo" / "report"
    doc = json.loads((report / "coverage.json").read_text())
    assert doc["format"] == "kcov-coverage"
    pts = [p for mod in doc["modules"] for p in mod["points"]]
    assert (len(pts), sum(1 for p in pts if "tests" in p)) == (total, reached)
    # every call of the demo is a test; only DEL reaches kv_del
    assert re.search(r"^which calls reach kv_del: DEL beta$", demo_output, re.M), demo_output
    info = (report / "coverage.info").read_text()
    assert "SF:" in info and "kvdev.c" in info and "FN:" in info
    assert "<coverage " in (report / "cobertura.xml").read_text()
    html = (report / "html" / "index.html").read_text()
    assert "kvdev.c" in html
