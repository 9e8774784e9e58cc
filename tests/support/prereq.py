"""Prerequisites of a test: skip in an ad-hoc run, fail when everything is
required.

Everything is required under CI (CI=true) and under `make test` and
`make check` (KCOV_REQUIRE_ALL=1): there, after `make setup`, a missing
tool, kernel or file is a broken set-up, never a reason to skip.  An ad-hoc
`pytest path/to/test.py` on a half-set-up machine skips with the reason.
tests/conftest.py enforces the same rule for every skip, however raised.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
REQUIRE_ALL = "KCOV_REQUIRE_ALL"


def strict() -> bool:
    """True where every prerequisite must be there (CI, make test/check)."""
    return os.environ.get("CI") == "true" or os.environ.get(REQUIRE_ALL) == "1"


def why_strict() -> str:
    return "CI=true" if os.environ.get("CI") == "true" else f"{REQUIRE_ALL}=1"


def missing(why: str) -> NoReturn:
    """A prerequisite is missing: skip, or fail where everything is required."""
    if strict():
        pytest.fail(f"{why_strict()} but {why}", pytrace=False)
    pytest.skip(why)


def need(ok: object, why: str) -> None:
    """Go on only if ok; otherwise see missing()."""
    if not ok:
        missing(why)


def which(tool: str) -> str | None:
    """A tool from the project's .venv/bin first, then from PATH."""
    return shutil.which(tool, path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))


def need_tool(tool: str, package: str | None = None) -> str:
    """The path of a tool, or see missing()."""
    path = which(tool)
    if path is None:
        missing(f"{tool} is not installed" + (f" ({package})" if package else ""))
    return path


def need_tools(*tools: str) -> None:
    """Every tool named, or see missing() for the first absent one."""
    for t in tools:
        need_tool(t)


def in_ci() -> bool:
    """Under CI kernels are built from scratch, never taken from .cache/."""
    return os.environ.get("CI") == "true"


def own(ok: object, why: str) -> None:
    """A file of our own (kcov-run, libkcovrt.so, a header, a source): if it
    is missing the install or the checkout is broken, a failure everywhere."""
    if not ok:
        pytest.fail(f"{why}: the project's own file is missing (run make setup)", pytrace=False)
