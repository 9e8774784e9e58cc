"""The Kcov descriptor object, results, and kcov.open()."""
from __future__ import annotations

import contextlib
import ctypes
import enum
import mmap as _mmap
import sys
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import numpy.typing as npt

import kcov._core as _core  # the compiled extension (no stub: pyproject.toml's mypy section)
from .abi import Abi, AbiSpec, Mode, spec
from .errors import KcovError, KcovInvalidError, error_for
from .provider import (FreeBSDDeviceProvider, HostedProvider,
                       LinuxDeviceProvider, Provider)

__all__ = [
    "CMP_DTYPE",
    "Comparisons",
    "Coverage",
    "DEFAULT_ENTRIES",
    "Kcov",
    "State",
    "open",
]

#: Default buffer size in 8-byte entries (512 KiB; a multiple of a page, as
#: the FreeBSD and Linux ABIs require for mmap).
DEFAULT_ENTRIES = 1 << 16

#: dtype of one comparison record, as the kernel lays it out.
CMP_DTYPE = np.dtype([("type", "<u8"), ("arg1", "<u8"), ("arg2", "<u8"),
                      ("pc", "<u8")])

PAGE_SIZE: int = int(_core.PAGE_SIZE)


class State(enum.IntEnum):
    """Descriptor states (FreeBSD's names; KCOVRT_STATE_* values)."""

    CLOSED = 0  #: this object's descriptor was closed (Python-side only)
    OPEN = 1  #: open, no buffer yet
    READY = 2  #: buffer sized; may be mapped and enabled
    RUNNING = 3  #: one thread records into the buffer
    DYING = 4  #: closed while a thread still owns it


@dataclass(frozen=True)
class Coverage:
    """A snapshot of PC coverage: a private copy, unaffected by later
    recording or reset()."""

    pcs: npt.NDArray[np.uint64]  #: the recorded PCs, in order (read-only)
    overflowed: bool  #: records were dropped because the buffer was full
    capacity: int  #: PC records the buffer holds

    def __len__(self) -> int:
        return len(self.pcs)

    def unique(self) -> npt.NDArray[np.uint64]:
        """The distinct PCs, sorted."""
        return np.unique(self.pcs)


@dataclass(frozen=True)
class Comparisons:
    """Comparison records, as a zero-copy view of the buffer plus decoded
    fields.  `records` has the dtype :data:`CMP_DTYPE`."""

    records: npt.NDArray[np.void]  #: read-only structured view
    size: npt.NDArray[np.uint64]  #: operand size in bytes: 1, 2, 4 or 8
    is_const: npt.NDArray[np.bool_]  #: arg1 is a compile-time constant
    overflowed: bool  #: records were dropped because the buffer was full

    def __len__(self) -> int:
        return len(self.records)

    @property
    def type(self) -> npt.NDArray[np.uint64]:
        """The raw type words (KCOV_CMP_SIZE(n) | KCOV_CMP_CONST)."""
        return self.records["type"]

    @property
    def arg1(self) -> npt.NDArray[np.uint64]:
        """First operands (the constant, for constant comparisons)."""
        return self.records["arg1"]

    @property
    def arg2(self) -> npt.NDArray[np.uint64]:
        """Second operands."""
        return self.records["arg2"]

    @property
    def pc(self) -> npt.NDArray[np.uint64]:
        """PCs of the comparisons."""
        return self.records["pc"]

    @classmethod
    def from_records(cls, records: npt.NDArray[np.void],
                     overflowed: bool = False) -> Comparisons:
        """Decode a structured array of :data:`CMP_DTYPE` records."""
        t = records["type"]
        return cls(records, (np.uint64(1) << ((t >> np.uint64(1)) & np.uint64(3))),
                   (t & np.uint64(1)).astype(bool), overflowed)


class Kcov:
    """One kcov descriptor: a buffer, a state, and at most one recording
    thread.  Get one from :func:`kcov.open`.

    The object follows the device contract (see runtime/engine.h): the
    buffer is sized once (:meth:`init`), any thread may :meth:`enable` it,
    only that thread records and may :meth:`disable` it, and a thread that
    exits while enabled leaves the descriptor READY again.  Misuse raises a
    :class:`~kcov.KcovError` subclass carrying the device's errno.

    Views returned by :meth:`pcs` and :meth:`comparisons` are zero-copy and
    read-only; they keep the mapping alive, also after :meth:`close`.
    """

    def __init__(self, provider: Provider, fd: int) -> None:
        self._provider = provider
        self._spec: AbiSpec = spec(provider.abi)
        self._fd = fd
        self._closed = False
        self._entries = 0
        self._mapping: Any = None
        # Tracked in Python for devices, which offer no way to ask.
        self._state = State.OPEN
        self._mode: Mode | None = None
        self._owner: int | None = None

    # --- context management ---------------------------------------------

    def __enter__(self) -> Kcov:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<kcov.Kcov provider={self._provider.name} "
                f"abi={self.abi.name.lower()} fd={self._fd} "
                f"state={self.state.name} entries={self.entries}>")

    # --- properties -----------------------------------------------------

    @property
    def fd(self) -> int:
        """The file descriptor (not valid after close())."""
        return self._fd

    @property
    def provider(self) -> Provider:
        """The provider that opened the descriptor."""
        return self._provider

    @property
    def abi(self) -> Abi:
        """The ABI the descriptor speaks."""
        return self._provider.abi

    @property
    def closed(self) -> bool:
        """True once close() has run."""
        return self._closed

    @property
    def mapping(self) -> Any:
        """The buffer's mapping (a ``_core.Mapping``), or None before init."""
        return self._mapping

    def _hosted_info(self) -> dict[str, Any] | None:
        if self._closed:
            return None
        return self._provider.info(self._fd)

    @property
    def state(self) -> State:
        """The descriptor state: from the hosted runtime itself, tracked in
        Python for a device."""
        if self._closed:
            return State.CLOSED
        inf = self._hosted_info()
        if inf is not None:
            return State(inf["state"])
        return self._state

    @property
    def entries(self) -> int:
        """Buffer size in 8-byte entries (count word included), 0 if unsized."""
        inf = self._hosted_info()
        if inf is not None:
            return int(inf["entries"])
        return self._entries

    @property
    def mode(self) -> Mode | None:
        """The mode of the last enable, None if never enabled."""
        inf = self._hosted_info()
        # The runtime reports NONE until the first enable (NetBSD's NONE
        # mode only exists while RUNNING).
        if inf is not None and (inf["mode"] != 0 or inf["state"] == State.RUNNING):
            return Mode(inf["mode"])
        return self._mode

    def _capacity(self, mode: Mode | None) -> int:
        n = self._entries if self._closed else self.entries
        if n == 0:
            return 0
        return (n - 1) // 4 if mode == Mode.CMP else n - 1

    @property
    def capacity(self) -> int:
        """Records the buffer holds in the current (or last) mode."""
        return self._capacity(self.mode)

    def _raw_count(self) -> int:
        if self._mapping is None:
            return 0
        return int(self._mapping.count())

    @property
    def count(self) -> int:
        """Records in the buffer, clamped to capacity: word 0 lives in
        user-writable memory and is never trusted beyond it."""
        return min(self._raw_count(), self.capacity)

    @property
    def overflowed(self) -> bool:
        """True if records were dropped since the last reset.

        The hosted runtime counts drops privately.  A kernel device keeps no
        such flag, so a full buffer is taken as overflow, as syzkaller does.
        """
        inf = self._hosted_info()
        if inf is not None:
            return int(inf["dropped"]) > 0
        cap = self.capacity
        return cap > 0 and self._raw_count() >= cap

    @property
    def info(self) -> dict[str, Any]:
        """Everything known about the descriptor, as a dict."""
        d: dict[str, Any] = {
            "provider": self._provider.name,
            "abi": self.abi.name.lower(),
            "fd": self._fd,
            "state": self.state.name,
            "mode": None if self.mode is None else self.mode.name,
            "entries": self.entries,
            "capacity": self.capacity,
            "count": self.count,
            "overflowed": self.overflowed,
        }
        inf = self._hosted_info()
        if inf is not None:
            for k in ("bufsize", "dropped", "owner_tid", "orphaned"):
                d[k] = inf[k]
        return d

    # --- raw calls --------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise error_for(9, what, State.CLOSED.name)  # EBADF

    def ioctl(self, cmd: int, arg: int = 0) -> None:
        """Raw ioctl on the descriptor, `arg` passed as is (a value, or an
        address for the NetBSD/OpenBSD ABIs).  Raises a KcovError subclass
        with the device's errno."""
        what = self._spec.cmd_name(cmd)
        self._check_open(what)
        before = self.state
        err = self._provider.ioctl(self._fd, cmd, arg)
        if err != 0:
            raise error_for(err, what, before.name)
        self._track(cmd, arg)

    def mmap(self, length: int, prot: int = _mmap.PROT_READ | _mmap.PROT_WRITE,
             flags: int = _mmap.MAP_SHARED, offset: int = 0) -> Any:
        """Raw mmap of the descriptor; returns a ``_core.Mapping`` that is
        unmapped when its last reference goes."""
        self._check_open("mmap")
        err, mapping = self._provider.mmap(self._fd, length, prot, flags, offset)
        if err != 0:
            raise error_for(err, "mmap", self.state.name)
        return mapping

    def _track(self, cmd: int, arg: int) -> None:
        # Keep the Python-side state of a device in step with raw calls.
        s = self._spec
        if cmd == s.setbufsize:
            self._state = State.READY
            # NetBSD and OpenBSD pass the size by pointer (a 64-bit value on
            # LP64): the call has just read it from there, so it is there.
            self._entries = int(ctypes.c_uint64.from_address(arg).value) if s.by_pointer else int(arg)
        elif cmd == s.enable:
            self._state = State.RUNNING
            self._owner = threading.get_native_id()
        elif cmd == s.disable:
            self._state = State.READY
            self._owner = None

    def _call(self, cmd: int, value: int, ctype: type[Any]) -> None:
        arg, keep = self._spec.encode(value, ctype)
        try:
            self.ioctl(cmd, arg)
        finally:
            del keep

    # --- the contract -----------------------------------------------------

    def init(self, entries: int = DEFAULT_ENTRIES) -> None:
        """Size the buffer to `entries` 8-byte entries and map it.

        The FreeBSD and Linux ABIs can map only buffers whose size is a
        multiple of the page size (`entries` a multiple of 512 with 4 KiB
        pages); the sizing then succeeds and the mapping fails with EINVAL.
        """
        self._call(self._spec.setbufsize, entries, ctypes.c_uint64)
        self._entries = entries
        length = (entries * 8 + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        self._mapping = self.mmap(length)

    def enable(self, mode: Mode = Mode.PC) -> None:
        """Start recording the calling thread in `mode`."""
        value = self._spec.mode_value(mode)
        self._call(self._spec.enable, value, ctypes.c_int)
        self._mode = Mode(mode)

    def disable(self) -> None:
        """Stop recording; only the thread that enabled may call it."""
        self.ioctl(self._spec.disable, 0)

    def reset(self) -> None:
        """Set the record count to 0 and clear the overflow flag."""
        self._check_open("reset")
        self._provider.reset(self._fd, self._mapping)

    @contextlib.contextmanager
    def trace(self, mode: Mode = Mode.PC) -> Iterator[Kcov]:
        """Record the calling thread in `mode` for the body of a with block:
        enable, reset, run the body, disable."""
        self.enable(mode)
        try:
            self.reset()
            yield self
        finally:
            if self.state == State.RUNNING:
                self.disable()

    def close(self) -> None:
        """Disable (if this thread is recording) and close the descriptor.

        A descriptor enabled by another thread is closed while RUNNING, as
        the device allows: recording stops (FreeBSD, OpenBSD) or goes on
        (Linux, NetBSD) until that thread exits.  The mapping stays valid
        while any view of it exists.
        """
        if self._closed:
            return
        self._entries = self.entries
        self._mode = self.mode
        if self.state == State.RUNNING and self._is_owner():
            with contextlib.suppress(KcovError):
                self.disable()
        self._closed = True
        self._provider.close(self._fd)

    def _is_owner(self) -> bool:
        inf = self._hosted_info()
        me = threading.get_native_id()
        if inf is not None:
            return bool(inf["owner_tid"] == me)
        return self._owner == me

    # --- reading the buffer -------------------------------------------------

    def _need_mapping(self, what: str) -> Any:
        if self._mapping is None:
            raise KcovInvalidError(22, f"{what}: the buffer is not mapped "
                                   f"(state: {self.state.name})",
                                   state=self.state.name, operation=what)
        return self._mapping

    def pcs(self) -> npt.NDArray[np.uint64]:
        """The recorded PCs: a read-only, zero-copy uint64 view of the buffer
        (its base is the mapping), as long as the clamped count."""
        m = self._need_mapping("pcs")
        n = min(int(m.count()), self._capacity(Mode.PC))
        arr: npt.NDArray[np.uint64] = _core.view_words(m, 1, n)
        return arr

    def comparisons(self) -> Comparisons:
        """The recorded comparisons: a zero-copy structured view with
        decoded `size` and `is_const`."""
        m = self._need_mapping("comparisons")
        n = min(int(m.count()), self._capacity(Mode.CMP))
        words = _core.view_words(m, 1, 4 * n)
        return Comparisons.from_records(words.view(CMP_DTYPE),
                                        self.overflowed if not self._closed
                                        else n >= self._capacity(Mode.CMP))

    def snapshot(self) -> Coverage:
        """A private copy of the PCs recorded so far."""
        pcs = np.array(self.pcs(), copy=True)
        pcs.flags.writeable = False
        return Coverage(pcs, self.overflowed, self._capacity(Mode.PC))


def _resolve(provider: str | Provider, abi: Abi | str | None) -> Provider:
    if isinstance(provider, Provider):
        return provider
    if provider == "hosted":
        return HostedProvider(abi if abi is not None else Abi.FREEBSD)
    if provider in ("linux", "freebsd"):
        dev: Provider = (LinuxDeviceProvider() if provider == "linux"
                         else FreeBSDDeviceProvider())
        if abi is not None and Abi.parse(abi) != dev.abi:
            raise ValueError(f"the {provider} device speaks only the "
                             f"{dev.abi.name.lower()} ABI")
        return dev
    if provider == "auto":
        linux = LinuxDeviceProvider()
        if sys.platform.startswith("linux") and linux.available():
            return linux
        bsd = FreeBSDDeviceProvider()
        if sys.platform.startswith("freebsd") and bsd.available():
            return bsd
        return HostedProvider(abi if abi is not None else Abi.FREEBSD)
    raise ValueError(f"unknown kcov provider {provider!r}; expected auto, "
                     "hosted, linux or freebsd")


def open(provider: str | Provider = "auto",  # noqa: A001 - mirrors os.open
         entries: int | None = DEFAULT_ENTRIES,
         abi: Abi | str | None = None) -> Kcov:
    """Open a kcov descriptor, size its buffer and map it.

    Args:
        provider: "hosted" (the in-process runtime), "linux"
            (/sys/kernel/debug/kcov), "freebsd" (/dev/kcov on FreeBSD),
            "auto" (a usable Linux device, else a FreeBSD one, else hosted),
            or a :class:`~kcov.Provider` instance.
        entries: buffer size in 8-byte entries; None leaves the descriptor
            unsized (state OPEN) for :meth:`Kcov.init` or raw ioctls.
        abi: the hosted device's ABI, "freebsd" (default), "linux",
            "netbsd" or "openbsd".
    """
    p = _resolve(provider, abi)
    try:
        fd = p.open()
    except OSError as e:
        raise error_for(e.errno or 0, f"open {p.name} kcov", None) from e
    k = Kcov(p, fd)
    if entries is not None:
        try:
            k.init(entries)
        except BaseException:
            k.close()
            raise
    return k

