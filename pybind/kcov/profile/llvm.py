"""llvm-profdata and llvm-cov: merging raw profiles and reporting.

The tools must match the profiles: llvm-profdata-N reads only the raw
version of LLVM N (8 for 14-17, 10 for 19-22), and llvm-cov-N reads the
indexed profiles of LLVM <= N and the coverage mapping of clang <= N.  So
:func:`merge` picks, by default, the *oldest* installed LLVM that reads the
inputs' raw version (its .profdata is then readable by every newer
llvm-cov), and :func:`report` picks the LLVM of the clang that built the
binary (from its ``.comment`` section), else the newest installed.

Every input is vetted first (kcov.profile.raw): empty, truncated or
foreign files, mixed versions and profiles of different binaries raise a
precise :class:`~kcov.profile.errors.ProfileError` before any tool runs.
Outputs are written to a temporary name in the same directory and renamed
into place, so a failure leaves no partial file behind.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

from .._base.files import atomic_directory, atomic_target, write_atomic
from ..report.elf import read_elf
from ..report.model import ReportError
from . import raw
from .errors import (InputNotFoundError, ProfileError, ProfileFormatError, ProfileMismatchError,
                     ProfileVersionError, ToolError, ToolNotFoundError)

__all__ = ["LLVM_FOR_RAW", "Tool", "binary_build_id", "binary_llvm_version", "find_tool", "merge", "pick_version",
           "report", "show", "vet", "vet_indexed"]

PathLike = Union[str, "os.PathLike[str]"]

#: Raw version -> the LLVM majors whose tools read it, oldest first.
LLVM_FOR_RAW: dict[int, tuple[int, ...]] = {8: (14, 15, 16, 17), 10: (19, 20, 21, 22)}
REPORT_FORMATS = ("report", "text", "html", "lcov", "json")


@dataclass(frozen=True)
class Tool:
    name: str  #: e.g. "llvm-profdata"
    version: int  #: LLVM major
    path: str


def _tool_path(name: str, version: int) -> str | None:
    found = shutil.which(f"{name}-{version}")
    if found:
        return found
    p = Path(f"/usr/lib/llvm-{version}/bin/{name}")
    return str(p) if p.is_file() and os.access(p, os.X_OK) else None


def installed_versions(name: str, versions: Iterable[int] = range(13, 30)) -> list[int]:
    return [v for v in versions if _tool_path(name, v) is not None]


def find_tool(name: str, version: int) -> Tool:
    """The llvm tool `name` of LLVM `version`, or ToolNotFoundError."""
    path = _tool_path(name, version)
    if path is None:
        raise ToolNotFoundError(
            f"{name}-{version} is not installed (Debian: apt-get install llvm-{version})")
    return Tool(name, version, path)


def _run(tool: Tool, args: Sequence[str]) -> str:
    return _run2(tool, args)[0]


def _run2(tool: Tool, args: Sequence[str]) -> tuple[str, str]:
    """(stdout, stderr) of a successful run; ToolError with its first error line else."""
    # The tools trust an indexed profile past its header: a damaged one can
    # crash them, and their crash handler would spend seconds symbolising.
    env = {**os.environ, "LLVM_DISABLE_SYMBOLIZATION": "1"}
    try:
        p = subprocess.run([tool.path, *args], capture_output=True, text=True, timeout=600, check=False, env=env)
    except OSError as e:
        raise ToolNotFoundError(f"{tool.path}: cannot run: {e.strerror}") from None
    if p.returncode < 0:
        try:
            sig = signal.Signals(-p.returncode).name
        except ValueError:
            sig = f"signal {-p.returncode}"
        why = next((ln.strip() for ln in p.stderr.splitlines() if ln.startswith("LLVM ERROR")), "")
        raise ToolError(f"{tool.name}-{tool.version} crashed ({sig}{': ' + why if why else ''}) on its inputs: "
                        "one of them is damaged")
    if p.returncode != 0:
        lines = [ln.strip() for ln in p.stderr.splitlines() if ln.strip()]
        msg = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else f"exit status {p.returncode}")
        raise ToolError(f"{tool.name}-{tool.version} failed: {msg}")
    return p.stdout, p.stderr


# --- Vetting inputs --------------------------------------------------------------


def _magic(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise InputNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ProfileFormatError(f"{path}: a directory, not a profile") from None
    except OSError as e:
        raise ProfileFormatError(f"{path}: cannot read: {e.strerror}") from None
    if len(head) < 8:
        raise ProfileFormatError(f"{path}: {'empty file' if not head else 'truncated'}, not a profile")
    return int(struct.unpack("<Q", head)[0])


def vet_indexed(path: Path) -> None:
    """Check an indexed profile (.profdata): ProfileFormatError unless its
    header and summary lie inside the file.  A damaged one makes clang itself
    crash, so kcov-build's --pgo-use asks this first.

    The layout is InstrProf.h's IndexedInstrProf::Header: Magic, Version, Unused,
    HashType, HashOffset, then MemProfOffset from version 8, BinaryIdOffset
    from 9, TemporalProfTracesOffset from 10, VTableNamesOffset from 12;
    from version 4 a summary of at least 6 fields follows)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ProfileFormatError(f"{path}: cannot read: {e.strerror}") from None
    version = struct.unpack_from("<Q", data, 8)[0] & 0xFFFFFFFF if len(data) >= 16 else 0
    words = 5 + (version >= 8) + (version >= 9) + (version >= 10) + (version >= 12)
    if len(data) < 8 * words or version == 0:
        raise ProfileFormatError(f"{path}: truncated or damaged indexed profile header ({len(data)} bytes, "
                                 f"version {version})")
    h = struct.unpack_from(f"<{words}Q", data)
    if not all(8 * words <= off < len(data) for off in (h[4], *(x for x in h[5:] if x))):
        raise ProfileFormatError(f"{path}: truncated or damaged indexed profile: its header points "
                                 f"past the end of the file ({len(data)} bytes)")
    if 4 <= version <= 12:
        fields, entries = struct.unpack_from("<QQ", data, 8 * words) if len(data) >= 8 * words + 16 else (0, 0)
        if fields < 6 or 8 * words + 16 + 8 * fields + 24 * entries > len(data):
            raise ProfileFormatError(f"{path}: truncated or damaged indexed profile summary ({fields} fields, "
                                     f"{entries} entries)")


def vet(profraws: Sequence[PathLike], *, allow_mixed_binaries: bool = False) -> tuple[int, list[Path]]:
    """Check raw inputs: (their common raw version, indexed inputs)."""
    if not profraws:
        raise ProfileError("no input profiles")
    versions: dict[int, Path] = {}
    first: tuple[Path, set[tuple[object, ...]], str] | None = None
    indexed: list[Path] = []
    for item in profraws:
        path = Path(item)
        if _magic(path) == raw.INDEXED_MAGIC:
            vet_indexed(path)
            indexed.append(path)
            continue
        profs = raw.read(path)
        v = profs[0].version
        versions.setdefault(v, path)
        if len(versions) > 1:
            (v1, p1), (v2, p2) = list(versions.items())[:2]
            raise ProfileVersionError(
                f"{p1} is raw profile version {v1} ({raw.llvm_releases(v1)}) but {p2} is version {v2} "
                f"({raw.llvm_releases(v2)}): profiles of one program come from one compiler")
        # A file holds one profile per image of a run (a program and the
        # libraries it loaded); runs of one program share at least one image.
        images = {p.identity for p in profs}
        desc = "; ".join(p.describe_identity() for p in profs)
        if first is None:
            first = (path, images, desc)
        elif not (images & first[1]) and not allow_mixed_binaries:
            raise ProfileMismatchError(
                f"{first[0]} and {path} are profiles of different binaries ({first[2]} vs {desc}); merge each "
                "binary's profiles separately, or pass allow_mixed_binaries=True to combine them")
    if not versions:
        raise ProfileError("no raw profiles among the inputs (only indexed .profdata files)")
    return next(iter(versions)), indexed


def pick_version(raw_version: int, want: int | None, name: str) -> int:
    """The LLVM major whose tool `name` (llvm-profdata, ...) to use for raw
    profile version raw_version: `want` if that one reads it, else the oldest
    installed one that does (ProfileVersionError, ToolNotFoundError)."""
    capable = LLVM_FOR_RAW.get(raw_version, ())
    if want is not None:
        if want not in capable:
            readers = f"LLVM {capable[0]}-{capable[-1]}" if capable else "no LLVM this kcov knows"
            raise ProfileVersionError(
                f"{name}-{want} cannot read raw profile version {raw_version} ({raw.llvm_releases(raw_version)}); "
                f"it is read by {readers}")
        return want
    have = installed_versions(name, capable)
    if not have:
        raise ToolNotFoundError(
            f"no {name} for raw profile version {raw_version} is installed: it needs one of "
            + ", ".join(f"{name}-{v}" for v in capable)
            + f" (Debian: apt-get install llvm-{capable[0]})")
    return have[0]


def merge(profraws: Sequence[PathLike], out: PathLike, *, llvm_version: int | None = None,
          allow_mixed_binaries: bool = False, sparse: bool = False) -> Path:
    """Merge raw profiles (and .profdata files) into an indexed profile.

    Args:
        profraws: raw profiles of one binary (several images in one file are
            fine: that is one program); indexed profiles may be mixed in.
        out: the .profdata to write (atomically).
        llvm_version: the LLVM whose llvm-profdata to use; by default the
            oldest installed one that reads the inputs' raw version.
        allow_mixed_binaries: accept profiles of different binaries.
    Returns the output path.
    """
    version, _ = vet(profraws, allow_mixed_binaries=allow_mixed_binaries)
    tool = find_tool("llvm-profdata", pick_version(version, llvm_version, "llvm-profdata"))
    dst = Path(out)
    with atomic_target(dst) as tmp:
        _run(tool, ["merge", *(["--sparse"] if sparse else []), "-o", str(tmp), *map(str, profraws)])
    return dst


def show(profile: PathLike, *, llvm_version: int | None = None) -> str:
    """`llvm-profdata show --all-functions --counts` of a raw or indexed profile."""
    path = Path(profile)
    if _magic(path) == raw.INDEXED_MAGIC:
        vet_indexed(path)
        v = llvm_version or max(installed_versions("llvm-profdata") or [19])
    else:
        version, _ = vet([path], allow_mixed_binaries=True)
        v = pick_version(version, llvm_version, "llvm-profdata")
    return _run(find_tool("llvm-profdata", v), ["show", "--all-functions", "--counts", str(path)])


_CLANG_RE = re.compile(rb"clang version (\d+)\.")


def binary_llvm_version(binary: PathLike) -> int | None:
    """The major version of the clang that built `binary`, from the ELF
    .comment section (None if it says nothing about clang)."""
    try:
        with read_elf(binary) as elf:
            sec = elf.section(".comment")
            comment = bytes(elf.data(sec)) if sec is not None else b""
    except ReportError:  # missing, unreadable or not ELF
        return None
    versions = [int(m.group(1)) for m in _CLANG_RE.finditer(comment)]
    return max(versions) if versions else None


def binary_build_id(binary: PathLike) -> str | None:
    """The GNU build ID of an ELF file (hex), as the runtime writes it into
    the profile's binary IDs."""
    try:
        with read_elf(binary) as elf:
            return elf.build_id or None
    except ReportError:  # missing, unreadable or not ELF
        return None


def report(binaries: PathLike | Sequence[PathLike], profile: PathLike, *, format: str = "report",
           output: PathLike | None = None, llvm_version: int | None = None,
           sources: Sequence[PathLike] = (), extra_args: Sequence[str] = ()) -> str:
    """An llvm-cov report of `binaries` (executables or shared objects) with
    `profile` (a .profdata, or raw profiles, merged on the fly).

    format: "report" (llvm-cov report: the per-file summary table), "text"
    (llvm-cov show: annotated sources), "html" (llvm-cov show -format=html,
    into the directory `output`, required), "lcov" (llvm-cov export
    -format=lcov), "json" (llvm-cov export).  The text is returned; with
    `output` it is also written there atomically (html: the directory
    appears whole or not at all).
    """
    if format not in REPORT_FORMATS:
        raise ProfileError(f"unknown report format {format!r} (one of {', '.join(REPORT_FORMATS)})")
    bins = [Path(binaries)] if isinstance(binaries, (str, os.PathLike)) else [Path(b) for b in binaries]
    if not bins:
        raise ProfileError("no binary given")
    for b in bins:
        if not b.is_file():
            raise InputNotFoundError(f"{b}: no such binary")
    if format == "html" and output is None:
        raise ProfileError("format='html' needs an output directory")
    prof = Path(profile)
    magic = _magic(prof)
    if magic == raw.INDEXED_MAGIC:
        vet_indexed(prof)
    if llvm_version is None:
        found = [v for v in (binary_llvm_version(b) for b in bins) if v is not None]
        llvm_version = max(found) if found else None
    with tempfile.TemporaryDirectory(prefix="kcov-profile-") as td:
        if magic != raw.INDEXED_MAGIC:
            profs = raw.read(prof)
            ids = {i for p in profs for i in p.binary_ids}
            for b in bins:
                bid = binary_build_id(b)
                if ids and bid is not None and bid not in ids:
                    raise ProfileMismatchError(
                        f"{prof} holds no profile of {b}: the binary's build ID is {bid}, the profile's "
                        + ", ".join(sorted(ids)) + " (profile and binary come from different builds)")
            version, _ = vet([prof])
            mv = llvm_version if llvm_version in LLVM_FOR_RAW.get(version, ()) else None
            prof = merge([prof], Path(td) / "merged.profdata", llvm_version=mv)
        if llvm_version is None:
            have = installed_versions("llvm-cov")
            if not have:
                raise ToolNotFoundError("llvm-cov is not installed (Debian: apt-get install llvm-19)")
            llvm_version = have[-1]
        tool = find_tool("llvm-cov", llvm_version)
        objs = [str(bins[0]), *(a for b in bins[1:] for a in ("-object", str(b)))]
        common = [f"-instr-profile={prof}", *extra_args]
        srcs = [str(s) for s in sources]

        def cov(args: list[str]) -> str:
            out, err = _run2(tool, args)
            m = re.search(r"warning: (\d+) functions have mismatched data", err)
            if m:
                # llvm-cov then reports those functions as never run: a
                # silently wrong report.
                raise ProfileMismatchError(
                    f"{profile} does not match {', '.join(map(str, bins))}: {m.group(1)} functions have "
                    "mismatched data (the profile comes from another build of the program)")
            return out

        if format == "report":
            return _emit(cov(["report", *objs, *common, *srcs]), output)
        if format == "text":
            return _emit(cov(["show", *objs, *common, *srcs]), output)
        if format in ("lcov", "json"):
            fmt = "lcov" if format == "lcov" else "text"
            return _emit(cov(["export", f"-format={fmt}", *objs, *common, *srcs]), output)
        assert output is not None
        dst = Path(output)
        with atomic_directory(dst) as tmp:
            cov(["show", "-format=html", f"-output-dir={tmp}", *objs, *common, *srcs])
        return str(dst / "index.html")


def _emit(text: str, output: PathLike | None) -> str:
    if output is not None:
        write_atomic(output, text)
    return text
