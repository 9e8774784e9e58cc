"""The four kcov ioctl ABIs: command numbers and argument encodings.

The numbers are those of runtime/kcov_abi.h (computed from each OS's
ioccom.h / ioctl.h).  FreeBSD and Linux pass integer arguments by value;
NetBSD and OpenBSD copy them in through a pointer, so an encoded argument
may need a small ctypes buffer kept alive for the duration of the call.
"""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["Abi", "AbiSpec", "Mode", "spec"]


class Mode(enum.IntEnum):
    """Trace modes.  Values are the runtime's KCOVRT_MODE_* constants; each
    ABI's own numbers are derived from them (see :class:`AbiSpec`)."""

    NONE = 0  #: NetBSD only: enabled but recording nothing.
    PC = 1  #: One 64-bit PC per record.
    CMP = 2  #: Four 64-bit words per record: type, arg1, arg2, pc.


class Abi(enum.IntEnum):
    """ABIs, with the values of KCOVRT_ABI_*."""

    FREEBSD = 1
    LINUX = 2
    NETBSD = 3
    OPENBSD = 4

    @classmethod
    def parse(cls, name: str | int | Abi) -> Abi:
        """An Abi from "freebsd"/"linux"/"netbsd"/"openbsd" or a value."""
        if isinstance(name, str):
            try:
                return cls[name.upper()]
            except KeyError:
                raise ValueError(
                    f"unknown kcov ABI {name!r}; expected one of "
                    "freebsd, linux, netbsd, openbsd") from None
        return cls(name)


@dataclass(frozen=True)
class AbiSpec:
    """Command numbers, names and mode values of one ABI."""

    abi: Abi
    setbufsize: int
    enable: int
    disable: int
    modes: dict[Mode, int]
    by_pointer: bool
    names: dict[int, str]

    def mode_value(self, mode: Mode) -> int:
        """The ABI's number for `mode`; ValueError if it has none."""
        try:
            return self.modes[Mode(mode)]
        except KeyError:
            raise ValueError(
                f"mode {Mode(mode).name} does not exist in the "
                f"{self.abi.name.lower()} kcov ABI") from None

    def encode(self, value: int, ctype: type[Any]) -> tuple[int, Any]:
        """The ioctl argument carrying `value`, and the object that must
        stay alive until the call returns (None for by-value ABIs)."""
        if not self.by_pointer:
            return value, None
        box = ctype(value)
        return ctypes.addressof(box), box

    def cmd_name(self, cmd: int) -> str:
        """A readable name for an ioctl number."""
        return self.names.get(cmd, f"ioctl {cmd:#x}")


_FREEBSD = AbiSpec(
    Abi.FREEBSD, 0x20046304, 0x20046302, 0x20006303,
    {Mode.PC: 0, Mode.CMP: 1}, False,
    {0x20046304: "KIOSETBUFSIZE", 0x20046302: "KIOENABLE",
     0x20006303: "KIODISABLE"})
_LINUX = AbiSpec(
    Abi.LINUX, 0x80086301, 0x6364, 0x6365,
    {Mode.PC: 0, Mode.CMP: 1}, False,
    {0x80086301: "KCOV_INIT_TRACE", 0x80046301: "KCOV_INIT_TRACE32",
     0x6364: "KCOV_ENABLE", 0x6365: "KCOV_DISABLE",
     0x40186366: "KCOV_REMOTE_ENABLE"})
_NETBSD = AbiSpec(
    Abi.NETBSD, 0x80084B01, 0x80044B02, 0x20004B03,
    {Mode.NONE: 0, Mode.PC: 1, Mode.CMP: 2}, True,
    {0x80084B01: "KCOV_IOC_SETBUFSIZE", 0x80044B02: "KCOV_IOC_ENABLE",
     0x20004B03: "KCOV_IOC_DISABLE"})
_OPENBSD = AbiSpec(
    Abi.OPENBSD, 0x80084B01, 0x80044B02, 0x20004B03,
    {Mode.PC: 1, Mode.CMP: 2}, True,
    {0x80084B01: "KIOSETBUFSIZE", 0x80044B02: "KIOENABLE",
     0x20004B03: "KIODISABLE", 0x80084B04: "KIOREMOTEATTACH"})

_SPECS = {s.abi: s for s in (_FREEBSD, _LINUX, _NETBSD, _OPENBSD)}


def spec(abi: Abi | str | int) -> AbiSpec:
    """The :class:`AbiSpec` of an ABI."""
    return _SPECS[Abi.parse(abi)]
