#!/usr/bin/env python3
"""Cost of the kcov callbacks: our runtime against a minimal reference.

Builds, in a temporary directory:

* ``libref.so`` from ``ref_runtime.c``: the least a kcov hot path can do (an
  initial-exec TLS buffer pointer, one bounds check, the stores, the count
  published last), compiled like ``libkcovrt.so`` (same compiler, ``-O2
  -fPIC -fvisibility=hidden``, no coverage, no sanitizers);
* one driver object from ``bench_driver.c``, linked once against the
  installed ``libkcovrt.so`` and once against ``libref.so``.

and measures, per case (``trace_pc`` enabled, ``trace_pc`` with tracing off
in the calling thread, ``trace_cmp8`` enabled):

* instructions per call inside the callback, with callgrind
  (``--toggle-collect=<callback>``: only instructions executed inside the
  callback count, the ``ret`` included, the driver's ``call`` not);
* nanoseconds per call, the best of several repetitions and processes
  (``clock_gettime(CLOCK_MONOTONIC)`` around batches of calls; includes the
  driver's ``call`` and loop, the same for both runtimes).

Targets are on instructions (they do not depend on the machine's load):
ours / reference <= 1.25 for enabled trace_pc, <= 1.1 when off, <= 1.3 for
trace_cmp.  It is a benchmark: the exit status is 0 whether targets are met
or not, and non-zero only when it could not measure.

Usage: .venv/bin/python benchmarks/bench_callbacks.py [--json] [--disasm]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "callbacks.json"

# Flags of the runtime's own objects (CMakeLists.txt, KCOV_RT_FLAGS).
RT_FLAGS = ["-O2", "-fPIC", "-fvisibility=hidden", "-fno-sanitize=all",
            "-fno-sanitize-coverage=trace-pc,trace-cmp"]


@dataclass(frozen=True)
class Case:
    name: str       # driver argument
    label: str      # table row
    symbol: str     # callback whose instructions are counted
    target: float   # max ours / reference instruction ratio


CASES = [
    Case("pc-on", "trace_pc, tracing enabled", "__sanitizer_cov_trace_pc", 1.25),
    Case("pc-off", "trace_pc, tracing off", "__sanitizer_cov_trace_pc", 1.10),
    Case("cmp-on", "trace_cmp8, tracing enabled", "__sanitizer_cov_trace_cmp8", 1.30),
]
RUNTIMES = ["ours", "ref"]


@dataclass
class Row:
    case: str
    label: str
    ir_ours: float
    ir_ref: float
    ir_ratio: float
    target: float
    ns_ours: float
    ns_ref: float
    ns_ratio: float
    result: str


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if p.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed ({p.returncode}):\n"
                         f"{p.stdout}{p.stderr}".rstrip())
    return p


def lib_compiler(lib: Path) -> str | None:
    """The compiler named in the .comment section of `lib`, e.g. gcc-12."""
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        return None
    with lib.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".comment")
        text = sec.data().decode(errors="replace") if sec is not None else ""
    # clang objects also carry the GCC string of the crt files: look for
    # clang first.
    m = re.search(r"clang version (\d+)", text)
    if m:
        return f"clang-{m.group(1)}"
    m = re.search(r"GCC: \([^)]*\) (\d+)", text)
    if m:
        return f"gcc-{m.group(1)}"
    return None


def pick_compiler(requested: str, lib: Path) -> tuple[str, str]:
    """The compiler for the reference and the driver, and why it was chosen."""
    if requested != "auto":
        if shutil.which(requested) is None:
            raise BenchError(f"compiler {requested} not found")
        return requested, "--cc"
    cc = lib_compiler(lib)
    if cc is not None and shutil.which(cc) is not None:
        return cc, f"the compiler of {lib.name} (.comment)"
    if shutil.which("clang-19") is not None:
        return "clang-19", "default"
    raise BenchError("no compiler: install clang-19 or pass --cc")


def build(cc: str, lib: Path, work: Path) -> dict[str, Path]:
    ref = work / "libref.so"
    run([cc, *RT_FLAGS, "-shared", "-Wall", "-Wextra", "-o", str(ref),
         str(HERE / "ref_runtime.c")])
    # -fno-plt: the driver calls through the GOT, with no PLT stub between
    # it and the callback (the stub would not count anyway: it is outside
    # the callback).
    obj = work / "bench_driver.o"
    run([cc, "-O2", "-fno-plt", "-Wall", "-Wextra", "-c", "-o", str(obj),
         str(HERE / "bench_driver.c")])
    ours_dir = lib.parent
    if lib.name != "libkcovrt.so":
        # -lkcovrt must find this very file (e.g. a prototype's --lib).
        ours_dir = work / "ours"
        ours_dir.mkdir()
        shutil.copy2(lib, ours_dir / "libkcovrt.so")
    exes = {}
    for name, d in (("ours", ours_dir), ("ref", work)):
        exe = work / f"driver_{name}"
        libname = "kcovrt" if name == "ours" else "ref"
        run([cc, "-o", str(exe), str(obj), f"-L{d}", f"-l{libname}",
             f"-Wl,-rpath,{d}", "-ldl"])
        exes[name] = exe
    exes["libref"] = ref
    return exes


def parse_driver(out: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", out)}


def callgrind_ir(exe: Path, case: Case, calls: int, work: Path) -> float:
    """Instructions executed inside case.symbol per call."""
    out = work / f"callgrind.{exe.name}.{case.name}"
    p = run(["valgrind", "--tool=callgrind", f"--toggle-collect={case.symbol}",
             f"--callgrind-out-file={out}", str(exe), case.name, str(calls),
             "1"])
    total = parse_driver(p.stdout)["total_calls"]
    m = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
    if m is None:
        raise BenchError(f"no summary line in {out}")
    return int(m.group(1)) / total


def wall_ns(exes: dict[str, Path], calls: int, reps: int,
            rounds: int) -> dict[tuple[str, str], float]:
    """Best ns per call of every (case, runtime), processes interleaved."""
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for case in CASES:
            for rt in RUNTIMES:
                p = run([str(exes[rt]), case.name, str(calls), str(reps)])
                ns = parse_driver(p.stdout)["best_ns_per_call"]
                key = (case.name, rt)
                best[key] = min(ns, best.get(key, ns))
    return best


def disasm(path: Path, symbols: list[str]) -> str:
    tool = shutil.which("llvm-objdump-19") or shutil.which("objdump")
    if tool is None:
        return "(no llvm-objdump-19 or objdump)\n"
    if "llvm" in tool:
        cmd = [tool, "-d", "--no-show-raw-insn",
               "--disassemble-symbols=" + ",".join(symbols), str(path)]
    else:
        cmd = [tool, "-d", "--no-show-raw-insn"]
        cmd += [f"--disassemble={s}" for s in symbols] + [str(path)]
    out = run(cmd).stdout
    return "\n".join(ln for ln in out.splitlines()
                     if ln.strip() and "file format" not in ln
                     and "Disassembly of" not in ln) + "\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| Case | Instr/call ours | Instr/call ref | Ratio | Target | "
        "ns/call ours | ns/call ref | Result |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.ir_ours:.2f} | {r.ir_ref:.2f} | "
            f"{r.ir_ratio:.2f}x | <= {r.target:.2f}x | {r.ns_ours:.2f} | "
            f"{r.ns_ref:.2f} | {r.result} |")
    return "\n".join(lines)


def plain_table(rows: list[Row]) -> str:
    head = (f"{'case':<28} {'Ir ours':>8} {'Ir ref':>8} {'ratio':>6} "
            f"{'target':>7} {'ns ours':>8} {'ns ref':>8} {'ns ratio':>8}  result")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.label:<28} {r.ir_ours:>8.2f} {r.ir_ref:>8.2f} "
            f"{r.ir_ratio:>5.2f}x {r.target:>6.2f}x {r.ns_ours:>8.3f} "
            f"{r.ns_ref:>8.3f} {r.ns_ratio:>7.2f}x  {r.result}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Instructions and ns per kcov callback: libkcovrt.so "
                    "against a minimal reference runtime.")
    ap.add_argument("--json", action="store_true",
                    help=f"also write {RESULTS.relative_to(HERE.parent)}")
    ap.add_argument("--disasm", action="store_true",
                    help="print the disassembly of both runtimes' callbacks")
    ap.add_argument("--lib", type=Path, default=None,
                    help="libkcovrt.so to measure (default: the installed one)")
    ap.add_argument("--cc", default="auto",
                    help="compiler for the reference and the driver (default: "
                         "the one that built libkcovrt.so, else clang-19)")
    ap.add_argument("--calls", type=int, default=8 << 20,
                    help="calls per timed repetition (default %(default)s)")
    ap.add_argument("--reps", type=int, default=5,
                    help="timed repetitions per process (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=7,
                    help="processes per case and runtime (default %(default)s)")
    ap.add_argument("--cg-calls", type=int, default=64 << 10,
                    help="calls under callgrind (default %(default)s)")
    args = ap.parse_args(argv)
    command = shlex.join([os.path.relpath(sys.executable)
                          if sys.executable.startswith(os.getcwd())
                          else sys.executable,
                          os.path.relpath(sys.argv[0]), *sys.argv[1:]])

    try:
        if args.lib is not None:
            lib = args.lib.resolve()
        else:
            import kcov
            lib = Path(kcov.get_lib_dir()) / "libkcovrt.so"
        if not lib.is_file():
            raise BenchError(f"{lib}: no such file")
        if shutil.which("valgrind") is None:
            raise BenchError("valgrind not found (apt-get install valgrind)")
        cc, why = pick_compiler(args.cc, lib)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="kcov-bench-") as tmp:
            work = Path(tmp)
            exes = build(cc, lib, work)
            ir = {(c.name, rt): callgrind_ir(exes[rt], c, args.cg_calls, work)
                  for c in CASES for rt in RUNTIMES}
            ns = wall_ns(exes, args.calls, args.reps, args.rounds)
            dis = {}
            if args.disasm:
                syms = ["__sanitizer_cov_trace_pc", "__sanitizer_cov_trace_cmp8"]
                dis = {"ours": disasm(lib, syms),
                       "ref": disasm(exes["libref"], syms)}
        elapsed = time.monotonic() - t0
    except BenchError as e:
        print(f"bench_callbacks: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"bench_callbacks: cannot import kcov ({e}); install the "
              "package or pass --lib", file=sys.stderr)
        return 1

    rows = []
    for c in CASES:
        io, ir_ = ir[(c.name, "ours")], ir[(c.name, "ref")]
        no, nr = ns[(c.name, "ours")], ns[(c.name, "ref")]
        ratio = io / ir_
        rows.append(Row(c.name, c.label, io, ir_, ratio, c.target, no, nr,
                        no / nr, "PASS" if ratio <= c.target + 1e-9 else "MISS"))

    env = {
        "command": command,
        "lib": str(lib),
        "compiler": cc,
        "compiler_choice": why,
        "cpu": cpu_model(),
        "valgrind": run(["valgrind", "--version"]).stdout.strip(),
        "timed_calls_per_rep": args.calls,
        "reps": args.reps,
        "rounds": args.rounds,
        "callgrind_calls": args.cg_calls,
        "elapsed_s": round(elapsed, 1),
    }
    print(f"command:  {command}")
    print(f"runtime:  {lib}")
    print(f"compiler: {cc} ({why}); reference and driver built with "
          f"{' '.join(RT_FLAGS)}")
    print(f"cpu:      {env['cpu']}; {env['valgrind']}")
    print(f"ns/call:  best of {args.reps} reps x {args.rounds} processes of "
          f"{args.calls} calls (driver loop included); "
          f"Ir/call: callgrind, {args.cg_calls} calls, callback only")
    print()
    print(plain_table(rows))
    print()
    print("Markdown:")
    print()
    print(markdown(rows))
    if dis:
        for rt in RUNTIMES:
            print()
            print(f"Disassembly ({'ours: ' + lib.name if rt == 'ours' else 'reference: libref.so'}):")
            print(dis[rt], end="")
    print()
    print(f"({elapsed:.1f} s)")

    if args.json:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        doc = {"env": env, "rows": [asdict(r) for r in rows]}
        if dis:
            doc["disassembly"] = dis
        RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
