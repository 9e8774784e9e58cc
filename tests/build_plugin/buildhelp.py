"""Helpers shared by the kcov-build tests (imported by conftest.py and the tests).

Every test drives the *installed* console scripts (kcov-build, kcov-run next
to the running interpreter) on the C fixtures in data/, with build products
under pytest's tmp directories.  Missing compilers or tools skip, with the
reason, instead of failing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest

from tests.support.prereq import missing, own

DATA = Path(__file__).parent / "data"
BIN = Path(sys.executable).parent
COMPILERS = ("clang-19", "clang-14", "gcc-12")
# The record tests cover one compiler of each family's instrumentation pass.
RECORD_COMPILERS = ("clang-19", "gcc-12")


def script(name: str) -> Path:
    path = BIN / name
    own(path.is_file(), f"{name} is not installed next to {sys.executable}")
    return path


def need_tool(*names: str) -> str:
    """The first of `names` on PATH, or skip."""
    for n in names:
        path = shutil.which(n)
        if path is not None:
            return path
    missing(f"none of {', '.join(names)} is installed")


def run(cmd: Sequence[str | os.PathLike[str]], *, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run cmd with captured text output; on unexpected failure show it all."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def kcov_build(*args: str | os.PathLike[str], check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return run([script("kcov-build"), *args], check=check, **kw)


def kcov_run(*args: str | os.PathLike[str], check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return run([script("kcov-run"), *args], check=check, **kw)




@dataclass(frozen=True)
class Client:
    """client.c (not instrumented) linked with pc_target.c and cmp_target.c."""

    cc: str
    exe: Path


def elf_dynamic(path: Path) -> tuple[list[str], list[str]]:
    """(DT_NEEDED names, DT_RUNPATH/DT_RPATH directories) of an ELF file."""
    elffile = pytest.importorskip("elftools.elf.elffile")
    needed: list[str] = []
    paths: list[str] = []
    with open(path, "rb") as f:
        dyn = elffile.ELFFile(f).get_section_by_name(".dynamic")
        if dyn is None:
            return needed, paths
        for tag in dyn.iter_tags():
            if tag.entry.d_tag == "DT_NEEDED":
                needed.append(tag.needed)
            elif tag.entry.d_tag == "DT_RUNPATH":
                paths += tag.runpath.split(":")
            elif tag.entry.d_tag == "DT_RPATH":
                paths += tag.rpath.split(":")
    return needed, paths


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    defined: bool

    def __contains__(self, addr: int) -> bool:
        return self.value <= addr < self.value + self.size


def elf_symbols(path: Path) -> tuple[str, dict[str, Symbol]]:
    """(e_type, symbols by name) from .symtab, falling back to .dynsym."""
    elffile = pytest.importorskip("elftools.elf.elffile")
    out: dict[str, Symbol] = {}
    with open(path, "rb") as f:
        elf = elffile.ELFFile(f)
        etype = elf.header.e_type
        for secname in (".dynsym", ".symtab"):
            sec = elf.get_section_by_name(secname)
            if sec is None:
                continue
            for s in sec.iter_symbols():
                if not s.name:
                    continue
                out[s.name] = Symbol(
                    s.name, s.entry.st_value, s.entry.st_size, s.entry.st_shndx != "SHN_UNDEF"
                )
    return etype, out
