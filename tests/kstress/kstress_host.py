"""Helpers of the kernel stress suite's host side (a unique module name, so
it never collides with other test directories' helpers).

* The debug kernel: linux-source-6.1, tinyconfig + kcov.config + vm.config
  + kernel_conf/linux/debug.config (KASAN, KMEMLEAK, LOCKDEP, atomic-sleep
  checks; no CONFIG_KCOV), built by ``kcov-build kernel`` with gcc-12.  It is
  cached under .cache/kernel/debug-gcc-12-<key> like tests/support/kernels.py's
  kernels (the key covers the tarball, the three fragments, kcov-build
  kernel and the compiler); with CI=true it is built from scratch in
  pytest's temporary directory.
* Modules built against a kernel build tree or Debian's headers: kcov.ko
  (runtime/linux/Makefile), the instrumented kcovtest.ko of tests/kmod, and
  this suite's control module kstressctl.ko.
* The guest script, and the report files the guest leaves behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from kcov_build._util import write_atomic
from tests.support.junit import Junit
from tests.support.kernels import LINUX_TARBALL, builder_env, in_ci, kcov_build_cmd, need  # noqa: F401
from tests.support.modules import Module, run  # noqa: F401
from tests.support.prereq import REPO
from tests.support.vm import VENV_BIN, Vm, VmResult, dmesg_problems, find_vng  # noqa: F401

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GUEST = HERE / "guest"
KCONF = REPO / "kernel_conf"
DEBUG_CONFIG = KCONF / "linux" / "debug.config"
MODULE_SRC = REPO / "runtime" / "linux"
KCOVTEST_SRC = REPO / "tests" / "kmod" / "data" / "kcovtest"
STRESS_SRC = REPO / "tests" / "kmod" / "data" / "progs" / "stress.c"
COMPILER = "gcc-12"
CACHE = REPO / ".cache"


def fragments() -> list[Path]:
    """The fragments after kcov.config, which kcov-build kernel merges first."""
    return [KCONF / "linux" / "vm.config", DEBUG_CONFIG]


# --- The debug kernel ---------------------------------------------------------------


@dataclass(frozen=True)
class DebugKernel:
    outdir: Path
    image: Path
    seconds: float  # wall time of the build that produced it
    cached: bool

    @property
    def dotconfig(self) -> Path:
        return self.outdir / ".config"

    def config(self) -> dict[str, str]:
        """CONFIG_X -> value of the built .config ('n' for 'is not set')."""
        out: dict[str, str] = {}
        for line in self.dotconfig.read_text().splitlines():
            if (m := re.match(r"^(CONFIG_\w+)=(.*)$", line)) is not None:
                out[m.group(1)] = m.group(2)
            elif (m := re.match(r"^# (CONFIG_\w+) is not set$", line)) is not None:
                out[m.group(1)] = "n"
        return out


def _key() -> str:
    import kcov_build.kernel as kernel_mod

    h = hashlib.sha256()
    st = LINUX_TARBALL.stat()
    h.update(f"{LINUX_TARBALL}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for f in (KCONF / "linux" / "kcov.config", *fragments(), Path(kernel_mod.__file__)):
        h.update(f.read_bytes())
    ver = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=False).stdout
    h.update(ver.encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock, so two sessions never build into one directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_debug_kernel(tmp_factory: pytest.TempPathFactory | None, jobs: int | None = None) -> DebugKernel:
    """The debug kernel: from the cache, or built now (always built with CI=true)."""
    need(LINUX_TARBALL.is_file(), f"{LINUX_TARBALL} is missing (apt install linux-source-6.1)")
    need(shutil.which(COMPILER) is not None, f"{COMPILER} is not installed")
    if in_ci():
        assert tmp_factory is not None
        root = tmp_factory.mktemp("kernel-debug")
        outdir, cache, marker = root / "build", root / "cache", None
        lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    else:
        outdir = CACHE / "kernel" / f"debug-{COMPILER}-{_key()}"
        cache, marker = CACHE / "kcov-build", outdir / "kcov-test-built.json"
        lock = _locked(outdir.with_name(outdir.name + ".lock"))
    with lock:
        if marker is not None and marker.is_file():
            info = json.loads(marker.read_text())
            image = Path(info["image"])
            if image.is_file():
                return DebugKernel(outdir, image, float(info["seconds"]), True)
        cmd = [*kcov_build_cmd(), "kernel", "--src", str(LINUX_TARBALL)]
        for frag in fragments():
            cmd += ["--config", str(frag)]
        cmd += ["--compiler", COMPILER, "-j", str(jobs or os.cpu_count() or 2), "-O", str(outdir)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=builder_env(cache), check=False)
        seconds = time.monotonic() - t0
        assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
        image = Path(proc.stdout.strip().splitlines()[-1])
        assert image.is_file(), proc.stdout
        if marker is not None:
            write_atomic(marker, json.dumps({"image": str(image), "seconds": seconds}))
        sys.stderr.write(f"\n[kstress] debug kernel built in {seconds:.0f}s\n")
        return DebugKernel(outdir, image, seconds, False)


if __name__ == "__main__":  # build (or find) the cached debug kernel by hand
    k = build_debug_kernel(None, int(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"{k.image} ({'cached' if k.cached else 'built'}, {k.seconds:.0f}s)")


# --- Modules and programs -------------------------------------------------------------


def build_kcov(kdir: Path, out: Path, kasan: bool = False) -> Module:
    """kcov.ko by runtime/linux/Makefile.  With `kasan`, KASAN_SANITIZE=y on
    make's command line overrides the Kbuild's KASAN_SANITIZE := n, so that
    a KASAN kernel checks the module's own loads and stores too."""
    secs = run(["make", "-C", str(MODULE_SRC), f"OUT={out}", f"KDIR={kdir}",
                *(["KASAN_SANITIZE=y"] if kasan else [])])
    return Module(out, secs)


def build_kcovtest(kdir: Path, kcov: Module, out: Path) -> Module:
    """tests/kmod's kcovtest.ko with trace-pc,trace-cmp, its callbacks
    resolved against `kcov`'s Module.symvers."""
    shutil.copytree(KCOVTEST_SRC, out)
    secs = run([*kcov_build_cmd(), "--mode", "pc,cmp", "--runtime", "none", "--",
                "make", "-C", str(kdir), f"M={out}", f"KBUILD_EXTRA_SYMBOLS={kcov.symvers}", "modules"])
    return Module(out, secs)


def build_control(kdir: Path, out: Path) -> Module:
    """data/kstressctl: the negative control, a plain kbuild module."""
    shutil.copytree(DATA / "kstressctl", out)
    secs = run(["make", "-C", str(kdir), f"M={out}", "modules"])
    return Module(out, secs)


def build_programs(out: Path) -> Path:
    """stress-linux and stress-freebsd (tests/kmod/data/progs/stress.c, as
    tests/kmod builds them) and race (data/race.c)."""
    import kcov

    out.mkdir(parents=True, exist_ok=True)
    bsd = ["-DSTRESS_FREEBSD", f"-I{Path(kcov.get_include()) / 'kcov' / 'compat' / 'freebsd'}"]
    warn = ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
    run(["gcc", *warn, str(STRESS_SRC), "-o", str(out / "stress-linux")])
    run(["gcc", *warn, *bsd, str(STRESS_SRC), "-o", str(out / "stress-freebsd")])
    run(["gcc", *warn, str(DATA / "race.c"), "-o", str(out / "race")])
    return out


def has_kasan_checks(ko: Path) -> bool:
    """Whether a module calls KASAN's report functions (it is instrumented)."""
    syms = subprocess.run(["nm", "-u", str(ko)], capture_output=True, text=True, check=True).stdout
    return "__asan_report_" in syms


def vermagic(ko: Path) -> str:
    return subprocess.run(["modinfo", "-F", "vermagic", str(ko)], capture_output=True, text=True,
                          check=True).stdout.strip()


# --- The guest run ------------------------------------------------------------------

#: Triggers of the control module, in the order they must run (kstressctl.c).
CONTROL_STOCK = ("warn",)
CONTROL_DEBUG = ("warn", "lockdep", "sleep", "kasan", "leak")
KMEMLEAK = "/sys/kernel/debug/kmemleak"


@dataclass(frozen=True)
class Payload:
    """What one guest run loads and runs."""

    kind: str  # "stock" or "debug"
    kernel: Path
    kcov: Module
    kcovtest: Module
    control: Module
    programs: Path
    cycles: int

    @property
    def debug(self) -> bool:
        return self.kind == "debug"


def guest_script(p: Payload, out: Path) -> str:
    """The guest's /bin/sh script.  Phases are marked in the kernel log
    ("kstress: phase NAME"), so the host can judge each part of dmesg."""
    q = shlex.quote
    py = f"{q(str(VENV_BIN / 'python'))} -m pytest -p no:cacheprovider -m vm -q -rfE"
    lines = [
        f"OUT={q(str(out))}",
        'mark() { echo "kstress: phase $1" > /dev/kmsg; date +%s.%N > "$OUT/t-$1"; }',
        "mark boot-done",
    ]
    if p.debug:
        lines += [
            f"KL={KMEMLEAK}",
            '[ -w "$KL" ] || { echo "kstress: no kmemleak" >&2; exit 91; }',
            "cat /proc/lockdep_stats > $OUT/lockdep-before.txt",
            # Leaks of the boot, reported and then cleared (never reported
            # again).  Every kmemleak check scans twice: a scan skips the
            # objects whose contents changed since the one before (a new
            # object's included), so a leak is listed by the second scan.
            'echo scan > "$KL"; echo scan > "$KL"; cat "$KL" > $OUT/kmemleak-boot.txt; echo clear > "$KL"',
        ]
    lines += [
        "mark kcov",
        f"insmod {q(str(p.kcov.ko))} && insmod {q(str(p.kcovtest.ko))} || exit 90",
        # test_kstress_unload.py runs last (file order) and leaves both unloaded.
        f"{py} --durations=10 --junitxml=$OUT/main.xml {q(str(GUEST))}",
        "rc=$?",
        "mark kcov-done",
    ]
    if p.debug:
        lines += [
            "cat /proc/lockdep_stats > $OUT/lockdep-after.txt",
            # kmemleak reports objects older than 5 s only.
            'sleep 6; echo scan > "$KL"; echo scan > "$KL"; cat "$KL" > $OUT/kmemleak-kcov.txt',
            "mark kmemleak-done",
        ]
    lines += [
        "mark control",
        f"insmod {q(str(p.control.ko))} || exit 92",
    ]
    for t in (CONTROL_DEBUG if p.debug else CONTROL_STOCK):
        lines.append(f"echo {t} > /sys/module/kstressctl/parameters/trigger")
    if p.debug:
        lines.append('sleep 6; echo scan > "$KL"; echo scan > "$KL"; cat "$KL" > $OUT/kmemleak-control.txt')
    lines += [
        "rmmod kstressctl",
        "mark control-done",
        '[ "$rc" -eq 0 ]',
    ]
    return "\n".join(lines) + "\n"


def guest_env(p: Payload, out: Path) -> dict[str, str]:
    return {"KCOV_KO": str(p.kcov.ko), "KCOVTEST_KO": str(p.kcovtest.ko),
            "KSTRESS_PROGS": str(p.programs), "KSTRESS_CYCLES": str(p.cycles),
            "KSTRESS_OUT": str(out)}


# --- Reading what the guest left ------------------------------------------------------

# What a debug kernel adds to tests.support.vm.dmesg_problems()'s WARN/BUG/Oops/KASAN
# patterns (most of these reports also carry a "WARNING:" or "BUG:" line).
_DEBUG_PROBLEM = re.compile(
    r"(possible circular locking|possible recursive locking|inconsistent lock state"
    r"|suspicious RCU usage|sleeping function called from invalid context|scheduling while atomic"
    r"|turning off the locking correctness validator|DEBUG_LOCKS_WARN_ON|INFO: task .* blocked"
    r"|suspected memory leak|unreferenced object)")


def kernel_problems(dmesg: str) -> list[str]:
    """The lines of a kernel log that report any problem the debug options find."""
    return [line for line in dmesg.splitlines()
            if dmesg_problems(line) or _DEBUG_PROBLEM.search(line)]


def phases(dmesg: str) -> dict[str, str]:
    """The kernel log split at the guest's "kstress: phase NAME" marks; the
    part before the first mark is "boot"."""
    out: dict[str, list[str]] = {"boot": []}
    cur = "boot"
    for line in dmesg.splitlines():
        m = re.search(r"kstress: phase (\S+)$", line)
        if m is not None:
            cur = m.group(1)
            out.setdefault(cur, [])
            continue
        out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


@dataclass(frozen=True)
class Leak:
    """One entry of /sys/kernel/debug/kmemleak."""

    address: int
    size: int
    comm: str
    hexdump: str
    backtrace: tuple[str, ...]

    def mentions(self, module: str) -> bool:
        """Whether a frame of the allocation's backtrace is in `module`."""
        return any(f"[{module}]" in frame for frame in self.backtrace)


_LEAK_HEAD = re.compile(r"^unreferenced object 0x([0-9a-f]+) \(size (\d+)\):$")


def parse_kmemleak(text: str) -> list[Leak]:
    """The entries of a kmemleak report (mm/kmemleak.c print_unreferenced)."""
    leaks: list[Leak] = []
    cur: dict[str, object] | None = None
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        m = _LEAK_HEAD.match(line)
        if m is not None:
            if cur is not None:
                leaks.append(_leak(cur))
            cur = {"address": int(m.group(1), 16), "size": int(m.group(2)), "comm": "",
                   "hex": [], "bt": []}
            section = ""
            continue
        if cur is None or not line:
            if line:
                raise ValueError(f"kmemleak report: unexpected line {raw!r}")
            continue
        if line.startswith("comm "):
            cur["comm"] = line.split('"')[1] if '"' in line else line
        elif line.startswith("hex dump"):
            section = "hex"
        elif line.startswith("backtrace"):
            section = "bt"
        elif section:
            cur[section].append(line)  # type: ignore[union-attr]
    if cur is not None:
        leaks.append(_leak(cur))
    return leaks


def _leak(d: dict[str, object]) -> Leak:
    return Leak(int(d["address"]), int(d["size"]), str(d["comm"]),  # type: ignore[call-overload]
                "\n".join(d["hex"]), tuple(d["bt"]))  # type: ignore[arg-type]


def lockdep_debug_locks(stats: str) -> int | None:
    """debug_locks from /proc/lockdep_stats: 1 while lockdep is validating."""
    m = re.search(r"debug_locks:\s+(\d+)", stats)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class GuestRun:
    payload: Payload
    result: VmResult
    out: Path
    main: Junit | None

    def file(self, name: str) -> str:
        f = self.out / name
        return f.read_text(errors="replace") if f.is_file() else ""

    def phase_seconds(self, start: str, end: str) -> float | None:
        a, b = self.out / f"t-{start}", self.out / f"t-{end}"
        if not (a.is_file() and b.is_file()):
            return None
        return float(b.read_text()) - float(a.read_text())


def run_guest(p: Payload, out: Path, timeout: float) -> GuestRun:
    vm = Vm(kernel=p.kernel, memory="1G", cpus=2, timeout=timeout, extra_args=(f"--rwdir={out}",))
    res = vm.run(guest_script(p, out), cwd=REPO, env=guest_env(p, out))
    return GuestRun(p, res, out, Junit.read(out / "main.xml"))
