"""The function inventory: one schema, one writer, one reader.

``kcov-build inventory -o FILE`` writes it (from libclang, see
kcov_build.analysis); ``kcov-report --inventory``, the pytest plugin and
:func:`kcov.report.collect` read it to list functions never reached and
those that opt out of coverage; kcov-build reads it back for ignorelists.

Format version 1::

    {"version": 1, "producer": "kcov-build 0.1.0",
     "functions": [{"name", "mangled", "file", "start_line", "end_line",
                    "no_coverage", "reason", "external"}, ...]}

``name``, ``file``, ``start_line`` and ``end_line`` are required in each
entry; the others default as in :class:`Function`, and keys this version
does not know are ignored.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from ._base.errors import ToolkitError
from ._base.files import write_atomic

__all__ = ["VERSION", "Function", "InventoryError", "read", "write"]

VERSION = 1


@dataclass(frozen=True)
class Function:
    """One function definition, as libclang saw it."""

    name: str
    mangled: str
    file: str
    start_line: int
    end_line: int
    no_coverage: bool
    reason: str | None
    # Only external functions can be reached by name from the runtime.
    external: bool = True


class InventoryError(ToolkitError):
    """The file is missing or unreadable (exit status 66), or is not an
    inventory of this version (65)."""

    exit_status = os.EX_DATAERR


def write(functions: Iterable[Function], path: str | Path, producer: str) -> None:
    """Write the inventory atomically (kcov._base.files.write_atomic)."""
    doc = {"version": VERSION, "producer": producer, "functions": [asdict(f) for f in functions]}
    write_atomic(Path(path), json.dumps(doc, indent=1) + "\n")


def _function(f: Any) -> Function:
    if not isinstance(f, dict):
        raise TypeError("not an object")
    name, file, a, b = f["name"], f["file"], f["start_line"], f["end_line"]
    mangled, no_cov, reason, ext = (f.get("mangled", name), f.get("no_coverage", False),
                                    f.get("reason"), f.get("external", True))
    if not (isinstance(name, str) and isinstance(file, str) and isinstance(mangled, str)):
        raise TypeError("name, mangled and file must be strings")
    if not (type(a) is int and type(b) is int):
        raise TypeError("start_line and end_line must be integers")
    if not (isinstance(no_cov, bool) and isinstance(ext, bool) and (reason is None or isinstance(reason, str))):
        raise TypeError("no_coverage and external must be booleans, reason a string or null")
    return Function(name, mangled, os.path.normpath(file), a, b, no_cov, reason, ext)


def read(path: str | Path) -> list[Function]:
    """The functions of an inventory file; :class:`InventoryError` otherwise."""
    p = Path(path)
    try:
        doc: Any = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(f"{p}: no such file", os.EX_NOINPUT) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(f"{p}: cannot read: {e}", os.EX_NOINPUT) from None
    except json.JSONDecodeError as e:
        raise InventoryError(f"{p}:{e.lineno}:{e.colno}: not a kcov-build inventory "
                             f"(malformed JSON: {e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("functions"), list):
        raise InventoryError(f"{p}: not a kcov-build inventory (no \"functions\" list)")
    if doc.get("version") != VERSION:
        raise InventoryError(f"{p}: kcov-build inventory format version {doc.get('version')!r}; "
                             f"this kcov reads version {VERSION}: regenerate it with "
                             "'kcov-build inventory'")
    out = []
    for i, f in enumerate(doc["functions"]):
        try:
            out.append(_function(f))
        except (KeyError, TypeError) as e:
            raise InventoryError(f"{p}: malformed inventory entry {i} ({type(e).__name__}: {e})") from None
    return out
