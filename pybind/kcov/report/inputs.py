"""kcov-report's inputs: telling a kcov-pcs dump, coverage JSON and lcov
apart, finding the binaries a dump names, and loading them into one
CoverageData; the usage errors and progress line every command shares."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from os import EX_NOINPUT, EX_USAGE
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import _base
from . import formats
from .collect import collect
from .elf import read_elf
from .model import CoverageData, FormatError, ReportError
from .pcs import ModuleMap, PcDump, module_maps, read_pcs


PROG = "kcov-report"
INPUT_HELP = "a kcov-pcs dump, kcov coverage JSON or lcov; '-' is stdin (not for dumps)"


class UsageError(ReportError, _base.UsageError):
    exit_status = EX_USAGE


# -- progress -----------------------------------------------------------------


class Progress:
    """Step lines on stderr (``--progress``, or by default when stderr is a
    terminal), and warnings (unless ``--quiet``)."""

    def __init__(self, enabled: bool, quiet: bool) -> None:
        self.enabled = enabled and not quiet
        self.quiet = quiet
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        if msg.startswith("warning:"):
            if not self.quiet:
                print(f"{PROG}: {msg}", file=sys.stderr, flush=True)
        elif self.enabled:
            print(f"{PROG}: [{time.monotonic() - self.t0:6.1f}s] {msg}",
                  file=sys.stderr, flush=True)


# -- inputs -------------------------------------------------------------------


@dataclass(frozen=True)
class InputOptions:
    binaries: tuple[Path, ...] = ()
    binary_dirs: tuple[Path, ...] = ()
    modules: tuple[ModuleMap, ...] = ()
    universe: bool = True
    inventory: Path | None = None
    force: bool = False


def _head(path: str) -> tuple[bytes, bytes | None]:
    """The first bytes of an input (and all of stdin's, which cannot be
    read twice)."""
    if path == "-":
        raw = sys.stdin.buffer.read()
        return raw[:4096], raw
    try:
        with open(path, "rb") as f:
            return f.read(4096), None
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file", EX_NOINPUT) from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, expected a coverage file or "
                          "a kcov-pcs dump", EX_NOINPUT) from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror or e}", EX_NOINPUT) from None


def _bare_pcs(head: bytes) -> bool:
    for ln in head.splitlines()[:8]:
        s = ln.strip()
        if not s or s.startswith(b"#"):
            continue
        try:
            int(s, 16)
        except ValueError:
            return False
        return True
    return False


def classify(path: str) -> tuple[str, bytes | None]:
    """``("pcs", None)`` for a PC dump, ``("bare", None)`` for bare PCs,
    else ``(format name, stdin bytes or None)``."""
    head, raw = _head(path)
    source = "<stdin>" if path == "-" else path
    kind = ""
    if head.lstrip().startswith(b"kcov-pcs"):
        kind = "pcs"
    elif head.startswith(b"\x7fELF"):
        raise FormatError(f"{source}: an ELF binary, not coverage data (give binaries "
                          "with --binary)")
    else:
        try:
            kind = formats.detect(head, source)
        except FormatError:
            if not _bare_pcs(head):
                raise
            kind = "bare"
    if kind in ("pcs", "bare") and raw is not None:
        raise UsageError("<stdin>: read PC dumps from a file, not from stdin")
    return kind, raw


def maps_with_pcs(dump: PcDump) -> list[ModuleMap]:
    arrays = [np.asarray(v, dtype=np.uint64) for v in dump.tests.values() if len(v)]
    if not arrays:
        return []
    pcs = np.concatenate(arrays)
    # A PC is a return address: the call lies just before it.
    return [m for m in dump.modules
            if bool(((pcs > np.uint64(m.start)) & (pcs <= np.uint64(m.end))).any())]


def _elf_build_id(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return None
        with read_elf(path) as e:
            return e.build_id
    except (OSError, ReportError):
        return None


def binaries_in(dirs: Sequence[Path], dumps: Sequence[PcDump], say: Progress) -> list[Path]:
    """The files under ``dirs`` that are binaries of modules the dumps
    recorded PCs in: same build id, or the same file name for modules
    without one (only these: a binary given to collect() that no PC reached
    is reported as 0 of N)."""
    want_ids: set[str] = set()
    want_names: set[str] = set()
    for d in dumps:
        for m in maps_with_pcs(d):
            if m.build_id:
                want_ids.add(m.build_id)
            else:
                want_names.add(os.path.basename(m.path))
    found: list[Path] = []
    for top in dirs:
        if not top.is_dir():
            raise ReportError(f"--binaries {top}: no such directory", EX_NOINPUT)
        for root, subdirs, files in os.walk(top):
            subdirs.sort()
            for f in sorted(files):
                if not want_ids and not want_names:
                    break
                p = Path(root) / f
                if not p.is_file():
                    continue
                if f in want_names:
                    want_names.discard(f)
                    found.append(p)
                    continue
                if want_ids:
                    bid = _elf_build_id(p)
                    if bid and bid in want_ids:
                        want_ids.discard(bid)
                        found.append(p)
    for p in found:
        say(f"binary {p}")
    return found


def load(paths: Sequence[str], opts: InputOptions, say: Progress) -> CoverageData:
    """One merged :class:`CoverageData` of the inputs."""
    dumps: list[PcDump] = []
    parts: list[CoverageData] = []
    for p in paths:
        kind, raw = classify(p)
        if kind == "bare" and not opts.modules:
            raise FormatError(f"{p}: bare PCs (syzkaller rawcover, kcovtrace): say where "
                              "they were recorded with --module BINARY@BASE")
        if kind in ("pcs", "bare"):
            dump = read_pcs(p, list(opts.modules) or None)
            say(f"read {p}: {dump.count} PCs, {len(dump.tests)} test(s), "
                f"{len(dump.modules)} module map(s)")
            dumps.append(dump)
        else:
            say(f"reading {p} ({kind})")
            parts.append(formats.read_bytes(raw, "<stdin>", kind) if raw is not None
                         else formats.read(p, kind))
    data = CoverageData()
    if dumps:
        binaries = list(opts.binaries) + binaries_in(opts.binary_dirs, dumps, say)
        data = collect(dumps, binaries=binaries, universe=opts.universe,
                       inventory=opts.inventory, progress=say, force=opts.force)
        for d in dumps:  # tests that reached nothing are tests too
            data.tests |= set(d.tests)
    if parts:
        say(f"merging {len(parts) + bool(dumps)} input(s)")
        data = data.merge(*parts)
    return data


def _parse_module(spec: str) -> list[ModuleMap]:
    path, _, base = spec.partition("@")
    try:
        b = int(base, 16) if base else 0
    except ValueError:
        raise UsageError(f"--module {spec}: the base must be hex (BINARY@0xADDRESS)") from None
    return module_maps(path, b)


def input_options(args: argparse.Namespace) -> InputOptions:
    mods: list[ModuleMap] = []
    for spec in getattr(args, "module", None) or ():
        mods += _parse_module(spec)
    return InputOptions(
        binaries=tuple(Path(b) for b in getattr(args, "binary", None) or ()),
        binary_dirs=tuple(Path(b) for b in getattr(args, "binaries", None) or ()),
        modules=tuple(mods),
        universe=not getattr(args, "no_universe", False),
        inventory=Path(args.inventory) if getattr(args, "inventory", None) else None,
        force=bool(getattr(args, "force", False)),
    )


def _check_inventory(opts: InputOptions, paths: Sequence[str]) -> None:
    if opts.inventory is not None and not any(classify(p)[0] in ("pcs", "bare")
                                              for p in paths if p != "-"):
        raise UsageError("--inventory needs a kcov-pcs input (the functions are matched "
                         "to the symbolised points of its binaries)")


