"""Helpers of the kernel source-based coverage tests (a module name of its
own, so it never collides with other test directories' helpers)."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support import kernels  # noqa: F401  (the shared clang-19 kernel)
from tests.support.modules import Module, run  # noqa: F401
from tests.support.modules import kcov_build_cmd as kcov_build  # noqa: F401
from tests.support.prereq import REPO
from tests.support.vm import VENV_BIN, Vm, VmResult, dmesg_problems, find_vng  # noqa: F401

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GUEST = DATA / "guest_kprof.py"
PYTHON = VENV_BIN / "python"
MODULE_SRC = REPO / "runtime" / "linux"
need = kernels.need
in_ci = kernels.in_ci


def pgo_use(profdata: Path) -> tuple[list[str], list[str]]:
    """(command prefix, extra compile flags) that apply `profdata` to a
    kbuild module build: kcov-build --pgo-use adds -fprofile-instr-use=FILE
    to every compile, kernel code included."""
    return [*kcov_build(), "--pgo-use", str(profdata), "--"], []


@dataclass(frozen=True)
class Boot:
    result: VmResult
    report: dict[str, object]  # what the guest script saw
    out: Path  # the shared directory: profiles copied out of the guest


def line_counts(show: str, source: str | None = None) -> dict[int, tuple[int | None, str]]:
    """`llvm-cov show` text: {line: (count, or None if not code, text)} of
    `source` (a path suffix; None: the only file shown)."""
    out: dict[int, tuple[int | None, str]] = {}
    wanted = True
    for line in show.splitlines():
        if "|" not in line and line.endswith(":"):
            wanted = source is None or line[:-1].endswith(source)
            continue
        m = re.match(r"\s*(\d+)\|\s*(\d*)\|(.*)$", line)
        if wanted and m:
            out[int(m.group(1))] = (int(m.group(2)) if m.group(2) else None, m.group(3))
    return out


def llvm_profdata_show(profile: Path) -> dict[str, dict[str, object]]:
    """llvm-profdata show --all-functions --counts, per function:
    {"count": function count, "blocks": [block counts]}."""
    text = subprocess.run(["llvm-profdata-19", "show", "--all-functions", "--counts", str(profile)],
                          capture_output=True, text=True, check=True).stdout
    funcs: dict[str, dict[str, object]] = {}
    cur: dict[str, object] | None = None
    for line in text.splitlines():
        s = line.strip()
        if line.startswith("  ") and not line.startswith("    ") and s.endswith(":"):
            cur = funcs.setdefault(s[:-1].split(":")[-1], {})
        elif cur is not None and s.startswith("Function count:"):
            cur["count"] = int(s.split(":")[1])
        elif cur is not None and s.startswith("Block counts:"):
            inner = s.split(":", 1)[1].strip().strip("[]")
            cur["blocks"] = [int(x) for x in inner.split(",") if x.strip()]
    return funcs
