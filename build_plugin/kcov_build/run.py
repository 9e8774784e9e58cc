"""kcov-run: run an unmodified program on the hosted kcov device.

    kcov-run [--abi freebsd|netbsd|openbsd] [--max-entries N] [--] PROGRAM [ARGS...]

The program's open("/dev/kcov") and open("/sys/kernel/debug/kcov"), and its
ioctl/mmap/close on the result, are served by the hosted runtime through
LD_PRELOAD.  Coverage comes from the instrumented code linked into the
program (see kcov-build).  kcov-run replaces itself with the program, so the
exit status, signals included, is the program's own.
"""
from __future__ import annotations

import argparse
import os
import sys

from ._paths import runtime_paths

BSD_ABIS = ("freebsd", "netbsd", "openbsd")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kcov-run",
        description="Run PROGRAM with a hosted /dev/kcov and /sys/kernel/debug/kcov.",
    )
    p.add_argument(
        "--abi",
        choices=BSD_ABIS,
        default=os.environ.get("KCOV_BSD_ABI", "freebsd"),
        help="ABI of /dev/kcov; NetBSD and OpenBSD share ioctl numbers (default: freebsd)",
    )
    p.add_argument(
        "--max-entries",
        type=int,
        default=None,
        help="FreeBSD kern.kcov.max_entries (default: 16777216)",
    )
    p.add_argument("program", help="the program to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = runtime_paths()
    if not paths.preload.is_file():
        print(f"kcov-run: runtime not found at {paths.preload}; reinstall kcov", file=sys.stderr)
        return os.EX_UNAVAILABLE
    env = dict(os.environ)
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{paths.preload}:{preload}" if preload else str(paths.preload)
    env["KCOV_BSD_ABI"] = args.abi
    if args.max_entries is not None:
        if args.max_entries < 2:
            print("kcov-run: --max-entries must be at least 2", file=sys.stderr)
            return os.EX_USAGE
        env["KCOV_MAX_ENTRIES"] = str(args.max_entries)
    if not args.program or "\0" in args.program:
        print("kcov-run: the program name is empty or not a path", file=sys.stderr)
        return os.EX_USAGE
    try:
        os.execvpe(args.program, [args.program, *args.args], env)
    except FileNotFoundError:
        print(f"kcov-run: {args.program}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"kcov-run: {args.program}: permission denied", file=sys.stderr)
        return 126
    except OSError as e:
        print(f"kcov-run: {args.program}: {e.strerror}", file=sys.stderr)
        return 126
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
