"""kcov-build --sbcc (and --pgo-generate) for out-of-tree kernel modules
(make -C KDIR M=DIR).

Kernel code gets compile flags only (wrap.py: -fprofile-instr-generate
-fcoverage-mapping); what a module additionally needs is at its final link
(scripts/Makefile.modfinal: `ld -r ... $(LDFLAGS_MODULE) -T module.lds`),
passed as LDFLAGS_MODULE on the make command line:

- a linker script that gathers the __llvm_prf_{data,cnts,bits,names,vnds}
  input sections into one output section each, with boundary symbols
  (__kcovprof_<sec>_begin/_end) around them, and defines the absolute
  symbol __kcovprof_raw_version.  A relocatable link defines no
  __start_/__stop_ symbols, and clang puts each function's counters and
  data in a COMDAT group of its own: without the script ld.lld leaves one
  section per function, which the module loader scatters;
- a data-only object holding the address of kcovprof_register, so that the
  module needs kcov.ko: the loader refuses it without kcov.ko, and depmod
  records the dependency.

kcov.ko finds the symbols in the module's symbol table when the module is
loaded (runtime/linux/kprofile.c explains the choice) and serves its
profile as /sys/kernel/debug/kcov-profile/<module>.profraw.

GNU ld -r keeps COMDAT group members apart even under a script, so a
kernel linked by GNU ld is refused with a one-line message.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from kcov._base.errors import ToolkitError
from kcov._base.files import atomic_target

from ._util import write_atomic
from .settings import Settings
from .toolchain import sbcc_raw_version

LDS_NAME = "kcovprof-kmod.lds"
DEP_NAME = "kcovprof-kmod-dep.o"
SECTIONS = ("data", "cnts", "bits", "names", "vnds")


class KmodProfileError(ToolkitError):
    exit_status = os.EX_UNAVAILABLE


def linker_script(raw_version: int | None) -> str:
    lines = [
        "/* kcov-build --sbcc: the final link of a kernel module (LDFLAGS_MODULE).",
        " * Boundary symbols for kcov.ko's profile registry (runtime/linux/kprofile.c). */",
        "SECTIONS {",
    ]
    for sec in SECTIONS:
        align = " ALIGN(8)" if sec in ("data", "cnts", "vnds") else ""
        lines.append(
            f"\t__llvm_prf_{sec} 0 :{align} {{ __kcovprof_{sec}_begin = .; "
            f"KEEP(*(__llvm_prf_{sec})) __kcovprof_{sec}_end = .; }}"
        )
    lines.append("}")
    lines.append(f"__kcovprof_raw_version = {raw_version or 0};")
    return "\n".join(lines) + "\n"


DEP_ASM = """\
/* kcov-build --sbcc: makes a kernel module depend on kcov.ko. */
\t.section .rodata.kcovprof, "a"
\t.p2align 3
\t.globl __kcovprof_needs_kcov_ko
__kcovprof_needs_kcov_ko:
\t.quad kcovprof_register
"""


def profiled(s: Settings) -> bool:
    """Whether the build instruments for a raw profile: --sbcc, or IR PGO's
    --pgo-generate (whose value-profiling hooks kcov.ko exports too)."""
    return s.sbcc or bool(getattr(s, "pgo_generate", False))


def _external_module(args: Sequence[str]) -> bool:
    return any(a.startswith(("M=", "KBUILD_EXTMOD=")) for a in args)


def _ld_is_lld(conf: dict[str, str]) -> bool:
    return conf.get("CONFIG_LD_IS_LLD") == "y"


def kbuild_args(cmd: Sequence[str], s: Settings, state: Path, kconfig: dict[str, str]) -> list[str]:
    """The make command line with LDFLAGS_MODULE for an --sbcc (or
    --pgo-generate) module build; cmd unchanged if it is not one."""
    if not profiled(s) or os.path.basename(cmd[0]) not in ("make", "gmake") or not _external_module(cmd[1:]):
        return list(cmd)
    if not kconfig:
        return list(cmd)  # not a kernel build directory kbuild can use anyway
    if kconfig.get("CONFIG_MODULES") != "y":
        raise KmodProfileError("--sbcc: the kernel in -C has no CONFIG_MODULES; it cannot load modules")
    if not _ld_is_lld(kconfig):
        raise KmodProfileError(
            "--sbcc for kernel modules needs a kernel linked by ld.lld (built with LLVM=1): "
            "GNU ld -r keeps clang's per-function profile sections apart"
        )
    version = sbcc_raw_version(s.version) if s.family == "clang" else None
    lds = state / LDS_NAME
    text = linker_script(version)
    if not lds.is_file() or lds.read_text() != text:
        write_atomic(lds, text)
    dep = state / DEP_NAME
    if not dep.is_file():
        assert s.cc is not None, "settings not finished: no compiler"
        _assemble(s.cc, dep)
    user = ""
    rest = []
    for a in cmd[1:]:
        if a.startswith("LDFLAGS_MODULE="):
            user = a.split("=", 1)[1]
        else:
            rest.append(a)
    flags = " ".join(x for x in (user, f"-T {lds}", str(dep)) if x)
    extra = [f"LDFLAGS_MODULE={flags}"]
    if not any(a.startswith(("LLVM=", "LD=")) for a in rest):
        # Without LLVM= (or LD=) kbuild links the module with GNU ld, whose
        # -r output would leave the boundary symbols around empty sections.
        extra.append(f"LD={lld_for(kconfig)}")
    return [cmd[0], *rest, *extra]


def lld_for(kconfig: dict[str, str]) -> str:
    """ld.lld of the kernel's clang (ld.lld-19 for clang 19), else ld.lld."""
    major = int(kconfig.get("CONFIG_LLD_VERSION") or kconfig.get("CONFIG_CLANG_VERSION") or 0) // 10000
    for name in ([f"ld.lld-{major}"] if major else []) + ["ld.lld"]:
        if shutil.which(name):
            return name
    raise KmodProfileError("--sbcc: the kernel was linked by ld.lld, which is not installed")


def _assemble(cc: str, out: Path) -> None:
    with atomic_target(out) as tmp:
        proc = subprocess.run([cc, "-c", "-x", "assembler", "-", "-o", str(tmp)], input=DEP_ASM,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["failed"])[0]
            raise KmodProfileError(f"--sbcc: assembling {out.name} with {cc}: {first}", os.EX_SOFTWARE)
