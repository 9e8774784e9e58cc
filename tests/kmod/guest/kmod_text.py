"""Where recorded PCs may lie, for the guest tests of real and test modules.

A kcov PC is the return address of a coverage call.  gcc compiles a
coverage call that ends a function as a sibling call (`jmp
__sanitizer_cov_trace_pc`), and then the "return address" is that of the
instrumented function's caller: for a module's callbacks run by the core
kernel (VFS, tracepoints), an address in the kernel's own text.  In-tree
kcov records the same addresses.  So PCs must lie in the module's text,
except for such sibling-call PCs, which lie in the core kernel's text and
exist only if the module has sibling coverage calls.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Iterable


from examples.kernel.minixcov import ModuleText  # noqa: F401 - re-exported for the tests


def kernel_text() -> tuple[int, int]:
    """[_stext, _etext) of the running kernel, from /proc/kallsyms."""
    syms = {}
    for line in Path("/proc/kallsyms").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("_stext", "_etext"):
            syms[parts[2]] = int(parts[0], 16)
    assert set(syms) == {"_stext", "_etext"} and syms["_stext"] != 0, \
        f"/proc/kallsyms hides addresses: {syms}"
    return syms["_stext"], syms["_etext"]


def sibling_coverage_calls(ko: Path) -> int:
    """How many coverage calls in `ko` are sibling calls (jmp, not call)."""
    out = subprocess.run(["objdump", "-dr", str(ko)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    n = 0
    for insn, reloc in zip(out, out[1:]):
        if re.search(r"\sjmp\s", insn) and "__sanitizer_cov_trace_" in reloc:
            n += 1
    return n


def outside(text: ModuleText, pcs: Iterable[int]) -> list[int]:
    """The PCs that do not lie in the module's executable sections."""
    return [pc for pc in pcs if text.section_of(pc) is None]


def check_pcs(text: ModuleText, ko: Path, pcs: Iterable[int], what: str, max_sibling: int = 3) -> None:
    """Every PC is in the module's text, or a sibling-call return address
    in the core kernel's text (at most `max_sibling` of them)."""
    pcs = list(pcs)
    out = outside(text, pcs)
    if not out:
        return
    lo, hi = kernel_text()
    stray = [hex(pc) for pc in out if not lo <= pc < hi]
    assert not stray, f"{what}: PCs outside {ko.name} and the kernel's text: {stray}"
    assert len(out) <= max_sibling, f"{what}: {len(out)} of {len(pcs)} PCs outside {ko.name}"
    assert sibling_coverage_calls(ko) > 0, \
        f"{what}: PCs in the kernel's text but {ko.name} has no sibling coverage call"
