"""Reading raw LLVM profiles (.profraw) enough to vet them.

llvm-profdata's own messages for a bad input are terse ("malformed
instrumentation profile data") and name no file, so kcov.profile checks
every input first: the magic, the version, that each profile fits in the
file, the binary IDs.  A file may hold several raw profiles back to back
(one per image, as the runtime appends them); each is described by a
:class:`RawProfile`.

The layouts are those of ``InstrProfData.inc``: header words and data
records of raw v8 (LLVM 14-17) and v10 (LLVM 19-22).  Other versions are
recognised by number only, to name the LLVM release that wrote them.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .errors import InputNotFoundError, ProfileFormatError, ProfileVersionError

__all__ = [
    "INDEXED_MAGIC",
    "RAW_MAGIC32",
    "RAW_MAGIC64",
    "SUPPORTED_VERSIONS",
    "RawProfile",
    "llvm_releases",
    "parse",
    "read",
]

PathLike = Union[str, "Path"]

RAW_MAGIC64 = 0xFF6C70726F667281
RAW_MAGIC32 = 0xFF6C70726F665281
INDEXED_MAGIC = 0x8169666F72706CFF
SUPPORTED_VERSIONS = (8, 10)

# Raw version -> the LLVM releases that write it (spec llvm-profile-sancov.md §1.1).
_RELEASES = {5: "LLVM 11-12", 6: "LLVM trunk (2021)", 7: "LLVM 13", 8: "LLVM 14-17", 9: "LLVM 18", 10: "LLVM 19-22",
             11: "LLVM 23"}
VARIANT_BYTE_COVERAGE = 1 << 60
VARIANT_DBG_CORRELATE = 1 << 59
VARIANT_TEMPORAL = 1 << 63


def llvm_releases(version: int) -> str:
    """Which LLVM releases write raw profile `version` (for messages)."""
    return _RELEASES.get(version, "an unknown LLVM release")


def _pad8(n: int) -> int:
    return (8 - n % 8) % 8


@dataclass(frozen=True)
class RawProfile:
    """One raw profile inside a file."""

    offset: int  #: where it starts in the file
    size: int  #: its bytes
    version: int  #: raw version (low 32 bits of the version word)
    variant: int  #: the variant bits of the version word
    pointer_size: int  #: 8 or 4 (from the magic)
    byte_order: str  #: "<" or ">"
    binary_ids: tuple[str, ...]  #: hex build IDs of the image
    num_data: int  #: functions
    num_counters: int
    num_bitmap_bytes: int
    names_size: int
    first_name_ref: int  #: NameRef of the first function (0 if none)

    @property
    def identity(self) -> tuple[object, ...]:
        """What tells one binary from another: its build IDs, else (for images
        built without one) its sizes and first function, like %m's signature."""
        if self.binary_ids:
            return ("build-id", *self.binary_ids)
        return ("shape", self.version, self.num_data, self.num_counters, self.names_size, self.first_name_ref)

    def describe_identity(self) -> str:
        if self.binary_ids:
            return "build ID " + ", ".join(self.binary_ids)
        return f"no build ID; {self.num_data} functions, {self.num_counters} counters"


def _header_fields(version: int) -> tuple[str, ...]:
    if version == 8:
        return ("Magic", "Version", "BinaryIdsSize", "NumData", "PaddingBytesBeforeCounters", "NumCounters",
                "PaddingBytesAfterCounters", "NamesSize", "CountersDelta", "NamesDelta", "ValueKindLast")
    return ("Magic", "Version", "BinaryIdsSize", "NumData", "PaddingBytesBeforeCounters", "NumCounters",
            "PaddingBytesAfterCounters", "NumBitmapBytes", "PaddingBytesAfterBitmapBytes", "NamesSize",
            "CountersDelta", "BitmapDelta", "NamesDelta", "NumVTables", "VNamesSize", "ValueKindLast")


def _record_layout(version: int, psize: int) -> tuple[int, int, int]:
    """(record size, offset of NumValueSites, number of value kinds)."""
    if version == 8:
        return (24 + 3 * psize + 7) & ~7, 20 + 3 * psize, 2
    return (32 + 4 * psize + 7) & ~7, 20 + 4 * psize, 3


def _parse_one(data: bytes, off: int, name: str) -> RawProfile:
    n = len(data)
    if n - off < 16:
        raise ProfileFormatError(
            f"{name}: truncated: {n - off} bytes at offset {off} are too few for a raw profile header")
    (magic_le,) = struct.unpack_from("<Q", data, off)
    if magic_le in (RAW_MAGIC64, RAW_MAGIC32):
        bo = "<"
    elif magic_le in (int.from_bytes(RAW_MAGIC64.to_bytes(8, "little"), "big"),
                      int.from_bytes(RAW_MAGIC32.to_bytes(8, "little"), "big")):
        bo = ">"
    elif magic_le == INDEXED_MAGIC:
        raise ProfileFormatError(f"{name}: an indexed profile (.profdata), not a raw profile (.profraw)")
    else:
        where = f" at offset {off}" if off else ""
        raise ProfileFormatError(f"{name}: not a raw LLVM profile: magic {magic_le:#018x}{where} "
                                 f"(a .profraw starts with {RAW_MAGIC64:#018x})")
    (magic, word) = struct.unpack_from(bo + "QQ", data, off)
    psize = 8 if magic == RAW_MAGIC64 else 4
    version = word & 0xFFFFFFFF
    variant = word & ~0xFFFFFFFF
    if version not in SUPPORTED_VERSIONS:
        raise ProfileVersionError(
            f"{name}: raw profile version {version} ({llvm_releases(version)}); kcov handles versions 8 "
            "(LLVM 14-17) and 10 (LLVM 19-22)")
    fields = _header_fields(version)
    hsize = 8 * len(fields)
    if n - off < hsize:
        raise ProfileFormatError(f"{name}: truncated: the raw v{version} header needs {hsize} bytes, "
                                 f"{n - off} remain at offset {off}")
    h = dict(zip(fields, struct.unpack_from(bo + f"{len(fields)}Q", data, off)))
    if h["BinaryIdsSize"] % 8 or h["ValueKindLast"] != (1 if version == 8 else 2):
        raise ProfileFormatError(f"{name}: malformed raw v{version} header at offset {off} "
                                 f"(BinaryIdsSize {h['BinaryIdsSize']}, ValueKindLast {h['ValueKindLast']})")
    csize = 1 if word & VARIANT_BYTE_COVERAGE else 8
    rec, off_vs, kinds = _record_layout(version, psize)
    limit = 1 << 40  # no real section is a terabyte: a bigger number is garbage
    for k in ("BinaryIdsSize", "NumData", "NumCounters", "NamesSize", "PaddingBytesBeforeCounters",
              "PaddingBytesAfterCounters", *(("NumBitmapBytes", "PaddingBytesAfterBitmapBytes", "NumVTables",
                                             "VNamesSize") if version == 10 else ())):
        if h[k] > limit:
            raise ProfileFormatError(f"{name}: malformed raw v{version} header at offset {off} ({k} = {h[k]})")

    pos = off + hsize
    ids_end = pos + h["BinaryIdsSize"]
    data_pos = ids_end
    end = data_pos + h["NumData"] * rec + h["PaddingBytesBeforeCounters"] + h["NumCounters"] * csize
    end += h["PaddingBytesAfterCounters"]
    if version == 10:
        end += h["NumBitmapBytes"] + h["PaddingBytesAfterBitmapBytes"]
    end += h["NamesSize"] + _pad8(h["NamesSize"])
    if version == 10:
        vt = h["NumVTables"] * (8 + psize + 4 + (4 if psize == 8 else 0))
        end += vt + _pad8(vt) + h["VNamesSize"] + _pad8(h["VNamesSize"])
    if end > n:
        raise ProfileFormatError(
            f"{name}: truncated: the raw profile at offset {off} needs at least {end - off} bytes, "
            f"{n - off} remain")

    ids: list[str] = []
    while pos < ids_end:
        if ids_end - pos < 8:
            raise ProfileFormatError(f"{name}: malformed binary IDs at offset {pos}")
        (ln,) = struct.unpack_from(bo + "Q", data, pos)
        pos += 8
        if ln > ids_end - pos:
            raise ProfileFormatError(f"{name}: malformed binary ID at offset {pos - 8} (length {ln})")
        ids.append(data[pos:pos + ln].hex())
        pos += ln + _pad8(ln)

    # Value data: one blob per record with value sites; each says its size.
    for i in range(h["NumData"]):
        r = data_pos + i * rec
        sites = struct.unpack_from(bo + f"{kinds}H", data, r + off_vs)
        if not any(sites):
            continue
        if end + 8 > n:
            raise ProfileFormatError(f"{name}: truncated: value profile data of function {i} missing "
                                     f"at offset {end}")
        (total,) = struct.unpack_from(bo + "I", data, end)
        if total < 8 or total % 8 or end + total > n:
            raise ProfileFormatError(f"{name}: truncated or malformed value profile data at offset {end}")
        end += total
    first = struct.unpack_from(bo + "Q", data, data_pos)[0] if h["NumData"] else 0
    return RawProfile(
        offset=off, size=end - off, version=version, variant=variant, pointer_size=psize, byte_order=bo,
        binary_ids=tuple(ids), num_data=h["NumData"], num_counters=h["NumCounters"],
        num_bitmap_bytes=h.get("NumBitmapBytes", 0), names_size=h["NamesSize"], first_name_ref=first,
    )


def parse(data: bytes, name: str = "<bytes>") -> list[RawProfile]:
    """Every raw profile in `data` (several may follow each other, 8-aligned,
    with zero padding between them, as llvm-profdata accepts)."""
    if not data:
        raise ProfileFormatError(f"{name}: empty file, not a raw profile")
    out: list[RawProfile] = []
    off = 0
    while True:
        p = _parse_one(data, off, name)
        if out and (p.version, p.pointer_size, p.byte_order) != (out[0].version, out[0].pointer_size,
                                                                  out[0].byte_order):
            raise ProfileFormatError(f"{name}: the raw profile at offset {off} is v{p.version}, the first is "
                                     f"v{out[0].version}: not one program's file")
        out.append(p)
        off += p.size
        while off < len(data) and data[off] == 0:
            off += 1
        if off >= len(data):
            return out
        if off % 8:
            raise ProfileFormatError(f"{name}: the bytes at offset {off} are neither zero padding nor a raw profile")


def read(path: PathLike) -> list[RawProfile]:
    """The raw profiles in a file (see :func:`parse`)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputNotFoundError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ProfileFormatError(f"{p}: a directory, not a raw profile") from None
    except OSError as e:
        raise ProfileFormatError(f"{p}: cannot read: {e.strerror}") from None
    return parse(data, str(p))
