"""Run inside the VM (root): trace fs/minix file operations with kcov and
write a kcov-pcs dump, one test per operation.

    guest_kmod_pcs.py --kcov-ko kcov.ko --ko minix.ko --out DUMP

The workload is examples/kernel/minixcov.py's (mkfs.minix, a loop mount,
create, write, fsync, read, mkdir, readdir, rename, unlink, stat), traced
through /sys/kernel/debug/kcov; the module's section addresses come from
/sys/module/minix/sections/ (kcov.report.kmod_maps).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from examples.kernel import minixcov  # the VM harness puts the repository on PYTHONPATH

from kcov import Mode  # noqa: E402
from kcov.report import kmod_maps, write_pcs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kcov-ko", type=Path, required=True)
    ap.add_argument("--ko", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    minixcov.load_modules(args.kcov_ko, args.ko)
    runs = {}
    with minixcov.open_device("linux") as k, minixcov.minix_fs() as root:
        for name, body in minixcov.operations(root):
            with k.trace(Mode.PC):
                body()
            runs[name] = k.snapshot().pcs
    write_pcs(args.out, runs, kmod_maps("minix", args.ko),
              comment="fs/minix file operations (tests/report/data/guest_kmod_pcs.py)")
    print(f"{sum(len(v) for v in runs.values())} PCs in {len(runs)} operations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
