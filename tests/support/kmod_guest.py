"""Helpers for the tests that run inside the VM, against kcov.ko.

The guest has loaded kcov.ko (/dev/kcov, /sys/kernel/debug/kcov) and the
instrumented kcovtest.ko (/dev/kcovtest, tests/kmod/data/kcovtest), whose
write handler is the kernel code the tests cover.  KCOV_KO and KCOVTEST_KO
name the two module files.
"""
from __future__ import annotations

import ctypes
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import kcov
from kcov import Abi, FreeBSDDeviceProvider, LinuxDeviceProvider, Provider

from tests.support.threads import join_os, run_in_thread

KCOVTEST = "/dev/kcovtest"
PARAMS = Path("/sys/module/kcov/parameters")
PAGE = os.sysconf("SC_PAGE_SIZE")
REPO = Path(__file__).resolve().parents[2]


class BsdDevice(FreeBSDDeviceProvider):
    """/dev/kcov spoken in one of the BSD ABIs.  The device's personality
    (module parameter bsd_abi) is set to that ABI at each open, so errno
    rules for unknown commands and unsized mmaps are that ABI's too."""

    def __init__(self, abi: str, path: str = "/dev/kcov") -> None:
        super().__init__(path)
        self.abi = Abi.parse(abi)
        self.personality = abi

    def open(self) -> int:
        set_bsd_abi(self.personality)
        try:
            return super().open()
        finally:
            set_bsd_abi("freebsd")


def set_bsd_abi(name: str) -> None:
    (PARAMS / "bsd_abi").write_text(name)


def provider(abi: str, exec_ok: bool = False) -> Provider:
    """The device node that speaks `abi`; with `exec_ok`, one on a file
    system that allows PROT_EXEC mappings (see exec_node)."""
    if abi == "linux":
        return LinuxDeviceProvider(exec_node("/sys/kernel/debug/kcov") if exec_ok
                                   else "/sys/kernel/debug/kcov")
    return BsdDevice(abi, exec_node("/dev/kcov") if exec_ok else "/dev/kcov")


def open_dev(abi: str, entries: int | None = PAGE // 8, exec_ok: bool = False) -> kcov.Kcov:
    return kcov.open(provider(abi, exec_ok), entries=entries)


_EXEC_DIR = Path("/tmp/kcov-exec-dev")


def exec_node(path: str) -> str:
    """A second node for the device (or debugfs file) at `path`, on a tmpfs
    mounted without noexec.  /dev is devtmpfs mounted noexec, where the VFS
    refuses any PROT_EXEC mapping with EPERM before the driver sees it, so
    the ABIs' own answers to PROT_EXEC can only be seen through such a node.
    A debugfs file is reached through a bind mount instead."""
    if not os.path.ismount(_EXEC_DIR):
        _EXEC_DIR.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=700,exec,dev", "kcovdev",
                        str(_EXEC_DIR)], check=True)
    node = _EXEC_DIR / Path(path).name
    if path.startswith("/dev/"):
        if not node.exists():
            os.mknod(node, 0o600 | stat.S_IFCHR, os.stat(path).st_rdev)
        return str(node)
    dbg = _EXEC_DIR / "debugfs"
    if not os.path.ismount(dbg):
        dbg.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "debugfs", "-o", "exec", "none", str(dbg)], check=True)
    return str(dbg / Path(path).name)


def stats() -> dict[str, int]:
    """kcov.ko's live object counters (descriptors, bound tasks, buffers)."""
    return {n: int((PARAMS / f"live_{n}").read_text())
            for n in ("descriptors", "tasks", "buffers")}


def refcnt() -> int:
    return int(Path("/sys/module/kcov/refcnt").read_text())


def wait_until(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def work(arg: bytes = b"7") -> None:
    """One write to the instrumented module: the "syscall" being traced."""
    fd = os.open(KCOVTEST, os.O_WRONLY)
    try:
        os.write(fd, arg)
    finally:
        os.close(fd)


def kcovtest_counters() -> dict[str, int]:
    fd = os.open(KCOVTEST, os.O_RDONLY)
    try:
        text = os.read(fd, 200).decode()
    finally:
        os.close(fd)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", text)}


def in_thread(fn: Callable[[], Any]) -> None:
    """Run `fn` in a fresh thread, wait for its task to exit, re-raise."""
    run_in_thread(fn, join_os)


def text_range() -> tuple[int, int]:
    """[start, end] of kcovtest.ko's .text in the running kernel."""
    from elftools.elf.elffile import ELFFile

    start = int(Path("/sys/module/kcovtest/sections/.text").read_text(), 16)
    with open(os.environ["KCOVTEST_KO"], "rb") as f:
        size = ELFFile(f).get_section_by_name(".text").data_size
    return start, start + size


def function_ranges() -> dict[str, tuple[int, int]]:
    """kcovtest's text symbols: name -> [start, next symbol)."""
    syms = []
    for line in Path("/proc/kallsyms").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3] == "[kcovtest]" and parts[1] in "tT":
            syms.append((int(parts[0], 16), parts[2]))
    syms.sort()
    lo, hi = text_range()
    out = {}
    for i, (addr, name) in enumerate(syms):
        end = syms[i + 1][0] if i + 1 < len(syms) else hi + 1
        out[name] = (addr, end)
    return out


_libc = ctypes.CDLL(None, use_errno=True)


def mprotect(addr: int, length: int, prot: int) -> None:
    if _libc.mprotect(ctypes.c_void_p(addr), ctypes.c_size_t(length), prot) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")


# --- kcov.ko as a target of tests/support/contract.py --------------------------------

NO_CLOSE = """
import sys, kcov
from tests.support import kmod_guest as H
k = H.open_dev("freebsd", 512)
if sys.argv[1] == "enable":
    k.enable(kcov.Mode.PC)
    H.work(b"5")
    assert k.count > 0
print("exiting", k.state.name, flush=True)
sys.modules["__main__"].keep = k
"""


class KernelModule:
    """kcov.ko's devices: "a syscall" is a write to the instrumented
    kcovtest.ko, "thread exit" a real task exit."""

    exact_cmp = False

    def open(self, entries: int | None, abi: str = "freebsd", exec_ok: bool = False) -> kcov.Kcov:
        return open_dev(abi, entries, exec_ok)

    def work(self, n: int) -> None:
        work(str(n).encode())

    cmp = work  # kcovtest's write handler compares the number it is given

    def join(self, t: threading.Thread) -> None:
        join_os(t)

    def in_thread(self, fn: Callable[[], object]) -> None:
        in_thread(fn)

    def stats(self) -> dict[str, int]:
        return stats()

    def no_close(self, what: str) -> subprocess.CompletedProcess[str]:
        # The guest's PYTHONPATH (tests/support/vm.py) has the repository.
        return subprocess.run([sys.executable, "-c", NO_CLOSE, what], capture_output=True, text=True,
                              timeout=120)
