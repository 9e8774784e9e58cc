"""Exceptions of kcov.profile.

Each names the file, the module or the tool it is about and says what to
do next; the command line (``python -m kcov.profile``) prints the message
alone on one line and exits with the sysexits(3) code in ``exit_status``
(``exit_code``, its older name, still works).
"""
from __future__ import annotations

import os

from .._base.errors import ToolkitError

__all__ = [
    "InputNotFoundError",
    "ProfileError",
    "ProfileFormatError",
    "ProfileMismatchError",
    "ProfileRuntimeError",
    "ProfileVersionError",
    "ToolError",
    "ToolNotFoundError",
]


class ProfileError(ToolkitError):
    """Base class of every kcov.profile failure."""

    exit_status = os.EX_DATAERR

    @property
    def exit_code(self) -> int:
        """The former name of ``exit_status``."""
        return self.exit_status


class ProfileFormatError(ProfileError, ValueError):
    """A file is not a (complete) raw profile: empty, truncated, foreign."""


class InputNotFoundError(ProfileError, FileNotFoundError):
    """An input file (profile, binary) does not exist."""

    exit_status = os.EX_NOINPUT


class ProfileVersionError(ProfileError):
    """A raw profile version that the tool or the runtime at hand cannot handle,
    or inputs of different versions."""


class ProfileMismatchError(ProfileError):
    """Profiles of different binaries where one binary's were expected."""


class ProfileRuntimeError(ProfileError):
    """The in-process runtime refused (its KCOVPROF_E* code is ``code``)."""

    exit_status = os.EX_SOFTWARE

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ToolNotFoundError(ProfileError, FileNotFoundError):
    """An llvm tool (llvm-profdata-N, llvm-cov-N) is not installed."""

    exit_status = os.EX_UNAVAILABLE


class ToolError(ProfileError):
    """An llvm tool ran and failed; the message is its own first error line."""
