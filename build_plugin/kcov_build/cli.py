"""kcov-build: run a C/C++ compiler with kcov coverage injected.

    kcov-build [--mode pc|cmp|pc,cmp] [--abi ABI] [--static-runtime]
               [--dry-run | --verbose] [--] CC [ARGS...]
    kcov-build [--abi ABI] [--static-runtime]
               --cflags | --ldflags | --includes | --libdir | --cmakedir

The wrapped command is classified from its own arguments.  A call that
compiles gets -fsanitize-coverage=...; a call that links (an executable or a
-shared object) gets the runtime.  Preprocessing-only calls (-E, -M, -MM) are
left alone, so kcov-build can sit in CC for a whole build.

The runtime is linked as a shared library by default so that a process holds
exactly one runtime instance, shared by the Python extension, kcov-run's
preloaded device and every instrumented DSO: coverage from a library loaded
with ctypes lands in the buffer the caller enabled.  --static-runtime links
libkcovrt.a instead; such a program carries a private instance and must use
the kcovrt_* C API itself.

kcov-build exits with the compiler's status, 128 + N if it died on signal N.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Sequence

from ._paths import RuntimePaths, runtime_paths

PROG = "kcov-build"

# sysexits(3)
EX_OK = 0
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_NOTFOUND = 127  # the shell's "command not found"

MODES = {"pc": "trace-pc", "cmp": "trace-pc,trace-cmp", "pc,cmp": "trace-pc,trace-cmp"}
ABIS = ("freebsd", "netbsd", "openbsd", "linux")

# Options of kcov-build itself that take a value as the next argument.
_OWN_VALUE_OPTS = frozenset({"--mode", "--abi"})


class UsageError(Exception):
    """A mistake on the command line: reported in one line, exit 64."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        usage=f"{PROG} [OPTIONS] [--] CC [ARGS...]",
        description="Run the compiler CC with kcov coverage instrumentation and runtime.",
        epilog="Option parsing stops at the first non-option, so '--' is optional.",
    )
    p.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="pc,cmp",
        help="what to instrument: trace-pc, trace-cmp (implies pc), or both (default: pc,cmp)",
    )
    p.add_argument(
        "--abi",
        choices=ABIS,
        default=None,
        help="put that OS's kcov compat headers (<sys/kcov.h>, <linux/kcov.h>) on the include path",
    )
    p.add_argument(
        "--static-runtime",
        action="store_true",
        help="link libkcovrt.a instead of libkcovrt.so (a private runtime instance)",
    )
    act = p.add_mutually_exclusive_group()
    act.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    act.add_argument("-v", "--verbose", action="store_true", help="print the command to stderr, then run it")
    q = p.add_argument_group("query (print and exit, like pybind11-config)")
    qx = q.add_mutually_exclusive_group()
    for name, what in (
        ("cflags", "compile flags: coverage flags and include directories"),
        ("ldflags", "link flags for the runtime"),
        ("includes", "include directories (-I...)"),
        ("libdir", "the directory holding libkcovrt"),
        ("cmakedir", "the directory holding KcovRuntimeConfig.cmake"),
    ):
        qx.add_argument(f"--{name}", dest="query", action="store_const", const=name, help=what)
    p.add_argument("--version", action="store_true", help="print the kcov version and exit")
    return p


def _split_own_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split argv into kcov-build's options and the wrapped command.

    Parsing stops at '--' or at the first argument that is not an option, so
    `kcov-build clang -c x.c` needs no '--' and clang's own options are never
    mistaken for ours.
    """
    own: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return own, list(argv[i + 1 :])
        if not a.startswith("-") or a == "-":
            break
        own.append(a)
        if a in _OWN_VALUE_OPTS and i + 1 < len(argv):
            own.append(argv[i + 1])
            i += 1
        i += 1
    return own, list(argv[i:])


# --- Classifying a compiler command line ----------------------------------

# Languages the compilers can instrument (by -x name and by file suffix).
_SOURCE_LANGS = frozenset(
    {
        "c", "c++", "objective-c", "objective-c++", "cpp-output", "c++-cpp-output",
        "objective-c-cpp-output", "objective-c++-cpp-output", "cuda", "hip",
    }
)
_SOURCE_SUFFIXES = frozenset(
    {".c", ".i", ".cc", ".cp", ".cxx", ".cpp", ".c++", ".C", ".CPP", ".ii", ".m", ".mi", ".mm", ".M", ".mii"}
)
# Options whose value is the next argument (gcc and clang drivers).
_SEPARATE_VALUE_OPTS = frozenset(
    {
        "-o", "-x", "-I", "-D", "-U", "-L", "-l", "-include", "-imacros", "-isystem", "-iquote",
        "-idirafter", "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "--sysroot",
        "-MF", "-MT", "-MQ", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xclang", "-mllvm",
        "-T", "-u", "-z", "-e", "-target", "-arch", "-aux-info", "-dumpbase", "-dumpdir",
        "-B", "-G", "-specs", "-Xopenmp-target", "--param", "-Xcuda-ptxas", "-Xcuda-fatbinary",
        "--serialize-diagnostics", "-ivfsoverlay", "-gcc-toolchain", "--gcc-toolchain",
    }
)
# Any of these means "no object code is produced from sources, nothing is linked".
_INFO_OPTS = ("--version", "-dumpversion", "-dumpfullversion", "-dumpmachine", "-dumpspecs", "--help", "-###")


@dataclass
class Classification:
    compiles: bool = False
    links: bool = False
    inputs: list[str] = field(default_factory=list)


def _expand_response_files(args: Sequence[str], depth: int = 0) -> list[str]:
    """Inline @file arguments, for classification only (the command is unchanged)."""
    out: list[str] = []
    for a in args:
        if a.startswith("@") and len(a) > 1 and depth < 8:
            try:
                words = shlex.split(Path(a[1:]).read_text())
            except (OSError, UnicodeDecodeError, ValueError):
                out.append(a)  # the compiler will complain about it, not us
                continue
            out.extend(_expand_response_files(words, depth + 1))
        else:
            out.append(a)
    return out


def classify(args: Sequence[str]) -> Classification:
    """Work out whether the compiler arguments compile, link, or both."""
    args = _expand_response_files(args)
    c = Classification()
    stop_before_link = False
    preprocess_only = False
    dep_only = False
    lang: str | None = None
    info = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in _SEPARATE_VALUE_OPTS:
            value = args[i + 1] if i + 1 < len(args) else ""
            if a == "-x":
                lang = None if value == "none" else value
            i += 2
            continue
        if a == "-" or not a.startswith("-"):
            c.inputs.append(a)
            if lang is not None:
                c.compiles |= lang in _SOURCE_LANGS
            else:
                c.compiles |= Path(a).suffix in _SOURCE_SUFFIXES
        elif a.startswith("-x") and len(a) > 2:
            lang = None if a[2:] == "none" else a[2:]
        elif a in ("-c", "-S", "-fsyntax-only"):
            stop_before_link = True
        elif a == "-E":
            preprocess_only = True
        elif a in ("-M", "-MM"):
            dep_only = True  # implies -E
        elif a.startswith("-print-") or a in _INFO_OPTS:
            info = True
        i += 1
    if preprocess_only or dep_only or info:
        c.compiles = False
        c.links = False
        return c
    c.links = not stop_before_link and bool(c.inputs)
    return c


# --- Building the command -------------------------------------------------


def coverage_flags(mode: str) -> list[str]:
    return [f"-fsanitize-coverage={MODES[mode]}"]


def include_flags(paths: RuntimePaths, abi: str | None) -> list[str]:
    flags = [f"-I{paths.include_dir}"]
    if abi is not None:
        flags.insert(0, f"-I{paths.compat_dir / abi}")
    return flags


def link_flags(paths: RuntimePaths, static: bool) -> list[str]:
    if static:
        # Appended after the user's inputs, so the archive resolves their
        # references to the callbacks.
        return [str(paths.static_lib), "-lpthread"]
    # --no-as-needed: a DSO whose only references to the runtime are weak or
    # come from objects linked later must still record DT_NEEDED, or the
    # callbacks bind to nothing at run time.
    return [
        f"-L{paths.lib_dir}",
        "-Wl,--push-state,--no-as-needed",
        "-lkcovrt",
        "-Wl,--pop-state",
        f"-Wl,-rpath,{paths.lib_dir}",
    ]


def _resolve(cc: str) -> str | None:
    if os.sep in cc:
        return cc if os.path.isfile(cc) and os.access(cc, os.X_OK) else None
    return shutil.which(cc)


@dataclass(frozen=True)
class Compiler:
    family: str  # "clang", "gcc" or "other"
    version: tuple[int, ...] = ()


def identify(cc: str) -> Compiler:
    """Which compiler cc is: by name when that says, else by asking it."""
    base = os.path.basename(cc)
    if "clang" in base:
        return Compiler("clang")
    try:
        out = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return Compiler("other")
    if "clang" in out.lower():
        return Compiler("clang")
    if "free software foundation" not in out.lower() and "gcc" not in base and "g++" not in base:
        return Compiler("other")
    # The first line of gcc --version carries a vendor string that may hold
    # other numbers; -dumpfullversion is exact (GCC >= 7, older ignore it).
    version: tuple[int, ...] = ()
    try:
        v = subprocess.run(
            [cc, "-dumpfullversion", "-dumpversion"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        v = ""
    if re.fullmatch(r"\d+(\.\d+)*", v):
        version = tuple(int(x) for x in v.split("."))
    return Compiler("gcc", version)


def build_command(
    cmd: Sequence[str],
    *,
    mode: str,
    abi: str | None,
    static: bool,
    paths: RuntimePaths,
    compiler: Compiler | None = None,
) -> list[str]:
    """The wrapped command with coverage flags and the runtime added."""
    cc, args = cmd[0], list(cmd[1:])
    c = classify(args)
    front: list[str] = []
    back: list[str] = []
    if c.compiles:
        # In front, so the user's own -fno-sanitize-coverage=... still wins.
        front += coverage_flags(mode)
    if abi is not None and (c.compiles or not c.links):
        # Also for -E/-M: the preprocessor must find the same headers.
        front.append(f"-I{paths.compat_dir / abi}")
    if c.links:
        if c.compiles and (compiler or identify(cc)).family == "clang":
            # Seeing -fsanitize-coverage on a link, clang's driver links
            # libclang_rt.ubsan_standalone into executables, whole-archive.
            # Its weak no-op __sanitizer_cov_trace_cmp* would then be
            # defined in the executable itself and win over libkcovrt's,
            # silently losing every comparison record.
            back.append("-fno-sanitize-link-runtime")
        back += link_flags(paths, static)
    return [cc, *front, *args, *back]


def check_mode(compiler: Compiler, cc: str, mode: str) -> str | None:
    """An error message if the compiler cannot do what mode asks for."""
    if "cmp" in mode and compiler.family == "gcc" and compiler.version and compiler.version < (8,):
        v = ".".join(map(str, compiler.version))
        return (
            f"{cc} is GCC {v}, which has no -fsanitize-coverage=trace-cmp (GCC 8 added it); "
            "use --mode pc or a newer compiler"
        )
    return None


def _run(cmd: list[str]) -> int:
    try:
        proc = subprocess.Popen(cmd)
    except OSError as e:
        print(f"{PROG}: {cmd[0]}: {e.strerror}", file=sys.stderr)
        return 126
    # Like system(3): the terminal's ^C and ^\ reach the compiler too; let
    # it decide, and report how it ended instead of dying with a traceback.
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)}
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 128 - rc if rc < 0 else rc


def _query(name: str, opts: argparse.Namespace, paths: RuntimePaths) -> str:
    if name == "cflags":
        return shlex.join([*coverage_flags(opts.mode), *include_flags(paths, opts.abi)])
    if name == "ldflags":
        return shlex.join(link_flags(paths, opts.static_runtime))
    if name == "includes":
        return shlex.join(include_flags(paths, opts.abi))
    if name == "libdir":
        return str(paths.lib_dir)
    import kcov

    return str(kcov.get_cmake_dir())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    own, cmd = _split_own_args(argv)
    try:
        opts = _parser().parse_args(own)
    except UsageError as e:
        print(f"{PROG}: {e} (try '{PROG} --help')", file=sys.stderr)
        return EX_USAGE
    except SystemExit as e:  # --help
        return int(e.code or 0) if isinstance(e.code, int) else EX_OK
    try:
        paths = runtime_paths()
    except ImportError as e:
        print(f"{PROG}: the kcov runtime package is not importable ({e}); reinstall kcov", file=sys.stderr)
        return EX_UNAVAILABLE

    if opts.version:
        import kcov

        print(f"{PROG} {getattr(kcov, '__version__', 'unknown')}")
        return EX_OK
    if opts.query is not None:
        if cmd:
            print(f"{PROG}: --{opts.query} takes no command", file=sys.stderr)
            return EX_USAGE
        print(_query(opts.query, opts, paths))
        return EX_OK
    if not cmd:
        print(f"{PROG}: no compiler command given (usage: {PROG} [OPTIONS] [--] CC [ARGS...])", file=sys.stderr)
        return EX_USAGE

    cc = cmd[0]
    if _resolve(cc) is None:
        print(f"{PROG}: {cc}: command not found", file=sys.stderr)
        return EX_NOTFOUND
    kind = classify(cmd[1:])
    lib = paths.static_lib if opts.static_runtime else paths.shared_lib
    if kind.links and not lib.is_file():
        print(f"{PROG}: runtime not found at {lib}; reinstall kcov", file=sys.stderr)
        return EX_UNAVAILABLE
    compiler = identify(cc) if kind.compiles else Compiler("other")
    msg = check_mode(compiler, cc, opts.mode) if kind.compiles else None
    if msg is not None:
        print(f"{PROG}: {msg}", file=sys.stderr)
        return EX_USAGE
    new = build_command(
        cmd, mode=opts.mode, abi=opts.abi, static=opts.static_runtime, paths=paths, compiler=compiler
    )
    line = shlex.join(new)
    if opts.dry_run:
        print(line)
        return EX_OK
    if opts.verbose:
        print(line, file=sys.stderr)
    return _run(new)


if __name__ == "__main__":
    sys.exit(main())
