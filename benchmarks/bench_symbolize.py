#!/usr/bin/env python3
"""Symbolisation throughput: kcov.report.Symbolizer against addr2line per PC.

Builds LZ4 (the lz4 4.3.3 sdist's lz4libs, the project's third-party C
test code) as an instrumented shared library, ``-g -O2
-fsanitize-coverage=trace-pc`` with clang-19, then measures on it:

* the universe: ``coverage_points`` (every callback call site);
* cold symbolisation: a fresh ``Symbolizer`` over N distinct addresses
  (every instruction start of ``.text``, from objdump, so each is a real
  code location and none repeats), with one llvm-symbolizer process and
  with two (the default on 2+ CPUs); the universe's points alone too;
* warm symbolisation: the same addresses again (served by the cache);
* ``addr2line -f -i -e LIB ADDR`` run once per PC, what a naive script
  does: a random sample of the addresses, one process each, the rate
  extrapolated from the sample's mean.

Prints each rate, and the ratios to the per-PC addr2line rate.  Target:
>= 200,000 PCs/s cold on 2 cores.  It is a benchmark: exit status 0
whether or not the target is met, non-zero only if it could not measure.

Usage: .venv/bin/python benchmarks/bench_symbolize.py [--sample N] [--vmlinux PATH]
  --vmlinux: also symbolise every point of a vmlinux built with DWARF
  (e.g. .cache/kernel/report-debuginfo-gcc-12-*/vmlinux from tests/report).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import kcov
from kcov.report import Symbolizer, coverage_points
from kcov.report.symbolize import find_tool

REPO = Path(__file__).resolve().parents[1]
SDIST_CACHE = REPO / ".cache" / "sdist"
SDIST = "lz4-4.3.3.tar.gz"
SDIST_SHA256 = "01fe674ef2889dbb9899d8a67361e0c4a2c833af5aeb37dd505727cf5d2a131e"
TARGET = 200_000


def fetch_sdist() -> Path:
    path = SDIST_CACHE / SDIST
    if not path.is_file():
        SDIST_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                        "lz4==4.3.3", "-d", str(SDIST_CACHE)], check=True, capture_output=True)
    if hashlib.sha256(path.read_bytes()).hexdigest() != SDIST_SHA256:
        raise SystemExit(f"{path} is not the pinned lz4 4.3.3 sdist")
    return path


def build_lz4(out: Path) -> Path:
    with tarfile.open(fetch_sdist()) as tf:
        members = [m for m in tf.getmembers() if "/lz4libs/" in m.name and m.isfile()]
        tf.extractall(out, members=members)  # noqa: S202 - the pinned sdist
    (src,) = list(out.glob("*/lz4libs"))
    lib = out / "liblz4.so"
    libdir = kcov.get_lib_dir()
    objs = []
    for c in sorted(src.glob("*.c")):
        o = out / (c.stem + ".o")
        subprocess.run(["clang-19", "-g", "-O2", "-fPIC", "-fsanitize-coverage=trace-pc", "-c", str(c),
                        "-o", str(o)], check=True)
        objs.append(str(o))
    subprocess.run(["clang-19", "-shared", *objs, f"-L{libdir}", "-lkcovrt", f"-Wl,-rpath,{libdir}",
                    "-o", str(lib)], check=True)
    return lib


def instruction_addresses(binary: Path) -> list[int]:
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", str(binary)],
                         capture_output=True, text=True, check=True).stdout
    return sorted({int(m.group(1), 16) for m in re.finditer(r"^\s+([0-9a-f]+):\t", out, re.M)})


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    r = fn(*args)
    return r, time.perf_counter() - t0


def cold_rate(binary: Path, addrs: list[int], jobs: int) -> float:
    with Symbolizer(binary, jobs=jobs) as s:
        _, dt = timed(s.frames, addrs)
    return len(addrs) / dt


def cpu_cost(binary: Path, addrs: list[int]) -> tuple[float, float]:
    """CPU microseconds per address spent in llvm-symbolizer (children's
    rusage) and in this process (reading, parsing, caching): what the
    rate would be on idle cores, whatever else the machine runs."""
    c0, p0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    with Symbolizer(binary, jobs=1) as s:
        s.frames(addrs)
    p1 = time.process_time()
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    return child * 1e6 / len(addrs), (p1 - p0) * 1e6 / len(addrs)


def addr2line_rate(binary: Path, addrs: list[int], n: int) -> tuple[float, int]:
    a2l = shutil.which("addr2line")
    if a2l is None:
        raise SystemExit("addr2line is not installed (binutils)")
    sample = random.Random(1).sample(addrs, min(n, len(addrs)))
    t0 = time.perf_counter()
    for a in sample:
        subprocess.run([a2l, "-f", "-i", "-e", str(binary), f"0x{a:x}"], capture_output=True, check=True)
    dt = time.perf_counter() - t0
    return len(sample) / dt, len(sample)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", type=int, default=300, help="addr2line runs to time (default 300)")
    ap.add_argument("--vmlinux", type=Path, help="also symbolise every point of this vmlinux")
    args = ap.parse_args()
    if shutil.which("clang-19") is None or shutil.which("objdump") is None:
        print("bench_symbolize: needs clang-19 and objdump (run `make setup`)", file=sys.stderr)
        return 69
    tool, flavour = find_tool()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kcov-bench-sym-") as tmp:
        lib = build_lz4(Path(tmp))
        pts, dt_pts = timed(coverage_points, lib)
        addrs = instruction_addresses(lib)
        print(f"binary: LZ4 4.3.3 (clang-19 -g -O2 -fsanitize-coverage=trace-pc), "
              f"{lib.stat().st_size // 1024} KiB; symboliser: {tool} ({flavour})")
        print(f"CPUs: {os.cpu_count()}, load average at start: {load:.2f}")
        print(f"universe: {len(pts)} points in {dt_pts * 1000:.1f} ms")
        print()
        rows = []
        r1 = cold_rate(lib, addrs, 1)
        r2 = cold_rate(lib, addrs, 2)
        with Symbolizer(lib) as s:
            s.frames(addrs)
            _, dt_warm = timed(s.frames, addrs)
        rp = cold_rate(lib, pts.tolist(), 2)
        a2l, n = addr2line_rate(lib, addrs, args.sample)
        rows.append((f"cold, {len(addrs)} distinct addresses, 1 process", r1))
        rows.append((f"cold, {len(addrs)} distinct addresses, 2 processes", r2))
        rows.append((f"cold, the {len(pts)} points (universe)", rp))
        rows.append((f"warm (cached), {len(addrs)} addresses", len(addrs) / dt_warm))
        if args.vmlinux is not None:
            vpts, _ = timed(coverage_points, args.vmlinux)
            rows.append((f"cold, vmlinux's {len(vpts)} points, 2 processes",
                         cold_rate(args.vmlinux, vpts.tolist(), 2)))
        rows.append((f"addr2line once per PC ({n} sampled)", a2l))
        w = max(len(r[0]) for r in rows)
        print(f"{'case':<{w}}  {'PCs/s':>12}  {'x addr2line/PC':>14}")
        for label, rate in rows:
            print(f"{label:<{w}}  {rate:>12,.0f}  {rate / a2l:>14,.0f}")
        print()
        best = max(r1, r2)
        print(f"target: >= {TARGET:,} PCs/s cold: {'met' if best >= TARGET else 'NOT met'} "
              f"({best:,.0f} PCs/s measured)")
        print()
        print("CPU cost per address (independent of the machine's load):")
        costs = [("LZ4 instruction addresses", lib, addrs)]
        if args.vmlinux is not None:
            costs.append(("vmlinux points", args.vmlinux, vpts.tolist()))
        for label, binary, a in costs:
            sym, py = cpu_cost(binary, a)
            est = 2e6 / (sym + py)  # two symbolisers and the parser share 2 cores
            print(f"  {label}: llvm-symbolizer {sym:.2f} us, kcov (parse, cache) {py:.2f} us; "
                  f"on 2 idle cores at most {est:,.0f} PCs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
