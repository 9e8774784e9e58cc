"""kcov.report.pcs: the kcov-pcs dump format, bare PCs (rawcover), the
process and kernel-module maps, and atomic writing."""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest
from reportfix import KernelModules
from reporthelp import Fixture

import kcov
from kcov.report import (FormatError, MissingFileError, ModuleMap, ReportError, kmod_maps,
                         module_maps, modules_from_maps, read_pcs, snapshot_modules, write_pcs)
from kcov.report.elf import read_elf

MOD = ModuleMap(0x555555554000, 0x555555556000, 0x1000, "exe", "ab12", "/opt/my prog/a b")


def test_round_trip(tmp_path: Path) -> None:
    dump = tmp_path / "run.pcs"
    runs = {"": [0x555555554010], "tests/test_x.py::test_a[1 2]": [0x555555554020, 0x555555554010,
                                                                    0x555555554020],
            " leading space": np.array([0x555555555000], dtype=np.uint64)}
    write_pcs(dump, runs, [MOD, ModuleMap(0xFFFFFFFFC0A00000, 0xFFFFFFFFC0A08213, 0xA0, "kmod", "",
                                          "/lib/modules/minix.ko")], comment="two\nlines")
    text = dump.read_text()
    assert text.startswith("kcov-pcs v1\n# producer: kcov ")
    assert "# two\n# lines\n" in text
    assert "module 0xffffffffc0a00000 0xffffffffc0a08213 0xa0 kmod - /lib/modules/minix.ko\n" in text
    d = read_pcs(dump)
    assert d.modules[0] == MOD and d.modules[1].build_id == ""
    assert list(d.tests) == list(runs)
    # Each test's PCs once each, sorted; the values exactly as given.
    assert d.tests["tests/test_x.py::test_a[1 2]"].tolist() == [0x555555554010, 0x555555554020]
    assert d.tests[" leading space"].tolist() == [0x555555555000]
    assert d.tests[""].dtype == np.uint64
    assert d.count == 4 and d.source == str(dump)


def test_single_test_and_no_tmp_left(tmp_path: Path) -> None:
    dump = tmp_path / "one.pcs"
    write_pcs(dump, [3, 1, 2], [MOD], test="t")
    d = read_pcs(dump)
    assert list(d.tests) == ["t"] and d.tests["t"].tolist() == [1, 2, 3]
    assert os.listdir(tmp_path) == ["one.pcs"]


def test_write_failure_leaves_nothing(tmp_path: Path) -> None:
    """The rename at the end fails (the target is a directory): an error
    with exit status 73, and no temporary file left behind."""
    target = tmp_path / "out.pcs"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(ReportError, match="out.pcs: cannot write") as ei:
        write_pcs(target, [1], [MOD])
    assert ei.value.exit_status == 73
    assert sorted(os.listdir(tmp_path)) == ["out.pcs"] and os.listdir(target) == ["keep"]


def test_write_to_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="cannot create") as ei:
        write_pcs(tmp_path / "no" / "such" / "x.pcs", [1], [MOD])
    assert ei.value.exit_status == 73


@pytest.mark.parametrize("content, message", [
    ('{"format": "kcov-coverage"}\n', r"not a kcov-pcs dump \(starts with JSON"),
    ("hello world\n", r"not a kcov-pcs dump \(starts with 'hello world'"),
    ("", "empty file"),
    ("kcov-pcs v2\n", r"this kcov reads 'kcov-pcs v1'"),
    ("kcov-pcs v1\n0x1\nzz\n", r":3: unexpected line: 'zz'"),
    ("kcov-pcs v1\n0x1\n0xfg\n", r":3: not a hex PC: '0xfg'"),
    ("kcov-pcs v1\nmodule 0x1 0x2 0x0 exe\n", r":2: a module line needs"),
    ("kcov-pcs v1\nmodule 0x1 0x2 0x0 weird - /x\n", r":2: module kind 'weird'"),
    ("kcov-pcs v1\nmodule 0x2 0x1 0x0 exe - /x\n", r":2: module end 0x1 is not above"),
    ("kcov-pcs v1\nmodule 1 2 zz exe - /x\n", r":2: module addresses must be hex"),
    ("0x1234\n0x5678\n", r"bare PCs \(rawcover/kcovtrace\) but no module given"),
])
def test_not_a_dump(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "in.pcs"
    f.write_text(content)
    with pytest.raises(FormatError, match=message) as ei:
        read_pcs(f)
    assert ei.value.exit_status == 65 and "\n" not in str(ei.value)


def test_binary_inputs(tmp_path: Path, fx_clang: Fixture) -> None:
    with pytest.raises(FormatError, match="is an ELF file, not a PC dump"):
        read_pcs(fx_clang.prog)
    (tmp_path / "bin").write_bytes(bytes(range(256)))
    with pytest.raises(FormatError, match="binary data"):
        read_pcs(tmp_path / "bin")
    with pytest.raises(MissingFileError) as ei:
        read_pcs(tmp_path / "absent.pcs")
    assert ei.value.exit_status == 66


def test_bare_pcs_with_a_module(tmp_path: Path, fx_clang: Fixture) -> None:
    """syzkaller's rawcover: hex PCs, one per line, placed by the caller."""
    raw = tmp_path / "rawcover"
    raw.write_text("0x555555555123\n\n555555555456\n")
    mods = module_maps(fx_clang.prog, base=0x555555554000)
    d = read_pcs(raw, modules=mods)
    assert d.modules == mods and d.tests[""].tolist() == [0x555555555123, 0x555555555456]
    raw.write_text("0x1\nnot hex\n")
    with pytest.raises(FormatError, match=r":2: not a hex PC"):
        read_pcs(raw, modules=mods)


def test_snapshot_of_this_process(fx_clang: Fixture) -> None:
    """In-process: the instrumented library loaded with ctypes and the
    runtime are in the map, with the right kind and build id; the PCs
    recorded fall in the library's map."""
    lib = ctypes.CDLL(str(fx_clang.lib))
    with kcov.open(provider="hosted") as k:
        with k.trace(kcov.Mode.PC):
            lib.lib_checksum(b"ab")
        pcs = k.snapshot().pcs
    mods = snapshot_modules()
    mine = [m for m in mods if m.path == str(fx_clang.lib)]
    assert mine and all(m.kind == "dso" and m.build_id == read_elf(fx_clang.lib).build_id for m in mine)
    assert any(m.path.endswith("libkcovrt.so") for m in mods)
    assert len(pcs) and all(any(m.start <= pc - 5 < m.end for m in mine) for pc in pcs.tolist()), \
        ([hex(p) for p in pcs.tolist()], mine, [m for m in mods if any(m.start <= p - 5 < m.end for p in pcs.tolist())])
    assert [m for m in snapshot_modules(os.getpid()) if m.path == str(fx_clang.lib)] == mine


def test_modules_from_maps_skips_what_is_not_elf(tmp_path: Path, fx_clang: Fixture) -> None:
    txt = tmp_path / "text"
    txt.write_text("x")
    maps = "\n".join([
        f"555555554000-555555555000 r--p 00000000 08:01 1 {fx_clang.prog}",
        f"555555555000-555555556000 r-xp 00001000 08:01 1 {fx_clang.prog}",
        f"7f0000000000-7f0000001000 r-xp 00000000 08:01 2 {txt}",
        "7ffff7fc1000-7ffff7fc3000 r-xp 00000000 00:00 0 [vdso]",
        "7ffff7fc4000-7ffff7fc5000 rw-p 00000000 00:00 0",
        f"7f0000002000-7f0000003000 r-xp 00000000 08:01 3 {tmp_path}/gone (deleted)",
    ])
    (m,) = modules_from_maps(maps)
    assert (m.start, m.end, m.file_offset, m.kind, m.path) == (
        0x555555555000, 0x555555556000, 0x1000, "exe", str(fx_clang.prog))


def test_kmod_maps_from_sysfs(tmp_path: Path, fx_clang: Fixture) -> None:
    """kmod_maps reads one address per executable section (a fake
    /sys/module tree; the VM test reads the real one)."""
    obj = fx_clang.dir / "fixprog.o"
    e = read_elf(obj)
    secs = tmp_path / "sys" / "fixprog" / "sections"
    secs.mkdir(parents=True)
    (secs / ".text").write_text("0xffffffffc0a00000\n")
    (secs / ".data").write_text("0xffffffffc0a10000\n")
    maps = kmod_maps("fixprog", obj, sysfs=tmp_path / "sys")
    text = e.section(".text")
    assert text is not None
    assert maps == [ModuleMap(0xFFFFFFFFC0A00000, 0xFFFFFFFFC0A00000 + text.size, text.offset, "kmod",
                              "", str(obj.resolve()))]
    (secs / ".text").write_text("0x0000000000000000\n")  # what non-root reads
    with pytest.raises(ReportError, match="need root") as ei:
        kmod_maps("fixprog", obj, sysfs=tmp_path / "sys")
    assert ei.value.exit_status == 77
    with pytest.raises(ReportError, match="no such module loaded") as em:
        kmod_maps("absent", obj, sysfs=tmp_path / "sys")
    assert em.value.exit_status == 66


@pytest.mark.slow
def test_kmod_maps_checks_the_build_id(tmp_path: Path, kernel_modules: KernelModules) -> None:
    ko = kernel_modules.minix_ko
    e = read_elf(ko)
    base = tmp_path / "sys" / "minix"
    (base / "sections").mkdir(parents=True)
    (base / "notes").mkdir()
    addr = 0xFFFFFFFFC0A00000
    for idx, off in e.layout.items():
        (base / "sections" / e.sections[idx].name).write_text(f"0x{addr + off:x}\n")
    note = b"\x04\0\0\0\x14\0\0\0\x03\0\0\0GNU\0" + bytes.fromhex(e.build_id)
    (base / "notes" / ".note.gnu.build-id").write_bytes(note)
    maps = kmod_maps("minix", ko, sysfs=tmp_path / "sys")
    assert len(maps) == len(e.layout) >= 2
    assert all(m.kind == "kmod" and m.build_id == e.build_id for m in maps)
    other = b"\x04\0\0\0\x14\0\0\0\x03\0\0\0GNU\0" + bytes(20)
    (base / "notes" / ".note.gnu.build-id").write_bytes(other)
    with pytest.raises(ReportError, match="not the module that is loaded"):
        kmod_maps("minix", ko, sysfs=tmp_path / "sys")
