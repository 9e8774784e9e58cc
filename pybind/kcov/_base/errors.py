"""The error base and the command-line plumbing every kcov command shares.

A failure a user should read is a :class:`ToolkitError`: ``str()`` is one
line that names the file, tool or option and says what to do next, and
``exit_status`` is a sysexits(3) code from ``os.EX_*``.  The commands
(kcov-report, kcov-build and its subcommands, python -m kcov.profile)
parse with :class:`ArgumentParser`, whose mistakes are usage errors (64,
one line) instead of argparse's usage dump and 2 (a threshold bit for
kcov-report), and print errors with :func:`say_error`.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, Callable, NoReturn

__all__ = ["ArgumentParser", "ToolkitError", "UsageError", "run_cli", "say_error"]

EX_INTERRUPTED = 128 + 2  # as a shell reports SIGINT
EX_PIPE = 128 + 13  # SIGPIPE: the reader of stdout went away


class ToolkitError(Exception):
    """A failure reported to the user in one line, ending a command with
    :attr:`exit_status`.  Subclasses set their usual status as a class
    attribute; a raise may give another."""

    exit_status: int = os.EX_SOFTWARE

    def __init__(self, message: str = "", exit_status: int | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status


class UsageError(ToolkitError):
    """A mistake on the command line."""

    exit_status = os.EX_USAGE


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser that raises :class:`UsageError` on a bad
    command line.  ``usage_message(prog, message)``, if given, words it
    (to name the subcommand or point at --help); subparsers inherit it."""

    def __init__(self, *args: Any, usage_message: Callable[[str, str], str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_message = usage_message

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", functools.partial(type(self), usage_message=self.usage_message))
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.usage_message(self.prog, message) if self.usage_message else message)


def say_error(prog: str, error: BaseException) -> int:
    """Print error's first line as ``prog: message`` on stderr; return its
    exit status (EX_SOFTWARE for an error that has none)."""
    text = str(error)
    print(f"{prog}: {text.splitlines()[0] if text else type(error).__name__}", file=sys.stderr, flush=True)
    return int(getattr(error, "exit_status", os.EX_SOFTWARE))


def run_cli(prog: str, body: Callable[[], int], *, interrupted: str | None = "interrupted") -> int:
    """Run a command's body and return its exit status: a ToolkitError is
    one line and its status, --help and --version return 0, ^C is 130
    (with the line `interrupted`, if any) and a closed stdout 141, without
    a traceback."""
    try:
        return int(body())
    except ToolkitError as e:
        return say_error(prog, e)
    except SystemExit as e:  # --help, --version: argparse has printed them
        return e.code if isinstance(e.code, int) else (os.EX_OK if e.code is None else os.EX_USAGE)
    except KeyboardInterrupt:
        if interrupted:
            print(f"{prog}: {interrupted}", file=sys.stderr, flush=True)
        return EX_INTERRUPTED
    except BrokenPipeError:
        try:  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return EX_PIPE
