"""Where a kcov descriptor comes from: the hosted runtime or a real device.

A provider opens descriptors and carries out the raw ioctl, mmap and close
calls on them; it knows nothing of states or modes, which :class:`kcov.Kcov`
tracks.  Three exist:

* :class:`HostedProvider`: the in-process device of libkcovrt (``_core``).
  It records code built with ``-fsanitize-coverage=trace-pc,trace-cmp`` and
  linked against libkcovrt, in this process and its forked children, and
  speaks any of the four ABIs (FreeBSD by default).
* :class:`LinuxDeviceProvider`: ``/sys/kernel/debug/kcov`` of a Linux kernel
  with CONFIG_KCOV; it records the kernel's code on behalf of the caller.
* :class:`FreeBSDDeviceProvider`: ``/dev/kcov`` of a FreeBSD kernel with
  ``options KCOV``.

Calls return the errno (0 on success) instead of raising, so the caller can
name the state in the exception it raises.
"""
from __future__ import annotations

import abc
import os
from typing import Any

import kcov._core as _core  # the compiled extension (no stub: pyproject.toml's mypy section)
from .abi import Abi

__all__ = [
    "FreeBSDDeviceProvider",
    "HostedProvider",
    "LinuxDeviceProvider",
    "Provider",
]


class Provider(abc.ABC):
    """Opens kcov descriptors and performs raw calls on them."""

    #: Short name: "hosted", "linux" or "freebsd".
    name: str
    #: The ABI the descriptors of this provider speak.
    abi: Abi

    @abc.abstractmethod
    def open(self) -> int:
        """Open a new descriptor; raises OSError on failure."""

    @abc.abstractmethod
    def ioctl(self, fd: int, cmd: int, arg: int) -> int:
        """ioctl(fd, cmd, arg); returns 0 or the errno."""

    @abc.abstractmethod
    def mmap(self, fd: int, length: int, prot: int, flags: int,
             offset: int) -> tuple[int, Any]:
        """mmap of the descriptor: (0, Mapping) or (errno, None)."""

    @abc.abstractmethod
    def close(self, fd: int) -> None:
        """Close the descriptor (the last close ends the trace)."""

    def info(self, fd: int) -> dict[str, Any] | None:
        """The device's own view of the descriptor, if it offers one."""
        return None

    def reset(self, fd: int, mapping: Any) -> None:
        """Set word 0 to 0 (and clear any private overflow counter)."""
        if mapping is not None:
            mapping.set_count(0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} abi={self.abi.name.lower()}>"


class HostedProvider(Provider):
    """The in-process kcov device of libkcovrt.

    `abi` picks the personality of the device: the ABI whose command numbers
    and errno rules the descriptor follows.
    """

    name = "hosted"

    def __init__(self, abi: Abi | str = Abi.FREEBSD) -> None:
        self.abi = Abi.parse(abi)

    def open(self) -> int:
        return int(_core.hosted_open(int(self.abi), True))

    def ioctl(self, fd: int, cmd: int, arg: int) -> int:
        return int(_core.hosted_ioctl(fd, cmd, arg))

    def mmap(self, fd: int, length: int, prot: int, flags: int,
             offset: int) -> tuple[int, Any]:
        err, mapping = _core.hosted_mmap(fd, length, prot, flags, offset)
        return int(err), mapping

    def close(self, fd: int) -> None:
        _core.hosted_close(fd)

    def info(self, fd: int) -> dict[str, Any] | None:
        return dict(_core.hosted_info(fd))

    def reset(self, fd: int, mapping: Any) -> None:
        # The runtime clears its private drop counter together with word 0.
        _core.hosted_reset(fd)


class _DeviceProvider(Provider):
    """A kcov device node of the running kernel."""

    path: str

    def open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CLOEXEC)

    def ioctl(self, fd: int, cmd: int, arg: int) -> int:
        return int(_core.dev_ioctl(fd, cmd, arg))

    def mmap(self, fd: int, length: int, prot: int, flags: int,
             offset: int) -> tuple[int, Any]:
        err, mapping = _core.dev_mmap(fd, length, prot, flags, offset)
        return int(err), mapping

    def close(self, fd: int) -> None:
        os.close(fd)

    def available(self) -> bool:
        """True if the device node exists and can be opened read-write."""
        try:
            fd = self.open()
        except OSError:
            return False
        os.close(fd)
        return True


class LinuxDeviceProvider(_DeviceProvider):
    """Linux's debugfs kcov (ioctl numbers of include/uapi/linux/kcov.h)."""

    name = "linux"
    abi = Abi.LINUX

    def __init__(self, path: str = "/sys/kernel/debug/kcov") -> None:
        self.path = path


class FreeBSDDeviceProvider(_DeviceProvider):
    """FreeBSD's /dev/kcov (KIOSETBUFSIZE/KIOENABLE/KIODISABLE)."""

    name = "freebsd"
    abi = Abi.FREEBSD

    def __init__(self, path: str = "/dev/kcov") -> None:
        self.path = path
