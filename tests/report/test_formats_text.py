"""The terminal summary (its full text is in the golden files)."""
from __future__ import annotations

import pytest

from formats_fixtures import basic
from kcov.report import ReportError, formats


def test_table_numbers() -> None:
    d = basic()
    out = formats.render(d, "text")
    t = d.totals()
    total = [ln for ln in out.splitlines() if ln.startswith("TOTAL")]
    assert total[0].split() == [
        "TOTAL", str(t.points), str(t.hit), f"{t.point_percent:.2f}%",
        str(t.lines), str(t.lines_hit), f"{t.line_percent:.2f}%",
        str(t.functions), str(t.functions_hit), f"{t.function_percent:.2f}%"]
    row = [ln for ln in out.splitlines() if ln.startswith("drv/main.c")][0]
    assert row.split()[1:4] == ["11", "8", "72.73%"]
    assert "cleanup" not in out


def test_unreached_functions() -> None:
    out = formats.render(basic(), "text", functions="unreached")
    tail = out.split("TOTAL", 1)[1]
    assert "drv/main.c:14  cleanup  0/1 points, 0 tests" in tail
    assert "drv/main.c:19  unused_fn" in tail
    assert "handle" not in tail


def test_bad_option() -> None:
    with pytest.raises(ReportError) as e:
        formats.render(basic(), "text", functions="some")
    assert e.value.exit_status == 64
    with pytest.raises(TypeError, match="no option 'colour'"):
        formats.render(basic(), "text", colour=True)


def test_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    formats.write(basic(), "text", "-")
    assert capsys.readouterr().out == formats.render(basic(), "text")
