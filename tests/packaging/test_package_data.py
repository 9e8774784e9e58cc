"""Files the Python package needs besides its modules reach the wheel:
the installed distribution's RECORD (what the wheel held) lists them, and
the installed package finds them."""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

from kcov.report import CoverageData, formats

TEMPLATES = "kcov/report/formats/html/templates"
SOURCE = Path(__file__).resolve().parents[2] / "pybind" / TEMPLATES


def test_wheel_ships_html_templates() -> None:
    """Every template, the CSS and the JS of the HTML report."""
    ours = sorted(p.name for p in SOURCE.iterdir())
    assert {"page.html", "kcov.css", "kcov.js"} <= set(ours)
    recorded = sorted(p.name for p in metadata.files("kcov") or ()
                      if p.parent.as_posix() == TEMPLATES)
    assert recorded == ours
    page = formats.render(CoverageData(), "html")
    for name in ("kcov.css", "kcov.js"):  # inlined from the package data
        first = (SOURCE / name).read_text().split("#}\n", 1)[-1]
        assert first.splitlines()[0] in page, name
