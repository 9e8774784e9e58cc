"""The pytest plugin (kcov.report.pytest_plugin, a pytest11 entry point):
pytest runs a small test file (data/plugin/plugged_tests.py) in a
subprocess, with and without --kcov, against an instrumented library
(data/plugin/plugged.c, clang-19, traced by the hosted runtime); each
test's coverage is checked function by function and on the MARK lines.
The VM test runs the plugin inside the guest on the stock kernel with
kcov.ko and an instrumented minix.ko, and reports on the host."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from reportfix import KernelModules
from reporthelp import COVERAGE, DATA, REPO, VENV_BIN, function_lines, markers, need, run

import kcov
from kcov.report import read_pcs
from kcov.report.formats import read as read_coverage

from tests.support.kernel import stock
from tests.support.vm import Vm, dmesg_problems, find_vng

PLUGIN = DATA / "plugin"
MOD = "test_plugged.py"
ALPHA, BETA, GAMMA, NOTHING = (f"{MOD}::test_{n}" for n in ("alpha", "beta", "gamma", "nothing"))
SETUP, TEARDOWN = f"{ALPHA}|setup", f"{NOTHING}|teardown"


def kcov_report() -> str:
    exe = VENV_BIN / "kcov-report"
    return str(exe) if exe.is_file() else "kcov-report"


@pytest.fixture(scope="session")
def plugged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/plugin/plugged.c as an instrumented shared library (clang-19,
    -g, linked to the installed libkcovrt)."""
    need(shutil.which("clang-19") is not None, "clang-19 is not installed")
    out = tmp_path_factory.mktemp("plugged")
    src = out / "plugged.c"
    shutil.copy2(PLUGIN / "plugged.c", src)
    lib = out / "libplugged.so"
    libdir = kcov.get_lib_dir()
    run(["clang-19", "-g", "-O0", "-fPIC", "-shared", COVERAGE, src, f"-L{libdir}", "-lkcovrt",
         f"-Wl,-rpath,{libdir}", "-o", lib])
    return lib


def workdir(tmp_path: Path, source: Path = PLUGIN / "plugged_tests.py", name: str = MOD) -> Path:
    """A directory of its own for the inner pytest (its own pytest.ini, so
    the project's configuration stays out)."""
    shutil.copy2(source, tmp_path / name)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def pytest_run(cwd: Path, *args: str, lib: Path | None = None
               ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for k in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS"):
        env.pop(k, None)
    if lib is not None:
        env["PLUGGED_LIB"] = str(lib)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--strict-markers", "-rN", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=600)


def summary_line(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"^kcov: (\d+) tests; points (\d+)/(\d+) \(\d+\.\d\d%\), lines \d+/\d+", stdout, re.M)
    assert m, stdout
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_entry_point_registered() -> None:
    """Named as its module, so `-p kcov.report.pytest_plugin` loads it
    whether plugins are autoloaded or not (and `-p no:...` blocks it)."""
    eps = [ep for ep in entry_points(group="pytest11") if ep.value == "kcov.report.pytest_plugin"]
    assert [ep.name for ep in eps] == ["kcov.report.pytest_plugin"]


def test_per_test_coverage_hosted(plugged: Path, tmp_path: Path) -> None:
    """Three tests reaching their own functions, a module fixture, a test
    that reaches nothing and one that traces itself (no_kcov): every
    function's tests exactly, every format written, and the session's
    kcov-pcs dump gives the same coverage through kcov-report."""
    w = workdir(tmp_path)
    out = w / "out"
    reports = {"json": "cov.json", "lcov": "cov.info", "cobertura": "cov.xml", "html": "html/",
               "text": "cov.txt", "json-summary": "summary.json"}
    args = [a for fmt, path in reports.items() for a in ("--kcov-report", f"{fmt}:{out}/{path}")]
    p = pytest_run(w, "--kcov", *args, "--kcov-pcs", str(out / "session.pcs"), MOD, lib=plugged)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 passed" in p.stdout

    data = read_coverage(out / "cov.json")
    assert data.tests == {SETUP, ALPHA, BETA, GAMMA, NOTHING, TEARDOWN}
    (mod,) = data.modules.values()
    assert mod.name == "libplugged.so" and mod.universe
    src = plugged.parent / "plugged.c"
    funcs = data.files()[str(src)].functions
    expect = {"shared": {ALPHA, GAMMA}, "alpha": {ALPHA}, "beta": {BETA}, "gamma_": {GAMMA},
              "fixture_up": {SETUP}, "fixture_down": {TEARDOWN}, "never": set()}
    assert {n: f.tests for n, f in funcs.items()} == expect
    assert funcs["never"].status == "uncovered"  # test_own_kcov reached it, untraced
    # Lines (-O0: one point at each function's opening brace, one in
    # each branch of alpha), exactly.
    mark = markers(src)
    lines = {ln: ls.tests for ln, ls in data.files()[str(src)].lines.items()}
    want = {function_lines(src, fn)[0] + 1: tests for fn, tests in expect.items()}
    want[mark["alpha_pos"]] = {ALPHA}
    want[mark["alpha_neg"]] = set()
    assert lines == want

    # The terminal summary agrees with the data.
    t = data.totals()
    assert summary_line(p.stdout) == (6, t.hit, t.points)
    for fmt, path in reports.items():
        assert f"kcov: wrote {fmt} {out}/{path}" in p.stdout
    assert (out / "html" / "index.html").is_file()
    assert (out / "cov.xml").read_text().startswith("<?xml")
    assert "TOTAL" in (out / "cov.txt").read_text()
    assert read_coverage(out / "cov.info").files()[str(src)].functions["beta"].hit

    # The raw dump: one section per traced test phase, only the library's
    # mappings; kcov-report turns it into the same coverage.
    dump = read_pcs(out / "session.pcs")
    assert set(dump.tests) == data.tests
    assert len(dump.tests[NOTHING]) == 0 and len(dump.tests[ALPHA]) > 0
    assert {Path(m.path).name for m in dump.modules} == {"libplugged.so"}
    again = w / "again.json"
    r = subprocess.run([kcov_report(), "convert", str(out / "session.pcs"), "-o", str(again)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert read_coverage(again) == data

    # The questions, asked of the session's output.
    def ask(*a: str) -> str:
        q = subprocess.run([kcov_report(), "tests", str(out / "cov.json"), *a],
                           capture_output=True, text=True, check=False)
        assert q.returncode == 0, q.stderr
        return q.stdout

    assert ask("--function", "shared") == f"{ALPHA}\n{GAMMA}\n"
    assert ask("--function", "never") == ""
    added = ask("--test", GAMMA)
    assert added.startswith(f"added by {GAMMA}: reached by it and not by any other test: ")
    first = added.split("functions no other test reached", 1)[1]
    assert re.search(r"\n  plugged\.c:\d+  gamma_  \d+ of \d+ point", first), added
    assert "shared" not in added  # test_alpha reached all of it
    assert "alpha" not in ask("--test", BETA)
    table = ask()
    assert re.search(rf"^{re.escape(NOTHING)} +0 +0 +0$", table, re.M), table


def test_off_without_kcov(plugged: Path, tmp_path: Path) -> None:
    """Without --kcov nothing is traced or written (the no_kcov marker is
    still known, so --strict-markers runs pass); the other options alone
    are a usage error."""
    w = workdir(tmp_path)
    before = set(os.listdir(w))
    p = pytest_run(w, MOD, lib=plugged)
    assert p.returncode == 0 and "5 passed" in p.stdout, p.stdout + p.stderr
    assert "kcov coverage" not in p.stdout and not re.search(r"^kcov:", p.stdout, re.M)
    assert set(os.listdir(w)) == before
    p = pytest_run(w, "--kcov-report", f"json:{w}/x.json", MOD, lib=plugged)
    assert p.returncode == 4 and "--kcov-report needs --kcov" in p.stderr
    assert not (w / "x.json").exists()


def test_bad_options_fail_before_the_tests(plugged: Path, tmp_path: Path) -> None:
    w = workdir(tmp_path)
    cases = [
        (["--kcov-report", "docx:x.docx"], r"--kcov-report docx:x\.docx: unknown format 'docx'"),
        (["--kcov-report", "cov.json"], r"--kcov-report cov\.json: expected FORMAT:PATH"),
        (["--kcov-report", f"json:{w / MOD}/x.json"], r"cannot write .*: .* is not a directory"),
        (["--kcov-binary", str(w / "nope.so")], r"--kcov-binary \S+nope\.so: no such file"),
    ]
    if not Path("/sys/kernel/debug/kcov").exists():
        cases.append((["--kcov-provider", "linux"], r"--kcov: cannot open the linux kcov device"))
    for args, message in cases:
        p = pytest_run(w, "--kcov", *args, MOD, lib=plugged)
        assert p.returncode == 4, (args, p.stdout, p.stderr)
        assert re.search(message, p.stderr), (message, p.stderr)
        assert "passed" not in p.stdout


def test_report_error_at_the_end(plugged: Path, tmp_path: Path) -> None:
    """A library without DWARF: the tests pass, the dump is written, the
    report fails with one line and pytest's exit status says so."""
    nodebug = tmp_path / "lib" / "libplugged.so"
    nodebug.parent.mkdir()
    libdir = kcov.get_lib_dir()
    run(["clang-19", "-g0", "-O0", "-fPIC", "-shared", COVERAGE, PLUGIN / "plugged.c",
         f"-L{libdir}", "-lkcovrt", f"-Wl,-rpath,{libdir}", "-o", nodebug])
    w = tmp_path / "w"
    w.mkdir()
    workdir(w)
    p = pytest_run(w, "--kcov", "--kcov-pcs", "s.pcs", "--kcov-report", "json:cov.json", MOD,
                   lib=nodebug)
    assert p.returncode == pytest.ExitCode.INTERNAL_ERROR, p.stdout + p.stderr
    assert "5 passed" in p.stdout
    assert re.search(r"^kcov: error: no DWARF line info in \S+libplugged\.so: rebuild with -g$",
                     p.stdout, re.M), p.stdout
    assert "Traceback" not in p.stdout + p.stderr
    assert (w / "s.pcs").is_file() and not (w / "cov.json").exists()
    assert set(read_pcs(w / "s.pcs").tests) == {SETUP, ALPHA, BETA, GAMMA, NOTHING, TEARDOWN}


def test_overflow_is_reported(plugged: Path, tmp_path: Path) -> None:
    src = tmp_path / "many.py"
    src.write_text("import ctypes, os\n"
                   "LIB = ctypes.CDLL(os.environ['PLUGGED_LIB'])\n"
                   "def test_many():\n"
                   "    for i in range(2000):\n"
                   "        LIB.beta(i)\n"
                   "def test_few():\n"
                   "    LIB.beta(1)\n")
    w = workdir(tmp_path, src, "test_many.py")
    p = pytest_run(w, "--kcov", "--kcov-entries", "512", "--kcov-report", "json:cov.json",
                   "test_many.py", lib=plugged)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"kcov: warning: 1 test phase\(s\) filled the buffer, their coverage is "
                     r"incomplete \(test_many\.py::test_many\): raise --kcov-entries", p.stdout), p.stdout
    data = read_coverage(w / "cov.json")
    assert data.tests_reaching("beta") == {"test_many.py::test_many", "test_many.py::test_few"}


# -- in the VM: the kernel's device ------------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel  # boots the stock kernel
def test_plugin_in_vm(kernel_modules: KernelModules, tmp_path: Path) -> None:
    """pytest --kcov --kcov-provider linux inside the guest (stock kernel,
    kcov.ko, the instrumented minix.ko): each test's file-system call is
    attributed to it; the session's dump is reported again on the host."""

    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    w = tmp_path / "guest"
    w.mkdir()
    workdir(w, PLUGIN / "guest_minix_tests.py", "test_minix_ops.py")
    py = VENV_BIN / "python"
    load = (f"{py} -c 'from examples.kernel import minixcov; "
            f"from pathlib import Path; minixcov.load_modules(Path(\"{kernel_modules.kcov_ko}\"), "
            f"Path(\"{kernel_modules.minix_ko}\"))'")
    # Only our plugin, loaded by name (hypothesis and the other installed
    # plugins take over a minute to import under TCG).
    cmd = (f"{load} && {py} -m pytest -p kcov.report.pytest_plugin "
           f"-p no:cacheprovider -q --kcov --kcov-provider linux "
           f"--kcov-binary {kernel_modules.minix_ko} --kcov-pcs {w}/session.pcs "
           f"--kcov-report json:{w}/cov.json test_minix_ops.py")
    res = Vm(kernel=stock().image, memory="1G", cpus=2, timeout=900,
             extra_args=(f"--rwdir={w}",)).run(
        cmd, cwd=w, env={"KCOV_REPO": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert res.returncode == 0, res.describe()
    assert not dmesg_problems(res.dmesg), res.describe()
    assert "4 passed" in res.stdout, res.describe()
    n, hit, points = summary_line(res.stdout)

    names = {op: f"test_minix_ops.py::test_{op}" for op in ("create", "mkdir", "readdir", "unlink")}
    data = read_coverage(w / "cov.json")
    assert set(names.values()) <= data.tests and n == len(data.tests)
    (mod,) = data.modules.values()
    assert (mod.name, mod.kind, mod.universe) == ("minix.ko", "kmod", True)
    assert (hit, points) == (data.totals().hit, data.totals().points)
    assert data.tests_reaching("minix_readdir") == {names["readdir"]}
    assert names["mkdir"] in data.tests_reaching("minix_mkdir")
    assert names["unlink"] in data.tests_reaching("minix_unlink")
    assert names["readdir"] not in data.tests_reaching("minix_unlink")
    assert names["create"] in data.tests_reaching("minix_create")
    # The kmod module lines of the dump came from /sys/module/minix/sections.
    dump = read_pcs(w / "session.pcs")
    assert dump.modules and all(m.kind == "kmod" and m.start >= 0xffffffff00000000
                                for m in dump.modules)
    # On the host: the dump through kcov-report gives the guest's report.
    host = tmp_path / "host.json"
    r = subprocess.run([kcov_report(), "convert", str(w / "session.pcs"), "-o", str(host)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert read_coverage(host) == data
    q = subprocess.run([kcov_report(), "tests", str(host), "--function", "minix_readdir"],
                       capture_output=True, text=True, check=False)
    assert q.stdout == f"{names['readdir']}\n", q
