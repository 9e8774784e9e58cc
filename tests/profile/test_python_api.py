"""kcov.profile in-process: modules, snapshot, reset, write, reports, sancov.

The instrumented libraries are built with kcov-build --sbcc (clang-19) and
loaded into this process with ctypes, as a test suite of a C library would.
Writing at exit is switched off first, so the test process leaves no
default.profraw behind.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from profhelp import DATA, KVDEV, env_with, kcov_build, need, need_clang, run

import kcov.profile as kp
from kcov.profile import raw

PUT, GET, DEL = 0x40046B01, 0x80046B02, 0x40046B03


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need_clang("clang-19")
    kp.write_at_exit(False)
    d = tmp_path_factory.mktemp("sbcc-libs")
    shutil.copy(KVDEV / "kvdev.c", d)
    shutil.copy(DATA / "spin.c", d)
    kcov_build("--sbcc", "clang-19", "-O1", "-g", "-fPIC", "-shared", "kvdev.c", "-o", d / "libkvdev.so", cwd=d)
    kcov_build("--sbcc", "clang-19", "-O1", "-g", "-fPIC", "-shared", "-pthread", "spin.c", "-o", d / "libspin.so",
               cwd=d)
    return {"kvdev": d / "libkvdev.so", "spin": d / "libspin.so"}


@pytest.fixture(scope="module")
def kvdev(libs: dict[str, Path]) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(libs["kvdev"]))
    lib.kvdev_ioctl.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)]
    lib.kvdev_ioctl.restype = ctypes.c_int
    return lib


def _ioctl(lib: ctypes.CDLL, cmd: int, key: bytes | None, val: int = 0) -> int:
    v = ctypes.c_uint32(val)
    return int(lib.kvdev_ioctl(cmd, key, ctypes.byref(v)))


def _function_counts(profile: Path) -> dict[str, int]:
    text = kp.show(profile)
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^  (\S+):\n(?:    .*\n)*?    Function count: (\d+)", text, re.M)}


def _build_id(path: Path) -> str:
    out = run(["readelf", "-n", path]).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)  # type: ignore[union-attr]


def test_modules_describe_the_loaded_image(kvdev: ctypes.CDLL, libs: dict[str, Path]) -> None:
    mods = {m.name: m for m in kp.modules()}
    m = mods[str(libs["kvdev"].resolve())]
    assert (m.version, m.error) == (10, None)
    assert m.functions == 6 and m.counters > m.functions  # kvdev.c defines 6 functions
    assert m.build_id == _build_id(libs["kvdev"])
    assert kp.snapshot(m)[:8] == struct.pack("<Q", raw.RAW_MAGIC64)


def test_snapshot_reset_and_write_per_test(kvdev: ctypes.CDLL, libs: dict[str, Path], tmp_path: Path) -> None:
    """One profile per test: reset, run, write; the counts are that test's."""
    mod = str(libs["kvdev"])
    kp.reset()
    assert _ioctl(kvdev, PUT, b"alpha", 1) == 0
    assert _ioctl(kvdev, GET, b"alpha") == 0
    first = kp.write(tmp_path / "put_get.profraw", mod)
    kp.reset(mod)
    assert _ioctl(kvdev, DEL, b"alpha") == 0
    assert _ioctl(kvdev, DEL, b"alpha") < 0
    second = kp.write(tmp_path / "del.profraw", mod)

    a, b = _function_counts(first), _function_counts(second)
    assert a["kvdev_ioctl"] == 2 and a["kvdev.c:kv_put"] == 1 and a["kvdev.c:kv_del"] == 0
    assert b["kvdev_ioctl"] == 2 and b["kvdev.c:kv_put"] == 0 and b["kvdev.c:kv_del"] == 2
    kp.reset()
    zero = raw.parse(kp.snapshot(mod))[0]
    assert zero.num_counters == raw.parse(first.read_bytes())[0].num_counters
    assert set(_function_counts(kp.write(tmp_path / "zero.profraw", mod)).values()) == {0}


def test_reports_from_in_process_profiles(kvdev: ctypes.CDLL, libs: dict[str, Path], tmp_path: Path) -> None:
    kp.reset()
    _ioctl(kvdev, PUT, b"beta", 2)
    prof = kp.write(tmp_path / "t.profraw", str(libs["kvdev"]))
    pd = kp.merge([prof], tmp_path / "t.profdata")
    table = kp.report(libs["kvdev"], pd, output=tmp_path / "report.txt")
    assert (tmp_path / "report.txt").read_text() == table
    assert re.search(r"kvdev\.c\s+\d+", table) and table.splitlines()[-1].startswith("TOTAL")
    lcov = kp.report(libs["kvdev"], prof, format="lcov")  # a raw profile is merged on the fly
    assert "SF:" in lcov and "FNDA:1,kvdev.c:kv_put" in lcov and "FNDA:0,kvdev.c:kv_del" in lcov
    shown = kp.report(libs["kvdev"], pd, format="text")
    assert "kv_put" in shown and "|" in shown
    assert '"type":"llvm.coverage.json.export"' in kp.report(libs["kvdev"], pd, format="json").replace(" ", "")
    index = Path(kp.report(libs["kvdev"], pd, format="html", output=tmp_path / "html"))
    assert index.is_file() and "kvdev.c" in index.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_snapshots_while_instrumented_threads_run(libs: dict[str, Path]) -> None:
    """A thread keeps running instrumented code; every snapshot is a valid
    profile with the same header, and no counter ever goes backwards."""
    spin = ctypes.CDLL(str(libs["spin"]))
    mod = str(libs["spin"])
    kp.reset(mod)
    assert spin.spin_start() == 0
    try:
        snaps = []
        t0 = time.monotonic()
        while len(snaps) < 200 or time.monotonic() - t0 < 0.5:
            snaps.append(kp.snapshot(mod))
    finally:
        assert spin.spin_stop() == 0
    p0 = raw.parse(snaps[0])[0]
    start = p0.size - 8 * p0.num_counters - (p0.names_size + (-p0.names_size) % 8)
    prev = None
    for s in snaps:
        p = raw.parse(s)[0]
        assert (p.num_data, p.num_counters, p.names_size, p.binary_ids) == (
            p0.num_data, p0.num_counters, p0.names_size, p0.binary_ids)
        assert s[:start] == snaps[0][:start]  # header, binary ID and data records
        counters = struct.unpack_from(f"<{p.num_counters}Q", s, start)
        if prev is not None:
            assert all(c >= q for c, q in zip(counters, prev)), "a counter went backwards"
        prev = counters
    assert max(prev or (0,)) > 1000  # the thread really ran


def test_sancov_files_of_kcov_pcs(tmp_path: Path) -> None:
    """.sancov of trace-pc PCs: sancov -print lists module-relative
    previous-instruction PCs, each right before the return address of a
    __sanitizer_cov_trace_pc call in the binary."""
    need("clang-19", "sancov-19", "objdump")
    import kcov

    shutil.copy(KVDEV / "kvdev.c", tmp_path)
    lib_path = tmp_path / "libkvtrace.so"
    kcov_build("--mode", "pc", "clang-19", "-O1", "-fPIC", "-shared", "kvdev.c", "-o", lib_path, cwd=tmp_path)
    lib = ctypes.CDLL(str(lib_path))
    lib.kvdev_ioctl.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)]
    with kcov.open(provider="hosted") as k:
        with k.trace(kcov.Mode.PC):
            _ioctl(lib, PUT, b"gamma", 3)
        pcs = k.pcs().copy()
    files = kp.write_sancov(pcs, tmp_path / "cov", pid=4242)
    assert [f.name for f in files] == ["libkvtrace.so.4242.sancov"]
    data = files[0].read_bytes()
    assert struct.unpack_from("<Q", data)[0] == 0xC0BFFFFFFFFFFF64
    printed = {int(x, 16) for x in run(["sancov-19", "-print", files[0]]).stdout.split()}
    base = kp.image_of(int(pcs[0]))[1]  # type: ignore[index]
    assert printed == {int(pc) - base - 1 for pc in pcs}
    calls = set()
    lines = run(["objdump", "-d", "--no-show-raw-insn", lib_path]).stdout.splitlines()
    for cur, nxt in zip(lines, lines[1:]):
        if re.search(r"call.*<__sanitizer_cov_trace_pc", cur):
            calls.add(int(nxt.split(":")[0], 16))
    assert printed and {p + 1 for p in printed} <= calls


# --- Files written at exit ---------------------------------------------------------


@pytest.fixture(scope="module")
def kvprog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kvdev.c and kvdrive.c in one instrumented executable."""
    need_clang("clang-19")
    d = tmp_path_factory.mktemp("kvprog")
    shutil.copy(KVDEV / "kvdev.c", d)
    shutil.copy(DATA / "kvdrive.c", d)
    kcov_build("--sbcc", "clang-19", "-O1", "kvdev.c", "kvdrive.c", "-o", d / "kvprog", cwd=d)
    return d / "kvprog"


def test_llvm_profile_file_patterns(kvprog: Path, tmp_path: Path) -> None:
    host = os.uname().nodename
    p = subprocess.Popen([kvprog, "count"], env=env_with(LLVM_PROFILE_FILE=f"{tmp_path}/a/%p-%h.profraw"),
                         stdout=subprocess.DEVNULL)
    assert p.wait() == 0
    assert (tmp_path / "a" / f"{p.pid}-{host}.profraw").is_file()  # the directory is created too
    (tmp_path / "tmp").mkdir()
    run([kvprog, "count"], env=env_with(LLVM_PROFILE_FILE="%tt.profraw", TMPDIR=str(tmp_path / "tmp")))
    assert (tmp_path / "tmp" / "t.profraw").is_file()
    run([kvprog, "count"], env=env_with(), cwd=tmp_path)
    assert raw.read(tmp_path / "default.profraw")[0].num_data == 8  # 6 in kvdev.c, 2 in kvdrive.c


def test_each_run_truncates_unless_merging(kvprog: Path, tmp_path: Path) -> None:
    env = env_with(LLVM_PROFILE_FILE=str(tmp_path / "x.profraw"))
    for _ in range(3):
        run([kvprog, "put:a=1"], env=env)
    assert len(raw.read(tmp_path / "x.profraw")) == 1
    assert _function_counts(tmp_path / "x.profraw")["main"] == 1
    env = env_with(LLVM_PROFILE_FILE=str(tmp_path / "m-%2m.profraw"))
    for _ in range(4):
        run([kvprog, "put:a=1"], env=env)
    pools = sorted(tmp_path.glob("m-*.profraw"))
    assert 1 <= len(pools) <= 2 and all(re.fullmatch(r"m-\d+_[01]\.profraw", p.name) for p in pools)
    assert sum(_function_counts(p)["main"] for p in pools) == 4


def test_compile_time_filename_and_api_precedence(tmp_path: Path) -> None:
    """-fprofile-instr-generate=PATH names the file when LLVM_PROFILE_FILE is
    unset; __llvm_profile_set_filename (our runtime API) wins over both."""
    need_clang("clang-19")
    src = tmp_path / "p.c"
    src.write_text(
        "void __llvm_profile_set_filename(const char *);\n"
        "int main(int c, char **v) { if (c > 1) __llvm_profile_set_filename(v[1]); return 0; }\n")
    kcov_build("--sbcc", "clang-19", f"-fprofile-instr-generate={tmp_path}/compiled.profraw", src,
               "-o", tmp_path / "p")
    run([tmp_path / "p"], env=env_with())
    assert (tmp_path / "compiled.profraw").is_file()
    run([tmp_path / "p"], env=env_with(LLVM_PROFILE_FILE=str(tmp_path / "env.profraw")))
    assert (tmp_path / "env.profraw").is_file()
    run([tmp_path / "p", str(tmp_path / "api.profraw")], env=env_with(LLVM_PROFILE_FILE=str(tmp_path / "e2.profraw")))
    assert (tmp_path / "api.profraw").is_file()
    # Like compiler-rt, the file of the start-up pattern is created (truncated) once, and stays empty.
    assert (tmp_path / "e2.profraw").stat().st_size == 0


def test_dlclose_writes_the_image_profile(libs: dict[str, Path], tmp_path: Path) -> None:
    """An image writes its profile when it goes away, also by dlclose()."""
    out = tmp_path / "dl.profraw"
    script = (
        "import ctypes, _ctypes, os, sys\n"
        f"lib = ctypes.CDLL({str(libs['kvdev'])!r})\n"
        "v = ctypes.c_uint32(5)\n"
        "lib.kvdev_ioctl(0x40046B01, b'k', ctypes.byref(v))\n"
        f"assert os.path.getsize({str(out)!r}) == 0\n"  # created empty at start, like compiler-rt
        "_ctypes.dlclose(lib._handle)\n"
        f"sys.exit(0 if os.path.getsize({str(out)!r}) > 0 else 3)\n"
    )
    run([sys.executable, "-c", script], env=env_with(LLVM_PROFILE_FILE=str(out)))
    assert _function_counts(out)["kvdev.c:kv_put"] == 1


def test_python_write_files_and_set_filename(libs: dict[str, Path], tmp_path: Path) -> None:
    script = (
        "import ctypes, kcov.profile as kp\n"
        f"lib = ctypes.CDLL({str(libs['kvdev'])!r})\n"
        f"kp.set_filename({str(tmp_path / 'api-%p.profraw')!r})\n"
        "print(kp.filename())\n"
        "kp.write_files()\n"
    )
    p = run([sys.executable, "-c", script], env=env_with(LLVM_PROFILE_FILE=str(tmp_path / "env.profraw")))
    written = Path(p.stdout.strip())
    assert written.parent == tmp_path and re.fullmatch(r"api-\d+\.profraw", written.name)
    assert written.is_file() and (tmp_path / "env.profraw").stat().st_size == 0
    assert len(raw.read(written)) == 2  # write_files() now, and the image at exit, appended


def test_thread_safety_of_snapshot_and_reset(kvdev: ctypes.CDLL, libs: dict[str, Path]) -> None:
    """Snapshots, resets and module listing from several Python threads."""
    errors: list[BaseException] = []
    mod = str(libs["kvdev"])

    def worker() -> None:
        try:
            for _ in range(100):
                raw.parse(kp.snapshot(mod))
                kp.reset(mod)
                kp.modules()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_reset_clears_mcdc_bitmaps(tmp_path: Path) -> None:
    """reset() zeroes the MC/DC bitmaps (clang-19 -fcoverage-mcdc) with the counters."""
    need_clang("clang-19")
    shutil.copy(KVDEV / "kvdev.c", tmp_path)
    lib_path = tmp_path / "libkvmcdc.so"
    kcov_build("--sbcc", "clang-19", "-O1", "-fcoverage-mcdc", "-fPIC", "-shared", "kvdev.c", "-o", lib_path,
               cwd=tmp_path)
    kp.write_at_exit(False)
    lib = ctypes.CDLL(str(lib_path))
    lib.kvdev_ioctl.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)]

    def bitmap() -> bytes:
        data = kp.snapshot(str(lib_path))
        names = raw._header_fields(10)
        h = dict(zip(names, struct.unpack_from(f"<{len(names)}Q", data)))
        p = raw.parse(data)[0]
        start = 8 * len(names) + h["BinaryIdsSize"] + 64 * p.num_data + 8 * p.num_counters + h[
            "PaddingBytesAfterCounters"]
        return data[start:start + p.num_bitmap_bytes]

    kp.reset(str(lib_path))
    assert bitmap() and not any(bitmap())
    _ioctl(lib, PUT, b"delta", 4)
    assert any(bitmap())
    kp.reset(str(lib_path))
    assert not any(bitmap())
