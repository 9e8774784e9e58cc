"""Bad input: one precise message, a non-zero exit, no half-written file.

Python raises a ProfileError subclass whose message names the file and the
problem; `python -m kcov.profile` prints that message alone on one line and
exits with its sysexits code.  The runtime itself refuses to write a
profile whose layout it cannot vouch for, and says why on stderr.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from profhelp import DATA, KVDEV, env_with, kcov_build, need, need_clang, run

import kcov.profile as kp
from kcov.profile import raw


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different programs built for clang-19 (v10), and one for clang-14 (v8)."""
    need_clang("clang-19")
    d = tmp_path_factory.mktemp("badprogs")
    shutil.copy(KVDEV / "kvdev.c", d)
    shutil.copy(DATA / "kvdrive.c", d)
    (d / "other.c").write_text("int main(int c, char **v) { return c > 3; }\n")
    kcov_build("--sbcc", "clang-19", "-O1", "kvdev.c", "kvdrive.c", "-o", d / "kv19", cwd=d)
    kcov_build("--sbcc", "clang-19", "-O1", "other.c", "-o", d / "other19", cwd=d)
    out = {"kv19": d / "kv19", "other19": d / "other19", "dir": d}
    for name, args in (("kv19", ["put:a=1", "get:a"]), ("other19", [])):
        run([out[name], *args], env=env_with(LLVM_PROFILE_FILE=str(d / f"{name}.profraw")))
        out[f"{name}.profraw"] = d / f"{name}.profraw"
    if shutil.which("clang-14"):
        kcov_build("--sbcc", "clang-14", "-O1", "kvdev.c", "kvdrive.c", "-o", d / "kv14", cwd=d)
        run([d / "kv14", "count"], env=env_with(LLVM_PROFILE_FILE=str(d / "kv14.profraw")))
        out["kv14.profraw"] = d / "kv14.profraw"
    return out


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "kcov.profile", *args], check=False)


def assert_one_line(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def assert_nothing_written(d: Path, name: str) -> None:
    assert not (d / name).exists()
    assert not [p.name for p in d.iterdir() if p.name.startswith(f".{name}")], "a temporary file was left"


# --- Files -----------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [4, 40, -8, -100])
def test_truncated_profile(progs: dict[str, Path], tmp_path: Path, cut: int) -> None:
    data = progs["kv19.profraw"].read_bytes()
    bad = tmp_path / "cut.profraw"
    bad.write_bytes(data[:cut] if cut > 0 else data[:cut])
    with pytest.raises(kp.ProfileFormatError, match=r"cut\.profraw: truncated"):
        kp.merge([bad], tmp_path / "out.profdata")
    assert_nothing_written(tmp_path, "out.profdata")
    assert_one_line(cli("merge", "-o", tmp_path / "out.profdata", bad), 65, "cut.profraw: truncated")
    assert_nothing_written(tmp_path, "out.profdata")


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"hello, world, this is text\n", "not a raw LLVM profile: magic"),
    (b"\x7fELF" + bytes(60), "not a raw LLVM profile: magic"),
])
def test_foreign_files(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "foreign.profraw"
    bad.write_bytes(content)
    with pytest.raises(kp.ProfileFormatError, match=message):
        kp.merge([bad], tmp_path / "out.profdata")
    assert_one_line(cli("merge", "-o", tmp_path / "out.profdata", bad), 65, "foreign.profraw", message)
    assert_nothing_written(tmp_path, "out.profdata")


def test_trailing_garbage_and_missing_file(progs: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "tail.profraw"
    good = progs["kv19.profraw"].read_bytes()
    bad.write_bytes(good + b"garbage!" * 3)
    with pytest.raises(kp.ProfileFormatError, match=f"not a raw LLVM profile: magic .* at offset {len(good)}"):
        raw.read(bad)
    bad.write_bytes(good + b"\0\0\0\x01")
    with pytest.raises(kp.ProfileFormatError, match="neither zero padding nor a raw profile"):
        raw.read(bad)
    bad.write_bytes(good + bytes(16) + good)  # zero padding between two profiles is fine
    assert len(raw.read(bad)) == 2
    with pytest.raises(kp.InputNotFoundError, match="nope.profraw: no such file"):
        kp.merge([tmp_path / "nope.profraw"], tmp_path / "out.profdata")
    assert_one_line(cli("merge", "-o", tmp_path / "o.profdata", tmp_path / "nope.profraw"), 66, "no such file")


def test_unsupported_raw_version(progs: dict[str, Path], tmp_path: Path) -> None:
    """A raw v9 file (clang 18's format): named, with the LLVM that writes it."""
    data = bytearray(progs["kv19.profraw"].read_bytes())
    struct.pack_into("<Q", data, 8, 9)
    bad = tmp_path / "v9.profraw"
    bad.write_bytes(bytes(data))
    with pytest.raises(kp.ProfileVersionError, match=r"raw profile version 9 \(LLVM 18\)"):
        kp.merge([bad], tmp_path / "out.profdata")
    assert_one_line(cli("info", bad), 65, "version 9")


def test_version_mismatch_with_the_tool(progs: dict[str, Path], tmp_path: Path) -> None:
    need("llvm-profdata-19")
    if "kv14.profraw" not in progs:
        need("clang-14")
    v8 = progs["kv14.profraw"]
    with pytest.raises(kp.ProfileVersionError, match=r"llvm-profdata-19 cannot read raw profile version 8"):
        kp.merge([v8], tmp_path / "out.profdata", llvm_version=19)
    assert_one_line(cli("merge", "--llvm", "19", "-o", tmp_path / "out.profdata", v8), 65, "version 8")
    with pytest.raises(kp.ProfileVersionError, match="is raw profile version 10 .* version 8"):
        kp.merge([progs["kv19.profraw"], v8], tmp_path / "out.profdata")
    assert_nothing_written(tmp_path, "out.profdata")
    # The right tool is found without being named.
    assert kp.merge([v8], tmp_path / "ok.profdata").is_file()


def test_profiles_of_different_binaries(progs: dict[str, Path], tmp_path: Path) -> None:
    a, b = progs["kv19.profraw"], progs["other19.profraw"]
    with pytest.raises(kp.ProfileMismatchError, match="profiles of different binaries .*build ID"):
        kp.merge([a, b], tmp_path / "out.profdata")
    assert_one_line(cli("merge", "-o", tmp_path / "out.profdata", a, b), 65, "different binaries")
    assert_nothing_written(tmp_path, "out.profdata")
    assert kp.merge([a, b], tmp_path / "both.profdata", allow_mixed_binaries=True).is_file()
    # Runs of one program share an image even if one also loaded a library.
    run_with_plugin = tmp_path / "plugin.profraw"
    run_with_plugin.write_bytes(a.read_bytes() + b.read_bytes())
    assert kp.merge([a, run_with_plugin], tmp_path / "plugin.profdata").is_file()


def test_missing_llvm_tools(progs: dict[str, Path], tmp_path: Path) -> None:
    if shutil.which("llvm-profdata-15") or Path("/usr/lib/llvm-15/bin/llvm-profdata").exists():
        pytest.skip("llvm-15 is installed here")
    if "kv14.profraw" not in progs:
        need("clang-14")
    missing = r"llvm-profdata-15 is not installed \(Debian: apt-get install llvm-15\)"
    with pytest.raises(kp.ToolNotFoundError, match=missing):
        kp.merge([progs["kv14.profraw"]], tmp_path / "out.profdata", llvm_version=15)
    assert_one_line(cli("merge", "--llvm", "15", "-o", tmp_path / "out.profdata", progs["kv14.profraw"]), 69,
                    "llvm-profdata-15 is not installed")
    assert_one_line(cli("report", "--llvm", "23", "--profile", progs["kv19.profraw"], progs["kv19"]), 69,
                    "llvm-cov-23 is not installed")
    assert_nothing_written(tmp_path, "out.profdata")


def test_report_of_a_profile_of_another_binary(progs: dict[str, Path], tmp_path: Path) -> None:
    """llvm-cov itself only warns and reports zeros; kcov.profile refuses."""
    need("llvm-cov-19", "llvm-profdata-19")
    with pytest.raises(kp.ProfileMismatchError, match="holds no profile of .*kv19: the binary's build ID is"):
        kp.report(progs["kv19"], progs["other19.profraw"], output=tmp_path / "r.txt")
    pd = kp.merge([progs["other19.profraw"]], tmp_path / "other.profdata")
    with pytest.raises(kp.ProfileMismatchError, match="1 functions have mismatched data"):
        kp.report(progs["kv19"], pd, output=tmp_path / "r.txt")
    assert_nothing_written(tmp_path, "r.txt")
    assert_one_line(cli("report", "--profile", pd, progs["kv19"]), 65, "mismatched data")


def test_cli_usage_error() -> None:
    assert_one_line(cli("merge"), 64, "required")
    assert_one_line(cli("frobnicate"), 64, "invalid choice")


# --- The runtime refuses to write a wrong file ----------------------------------------------


def test_objects_of_another_clang_than_the_link(progs: dict[str, Path], tmp_path: Path) -> None:
    """clang-19 objects (raw v10) linked by kcov-build with clang-16 (which
    links the v8 object): the runtime says so and writes nothing."""
    need("clang-16")
    d = progs["dir"]
    kcov_build("--sbcc", "clang-19", "-O1", "-c", "kvdev.c", "-o", tmp_path / "kvdev.o", cwd=d)
    kcov_build("--sbcc", "clang-19", "-O1", "-c", "kvdrive.c", "-o", tmp_path / "kvdrive.o", cwd=d)
    kcov_build("--sbcc", "clang-16", tmp_path / "kvdev.o", tmp_path / "kvdrive.o", "-o", tmp_path / "mixed")
    out = tmp_path / "mixed.profraw"
    p = run([tmp_path / "mixed", "count"], env=env_with(LLVM_PROFILE_FILE=str(out)))
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("kcov profile")]
    assert lines and all("built by another clang" in ln for ln in lines), p.stderr
    assert "no profile written" in p.stderr and str(tmp_path / "mixed") in p.stderr
    assert not out.exists() or out.stat().st_size == 0
    # In-process, the same refusal is an exception.
    script = (f"import ctypes, kcov.profile as kp\nkp.write_at_exit(False)\n"
              f"ctypes.CDLL({str(tmp_path / 'libmixed.so')!r})\n"
              "m = kp.modules()[0]\nassert m.error and 'another clang' in m.error, m\n"
              "try:\n    kp.snapshot()\nexcept kp.ProfileRuntimeError as e:\n    print(e)\n")
    kcov_build("--sbcc", "clang-16", "-shared", tmp_path / "kvdev.o", "-o", tmp_path / "libmixed.so")
    got = run([sys.executable, "-c", script], env=env_with()).stdout
    assert "libmixed.so: no profile: the instrumented code was built by another clang" in got


def test_raw_version_the_runtime_does_not_write(tmp_path: Path) -> None:
    """Code whose compiler emits __llvm_profile_raw_version = 9 (clang 18)."""
    need_clang("clang-19")
    src = tmp_path / "v9.c"
    src.write_text("const unsigned long long __llvm_profile_raw_version = 9;\n"
                   "int main(void) { return 0; }\n")
    kcov_build("--sbcc", "clang-19", src, "-o", tmp_path / "v9")
    p = run([tmp_path / "v9"], env=env_with(LLVM_PROFILE_FILE=str(tmp_path / "v9.profraw")))
    assert "raw profile version this runtime does not write" in p.stderr, p.stderr
    assert not (tmp_path / "v9.profraw").exists() or (tmp_path / "v9.profraw").stat().st_size == 0


def test_merge_pool_refuses_a_foreign_file(progs: dict[str, Path], tmp_path: Path) -> None:
    """%m merges into an existing file only if it holds this image's profile."""
    pool = tmp_path / "pool"
    env = env_with(LLVM_PROFILE_FILE=f"{pool}/p-%m.profraw")
    run([progs["kv19"], "count"], env=env)
    (target,) = list(pool.iterdir())
    target.write_bytes(progs["other19.profraw"].read_bytes())
    before = target.read_bytes()
    p = run([progs["kv19"], "count"], env=env)
    assert "not merged" in p.stderr and "another binary" in p.stderr, p.stderr
    assert target.read_bytes() == before


# --- kcov-build ------------------------------------------------------------------------


def test_kcov_build_sbcc_refuses_gcc(tmp_path: Path) -> None:
    need("gcc-12")
    (tmp_path / "x.c").write_text("int main(void) { return 0; }\n")
    p = kcov_build("--sbcc", "gcc-12", "-c", tmp_path / "x.c", "-o", tmp_path / "x.o", check=False)
    assert p.returncode == 64 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "--sbcc needs clang" in p.stderr and not (tmp_path / "x.o").exists()
    p = kcov_build("--sbcc", "--compiler", "gcc-12", "--", "make", "-C", tmp_path, check=False)
    assert p.returncode == 64 and "--sbcc needs clang" in p.stderr


@pytest.mark.parametrize("version, ok", [((13, 0, 1), False), ((14, 0, 6), True), ((16, 0, 6), True),
                                         ((18, 1, 8), False), ((19, 1, 7), True), ((23, 0, 0), False)])
def test_kcov_build_sbcc_clang_versions(version: tuple[int, ...], ok: bool) -> None:
    from kcov_build.capability import capability_error
    from kcov_build.settings import Settings

    msg = capability_error(Settings(sbcc=True, sancov=False, family="clang", version=version), "clang-x")
    assert (msg is None) == ok, msg
    if not ok:
        assert msg is not None and "v8 for clang 14-17 and v10 for clang 19-22" in msg
