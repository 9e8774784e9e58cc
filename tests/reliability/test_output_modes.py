"""Every file kcov writes gets the mode the umask gives, as any program's
would: 0644 under umask 022 and 0600 under 077 (0755 / 0700 for
directories and the generated compiler wrappers).

Each command that writes runs in its own process with the umask set
(kcov-report convert and merge, kcov-build config --write, inventory, a
build with --compdb and --inventory and its wrapper directory, pgo merge,
python -m kcov.profile merge and report, kcov.profile.write and
write_sancov, kcov.report.write_pcs, and the writers of kcov-build kernel
and of --sbcc for kernel modules, called directly: no kernel is built).
Then every entry of the output tree is checked, which also shows that no
temporary file was left behind.

The inputs are built once, under the test's own umask: a tiny program and
library with kcov-build --sbcc (clang-19), a run's raw profile and its
llvm-cov lcov.
"""
from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prereq import need, need_tools

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
BASE_CONFIG = ROOT / "tests" / "build_plugin" / "data" / "kconfig" / "linux" / "base.config"
CC = "clang-19"

#: umask -> (file mode, directory and program mode)
MODES = {0o022: (0o644, 0o755), 0o077: (0o600, 0o700)}

#: Written by a python process with the umask set: kcov.profile.write and
#: write_sancov of an instrumented library loaded in it, write_pcs of a PC
#: in it; kcov-build kernel's .config writer (configure() with a --base
#: file; its first make step is where this stops); the object --sbcc adds
#: to kernel module links.
IN_PROCESS = r"""
import ctypes, sys
from pathlib import Path

import kcov.profile as kp
from kcov.report import write_pcs
from kcov.report.pcs import snapshot_modules
from kcov_build import kernel, kmod_profile

out, lib_path, base, cc = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
kp.write_at_exit(False)
lib = ctypes.CDLL(lib_path)
lib.kcov_mode_f(5)
kp.write(out / "api" / "lib.profraw")
pc = ctypes.cast(lib.kcov_mode_f, ctypes.c_void_p).value + 4
assert kp.write_sancov([pc], out / "api", pid=1), "no .sancov written"
write_pcs(out / "api" / "run.pcs", [pc], snapshot_modules())


class FirstMake(Exception):
    pass


def first_make(*args, **kwargs):
    raise FirstMake


kernel._step = first_make
build = type("Build", (), {"out": out / "kbuild", "src": out / "kbuild", "make": lambda self, t: ["make", t]})()
try:
    kernel.configure(build, None, base, [])
    raise SystemExit("kernel.configure did not reach make")
except FirstMake:
    pass
kmod_profile._assemble(cc, out / "kbuild" / kmod_profile.DEP_NAME)
"""


def _run(argv: list[object], cwd: Path, umask: int | None = None, env: dict[str, str] | None = None) -> None:
    cmd = [str(a) for a in argv]
    if umask is not None:
        cmd = ["bash", "-c", f"umask {umask:03o}; exec \"$@\"", "bash", *cmd]
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tools(CC, "llvm-profdata-19", "llvm-cov-19", "kcov-build")
    need(importlib.util.find_spec("clang") is not None, "libclang is not installed (kcov-build inventory needs it)")
    d = tmp_path_factory.mktemp("mode-inputs")
    (d / "p.c").write_text("int main(int c, char **v) { (void)v; return c > 9; }\n")
    (d / "lib.c").write_text("int kcov_mode_f(int x) { return x > 3 ? x * 2 : x + 1; }\n")
    kb = BIN / "kcov-build"
    _run([kb, "--sbcc", CC, "p.c", "-o", "p"], d)
    _run([kb, "--sbcc", CC, "-shared", "-fPIC", "lib.c", "-o", "lib.so"], d)
    _run([d / "p"], d, env={**os.environ, "LLVM_PROFILE_FILE": str(d / "p.profraw")})
    _run([sys.executable, "-m", "kcov.profile", "merge", "-o", "p.profdata", "p.profraw"], d)
    _run([sys.executable, "-m", "kcov.profile", "report", "--format", "lcov", "-o", "p.info",
          "--profile", "p.profdata", "p"], d)
    return d


def _commands(i: Path) -> list[list[object]]:
    kb, py = BIN / "kcov-build", sys.executable
    return [
        [BIN / "kcov-report", "convert", i / "p.info", "-o", "report/c.json", "-o", "report/c.xml",
         "-o", "report/c.txt", "-o", "report/c.info", "-o", "report/c.html", "-o", "report/html/"],
        [BIN / "kcov-report", "merge", i / "p.info", i / "p.info", "-o", "report/merged.json"],
        [kb, "config", BASE_CONFIG, "--write", "kernel.config"],
        [kb, "inventory", "-o", "inventory.json", "--ignorelist", "ignorelist.txt", "--", CC, "-c", i / "p.c"],
        [kb, "--compdb", "build/compile_commands.json", "--inventory", "build/inventory.json", "--",
         "sh", "-c", f"$CC -c {i / 'p.c'} -o build/p.o"],
        [kb, "pgo", "merge", "-o", "pgo.profdata", i / "p.profraw"],
        [py, "-m", "kcov.profile", "merge", "-o", "profile/p.profdata", i / "p.profraw"],
        [py, "-m", "kcov.profile", "report", "--format", "lcov", "-o", "profile/p.info",
         "--profile", i / "p.profdata", i / "p"],
        [py, "-m", "kcov.profile", "report", "--format", "html", "-o", "profile/html",
         "--profile", i / "p.profdata", i / "p"],
        [py, "-c", IN_PROCESS, ".", i / "lib.so", BASE_CONFIG, CC],
    ]


#: What the commands must have written (beside what they put in it).
EXPECTED = (
    "report/c.json", "report/c.xml", "report/c.txt", "report/c.info", "report/c.html", "report/html/index.html",
    "report/merged.json", "kernel.config", "inventory.json", "ignorelist.txt", "build/compile_commands.json",
    "build/inventory.json", "pgo.profdata", "profile/p.profdata", "profile/p.info", "profile/html/index.html",
    "api/lib.profraw", "api/lib.so.1.sancov", "api/run.pcs", "kbuild/.config", "kbuild/kcovprof-kmod-dep.o",
)
#: Generated programs: kcov-build's compiler wrappers.
PROGRAMS = ("cc", "c++")


@pytest.mark.parametrize("umask", sorted(MODES), ids=lambda u: f"umask-{u:03o}")
def test_every_output_follows_the_umask(inputs: Path, tmp_path: Path, umask: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "build").mkdir()
    env = {**os.environ, "KCOV_BUILD_CACHE": str(out / "cache")}
    for cmd in _commands(inputs):
        _run(cmd, out, umask, env)

    file_mode, dir_mode = MODES[umask]
    wrong, leftovers, seen = [], [], set()
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        seen.add(rel.as_posix())
        if rel.as_posix() == "build":  # made by this test, not by kcov
            continue
        if path.name.startswith(".") and path.name not in (".config", ".kcov-report"):
            leftovers.append(str(rel))
        is_program = path.name in PROGRAMS or path.is_dir()
        want = dir_mode if is_program else file_mode
        have = stat.S_IMODE(path.lstat().st_mode)
        if have != want:
            wrong.append(f"{rel}: {have:04o}, want {want:04o}")
    missing = [e for e in EXPECTED if e not in seen]
    wrappers = [p.name for p in out.glob("cache/wrap-*/*") if p.name in PROGRAMS]
    assert not missing and sorted(wrappers) == sorted(PROGRAMS), (missing, wrappers)
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert not wrong, f"under umask {umask:03o}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_the_umask_is_read_not_set(tmp_path: Path, umask: int) -> None:
    """kcov._base.files.umask() from /proc/self/status and, without it, from
    a probe file, in a process whose umask it must leave alone."""
    probe = (
        "import os\n"
        "from kcov._base import files\n"
        "a = files.umask()\n"
        "def no_proc(*args, **kwargs):\n"
        "    raise OSError('no /proc')\n"
        "files.open = no_proc\n"
        "b = files.umask()\n"
        "print(a, b, os.umask(0))\n"
    )
    p = subprocess.run(["bash", "-c", f"umask {umask:03o}; exec \"$@\"", "bash", sys.executable, "-c", probe],
                       capture_output=True, text=True, check=True, cwd=tmp_path)
    assert p.stdout.split() == [str(umask)] * 3, p.stdout
