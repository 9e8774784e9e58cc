"""What every format handler shares: the handler interface, atomic output,
and the small derived views (relative paths, per-function lines,
percentages) that several writers need.

A handler is one class per format (like gcovr's ``formats/<name>/``): it
declares its options, says whether it can read and/or write, and how to
recognise its input from the first bytes of a file.  Writers either
*render* to one text (lcov, Cobertura, JSON, text, single-page HTML) that
:func:`atomic_write` puts in place, or build a directory (multi-page HTML)
through :func:`atomic_directory`; either way a reader of the output path
sees the old output or the complete new one, never a part.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping

from os import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_USAGE  # noqa: F401  (the formats' statuses)

from ..._base import files as _files
from ..model import CoverageData, FormatError, ReportError


@dataclass(frozen=True)
class Option:
    """One writer or reader option, declared so a CLI can offer it.

    ``type`` is the Python type of the value (``str``, ``int``, ``bool``);
    ``default`` is what the handler uses when the option is not given."""

    name: str
    type: type
    default: Any
    help: str


class Handler:
    """The interface of one format.  Subclasses set the class attributes and
    override :meth:`render` (single-file writers), :meth:`write` (directory
    writers) and/or :meth:`parse` (readers)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Output path suffixes that select this format when none is named.
    extensions: ClassVar[tuple[str, ...]] = ()
    can_read: ClassVar[bool] = False
    can_write: ClassVar[bool] = False
    write_options: ClassVar[tuple[Option, ...]] = ()
    read_options: ClassVar[tuple[Option, ...]] = ()

    # -- writing --------------------------------------------------------

    def render(self, data: CoverageData, **opts: Any) -> str:
        """The whole output as text."""
        raise NotImplementedError(f"{self.name}: not a single-file writer")

    def write(self, data: CoverageData, path: str | os.PathLike[str],
              **opts: Any) -> None:
        """Write the output to ``path`` atomically; ``"-"`` is stdout."""
        text = self.render(data, **opts)
        if os.fspath(path) == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            atomic_write(path, text)

    # -- reading --------------------------------------------------------

    def sniff(self, head: bytes) -> bool:
        """Whether input starting with ``head`` looks like this format."""
        return False

    def parse(self, raw: bytes, source: str, **opts: Any) -> CoverageData:
        raise NotImplementedError(f"{self.name}: not a reader")

    # -- options --------------------------------------------------------

    def options(self, declared: tuple[Option, ...],
                given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names are an API misuse
        (the CLI builds its flags from the declarations)."""
        known = {o.name: o for o in declared}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise TypeError(f"format {self.name!r} has no option "
                            f"{', '.join(map(repr, unknown))}")
        out = {o.name: o.default for o in declared}
        out.update(given)
        return out


# -- atomic output ----------------------------------------------------------


def _cannot_create(path: str | os.PathLike[str], e: OSError) -> ReportError:
    why = e.strerror or type(e).__name__
    return ReportError(f"cannot write {os.fspath(path)}: {why}", EX_CANTCREAT)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` atomically (kcov's one writer, :mod:`kcov._base.files`);
    a failure is a ReportError with EX_CANTCREAT."""
    try:
        _files.write_atomic(path, data)
    except OSError as e:
        raise _cannot_create(path, e) from None


#: A file every directory writer puts in its output, so that writing again
#: may replace that directory and only that: a user's directory that is
#: not a kcov report is never deleted.
STAMP = ".kcov-report"


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], kind: str
                     ) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it
    replaces ``path`` (which must be absent, empty, or an earlier kcov
    output of the same ``kind``), on failure it is removed: kcov's one
    directory swap (:func:`kcov._base.files.atomic_directory`), which never
    deletes a directory that is not a kcov report."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise ReportError(f"cannot write {p}: exists and is not a "
                              "directory", EX_CANTCREAT)
        stamp = p / STAMP
        entries = list(p.iterdir())
        if entries and not (stamp.is_file()
                            and stamp.read_text(errors="replace").split()[:1]
                            == [kind]):
            raise ReportError(
                f"cannot write {p}: the directory exists and is not a kcov "
                f"{kind} report; remove it or choose another path",
                EX_CANTCREAT)
    try:
        with _files.atomic_directory(p) as tmp:
            yield tmp
            (tmp / STAMP).write_text(f"{kind}\n")
    except OSError as e:
        raise _cannot_create(path, e) from None


# -- derived views shared by writers ---------------------------------------


def common_root(files: Iterable[str]) -> str:
    """The deepest directory containing every file ("" if there is none,
    e.g. relative and absolute paths mixed)."""
    dirs = sorted({os.path.dirname(f) for f in files})
    if not dirs:
        return ""
    try:
        return os.path.commonpath(dirs)
    except ValueError:
        return ""


def relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` when it is below it, else as is."""
    if root and (path == root or path.startswith(root.rstrip("/") + "/")):
        return path[len(root.rstrip("/")) + 1:] or os.path.basename(path)
    return path


def function_lines(data: CoverageData) -> dict[tuple[str, str], set[int]]:
    """``{(file, function): lines}``: the lines each function's frames
    name, the same attribution as :meth:`CoverageData.files`."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for frames in data.points.values():
        for fr in frames:
            if fr.line:
                out[(fr.file, fr.function)].add(fr.line)
    return out


def function_line(data: CoverageData, file: str, name: str,
                  first_point_line: int) -> int:
    """Where a function starts for outputs that name one line per function
    (lcov FN, Cobertura methods): its declaration line when the inventory
    (or an lcov input) knows it, else its first line with a point."""
    decl = data.functions.get((file, name))
    return decl.start_line if decl is not None else first_point_line


def percent_text(part: int, whole: int) -> str:
    """``"62.50%"``, or ``"-"`` when there is nothing to count."""
    return f"{100.0 * part / whole:.2f}%" if whole else "-"


def read_input(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an input file (``"-"``: stdin), with one-line errors."""
    if os.fspath(path) == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{p}: no such file", EX_NOINPUT) from None
    except IsADirectoryError:
        raise ReportError(f"{p}: is a directory, expected a coverage file",
                          EX_NOINPUT) from None
    except OSError as e:
        raise ReportError(f"{p}: cannot read: {e.strerror or e}",
                          EX_NOINPUT) from None


def decode(raw: bytes, source: str, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{source}: not a {what} file (not UTF-8 text at "
                          f"byte {e.start})") from None

