"""Helpers of the kernel stress suite's host side (a unique module name, so
it never collides with other test directories' helpers).

* The debug kernel: linux-source-6.1, tinyconfig + kcov.config + vm.config
  + kernel_conf/linux/debug.config (KASAN, KMEMLEAK, LOCKDEP, atomic-sleep
  checks; no CONFIG_KCOV), built by ``kcov-build kernel`` with gcc-12, by
  tests/support/kernels.py like the suite's other kernels (cached locally,
  from scratch with CI=true).
* Modules built against a kernel build tree or Debian's headers: kcov.ko
  (runtime/linux/Makefile), the instrumented kcovtest.ko of tests/kmod, and
  this suite's control module kstressctl.ko.
* The guest script, and the report files the guest leaves behind.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.junit import Junit
from tests.support.kernels import DEBUG_CONFIG, BuiltKernel, build_kernel, kcov_build_cmd, need  # noqa: F401
from tests.support.modules import Module, run  # noqa: F401
from tests.support.prereq import REPO
from tests.support.vm import VENV_BIN, Vm, VmResult, dmesg_problems, find_vng  # noqa: F401

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GUEST = HERE / "guest"
KCONF = REPO / "kernel_conf"
MODULE_SRC = REPO / "runtime" / "linux"
KCOVTEST_SRC = REPO / "tests" / "kmod" / "data" / "kcovtest"
STRESS_SRC = REPO / "tests" / "kmod" / "data" / "progs" / "stress.c"


def build_debug_kernel(tmp_factory: pytest.TempPathFactory | None, jobs: int | None = None) -> BuiltKernel:
    """The debug kernel (tests/support/kernels.py, "debug")."""
    return build_kernel("debug", tmp_factory, jobs)


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
        # Code symbols with the modules', for the harness to name the vCPUs'
        # code if the guest ever freezes (tests/support/vm.py vcpu_state).
        "grep ' [tTwW] ' /proc/kallsyms > $OUT/kallsyms",
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
            "KSTRESS_OUT": str(out),
            # The guest watchdog (tests/support/watchdog.py): KASAN, lockdep
            # and kmemleak under TCG make one test up to 10 times slower.
            "KCOV_GUEST_TEST_TIMEOUT": "1800" if p.debug else "400"}


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
    vm = Vm(kernel=p.kernel, memory="1G", cpus=2, timeout=timeout, extra_args=(f"--rwdir={out}",),
            symbols=out / "kallsyms")
    res = vm.run(guest_script(p, out), cwd=REPO, env=guest_env(p, out))
    return GuestRun(p, res, out, Junit.read(out / "main.xml"))
