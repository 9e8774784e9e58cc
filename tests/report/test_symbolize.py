"""kcov.report.symbolize: frames of call sites, checked against the
fixture's source (MARK comments, function extents), against GNU addr2line
(an independent DWARF reader; for kernel modules its per-section mode),
and for batching, caching and the missing-tool error."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from reportfix import KernelModules
from reporthelp import Fixture, function_lines, markers, run

import kcov.report.symbolize as symbolize
from kcov.report import (Frame, Symbolizer, SymbolizerUnavailableError, collect, coverage_points,
                         write_pcs, module_maps)
from kcov.report.elf import read_elf
from kcov.report.symbolize import clean_function_name, find_tool

FIXPROG_FUNCS = ("clamp_digit", "prog_digits", "prog_letters", "prog_unreached", "prog_run")
FIXLIB_FUNCS = ("store_big", "lib_checksum", "lib_note_overflow", "lib_unreached")


def _symbolise(binary: Path, **kw: object) -> dict[int, tuple[Frame, ...]]:
    with Symbolizer(binary, **kw) as s:  # type: ignore[arg-type]
        return s.frames(coverage_points(binary).tolist())


def test_frames_lie_in_their_functions(fx: Fixture) -> None:
    """Every frame names a fixture function and a line inside that
    function's definition; the innermost frame of every point is known."""
    for binary, src, funcs in ((fx.prog, fx.prog_src, FIXPROG_FUNCS),
                               (fx.lib, fx.lib_src, FIXLIB_FUNCS)):
        extents = {f: function_lines(src, f) for f in funcs}
        frames = _symbolise(binary)
        assert frames and all(frames.values()), binary
        for off, chain in frames.items():
            for fr in chain:
                assert fr.file == str(src), (hex(off), fr)
                assert fr.function in extents, (hex(off), fr)
                lo, hi = extents[fr.function]
                # Line 0: code the compiler attributes to no line.
                assert fr.line == 0 or lo <= fr.line <= hi, (hex(off), fr, lo, hi)
        named = {fr.function for chain in frames.values() for fr in chain}
        assert named >= set(funcs) - {"prog_run"}, named


def test_inlined_helper_has_its_caller_frame(fx: Fixture) -> None:
    """clamp_digit is always_inline: its overflow branch's coverage call
    is a point whose innermost frame is clamp_digit at the MARKed line and
    whose next frame is the call in prog_digits."""
    mark = markers(fx.prog_src)
    frames = _symbolise(fx.prog)
    big = [c for c in frames.values() if c[0].function == "clamp_digit" and c[0].line == mark["clamp_big"]]
    assert big, {hex(o): c for o, c in frames.items()}
    for chain in big:
        assert len(chain) >= 2
        assert (chain[1].function, chain[1].line) == ("prog_digits", mark["digits_call"])
        assert chain[0].column > 0  # llvm-symbolizer gives columns


def test_kernel_style_names() -> None:
    assert clean_function_name("block_to_path.isra.0") == "block_to_path"
    assert clean_function_name("minix_free_block.cold") == "minix_free_block"
    assert clean_function_name("f.constprop.0.isra.0") == "f"
    assert clean_function_name("f.part.1") == "f"
    assert clean_function_name("g.llvm.12345678") == "g"
    assert clean_function_name("ns::C::f(int) (.cold)") == "ns::C::f(int)"
    assert clean_function_name("plain") == "plain"
    assert clean_function_name("a.b") == "a.b"  # not a clone suffix


def test_cache_and_long_lived_process(fx_clang: Fixture) -> None:
    pts = coverage_points(fx_clang.prog).tolist()
    with Symbolizer(fx_clang.prog) as s:
        first = s.frames(pts[:3])
        assert s.cached == 3 and len(s._procs) == 1
        pid = s._procs[0].proc.pid
        again = s.frames(pts)
        assert s._procs[0].proc.pid == pid, "the same process answers later batches"
        assert {o: again[o] for o in first} == first
        assert s.cached == len(pts)
        # Repeated offsets come back once each, in a dict.
        assert s.frames(pts + pts) == again
        # Outside any code: no frames.
        assert s.frames([0x7FFFFFFF0000]) == {0x7FFFFFFF0000: ()}


def test_split_batches_give_the_same_frames(fx_clang: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large batches are split over two processes; the answers must not
    depend on it (every byte of the text as an address)."""
    e = read_elf(fx_clang.lib)
    text = e.section(".text")
    assert text is not None
    addrs = list(range(text.addr, text.addr + text.size))
    with Symbolizer(fx_clang.lib, jobs=1) as one:
        ref = one.frames(addrs)
    monkeypatch.setattr(symbolize, "_PARALLEL_MIN", 100)
    with Symbolizer(fx_clang.lib, jobs=2) as two:
        got = two.frames(addrs)
        assert len(two._procs) == 2
    assert got == ref
    assert sum(1 for c in ref.values() if c) > 100  # (crt code has no DWARF)


def test_addr2line_fallback_agrees(fx: Fixture) -> None:
    """GNU addr2line (no columns) reads the same DWARF: the same innermost
    file and line everywhere; with gcc's DWARF the same whole chain.
    (binutils 2.40 misses some of clang's DWARF 5 inline entries.)"""
    a2l = shutil.which("addr2line")
    assert a2l is not None
    for binary in (fx.prog, fx.lib):
        llvm = _symbolise(binary)
        gnu = _symbolise(binary, tool=a2l)
        assert llvm.keys() == gnu.keys()
        for off in llvm:
            assert all(fr.column == 0 for fr in gnu[off])
            assert (llvm[off][0].file, llvm[off][0].line) == (gnu[off][0].file, gnu[off][0].line), hex(off)
            if fx.toolchain == "gcc-12":
                assert [(f.function, f.file, f.line) for f in llvm[off]] == \
                       [(f.function, f.file, f.line) for f in gnu[off]], hex(off)


def test_newest_llvm_symbolizer_is_chosen(tmp_path: Path) -> None:
    for name in ("llvm-symbolizer-14", "llvm-symbolizer-19", "llvm-symbolizer", "addr2line"):
        p = tmp_path / name
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    assert find_tool(str(tmp_path)) == (str(tmp_path / "llvm-symbolizer-19"), "llvm")
    (tmp_path / "llvm-symbolizer-19").unlink()
    (tmp_path / "llvm-symbolizer-14").unlink()
    (tmp_path / "llvm-symbolizer").unlink()
    assert find_tool(str(tmp_path)) == (str(tmp_path / "addr2line"), "gnu")


def test_missing_symbolizer(fx_clang: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No llvm-symbolizer and no addr2line: one clear line, exit status 69."""
    with pytest.raises(SymbolizerUnavailableError) as ei:
        find_tool(str(tmp_path))
    assert ei.value.exit_status == 69
    assert "llvm-symbolizer" in str(ei.value) and "\n" not in str(ei.value)
    # Through collect(), with a copy of the binary (no cached symboliser).
    prog = tmp_path / "prog"
    shutil.copy2(fx_clang.prog, prog)
    dump = tmp_path / "d.pcs"
    pts = coverage_points(prog)
    write_pcs(dump, pts[:2] + 5, module_maps(prog))  # PCs at the link addresses
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(SymbolizerUnavailableError) as ec:
        collect(dump, binaries=[prog])
    assert ec.value.exit_status == 69


@pytest.mark.slow
def test_kernel_module_frames_match_addr2line(kernel_modules: KernelModules) -> None:
    """minix.ko is relocatable: frames of every point, .text and the cold
    sections, equal GNU addr2line's reading of the .ko itself section by
    section (-j), which needs no link step."""
    ko = kernel_modules.minix_ko
    e = read_elf(ko)
    pts = coverage_points(ko).tolist()
    frames = _symbolise(ko)
    by_sec: dict[str, list[tuple[int, int]]] = {}
    for p in pts:
        for idx, base in e.layout.items():
            sec = e.sections[idx]
            if base <= p < base + sec.size:
                by_sec.setdefault(sec.name, []).append((p, p - base))
    assert len(by_sec) >= 2, by_sec.keys()  # .text and a cold section at least
    checked = 0
    for name, items in by_sec.items():
        out = run(["addr2line", "-a", "-f", "-i", "-j", name, "-e", ko],
                  input="".join(f"0x{o:x}\n" for _p, o in items)).stdout
        recs: list[list[str]] = []
        for line in out.splitlines():
            if line.startswith("0x"):
                recs.append([])
            else:
                recs[-1].append(line)
        assert len(recs) == len(items)
        for (p, _o), rec in zip(items, recs):
            gnu = [(clean_function_name(rec[i]), os.path.normpath(rec[i + 1].split(" (")[0].rsplit(":", 1)[0]),
                    int(rec[i + 1].split(" (")[0].rsplit(":", 1)[1]))
                   for i in range(0, len(rec), 2)]
            assert [(f.function, f.file, f.line) for f in frames[p]] == gnu, (name, hex(p))
            checked += 1
    assert checked == len(pts)
    src = kernel_modules.minix_src
    assert all(fr.file.startswith(str(src)) for c in frames.values() for fr in c
               if fr.file.endswith(".c") and "/minix/" in fr.file)


def test_symbolizer_that_dies(fx_clang: Fixture, tmp_path: Path) -> None:
    """A symboliser that exits early: SymbolizerError (70), one line; the
    next batch starts a new process."""
    from kcov.report import SymbolizerError

    fake = tmp_path / "llvm-symbolizer-99"
    fake.write_text("#!/bin/sh\nread line; printf '??\\n??:0:0\\n\\n'; exit 3\n")
    fake.chmod(0o755)
    with Symbolizer(fx_clang.prog, tool=str(fake)) as s:
        with pytest.raises(SymbolizerError, match=r"stopped after 1 of 3 addresses") as ei:
            s.frames([0x1000, 0x1001, 0x1002])
        assert ei.value.exit_status == 70 and "\n" not in str(ei.value)
        assert s._procs == []
        assert s.frames([0x1000]) == {0x1000: ()}
