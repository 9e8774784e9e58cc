"""python -m kcov.profile: merge, report and inspect SBCC profiles.

    python -m kcov.profile merge [--llvm N] [--allow-mixed-binaries] -o OUT.profdata IN.profraw...
    python -m kcov.profile report [--llvm N] [--format report|text|html|lcov|json] [-o OUT]
                                  [--source PATH]... --profile P BINARY [BINARY...]
    python -m kcov.profile show [--llvm N] PROFILE
    python -m kcov.profile info PROFILE...

A failure prints one line on stderr and exits with a sysexits(3) code:
64 usage, 65 bad data, 66 missing input, 69 missing llvm tool, 73 cannot
create the output.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .._base.errors import ArgumentParser, ToolkitError, run_cli
from . import merge, raw, report, show

PROG = "python -m kcov.profile"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Merge, report and inspect source-based coverage profiles.")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge", help="raw profiles -> an indexed .profdata (llvm-profdata merge)")
    m.add_argument("-o", "--output", required=True)
    m.add_argument("--llvm", type=int, help="LLVM major of llvm-profdata (default: oldest that reads the inputs)")
    m.add_argument("--allow-mixed-binaries", action="store_true")
    m.add_argument("inputs", nargs="+")
    r = sub.add_parser("report", help="llvm-cov report/show/export")
    r.add_argument("--profile", required=True, help=".profdata or .profraw")
    r.add_argument("--format", default="report", choices=("report", "text", "html", "lcov", "json"))
    r.add_argument("-o", "--output")
    r.add_argument("--llvm", type=int)
    r.add_argument("--source", action="append", default=[],
                   help="only this source file or directory (repeatable; llvm-cov's SOURCES)")
    r.add_argument("binaries", nargs="+")
    s = sub.add_parser("show", help="llvm-profdata show --all-functions --counts")
    s.add_argument("--llvm", type=int)
    s.add_argument("profile")
    i = sub.add_parser("info", help="what raw profiles a file holds")
    i.add_argument("profiles", nargs="+")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "merge":
            out = merge(a.inputs, a.output, llvm_version=a.llvm, allow_mixed_binaries=a.allow_mixed_binaries)
            print(out)
        elif a.cmd == "report":
            text = report(a.binaries, a.profile, format=a.format, output=a.output, llvm_version=a.llvm,
                          sources=a.source)
            if a.output is None:
                sys.stdout.write(text)
        elif a.cmd == "show":
            sys.stdout.write(show(a.profile, llvm_version=a.llvm))
        else:
            for path in a.profiles:
                for p in raw.read(path):
                    print(f"{path}: offset {p.offset}: raw v{p.version} ({raw.llvm_releases(p.version)}), "
                          f"{p.num_data} functions, {p.num_counters} counters, {p.describe_identity()}")
    except ToolkitError:
        raise
    except OSError as e:  # the output cannot be created
        print(f"{PROG}: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return os.EX_CANTCREAT
    return 0


if __name__ == "__main__":
    sys.exit(main())
