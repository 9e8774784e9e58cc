"""The in-process profile runtime (libkcovrt's profile/hosted.c), over ctypes.

Why ctypes and not the pybind11 extension: the profile API is a handful of
plain C calls on caller-owned buffers (kcovprof.h), the same libkcovrt.so
that kcov._core links and that kcov-build --sbcc links into programs, so
dlopen() of that path returns the one instance of the process; ctypes
releases the GIL around each call; and the extension stays the kcov
device's binding only.
"""
from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .errors import ProfileError, ProfileRuntimeError

__all__ = ["Module", "image_of", "library", "modules", "raw_snapshot"]

BUILD_ID_MAX = 64

# KCOVPROF_* codes (kcovprof.h)
ENOSPC = -5
EINVAL = -9


class _Info(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("version", ctypes.c_uint64),
        ("num_data", ctypes.c_uint64),
        ("num_counters", ctypes.c_uint64),
        ("num_bitmap_bytes", ctypes.c_uint64),
        ("names_size", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
        ("signature", ctypes.c_uint64),
        ("status", ctypes.c_int32),
        ("build_id_len", ctypes.c_uint32),
        ("build_id", ctypes.c_uint8 * BUILD_ID_MAX),
        ("name", ctypes.c_char * 1024),
    ]


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def library() -> ctypes.CDLL:
    """libkcovrt.so of this package, with the profile functions typed."""
    global _lib
    with _lib_lock:
        if _lib is None:
            from .. import get_lib_dir

            path = os.path.join(get_lib_dir(), "libkcovrt.so")
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                raise ProfileError(f"cannot load the kcov runtime {path}: {e}; reinstall kcov") from None
            u64, i64, sz, vp = ctypes.c_uint64, ctypes.c_int64, ctypes.c_size_t, ctypes.c_void_p
            sigs: dict[str, tuple[object, list[object]]] = {
                "kcovprof_strerror": (ctypes.c_char_p, [ctypes.c_int]),
                "kcovprof_modules": (ctypes.c_int, [ctypes.POINTER(_Info), ctypes.c_int]),
                "kcovprof_snapshot": (i64, [u64, vp, sz]),
                "kcovprof_reset_module": (ctypes.c_int, [u64]),
                "kcovprof_set_filename": (None, [ctypes.c_char_p]),
                "kcovprof_set_write_at_exit": (None, [ctypes.c_int]),
                "kcovprof_write_files": (ctypes.c_int, []),
                "kcovprof_filename": (ctypes.c_int, [u64, ctypes.c_char_p, sz]),
                "kcovprof_image_of": (ctypes.c_int, [u64, ctypes.POINTER(u64), ctypes.POINTER(u64),
                                                     ctypes.POINTER(u64), ctypes.c_char_p, sz]),
                "kcovprof_sancov_write_buffer": (i64, [ctypes.POINTER(u64), sz, u64, u64, u64, vp, sz]),
            }
            for name, (res, args) in sigs.items():
                fn = getattr(lib, name)
                fn.restype = res
                fn.argtypes = args
            _lib = lib
        return _lib


def strerror(code: int) -> str:
    return (library().kcovprof_strerror(code) or b"unknown error").decode()


@dataclass(frozen=True)
class Module:
    """An instrumented image (executable or shared object) of this process."""

    id: int  #: unique in the process, never reused
    name: str  #: its path
    version: int  #: raw profile version it writes (8 or 10; 0 if unknown)
    variant: int  #: variant bits of the version word
    functions: int
    counters: int
    bitmap_bytes: int
    names_size: int
    size: int  #: bytes of one raw profile
    signature: int  #: the number %m puts into file names
    build_id: str | None
    error: str | None  #: why no profile can be written, or None

    @property
    def path(self) -> Path:
        return Path(self.name)


def modules() -> list[Module]:
    """Every image that registered with the runtime, oldest first.  Images
    without instrumented code (kcov-build links the runtime's per-image
    object into all of them) are left out."""
    lib = library()
    cap = 16
    while True:
        arr = (_Info * cap)()
        n = lib.kcovprof_modules(arr, cap)
        if n <= cap:
            break
        cap = n + 8
    out = []
    for i in arr[:n]:
        if i.num_data == 0 and i.status == 0:
            continue
        out.append(Module(
            id=int(i.id), name=i.name.decode(errors="replace"), version=int(i.version) & 0xFFFFFFFF,
            variant=int(i.version) & ~0xFFFFFFFF, functions=int(i.num_data), counters=int(i.num_counters),
            bitmap_bytes=int(i.num_bitmap_bytes), names_size=int(i.names_size), size=int(i.size),
            signature=int(i.signature),
            build_id=bytes(i.build_id[: i.build_id_len]).hex() if i.build_id_len else None,
            error=strerror(int(i.status)) if i.status else None,
        ))
    return out


def raw_snapshot(m: Module) -> bytes:
    """One raw profile of m, now."""
    if m.error is not None:
        raise ProfileRuntimeError(f"{m.name}: no profile: {m.error}", -1)
    lib = library()
    size = m.size
    for _ in range(3):
        buf = ctypes.create_string_buffer(size)
        n = lib.kcovprof_snapshot(m.id, buf, size)
        if n >= 0:
            return buf.raw[:n]
        if n == EINVAL:
            raise ProfileRuntimeError(f"{m.name}: the image was unloaded", int(n))
        if n != ENOSPC:
            raise ProfileRuntimeError(f"{m.name}: {strerror(int(n))}", int(n))
        size *= 2
    raise ProfileRuntimeError(f"{m.name}: the profile does not fit in {size} bytes", ENOSPC)


PathOrStr = Union[str, "os.PathLike[str]"]


def image_of(pc: int) -> tuple[str, int, int, int] | None:
    """(path, bias, lo, hi) of the loaded image holding pc, whose executable
    segments span [lo, hi); None if no image holds it."""
    lib = library()
    bias, lo, hi = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
    name = ctypes.create_string_buffer(4096)
    if lib.kcovprof_image_of(pc, ctypes.byref(bias), ctypes.byref(lo), ctypes.byref(hi), name, 4096) != 0:
        return None
    return name.value.decode(errors="replace"), bias.value, lo.value, hi.value
