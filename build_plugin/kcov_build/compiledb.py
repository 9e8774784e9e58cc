"""Compile commands for the source analysis: ``compile_commands.json`` and
wrapped compiler commands, as the argument lists libclang parses them with."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from os import EX_DATAERR, EX_NOINPUT, EX_USAGE
from pathlib import Path
from typing import Any, Sequence

from kcov._base.errors import ToolkitError

class AnalysisError(ToolkitError):
    """Bad input for the analysis; `exit_status` is the sysexits code for CLIs."""

    exit_status = EX_DATAERR


@dataclass(frozen=True)
class CompileEntry:
    directory: str
    file: str
    arguments: list[str] = field(hash=False)


# --------------------------------------------------------------------------
# compile_commands.json


def load_compile_commands(path: str | Path) -> list[CompileEntry]:
    """Entries of a compile_commands.json (or of the one in directory PATH)."""
    p = Path(path)
    if p.is_dir():
        p = p / "compile_commands.json"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnalysisError(f"{p}: no such file", EX_NOINPUT) from None
    except (OSError, UnicodeDecodeError) as e:
        raise AnalysisError(f"{p}: cannot read: {e}", EX_NOINPUT) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise AnalysisError(f"{p}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    if not isinstance(data, list):
        raise AnalysisError(f"{p}: expected a JSON array of compile commands")
    return [_entry_from_json(p, i, item) for i, item in enumerate(data)]


def _entry_from_json(path: Path, index: int, item: Any) -> CompileEntry:
    where = f"{path}: entry {index}"
    if not isinstance(item, dict):
        raise AnalysisError(f"{where}: expected an object")
    directory, file = item.get("directory"), item.get("file")
    if not isinstance(directory, str) or not isinstance(file, str):
        raise AnalysisError(f"{where}: 'directory' and 'file' must be strings")
    args = item.get("arguments")
    if args is None:
        command = item.get("command")
        if not isinstance(command, str):
            raise AnalysisError(f"{where}: needs 'arguments' or 'command'")
        import shlex

        try:
            args = shlex.split(command)
        except ValueError as e:
            raise AnalysisError(f"{where}: cannot split 'command': {e}") from None
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise AnalysisError(f"{where}: 'arguments' must be a non-empty list of strings")
    return CompileEntry(directory, file, list(args))


SOURCE_SUFFIXES = (".c", ".i", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".C", ".ii", ".m", ".mm")


def entries_from_command(argv: Sequence[str], directory: str | None = None) -> list[CompileEntry]:
    """One entry per source file of a compiler command line."""
    directory = directory or os.getcwd()
    sources = [a for a in _positionals(list(argv[1:])) if a.endswith(SOURCE_SUFFIXES)]
    if not sources:
        raise AnalysisError(f"no C source file in the command: {' '.join(argv)}", EX_USAGE)
    return [CompileEntry(directory, s, list(argv)) for s in sources]


# --------------------------------------------------------------------------
# Turning a compiler command into libclang arguments

# Options whose value is the next argument.
_TAKES_VALUE = {
    "-o", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
    "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "--sysroot", "-x",
    "-MF", "-MT", "-MQ", "-target", "-arch", "--param", "-Xclang", "-Xpreprocessor",
    "-Xassembler", "-Xlinker", "-L", "-T", "-z", "-u", "-e", "-aux-info", "-main-file-name",
    "-resource-dir", "-working-directory",
}
# Dropped with their value: outputs, dependency files, and what only the
# assembler, linker or a plugin sees.
_DROP_WITH_VALUE = {"-o", "-MF", "-MT", "-MQ", "-Xassembler", "-Xlinker", "-Xclang", "-L", "-T",
                    "-z", "-u", "-e", "-aux-info", "--param", "-main-file-name"}
_DROP_EXACT = {"-c", "-S", "-E", "-M", "-MM", "-MD", "-MMD", "-MP", "-MG", "-pipe", "-shared",
               "-static", "-pie", "-no-pie", "-rdynamic", "-v", "-###", "-save-temps"}
# Dropped prefixes: warnings (they only add noise, and libclang prints
# unknown-warning complaints on stderr), linker/assembler pass-through, gcc
# plugins and link inputs.
_DROP_PREFIX = ("-W", "-l", "-fplugin", "--param=", "-save-temps=", "-fdump-", "-L")
# What survives when the driver rejects the command: enough to preprocess.
_MINIMAL_PREFIX = ("-I", "-D", "-U", "-std=", "-isystem", "-iquote", "-idirafter", "-include",
                   "-imacros", "--target=", "-nostdinc", "-nostdlibinc", "-m32", "-m64",
                   "-funsigned-char", "-fsigned-char", "-fshort-wchar", "-fms-extensions",
                   "-fgnu89-inline", "-x")
_WRAPPERS = {"ccache", "sccache", "distcc", "icecc", "kcov-build"}


def _positionals(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in _TAKES_VALUE:
            i += 2
            continue
        if not a.startswith("-") or a == "-":
            out.append(a)
        i += 1
    return out


def clang_arguments(entry: CompileEntry) -> tuple[str, list[str]]:
    """(absolute source path, libclang arguments) for one compile entry."""
    argv = list(entry.arguments)
    while argv and os.path.basename(argv[0]) in _WRAPPERS:
        argv = argv[1:]
    # The compiler itself, then everything but the translation unit's inputs.
    args = argv[1:]
    source = os.path.normpath(os.path.join(entry.directory, entry.file))
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in _TAKES_VALUE:
            if a not in _DROP_WITH_VALUE and i + 1 < len(args):
                out += [a, _abs_if_path(a, args[i + 1], entry.directory)]
            i += 2
            continue
        i += 1
        if a in _DROP_EXACT or a.startswith(_DROP_PREFIX) or a.startswith("-o"):
            continue
        if not a.startswith("-") or a == "-":
            continue  # sources (ours is passed separately), objects, libraries
        out.append(_abs_option(a, entry.directory))
    # Headers test __has_feature(coverage_sanitizer) to define their opt-out
    # macros (the kernel's __no_sanitize_coverage, part of noinstr); analyse
    # the TU as the instrumented build will compile it.
    if not any(a.startswith(("-fsanitize-coverage=", "-fno-sanitize-coverage")) for a in out):
        out.append("-fsanitize-coverage=trace-pc")
    return source, out


def _abs_if_path(opt: str, value: str, directory: str) -> str:
    if opt in ("-I", "-isystem", "-iquote", "-idirafter", "-include", "-imacros") and not os.path.isabs(value):
        return os.path.join(directory, value)
    return value


def _abs_option(a: str, directory: str) -> str:
    # Joined forms (-Ifoo) are made absolute so that libclang needs no cwd.
    for p in ("-I", "-isystem", "-iquote", "-idirafter"):
        if a.startswith(p) and len(a) > len(p):
            v = a[len(p):]
            return p + (v if os.path.isabs(v) else os.path.join(directory, v))
    return a


def _minimal(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in _TAKES_VALUE:
            if a.startswith(_MINIMAL_PREFIX) and i + 1 < len(args):
                out += [a, args[i + 1]]
            i += 2
            continue
        if a.startswith(_MINIMAL_PREFIX):
            out.append(a)
        i += 1
    return out


@lru_cache(maxsize=1)
def _resource_args() -> tuple[str, ...]:
    """Builtin headers (stddef.h, stdarg.h) for libclang.

    The PyPI wheel ships libclang.so without clang's resource directory, so
    borrow an installed clang's, the closest in version to libclang's own
    (ties: the newer).  The intrinsic headers follow the builtins' signatures:
    clang-14's emmintrin.h gives errors under libclang 18, clang-19's none.
    """
    cands: list[tuple[int, Path]] = []
    for d in Path("/usr/lib").glob("llvm-*/lib/clang/*"):
        if (d / "include" / "stddef.h").is_file():
            m = re.match(r"llvm-(\d+)", d.parts[3])
            cands.append((int(m.group(1)) if m else 0, d))
    if not cands:
        clang = shutil.which("clang")
        if clang is not None:
            p = subprocess.run([clang, "-print-resource-dir"], capture_output=True, text=True, check=False)
            d = Path(p.stdout.strip())
            if p.returncode == 0 and (d / "include" / "stddef.h").is_file():
                cands.append((0, d))
    if cands:
        own = _libclang_major()
        cands.sort(key=lambda c: (abs(c[0] - own), -c[0]))
        return ("-resource-dir", str(cands[0][1]))
    gcc = shutil.which("gcc")
    if gcc is not None:
        p = subprocess.run([gcc, "-print-file-name=include"], capture_output=True, text=True, check=False)
        if p.returncode == 0 and os.path.isdir(p.stdout.strip()):
            return ("-isystem", p.stdout.strip())
    return ()


def _libclang_major() -> int:
    try:
        from importlib.metadata import version

        return int(version("libclang").split(".")[0])
    except Exception:  # noqa: BLE001 - any failure means "unknown"
        return 18


