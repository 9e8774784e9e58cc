"""Run inside the VM: per-syscall kernel coverage through the kcov package.

Prints one JSON object on stdout: the kernel text bounds from /proc/kallsyms
and, per traced syscall, the PCs (PC mode) or comparison records (CMP mode)
that kcov.open(provider="linux") returned.  The host test judges them.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

import kcov


def kallsyms(*names: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, _kind, name = line.split()[:3]
            if name in names:
                out[name] = int(addr, 16)
    return out


def trace_pcs(k: kcov.Kcov, call) -> list[int]:
    with k.trace(kcov.Mode.PC):
        call()
    pcs = k.pcs()
    assert isinstance(pcs, np.ndarray) and pcs.dtype == np.uint64, (type(pcs), pcs.dtype)
    return [int(x) for x in pcs]


def main() -> int:
    result: dict[str, object] = {"kallsyms": kallsyms("_stext", "_etext")}
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    try:
        with kcov.open(provider="linux", entries=1 << 16) as k:
            result["abi"] = k.abi.name
            result["getppid"] = trace_pcs(k, os.getppid)
            result["getppid2"] = trace_pcs(k, os.getppid)
            result["read"] = trace_pcs(k, lambda: os.pread(fd, 64, 0))
            try:
                with k.trace(kcov.Mode.CMP):
                    os.pread(fd, 64, 0)
                c = k.comparisons()
                result["cmp"] = {
                    "n": len(c),
                    "pc": [int(x) for x in c.pc],
                    "size": sorted({int(x) for x in c.size}),
                    "const": int(np.count_nonzero(c.is_const)),
                }
            except kcov.KcovUnsupportedError as e:
                result["cmp"] = {"unsupported": str(e)}
    finally:
        os.close(fd)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
