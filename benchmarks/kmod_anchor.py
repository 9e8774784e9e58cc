#!/usr/bin/env python3
"""The side-by-side anchor: kcov.ko against the kernel's own kcov.

kcov.ko's costs only mean something next to the in-tree kcov doing the same
work, so this builds two kernels that differ in nothing but CONFIG_KCOV and
runs the same instrumented module and the same workload on both:

* two tinyconfig kernels from Debian's linux-source-6.1, built by
  ``kcov-build kernel`` with gcc-12 and the fragments kernel_conf/linux/
  vm.config (boot under virtme-ng) and benchmarks/anchor/anchor.config
  (modules, KVM for preempt notifiers, tracepoints, -O2; KCOV_INSTRUMENT_ALL
  off, so nothing in the kernel itself is instrumented); the second one
  also gets benchmarks/anchor/nokcov.config (no CONFIG_KCOV).  The two
  .config files are diffed and must differ only in KCOV lines;
* benchmarks/anchor/kcovbench, a small parser module, built with
  ``kcov-build --mode pc,cmp`` against each kernel's build directory: on
  the first its callbacks resolve to the kernel's kcov, on the second to
  kcov.ko (runtime/linux, built against that kernel);
* benchmarks/anchor/workload.c, run in each VM: /sys/kernel/debug/kcov
  (Linux ABI on both; kcov.ko provides it where the kernel has none),
  batches of writes to /dev/kcovbench with tracing off, with
  KCOV_TRACE_PC and with KCOV_TRACE_CMP (each write timed on its own, a
  batch's figure the median of its writes); and, as the baseline of the
  two kernels themselves, the same write to /dev/null.

Both VMs get the same qemu settings (TCG, one vCPU, the same memory).  TCG
timings drift with the host's load, so each mode is timed in many batches
interleaved with the other modes, the VMs are booted alternately for
``--rounds`` rounds, and the medians of all batches are compared.  The
target is ours / in-tree <= 1.1 per operation; it is reported, not
enforced: the exit status is 0 whenever both kernels were measured.

The "difference, on - off" rows are information, not a second target: they
show where each kcov puts its work.  The in-tree callback checks the
task's mode (current, preempt_count, t->kcov_mode) before it knows whether
anyone traces; kcov.ko's untraced path is one load of a per-CPU pointer
and a branch, and the rest of its checks run only when that pointer is
set.  So kcov.ko is cheaper off and pays more of its cost on.

Kernels are cached under .cache/kernel/anchor-{kcov,nokcov}-<key> (the key
covers the tarball, the fragments, kcov-build kernel and the compiler);
``--fresh`` rebuilds them.

Usage: .venv/bin/python benchmarks/kmod_anchor.py [--quick] [--fresh]
           [--ops N] [--reps N] [--rounds N] [--json FILE]
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Sequence

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "anchor"
sys.path.insert(0, str(REPO))  # tests.support.vm: the VM harness the tests use

from kcov._base import locked  # noqa: E402
from tests.support.kernels import KCONF, LINUX_TARBALL, source_key  # noqa: E402
from tests.support.vm import VENV_BIN, Vm, VmResult, dmesg_problems  # noqa: E402

from kcov_build._util import write_atomic  # noqa: E402

PROG = "kmod_anchor"
MODULE_SRC = REPO / "runtime" / "linux"
COMPILER = "gcc-12"
TARGET = 1.10
MODES = ("null", "off", "pc", "cmp")
MODE_LABEL = {"null": "baseline: write to /dev/null", "off": "tracing off",
              "pc": "KCOV_TRACE_PC", "cmp": "KCOV_TRACE_CMP"}
VARIANTS = ("kcov", "nokcov")  # in-tree kcov; kcov.ko
VARIANT_LABEL = {"kcov": "in-tree kcov", "nokcov": "kcov.ko"}


class AnchorError(Exception):
    """A failure reported in one line; `status` is the exit status."""

    def __init__(self, message: str, status: int = os.EX_SOFTWARE) -> None:
        super().__init__(message)
        self.status = status


def say(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["KCOV_KERNEL_CONF_DIR"] = str(KCONF)
    env.setdefault("KCOV_BUILD_CACHE", str(REPO / ".cache" / "kcov-build"))
    return env


def kcov_build() -> list[str]:
    exe = VENV_BIN / "kcov-build"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("kcov-build")
    if found is None:
        raise AnchorError("kcov-build not found (pip install the project into .venv)", os.EX_UNAVAILABLE)
    return [found]


def run(cmd: Sequence[str], what: str, *, cwd: Path | None = None) -> str:
    """Run a build step with its stderr streamed; stdout is returned."""
    t0 = time.monotonic()
    proc = subprocess.run(list(cmd), cwd=cwd, env=tool_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise AnchorError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}")
    say(f"{what}: {time.monotonic() - t0:.0f}s")
    return proc.stdout


# --- Kernels ----------------------------------------------------------------------


@dataclass(frozen=True)
class Kernel:
    variant: str
    outdir: Path
    image: Path
    build_seconds: float
    cached: bool

    @property
    def dotconfig(self) -> Path:
        return self.outdir / ".config"


def fragments(variant: str) -> list[Path]:
    """Fragments after kcov.config (which kcov-build kernel always merges first)."""
    frags = [KCONF / "linux" / "vm.config", HERE / "anchor.config"]
    return frags + ([HERE / "nokcov.config"] if variant == "nokcov" else [])


def build_kernel(variant: str, cache: Path, fresh: bool, jobs: int, compiler: str) -> Kernel:
    outdir = cache / f"anchor-{variant}-{compiler}-{source_key(compiler, fragments(variant))}"
    marker = outdir / "kcov-anchor-built.json"
    with locked(outdir.with_name(outdir.name + ".lock")):
        if fresh:
            shutil.rmtree(outdir, ignore_errors=True)
        elif marker.is_file():
            info = json.loads(marker.read_text())
            image = Path(info["image"])
            if image.is_file():
                say(f"{variant} kernel: cached in {outdir}")
                return Kernel(variant, outdir, image, float(info["seconds"]), True)
        cmd = [*kcov_build(), "kernel", "--src", str(LINUX_TARBALL)]
        for frag in fragments(variant):
            cmd += ["--config", str(frag)]
        cmd += ["--compiler", compiler, "-j", str(jobs), "-O", str(outdir)]
        say(f"building the {variant} kernel in {outdir}")
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=tool_env(), stdout=subprocess.PIPE, text=True, check=False)
        seconds = time.monotonic() - t0
        if proc.returncode != 0:
            raise AnchorError(f"kcov-build kernel ({variant}) failed (exit {proc.returncode})")
        image = Path(proc.stdout.strip().splitlines()[-1])
        if not image.is_file():
            raise AnchorError(f"kcov-build kernel ({variant}) printed no image: {proc.stdout!r}")
        write_atomic(marker, json.dumps({"image": str(image), "seconds": seconds}))
        say(f"{variant} kernel built in {seconds:.0f}s")
        return Kernel(variant, outdir, image, seconds, False)


_KCOV_LINE = re.compile(r"\bCONFIG_KCOV\w*\b")


def config_diff(a: Path, b: Path) -> list[str]:
    """The unified diff of two .config files, without the header lines."""
    return [line for line in difflib.unified_diff(a.read_text().splitlines(), b.read_text().splitlines(),
                                                  str(a), str(b), n=0, lineterm="")
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def check_config_diff(diff: list[str]) -> None:
    stray = [line for line in diff if not _KCOV_LINE.search(line)]
    if stray:
        raise AnchorError(f"the two .config files differ beyond CONFIG_KCOV*: {stray}", os.EX_DATAERR)
    if not any(line.startswith("-CONFIG_KCOV=y") for line in diff):
        raise AnchorError(f"CONFIG_KCOV does not differ between the two kernels: {diff}", os.EX_DATAERR)


# --- Modules and workload ---------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """What the guest loads and runs on one kernel."""

    modules: tuple[Path, ...]  # insmod order
    workload: Path
    pc_callbacks: int  # trace-pc call sites in kcovbench.ko


def build_payload(k: Kernel, work: Path, workload: Path, compiler: str) -> Payload:
    from kcov_build.objcheck import callback_calls

    mods: list[Path] = []
    make_extra: list[str] = []
    if k.variant == "nokcov":
        out = work / "kcov-module"
        run(["make", "-C", str(MODULE_SRC), f"OUT={out}", f"KDIR={k.outdir}"], "kcov.ko (nokcov kernel)")
        mods.append(out / "kcov.ko")
        make_extra.append(f"KBUILD_EXTRA_SYMBOLS={out / 'Module.symvers'}")
    src = work / f"kcovbench-{k.variant}"
    shutil.copytree(HERE / "kcovbench", src)
    run([*kcov_build(), "--mode", "pc,cmp", "--runtime", "none", "--compiler", compiler, "--",
         "make", "-C", str(k.outdir), f"M={src}", *make_extra, "modules"], f"kcovbench.ko ({k.variant} kernel)")
    ko = src / "kcovbench.ko"
    calls = callback_calls(ko)
    pcs = sum(c.get("__sanitizer_cov_trace_pc", 0) for c in calls.values())
    if calls.get("kb_parse", {}).get("__sanitizer_cov_trace_pc", 0) == 0:
        raise AnchorError(f"{ko}: kb_parse is not instrumented with trace-pc", os.EX_SOFTWARE)
    mods.append(ko)
    return Payload(tuple(mods), workload, pcs)


def build_workload(work: Path) -> Path:
    exe = work / "workload"
    cc = shutil.which("gcc") or shutil.which(COMPILER)
    if cc is None:
        raise AnchorError("no C compiler for the workload (gcc)", os.EX_UNAVAILABLE)
    run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(HERE / "workload.c")], "workload")
    return exe


# --- Running -----------------------------------------------------------------------


@dataclass
class Measurement:
    variant: str
    rounds: list[dict[str, object]] = field(default_factory=list)
    boots: list[float] = field(default_factory=list)

    def samples(self, mode: str) -> list[float]:
        out: list[float] = []
        for r in self.rounds:
            out += r["samples_ns"][mode]  # type: ignore[index]
        return out

    def median(self, mode: str) -> float:
        return statistics.median(self.samples(mode))

    def iqr(self, mode: str) -> tuple[float, float]:
        s = sorted(self.samples(mode))
        if len(s) < 4:
            return s[0], s[-1]
        q = statistics.quantiles(s, n=4)
        return q[0], q[2]

    def records(self, mode: str) -> int:
        return int(self.rounds[0]["records"][mode])  # type: ignore[index]


def guest_command(p: Payload, ops: int, reps: int, warmup: int) -> str:
    loads = " && ".join(f"insmod {m}" for m in p.modules)
    return (f"{loads} || exit 90\n"
            f"ls -l /sys/kernel/debug/kcov /dev/kcovbench >&2\n"
            f"{p.workload} -n {ops} -r {reps} -w {warmup}\n")


def parse_result(res: VmResult) -> dict[str, object]:
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith('{"kcov"'):
            data: dict[str, object] = json.loads(line)
            return data
    raise AnchorError("the workload printed no result:\n" + res.describe())


def run_vm(k: Kernel, p: Payload, ops: int, reps: int, warmup: int, memory: str, timeout: float) -> \
        tuple[dict[str, object], float]:
    vm = Vm(k.image, memory=memory, cpus=1, timeout=timeout)
    say(f"booting the {k.variant} kernel ({ops} ops x {reps} reps x {len(MODES)} modes)")
    res = vm.run(guest_command(p, ops, reps, warmup), cwd=REPO)
    if res.returncode != 0:
        raise AnchorError(f"{k.variant} VM: the workload failed\n" + res.describe())
    problems = dmesg_problems(res.dmesg)
    if problems:
        raise AnchorError(f"{k.variant} VM: dmesg reports problems: {problems[:5]}")
    data = parse_result(res)
    say(f"{k.variant} VM: {res.seconds:.0f}s, medians {data['median_ns']}")
    return data, res.seconds


# --- Report ------------------------------------------------------------------------


def fmt_ns(v: float) -> str:
    return f"{v / 1000:.2f} us" if v >= 10000 else f"{v:.0f} ns"


def spread(m: Measurement, mode: str) -> str:
    """The interquartile range of the batches, as +-% of the median."""
    lo, hi = m.iqr(mode)
    med = m.median(mode)
    return f"+-{50 * (hi - lo) / med:.0f}%" if med > 0 else "?"


def report(ms: dict[str, Measurement], pcs: int) -> tuple[str, dict[str, object]]:
    """The table, and the same figures for --json."""
    ref, ours = ms["kcov"], ms["nokcov"]
    summary: dict[str, object] = {}
    lines = [f"{'per write (median, IQR)':30} {'in-tree kcov':>19} {'kcov.ko':>19} "
             f"{'ours/in-tree':>13}  target <= {TARGET:.2f}x"]
    for mode in MODES:
        a, b = ref.median(mode), ours.median(mode)
        ratio = b / a
        ok = ratio <= TARGET if mode != "null" else None
        summary[mode] = {"in_tree_ns": a, "ours_ns": b, "ratio": ratio, "target_met": ok,
                         "in_tree_iqr_ns": ref.iqr(mode), "ours_iqr_ns": ours.iqr(mode),
                         "batches": len(ref.samples(mode))}
        verdict = "(calibration)" if ok is None else "met" if ok else "NOT met"
        lines.append(f"{MODE_LABEL[mode]:30} {fmt_ns(a):>11} {spread(ref, mode):>7} "
                     f"{fmt_ns(b):>11} {spread(ours, mode):>7} {ratio:>12.3f}x  {verdict}")
    for mode in ("pc", "cmp"):
        a = ref.median(mode) - ref.median("off")
        b = ours.median(mode) - ours.median("off")
        ratio = b / a if a > 0 else float("nan")
        summary[f"{mode}_minus_off"] = {"in_tree_ns": a, "ours_ns": b, "ratio": ratio}
        lines.append(f"{'  difference, ' + mode + ' - off':30} {fmt_ns(a):>19} {fmt_ns(b):>19} "
                     f"{ratio:>12.3f}x  (information)")
    for mode in ("pc", "cmp"):
        lines.append(f"{'records per write, ' + mode:30} {ref.records(mode):>19} {ours.records(mode):>19}")
    clock = [float(r["clock_ns"]) for m in (ref, ours) for r in m.rounds]  # type: ignore[arg-type]
    lines.append(f"({len(ref.samples('off'))} batches per mode and kernel, each the median of its writes, "
                 f"minus {min(clock):.0f}-{max(clock):.0f} ns of clock reads; "
                 f"{pcs} trace-pc call sites in kcovbench.ko)")
    return "\n".join(lines), summary


# --- Main --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: {message} (try --help)", file=sys.stderr)
        sys.exit(os.EX_USAGE)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = _Parser(prog="kmod_anchor.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a short run (fewer ops, reps and one round) for tests")
    p.add_argument("--fresh", action="store_true", help="rebuild both kernels even if cached")
    p.add_argument("--ops", type=int, default=None, help="writes per timed batch (default 200; quick 40)")
    p.add_argument("--reps", type=int, default=None, help="batches per mode per boot (default 51; quick 5)")
    p.add_argument("--rounds", type=int, default=None,
                   help="boots of each kernel, alternating (default 5; quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="untimed writes per mode (default 100)")
    p.add_argument("--memory", default="512M", help="guest memory, the same for both VMs")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per VM run")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "kernel",
                   help="where the kernels are built and kept")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the module build directory")
    opts = p.parse_args(list(argv))
    q = opts.quick
    opts.ops = opts.ops if opts.ops is not None else (40 if q else 200)
    opts.reps = opts.reps if opts.reps is not None else (5 if q else 51)
    opts.rounds = opts.rounds if opts.rounds is not None else (1 if q else 5)
    opts.warmup = opts.warmup if opts.warmup is not None else (20 if q else 100)
    if min(opts.ops, opts.reps, opts.rounds, opts.jobs) < 1 or opts.reps > 1000:
        p.error("--ops, --rounds and -j must be >= 1, --reps within 1..1000")
    return opts


def check_prerequisites() -> None:
    if not LINUX_TARBALL.is_file():
        raise AnchorError(f"{LINUX_TARBALL} is missing (apt install linux-source-6.1)", os.EX_UNAVAILABLE)
    for tool in (COMPILER, "make", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            raise AnchorError(f"{tool} is not installed", os.EX_UNAVAILABLE)
    from tests.support.vm import find_vng

    if find_vng() is None:
        raise AnchorError("vng (virtme-ng) is not installed in .venv", os.EX_UNAVAILABLE)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    t_start = time.monotonic()
    try:
        check_prerequisites()
        kernels = {v: build_kernel(v, opts.cache, opts.fresh, opts.jobs, COMPILER) for v in VARIANTS}
        diff = config_diff(kernels["kcov"].dotconfig, kernels["nokcov"].dotconfig)
        print("--- .config: in-tree kcov kernel vs kcov.ko kernel ---")
        print("\n".join(diff))
        check_config_diff(diff)
        work_root = REPO / ".cache" / "anchor"
        work_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="run-", dir=work_root))
        try:
            t_mod = time.monotonic()
            exe = build_workload(work)
            payloads = {v: build_payload(kernels[v], work, exe, COMPILER) for v in VARIANTS}
            mod_seconds = time.monotonic() - t_mod
            ms = {v: Measurement(v) for v in VARIANTS}
            for r in range(opts.rounds):
                order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
                for v in order:
                    data, secs = run_vm(kernels[v], payloads[v], opts.ops, opts.reps, opts.warmup,
                                        opts.memory, opts.timeout)
                    ms[v].rounds.append(data)
                    ms[v].boots.append(secs)
        finally:
            if not opts.keep:
                shutil.rmtree(work, ignore_errors=True)
        for v in VARIANTS:
            if ms[v].records("pc") <= 0 or ms[v].records("cmp") <= 0:
                raise AnchorError(f"{v}: no records came back: {ms[v].rounds[0]['records']}")
        table, summary = report(ms, payloads["nokcov"].pc_callbacks)
        print(f"--- per-operation cost (qemu TCG, 1 vCPU, {opts.memory}; "
              f"{opts.ops} writes per batch, {opts.reps} batches x {opts.rounds} boot(s)) ---")
        print(table)
        timings = {"kernel_build_s": {v: kernels[v].build_seconds for v in VARIANTS},
                   "kernel_cached": {v: kernels[v].cached for v in VARIANTS},
                   "modules_s": mod_seconds, "boots_s": {v: ms[v].boots for v in VARIANTS},
                   "total_s": time.monotonic() - t_start}
        print(f"--- timings: kernels {timings['kernel_build_s']} (cached {timings['kernel_cached']}), "
              f"modules {mod_seconds:.0f}s, VM runs {timings['boots_s']}, total {timings['total_s']:.0f}s ---")
        if opts.json is not None:
            write_atomic(opts.json, json.dumps({
                "config_diff": diff, "summary": summary, "target": TARGET,
                "settings": {"ops": opts.ops, "reps": opts.reps, "rounds": opts.rounds,
                             "warmup": opts.warmup, "memory": opts.memory, "cpus": 1,
                             "compiler": COMPILER},
                "kernels": {v: {"image": str(kernels[v].image), "outdir": str(kernels[v].outdir)}
                            for v in VARIANTS},
                "runs": {v: ms[v].rounds for v in VARIANTS},
                "pc_call_sites": payloads["nokcov"].pc_callbacks,
                "timings": timings,
            }, indent=1))
        return 0
    except AnchorError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
