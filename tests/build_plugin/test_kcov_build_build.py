"""Real builds with every available compiler: compile, link, both, -shared."""
from __future__ import annotations

import ctypes
import shutil
from pathlib import Path

import pytest

from tests.support.prereq import own

from buildhelp import DATA, elf_dynamic, elf_symbols, kcov_build, run

from kcov_build import runtime_paths

P = runtime_paths()
CMP_CALLBACKS = ("__sanitizer_cov_trace_const_cmp4", "__sanitizer_cov_trace_cmp4")


def undefined(path: Path) -> set[str]:
    return {s.name for s in elf_symbols(path)[1].values() if not s.defined}


def defined(path: Path) -> set[str]:
    return {s.name for s in elf_symbols(path)[1].values() if s.defined}


def assert_linked_to_shared_runtime(path: Path) -> None:
    needed, paths = elf_dynamic(path)
    assert "libkcovrt.so" in needed, needed
    assert str(P.lib_dir) in paths, paths
    # The callbacks must come from the one shared runtime, never from a copy
    # inside the module (clang's ubsan_standalone would bring weak no-ops).
    assert not {n for n in defined(path) if n.startswith("__sanitizer_cov_trace")}
    assert "__sanitizer_cov_trace_pc" in undefined(path)


def test_compile_only(cc: str, tmp_path: Path) -> None:
    obj = tmp_path / "hello.o"
    kcov_build(cc, "-O2", "-c", DATA / "hello.c", "-o", obj)
    und = undefined(obj)
    assert "__sanitizer_cov_trace_pc" in und
    # hello_branch compares n with 2: a constant 4-byte compare
    assert "__sanitizer_cov_trace_const_cmp4" in und, sorted(und)

    pc_only = tmp_path / "hello-pc.o"
    kcov_build("--mode", "pc", cc, "-O2", "-c", DATA / "hello.c", "-o", pc_only)
    und = undefined(pc_only)
    assert "__sanitizer_cov_trace_pc" in und
    assert not und & set(CMP_CALLBACKS)


def test_link_only(cc: str, tmp_path: Path) -> None:
    obj = tmp_path / "hello.o"
    kcov_build(cc, "-c", DATA / "hello.c", "-o", obj)
    exe = tmp_path / "hello"
    kcov_build(cc, obj, "-o", exe)
    assert_linked_to_shared_runtime(exe)
    p = run([exe, "a"], check=False)
    assert (p.returncode, p.stdout) == (42, "hello 42\n")


def test_compile_and_link(cc: str, tmp_path: Path) -> None:
    exe = tmp_path / "hello"
    kcov_build(cc, "-O1", DATA / "hello.c", "-o", exe)
    assert_linked_to_shared_runtime(exe)
    assert set(CMP_CALLBACKS) & undefined(exe)
    p = run([exe, "a", "b"], check=False)
    assert (p.returncode, p.stdout) == (43, "hello 6\n")


def test_uninstrumented_objects_link_too(cc: str, tmp_path: Path) -> None:
    """Linking plain objects still records DT_NEEDED (--no-as-needed)."""
    obj = tmp_path / "plain.o"
    run([cc, "-c", DATA / "hello.c", "-o", obj])
    exe = tmp_path / "plain"
    kcov_build(cc, obj, "-o", exe)
    assert "libkcovrt.so" in elf_dynamic(exe)[0]
    assert run([exe], check=False).returncode == 41


def pc_target(n: int) -> int:
    """pc_target.c, in Python."""
    acc = 0
    for i in range(n):
        acc = acc + i if i % 3 == 0 else acc ^ (i << 1)
    return acc - 100 if acc > 100 else acc


def test_shared_library(cc: str, tmp_path: Path) -> None:
    lib = tmp_path / "libtarget.so"
    kcov_build(cc, "-O2", "-fPIC", "-shared", DATA / "pc_target.c", "-o", lib)
    assert_linked_to_shared_runtime(lib)
    import kcov._core  # noqa: F401  (the runtime instance the DSO must share)

    dll = ctypes.CDLL(str(lib))
    dll.pc_target.argtypes = [ctypes.c_int]
    for n in (0, 5, 40):
        assert dll.pc_target(n) == pc_target(n)


def test_static_runtime(cc: str, tmp_path: Path) -> None:
    exe = tmp_path / "hello-static"
    kcov_build("--static-runtime", cc, DATA / "hello.c", "-o", exe)
    assert "libkcovrt.so" not in elf_dynamic(exe)[0]
    assert "__sanitizer_cov_trace_pc" in defined(exe)
    assert run([exe], check=False).returncode == 41


@pytest.mark.parametrize("mode", ["pc", "pc,cmp"])
def test_dry_run_matches_what_runs(cc: str, mode: str, tmp_path: Path) -> None:
    """The printed command, run by hand, builds the same program."""
    import shlex

    exe = tmp_path / "by-hand"
    line = kcov_build("--mode", mode, "--dry-run", cc, DATA / "hello.c", "-o", exe).stdout
    run(shlex.split(line))
    assert_linked_to_shared_runtime(exe)
    assert run([exe], check=False).returncode == 41


@pytest.mark.parametrize(
    ("abi", "header", "macro", "value"),
    [
        ("freebsd", "sys/kcov.h", "KIOENABLE", 0x20046302),
        ("netbsd", "sys/kcov.h", "KCOV_IOC_ENABLE", 0x80044B02),
        ("openbsd", "sys/kcov.h", "KIOENABLE", 0x80044B02),
        ("linux", "linux/kcov.h", "KCOV_ENABLE", 0x6364),
    ],
)
def test_abi_compat_headers(abi: str, header: str, macro: str, value: int, tmp_path: Path) -> None:
    """--abi puts that OS's kcov header first on the include path."""
    own((P.compat_dir / abi / header).is_file(), f"compat header {abi}/{header} is not installed")
    src = tmp_path / "abi.c"
    src.write_text(
        "#include <sys/ioctl.h>\n"
        f"#include <{header}>\n"
        f"_Static_assert({macro} == {value:#x}UL, \"{macro}\");\n"
        "int abi_probe(int x) { return x > 1; }\n"
    )
    cc = "clang-19" if shutil.which("clang-19") else "gcc-12"
    if shutil.which(cc) is None:
        pytest.skip("no compiler")
    kcov_build("--abi", abi, cc, "-c", src, "-o", tmp_path / "abi.o")
    # Without --abi a BSD header does not exist on Linux at all.
    if header.startswith("sys/"):
        assert kcov_build(cc, "-c", src, "-o", tmp_path / "no.o", check=False).returncode != 0
