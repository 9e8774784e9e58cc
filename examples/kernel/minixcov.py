"""Per-operation kcov coverage of fs/minix, inside a VM running the stock kernel.

Runs as root in the guest, after `insmod kcov.ko` and `insmod minix.ko` (the
instrumented build of linux-source-6.1's fs/minix, see kmodules.py).  It
makes a minix file system with mkfs.minix in a file on a private tmpfs,
mounts it through a loop device, and traces each file operation (create,
write, fsync, read, mkdir, readdir, rename, unlink, stat) separately with
kcov on /sys/kernel/debug/kcov (Linux ABI) or /dev/kcov (FreeBSD ABI).

Only instrumented code records, and on the stock kernel the only
instrumented code on these paths is minix.ko, so every PC is a return
address inside minix.ko.  PCs are symbolised with the .ko's own symbol
table plus the load address of each section, which the kernel publishes in
/sys/module/minix/sections/ (cold code sits in .text.unlikely).

    python minixcov.py --ko minix.ko [--device linux|freebsd] [--json OUT]

Used by demo_kernel.py (make demo-kernel) and by tests/kmod's guest tests.
"""
from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import numpy.typing as npt
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

import kcov
from kcov import FreeBSDDeviceProvider, LinuxDeviceProvider, Mode
from kcov._base import write_atomic

OPS = ("create", "write", "fsync", "read", "mkdir", "readdir", "rename", "unlink", "stat")
DEVICES = {"linux": "/sys/kernel/debug/kcov", "freebsd": "/dev/kcov"}
ENTRIES = 1 << 16  # 512 KiB: far more than any one operation records
FILE_BYTES = 96 * 1024  # more than 7 direct zones: reaches the indirect block


@dataclass(frozen=True)
class Function:
    name: str
    start: int
    end: int


class ModuleText:
    """The executable sections of a loaded module and its functions, at
    their run-time addresses."""

    def __init__(self, name: str, ko: Path) -> None:
        sysfs = Path("/sys/module") / name / "sections"
        self.sections: dict[str, tuple[int, int]] = {}
        funcs: list[Function] = []
        with open(ko, "rb") as f:
            elf = ELFFile(f)
            index: dict[int, str] = {}
            for i, sec in enumerate(elf.iter_sections()):
                base = sysfs / sec.name
                if sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and sec["sh_size"] and base.exists():
                    start = int(base.read_text(), 16)
                    self.sections[sec.name] = (start, start + sec["sh_size"])
                    index[i] = sec.name
            symtab = elf.get_section_by_name(".symtab")
            assert isinstance(symtab, SymbolTableSection), f"{ko} has no symbol table"
            for sym in symtab.iter_symbols():
                shndx = sym["st_shndx"]
                if sym["st_info"]["type"] == "STT_FUNC" and isinstance(shndx, int) and shndx in index:
                    start = self.sections[index[shndx]][0] + sym["st_value"]
                    funcs.append(Function(sym.name, start, start + max(sym["st_size"], 1)))
        funcs.sort(key=lambda fn: fn.start)
        self.functions = funcs
        self._starts = [fn.start for fn in funcs]

    def section_of(self, pc: int) -> str | None:
        """The section holding the call that returns to `pc`."""
        for name, (lo, hi) in self.sections.items():
            if lo <= pc - 1 < hi:
                return name
        return None

    def function_of(self, pc: int) -> str | None:
        """The function holding the call that returns to `pc` (a kcov PC is
        a return address, so it may be one past the function's end)."""
        i = bisect.bisect_right(self._starts, pc - 1) - 1
        if i >= 0 and pc - 1 < self.functions[i].end:
            return self.functions[i].name
        return None


@dataclass
class OpCoverage:
    """What one traced operation recorded."""

    name: str
    records: int
    overflowed: bool
    pcs: npt.NDArray[np.uint64]  # distinct, sorted
    functions: dict[str, int] = field(default_factory=dict)  # name -> distinct PCs


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def load_modules(kcov_ko: Path | None, minix_ko: Path) -> None:
    """Load kcov.ko (unless loaded) and our minix.ko in place of the stock
    one; fail if a minix other than ours ends up loaded."""
    if kcov_ko is not None and not Path("/sys/module/kcov").exists():
        sh("insmod", str(kcov_ko))
    if Path("/sys/module/minix").exists() and not is_ours("minix"):
        sh("rmmod", "minix")
    if not Path("/sys/module/minix").exists():
        sh("insmod", str(minix_ko))
    if not is_ours("minix"):
        raise RuntimeError("the minix module loaded is not the out-of-tree build")
    sh("modprobe", "loop")
    if not os.path.ismount("/sys/kernel/debug"):
        sh("mount", "-t", "debugfs", "none", "/sys/kernel/debug")


def is_ours(module: str) -> bool:
    """Out-of-tree modules taint the kernel with O; the stock one does not."""
    taint = Path("/sys/module") / module / "taint"
    return taint.exists() and "O" in taint.read_text()


@contextlib.contextmanager
def minix_fs(version: int = 3) -> Iterator[Path]:
    """A fresh minix file system (mkfs.minix) in an image on a private
    tmpfs, loop-mounted; yields its mount point."""
    top = Path(tempfile.mkdtemp(prefix="minixcov-"))
    sh("mount", "-t", "tmpfs", "-o", "size=64m,mode=700", "minixcov", str(top))
    try:
        image, mnt = top / "minix.img", top / "mnt"
        with open(image, "wb") as f:
            f.truncate(8 << 20)
        sh("mkfs.minix", f"-{version}", str(image))
        mnt.mkdir()
        sh("mount", "-t", "minix", "-o", "loop", str(image), str(mnt))
        try:
            yield mnt
        finally:
            sh("umount", str(mnt))
    finally:
        umount_when_free(top)
        top.rmdir()


def umount_when_free(path: Path, timeout: float = 20.0) -> None:
    """Unmount `path`, waiting while it is busy: the loop device lets go of
    the image only at its last close, and udev may still hold it open for a
    moment after the file system on it is unmounted."""
    end = time.monotonic() + timeout
    while True:
        p = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
        if p.returncode == 0:
            return
        if time.monotonic() > end:
            raise RuntimeError(f"umount {path}: {p.stderr.strip()}")
        time.sleep(0.1)


def drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("1")


def operations(root: Path) -> Iterator[tuple[str, Callable[[], object]]]:
    """(name, traced body) per operation; set-up between bodies is untraced."""
    path, dirp = root / "file", root / "dir"
    data = bytes(range(256)) * (FILE_BYTES // 256)
    yield "create", lambda: os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    fd = os.open(path, os.O_RDWR)
    try:
        yield "write", lambda: os.write(fd, data)
        yield "fsync", lambda: os.fsync(fd)
        # The data is on disk; drop the cached pages so read goes to minix.
        drop_page_cache()
        os.lseek(fd, 0, os.SEEK_SET)
        yield "read", lambda: os.read(fd, FILE_BYTES)
    finally:
        os.close(fd)
    yield "mkdir", lambda: os.mkdir(dirp)
    yield "readdir", lambda: os.listdir(root)
    yield "rename", lambda: os.rename(path, dirp / "moved")
    yield "unlink", lambda: os.unlink(dirp / "moved")
    yield "stat", lambda: os.stat(dirp)


def open_device(device: str) -> kcov.Kcov:
    provider = (LinuxDeviceProvider(DEVICES["linux"]) if device == "linux"
                else FreeBSDDeviceProvider(DEVICES["freebsd"]))
    return kcov.open(provider, entries=ENTRIES)


def run_workload(text: ModuleText, device: str = "linux",
                 mode: Mode = Mode.PC) -> list[OpCoverage]:
    """Trace each operation on a fresh file system; per-operation results.
    In CMP mode `pcs` are the comparisons' PCs."""
    out = []
    with open_device(device) as k, minix_fs() as root:
        for name, body in operations(root):
            with k.trace(mode):
                body()
            if mode == Mode.PC:
                snap = k.snapshot()
                raw, over = snap.pcs, snap.overflowed
            else:
                comps = k.comparisons()
                raw, over = np.array(comps.pc, copy=True), comps.overflowed
            pcs = np.unique(raw)
            funcs: dict[str, int] = {}
            for pc in pcs.tolist():
                fn = text.function_of(pc) or "?"
                funcs[fn] = funcs.get(fn, 0) + 1
            out.append(OpCoverage(name, int(len(raw)), bool(over), pcs, funcs))
    return out


def to_json(ops: list[OpCoverage], text: ModuleText) -> dict[str, object]:
    return {
        "sections": {k: list(v) for k, v in text.sections.items()},
        "ops": [{"name": o.name, "records": o.records, "overflowed": o.overflowed,
                 "pcs": [int(p) for p in o.pcs.tolist()],
                 "outside": sum(1 for p in o.pcs.tolist() if text.section_of(p) is None),
                 "functions": o.functions} for o in ops],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ko", type=Path, required=True, help="the instrumented minix.ko")
    ap.add_argument("--kcov-ko", type=Path, help="kcov.ko, loaded first if not loaded")
    ap.add_argument("--device", choices=sorted(DEVICES), default="linux")
    ap.add_argument("--json", type=Path, help="write the results here (default: stdout)")
    args = ap.parse_args(argv)
    load_modules(args.kcov_ko, args.ko)
    text = ModuleText("minix", args.ko)
    result = json.dumps(to_json(run_workload(text, args.device), text))
    if args.json is None:
        print(result)
    else:
        write_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
