"""The README is a front door of at most 250 lines, the manual in docs/ is
reachable from it, and no relative link or anchor of either points nowhere."""
from __future__ import annotations

import re
from pathlib import Path

from tests.support.prereq import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\]\(([^()\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def prose(page: Path) -> str:
    """The page without its code blocks (a `](` in code is no link)."""
    return FENCE.sub("", page.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+ (.*)$", prose(page), re.M)}


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page)) if not re.match(r"[a-z]+:", t)]


def test_readme_is_short() -> None:
    n = len(README.read_text().splitlines())
    assert n <= 250, f"README.md has {n} lines; the manual belongs in docs/"


def test_relative_links_resolve() -> None:
    """Relative links resolve from the page that holds them, so the
    screenshots in docs/ show from README.md and from docs/reports.md alike."""
    checked = []
    for page in PAGES:
        for target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.relative_to(REPO)}: {target} does not exist"
            if anchor:
                assert anchor in anchors(dest), f"{page.relative_to(REPO)}: no heading #{anchor} in {path or page.name}"
            checked.append(dest)
    assert DOCS / "demo-report-index.png" in checked and DOCS / "demo-report-source.png" in checked


def test_every_manual_page_is_indexed() -> None:
    indexed = {(DOCS / t.partition("#")[0]).resolve() for t in links(DOCS / "README.md")}
    from_readme = {(REPO / t.partition("#")[0]).resolve() for t in links(README)}
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert page.resolve() in indexed, f"docs/README.md does not list {page.name}"
            assert page.resolve() in from_readme, f"README.md does not link docs/{page.name}"


def test_readme_output_is_measured_output() -> None:
    """Each output excerpt of the README (a fence with no language) is copied,
    line for line, from the manual, whose figures were measured and are
    checked by the tests named there; none is made up for the tour."""
    manual = {line for page in DOCS.glob("*.md") for line in page.read_text().splitlines()}
    excerpts = [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M)
                if not lang]
    assert len(excerpts) >= 4
    for block in excerpts:
        for line in block.splitlines():
            assert line in manual, f"README output line not found in docs/: {line!r}"


def test_readme_pins_no_kernel_release() -> None:
    """The stock kernel is derived (`kcov-build stock-kernel`), never named."""
    pinned = re.findall(r"\b\d+\.\d+\.\d+-\d+(?:-[\w-]+)?", README.read_text())
    assert not pinned, pinned
    assert "$(kcov-build stock-kernel --headers)" in README.read_text()
