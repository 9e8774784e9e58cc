"""The main job of `make demo`: kernel-style code, instrumented, driven from Python.

1. kcov-build compiles examples/kvdev/kvdev.c (a small kernel-style driver)
   into a shared library with -fsanitize-coverage=trace-pc,trace-cmp.
2. Python loads it with ctypes into this process and calls its ioctl entry
   point once per "syscall", each inside a kcov trace on the hosted device.
3. It prints, per call, the PCs recorded and what was new, the comparison
   operands one call made (what syzkaller turns into hints), and a summary:
   coverage points reached out of all points in the library, per function.
4. It writes the run as a kcov-pcs dump (each call is a "test") and turns
   it into reports with kcov.report: a terminal summary, HTML, lcov,
   Cobertura and JSON in build/demo/report/.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kcov
from kcov.report import collect, formats, snapshot_modules, write_pcs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "build" / "demo"

KVIOC_PUT, KVIOC_GET, KVIOC_DEL = 0x40046B01, 0x80046B02, 0x40046B03
KVIOC_COUNT, KVIOC_CLEAR = 0x80046B04, 0x20006B05


def pick_compiler() -> str:
    for cc in ("clang-19", "clang-16", "clang-14", "clang", "gcc-12", "gcc"):
        if shutil.which(cc):
            return cc
    sys.exit("demo: no C compiler found; run `make setup`")


def build(cc: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    lib = OUT / "libkvdev.so"
    kcov_build = Path(sys.executable).with_name("kcov-build")
    # -fno-inline keeps the driver's helpers as functions, for the summary.
    cmd = [str(kcov_build), cc, "-O2", "-fno-inline", "-g", "-fPIC", "-shared",
           str(HERE / "kvdev" / "kvdev.c"), "-o", str(lib)]
    print("$", " ".join(cmd[0:1] + ["--"] + cmd[1:]).replace(str(ROOT) + "/", ""))
    subprocess.run(cmd, check=True)
    return lib


def load_base(lib: Path) -> int:
    real = os.path.realpath(lib)
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == real and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    raise RuntimeError(f"{lib} is not mapped")


def main() -> int:
    cc = pick_compiler()
    lib_path = build(cc)
    lib = ctypes.CDLL(str(lib_path))
    ioctl = lib.kvdev_ioctl
    ioctl.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)]
    ioctl.restype = ctypes.c_int

    base = load_base(lib_path)
    runs: dict[str, list[int]] = {}

    calls = [
        ("PUT alpha=1", KVIOC_PUT, b"alpha", 1),
        ("PUT beta=2", KVIOC_PUT, b"beta", 2),
        ("PUT alpha=3 (exists)", KVIOC_PUT, b"alpha", 3),
        ("GET alpha", KVIOC_GET, b"alpha", 0),
        ("GET gamma (missing)", KVIOC_GET, b"gamma", 0),
        ("PUT Bad-Key", KVIOC_PUT, b"Bad-Key", 4),
        ("DEL beta", KVIOC_DEL, b"beta", 0),
        ("COUNT", KVIOC_COUNT, None, 0),
        ("bogus cmd", 0x1234, None, 0),
        ("CLEAR", KVIOC_CLEAR, None, 0),
    ]

    k = kcov.open(provider="hosted", entries=64 << 10)
    print(f"\nkcov provider: {k.provider}, buffer {k.entries} entries\n")
    print(f"{'call':24} {'ret':>5} {'PCs':>5} {'unique':>6} {'new':>5}")
    seen: set[int] = set()
    for name, cmd, key, value in calls:
        val = ctypes.c_uint32(value)
        with k.trace(kcov.Mode.PC):
            ret = ioctl(cmd, key, ctypes.byref(val))
        runs[name] = [int(pc) for pc in k.pcs()]
        pcs = {int(pc) - base for pc in k.pcs()}
        new = pcs - seen
        seen |= pcs
        print(f"{name:24} {ret:>5} {len(k.pcs()):>5} {len(pcs):>6} {len(new):>5}")

    val = ctypes.c_uint32(0xDEADBEEF)
    with k.trace(kcov.Mode.CMP):
        ioctl(KVIOC_PUT, b"delta", ctypes.byref(val))
    cmps = k.comparisons()
    print(f"\ncomparisons made by PUT delta=0xdeadbeef: {len(cmps)}")
    # The ones that involve the input value first: what a fuzzer mutates with.
    recs = sorted({(int(a1), int(a2), int(size), bool(c)) for a1, a2, size, c
                   in zip(cmps.arg1, cmps.arg2, cmps.size, cmps.is_const)},
                  key=lambda r: (0xDEADBEEF not in r[:2], r))
    for a1, a2, size, is_const in recs[:8]:
        kind = "const" if is_const else "var  "
        print(f"  {kind} size {size}: {a1:#x} vs {a2:#x}")
    k.close()

    # From PCs to answers: dump the run, then let kcov.report find every
    # coverage point of the library (the denominator), symbolise, and write
    # the reports.  `kcov-report convert build/demo/demo.pcs -o x.html` does
    # the same from the command line.
    dump = OUT / "demo.pcs"
    write_pcs(dump, runs, [m for m in snapshot_modules()
                           if os.path.realpath(m.path) == os.path.realpath(lib_path)])
    data = collect(dump)
    tot = data.totals()
    print(f"\ncoverage: {tot.hit} of {tot.points} points ({tot.point_percent:.1f}%) "
          f"in {lib_path.name}")
    for f in data.files().values():
        for fn in sorted(f.functions.values(), key=lambda fs: fs.line):
            mark = "" if fn.hit else "   <- never reached"
            print(f"  {fn.name:18} {fn.hit:>3}/{fn.points:<3}{mark}")
    print("\nwhich calls reach kv_del:", ", ".join(sorted(data.tests_reaching("kv_del"))))

    report = OUT / "report"
    report.mkdir(exist_ok=True)
    root = str(HERE)
    outputs = {"html": report / "html", "lcov": report / "coverage.info",
               "cobertura": report / "cobertura.xml", "json": report / "coverage.json"}
    print()
    print(formats.render(data, "text", root=root), end="")
    for fmt, path in outputs.items():
        opts = {} if fmt in ("json", "lcov") else {"root": root}
        formats.write(data, fmt, path, **opts)
    print("\nreports:", ", ".join(str(p.relative_to(ROOT)) for p in outputs.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
