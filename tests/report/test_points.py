"""The coverage universe (kcov.report.points) and the ELF reading under it
(kcov.report.elf), against independent readers: objdump's disassembly
(calls to the callback), pyelftools (headers, segments, build id), and
the PCs a real run recorded."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tests.support.kernels import BuiltKernel
from reportfix import KernelModules, Run, _fixture
from elftools.elf.elffile import ELFFile
from reporthelp import Fixture, run

from kcov.report import (CALL_LENGTH, MissingFileError, NotElfError, coverage_points,
                         module_maps)
from kcov.report.points import find_universe, match_pcs
from kcov.report.elf import read_elf

# A call, or a tail call (jmp), to the callback, in objdump -d.
BRANCH = re.compile(r"^\s*([0-9a-f]+):\s+(call|jmp)\s+[0-9a-f]+ <__sanitizer_cov_trace_pc(?:@plt)?>$", re.M)


def objdump_calls(path: Path, kinds: tuple[str, ...] = ("call", "jmp")) -> list[int]:
    """Addresses of `call|jmp <__sanitizer_cov_trace_pc[@plt]>` in objdump -d."""
    out = run(["objdump", "-d", "--no-show-raw-insn", path]).stdout
    return sorted(int(m.group(1), 16) for m in BRANCH.finditer(out) if m.group(2) in kinds)


def objdump_reloc_calls(path: Path) -> dict[str, list[int]]:
    """Relocatable objects: section -> offsets of call and jmp instructions
    whose relocation names the callback (objdump -dr)."""
    out = run(["objdump", "-dr", "--no-show-raw-insn", path]).stdout
    res: dict[str, list[int]] = {}
    sec = ""
    prev = ""
    for line in out.splitlines():
        m = re.match(r"^Disassembly of section (\S+):$", line)
        if m:
            sec = m.group(1)
            continue
        r = re.match(r"^\s*([0-9a-f]+): R_X86_64_(?:PLT32|PC32)\s+__sanitizer_cov_trace_pc-0x4$", line)
        if r and re.match(r"^\s*[0-9a-f]+:\s+(call|jmp)\b", prev):
            res.setdefault(sec, []).append(int(r.group(1), 16) - 1)
        if line.strip():
            prev = line
    return res


def test_points_are_the_calls_objdump_shows(fx: Fixture) -> None:
    for binary in (fx.prog, fx.lib):
        pts = coverage_points(binary)
        assert pts.dtype == np.uint64 and list(pts) == sorted(set(pts.tolist()))
        want = objdump_calls(binary)
        assert len(want) >= 5, (binary, want)
        assert pts.tolist() == want, binary


def test_relocatable_object_points(fx: Fixture) -> None:
    """In a .o the calls are relocations; offsets are .text-relative, other
    executable sections follow .text in the synthetic layout."""
    obj = fx.dir / "fixprog.o"
    e = read_elf(obj)
    assert e.kind == "kmod" and e.type == 1
    want = objdump_reloc_calls(obj)
    assert want.get(".text"), want
    expect = []
    for idx, base in e.layout.items():
        expect += [base + off for off in want.get(e.sections[idx].name, [])]
    assert coverage_points(obj).tolist() == sorted(expect)
    assert e.layout[e.section(".text").index] == 0  # type: ignore[union-attr]


def test_recorded_pcs_minus_call_length_are_points(fx: Fixture, runs: dict[str, Run]) -> None:
    """Every PC of a real run, minus 5, placed with pyelftools' segments
    and the process map, is a call site the universe lists, or (gcc) the
    call of store_big, whose tail call match_pcs finds."""
    assert CALL_LENGTH[62] == 5
    tails_hit = 0
    for r in runs.values():
        seen = 0
        for m in r.modules:
            if m.path not in (str(fx.prog), str(fx.lib)):
                continue
            with open(m.path, "rb") as f:
                segs = [s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]
            e = read_elf(m.path)
            uni = find_universe(e)
            calls = set(uni.calls.tolist())
            for pc in r.pcs.tolist():
                site = pc - 5
                if not m.start <= site < m.end:
                    continue
                fo = site - m.start + m.file_offset
                seg = next(s for s in segs if s["p_offset"] <= fo < s["p_offset"] + s["p_filesz"])
                off = fo - seg["p_offset"] + seg["p_vaddr"]
                seen += 1
                if off in calls:
                    continue
                (point,) = match_pcs(e, uni, np.array([off], dtype=np.uint64)).tolist()
                assert point in set(uni.tails.tolist()), (hex(pc), m)
                tails_hit += 1
        assert seen == len(r.pcs), "every PC lies in the fixture's two modules"
    # gcc tail-calls the callback at the end of store_big; clang does not.
    assert (tails_hit > 0) == (fx.toolchain == "gcc-12"), tails_hit


def test_lld_pie_layout_differs_from_file_offsets(fixture_builds: dict[str, Fixture],
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """The case the offset arithmetic exists for: lld puts the executable
    segment at p_vaddr != p_offset; GNU ld at p_vaddr == p_offset."""
    lld = _fixture(fixture_builds, "clang-19-lld", tmp_path_factory)
    bfd = _fixture(fixture_builds, "clang-19", tmp_path_factory)
    for fx, differs in ((lld, True), (bfd, False)):
        segs = [s for s in read_elf(fx.prog).segments if s.executable]
        assert len(segs) == 1
        assert (segs[0].vaddr != segs[0].offset) is differs, (fx.toolchain, segs)


def test_elf_headers_agree_with_pyelftools(fx: Fixture) -> None:
    for path, kind in ((fx.prog, "exe"), (fx.lib, "dso"), (fx.dir / "fixlib.o", "kmod")):
        e = read_elf(path)
        assert e.kind == kind, path
        with open(path, "rb") as f:
            ref = ELFFile(f)
            loads = [(s["p_vaddr"], s["p_offset"], s["p_filesz"], s["p_memsz"])
                     for s in ref.iter_segments() if s["p_type"] == "PT_LOAD"]
            assert [(s.vaddr, s.offset, s.filesz, s.memsz) for s in e.segments] == loads
            assert [s.name for s in e.sections] == [s.name for s in ref.iter_sections()]
            note = ref.get_section_by_name(".note.gnu.build-id")
            if note is not None:
                bid = next(n for n in note.iter_notes() if n["n_type"] == "NT_GNU_BUILD_ID")["n_desc"]
                assert e.build_id == bid
            else:
                assert e.build_id == ""
        assert e.has_line_info
    assert read_elf(fx.prog).build_id, "the toolchain writes a build id (the tests rely on it)"


def test_module_maps_place_a_pie_at_its_base(fx: Fixture) -> None:
    maps = module_maps(fx.prog, base=0x555555554000)
    e = read_elf(fx.prog)
    (seg,) = [s for s in e.segments if s.executable]
    (m,) = maps
    assert (m.start, m.end, m.file_offset) == (0x555555554000 + seg.vaddr,
                                                0x555555554000 + seg.vaddr + seg.memsz, seg.offset)
    assert m.kind == "exe" and m.build_id == e.build_id


def test_bad_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(NotElfError, match=r"notes\.txt: not an ELF file") as ei:
        coverage_points(text)
    assert ei.value.exit_status == 65
    with pytest.raises(MissingFileError, match="no such file") as em:
        coverage_points(tmp_path / "gone")
    assert em.value.exit_status == 66
    trunc = tmp_path / "trunc"
    trunc.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    with pytest.raises(NotElfError, match="truncated or damaged"):
        coverage_points(trunc)


def test_uninstrumented_binary_has_no_points(tmp_path: Path) -> None:
    src = tmp_path / "plain.c"
    src.write_text("int f(int x) { return x ? x + 1 : 2; }\n")
    run(["gcc-12", "-g", "-O2", "-fPIC", "-shared", src, "-o", tmp_path / "plain.so"])
    assert len(coverage_points(tmp_path / "plain.so")) == 0


@pytest.mark.slow
def test_kernel_module_points(kernel_modules: KernelModules) -> None:
    """minix.ko: every relocated call and tail call (jmp), in .text and in
    cold sections."""
    ko = kernel_modules.minix_ko
    e = read_elf(ko)
    assert e.kind == "kmod" and e.build_id
    want = objdump_reloc_calls(ko)
    expect = []
    for idx, base in e.layout.items():
        expect += [base + off for off in want.get(e.sections[idx].name, [])]
    pts = coverage_points(ko)
    assert pts.tolist() == sorted(expect)
    assert len(want[".text"]) > 500
    text = e.section(".text")
    assert text is not None
    cold = [p for p in pts.tolist() if p >= text.size]
    assert len(cold) == sum(len(v) for k, v in want.items() if k != ".text") > 0
    # Every relocation against the callback is a call or a tail call.
    relocs = run(["readelf", "-rW", ko]).stdout.count("__sanitizer_cov_trace_pc - 4")
    assert relocs == len(pts)
    assert len(find_universe(e).tails) > 0  # gcc's kernel code has tail calls


@pytest.mark.slow
def test_vmlinux_points(dwarf_kernel: BuiltKernel) -> None:
    """The kcov VM kernel's vmlinux: the callback is defined in it (no PLT),
    the universe is every direct call, offsets are link addresses."""
    vmlinux = dwarf_kernel.vmlinux
    e = read_elf(vmlinux)
    assert e.kind == "vmlinux" and e.has_line_info
    pts = coverage_points(vmlinux)
    assert len(pts) > 10000
    assert pts[0] >= 0xFFFFFFFF80000000
    # objdump over a window of kernel code is the oracle (the whole vmlinux
    # takes minutes); the window must hold calls to mean anything.
    syms = {}
    for line in dwarf_kernel.system_map.read_text().splitlines():
        addr, _kind, name = line.split()[:3]
        syms[name] = int(addr, 16)
    lo = syms["__x64_sys_getppid"]
    hi = lo + 0x2000
    out = run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={lo:#x}",
               f"--stop-address={hi:#x}", vmlinux]).stdout
    calls = [int(m.group(1), 16) for m in BRANCH.finditer(out)]
    assert len(calls) > 5, out[-2000:]
    assert [p for p in pts.tolist() if lo <= p and p + 5 <= hi] == calls
