"""What every kcov package and command shares: atomic outputs
(:mod:`.files`) and the error base with its exit status, the argparse
parser and the error-to-one-line helper of the command lines
(:mod:`.errors`).

This is the lowest layer: it imports nothing else of kcov, and
``kcov_build`` may import it (never the reverse)."""
from __future__ import annotations

from .errors import ArgumentParser, ToolkitError, UsageError, run_cli, say_error
from .files import atomic_directory, atomic_target, locked, umask, write_atomic

__all__ = [
    "ArgumentParser",
    "ToolkitError",
    "UsageError",
    "atomic_directory",
    "atomic_target",
    "locked",
    "run_cli",
    "say_error",
    "umask",
    "write_atomic",
]
