"""kcov-build --sbcc on a kbuild module build (make -C KDIR M=DIR): what it
adds to the make command line, judged with --dry-run against build
directories that hold only a .config (no kernel needed), and the two
generated link inputs, linked by the real ld.lld-19 with clang-19 objects."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kprof_host import VENV_BIN, kcov_build, need

CLANG_LLD = """CONFIG_CC_VERSION_TEXT="Debian clang version 19.1.7"
CONFIG_CC_IS_CLANG=y
CONFIG_CLANG_VERSION=190107
CONFIG_LD_IS_LLD=y
CONFIG_LLD_VERSION=190107
CONFIG_MODULES=y
"""


def _kdir(tmp_path: Path, config: str) -> Path:
    d = tmp_path / "kdir"
    d.mkdir()
    (d / ".config").write_text(config)
    return d


def _dry(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KCOV_BUILD_CACHE=str(tmp_path / "cache"),
               PATH=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
    return subprocess.run([*kcov_build(), *args], capture_output=True, text=True, env=env, check=False)


def _make_line(out: str) -> list[str]:
    return shlex.split([line for line in out.splitlines() if not line.startswith("#")][-1])


@pytest.fixture(autouse=True)
def _clang19() -> None:
    need(shutil.which("clang-19") is not None, "clang-19 is not installed")
    need(shutil.which("ld.lld-19") is not None, "ld.lld-19 is not installed (apt install lld-19)")


def test_sbcc_module_build_gets_link_script_and_lld(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path, CLANG_LLD)
    p = _dry(tmp_path, "--sbcc", "--dry-run", "--", "make", "-C", str(kdir), "M=/src/mod",
             "LDFLAGS_MODULE=--user-flag", "modules")
    assert p.returncode == 0, p.stderr
    cmd = _make_line(p.stdout)
    flags = next(a for a in cmd if a.startswith("LDFLAGS_MODULE=")).split("=", 1)[1].split()
    assert flags[0] == "--user-flag"  # the user's flags first, kept
    assert flags[1] == "-T" and flags[2].endswith("kcovprof-kmod.lds") and flags[3].endswith("kcovprof-kmod-dep.o")
    assert sum(a.startswith("LDFLAGS_MODULE=") for a in cmd) == 1
    assert "LD=ld.lld-19" in cmd  # no LLVM= given: kbuild would link with GNU ld
    lds = Path(flags[2]).read_text()
    assert "__kcovprof_raw_version = 10;" in lds  # clang-19 writes raw v10
    assert any(a.startswith("CC=") and a.endswith("/cc") for a in cmd)


def test_llvm_given_no_ld_added(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path, CLANG_LLD)
    p = _dry(tmp_path, "--sbcc", "--dry-run", "--", "make", "-C", str(kdir), "M=/src/mod", "LLVM=-19")
    assert p.returncode == 0, p.stderr
    cmd = _make_line(p.stdout)
    assert not any(a.startswith("LD=") for a in cmd)
    assert any(a.startswith("LDFLAGS_MODULE=-T ") for a in cmd)


def test_not_sbcc_or_not_a_module_build_unchanged(tmp_path: Path) -> None:
    kdir = _kdir(tmp_path, CLANG_LLD)
    p = _dry(tmp_path, "--mode", "pc", "--dry-run", "--", "make", "-C", str(kdir), "M=/src/mod")
    assert p.returncode == 0, p.stderr
    assert not any(a.startswith(("LDFLAGS_MODULE=", "LD=")) for a in _make_line(p.stdout))
    p = _dry(tmp_path, "--sbcc", "--compiler", "clang-19", "--dry-run", "--", "make", "-C", str(kdir))
    assert p.returncode == 0, p.stderr
    assert not any(a.startswith(("LDFLAGS_MODULE=", "LD=")) for a in _make_line(p.stdout))


@pytest.mark.parametrize("config,words", [
    (CLANG_LLD.replace("CONFIG_LD_IS_LLD=y\n", "CONFIG_LD_IS_BFD=y\n"), "ld.lld"),
    (CLANG_LLD.replace("CONFIG_MODULES=y\n", ""), "CONFIG_MODULES"),
])
def test_unusable_kernel_one_line_error(tmp_path: Path, config: str, words: str) -> None:
    kdir = _kdir(tmp_path, config)
    p = _dry(tmp_path, "--sbcc", "--dry-run", "--", "make", "-C", str(kdir), "M=/src/mod")
    assert p.returncode == 69, (p.returncode, p.stderr)
    assert p.stderr.count("\n") == 1 and words in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert p.stdout == ""


def test_link_inputs_with_lld(tmp_path: Path) -> None:
    """The script and the dependency object, in an `ld.lld -r` link of two
    instrumented objects as kbuild does it: one section each, bounded."""
    from elftools.elf.elffile import ELFFile

    from kcov_build import kmod_profile

    (tmp_path / "a.c").write_text("static inline int sq(int x) { return x * x; }\n"
                                  "int f(int x) { return x > 3 ? sq(x) : x; }\n")
    (tmp_path / "b.c").write_text("int g(int x) { int s = 0; while (x-- > 0) s += x; return s; }\n")
    flags = ["-O2", "-fprofile-instr-generate", "-fcoverage-mapping", "-mcmodel=kernel", "-fno-PIE", "-c"]
    for n in ("a", "b"):
        subprocess.run(["clang-19", *flags, str(tmp_path / f"{n}.c"), "-o", str(tmp_path / f"{n}.o")], check=True)
    (tmp_path / "k.lds").write_text(kmod_profile.linker_script(10))
    (tmp_path / "dep.s").write_text(kmod_profile.DEP_ASM)
    subprocess.run(["clang-19", "-c", str(tmp_path / "dep.s"), "-o", str(tmp_path / "dep.o")], check=True)
    # Without the script, ld -r leaves one section per function (COMDAT groups).
    subprocess.run(["ld.lld-19", "-r", str(tmp_path / "a.o"), str(tmp_path / "b.o"), "-o",
                    str(tmp_path / "plain.o")], check=True)
    subprocess.run(["ld.lld-19", "-r", "-T", str(tmp_path / "k.lds"), str(tmp_path / "dep.o"),
                    str(tmp_path / "a.o"), str(tmp_path / "b.o"), "-o", str(tmp_path / "m.ko")], check=True)

    def count(path: Path, name: str) -> int:
        with path.open("rb") as f:
            return sum(s.name == name for s in ELFFile(f).iter_sections())

    assert count(tmp_path / "plain.o", "__llvm_prf_cnts") == 3
    assert count(tmp_path / "m.ko", "__llvm_prf_cnts") == 1
    with (tmp_path / "m.ko").open("rb") as f:
        elf = ELFFile(f)
        data = elf.get_section_by_name("__llvm_prf_data")
        syms = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols()}
        assert syms["__kcovprof_data_end"]["st_value"] - syms["__kcovprof_data_begin"]["st_value"] \
            == data["sh_size"] == 3 * 64
        assert syms["kcovprof_register"]["st_shndx"] == "SHN_UNDEF"
        assert syms["__kcovprof_raw_version"]["st_value"] == 10
