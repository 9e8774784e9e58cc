"""kcov.profile: source-based coverage (SBCC) profiles, in-process and on disk.

Code built with ``kcov-build --sbcc`` (clang's ``-fprofile-instr-generate
-fcoverage-mapping``) links kcov's freestanding profile runtime instead of
compiler-rt's.  Each instrumented image (executable or shared object)
registers its counters with the runtime of the process, which writes
``LLVM_PROFILE_FILE`` (default ``default.profraw``) when the image goes
away, as compiler-rt would.  From Python, at any moment::

    import ctypes, kcov.profile
    lib = ctypes.CDLL("./libkvdev.so")          # built with kcov-build --sbcc
    kcov.profile.reset()                        # zero every counter
    lib.kvdev_ioctl(...)
    kcov.profile.write("test_put.profraw")      # a raw profile of this test
    kcov.profile.merge(["test_put.profraw"], "put.profdata")
    print(kcov.profile.report("libkvdev.so", "put.profdata"))

Raw profiles are written in the layout of the clang that built the code:
version 8 for clang 14-17, 10 for clang 19-22.  Failures raise a
:class:`ProfileError` subclass with a one-line message.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from .._base.files import write_atomic
from . import raw
from .errors import (InputNotFoundError, ProfileError, ProfileFormatError, ProfileMismatchError,
                     ProfileRuntimeError, ProfileVersionError, ToolError, ToolNotFoundError)
from .llvm import binary_llvm_version, merge, pick_version, report, show, vet, vet_indexed
from .raw import RawProfile
from .runtime import Module, image_of, library, modules, raw_snapshot

__all__ = [
    "InputNotFoundError",
    "Module",
    "ProfileError",
    "ProfileFormatError",
    "ProfileMismatchError",
    "ProfileRuntimeError",
    "ProfileVersionError",
    "RawProfile",
    "ToolError",
    "ToolNotFoundError",
    "binary_llvm_version",
    "filename",
    "merge",
    "modules",
    "pick_version",
    "raw",
    "report",
    "reset",
    "sancov",
    "set_filename",
    "show",
    "snapshot",
    "vet",
    "vet_indexed",
    "write",
    "write_at_exit",
    "write_files",
    "write_sancov",
]

ModuleRef = Union[Module, int, str, "os.PathLike[str]", None]


def _select(module: ModuleRef) -> list[Module]:
    mods = modules()
    if module is None:
        if not mods:
            raise ProfileError("no instrumented image is loaded in this process "
                               "(build it with kcov-build --sbcc, then load it)")
        return mods
    if isinstance(module, Module):
        key: object = module.id
    elif isinstance(module, int):
        key = module
    else:
        key = os.fspath(module)
    for m in mods:
        if m.id == key or m.name == key or (isinstance(key, str) and os.path.basename(m.name) == key):
            return [m]
        if isinstance(key, str) and m.name and os.path.exists(key) and os.path.samefile(m.name, key):
            return [m]
    raise ProfileError(f"no instrumented image {key!r} is loaded (loaded: "
                       + (", ".join(m.name for m in mods) or "none") + ")")


def snapshot(module: ModuleRef = None) -> bytes:
    """A raw profile of the counters as they are now.

    With no argument, one raw profile per instrumented image, back to back
    (one file of a program, as llvm-profdata reads it); else the image given
    by :class:`Module`, id, path or file name.  Threads may keep running
    instrumented code meanwhile: every counter is read whole.
    """
    return b"".join(raw_snapshot(m) for m in _select(module))


def reset(module: ModuleRef = None) -> None:
    """Zero the counters (and MC/DC bitmaps) of one image, or of all."""
    lib = library()
    ids = [0] if module is None else [m.id for m in _select(module)]
    for i in ids:
        rc = lib.kcovprof_reset_module(i)
        if rc != 0:
            from .runtime import strerror

            raise ProfileRuntimeError(f"reset failed: {strerror(rc)}", rc)


def write(path: Union[str, "os.PathLike[str]"], module: ModuleRef = None) -> Path:
    """Write :func:`snapshot` to `path` atomically (a temporary file in the
    same directory, renamed into place); returns the path."""
    data = snapshot(module)
    dst = Path(path)
    write_atomic(dst, data)
    return dst


def set_filename(pattern: str | None) -> None:
    """Where images write at exit: a pattern with %p, %h, %t, %m, %Nm, as
    LLVM_PROFILE_FILE (which it overrides; None gives the environment back)."""
    library().kcovprof_set_filename(None if pattern is None else os.fsencode(pattern))


def write_at_exit(enabled: bool) -> None:
    """Whether images write their profile when they go away (exit, dlclose).
    Call it before loading an instrumented library to keep it from creating
    (and truncating) its file."""
    library().kcovprof_set_write_at_exit(1 if enabled else 0)


def write_files() -> None:
    """Write every image's profile to its file now, as at exit."""
    if library().kcovprof_write_files() != 0:
        raise ProfileRuntimeError("writing the profile files failed (see stderr)", -6)


def filename(module: ModuleRef = None) -> Path:
    """The file `module` (default: the first image) would write now."""
    import ctypes

    m = _select(module)[0]
    buf = ctypes.create_string_buffer(4096)
    if library().kcovprof_filename(m.id, buf, 4096) != 0:
        raise ProfileError(f"{m.name}: the profile file name is empty or too long")
    return Path(os.fsdecode(buf.value))


def sancov(pcs: object) -> dict[str, bytes]:
    """.sancov files of kcov PCs (return addresses, e.g. ``Kcov.pcs()``),
    one per loaded image that holds some of them: {image path: contents}.
    Offsets are module-relative (PIE and shared objects load anywhere), as
    ``sancov -print`` and the .symcov tools expect."""
    import ctypes

    import numpy as np

    arr = np.unique(np.asarray(pcs, dtype=np.uint64))
    lib = library()
    out: dict[str, bytes] = {}
    i = 0
    while i < len(arr):
        found = image_of(int(arr[i]))
        if found is None:
            i += 1
            continue
        name, bias, lo, hi = found
        sel = np.ascontiguousarray(arr[(arr >= lo) & (arr < hi)])
        if not len(sel):  # the PC is in the image but not in its code
            i += 1
            continue
        cap = 8 + 8 * len(sel)
        buf = ctypes.create_string_buffer(cap)
        ptr = sel.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64))
        n = lib.kcovprof_sancov_write_buffer(ptr, len(sel), lo, hi, bias, buf, cap)
        if n < 0:
            from .runtime import strerror

            raise ProfileRuntimeError(f"{name}: {strerror(int(n))}", int(n))
        out[name] = buf.raw[:n]
        i = max(i + 1, int(np.searchsorted(arr, hi)))
    return out


def write_sancov(pcs: object, directory: Union[str, "os.PathLike[str]"] = ".", pid: int | None = None) -> list[Path]:
    """Write :func:`sancov` as ``<image name>.<pid>.sancov`` files (the
    names the sancov tool pairs with binaries) into `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in sancov(pcs).items():
        dst = d / f"{os.path.basename(name) or 'unknown'}.{pid if pid is not None else os.getpid()}.sancov"
        write_atomic(dst, data)
        written.append(dst)
    return written
