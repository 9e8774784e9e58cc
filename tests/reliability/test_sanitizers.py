"""The hosted runtime under ASan+UBSan and under TSan (issue 7, point 2).

For each sanitizer the runtime's sources (the list of CMakeLists.txt's
KCOV_RT_SOURCES) are compiled with it but without coverage, as the real
build compiles them; the code they trace (tests/runtime/data/kern_target.c
and data/rec.c) gets ``-fsanitize-coverage=trace-pc,trace-cmp`` as well.
Everything is linked into one executable: a sanitizer runtime has to come
first in the link map, so kcov-run's LD_PRELOAD interposer cannot be used,
and data/kcov_shim.h routes the C clients' open/ioctl/mmap/close to the
kcovrt_* API at compile time instead.

Runs, each with halt_on_error=1 and its exit status checked:

* every case of the four C contract clients of tests/runtime/data
  (FreeBSD's 13 tests/sys/kern/kcov.c cases, Linux, NetBSD, OpenBSD in
  both modes);
* data/stress.c: 32 threads, STRESS_CYCLES thread lives of enable / record
  / disable / close from another thread / thread exit.

Any sanitizer report fails the test; the selftest shows that a report
would be seen.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from fuzzhelp import CC, DATA, scaled

from tests.support.prereq import need_tool

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime"
CLIENTS = REPO / "tests" / "runtime" / "data"
RT_SOURCES = ["engine.c", "abi_freebsd.c", "abi_linux.c", "abi_netbsd.c", "abi_openbsd.c",
              "callbacks.c", "hosted/device.c"]
# KCOV_FUZZ_EXAMPLES scales it as it scales the fuzzers (make check: a quarter).
STRESS_CYCLES = int(os.environ.get("KCOV_STRESS_CYCLES", scaled(10000)))
REPORT = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                    r"runtime error:|WARNING: ThreadSanitizer|"
                    r"ERROR: ThreadSanitizer|SUMMARY: \w+Sanitizer")
COVERAGE = ["-fsanitize-coverage=trace-pc,trace-cmp"]
NO_COVERAGE = ["-fno-sanitize-coverage=trace-pc,trace-cmp"]
CFLAGS = ["-std=gnu11", "-O1", "-g", "-fno-omit-frame-pointer", "-pthread",
          "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror"]

SANITIZERS = {
    "asan-ubsan": ["-fsanitize=address,undefined",
                   "-fno-sanitize-recover=undefined"],
    "tsan": ["-fsanitize=thread"],
}
ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    "TSAN_OPTIONS": "halt_on_error=1:exitcode=66:second_deadlock_stack=1",
}


@dataclass(frozen=True)
class Build:
    name: str
    dir: Path

    def exe(self, name: str) -> Path:
        return self.dir / name


def _cc(args: list[str]) -> None:
    cmd = ["nice", "-n", "10", CC, *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)}\n{r.stderr}")


def build(name: str, out: Path) -> Build:
    """The runtime, the instrumented targets, the clients and the stress
    program, all with one sanitizer."""
    import kcov

    san = SANITIZERS[name]
    inc = Path(kcov.get_include())
    rt = []
    for src in RT_SOURCES:
        obj = out / (Path(src).stem + ".o")
        _cc([*CFLAGS, "-fPIC", *san, *NO_COVERAGE, f"-I{RUNTIME}",
             f"-I{RUNTIME / 'hosted'}", f"-I{RUNTIME / 'include'}", "-c",
             str(RUNTIME / src), "-o", str(obj)])
        rt.append(str(obj))
    targets = {"kern": CLIENTS / "kern_target.c", "rec": DATA / "rec.c"}
    # The traced "kernel" stores to a shared sink from every thread, a race
    # of the fixture, not of the runtime: TSan checks the runtime only.
    tsan_free = [] if name == "tsan" else san
    for stem, src in targets.items():
        _cc([*CFLAGS, *tsan_free, *COVERAGE, f"-I{inc}", "-c", str(src),
             "-o", str(out / f"{stem}.o")])
    for os_name in ("freebsd", "linux", "netbsd", "openbsd"):
        obj = out / f"{os_name}_client.o"
        _cc([*CFLAGS, "-Wno-error", *san, f"-I{inc}",
             f"-I{inc / 'kcov' / 'compat' / os_name}", f"-I{CLIENTS}",
             "-include", str(DATA / "kcov_shim.h"), "-c",
             str(CLIENTS / f"{os_name}_kcov.c"), "-o", str(obj)])
        _cc([*san, "-pthread", str(obj), str(out / "kern.o"), *rt,
             "-o", str(out / f"{os_name}_kcov")])
    _cc([*CFLAGS, *san, f"-I{inc}", "-c", str(DATA / "stress.c"),
         "-o", str(out / "stress.o")])
    _cc([*san, "-pthread", str(out / "stress.o"), str(out / "rec.o"), *rt,
         "-o", str(out / "stress")])
    return Build(name, out)


@pytest.fixture(scope="module", params=list(SANITIZERS))
def san_build(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Build:
    need_tool(CC)
    name = str(request.param)
    return build(name, tmp_path_factory.mktemp(name))


def run(exe: Path, args: list[str], abi: str | None = None,
        timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **ENV)
    if abi is not None:
        env["KCOV_BSD_ABI"] = abi
    return subprocess.run(["nice", "-n", "10", str(exe), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean(r: subprocess.CompletedProcess[str], what: str,
                 passed: str) -> None:
    out = r.stdout + r.stderr
    m = REPORT.search(out)
    assert m is None, f"{what}: sanitizer report\n{out[-6000:]}"
    assert r.returncode == 0, f"{what}: exit status {r.returncode}\n{out[-4000:]}"
    assert passed in r.stdout and "FAIL" not in r.stdout, f"{what}:\n{out[-4000:]}"


def client_runs(b: Build) -> list[tuple[str, list[str], str | None, str]]:
    """(client, argv, KCOV_BSD_ABI, the PASS line) for every case."""
    runs = []
    for os_name in ("freebsd", "linux", "netbsd"):
        exe = b.exe(f"{os_name}_kcov")
        cases = subprocess.run([str(exe)], capture_output=True, text=True,
                               timeout=60).stdout.split()
        assert cases, f"{exe} lists no cases"
        runs += [(os_name, [c], os_name, f"PASS {c}") for c in cases]
    exe = b.exe("openbsd_kcov")
    cases = subprocess.run([str(exe), "-l"], capture_output=True, text=True,
                           timeout=60).stdout.split()
    assert cases, f"{exe} lists no cases"
    runs += [("openbsd", ["-m", m, c], "openbsd", f"PASS {c}")
             for m in ("pc", "cmp") for c in cases]
    return runs


@pytest.mark.slow
def test_contract_clients(san_build: Build) -> None:
    runs = client_runs(san_build)
    for os_name, argv, abi, passed in runs:
        r = run(san_build.exe(f"{os_name}_kcov"), argv, abi, timeout=120)
        assert_clean(r, f"{san_build.name} {os_name} {' '.join(argv)}", passed)
    print(f"{san_build.name}: {len(runs)} contract cases clean")


@pytest.mark.slow
def test_stress(san_build: Build) -> None:
    r = run(san_build.exe("stress"), [str(STRESS_CYCLES)])
    assert_clean(r, f"{san_build.name} stress", "PASS ")
    print(f"{san_build.name}: {r.stdout.strip()}")


def test_selftest_is_reported(san_build: Build) -> None:
    """The harness can fail: a planted overflow or race is reported."""
    r = run(san_build.exe("stress"), ["selftest"], timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and REPORT.search(out), out[-3000:]
    want = "ThreadSanitizer: data race" if san_build.name == "tsan" \
        else "AddressSanitizer: heap-buffer-overflow"
    assert want in out, out[-3000:]
