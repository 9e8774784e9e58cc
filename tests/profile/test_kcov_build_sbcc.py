"""kcov-build --sbcc: what it injects, and that compiler-rt stays out.

A compile gets -fprofile-instr-generate -fcoverage-mapping; a link gets the
runtime's per-image object for the clang's raw version and libkcovrt.  A
call that compiles *and* links carries -fprofile-instr-generate to the
link, where clang's driver adds libclang_rt.profile.a: the per-image object
defines __llvm_profile_runtime, so nothing is pulled from that archive.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from profhelp import CLANGS, KVDEV, OUR_IMAGE_SYMBOLS, env_with, kcov_build, need, need_clang, run

from kcov.profile import raw

COMPILER_RT = re.compile(r"\b(lprof\w+|__llvm_profile_\w+|__llvm_write_binary_ids)\b")
# Ours: the per-image object's hook, and compiler-rt's public API in libkcovrt.
OURS = OUR_IMAGE_SYMBOLS | {"__llvm_profile_write_file", "__llvm_profile_dump", "__llvm_profile_reset_counters",
                           "__llvm_profile_set_filename"}


def _compiler_rt(syms: str) -> list[str]:
    return sorted(set(COMPILER_RT.findall(syms)) - OURS)


def _defined(path: Path) -> str:
    return run(["nm", "--defined-only", path]).stdout


@pytest.mark.parametrize("cc", list(CLANGS))
def test_compile_and_link_in_one_call(cc: str, tmp_path: Path) -> None:
    need_clang(cc)
    need("nm", "readelf")
    shutil.copy(KVDEV / "kvdev.c", tmp_path)
    (tmp_path / "main.c").write_text(
        "#include <stdint.h>\nint kvdev_ioctl(unsigned, const char *, uint32_t *);\n"
        "int main(void) { uint32_t v = 1; return kvdev_ioctl(0x40046b01u, \"k\", &v) != 0; }\n")
    dry = kcov_build("--sbcc", "--dry-run", cc, "-O1", "main.c", "kvdev.c", "-o", "prog", cwd=tmp_path).stdout
    assert "-fprofile-instr-generate -fcoverage-mapping" in dry and "-fsanitize-coverage" not in dry
    assert f"kcovprof-module-v{10 if CLANGS[cc] >= 19 else 8}.o" in dry
    kcov_build("--sbcc", cc, "-O1", "main.c", "kvdev.c", "-o", "prog", cwd=tmp_path)
    syms = _defined(tmp_path / "prog")
    assert not _compiler_rt(syms), _compiler_rt(syms)[:8]
    assert "__llvm_profile_runtime" in syms and "__start___llvm_prf_cnts" in syms
    assert "libkcovrt.so" in run(["readelf", "-d", tmp_path / "prog"]).stdout
    run([tmp_path / "prog"], env=env_with(), cwd=tmp_path)
    (p,) = raw.read(tmp_path / "default.profraw")
    assert p.num_data == 7 and p.version == (10 if CLANGS[cc] >= 19 else 8)


def test_static_runtime_and_both_instrumentations(tmp_path: Path) -> None:
    need_clang("clang-19")
    shutil.copy(KVDEV / "kvdev.c", tmp_path)
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    kcov_build("--sbcc", "--mode", "pc", "--runtime", "static", "clang-19", "-O1", "main.c", "kvdev.c",
               "-o", "prog", cwd=tmp_path)
    dyn = run(["readelf", "-d", tmp_path / "prog"]).stdout
    assert "libkcovrt" not in dyn  # a private runtime instance
    syms = _defined(tmp_path / "prog")
    assert "kcovprof_register" in syms and "__sanitizer_cov_trace_pc" in syms
    assert not _compiler_rt(syms), _compiler_rt(syms)[:8]
    run([tmp_path / "prog"], env=env_with(LLVM_PROFILE_FILE=str(tmp_path / "s.profraw")))
    assert raw.read(tmp_path / "s.profraw")[0].num_data == 7


def test_uninstrumented_images_write_nothing(tmp_path: Path) -> None:
    """kcov-build links the per-image object into every link of a build,
    also of programs that are not instrumented (configure checks...)."""
    need_clang("clang-19")
    (tmp_path / "plain.c").write_text("int main(void) { return 0; }\n")
    run(["clang-19", "-c", tmp_path / "plain.c", "-o", tmp_path / "plain.o"])
    kcov_build("--sbcc", "clang-19", tmp_path / "plain.o", "-o", tmp_path / "plain")
    p = run([tmp_path / "plain"], env=env_with(), cwd=tmp_path)
    assert p.stderr == "" and not (tmp_path / "default.profraw").exists()


def test_queries(tmp_path: Path) -> None:
    cflags = kcov_build("--sbcc", "--cflags").stdout.split()
    assert cflags[:2] == ["-fprofile-instr-generate", "-fcoverage-mapping"]
    ldflags = kcov_build("--sbcc", "--ldflags").stdout.split()
    assert ldflags[0].endswith("kcovprof-module.o") and Path(ldflags[0]).is_file() and "-lkcovrt" in ldflags
    both = kcov_build("--sbcc", "--mode", "cmp", "--cflags").stdout
    assert "-fsanitize-coverage=trace-pc,trace-cmp" in both and "-fprofile-instr-generate" in both
    assert "-fprofile-instr-generate" not in kcov_build("--cflags").stdout


def test_profile_config_key(tmp_path: Path) -> None:
    conf = tmp_path / "p.toml"
    conf.write_text("[kcov-build]\nsbcc = true\n")
    assert "-fcoverage-mapping" in kcov_build("--config", conf, "--cflags").stdout


@pytest.mark.parametrize("cc", ["clang-14", "clang-19"])
def test_query_flags_link_the_version_agnostic_object(cc: str, tmp_path: Path) -> None:
    """`--ldflags` cannot know the compiler: its per-image object decides the
    layout from the data section alone, and must find the compiler's."""
    llvm = need_clang(cc)
    shutil.copy(KVDEV / "kvdev.c", tmp_path)
    (tmp_path / "main.c").write_text(
        "#include <stdint.h>\nint kvdev_ioctl(unsigned, const char *, uint32_t *);\n"
        "int main(void) { uint32_t v = 1; return kvdev_ioctl(0x80046b04u, 0, &v); }\n")
    cflags = kcov_build("--sbcc", "--cflags").stdout.split()
    ldflags = kcov_build("--sbcc", "--ldflags").stdout.split()
    assert ldflags[0].endswith("/kcovprof-module.o")
    run([cc, "-O1", *cflags, "-c", "kvdev.c", "main.c"], cwd=tmp_path)
    run([cc, "kvdev.o", "main.o", *ldflags, "-o", "prog"], cwd=tmp_path)
    out = tmp_path / "q.profraw"
    p = run([tmp_path / "prog"], env=env_with(LLVM_PROFILE_FILE=str(out)))
    assert p.stderr == ""
    assert raw.read(out)[0].version == (10 if llvm >= 19 else 8)
    shown = run([f"llvm-profdata-{llvm}", "show", "--all-functions", "--counts", out]).stdout
    assert "kvdev_ioctl:" in shown and "Function count: 1" in shown
