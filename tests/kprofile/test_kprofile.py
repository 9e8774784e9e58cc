"""Source-based coverage of a kernel module, end to end (issue 5, kernel).

A clang-19 kernel (tests/vm's), kcov.ko built against it, data/kprofdemo
built with `kcov-build --sbcc`; in the VM the module registers its profile
sections with kcov.ko, the workload runs through /sys/kernel/debug/kprofdemo
and its profile comes back through /sys/kernel/debug/kcov-profile; on the
host llvm-profdata and llvm-cov (through kcov.profile) turn it into line
coverage of the module's source, whose counts the workload predicts.  The
module rebuilt with that profile (PGO) loads and passes the same workload
in a second boot.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from kprof_host import DATA, Boot, Module, dmesg_problems, kernels, line_counts, llvm_profdata_show

pytestmark = pytest.mark.slow

CALC = DATA / "kprofdemo" / "calc.c"
MAIN = DATA / "kprofdemo" / "main.c"
# What guest_kprof.py's workload sends: 6 classify, 3 collatz (27, 1, 6:
# 111 + 0 + 8 loop iterations), one unknown command, nothing else.
EXPECT_CALLS = {"kprofdemo_classify": 6, "kprofdemo_collatz": 3, "kprofdemo_unused": 0,
                "kprofdemo_write": 10, "kprofdemo_run": 10, "kprofdemo_init": 0, "kprofdemo_exit": 0}


def _line_of(path: Path, text: str) -> int:
    """The 1-based line of `path` that contains `text` (exactly one)."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def _line_after(path: Path, anchor: str, text: str) -> int:
    """The first line containing `text` after the line containing `anchor`."""
    start = _line_of(path, anchor)
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if i > start and text in line)


def _sections(ko: Path) -> dict[str, object]:
    from elftools.elf.elffile import ELFFile

    with ko.open("rb") as f:
        elf = ELFFile(f)
        secs = [(s.name, s["sh_size"], s["sh_flags"]) for s in elf.iter_sections()]
        symtab = elf.get_section_by_name(".symtab")
        syms = {s.name: (s["st_value"], s["st_shndx"]) for s in symtab.iter_symbols()}
        names = {i: s.name for i, s in enumerate(elf.iter_sections())}
    return {"sections": secs, "symbols": syms, "index": names}


# --- Host: the builds ----------------------------------------------------------


def test_kernel_and_kcov_ko(kprof_kernel: "kernels.BuiltKernel", kcov_ko: Module) -> None:
    """tests/vm's clang kernel, which also loads modules; kcov.ko built
    against it is the profile registry alone (vmlinux has kcov)."""
    cfg = kprof_kernel.dotconfig.read_text().splitlines()
    for opt in ("CONFIG_MODULES=y", "CONFIG_KCOV=y", "CONFIG_LD_IS_LLD=y", "CONFIG_KALLSYMS=y",
                "CONFIG_CC_IS_CLANG=y"):
        assert opt in cfg, opt
    exports = {line.split("\t")[1] for line in kcov_ko.symvers.read_text().splitlines()}
    assert {"kcovprof_register", "kcovprof_unregister"} <= exports
    assert not any(e.startswith("__sanitizer_cov") for e in exports), exports


def test_module_link_gathers_profile_sections(demo_ko: Module) -> None:
    """kcov-build --sbcc's link script: one output section per profile
    section, bracketed by the boundary symbols kcov.ko looks up, the raw
    version as an absolute symbol, and an undefined kcovprof_register (the
    dependency on kcov.ko)."""
    info = _sections(demo_ko.ko)
    secs = info["sections"]
    syms = info["symbols"]
    by_name: dict[str, list[int]] = {}
    for name, size, _flags in secs:  # type: ignore[union-attr]
        by_name.setdefault(name, []).append(size)
    for sec in ("data", "cnts", "names"):
        assert len(by_name[f"__llvm_prf_{sec}"]) == 1, by_name.get(f"__llvm_prf_{sec}")
        size = by_name[f"__llvm_prf_{sec}"][0]
        begin, end = syms[f"__kcovprof_{sec}_begin"], syms[f"__kcovprof_{sec}_end"]  # type: ignore[index]
        assert info["index"][begin[1]] == f"__llvm_prf_{sec}"  # type: ignore[index]
        assert (begin[0], end[0]) == (0, size) and size > 0
    # Everything the two objects had (their functions and the header
    # inlines they use), in one section each.
    for sec in ("data", "cnts"):
        parts = [size for o in ("main.o", "calc.o")
                 for name, size, _f in _sections(demo_ko.dir / o)["sections"]  # type: ignore[union-attr]
                 if name == f"__llvm_prf_{sec}"]
        assert len(parts) > 2 and by_name[f"__llvm_prf_{sec}"][0] == sum(parts), (sec, parts)
    assert syms["__kcovprof_raw_version"] == (10, "SHN_ABS")  # type: ignore[index]
    assert syms["kcovprof_register"][1] == "SHN_UNDEF"  # type: ignore[index]
    assert len(by_name.get("__llvm_covfun", [])) >= 8  # the coverage mapping stays for llvm-cov


# --- Guest: registration, reset, unload ------------------------------------------


def test_guest_steps(sbcc_boot: Boot) -> None:
    r = sbcc_boot.report
    failed = [s for s in r["steps"] if s["rc"] != 0]  # type: ignore[union-attr]
    assert not failed, failed
    assert r["dir_after_kcov"] == []
    assert r["files"] == ["kprofdemo.profraw"]
    assert r["files_after_rmmod"] == []      # MODULE_STATE_GOING removed it
    assert r["dir_after_unload"] is False    # kcov.ko removed its directory
    assert r["stable"] is True
    assert not dmesg_problems(sbcc_boot.result.dmesg), dmesg_problems(sbcc_boot.result.dmesg)
    assert re.search(r"kcov: profile of kprofdemo: raw v10, \d+ functions, \d+ counters in "
                     r"kcov-profile/kprofdemo\.profraw", sbcc_boot.result.dmesg), sbcc_boot.result.dmesg[-3000:]


def test_workload_results(sbcc_boot: Boot) -> None:
    for w in sbcc_boot.report["workload"]:  # type: ignore[union-attr]
        if w["want"] is None:
            assert w["errno"] == 22, w   # EINVAL
        else:
            assert (w["errno"], w["got"]) == (0, w["want"]), w


def test_profile_from_load_and_reset(sbcc_boot: Boot) -> None:
    """Registered at MODULE_STATE_COMING, before init: the init function is
    counted.  A write resets every counter."""
    init = llvm_profdata_show(sbcc_boot.out / "init.profraw")
    assert init["kprofdemo_init"]["count"] == 1, init["kprofdemo_init"]
    assert init["kprofdemo_write"]["count"] == 0
    reset = llvm_profdata_show(sbcc_boot.out / "reset.profraw")
    assert set(reset) == set(init) and set(EXPECT_CALLS) <= set(reset)
    for name, f in reset.items():
        assert f["count"] == 0 and not any(f.get("blocks", [])), (name, f)


def test_function_counts(sbcc_boot: Boot) -> None:
    funcs = llvm_profdata_show(sbcc_boot.out / "workload.profraw")
    got = {name: funcs[name]["count"] for name in EXPECT_CALLS}
    assert got == EXPECT_CALLS
    assert funcs["kprofdemo_read"]["count"] >= 9  # one read per result (Python may read to EOF)


def test_bad_raw_version_is_refused(sbcc_boot: Boot) -> None:
    """A module whose link claims raw v8 but whose code is clang-19's: kcov.ko
    serves no file for it, and says why; the module itself loads."""
    r = sbcc_boot.report
    assert r["files_with_bad"] == []
    assert "kcov: the profile of kprofbad cannot be written: the instrumented code was built by another " \
           "clang" in sbcc_boot.result.dmesg


# --- Host: llvm-cov of the module's source -----------------------------------------


def test_llvm_cov_line_counts(sbcc_boot: Boot, demo_ko: Module, profdata: Path) -> None:
    """llvm-cov reads the relocatable .ko as it is (ET_REL): the coverage
    mapping and names sections are in it."""
    import kcov.profile

    src = demo_ko.dir / "calc.c"
    show = line_counts(kcov.profile.report(demo_ko.ko, profdata, format="text", sources=[src]))
    assert show, "llvm-cov show printed no lines of calc.c"

    def count(text: str) -> int | None:
        return show[_line_of(CALC, text)][0]

    def entries(signature: str) -> int | None:  # llvm-cov counts a function on its "{"
        return show[_line_of(CALC, signature) + 1][0]

    assert entries("long kprofdemo_classify(long v)") == 6
    assert count("return -1;") == 1
    assert count("return 0;") == 1
    assert count("return 1;") == 3
    assert count("return 2;") == 1
    assert entries("long kprofdemo_collatz(long v)") == 3
    assert count("steps++;") == 111 + 0 + 8
    assert count("v = 3 * v + 1;") == 41 + 0 + 2  # odd steps of 27 and of 6
    assert entries("long kprofdemo_unused(long v)") == 0
    assert count("r += v * v;") == 0

    main = line_counts(kcov.profile.report(demo_ko.ko, profdata, format="text",
                                           sources=[demo_ko.dir / "main.c"]))
    # The command table is searched in order: classify (6 commands, 1 test
    # each), collatz (3, 2 tests each), the unknown command (all 3 tests).
    assert main[_line_of(MAIN, "if (strcmp(name, kprofdemo_cmds[i].name) == 0)")][0] == 6 + 3 * 2 + 3
    assert main[_line_of(MAIN, "*out = kprofdemo_cmds[i].fn(v);")][0] == 9
    assert main[_line_after(MAIN, "static int kprofdemo_run(", "return -EINVAL;")][0] == 1


def test_readme_excerpt_is_real(demo_ko: Module, profdata: Path) -> None:
    """The llvm-cov excerpt of calc.c in docs/profiles-pgo.md is what llvm-cov
    shows now."""
    import kcov.profile

    from kprof_host import REPO

    readme = (REPO / "docs" / "profiles-pgo.md").read_text()
    part = readme[readme.index("### Kernel modules"):]
    block = part[part.index("   17|       |long kprofdemo_collatz"):]
    block = block[:block.index("```")]
    show = kcov.profile.report(demo_ko.ko, profdata, format="text", sources=[demo_ko.dir / "calc.c"])
    assert block.strip("\n") in show, block


def test_llvm_cov_report_summary(demo_ko: Module, profdata: Path) -> None:
    import kcov.profile

    # The module's own files (the .ko also maps every header inline it saw).
    text = kcov.profile.report(demo_ko.ko, profdata, format="report", sources=[demo_ko.dir])
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()[:1]
            and line.split()[0].endswith((".c", "TOTAL"))}
    assert set(rows) == {"calc.c", "main.c", "TOTAL"}, text
    # Functions, missed: calc.c 3 (unused), main.c 5 (init ran before the
    # reset, exit after the snapshot).
    assert rows["calc.c"][4:6] == ["3", "1"], text
    assert rows["main.c"][4:6] == ["5", "2"], text


def test_value_profiling_in_kernel(sbcc_boot: Boot) -> None:
    """IR PGO (-fprofile-generate): the module's indirect call site calls
    kcov.ko's __llvm_profile_instrument_target, and the profile holds the
    targets with their counts, named through the records' function pointers."""
    import subprocess

    r = sbcc_boot.report
    assert r["files_with_vp"] == ["kprofvp.profraw"]
    assert r["vp_workload"] == r["workload"]
    text = subprocess.run(["llvm-profdata-19", "show", "--all-functions", "--ic-targets",
                           str(sbcc_boot.out / "vp.profraw")], capture_output=True, text=True, check=True).stdout
    targets = {m.group(1): int(m.group(2)) for m in re.finditer(r"\[\s*0, (\w+),\s*(\d+) \]", text)}
    assert targets == {"kprofdemo_classify": 6, "kprofdemo_collatz": 3}, text
    assert "Instrumentation level: IR" in text


# --- PGO: the module rebuilt with the profile --------------------------------------


def test_pgo_module_is_optimised_not_instrumented(pgo_ko: Module, demo_ko: Module) -> None:
    info = _sections(pgo_ko.ko)
    names = {n for n, _s, _f in info["sections"]}  # type: ignore[union-attr]
    assert not any(n.startswith("__llvm_prf") or n.startswith("__llvm_cov") for n in names), names
    assert "kcovprof_register" not in info["symbols"]  # type: ignore[operator]
    # The profile was used: the never-run function went cold, the hot ones hot
    # (the instrumented build has them all in .text).
    syms = info["symbols"]
    section = {f: info["index"][syms[f][1]]  # type: ignore[index]
               for f in ("kprofdemo_unused", "kprofdemo_classify", "kprofdemo_collatz")}
    assert section == {"kprofdemo_unused": ".text.unlikely.", "kprofdemo_classify": ".text.hot.",
                       "kprofdemo_collatz": ".text.hot."}
    plain = _sections(demo_ko.ko)
    assert {plain["index"][plain["symbols"][f][1]] for f in section} == {".text"}  # type: ignore[index]


def test_pgo_module_in_guest(pgo_boot: Boot, sbcc_boot: Boot) -> None:
    r = pgo_boot.report
    failed = [s for s in r["steps"] if s["rc"] != 0]  # type: ignore[union-attr]
    assert not failed, failed
    assert r["files"] == []  # not instrumented: nothing to register
    assert r["workload"] == sbcc_boot.report["workload"]
    assert not dmesg_problems(pgo_boot.result.dmesg), dmesg_problems(pgo_boot.result.dmesg)
