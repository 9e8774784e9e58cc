"""Exceptions of the kcov API.

Every failure of a kcov call is a :class:`KcovError`, an :class:`OSError`
that keeps the errno the device (or the hosted runtime) returned and names
the descriptor state the call was made in.  The subclasses group errno
values by what they usually mean; which errno a given misuse produces is
the ABI's business (FreeBSD answers "enable twice" with EBUSY, Linux with
EINVAL), so catch the class, and look at ``errno`` only when the ABI matters.
"""
from __future__ import annotations

import errno as _errno
import os

__all__ = [
    "ENOTSUPP",
    "KcovBusyError",
    "KcovError",
    "KcovInvalidError",
    "KcovUnsupportedError",
    "error_for",
]

#: Linux's kernel-internal ENOTSUPP, which leaks to user space from kcov.
ENOTSUPP = 524


class KcovError(OSError):
    """A kcov call failed.

    Attributes:
        errno: the errno of the failed call.
        state: the descriptor state when the call was made ("OPEN", "READY",
            "RUNNING", "DYING", "CLOSED"), or None if unknown.
        operation: what was attempted, e.g. "KIOENABLE" or "mmap".
    """

    def __init__(self, err: int, message: str, *, state: str | None = None,
                 operation: str | None = None) -> None:
        super().__init__(err, message)
        self.state = state
        self.operation = operation


class KcovBusyError(KcovError):
    """EBUSY or EEXIST: the descriptor is in the wrong state for the call."""


class KcovInvalidError(KcovError):
    """EINVAL, ENOENT, ENXIO or EPERM: a bad argument, or (depending on the
    ABI) the wrong state or the wrong thread."""


class KcovUnsupportedError(KcovError):
    """ENOTTY, EOPNOTSUPP or Linux's ENOTSUPP (524): the device does not
    know the command or mode."""


_CLASSES: dict[int, type[KcovError]] = {
    _errno.EBUSY: KcovBusyError,
    _errno.EEXIST: KcovBusyError,
    _errno.EINVAL: KcovInvalidError,
    _errno.ENOENT: KcovInvalidError,
    _errno.ENXIO: KcovInvalidError,
    _errno.EPERM: KcovInvalidError,
    _errno.ENOTTY: KcovUnsupportedError,
    _errno.EOPNOTSUPP: KcovUnsupportedError,
    ENOTSUPP: KcovUnsupportedError,
}


def _strerror(err: int) -> str:
    if err == ENOTSUPP:
        return "Operation not supported (ENOTSUPP)"
    return os.strerror(err)


def error_for(err: int, operation: str, state: str | None) -> KcovError:
    """The exception for a call `operation` that failed with `err`."""
    cls = _CLASSES.get(err, KcovError)
    where = f" (state: {state})" if state is not None else ""
    name = _errno.errorcode.get(err, "ENOTSUPP" if err == ENOTSUPP else str(err))
    return cls(err, f"{operation}: {_strerror(err)} [{name}]{where}",
               state=state, operation=operation)
