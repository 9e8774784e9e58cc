"""Exceptions of kcov.profile.

Each names the file, the module or the tool it is about and says what to
do next; the command line (``python -m kcov.profile``) prints the message
alone on one line and exits with the sysexits(3) code in ``exit_code``.
"""
from __future__ import annotations

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


class ProfileError(Exception):
    """Base class of every kcov.profile failure."""

    exit_code = 65  # EX_DATAERR


class ProfileFormatError(ProfileError, ValueError):
    """A file is not a (complete) raw profile: empty, truncated, foreign."""


class InputNotFoundError(ProfileError, FileNotFoundError):
    """An input file (profile, binary) does not exist."""

    exit_code = 66  # EX_NOINPUT


class ProfileVersionError(ProfileError):
    """A raw profile version that the tool or the runtime at hand cannot handle,
    or inputs of different versions."""


class ProfileMismatchError(ProfileError):
    """Profiles of different binaries where one binary's were expected."""


class ProfileRuntimeError(ProfileError):
    """The in-process runtime refused (its KCOVPROF_E* code is ``code``)."""

    exit_code = 70  # EX_SOFTWARE

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ToolNotFoundError(ProfileError, FileNotFoundError):
    """An llvm tool (llvm-profdata-N, llvm-cov-N) is not installed."""

    exit_code = 69  # EX_UNAVAILABLE


class ToolError(ProfileError):
    """An llvm tool ran and failed; the message is its own first error line."""

    exit_code = 65
