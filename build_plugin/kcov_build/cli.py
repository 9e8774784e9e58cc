"""kcov-build: build C and C++ code, or a whole build, with kcov coverage.

    kcov-build [OPTIONS] [--] CC [ARGS...]          one compiler call
    kcov-build [OPTIONS] -- BUILD COMMAND...        make, cmake, ninja, kbuild...
    kcov-build [OPTIONS] --cflags | --ldflags | --includes | --libdir | --cmakedir
    kcov-build config | kernel | inventory | check | pgo | stock-kernel ...   (see kcov-build NAME --help)

A call that compiles gets -fsanitize-coverage=... (with --sbcc, clang's
source-based coverage instead: -fprofile-instr-generate -fcoverage-mapping;
with --sbcc and --mode, both); a call that links (an executable or a
-shared object) gets the runtime, and with --sbcc our profile runtime
instead of compiler-rt's.  Preprocessing-only calls
(-E, -M, -MM) and queries are left alone.  A command whose name is not a
compiler's is a build: it runs with compiler wrappers in place (build.py),
each compile going through the same rewriting (wrap.py).

The runtime is linked as a shared library by default so that a process holds
exactly one runtime instance, shared by the Python extension, kcov-run's
preloaded device and every instrumented DSO.  --runtime static links
libkcovrt.a instead (a private instance, used through the kcovrt_* C API);
--runtime none links nothing (kernel code, or a build that provides its own).

kcov-build exits with the compiler's or the build's status, 128 + N if it
died on signal N.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from os import EX_OK, EX_UNAVAILABLE, EX_USAGE
from typing import Sequence

from kcov._base.errors import ArgumentParser, UsageError, say_error

from ._paths import RuntimePaths, runtime_paths
from ._util import run_foreground
from .capability import capability_error
from .flags import conflict as pgo_conflict
from .flags import (  # noqa: F401  (coverage_flags is part of the module's API)
    coverage_flags, include_flags, instrumentation_flags, link_flags, profile_link_flags,
)
from .settings import ABIS, MODES, RUNTIMES, Settings, SettingsError, absolute_glob, check_values, load_profile
from .toolchain import identify, resolve
from .wrap import (  # noqa: F401  (classify is part of the module's API)
    Classification, classify, ensure_state, has_list_rules, rewrite, rule_flags,
)

PROG = "kcov-build"

EX_NOTFOUND = 127  # the shell's "command not found"

# Options of kcov-build itself that take a value as the next argument.
_OWN_VALUE_OPTS = frozenset(
    {"--mode", "--abi", "--runtime", "--compiler", "--exclude-file", "--exclude-function",
     "--annotation", "--config", "--compdb", "--inventory", "--only-file", "--only-function", "--pgo-use"}
)


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        usage=(f"{PROG} [OPTIONS] [--] CC [ARGS...] | {PROG} [OPTIONS] -- BUILD COMMAND... | "
               f"{PROG} config|kernel|inventory|check|pgo|stock-kernel ..."),
        description=(
            "Run a compiler, or a whole build (make, cmake, ninja, kbuild), with kcov coverage "
            "instrumentation and the kcov runtime."
        ),
        epilog=(
            "Option parsing stops at '--' or the first non-option. A command named like a compiler "
            "(cc, gcc-12, clang-19, x86_64-linux-gnu-gcc...) is one compiler call; anything else is a build, "
            "run with cc/c++ wrappers in CC, CXX, make's CC=/CXX= and CMake's CMAKE_<LANG>_COMPILER. "
            "Subcommands: config (kernel configuration), kernel (whole Linux kernel), "
            "inventory (function inventory), check (functions the runtime would recurse into), "
            "pgo merge (raw profiles to a .profdata for --pgo-use), "
            "stock-kernel (the installed distribution kernel and its headers)."
        ),
    )
    p.add_argument("--mode", choices=sorted(MODES), default=None,
                   help="what to instrument: trace-pc, trace-cmp (implies pc), or both (default: pc,cmp)")
    p.add_argument("--sbcc", action="store_true", default=None,
                   help="source-based coverage (clang: -fprofile-instr-generate -fcoverage-mapping) with kcov's "
                   "profile runtime; programs write LLVM_PROFILE_FILE (default.profraw) at exit. "
                   "Without --mode, no SanitizerCoverage")
    p.add_argument("--pgo-generate", action="store_true",
                   help="instrument for profile-guided optimisation (clang -fprofile-generate, IR PGO with "
                   "value profiling) with kcov's profile runtime; runs write default_%%m.profraw. "
                   "Then: kcov-build pgo merge, kcov-build --pgo-use")
    p.add_argument("--pgo-use", metavar="FILE",
                   help="optimise with an indexed profile (clang -fprofile-instr-use=FILE), checked first "
                   "against the compiler; links no runtime unless --mode asks for coverage")
    p.add_argument("--abi", choices=ABIS, default=None,
                   help="put that OS's kcov compat headers (<sys/kcov.h>, <linux/kcov.h>) on the include path")
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="link libkcovrt.so (shared, default), libkcovrt.a (static) or nothing (none)")
    p.add_argument("--static-runtime", action="store_true", help="the same as --runtime static")
    p.add_argument("--compiler", metavar="CC",
                   help="the real compiler for a build: clang, clang-19, gcc-12, a path... (default: the newest clang)")
    p.add_argument("--exclude-file", metavar="GLOB", action="append", default=[],
                   help="build matching sources without coverage "
                        "(relative globs are anchored at the current directory)")
    p.add_argument("--exclude-function", metavar="PATTERN", action="append", default=[],
                   help="do not instrument matching functions (clang: ignorelist; gcc: the whole file defining one)")
    p.add_argument("--only-file", metavar="GLOB", action="append", default=[],
                   help="instrument only matching sources (the others are built without coverage)")
    p.add_argument("--only-function", metavar="PATTERN", action="append", default=[],
                   help="instrument only matching functions (clang allowlist; gcc cannot)")
    p.add_argument("--annotation", metavar="NAME", action="append", default=[],
                   help="a project macro or annotate() string marking functions not to instrument (needs libclang)")
    p.add_argument("--analyze", action="store_true",
                   help="parse each source with libclang to honour no-coverage attributes the compiler ignores")
    p.add_argument("--config", metavar="FILE", help="a kcov-build profile (TOML, see kernel_conf/profiles/)")
    p.add_argument("--compdb", metavar="FILE", help="after a build, write the compiles as a compile_commands.json")
    p.add_argument("--inventory", metavar="FILE", help="after a build, write the function inventory (JSON)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--dry-run", action="store_true", help="print what would be injected and run nothing")
    act.add_argument("-v", "--verbose", action="store_true", help="print what is injected into each call to stderr")
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


def _run(cmd: list[str]) -> int:
    return run_foreground(cmd, PROG)


def make_settings(opts: argparse.Namespace) -> Settings:
    """The profile (--config) first, then the command line on top."""
    prof = load_profile(opts.config) if opts.config else {}
    cwd = os.getcwd()
    runtime = opts.runtime or ("static" if opts.static_runtime else None) or prof.get("runtime", "shared")
    if opts.static_runtime and opts.runtime not in (None, "static"):
        raise UsageError(f"--static-runtime conflicts with --runtime {opts.runtime}")
    sbcc = bool(opts.sbcc or prof.get("sbcc", False))
    pgo_use = os.path.abspath(opts.pgo_use) if opts.pgo_use else None
    if (msg := pgo_conflict(sbcc, opts.pgo_generate, pgo_use)) is not None:
        raise UsageError(msg)
    profiling = sbcc or opts.pgo_generate or pgo_use is not None
    if pgo_use and not sbcc and not opts.pgo_generate and not (opts.mode or prof.get("mode")) and not opts.runtime:
        runtime = "none"  # an optimised build links nothing of kcov's
    s = Settings(
        mode=opts.mode or prof.get("mode", "pc,cmp"),
        sancov=not profiling or bool(opts.mode or prof.get("mode")),
        sbcc=sbcc,
        pgo_generate=bool(opts.pgo_generate),
        pgo_use=pgo_use,
        abi=opts.abi or prof.get("abi"),
        runtime=runtime,
        compiler=opts.compiler or prof.get("compiler"),
        exclude_files=[*prof.get("exclude-file", []), *(absolute_glob(g, cwd) for g in opts.exclude_file)],
        exclude_functions=[*prof.get("exclude-function", []), *opts.exclude_function],
        only_files=[*prof.get("only-file", []), *(absolute_glob(g, cwd) for g in opts.only_file)],
        only_functions=[*prof.get("only-function", []), *opts.only_function],
        annotations=[*prof.get("annotation", []), *opts.annotation],
        analyze=bool(opts.analyze or prof.get("analyze", False)),
        cflags=list(prof.get("cflags", [])),
    )
    check_values(s)
    return s


def _query(name: str, s: Settings, paths: RuntimePaths) -> str:
    if name == "cflags":
        flags = [*instrumentation_flags(s), *include_flags(paths, s.abi), *s.cflags]
        if has_list_rules(s) and s.sancov:
            flags += rule_flags(s, ensure_state(s))
        return shlex.join(flags)
    if name == "ldflags":
        if s.runtime == "none":
            return ""
        return shlex.join([*profile_link_flags(s, paths), *link_flags(paths, s.runtime == "static")])
    if name == "includes":
        return shlex.join(include_flags(paths, s.abi))
    if name == "libdir":
        return str(paths.lib_dir)
    import kcov

    return str(kcov.get_cmake_dir())


def _compile(cmd: list[str], s: Settings, paths: RuntimePaths, opts: argparse.Namespace) -> int:
    """One compiler call: kcov-build CC ARGS."""
    cc = cmd[0]
    if opts.compiler:
        raise UsageError(f"--compiler is for builds; here the compiler is {cc}")
    if resolve(cc) is None:
        print(f"{PROG}: {cc}: command not found", file=sys.stderr)
        return EX_NOTFOUND
    kind = classify(cmd[1:])
    lib = paths.static_lib if s.runtime == "static" else paths.shared_lib
    if kind.links and s.runtime != "none" and not lib.is_file():
        print(f"{PROG}: runtime not found at {lib}; reinstall kcov", file=sys.stderr)
        return EX_UNAVAILABLE
    if kind.links and s.runtime != "none" and (s.sbcc or s.pgo_generate) and not paths.profile_stub(None).is_file():
        print(f"{PROG}: profile runtime not found at {paths.profile_stub(None)}; reinstall kcov", file=sys.stderr)
        return EX_UNAVAILABLE
    s.cc = cc
    if kind.compiles or ((s.sbcc or s.pgo_generate) and kind.links):
        # A --sbcc link needs the version too: it picks the runtime's
        # per-image object for the compiler's raw profile format.
        comp = identify(cc)
        s.family, s.version = comp.family, comp.version
    if kind.compiles:
        msg = capability_error(s, cc)
        if msg is not None:
            print(f"{PROG}: {msg}", file=sys.stderr)
            return EX_USAGE
    needs_state = kind.compiles and (has_list_rules(s) or s.needs_analysis)
    state = ensure_state(s) if needs_state else None
    r = rewrite(cmd, s, paths, state=state)
    for n in r.notes:
        print(f"{PROG}: note: {n}", file=sys.stderr)
    lines = "\n".join(shlex.join(c) for c in r.commands())
    if opts.dry_run:
        for n in r.info:
            print(f"{PROG}: {n}", file=sys.stderr)
        print(lines)
        return EX_OK
    if opts.verbose:
        for n in r.info:
            print(f"{PROG}: {n}", file=sys.stderr)
        print(lines, file=sys.stderr)
    if r.pre:
        from .wrap import execute

        return execute(r)
    return _run(r.command)


# Subcommands, each a module with its own parser: kcov-build NAME ARGS...
SUBCOMMANDS = {
    "config": ("kconfig", "main"),
    "kernel": ("kernel", "main"),
    "inventory": ("analysis", "main_inventory"),
    "check": ("analysis", "main_check"),
    "pgo": ("pgo", "main"),
    "stock-kernel": ("distro", "main"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        mod, fn = SUBCOMMANDS[argv[0]]
        return int(getattr(importlib.import_module(f".{mod}", __package__), fn)(argv[1:]))
    own, cmd = _split_own_args(argv)
    try:
        opts = _parser().parse_args(own)
        s = make_settings(opts)
    except UsageError as e:
        print(f"{PROG}: {e} (try '{PROG} --help')", file=sys.stderr)
        return EX_USAGE
    except SettingsError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
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
        print(_query(opts.query, s, paths))
        return EX_OK
    if not cmd:
        print(
            f"{PROG}: no compiler command given (usage: {PROG} [OPTIONS] [--] CC [ARGS...] "
            f"or {PROG} [OPTIONS] -- BUILD COMMAND...)",
            file=sys.stderr,
        )
        return EX_USAGE

    from .build import looks_like_compiler, run_build
    from .errors import BuildError

    try:
        if looks_like_compiler(cmd[0]):
            if opts.compdb or opts.inventory:
                raise UsageError("--compdb and --inventory are for builds, not single compiler calls")
            return _compile(cmd, s, paths, opts)
        return run_build(
            cmd, s, paths, dry_run=opts.dry_run, verbose=opts.verbose,
            compdb=opts.compdb, inventory=opts.inventory,
        )
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EX_USAGE
    except BuildError as e:
        return say_error(PROG, e)
    except OSError as e:
        print(f"{PROG}: {e.filename or ''}: {e.strerror}".replace(": :", ":"), file=sys.stderr)
        return EX_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
