"""The libclang function inventory: every function definition of the
compiled sources, and whether it opts out of coverage (see analysis.py for
why attributes are read from tokens too); and the ignorelists made from it."""
from __future__ import annotations

import bisect
import os
import re
import sys
import time
from os import EX_NOINPUT, EX_UNAVAILABLE
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from kcov import inventory as inv
from kcov.inventory import Function

from .compiledb import AnalysisError, CompileEntry, _minimal, _resource_args, clang_arguments

PROG = "kcov-build"

# The project's own annotation, recognised by name whatever it expands to
# (kcov/noinstr.h, included by kcovrt.h, defines it per compiler; it may be empty for a compiler without
# the attribute, and the generated ignorelist then does the work).
DEFAULT_ANNOTATIONS: tuple[str, ...] = ("KCOV_NO_COVERAGE",)
# annotate("...") strings that mean "no coverage" without any configuration.
DEFAULT_ANNOTATE_STRINGS: tuple[str, ...] = ("kcov_no_coverage",)


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
    """Write the inventory (kcov.inventory's format) atomically."""
    inv.write(functions, path, f"kcov-build {_toolkit_version()}")


def read_inventory(path: str | Path) -> list[Function]:
    try:
        return inv.read(path)
    except inv.InventoryError as e:
        raise AnalysisError(str(e), e.exit_status) from None


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


