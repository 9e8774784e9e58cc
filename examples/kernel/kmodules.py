"""Build kcov.ko and an instrumented minix.ko for the installed Debian kernel.

The stock Debian kernel has no CONFIG_KCOV; kcov.ko (runtime/linux) gives
it a /dev/kcov and a /sys/kernel/debug/kcov, and exports the
SanitizerCoverage callbacks.  Any module built against the same headers
with `kcov-build --mode pc,cmp --runtime none` resolves its callbacks to
kcov.ko.  The module here is real kernel code that no one in this project
wrote: fs/minix from Debian's linux-source-6.1 tarball, built out of tree
as minix.ko, to be loaded in place of the stock minix.ko.

Used by examples/kernel/demo_kernel.py (make demo-kernel) and by the
tests in tests/kmod.  The tarball is 130 MiB of xz; the few members needed
are extracted once into .cache/ (about 8 s), keyed by the tarball's size
and mtime so that an upgraded linux-source package is picked up.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from kcov._base import atomic_directory, locked
from kcov_build.distro import NoStockKernel, StockKernel, stock_kernel

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache"
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
TOP = "linux-source-6.1"
# The stock kernel is derived from what is installed (kcov_build.distro):
# the newest /boot/vmlinuz-6.1.*-amd64 whose headers are present.  Its
# series must be the tarball's, since minix.ko is built from that source.
SERIES = "6.1"
MODULE_SRC = REPO / "runtime" / "linux"
# Everything the tests and the demo read from the tarball, extracted in one
# pass (xz cannot seek: each extraction decompresses the whole archive).
MEMBERS = (f"{TOP}/fs/minix", f"{TOP}/Documentation/dev-tools/kcov.rst")
MINIX_KBUILD = """\
# fs/minix of linux-source-6.1, built out of tree (examples/kernel/kmodules.py)
obj-m := minix.o
minix-objs := bitmap.o itree_v1.o itree_v2.o namei.o inode.o file.o dir.o
"""


class BuildError(RuntimeError):
    """A build step failed; the message carries the tail of its output."""


@dataclass(frozen=True)
class Built:
    """A module built out of tree: its directory and how long it took."""

    dir: Path
    seconds: float

    @property
    def ko(self) -> Path:
        return next(self.dir.glob("*.ko"))

    @property
    def symvers(self) -> Path:
        return self.dir / "Module.symvers"


def venv_bin() -> Path:
    """The directory of the running interpreter's console scripts."""
    return Path(sys.executable).parent


def kcov_build_cmd() -> list[str]:
    exe = venv_bin() / "kcov-build"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "kcov_build"]


def run(cmd: Sequence[str], cwd: Path | None = None) -> float:
    """Run one build step with the venv on PATH; its duration in seconds."""
    t0 = time.monotonic()
    env = dict(os.environ, PATH=os.pathsep.join([str(venv_bin()), os.environ.get("PATH", "")]))
    p = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if p.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({p.returncode}):\n"
                         f"{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return time.monotonic() - t0


def linux_source(cache: Path = CACHE) -> Path:
    """The extracted subset of linux-source-6.1 (MEMBERS); its top directory.

    Extracted once under a lock into a temporary directory, then renamed
    into place, so concurrent or interrupted runs never see half a tree.
    """
    st = TARBALL.stat()
    dest = cache / f"{TOP}-{st.st_size}-{int(st.st_mtime)}"
    if (dest / TOP).is_dir():
        return dest / TOP
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache / f"{TOP}.lock"):
        if not (dest / TOP).is_dir():
            with atomic_directory(dest) as tmp:
                run(["tar", "-xJf", str(TARBALL), "-C", str(tmp), *MEMBERS])
    return dest / TOP


def build_kcov(out: Path, kdir: Path | None = None) -> Built:
    """kcov.ko, by runtime/linux/Makefile, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    kdir = kdir or stock().headers
    secs = run(["make", "-C", str(MODULE_SRC), f"OUT={out}", f"KDIR={kdir}"])
    return Built(out, secs)


def stage_minix(out: Path, src: Path) -> None:
    """Copy fs/minix's sources into `out` with our Kbuild (not its Makefile,
    which needs CONFIG_MINIX_FS from the kernel tree's own build)."""
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted((src / "fs" / "minix").iterdir()):
        if f.suffix in (".c", ".h"):
            target = out / f.name
            if not target.exists() or target.read_bytes() != f.read_bytes():
                shutil.copy2(f, target)
    kbuild = out / "Kbuild"
    if not kbuild.exists() or kbuild.read_text() != MINIX_KBUILD:
        kbuild.write_text(MINIX_KBUILD)


def build_minix(out: Path, kcov_symvers: Path, kdir: Path | None = None,
                src: Path | None = None) -> Built:
    """minix.ko from linux-source-6.1's fs/minix, instrumented with
    trace-pc,trace-cmp by kcov-build, its callbacks resolved against
    kcov.ko's Module.symvers."""
    stage_minix(out, src if src is not None else linux_source())
    secs = run([*kcov_build_cmd(), "--mode", "pc,cmp", "--runtime", "none", "--",
                "make", "-C", str(kdir or stock().headers), f"M={out}",
                f"KBUILD_EXTRA_SYMBOLS={kcov_symvers}", "modules"])
    return Built(out, secs)


def stock() -> StockKernel:
    """The stock kernel to build for and boot (NoStockKernel if none)."""
    return stock_kernel(SERIES)


def missing_prerequisites() -> list[str]:
    """What this machine lacks to build and boot (empty when all is there)."""
    missing = []
    try:
        stock()
    except NoStockKernel as e:
        missing.append(str(e))
    if shutil.which("gcc-12") is None:
        missing.append("gcc-12 (the kernel's compiler)")
    if not TARBALL.is_file():
        missing.append(f"{TARBALL} (apt install linux-source-6.1)")
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86_64 (apt install qemu-system-x86)")
    if shutil.which("vng", path=os.pathsep.join([str(venv_bin()), os.environ.get("PATH", "")])) is None:
        missing.append("vng (pip install virtme-ng)")
    return missing
