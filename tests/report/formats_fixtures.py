"""Scenarios and helpers for the format tests (test_formats_*.py).

Scenarios are CoverageData built by hand over the sources in data/src/
(their line numbers are what the points below name), so the golden files
in golden/<scenario>/ are deterministic:

* ``basic``: two modules (an executable and a library), two tests, a
  static inline helper (drv/util.h) inlined into its caller, a partly
  covered line (drv/main.c:10, the two arms of an if), an instrumented
  function never reached (cleanup), a function known only from the
  inventory (unused_fn: no point), and a file whose source is missing
  (drv/gen.c).
* ``anon``: the same points reached by one run without a test name, the
  executable's universe unknown.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

import kcov
from kcov.report import CoverageData, Frame, FunctionDecl, Module

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SRC = DATA / "src"
GOLDEN = HERE / "golden"
REGEN = os.environ.get("KCOV_REGEN_GOLDEN") == "1"

PROG = Module(Module.make_key("prog", "aa11bb22"), "prog", "/build/prog",
              "aa11bb22", "exe", True)
LIB = Module(Module.make_key("liblist.so", "cc33dd44"), "liblist.so",
             "/build/liblist.so", "cc33dd44", "dso", True)

OPEN, READ = "test_open", "test_read[big, slow]"


def _scenario_points(src: Path) -> list[tuple[Module, int, tuple[Frame, ...],
                                              set[str]]]:
    main, util, lst = (str(src / "drv/main.c"), str(src / "drv/util.h"),
                       str(src / "lib/list.c"))
    gen = str(src / "drv/gen.c")  # not on disk

    def clamp(line: int) -> tuple[Frame, ...]:
        return (Frame("clamp", util, line, 6), Frame("handle", main, 8, 10))

    both = {OPEN, READ}
    return [
        (PROG, 0x100, (Frame("handle", main, 8, 10),), both),
        (PROG, 0x108, clamp(4), both),
        (PROG, 0x110, clamp(5), set()),
        (PROG, 0x118, clamp(6), {READ}),
        (PROG, 0x120, clamp(7), {READ}),
        (PROG, 0x124, clamp(8), {OPEN}),
        (PROG, 0x128, (Frame("handle", main, 10, 13),), {READ}),
        (PROG, 0x130, (Frame("handle", main, 10, 30),), set()),
        (PROG, 0x138, (Frame("handle", main, 11, 2),), both),
        (PROG, 0x140, (Frame("cleanup", main, 16, 8),), set()),
        (PROG, 0x148, (Frame("main", main, 27, 9),), {OPEN}),
        (PROG, 0x200, (Frame("gen_table", gen, 12, 1),), {OPEN}),
        (PROG, 0x208, (Frame("gen_table", gen, 14, 1),), set()),
        (LIB, 0x20, (Frame("list_len", lst, 4, 6),), {READ}),
        (LIB, 0x28, (Frame("list_len", lst, 6, 9),), {READ}),
        (LIB, 0x30, (Frame("list_len", lst, 7, 4),), {READ}),
        (LIB, 0x38, (Frame("list_len", lst, 8, 2),), {READ}),
    ]


def basic(src: Path = SRC) -> CoverageData:
    d = CoverageData()
    d.add_module(PROG)
    d.add_module(LIB)
    for mod, off, frames, tests in _scenario_points(src):
        d.add_point(mod.key, off, frames)
        for t in sorted(tests):
            d.add_hit(mod.key, off, t)
    main = str(src / "drv/main.c")
    for name, start, end in (("handle", 6, 12), ("cleanup", 14, 17),
                             ("unused_fn", 19, 22), ("main", 24, 28)):
        d.add_function(FunctionDecl(name, main, start, end))
    d.add_function(FunctionDecl("list_len", str(src / "lib/list.c"), 2, 9))
    return d


def anon(src: Path = SRC) -> CoverageData:
    d = CoverageData()
    prog = Module(PROG.key, PROG.name, PROG.path, PROG.build_id, PROG.kind,
                  False)
    d.add_module(prog)
    d.add_module(LIB)
    for mod, off, frames, tests in _scenario_points(src):
        d.add_point(mod.key, off, frames)
        if tests:
            d.add_hit(mod.key, off, "")
    d.add_function(FunctionDecl("unused_fn", str(src / "drv/main.c"), 19,
                                22))
    return d


SCENARIOS = {"basic": basic, "anon": anon}


# -- golden files -------------------------------------------------------------


def normalise(text: str, replacements: dict[str, str]) -> str:
    """Absolute paths and our version replaced by placeholders."""
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    text = text.replace(f"kcov {kcov.__version__}", "kcov @VERSION@")
    return text.replace(f'"version": "{kcov.__version__}"',
                        '"version": "@VERSION@"')


def check_golden(got: str, golden: Path) -> None:
    """Compare byte for byte; with KCOV_REGEN_GOLDEN=1, (re)write instead."""
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(got.encode("utf-8"))
    assert golden.is_file(), (f"missing golden file {golden}; create it "
                              "with KCOV_REGEN_GOLDEN=1")
    want = golden.read_bytes().decode("utf-8")
    if got != want:
        gl, wl = got.splitlines(), want.splitlines()
        for i, (a, b) in enumerate(zip(gl, wl), 1):
            if a != b:
                raise AssertionError(f"{golden}:{i} differs:\n  want {b!r}\n"
                                     f"  got  {a!r}")
        raise AssertionError(f"{golden}: {len(gl)} lines, want {len(wl)} "
                             "(or a difference in line ends)")


# -- PNG ----------------------------------------------------------------------


def png_pixels(raw: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes)
    into (width, height, rows of RGB bytes)."""
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(raw):
        n, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        chunk = raw[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    assert hdr is not None
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and not interlace, hdr
    bpp = 3 if ctype == 2 else 4
    data = zlib.decompress(idat)
    stride = w * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(h):
        ftype, line = data[i], bytearray(data[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pr) & 0xFF
        prev = line
        rows.append(bytes(line) if bpp == 3 else
                    bytes(v for k, v in enumerate(line) if k % 4 != 3))
    return w, h, rows


def strip_tags(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# -- tools --------------------------------------------------------------------


def need_tool(name: str) -> str:
    """The path of ``name``; skip without it, except in CI where it must be
    there (scripts/setup.sh installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI (scripts/setup.sh)")
        pytest.skip(f"{name} is not installed")
    return path


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a throw-away profile (parallel runs must
    not share one); its stderr is D-Bus noise in containers."""
    exe = need_tool("chromium")
    with tempfile.TemporaryDirectory(prefix="kcov-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
               "--no-first-run", "--disable-extensions",
               "--force-color-profile=srgb", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout, check=False)
