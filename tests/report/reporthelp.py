"""Helpers of the kcov.report tests (a unique module name, so it never
collides with other test directories' modules): building the fixture of
data/ (an instrumented PIE and shared library) with real compilers and
linkers, running it under kcov-run, and reading the MARK comments."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.support.prereq import in_ci, need  # noqa: F401  (the test modules import them from here)

import kcov
from kcov.report import ModuleMap, modules_from_maps

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REPO = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent

# name -> (compiler, linker flag or None)
TOOLCHAINS: dict[str, tuple[str, str | None]] = {
    "clang-19": ("clang-19", None),
    "clang-19-lld": ("clang-19", "-fuse-ld=lld"),
    "clang-14": ("clang-14", None),
    "gcc-12": ("gcc-12", None),
}
COVERAGE = "-fsanitize-coverage=trace-pc"


def run(cmd: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p  # type: ignore[no-any-return]


def markers(path: Path) -> dict[str, int]:
    """``MARK: name`` comment -> line number."""
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.search(r"MARK: (\w+)", line)
        if m:
            out[m.group(1)] = n
    return out


def function_lines(path: Path, name: str) -> tuple[int, int]:
    """First and last line of a function definition in a fixture file (the
    line of its name to its closing brace at column 0)."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines, 1) if re.match(rf"^{name}\(", ln))
    end = next(i for i, ln in enumerate(lines, 1) if i > start and ln == "}")
    return start, end


@dataclass(frozen=True)
class Fixture:
    toolchain: str
    dir: Path
    prog: Path
    lib: Path

    @property
    def prog_src(self) -> Path:
        return self.dir / "fixprog.c"

    @property
    def lib_src(self) -> Path:
        return self.dir / "fixlib.c"


def build_fixture(toolchain: str, out: Path, debug: bool = True) -> Fixture:
    """Compile data/ with `toolchain` into `out`: libfix.so and the PIE
    fixprog (fixprog.c instrumented, fixmain.c not), both -O2, linked
    against the installed libkcovrt.  The sources are copied into `out`,
    so their paths in DWARF are `out`'s."""
    cc, ld = TOOLCHAINS[toolchain]
    need(shutil.which(cc) is not None, f"{cc} is not installed")
    if ld is not None:
        need(shutil.which("ld.lld-19") is not None or shutil.which("ld.lld") is not None,
             "lld is not installed (apt install lld-19)")
    out.mkdir(parents=True, exist_ok=True)
    for f in DATA.glob("fix*"):
        shutil.copy2(f, out / f.name)
    libdir = kcov.get_lib_dir()
    g = ["-g"] if debug else ["-g0"]
    link = [f"-L{libdir}", "-lkcovrt", f"-Wl,-rpath,{libdir}"] + ([ld] if ld else [])
    inc = ["-I", kcov.get_include(), "-I", str(out)]
    run([cc, *g, "-O2", "-fPIC", COVERAGE, *inc, "-c", out / "fixlib.c", "-o", out / "fixlib.o"])
    run([cc, "-shared", out / "fixlib.o", *link, "-o", out / "libfix.so"])
    run([cc, *g, "-O2", "-fPIE", COVERAGE, *inc, "-c", out / "fixprog.c", "-o", out / "fixprog.o"])
    run([cc, *g, "-O2", "-fPIE", *inc, "-c", out / "fixmain.c", "-o", out / "fixmain.o"])
    run([cc, "-pie", out / "fixprog.o", out / "fixmain.o", f"-L{out}", "-lfix",
         f"-Wl,-rpath,{out}", *link, "-o", out / "fixprog"])
    return Fixture(toolchain, out, out / "fixprog", out / "libfix.so")


def kcov_run() -> str:
    exe = VENV_BIN / "kcov-run"
    return str(exe) if exe.is_file() else "kcov-run"


def run_fixture(fx: Fixture, kind: str, arg: str, workdir: Path
                ) -> tuple[npt.NDArray[np.uint64], list[ModuleMap]]:
    """Run fixprog under kcov-run; the PCs it recorded and its module map."""
    maps = workdir / f"maps-{kind}-{os.getpid()}-{abs(hash(arg))}"
    p = run([kcov_run(), fx.prog, kind, arg, maps])
    pcs = np.array([int(x, 16) for x in p.stdout.split()], dtype=np.uint64)
    assert len(pcs), f"no PCs recorded:\n{p.stderr}"
    return pcs, modules_from_maps(maps.read_text())
