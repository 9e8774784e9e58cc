"""kcov-report's outputs: `-o FORMAT:PATH` specifications, the options each
format takes, and writing them."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from os import EX_CANTCREAT
from pathlib import Path
from typing import Any, Callable, Sequence


from . import formats
from .formats.base import STAMP
from .model import CoverageData, ReportError

from .inputs import UsageError


# -- outputs ------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    fmt: str
    path: str


def _format_options() -> dict[str, formats.Option]:
    out: dict[str, formats.Option] = {}
    for h in formats.FORMATS.values():
        for o in h.write_options:
            out.setdefault(o.name, o)
    return out


def parse_outputs(specs: Sequence[str], fmt: str | None, readable: bool = False
                  ) -> list[Output]:
    """``[FORMAT:]PATH`` specs -> outputs, checked: known writable format,
    a path that can be created."""
    if fmt is not None:
        formats.get(fmt)
    outs = []
    for spec in specs:
        name, sep, rest = spec.partition(":")
        f: str | None = fmt
        path = spec
        if sep and name in formats.FORMATS and rest:
            f, path = name, rest
        if f is None:
            f = formats.for_path(path)
        if f is None and path != "-" and (path.endswith("/") or (Path(path) / STAMP).is_file()):
            f = "html"
        if f is None:
            known = ", ".join(n for n, h in formats.FORMATS.items() if h.can_write)
            raise UsageError(f"cannot tell the format of {spec} from its name: give "
                             f"--format or FORMAT:{spec} (formats: {known})")
        h = formats.get(f)
        if not h.can_write:
            raise UsageError(f"format {f!r} cannot be written")
        if readable and not h.can_read:
            can = ", ".join(n for n, x in formats.FORMATS.items() if x.can_read and x.can_write)
            raise UsageError(f"{spec}: merge writes a format that can be merged again "
                             f"({can}); use convert for {f}")
        check_writable(path, f)
        outs.append(Output(f, path))
    return outs


def check_writable(path: str, fmt: str) -> None:
    """Fail early (before a long collection) on an output that cannot be
    created; the writers check again, atomically."""
    if path == "-":
        return
    p = Path(path)
    directory_output = fmt == "html" and p.suffix.lower() not in (".html", ".htm")
    if p.is_dir() and not directory_output:
        raise ReportError(f"cannot write {p}: is a directory", EX_CANTCREAT)
    a = p.parent
    while not a.exists() and a != a.parent:
        a = a.parent
    if not a.is_dir():
        raise ReportError(f"cannot write {p}: {a} is not a directory", EX_CANTCREAT)
    if not os.access(a, os.W_OK | os.X_OK):
        raise ReportError(f"cannot write {p}: permission denied", EX_CANTCREAT)


def _given_format_options(args: argparse.Namespace) -> dict[str, Any]:
    return {n: getattr(args, n) for n in _format_options()
            if getattr(args, n, None) is not None}


def _check_options_used(given: dict[str, Any], outs: Sequence[Output]) -> None:
    for name in given:
        users = [n for n, h in formats.FORMATS.items()
                 if any(o.name == name for o in h.write_options)]
        if not any(o.fmt in users for o in outs):
            raise UsageError(f"--{name.replace('_', '-')} applies to "
                             f"{', '.join(users)} output only")


def write_outputs(data: CoverageData, outs: Sequence[Output], given: dict[str, Any],
                  say: Callable[[str], None]) -> None:
    for o in outs:
        h = formats.get(o.fmt)
        names = {x.name for x in h.write_options}
        say(f"writing {o.fmt} to {o.path}")
        formats.write(data, o.fmt, o.path, **{k: v for k, v in given.items() if k in names})


