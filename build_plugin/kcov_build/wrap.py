"""Rewriting one compiler call: the heart of kcov-build.

Both ways of using kcov-build end here: `kcov-build CC ARGS` rewrites one
call, and `kcov-build -- make` puts small `cc`/`c++` scripts first in the
build's view, each of which runs `python -m kcov_build.wrap DIR cc ARGS`
for every compile and link the build makes.

A call that compiles gets -fsanitize-coverage=... unless a rule excludes its
source; a hosted call that links gets the runtime.  Kernel compiles (they
define __KERNEL__) get coverage only: kbuild links with ld, and the callbacks
come from the kernel or from our module.  Preprocessing and queries pass
through untouched, so the wrapper can sit in CC for a whole build, including
configure checks and kbuild's compiler probes.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Sequence

from ._paths import RuntimePaths
from ._util import exit_status, terminal_signals_ignored, write_atomic
from .flags import instrumentation_flags, link_flags, profile_link_flags
from .settings import Settings

PROG = "kcov-build"
ENV_VERBOSE = "KCOV_BUILD_VERBOSE"
ENV_LOG = "KCOV_BUILD_LOG"

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
    sources: list[str] = field(default_factory=list)  # the inputs that are compiled
    # Index of each source in the arguments, or None when they cannot be
    # split apart (a response file or -x is in play).
    positions: list[int] | None = None
    stop_before_link: bool = False


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
    expanded = _expand_response_files(args)
    splittable = len(expanded) == len(args) and not any(a.startswith("-x") for a in args)
    args = expanded
    c = Classification()
    positions: list[int] = []
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
            is_source = lang in _SOURCE_LANGS if lang is not None else Path(a).suffix in _SOURCE_SUFFIXES
            if is_source:
                c.compiles = True
                c.sources.append(a)
                positions.append(i)
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
    c.stop_before_link = stop_before_link
    c.positions = positions if splittable else None
    return c


# --- Building the command -------------------------------------------------


def is_kernel_compile(args: Sequence[str]) -> bool:
    return any(a == "-D__KERNEL__" or a.startswith("-D__KERNEL__=") for a in args)


# A definition (not a call or a prototype) of a SanitizerCoverage callback:
# such a file is a coverage runtime, and instrumenting it would recurse.
_DEFINES_CALLBACK = re.compile(rb"\b__sanitizer_cov_\w+\s*\([^;{)]*\)\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?\{", re.S)


def defines_callbacks(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            text = f.read(4 << 20)
    except OSError:
        return False
    return _DEFINES_CALLBACK.search(text) is not None


def ignorelist_text(s: Settings) -> str:
    """The static part of clang's ignorelist: the user's rules."""
    lines = ["# kcov-build: functions and files that must not be instrumented"]
    lines += [f"src:{g}" for g in s.exclude_files]
    lines += [f"fun:{p}" for p in s.exclude_functions]
    return "\n".join(lines) + "\n"


def allowlist_text(s: Settings) -> str:
    """clang's allowlist: a function is instrumented only if it matches both
    a src: and a fun: line.  Files are chosen by the wrapper (--only-file),
    so every src: matches here."""
    lines = ["# kcov-build: only these functions are instrumented", "src:*"]
    lines += [f"fun:{p}" for p in s.only_functions]
    return "\n".join(lines) + "\n"


def state_dir(s: Settings, python: str | None = None) -> Path:
    """Where the wrappers and ignorelists for these settings live.

    Keyed by a hash of the settings and of the interpreter the wrappers run
    (`python`, default this one), so a CMake cache or a kbuild tree that
    remembers the wrapper path keeps working in later runs, two builds with
    different rules never share files, and a wrapper never names another
    virtual environment's interpreter, which may since have been deleted.
    """
    root = os.environ.get("KCOV_BUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "kcov-build"
    )
    keyed = {"settings": s.to_json(), "python": python or sys.executable}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / f"wrap-{key}"


def ensure_state(s: Settings, python: str | None = None) -> Path:
    """Create (or reuse) the state directory: settings, ignorelist, wrappers."""
    py = python or sys.executable
    d = state_dir(s, py)
    settings = json.dumps(s.to_json(), indent=1, sort_keys=True) + "\n"
    if not (d / "settings.json").is_file() or (d / "settings.json").read_text() != settings:
        write_atomic(d / "ignorelist.txt", ignorelist_text(s))
        write_atomic(d / "allowlist.txt", allowlist_text(s))
        for name in ("cc", "c++"):
            write_atomic(
                d / name,
                "#!/bin/sh\n# kcov-build compiler wrapper (generated; see kcov-build --help)\n"
                f"exec {shlex.quote(py)} -I -m kcov_build.wrap {shlex.quote(str(d))} {name} \"$@\"\n",
                executable=True,
            )
        write_atomic(d / "settings.json", settings)  # last: it marks the directory complete
    return d


@dataclass
class Rewrite:
    command: list[str]
    notes: list[str] = field(default_factory=list)  # always shown
    info: list[str] = field(default_factory=list)  # shown with --verbose
    # Compiles to run before command (sources excluded from a call that
    # also compiles instrumented ones), and the objects they leave behind.
    pre: list[list[str]] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)

    def commands(self) -> list[list[str]]:
        return [*self.pre, self.command]


# Arguments that only matter to the linker: left out of a compile-only call
# split off a compile-and-link call, where they would draw warnings.
_LINK_ONLY_PREFIXES = ("-l", "-L", "-Wl,")
_LINK_ONLY = frozenset({"-shared", "-static", "-pie", "-no-pie", "-rdynamic", "-static-libgcc", "-pthread"})


def _strip_for_compile(args: Sequence[str], drop: set[int]) -> list[str]:
    """args without the inputs in drop, -o and link-only arguments."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if i in drop:
            i += 1
            continue
        if a in ("-o", "-Xlinker", "-T", "-u", "-z", "-e", "-l", "-L"):
            i += 2
            continue
        if a in _LINK_ONLY or a.startswith(_LINK_ONLY_PREFIXES):
            i += 1
            continue
        out.append(a)
        i += 1
    return out


def has_list_rules(s: Settings) -> bool:
    """Whether the rules need clang's ignorelist or allowlist."""
    return bool(s.exclude_files or s.exclude_functions or s.only_functions)


def rule_flags(s: Settings, state: Path) -> list[str]:
    """clang's -fsanitize-coverage-ignorelist/-allowlist for the user's rules."""
    flags: list[str] = []
    if s.exclude_files or s.exclude_functions:
        flags.append(f"-fsanitize-coverage-ignorelist={state / 'ignorelist.txt'}")
    if s.only_functions:
        flags.append(f"-fsanitize-coverage-allowlist={state / 'allowlist.txt'}")
    return flags


def _gcc_honours(reason: str | None, s: Settings) -> bool:
    """Whether gcc itself keeps coverage out of a function marked so."""
    if s.family != "gcc" or s.version < (12,):
        return False  # no_sanitize_coverage came with GCC 12
    # kcov/noinstr.h (included by kcovrt.h) spells KCOV_NO_COVERAGE as no_sanitize_coverage for gcc >= 12.
    return reason in ("no_sanitize_coverage", "KCOV_NO_COVERAGE")


def _excluded_by_analysis(src: str, cmd: Sequence[str], cwd: str, s: Settings) -> str | None:
    """gcc: a reason to build src without coverage, found by parsing it."""
    try:
        from . import analysis
    except ImportError as e:  # libclang missing
        return f"{src}: built without coverage to be safe: source analysis is unavailable ({e})"
    try:
        funcs = analysis.functions_in_tu(
            analysis.CompileEntry(directory=cwd, file=src, arguments=list(cmd)),
            annotations=s.all_annotations,
        )
    except analysis.AnalysisError as e:
        return f"{src} could not be analysed ({e}); built without coverage to be safe"
    real = os.path.realpath(src)
    for f in funcs:
        if os.path.realpath(f.file) != real:
            continue
        for p in s.exclude_functions:
            if fnmatch.fnmatchcase(f.name, p):
                return (
                    f"{src}: built without coverage: it defines {f.name} (--exclude-function {p}), "
                    "and gcc cannot exclude single functions"
                )
        if f.no_coverage and not _gcc_honours(f.reason, s):
            return (
                f"{src}: built without coverage: {f.name} carries {f.reason}, which gcc ignores, "
                "and gcc cannot exclude single functions"
            )
    return None


def _tu_ignorelist(src: str, cmd: Sequence[str], cwd: str, s: Settings, state: Path) -> tuple[str | None, str | None]:
    """clang: an ignorelist of this TU's annotated functions (path, warning)."""
    try:
        from . import analysis
    except ImportError as e:  # libclang missing
        return None, f"source analysis is unavailable ({e}); only the compiler's own attributes apply to {src}"
    try:
        funcs = analysis.functions_in_tu(
            analysis.CompileEntry(directory=cwd, file=src, arguments=list(cmd)),
            annotations=s.all_annotations,
        )
    except analysis.AnalysisError as e:
        return None, f"{src} could not be analysed ({e}); only the compiler's own attributes apply"
    marked = [f for f in funcs if f.no_coverage]
    if not marked:
        return None, None
    text = analysis.ignorelist_text(marked)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = state / "tu" / f"{key}.txt"
    if not path.is_file():
        write_atomic(path, text)
    return str(path), None


def _exclusion(src: str, cmd: Sequence[str], cwd: str, s: Settings) -> str | None:
    """Why src must be built without coverage ('info:' prefix: only with -v)."""
    if src == "-":
        return None
    full = os.path.normpath(os.path.join(cwd, src))
    if defines_callbacks(full):
        return (f"{src}: built without coverage: it defines SanitizerCoverage callbacks "
                "(a runtime is never instrumented)")
    g = next((g for g in s.exclude_files if fnmatch.fnmatchcase(full, g)), None)
    if g is not None:
        return f"info:{src}: built without coverage (--exclude-file {g})"
    if s.only_files and not any(fnmatch.fnmatchcase(full, g) for g in s.only_files):
        return f"info:{src}: built without coverage (not matched by --only-file)"
    if s.family != "clang" and s.needs_analysis:
        return _excluded_by_analysis(src, cmd, cwd, s)
    return None


def rewrite(
    cmd: Sequence[str],
    s: Settings,
    paths: RuntimePaths,
    *,
    cwd: str | None = None,
    state: Path | None = None,
) -> Rewrite:
    """The wrapped command: coverage flags, exclusions and the runtime added."""
    cwd = cwd or os.getcwd()
    cc, args = cmd[0], list(cmd[1:])
    c = classify(args)
    kernel = is_kernel_compile(args)
    r = Rewrite([])
    front: list[str] = []
    back: list[str] = []
    instrumented = False
    abi_front: list[str] = []
    if s.abi is not None and not kernel and (c.compiles or not c.links):
        # Also for -E/-M: the preprocessor must find the same headers.
        abi_front.append(f"-I{paths.compat_dir / s.abi}")
    excluded: list[int] = []  # indexes into c.sources
    if c.compiles:
        for k, src in enumerate(c.sources):
            reason = _exclusion(src, cmd, cwd, s)
            if reason is not None:
                excluded.append(k)
                (r.info if reason.startswith("info:") else r.notes).append(reason.removeprefix("info:"))
        if excluded and len(excluded) < len(c.sources) and c.positions is None:
            r.notes.append(
                "a response file or -x hides which argument is which source; "
                "the whole call is built without coverage"
            )
            excluded = list(range(len(c.sources)))
        if len(excluded) < len(c.sources):
            instrumented = True
            front += instrumentation_flags(s)
            if s.family == "clang" and state is not None and s.sancov:
                front += rule_flags(s, state)
                if s.needs_analysis:
                    for k, src in enumerate(c.sources):
                        if src == "-" or k in excluded:
                            continue
                        path, warn = _tu_ignorelist(src, cmd, cwd, s, state)
                        if warn:
                            r.notes.append(warn)
                        if path:
                            front.append(f"-fsanitize-coverage-ignorelist={path}")
            front += s.cflags
    if instrumented and excluded and c.positions is not None:
        # Some sources of this call are excluded, others not: compile the
        # excluded ones in a call of their own, without coverage.
        ex_pos = {c.positions[k] for k in excluded}
        in_pos = {p for k, p in enumerate(c.positions) if k not in excluded}
        if c.stop_before_link:
            r.pre.append([cc, *abi_front, *[a for i, a in enumerate(args) if i not in in_pos]])
            args = [a for i, a in enumerate(args) if i not in ex_pos]
        else:
            base = _strip_for_compile(args, set(c.positions) | {
                i for i, a in enumerate(args) if (a == "-" or not a.startswith("-")) and i not in ex_pos
                and (i == 0 or args[i - 1] not in _SEPARATE_VALUE_OPTS)
            })
            tmp = tempfile.gettempdir()
            objs: dict[int, str] = {}
            for n, p in enumerate(sorted(ex_pos)):
                obj = os.path.join(tmp, f"kcov-build-{os.getpid()}-{n}.o")
                objs[p] = obj
                r.pre.append([cc, *abi_front, *base, "-c", args[p], "-o", obj])
                r.temps.append(obj)
            args = [objs.get(i, a) for i, a in enumerate(args)]
    front += abi_front
    if c.links and not kernel and s.runtime != "none":
        if instrumented and s.family == "clang" and s.sancov:
            # Seeing -fsanitize-coverage on a link, clang's driver links
            # libclang_rt.ubsan_standalone into executables, whole-archive.
            # Its weak no-op __sanitizer_cov_trace_cmp* would then be
            # defined in the executable itself and win over libkcovrt's,
            # silently losing every comparison record.
            back.append("-fno-sanitize-link-runtime")
        back += profile_link_flags(s, paths)
        back += link_flags(paths, s.runtime == "static")
    r.command = [cc, *front, *args, *back]
    return r


def log_compile(cmd: Sequence[str], cwd: str) -> None:
    """Append this compile to the build's log (one JSON line per source).

    O_APPEND writes of one line are not interleaved by parallel compiles.
    """
    path = os.environ.get(ENV_LOG)
    if not path:
        return
    c = classify(cmd[1:])
    if not c.compiles:
        return
    lines = "".join(
        json.dumps({"directory": cwd, "file": src, "arguments": list(cmd)}) + "\n"
        for src in c.sources if src != "-"
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _die(msg: str, status: int = 69) -> NoReturn:
    print(f"{PROG}: {msg}", file=sys.stderr)
    raise SystemExit(status)


def wrapper_main(argv: Sequence[str]) -> NoReturn:
    """Entry of the generated cc/c++ scripts: DIR cc|c++ ARGS..."""
    if len(argv) < 2:
        _die("usage: python -m kcov_build.wrap DIR cc|c++ ARGS...", os.EX_USAGE)
    state, which, args = Path(argv[0]), argv[1], list(argv[2:])
    try:
        s = Settings.from_json(json.loads((state / "settings.json").read_text()))
    except (OSError, ValueError, TypeError) as e:
        _die(f"wrapper state {state} is unreadable ({e}); run the build through kcov-build again")
    real = s.cc if which == "cc" else s.cxx
    if real is None:
        _die(f"no C++ compiler goes with {s.cc}; pass --compiler")
    from ._paths import runtime_paths

    cwd = os.getcwd()
    r = rewrite([real, *args], s, runtime_paths(), cwd=cwd, state=state)
    log_compile([real, *args], cwd)
    for n in r.notes:
        print(f"{PROG}: note: {n}", file=sys.stderr)
    if os.environ.get(ENV_VERBOSE):
        for n in r.info:
            print(f"{PROG}: {n}", file=sys.stderr)
        for c in r.commands():
            print(f"{PROG}: {shlex.join(c)}", file=sys.stderr)
    sys.stderr.flush()
    if not r.pre:
        try:
            os.execv(real, r.command)
        except OSError as e:
            _die(f"{real}: {e.strerror}", 126)
    raise SystemExit(execute(r))


def execute(r: Rewrite) -> int:
    """Run the commands of r in order; the first failure's status is returned."""
    import subprocess

    try:
        with terminal_signals_ignored():
            for cmd in r.commands():
                try:
                    rc = subprocess.call(cmd)
                except OSError as e:
                    print(f"{PROG}: {cmd[0]}: {e.strerror}", file=sys.stderr)
                    return 126
                if rc != 0:
                    return exit_status(rc)
        return 0
    finally:
        for t in r.temps:
            try:
                os.unlink(t)
            except OSError:
                pass


if __name__ == "__main__":
    wrapper_main(sys.argv[1:])
