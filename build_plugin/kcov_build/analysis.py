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
import bisect
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from os import EX_DATAERR, EX_IOERR, EX_NOINPUT, EX_OK, EX_UNAVAILABLE, EX_USAGE
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from kcov._base.errors import ArgumentParser, ToolkitError, UsageError, say_error

from ._util import write_atomic

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
INVENTORY_VERSION = 1
EX_FOUND = 1  # kcov-build check: functions that would recurse

# The project's own annotation, recognised by name whatever it expands to
# (kcov/noinstr.h, included by kcovrt.h, defines it per compiler; it may be empty for a compiler without
# the attribute, and the generated ignorelist then does the work).
DEFAULT_ANNOTATIONS: tuple[str, ...] = ("KCOV_NO_COVERAGE",)
# annotate("...") strings that mean "no coverage" without any configuration.
DEFAULT_ANNOTATE_STRINGS: tuple[str, ...] = ("kcov_no_coverage",)


class AnalysisError(ToolkitError):
    """Bad input for the analysis; `exit_status` is the sysexits code for CLIs."""

    exit_status = EX_DATAERR


@dataclass(frozen=True)
class Function:
    name: str
    mangled: str
    file: str
    start_line: int
    end_line: int
    no_coverage: bool
    reason: str | None
    # Only external functions can be reached by name from the runtime.
    external: bool = True


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


# --------------------------------------------------------------------------
# Tokens of the source as written


class _Tok(NamedTuple):
    kind: str  # "id", "str", "p" (punctuation, numbers, characters)
    text: str
    offset: int


# Whitespace and comments are skipped as a prefix of each match, so that
# there is one match per token (headers are tokenised once per process, but
# a kernel TU reaches hundreds of them).
_TOKEN = re.compile(
    r"""(?:\s|\\\n|//[^\n]*|/\*.*?(?:\*/|\Z))*
      (?P<tok> (?P<str>"(?:\\.|[^"\\\n])*"?)
        | (?P<id>[A-Za-z_$][A-Za-z0-9_$]*)
        | '(?:\\.|[^'\\\n])*'?
        | \.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*
        | \S )""",
    re.S | re.X,
)
_DIRECTIVE = re.compile(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", re.M)


class _FileTokens:
    """Tokens of one file plus which of them are in preprocessor directives."""

    def __init__(self, text: str) -> None:
        self.toks: list[_Tok] = []
        append = self.toks.append
        for m in _TOKEN.finditer(text):
            kind = "id" if m.group("id") is not None else "str" if m.group("str") is not None else "p"
            append(_Tok(kind, m.group("tok"), m.start("tok")))
        self.offsets = [t.offset for t in self.toks]
        spans = [(m.start(), m.end()) for m in _DIRECTIVE.finditer(text)]
        self._dstarts = [s for s, _ in spans]
        self._dends = [e for _, e in spans]

    def index_at(self, offset: int) -> int:
        """Index of the first token at or after offset."""
        return bisect.bisect_left(self.offsets, offset)

    def in_directive(self, i: int) -> bool:
        off = self.toks[i].offset
        j = bisect.bisect_right(self._dstarts, off) - 1
        return j >= 0 and off < self._dends[j]

    def declaration(self, name_offset: int, end_offset: int) -> list[_Tok]:
        """Tokens of the declaration around the name at name_offset.

        Backwards to the end of the previous declaration or directive (this
        takes in leading attributes and annotation macros), forwards to the
        body's '{' or the ';' (trailing attributes).
        """
        i = self.index_at(name_offset)
        if i >= len(self.toks):
            return []
        j = i - 1
        while j >= 0 and self.toks[j].text not in (";", "}", "{") and not self.in_directive(j):
            j -= 1
        k, depth = i, 0
        while k < len(self.toks) and self.toks[k].offset <= end_offset:
            t = self.toks[k].text
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
            elif depth <= 0 and t in ("{", ";"):
                break
            k += 1
        return self.toks[j + 1:k]


class _Cache:
    """What one inventory run shares between its translation units.

    Headers are tokenised once, and a header function already analysed in an
    earlier TU is not analysed again (the kernel's TUs each reach thousands
    of the same inline functions).  Scoped to one run so that edited files
    are read afresh by the next one.
    """

    def __init__(self) -> None:
        self.files: dict[str, _FileTokens | None] = {}
        self.functions: dict[tuple[str, int, str], Function] = {}

    def tokens(self, path: str) -> _FileTokens | None:
        if path not in self.files:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self.files[path] = None
            else:
                self.files[path] = _FileTokens(text)
        return self.files[path]


# --------------------------------------------------------------------------
# Recognising opt-out attributes in a token sequence


def _norm(ident: str) -> str:
    if ident.startswith("__") and ident.endswith("__") and len(ident) > 4:
        return ident[2:-2]
    return ident


def _paren_strings(toks: Sequence[_Tok], i: int) -> tuple[list[str], int]:
    """String literals inside the parenthesis opening at toks[i]."""
    if i >= len(toks) or toks[i].text != "(":
        return [], i
    out: list[str] = []
    depth = 0
    while i < len(toks):
        t = toks[i]
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                return out, i + 1
        elif t.kind == "str":
            out.append(t.text[1:-1])
        i += 1
    return out, i


class _Detector:
    """Finds opt-out attributes in tokens, resolving the TU's macros."""

    def __init__(self, annotations: Sequence[str], macros: dict[str, Any], directory: str, cache: _Cache) -> None:
        self.annotations = set(annotations)
        self.annotate_strings = set(DEFAULT_ANNOTATE_STRINGS) | self.annotations
        self.macros = macros  # name -> MACRO_DEFINITION cursor
        self.directory = directory
        self.cache = cache
        self._resolved: dict[str, str | None] = {}

    def scan(self, toks: Sequence[_Tok]) -> str | None:
        i = 0
        while i < len(toks):
            t = toks[i]
            i += 1
            if t.kind != "id":
                continue
            if t.text in self.annotations:
                return t.text
            n = _norm(t.text)
            if n in ("no_sanitize_coverage", "disable_sanitizer_instrumentation"):
                return n
            if n == "no_sanitize":
                strings, i = _paren_strings(toks, i)
                if any("coverage" in (x.strip() for x in s.split(",")) for s in strings):
                    return 'no_sanitize("coverage")'
                continue
            if n == "annotate":
                strings, i = _paren_strings(toks, i)
                hit = [s for s in strings if s in self.annotate_strings]
                if hit:
                    return f'annotate("{hit[0]}")'
                continue
            r = self.macro(t.text)
            if r is not None:
                return r
        return None

    def macro(self, name: str) -> str | None:
        if name in self._resolved:
            return self._resolved[name]
        self._resolved[name] = None  # breaks recursive definitions
        cursor = self.macros.get(name)
        r: str | None = None
        ext = cursor.extent if cursor is not None else None
        if ext is not None and ext.start.file is not None:
            start, end = ext.start.offset, ext.end.offset
            ft = self.cache.tokens(_abs(ext.start.file.name, self.directory))
            if ft is not None:
                lo, hi = ft.index_at(start), ft.index_at(end)
                body = ft.toks[lo + 1:hi]  # without the macro's name
                if body and body[0].text == "(" and body[0].offset == ft.toks[lo].offset + len(name):
                    body = body[_paren_end(body):]
                r = self.scan(body)
        self._resolved[name] = r
        return r


def _paren_end(toks: Sequence[_Tok]) -> int:
    """Index just past the parenthesis that opens at toks[0]."""
    depth = 0
    for i, t in enumerate(toks):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(toks)


# --------------------------------------------------------------------------
# One translation unit


def _cindex() -> Any:
    try:
        import clang.cindex as ci
    except ImportError as e:
        raise AnalysisError(f"libclang is not installed ({e}); pip install libclang", EX_UNAVAILABLE) from None
    return ci


_DRIVER_NOISE = re.compile(
    r"unknown argument|unsupported (?:option|argument)|invalid (?:value|argument)|argument unused")
_FUNCTION_KINDS = ("FUNCTION_DECL", "CXX_METHOD", "CONSTRUCTOR", "DESTRUCTOR", "CONVERSION_FUNCTION")
_CONTAINER_KINDS = ("NAMESPACE", "LINKAGE_SPEC", "CLASS_DECL", "STRUCT_DECL", "UNION_DECL")


def functions_in_tu(
    entry: CompileEntry,
    *,
    annotations: Sequence[str] = (),
    errors: list[str] | None = None,
    cache: _Cache | None = None,
) -> list[Function]:
    """Function definitions (with a body) reached in this TU, main file and headers.

    Functions in system headers are left out: they are not the project's.
    Compiler diagnostics never abort the parse; error-level ones are appended
    to `errors` when a list is given.  The TU is analysed as it would be
    compiled with coverage (see clang_arguments), since that is the build the
    inventory and the ignorelist are for.
    """
    cache = cache if cache is not None else _Cache()
    ci = _cindex()
    source, args = clang_arguments(entry)
    if not os.path.isfile(source):
        raise AnalysisError(f"{source}: source file does not exist", EX_NOINPUT)
    annotations = tuple(dict.fromkeys((*DEFAULT_ANNOTATIONS, *annotations)))
    tu = _parse(ci, source, [*args, *_resource_args()])
    if errors is not None:
        for d in tu.diagnostics:
            # Driver complaints about gcc-only flags are expected and harmless.
            if d.severity >= 3 and not _DRIVER_NOISE.match(d.spelling):
                loc = d.location
                where = f"{loc.file.name}:{loc.line}: " if loc.file is not None else ""
                errors.append(f"{where}{d.spelling}")

    macros: dict[str, Any] = {}
    defs: list[Any] = []
    k = ci.CursorKind
    fkinds = {getattr(k, n) for n in _FUNCTION_KINDS}
    ckinds = {getattr(k, n) for n in _CONTAINER_KINDS}

    def walk(cursor: Any) -> None:
        for c in cursor.get_children():
            kind = c.kind
            if kind == k.MACRO_DEFINITION:
                # Located lazily: a kernel TU defines thousands of macros and
                # only the few named in declarations are ever looked at.
                macros[c.spelling] = c
            elif kind in fkinds:
                if c.is_definition():
                    defs.append(c)
            elif kind in ckinds:
                walk(c)

    walk(tu.cursor)
    det = _Detector(annotations, macros, entry.directory, cache)
    out: list[Function] = []
    seen: set[tuple[str, int, str]] = set()
    for c in defs:
        loc = c.location
        if loc.file is None or loc.is_in_system_header:
            continue
        ckey = (_abs(loc.file.name, entry.directory), loc.offset, c.spelling)
        fn = cache.functions.get(ckey)
        if fn is None:
            fn = cache.functions[ckey] = _function(ci, c, det, entry.directory)
        key = (fn.file, fn.start_line, fn.name)
        if key not in seen:
            seen.add(key)
            out.append(fn)
    return out


def _parse(ci: Any, source: str, args: list[str]) -> Any:
    opts = ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
    index = ci.Index.create()
    try:
        return index.parse(source, args=args, options=opts)
    except ci.TranslationUnitLoadError:
        pass
    # The driver refused the command (a gcc-only -march=, a target clang
    # lacks...).  Preprocessing flags are what matters for the inventory.
    try:
        return index.parse(source, args=[*_minimal(args), *_resource_args()], options=opts)
    except ci.TranslationUnitLoadError:
        raise AnalysisError(f"{source}: libclang cannot parse this file") from None


def _abs(name: str, directory: str) -> str:
    return os.path.normpath(os.path.join(directory, name))


def _function(ci: Any, c: Any, det: _Detector, directory: str) -> Function:
    loc = c.location
    path = _abs(loc.file.name, directory)
    ext = c.extent
    start = ext.start.line if ext.start.file is not None and ext.start.file.name == loc.file.name else loc.line
    end = ext.end.line if ext.end.file is not None and ext.end.file.name == loc.file.name else loc.line
    start, end = min(start, loc.line), max(end, loc.line)
    reason = _reason(ci, c, det, path, loc.offset, ext.end.offset, directory)
    name = c.spelling
    if c.kind != ci.CursorKind.FUNCTION_DECL or c.semantic_parent.kind != ci.CursorKind.TRANSLATION_UNIT:
        name = _qualified(ci, c)
    mangled = c.mangled_name or name
    external = c.linkage in (ci.LinkageKind.EXTERNAL, ci.LinkageKind.UNIQUE_EXTERNAL)
    return Function(name, mangled, path, start, end, reason is not None, reason, external)


def _qualified(ci: Any, c: Any) -> str:
    parts = [c.spelling]
    p = c.semantic_parent
    while p is not None and p.kind != ci.CursorKind.TRANSLATION_UNIT:
        if p.spelling:
            parts.append(p.spelling)
        p = p.semantic_parent
    return "::".join(reversed(parts))


def _reason(ci: Any, c: Any, det: _Detector, path: str, name_off: int, end_off: int, directory: str) -> str | None:
    # 1. Attribute cursors (also those inherited from earlier declarations).
    for a in c.get_children():
        if not a.kind.is_attribute():
            continue
        if a.kind == ci.CursorKind.ANNOTATE_ATTR:
            if a.spelling in det.annotate_strings:
                return f'annotate("{a.spelling}")'
            continue
        if a.kind == ci.CursorKind.UNEXPOSED_ATTR:
            aloc = a.location
            if aloc.file is None:
                continue
            ft = det.cache.tokens(_abs(aloc.file.name, directory))
            if ft is None:
                continue
            i = ft.index_at(aloc.offset)
            r = det.scan(ft.toks[i:i + 1] + _following_parens(ft.toks, i + 1))
            if r is not None:
                return r
    # 2. The declaration as written, and the first declaration.
    ft = det.cache.tokens(path)
    if ft is not None:
        r = det.scan(ft.declaration(name_off, end_off))
        if r is not None:
            return r
    canon = c.canonical
    if canon != c and canon.location.file is not None:
        cft = det.cache.tokens(_abs(canon.location.file.name, directory))
        if cft is not None:
            r = det.scan(cft.declaration(canon.location.offset, canon.extent.end.offset))
            if r is not None:
                return r
    return None


def _following_parens(toks: list[_Tok], i: int) -> list[_Tok]:
    if i < len(toks) and toks[i].text == "(":
        return toks[i:i + _paren_end(toks[i:])]
    return []


# --------------------------------------------------------------------------
# Whole builds


def inventory(
    entries: Sequence[CompileEntry],
    *,
    annotations: Sequence[str] = (),
    progress: bool = False,
    errors: list[str] | None = None,
    jobs: int = 1,
) -> list[Function]:
    """Functions of all entries, deduplicated by (file, start_line, name), sorted.

    With jobs > 1 the TUs are parsed in that many worker processes (libclang
    spends ~0.4 s per kernel TU in the parser alone; the GIL rules out threads
    for the cursor walk that follows).
    """
    out: dict[tuple[str, int, str], Function] = {}
    n = len(entries)
    t0 = time.monotonic()
    for i, (e, fns, errs) in enumerate(_analyse_all(entries, tuple(annotations), jobs), 1):
        for f in fns:
            key = (f.file, f.start_line, f.name)
            # A header function opted out in one TU (its macro defined there)
            # stays opted out.
            if key not in out or (f.no_coverage and not out[key].no_coverage):
                out[key] = f
        if errors is not None and errs:
            errors.append(f"{_abs(e.file, e.directory)}: {len(errs)} error(s), first: {errs[0]}")
        if progress:
            print(f"{PROG}: inventory [{i}/{n}] {e.file}: {len(fns)} functions"
                  f"{f', {len(errs)} errors' if errs else ''} ({time.monotonic() - t0:.1f} s)",
                  file=sys.stderr)
    return [out[k] for k in sorted(out)]


def _analyse_all(
    entries: Sequence[CompileEntry], annotations: tuple[str, ...], jobs: int
) -> Iterator[tuple[CompileEntry, list[Function], list[str]]]:
    if jobs <= 1 or len(entries) <= 1:
        cache = _Cache()
        for e in entries:
            errs: list[str] = []
            yield e, functions_in_tu(e, annotations=annotations, errors=errs, cache=cache), errs
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: libclang state must not be inherited half-initialised by fork.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(entries)), mp_context=ctx) as pool:
        futures = {pool.submit(_worker, e, annotations): e for e in entries}
        try:
            for fut in as_completed(futures):
                fns, errs, failure = fut.result()
                if failure is not None:
                    raise AnalysisError(*failure)
                yield futures[fut], fns, errs
        except BaseException:
            for f in futures:
                f.cancel()
            raise


_worker_cache: _Cache | None = None


def _worker(
    entry: CompileEntry, annotations: tuple[str, ...]
) -> tuple[list[Function], list[str], tuple[str, int] | None]:
    # AnalysisError's status would not survive pickling; return it instead.
    global _worker_cache
    if _worker_cache is None:
        _worker_cache = _Cache()
    errs: list[str] = []
    try:
        return functions_in_tu(entry, annotations=annotations, errors=errs, cache=_worker_cache), errs, None
    except AnalysisError as e:
        return [], errs, (str(e), e.exit_status)


def write_inventory(functions: Iterable[Function], path: str | Path) -> None:
    """Write {"version": 1, "producer": ..., "functions": [...]} atomically."""
    doc = {
        "version": INVENTORY_VERSION,
        "producer": f"kcov-build {_toolkit_version()}",
        "functions": [asdict(f) for f in functions],
    }
    write_atomic(Path(path), json.dumps(doc, indent=1) + "\n")


def read_inventory(path: str | Path) -> list[Function]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnalysisError(f"{p}: no such file", EX_NOINPUT) from None
    except (OSError, UnicodeDecodeError) as e:
        raise AnalysisError(f"{p}: cannot read: {e}", EX_NOINPUT) from None
    except json.JSONDecodeError as e:
        raise AnalysisError(f"{p}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    if not isinstance(doc, dict) or doc.get("version") != INVENTORY_VERSION:
        got = doc.get("version") if isinstance(doc, dict) else None
        raise AnalysisError(
            f"{p}: inventory format version {got!r}, this kcov-build reads version "
            f"{INVENTORY_VERSION}; regenerate it with 'kcov-build inventory'"
        )
    try:
        return [Function(**f) for f in doc["functions"]]
    except (KeyError, TypeError) as e:
        raise AnalysisError(f"{p}: malformed inventory: {e}") from None


def _toolkit_version() -> str:
    try:
        from importlib.metadata import version

        return version("kcov")
    except Exception:  # noqa: BLE001
        return "unknown"


# --------------------------------------------------------------------------
# Ignorelist


def _glob_escape(name: str) -> str:
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", name)


def ignorelist_text(
    functions: Iterable[Function],
    *,
    fun_patterns: Sequence[str] = (),
    src_globs: Sequence[str] = (),
) -> str:
    """A -fsanitize-coverage-ignorelist= file for the opted-out functions and user rules.

    clang matches `fun:` against the mangled name and `src:` against the path
    as given on the command line (spec §3.2).  A `fun:` entry applies to every
    function of that name in the TU, so a static function's name also
    excludes same-named statics elsewhere; the comments say which definition
    asked for it.
    """
    why: dict[str, list[str]] = {}
    for f in functions:
        if f.no_coverage:
            why.setdefault(f.mangled or f.name, []).append(f"{f.file}:{f.start_line}: {f.name}: {f.reason}")
    lines = [
        "# SanitizerCoverage ignorelist generated by kcov-build",
        "# (clang -fsanitize-coverage-ignorelist=FILE; spec llvm-profile-sancov.md 3.2)",
    ]
    if why:
        lines.append("")
        lines.append("# Functions that opt out of coverage in the source:")
        for name in sorted(why):
            lines += [f"# {w}" for w in why[name]]
            lines.append(f"fun:{_glob_escape(name)}")
    if fun_patterns:
        lines.append("")
        lines.append("# User rules (--exclude-function):")
        lines += [f"fun:{p}" for p in fun_patterns]
    if src_globs:
        lines.append("")
        lines.append("# User rules (--exclude-file):")
        lines += [f"src:{g}" for g in src_globs]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Runtime call graph from the disassembly


_SECTION = re.compile(r"^Disassembly of section (?P<sec>\S+):$")
_MEMBER = re.compile(r"^(?:In archive .*:|(?P<file>\S.*):\s+file format \S+)$")
_HEADER = re.compile(r"^(?P<addr>[0-9a-f]+) <(?P<name>[^>]+)>:$")
_INSN = re.compile(r"^\s*(?P<addr>[0-9a-f]+):\s+(?P<mn>[a-z][\w.]*)\s*(?P<ops>.*)$")
_RELOC = re.compile(r"^\s*[0-9a-f]+: (?P<type>R_\w+)\s+(?P<sym>[^\s+-]+)(?P<add>[+-]0x[0-9a-f]+)?")
_DIRECT = re.compile(r"^(?:[a-z]+\s+)?(?P<addr>[0-9a-f]+) <(?P<sym>[^>]+)>$")
_GOTCALL = re.compile(r"\*.*#\s*[0-9a-f]+ <(?P<sym>[^>@+]+)(?:@[^>]*)?>$")
_BRANCH = re.compile(r"^(?:call|callq|jmp|jmpq|j[a-z]{1,3}|bl|b|b\.[a-z]+|cbz|cbnz|tbz|tbnz)$")
_CALLRELOCS = ("PLT32", "PC32", "GOTPCREL", "GOTPCRELX", "REX_GOTPCRELX", "CALL26", "JUMP26", "PLT")


_SKIP_SECTIONS = (".plt", ".plt.got", ".plt.sec", ".init", ".fini")


def _is_plt(sym: str) -> bool:
    """'foo@plt' is a PLT stub; 'foo@plt+0x30' is just a nearby label."""
    return sym.endswith("@plt")


def _base(name: str) -> str:
    """Symbol name without a version (@@Base, @GLIBC_2.2.5) or a PLT suffix."""
    return name.split("@", 1)[0]


@dataclass
class _Region:
    key: tuple[str, str, int]  # (member, section, start)
    name: str
    calls: list[tuple[str, Any]] = field(default_factory=list)  # ("sym", name) | ("addr", key-ish)


def runtime_callees(path: str | Path) -> dict[str, tuple[str, list[str]]]:
    """Symbols the runtime calls, directly or transitively, from its callbacks.

    Maps each callee that leaves the binary (undefined, or reached through the
    PLT and so interposable) to (entry point, call chain from the entry
    point to the caller).
    """
    from .objcheck import ObjdumpError, objdump_tool

    p = Path(path)
    if not p.is_file():
        raise AnalysisError(f"{p}: no such runtime file", EX_NOINPUT)
    try:
        tool = objdump_tool()
    except ObjdumpError as e:
        raise AnalysisError(str(e), EX_UNAVAILABLE) from None
    proc = subprocess.run([tool, "-dr", "--no-show-raw-insn", str(p)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise AnalysisError(f"{p}: objdump cannot read it: {last}")
    regions = _regions(proc.stdout)
    if not any(r.name.startswith("__sanitizer_cov_") for r in regions.values()):
        raise AnalysisError(f"{p}: no __sanitizer_cov_* function in it; is it a coverage runtime?")
    return _walk(regions)


def _regions(text: str) -> dict[tuple[str, str, int], _Region]:
    """Parse objdump output into code regions with their outgoing calls.

    A region starts at every symbol and at every direct call target, so a
    stripped DSO's local functions still become nodes.  Instructions belong
    to the last region starting at or before them.
    """
    member, section = "", ""
    named: dict[tuple[str, str, int], str] = {}
    insns: list[tuple[str, str, int, str, str, str | None]] = []  # member, sec, addr, mn, ops, reloc
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m is not None:
            section = m.group("sec")
            continue
        m = _MEMBER.match(line)
        if m is not None:
            member = m.group("file") or member
            continue
        m = _HEADER.match(line)
        if m is not None:
            named.setdefault((member, section, int(m.group("addr"), 16)), m.group("name"))
            continue
        m = _RELOC.match(line)
        if m is not None and insns:
            mb, sc, ad, mn, ops, rel = insns[-1]
            if rel is None and any(m.group("type").endswith(t) for t in _CALLRELOCS):
                sym = m.group("sym")
                add = int(m.group("add") or "0", 16)
                # A relocation against a section symbol names an offset in it.
                ref = f"{sym}+{add + 4:#x}" if sym.startswith(".") else sym
                insns[-1] = (mb, sc, ad, mn, ops, ref)
            continue
        m = _INSN.match(line)
        if m is not None:
            insns.append((member, section, int(m.group("addr"), 16), m.group("mn"), m.group("ops").strip(), None))
    starts: dict[tuple[str, str], set[int]] = {}
    for (mb, sc, ad) in named:
        starts.setdefault((mb, sc), set()).add(ad)
    branches: list[tuple[str, str, int, int]] = []  # member, section, from, to (jumps)
    for mb, sc, ad, mn, ops, rel in insns:
        if rel is not None or sc in _SKIP_SECTIONS or not _BRANCH.match(mn):
            continue
        d = _DIRECT.match(ops)
        if d is None or _is_plt(d.group("sym")):
            continue
        if mn.startswith(("call", "bl")) and mn != "b":
            starts.setdefault((mb, sc), set()).add(int(d.group("addr"), 16))
        else:
            branches.append((mb, sc, ad, int(d.group("addr"), 16)))
    # A jump that leaves its region is a tail call; in a stripped DSO its
    # target may be a local function with no symbol, which then starts a
    # region of its own.  Repeat until the partition is stable.
    sorted_starts = {k: sorted(v) for k, v in starts.items()}
    for _ in range(16):
        added = False
        for mb, sc, src, dst in branches:
            ss = sorted_starts.get((mb, sc))
            if not ss:
                continue
            a, b = bisect.bisect_right(ss, src) - 1, bisect.bisect_right(ss, dst) - 1
            if a != b and (b < 0 or ss[b] != dst):
                starts[(mb, sc)].add(dst)
                added = True
        if not added:
            break
        sorted_starts = {k: sorted(v) for k, v in starts.items()}
    regions: dict[tuple[str, str, int], _Region] = {}

    def region_of(mb: str, sc: str, ad: int) -> _Region | None:
        ss = sorted_starts.get((mb, sc))
        if not ss:
            return None
        j = bisect.bisect_right(ss, ad) - 1
        if j < 0:
            return None
        key = (mb, sc, ss[j])
        r = regions.get(key)
        if r is None:
            nm = named.get(key)
            if nm is None or re.search(r"[+-]0x[0-9a-f]+$", nm):
                nm = f"fn_{ss[j]:#x}"
            r = regions[key] = _Region(key, _base(nm) if "@@" in nm or "@" in nm else nm)
        return r

    for mb, sc, ad, mn, ops, rel in insns:
        if sc in _SKIP_SECTIONS or not _BRANCH.match(mn):
            continue
        here = region_of(mb, sc, ad)
        if here is None:
            continue
        if rel is not None:
            if rel.startswith("."):
                sec, off = rel.rsplit("+", 1)
                tgt = region_of(mb, sec, int(off, 16))
                if tgt is not None and tgt is not here:
                    here.calls.append(("region", tgt.key))
            else:
                here.calls.append(("sym", _base(rel)))
            continue
        d = _DIRECT.match(ops)
        if d is not None:
            sym = d.group("sym")
            if _is_plt(sym):
                here.calls.append(("plt", _base(sym)))
                continue
            tgt = region_of(mb, sc, int(d.group("addr"), 16))
            if tgt is not None and tgt is not here:
                here.calls.append(("region", tgt.key))
            continue
        g = _GOTCALL.search(ops)
        if g is not None:
            here.calls.append(("sym", _base(g.group("sym"))))
    # Regions that are never a call source still need to exist as targets.
    for key in named:
        region_of(*key)
    return regions


def _walk(regions: dict[tuple[str, str, int], _Region]) -> dict[str, tuple[str, list[str]]]:
    by_name: dict[str, list[_Region]] = {}
    for r in regions.values():
        by_name.setdefault(r.name, []).append(r)
    found: dict[str, tuple[str, list[str]]] = {}
    roots = sorted((r for r in regions.values() if r.name.startswith("__sanitizer_cov_")), key=lambda r: r.name)
    for root in roots:
        seen = {root.key}
        queue: deque[tuple[_Region, list[str]]] = deque([(root, [root.name])])
        while queue:
            r, chain = queue.popleft()
            for kind, what in r.calls:
                targets: list[_Region] = []
                if kind == "region":
                    targets = [regions[what]] if what in regions else []
                else:
                    defined = by_name.get(what, [])
                    same = [d for d in defined if d.key[0] == r.key[0]]
                    targets = (same or defined)[:1]
                    # Undefined here, or bound through the PLT (interposable).
                    if (not targets or kind == "plt") and what not in found:
                        found[what] = (root.name, chain)
                for t in targets:
                    if t.key not in seen:
                        seen.add(t.key)
                        queue.append((t, [*chain, t.name]))
    return found


@dataclass(frozen=True)
class Finding:
    function: Function
    entry: str
    chain: tuple[str, ...]

    def message(self) -> str:
        via = " -> ".join((*self.chain, self.function.name))
        return (f"{self.function.file}:{self.function.start_line}: function {self.function.name} "
                f"is instrumented but the runtime calls it from {self.entry} (via {via}); exclude it")


def check_functions(
    functions: Iterable[Function],
    callees: dict[str, tuple[str, list[str]]],
    *,
    fun_patterns: Sequence[str] = (),
    src_globs: Sequence[str] = (),
) -> list[Finding]:
    """Instrumented project functions among the runtime's outgoing calls."""
    out: list[Finding] = []
    for f in functions:
        if f.no_coverage or not f.external or f.name.startswith("__sanitizer_"):
            continue
        if any(fnmatchcase(f.mangled, p) for p in fun_patterns) or any(fnmatchcase(f.file, g) for g in src_globs):
            continue
        hit = callees.get(f.mangled) or callees.get(f.name)
        if hit is not None:
            out.append(Finding(f, hit[0], tuple(hit[1])))
    return sorted(out, key=lambda x: (x.function.file, x.function.start_line))


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
