"""Run inside the VM (root) on the kcov VM kernel with DWARF: trace two
system calls with the kernel's own kcov and write a kcov-pcs dump.

    guest_kernel_pcs.py --vmlinux VMLINUX --out DUMP

Tests "getppid" and "pread"; vmlinux is placed with _stext from
/proc/kallsyms (kcov.report.kernel_maps).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import kcov
from kcov.report import kernel_maps, write_pcs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmlinux", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    runs = {}
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    try:
        with kcov.open(provider="linux", entries=1 << 16) as k:
            for name, call in (("getppid", os.getppid), ("pread", lambda: os.pread(fd, 64, 0))):
                with k.trace(kcov.Mode.PC):
                    call()
                runs[name] = k.snapshot().pcs
    finally:
        os.close(fd)
    write_pcs(args.out, runs, kernel_maps(args.vmlinux),
              comment="kernel syscalls (tests/report/data/guest_kernel_pcs.py)")
    print(f"{sum(len(v) for v in runs.values())} PCs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
