"""Which functions of an object file call which SanitizerCoverage callbacks.

Read from the disassembly with relocations (``objdump -dr``), so it works on
relocatable objects (calls are relocations against the callback symbol), on
linked executables and DSOs (calls through the PLT), and on kernel modules.
This is how exclusions are checked: an excluded function has no callback
call, an instrumented one has at least one.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

__all__ = ["callback_calls", "objdump_tool", "ObjdumpError"]

_FUNC = re.compile(r"^[0-9a-f]+ <(?P<name>[^>]+)>:$")
# A relocation line ("R_X86_64_PLT32	__sanitizer_cov_trace_pc-0x4") or a call
# through the PLT ("call ... <__sanitizer_cov_trace_pc@plt>").
_REF = re.compile(r"(?:R_\w+\s+|<)(?P<sym>__sanitizer_cov_\w+)(?:@plt)?(?:[-+]0x[0-9a-f]+)?>?")


class ObjdumpError(RuntimeError):
    """objdump is missing or could not read the file."""


def objdump_tool() -> str:
    for name in ("objdump", "llvm-objdump-19", "llvm-objdump"):
        path = shutil.which(name)
        if path is not None:
            return path
    raise ObjdumpError("no objdump found (install binutils)")


def callback_calls(path: str | Path) -> dict[str, dict[str, int]]:
    """Map each function in PATH to {callback name: number of references}.

    Functions with no callback reference are present with an empty dict, so
    "not instrumented" and "not there" can be told apart.
    """
    proc = subprocess.run(
        [objdump_tool(), "-dr", "--no-show-raw-insn", str(path)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        msg = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise ObjdumpError(f"objdump {path}: {msg}")
    out: dict[str, dict[str, int]] = {}
    current: defaultdict[str, int] | None = None
    for line in proc.stdout.splitlines():
        m = _FUNC.match(line)
        if m is not None:
            name = m.group("name")
            if name.endswith("@plt") or name.startswith("."):
                current = None
                continue
            current = defaultdict(int)
            out[name] = current
            continue
        if current is None:
            continue
        # In relocatable objects a call shows both "call <x>" and the
        # relocation line; count the relocation only.
        if "R_" in line or ("call" in line and "@plt>" in line):
            r = _REF.search(line)
            if r is not None:
                current[r.group("sym")] += 1
    return {k: dict(v) for k, v in out.items()}
