"""Source analysis for kcov-build: function inventory, ignorelists, runtime check.

Reports need a denominator ("functions never reached"), and exclusions need to
know which functions opt out of coverage.  Both come from parsing the compiled
sources with libclang (PyPI ``libclang``), one translation unit per entry of a
``compile_commands.json`` or of a wrapped compiler command.

Why the attribute detection is not just "look at the attribute cursors":

* libclang exposes ``annotate`` as ANNOTATE_ATTR, but ``no_sanitize`` and
  ``disable_sanitizer_instrumentation`` only as UNEXPOSED_ATTR without a
  spelling, and gcc's ``no_sanitize_coverage`` (spec §3.3) is an unknown
  attribute to clang, so it leaves no cursor at all.
* Projects hide the attribute behind macros (the kernel's ``noinstr`` and
  ``__no_sanitize_coverage``, our ``KCOV_NO_COVERAGE``), and a macro may even
  expand to nothing for the compiler libclang pretends to be.

So each definition's declaration tokens (what precedes the body, scanned in
the file as written) are read too, with every macro defined in the TU resolved
to the attribute spellings it expands to, and project annotation names matched
by name.  Attributes inherited from an earlier declaration are found through
the attribute cursors (clang copies them onto the definition) and through the
canonical declaration's tokens.

``kcov-build check`` answers a different question: which instrumented project
functions would the runtime call while it records?  Those recurse.  It walks
the runtime's disassembly (``objdump -dr``) from every ``__sanitizer_cov_*``
entry point, follows direct calls and tail calls inside the binary, and
collects the calls that leave it (undefined or PLT symbols).  Calls through
function pointers cannot be followed statically; the hosted runtime's hot path
makes none.
"""
from __future__ import annotations

import argparse
import os
import sys
from os import EX_IOERR, EX_NOINPUT, EX_OK, EX_UNAVAILABLE, EX_USAGE
from pathlib import Path
from typing import Any, Sequence

from kcov import inventory as inv
from kcov._base.errors import ArgumentParser, UsageError, say_error
from kcov.inventory import Function

from ._util import write_atomic
from .callgraph import check_functions, runtime_callees
from .compiledb import AnalysisError, CompileEntry, entries_from_command, load_compile_commands
from .sources import (DEFAULT_ANNOTATIONS, functions_in_tu, ignorelist_text,
                      inventory, read_inventory, write_inventory)

__all__ = [
    "AnalysisError",
    "CompileEntry",
    "Function",
    "DEFAULT_ANNOTATIONS",
    "functions_in_tu",
    "load_compile_commands",
    "inventory",
    "write_inventory",
    "read_inventory",
    "ignorelist_text",
    "runtime_callees",
    "check_functions",
    "main_inventory",
    "main_check",
]

PROG = "kcov-build"
INVENTORY_VERSION = inv.VERSION
EX_FOUND = 1  # kcov-build check: functions that would recurse


# --------------------------------------------------------------------------
# CLIs


def _split_dashdash(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


def _entries(opts: argparse.Namespace, cmd: list[str] | None) -> list[CompileEntry]:
    if opts.p is not None:
        return load_compile_commands(opts.p)
    assert cmd is not None
    if not cmd:
        raise AnalysisError("no compiler command after '--'", EX_USAGE)
    return entries_from_command(cmd)


def _run_cli(fn: Any, argv: Sequence[str]) -> int:
    try:
        return int(fn(argv))
    except UsageError as e:
        print(f"{PROG}: {e} (try '{PROG} {fn.__name__.removeprefix('_main_')} --help')", file=sys.stderr)
        return EX_USAGE
    except AnalysisError as e:
        return say_error(PROG, e)
    except BrokenPipeError:
        # The reader (head, less) has seen enough; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except OSError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return EX_NOINPUT if isinstance(e, FileNotFoundError) else EX_IOERR
    except KeyboardInterrupt:
        return 130


def main_inventory(argv: Sequence[str]) -> int:
    """kcov-build inventory (-p compile_commands.json | -- CC ARGS...) [-o OUT] [--annotation NAME]"""
    return _run_cli(_main_inventory, argv)


def _main_inventory(argv: Sequence[str]) -> int:
    own, cmd = _split_dashdash(argv)
    ap = ArgumentParser(prog=f"{PROG} inventory", description="List every function defined in the compiled sources.")
    ap.add_argument("-p", metavar="COMPILE_COMMANDS", help="compile_commands.json (or its directory)")
    ap.add_argument("-o", metavar="OUT.json", help="write the inventory as JSON (default: print a table)")
    ap.add_argument("--annotation", action="append", default=[], metavar="NAME",
                    help="extra project no-coverage annotation (macro or annotate string)")
    ap.add_argument("--ignorelist", metavar="FILE", help="also write a SanitizerCoverage ignorelist")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                    help="parse N files at a time (default: number of CPUs)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    try:
        opts = ap.parse_args(own)
    except SystemExit as e:  # --help
        return int(e.code or 0) if isinstance(e.code, int) else EX_OK
    if (opts.p is None) == (cmd is None):
        raise UsageError("give either -p compile_commands.json or -- CC ARGS...")
    entries = _entries(opts, cmd)
    errors: list[str] = []
    fns = inventory(entries, annotations=opts.annotation, progress=len(entries) > 1 and not opts.quiet,
                    errors=errors, jobs=opts.jobs)
    for err in errors[:20]:
        print(f"{PROG}: warning: {err}", file=sys.stderr)
    if len(errors) > 20:
        print(f"{PROG}: warning: {len(errors) - 20} more files with errors", file=sys.stderr)
    if opts.o is not None:
        write_inventory(fns, opts.o)
    else:
        for f in fns:
            tag = f"  [no coverage: {f.reason}]" if f.no_coverage else ""
            print(f"{f.file}:{f.start_line}-{f.end_line}\t{f.name}{tag}")
    if opts.ignorelist is not None:
        write_atomic(Path(opts.ignorelist), ignorelist_text(fns))
    excluded = sum(f.no_coverage for f in fns)
    print(f"{PROG}: {len(fns)} functions in {len(entries)} file(s), {excluded} opted out of coverage",
          file=sys.stderr)
    return EX_OK


def main_check(argv: Sequence[str]) -> int:
    """kcov-build check -p compile_commands.json [--runtime FILE] [--annotation NAME]"""
    return _run_cli(_main_check, argv)


def _main_check(argv: Sequence[str]) -> int:
    ap = ArgumentParser(prog=f"{PROG} check",
                        description="Report instrumented functions the coverage runtime calls while recording.")
    ap.add_argument("-p", metavar="COMPILE_COMMANDS", required=True, help="compile_commands.json (or its directory)")
    ap.add_argument("--runtime", action="append", default=[], metavar="LIB_OR_OBJ",
                    help="runtime to disassemble (.so, .a, .o, .ko); default: the installed libkcovrt.so")
    ap.add_argument("--annotation", action="append", default=[], metavar="NAME")
    ap.add_argument("--exclude-function", action="append", default=[], metavar="PATTERN")
    ap.add_argument("--exclude-file", action="append", default=[], metavar="GLOB")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                    help="parse N files at a time (default: number of CPUs)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    try:
        opts = ap.parse_args(list(argv))
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else EX_OK
    runtimes = opts.runtime or [_default_runtime()]
    callees: dict[str, tuple[str, list[str]]] = {}
    for rt in runtimes:
        for k, v in runtime_callees(rt).items():
            callees.setdefault(k, v)
    entries = load_compile_commands(opts.p)
    fns = inventory(entries, annotations=opts.annotation, progress=len(entries) > 1 and not opts.quiet,
                    jobs=opts.jobs)
    findings = check_functions(fns, callees, fun_patterns=opts.exclude_function, src_globs=opts.exclude_file)
    for f in findings:
        print(f.message())
    print(f"{PROG}: check: {len(fns)} functions, {len(callees)} runtime callees, "
          f"{len(findings)} would recurse", file=sys.stderr)
    return EX_FOUND if findings else EX_OK


def _default_runtime() -> str:
    try:
        import kcov
    except ImportError as e:
        raise AnalysisError(f"the kcov package is not importable ({e}); give --runtime", EX_UNAVAILABLE) from None
    lib = Path(kcov.get_lib_dir()) / "libkcovrt.so"
    if not lib.is_file():
        raise AnalysisError(f"runtime not found at {lib}; give --runtime", EX_UNAVAILABLE)
    return str(lib)

