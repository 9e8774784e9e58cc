"""kcov-build's command line: what it adds, what it prints, how it fails."""
from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prereq import need_tool

from buildhelp import DATA, kcov_build, run, script

from kcov_build import runtime_paths
from kcov_build.cli import classify

P = runtime_paths()
COV = "-fsanitize-coverage=trace-pc,trace-cmp"
LD_SHARED = [
    f"-L{P.lib_dir}",
    "-Wl,--push-state,--no-as-needed",
    "-lkcovrt",
    "-Wl,--pop-state",
    f"-Wl,-rpath,{P.lib_dir}",
]
LD_STATIC = [str(P.static_lib), "-lpthread"]


def dry(*args: str) -> list[str]:
    """The command kcov-build --dry-run prints, split as a shell would."""
    out = kcov_build("--dry-run", *args).stdout
    assert out.count("\n") == 1, out
    return shlex.split(out)


def fake_compiler(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def assert_one_line_error(p: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert p.returncode == status, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("kcov-build: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert p.stdout == ""


# --- What gets added ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # compile only: coverage flags in front, nothing to link
        (["-O2", "-c", "x.c", "-o", "x.o"], [COV, "-O2", "-c", "x.c", "-o", "x.o"]),
        (["-S", "x.c"], [COV, "-S", "x.c"]),
        (["-c", "-x", "c", "-", "-o", "x.o"], [COV, "-c", "-x", "c", "-", "-o", "x.o"]),
        (["-c", "-MD", "-MF", "x.d", "x.cc"], [COV, "-c", "-MD", "-MF", "x.d", "x.cc"]),
        # link only: the runtime after the user's inputs
        (["a.o", "b.a", "-o", "prog"], ["a.o", "b.a", "-o", "prog", *LD_SHARED]),
        (["-shared", "a.o", "-o", "liba.so"], ["-shared", "a.o", "-o", "liba.so", *LD_SHARED]),
        # preprocessing and queries pass through untouched
        (["-E", "x.c"], ["-E", "x.c"]),
        (["-M", "x.c"], ["-M", "x.c"]),
        (["-MM", "x.c"], ["-MM", "x.c"]),
        (["--version"], ["--version"]),
        (["-print-file-name=libc.so"], ["-print-file-name=libc.so"]),
        # assembly is not instrumented, but is linked
        (["-c", "x.s"], ["-c", "x.s"]),
    ],
)
def test_dry_run_classifies(args: list[str], expected: list[str]) -> None:
    cc = "gcc-12"
    need_tool(cc)
    assert dry(cc, *args) == [cc, *expected]


def test_compile_and_link_gcc() -> None:
    cc = "gcc-12"
    need_tool(cc)
    assert dry(cc, "x.c", "-o", "x") == [cc, COV, "x.c", "-o", "x", *LD_SHARED]


@pytest.mark.parametrize("cc", ["clang-19", "clang-14"])
def test_compile_and_link_clang_drops_ubsan_runtime(cc: str) -> None:
    need_tool(cc)
    assert dry(cc, "x.c", "-o", "x") == [cc, COV, "x.c", "-o", "x", "-fno-sanitize-link-runtime", *LD_SHARED]


def test_options() -> None:
    cc = "gcc-12"
    need_tool(cc)
    assert dry("--mode", "pc", cc, "-c", "x.c") == [cc, "-fsanitize-coverage=trace-pc", "-c", "x.c"]
    assert dry("--mode=cmp", cc, "-c", "x.c") == [cc, COV, "-c", "x.c"]
    compat = f"-I{P.compat_dir / 'freebsd'}"
    assert dry("--abi", "freebsd", cc, "-c", "x.c") == [cc, COV, compat, "-c", "x.c"]
    # the preprocessor must see the same headers as the compiler
    assert dry("--abi", "freebsd", cc, "-E", "x.c") == [cc, compat, "-E", "x.c"]
    assert dry("--static-runtime", cc, "a.o", "-o", "a") == [cc, "a.o", "-o", "a", *LD_STATIC]


def test_double_dash_is_optional_and_parsing_stops_at_cc() -> None:
    cc = "gcc-12"
    need_tool(cc)
    assert dry("--", cc, "-c", "x.c") == dry(cc, "-c", "x.c")
    # Options after CC are the compiler's, even when they look like ours.
    assert dry(cc, "-c", "x.c", "--mode", "pc", "--dry-run") == [cc, COV, "-c", "x.c", "--mode", "pc", "--dry-run"]


def test_dry_run_quotes_for_the_shell(tmp_path: Path) -> None:
    cc = "gcc-12"
    need_tool(cc)
    src = "my file's.c"
    out = kcov_build("--dry-run", cc, "-c", src).stdout.strip()
    assert out == shlex.join([cc, COV, "-c", src])
    assert shlex.split(out)[-1] == src


def test_response_file_is_classified(tmp_path: Path) -> None:
    cc = "gcc-12"
    need_tool(cc)
    rsp = tmp_path / "args.rsp"
    rsp.write_text("-c x.c -o x.o\n")
    assert dry(cc, f"@{rsp}") == [cc, COV, f"@{rsp}"]


@pytest.mark.parametrize(
    ("args", "compiles", "links"),
    [
        (["-c", "a.c"], True, False),
        (["a.c"], True, True),
        (["a.o", "-lm"], False, True),
        (["-o", "a.c", "b.o"], False, True),  # a.c is the output name, not an input
        (["-x", "c++", "a.txt", "-c"], True, False),
        (["-xc", "a.txt", "-xnone", "b.o"], True, True),
        (["-fsyntax-only", "a.c"], True, False),
        (["-E", "a.c"], False, False),
        (["-I", "inc.c", "-c", "a.S"], False, False),
        (["-v"], False, False),
        ([], False, False),
    ],
)
def test_classify(args: list[str], compiles: bool, links: bool) -> None:
    c = classify(args)
    assert (c.compiles, c.links) == (compiles, links)


# --- Queries --------------------------------------------------------------


def test_queries() -> None:
    assert kcov_build("--cflags").stdout.split() == [COV, f"-I{P.include_dir}"]
    assert kcov_build("--mode", "pc", "--cflags").stdout.split()[0] == "-fsanitize-coverage=trace-pc"
    assert kcov_build("--ldflags").stdout.split() == LD_SHARED
    assert kcov_build("--static-runtime", "--ldflags").stdout.split() == LD_STATIC
    assert kcov_build("--includes").stdout.split() == [f"-I{P.include_dir}"]
    assert kcov_build("--abi", "netbsd", "--includes").stdout.split() == [
        f"-I{P.compat_dir / 'netbsd'}",
        f"-I{P.include_dir}",
    ]
    libdir = Path(kcov_build("--libdir").stdout.strip())
    assert (libdir / "libkcovrt.so").is_file() and (libdir / "libkcovrt.a").is_file()
    cmakedir = Path(kcov_build("--cmakedir").stdout.strip())
    assert (cmakedir / "KcovRuntimeConfig.cmake").is_file()
    assert (Path(P.include_dir) / "kcovrt.h").is_file()


def test_python_m_is_the_same_program() -> None:
    cc = "gcc-12"
    need_tool(cc)
    mod = run([sys.executable, "-m", "kcov_build", "--dry-run", cc, "-c", "x.c"]).stdout
    assert mod == kcov_build("--dry-run", cc, "-c", "x.c").stdout
    p = run([sys.executable, "-m", "kcov_build"], check=False)
    assert_one_line_error(p, 64, "no compiler command")


def test_help() -> None:
    p = kcov_build("--help")
    assert "usage: kcov-build [OPTIONS] [--] CC [ARGS...]" in p.stdout
    assert "--static-runtime" in p.stdout


# --- Errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        ([], 64, ["no compiler command"]),
        (["--dry-run"], 64, ["no compiler command"]),
        (["--mode", "edge", "cc"], 64, ["--mode", "edge"]),
        (["--abi", "windows", "cc"], 64, ["--abi"]),
        (["--no-such-option", "cc"], 64, ["--no-such-option"]),
        (["--cflags", "--ldflags"], 64, ["--ldflags"]),
        (["--dry-run", "--verbose", "cc"], 64, ["--verbose"]),
        (["--cflags", "gcc-12", "-c", "x.c"], 64, ["--cflags"]),
        (["no-such-compiler-xyz", "-c", "x.c"], 127, ["no-such-compiler-xyz", "not found"]),
        (["/nonexistent/bin/cc", "-c", "x.c"], 127, ["/nonexistent/bin/cc"]),
    ],
)
def test_usage_errors(args: list[str], status: int, words: list[str]) -> None:
    assert_one_line_error(kcov_build(*args, check=False), status, *words)


def test_old_gcc_refuses_trace_cmp(tmp_path: Path) -> None:
    gcc7 = fake_compiler(
        tmp_path,
        "gcc-7",
        'case "$1" in\n'
        '--version) echo "gcc-7 (Debian 7.5.0-3) 7.5.0"; echo "Copyright (C) 2017 Free Software Foundation, Inc.";;\n'
        "-dumpfullversion) echo 7.5.0;;\n"
        "*) exit 0;;\n"
        "esac\n",
    )
    p = kcov_build(gcc7, "-c", "x.c", check=False)
    assert_one_line_error(p, 64, "GCC 7.5.0", "trace-cmp", "--mode pc")
    # trace-pc alone is fine, and so is a link, which needs no trace-cmp
    assert dry("--mode", "pc", str(gcc7), "-c", "x.c")[1] == "-fsanitize-coverage=trace-pc"
    assert kcov_build(gcc7, "a.o", "-o", "a").returncode == 0


# --- Exit status ----------------------------------------------------------


def test_compiler_failure_status_is_propagated(cc: str, tmp_path: Path) -> None:
    plain = run([cc, "-c", DATA / "broken.c", "-o", tmp_path / "p.o"], check=False)
    wrapped = kcov_build(cc, "-c", DATA / "broken.c", "-o", tmp_path / "w.o", check=False)
    assert plain.returncode != 0
    assert wrapped.returncode == plain.returncode
    assert "undeclared_identifier" in wrapped.stderr
    assert "Traceback" not in wrapped.stderr


def test_exit_status_and_signals(tmp_path: Path) -> None:
    three = fake_compiler(tmp_path, "cc-exit3", "exit 3\n")
    assert kcov_build(three, "-c", "x.c", check=False).returncode == 3
    killed = fake_compiler(tmp_path, "cc-killed", "kill -TERM $$\n")
    assert kcov_build(killed, "-c", "x.c", check=False).returncode == 128 + signal.SIGTERM
    segv = fake_compiler(tmp_path, "cc-segv", "kill -SEGV $$\n")
    assert kcov_build(segv, "x.o", check=False).returncode == 128 + signal.SIGSEGV


def test_verbose_prints_and_runs(tmp_path: Path) -> None:
    cc = "gcc-12"
    need_tool(cc)
    obj = tmp_path / "hello.o"
    p = kcov_build("--verbose", cc, "-c", DATA / "hello.c", "-o", obj)
    assert p.stderr.strip() == shlex.join([cc, COV, "-c", str(DATA / "hello.c"), "-o", str(obj)])
    assert obj.is_file()


def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    cc = "gcc-12"
    need_tool(cc)
    obj = tmp_path / "hello.o"
    kcov_build("--dry-run", cc, "-c", DATA / "hello.c", "-o", obj)
    assert not obj.exists()
    assert script("kcov-build").is_file()


def test_wrappers_run_the_interpreter_that_made_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrapper directory is keyed by the interpreter as well as the
    settings: a wrapper made by another (since deleted) virtual environment
    is never reused, which made every build fail with status 127."""
    from kcov_build.settings import Settings
    from kcov_build.wrap import ensure_state

    monkeypatch.setenv("KCOV_BUILD_CACHE", str(tmp_path))
    s = Settings(cc=shutil.which("gcc-12"), cxx=shutil.which("g++-12"), family="gcc")
    gone = ensure_state(s, python="/nonexistent/venv/bin/python")
    here = ensure_state(s)
    assert gone != here
    for name in ("cc", "c++"):
        assert shlex.quote(sys.executable) in (here / name).read_text()
    assert ensure_state(s) == here  # and stable from run to run
    r = subprocess.run([str(here / "cc"), "--version"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
