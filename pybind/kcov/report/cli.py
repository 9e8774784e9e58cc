"""kcov-report: coverage reports from kcov runs.

::

    kcov-report convert INPUT... -o [FORMAT:]OUT [-o ...] [--format FORMAT]
    kcov-report merge   INPUT... -o OUT
    kcov-report summary INPUT... [--functions unreached|all]
    kcov-report diff    A B [-o OUT]
    kcov-report tests   INPUT... [--function NAME | --test NAME [--baseline FILE]] [-o OUT]

Inputs are kcov-pcs dumps (:mod:`kcov.report.pcs`, turned into coverage by
:func:`~kcov.report.collect.collect` with their binaries), kcov coverage
JSON, or lcov tracefiles, in any mix; several inputs are merged (set union
of what each test reached, so the order of the inputs never matters).
Bare PCs (syzkaller's rawcover) are read when ``--module BINARY@BASE`` says
where they were recorded.  Outputs are the formats of
:mod:`kcov.report.formats`, chosen by ``--format``, a ``FORMAT:`` prefix or
the output's suffix; every output is written atomically.

Exit status: 0 on success.  With a ``--fail-under-*`` threshold the status
is the OR of 2 (line), 4 (function) and 8 (point coverage below the
threshold), after every output was written; errors use sysexits(3) codes
from 64 up, which no combination of the threshold bits reaches (they sum to
at most 14), so ``status >= 64`` is an error and ``2 <= status <= 14`` a
threshold miss.  :func:`main` returns the status; ``python -m kcov.report``
runs it too.
"""
from __future__ import annotations

import argparse
import sys
from os import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE
from typing import Any, Callable, Sequence


from .. import _base
from .._base.errors import EX_INTERRUPTED, EX_PIPE
from . import formats
from .formats.base import common_root, relative
from .model import CoverageData
from .query import Gain, gain, gain_of_test, line_ranges, per_test, tests_reaching
from .inputs import (INPUT_HELP, PROG, Progress, UsageError, _check_inventory, input_options,
                     load)
from .outputs import (_check_options_used, _format_options, _given_format_options, parse_outputs, write_outputs)


# Threshold bits (OR-ed; outputs are written first, as gcovr does).
EXIT_LINE = 2
EXIT_FUNCTION = 4
EXIT_POINT = 8


EXIT_STATUS_HELP = f"""\
exit status:
  0           success
  2, 4, 8     OR-ed: coverage below --fail-under-line (2), --fail-under-function
              (4), --fail-under-point (8); outputs were written (at most 14)
  {EX_USAGE}          usage: a bad option, an unknown format, an output format that
              cannot be told from its name
  {EX_DATAERR}          bad data: not a coverage file, a binary without DWARF line info or
              of another build, PCs that match no module or no callback, a
              merge conflict, an unknown --function/--test
  {EX_NOINPUT}          an input or a binary is missing
  {EX_UNAVAILABLE}          no symboliser (llvm-symbolizer or addr2line) is installed
  {EX_SOFTWARE}          the symboliser failed
  {EX_CANTCREAT}          an output cannot be written (nothing is left half-written)
  {EX_INTERRUPTED}         interrupted
  {EX_PIPE}         the reader of stdout went away (SIGPIPE)
"""

# -- thresholds -----------------------------------------------------------------


def thresholds(data: CoverageData, args: argparse.Namespace) -> int:
    """The OR of the threshold bits missed, each explained on stderr."""
    t = data.totals()
    status = 0
    for bit, what, noun, part, whole in (
            (EXIT_LINE, "line", "lines", t.lines_hit, t.lines),
            (EXIT_FUNCTION, "function", "functions", t.functions_hit, t.functions),
            (EXIT_POINT, "point", "points", t.hit, t.points)):
        want = getattr(args, f"fail_under_{what}", None)
        if want is None:
            continue
        pct = t.percent(part, whole)
        if whole == 0:
            _error(f"{what} coverage: no {noun} to count (--fail-under-{what} {want:g})")
            status |= bit
        elif pct < want:
            _error(f"{what} coverage {pct:.2f}% ({part} of {whole} {noun}) is below "
                   f"--fail-under-{what} {want:g}")
            status |= bit
    return status


def _percent(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0.0 <= v <= 100.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 100")
    return v


# -- listings -------------------------------------------------------------------


def _names(tests: Sequence[str], limit: int = 3) -> str:
    shown = [t or '""' for t in tests[:limit]]
    more = f", +{len(tests) - limit} more" if len(tests) > limit else ""
    return ", ".join(shown) + more


def render_gain(g: Gain, title: str, first: str, further: str, lines: str,
                show_tests: bool) -> str:
    files = list(g.lines) + [f.file for f in g.functions]
    root = common_root(files)
    out = [f"{title}: {g.points} point{'s' if g.points != 1 else ''}"]
    new = [f for f in g.functions if f.first]
    more = [f for f in g.functions if not f.first]

    def fn_line(f: Any, plus: bool) -> str:
        s = (f"  {relative(f.file, root)}:{f.line}  {f.name}  "
             f"{'+' if plus else ''}{f.points} of {f.total} point{'s' if f.total != 1 else ''}")
        if show_tests and f.tests:
            s += f"  [{_names(list(f.tests))}]"
        return s

    if new:
        out.append(f"{first} ({len(new)}):")
        out += [fn_line(f, False) for f in new]
    if more:
        out.append(f"{further} ({len(more)}):")
        out += [fn_line(f, True) for f in more]
    if g.lines:
        n = sum(len(v) for v in g.lines.values())
        out.append(f"{lines} ({n}):")
        width = max(len(relative(f, root)) for f in g.lines)
        out += [f"  {relative(f, root):<{width}}  {line_ranges(v)}"
                for f, v in g.lines.items()]
    return "\n".join(out) + "\n"


# -- commands -------------------------------------------------------------------


def _progress(args: argparse.Namespace) -> Progress:
    enabled = bool(args.progress) or sys.stderr.isatty()
    return Progress(enabled, bool(args.quiet))


def cmd_convert(args: argparse.Namespace, readable: bool = False) -> int:
    outs = parse_outputs(args.output, args.format, readable=readable)
    given = _given_format_options(args)
    _check_options_used(given, outs)
    opts = input_options(args)
    _check_inventory(opts, args.inputs)
    say = _progress(args)
    data = load(args.inputs, opts, say)
    write_outputs(data, outs, given, say)
    return thresholds(data, args)


def cmd_merge(args: argparse.Namespace) -> int:
    return cmd_convert(args, readable=True)


def cmd_summary(args: argparse.Namespace) -> int:
    given = {k: v for k, v in _given_format_options(args).items() if k in ("root", "functions")}
    opts = input_options(args)
    _check_inventory(opts, args.inputs)
    data = load(args.inputs, opts, _progress(args))
    sys.stdout.write(formats.render(data, "text", **given))
    sys.stdout.flush()
    return thresholds(data, args)


def cmd_diff(args: argparse.Namespace) -> int:
    outs = parse_outputs(args.output or (), args.format)
    given = _given_format_options(args)
    _check_options_used(given, outs)
    opts = input_options(args)
    _check_inventory(opts, [args.a, args.b])
    say = _progress(args)
    a = load([args.a], opts, say)
    b = load([args.b], opts, say)
    g = gain(a, b)
    write_outputs(g.data, outs, given, say)
    if not args.output or all(o.path != "-" for o in outs):
        sys.stdout.write(render_gain(
            g, f"reached by {args.a} and not by {args.b}",
            f"functions {args.b} never reached",
            f"functions {args.b} reached, with points it did not",
            f"lines {args.b} never reached", show_tests=True))
    return 0


def cmd_tests(args: argparse.Namespace) -> int:
    if args.baseline and not args.test:
        raise UsageError("--baseline goes with --test")
    if args.output and not args.test:
        raise UsageError("-o/--output goes with --test (what the test added)")
    outs = parse_outputs(args.output or (), args.format)
    given = _given_format_options(args)
    _check_options_used(given, outs)
    opts = input_options(args)
    _check_inventory(opts, list(args.inputs) + list(args.baseline or ()))
    say = _progress(args)
    data = load(args.inputs, opts, say)
    if args.function is not None:
        for t in sorted(tests_reaching(data, args.function)):
            print(t or '""')  # the unnamed test (lcov input, a run without names)
        return 0
    if args.test is not None:
        base = load(args.baseline, opts, say) if args.baseline else None
        g = gain_of_test(data, args.test, base)
        write_outputs(g.data, outs, given, say)
        if all(o.path != "-" for o in outs):
            if base is not None:
                labels = ("the baseline", "functions the baseline never reached",
                          "functions the baseline reached, with points it did not",
                          "lines the baseline never reached")
            else:
                labels = ("any other test", "functions no other test reached",
                          "functions other tests reached, with points they did not",
                          "lines no other test reached")
            sys.stdout.write(render_gain(
                g, f"added by {args.test}: reached by it and not by {labels[0]}",
                *labels[1:], show_tests=False))
        return 0
    rows = per_test(data)
    width = max([len("test")] + [len(r.test or '""') for r in rows])
    print(f"{'test':<{width}}  {'points':>7}  {'only it':>7}  {'functions':>9}")
    for r in rows:
        print(f"{r.test or chr(34) * 2:<{width}}  {r.points:>7}  {r.only:>7}  {r.functions:>9}")
    return 0


# -- argument parsing -----------------------------------------------------------


def _usage_message(prog: str, message: str) -> str:
    """A usage error is 64 and one line, never argparse's 2 (2 is a
    threshold bit); it names the subcommand."""
    if prog == PROG:
        return f"{message} (see {PROG} --help)"
    return f"{prog.replace(PROG + ' ', '')}: {message} (see {prog} --help)"


def build_parser(full: bool = False) -> argparse.ArgumentParser:
    """The parser; rarely used options are listed by ``--help-all``
    (``full``) only."""
    from .. import __version__

    def rare(text: str) -> str:
        return text if full else argparse.SUPPRESS

    fmt_cls = argparse.RawDescriptionHelpFormatter
    top = _base.ArgumentParser(
        prog=PROG, formatter_class=fmt_cls, usage_message=_usage_message,
        description="Coverage reports from kcov runs: kcov-pcs dumps (with their\n"
                    "binaries), kcov coverage JSON and lcov tracefiles in; lcov,\n"
                    "Cobertura, HTML, JSON and text out.",
        epilog="inputs: a kcov-pcs dump (kcov.report.write_pcs, the pytest plugin's\n"
               "  --kcov-pcs), bare PCs with --module, kcov JSON, or lcov (.info).\n"
               "formats: " + ", ".join(n for n, h in formats.FORMATS.items() if h.can_write)
               + " (by --format, a FORMAT: prefix, or the suffix:\n"
               "  .json .info .xml .html .txt; a path ending in / is an HTML directory)\n\n"
               + EXIT_STATUS_HELP + f"\nRarely used options: {PROG} COMMAND --help-all")
    top.add_argument("--version", action="version", version=f"{PROG} (kcov) {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser, inputs: bool = True) -> None:
        g = p.add_argument_group("inputs")
        if inputs:
            g.add_argument("--binary", action="append", metavar="FILE",
                           help="a binary of the dumps' modules (found by build id, else by "
                                "name; reported even if no PC reached it); repeatable")
            g.add_argument("--binaries", action="append", metavar="DIR",
                           help="search DIR (recursively) for the binaries the dumps "
                                "recorded PCs in, by build id; repeatable")
            g.add_argument("--inventory", metavar="FILE",
                           help="a kcov-build inventory JSON: lists functions never "
                                "reached and those without points")
            g.add_argument("--module", action="append", metavar="BINARY[@BASE]",
                           help=rare("where bare PCs (syzkaller rawcover) were recorded: "
                                     "the load bias of an executable or library, the .text "
                                     "address of a kernel module (hex; default 0)"))
            g.add_argument("--no-universe", action="store_true",
                           help=rare("count only the reached points, not every callback "
                                     "call site of the binaries"))
            g.add_argument("--force", action="store_true",
                           help=rare("go on when most PCs match no module or no callback "
                                     "(wrong binary or base?)"))
        g = p.add_argument_group("messages")
        g.add_argument("--progress", action="store_true",
                       help="show progress on stderr (default: when stderr is a terminal)")
        g.add_argument("-q", "--quiet", action="store_true",
                       help="no progress and no warnings")
        p.add_argument("--help-all", action="store_true",
                       help="also list the rarely used options" if not full
                       else argparse.SUPPRESS)

    def outputs(p: argparse.ArgumentParser, required: bool, what: str) -> None:
        g = p.add_argument_group("outputs")
        g.add_argument("-o", "--output", action="append", required=required,
                       metavar="[FORMAT:]OUT", help=what)
        g.add_argument("-f", "--format", metavar="FORMAT",
                       help="the format of the outputs (default: from their names)")
        fo = p.add_argument_group("format options")
        for o in _format_options().values():
            users = [n for n, h in formats.FORMATS.items()
                     if any(x.name == o.name for x in h.write_options)]
            flag = "--" + o.name.replace("_", "-")
            text = rare(f"{o.help} [{', '.join(users)}]")
            if o.type is bool:
                fo.add_argument(flag, action="store_true", default=None, help=text)
            else:
                fo.add_argument(flag, type=o.type, metavar=o.name.upper(), help=text)

    def gates(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("thresholds (exit status bits, after writing)")
        g.add_argument("--fail-under-line", type=_percent, metavar="PCT",
                       help=f"exit with bit {EXIT_LINE} set if line coverage is below PCT")
        g.add_argument("--fail-under-function", type=_percent, metavar="PCT",
                       help=f"exit with bit {EXIT_FUNCTION} set if function coverage is "
                            "below PCT")
        g.add_argument("--fail-under-point", type=_percent, metavar="PCT",
                       help=f"exit with bit {EXIT_POINT} set if point coverage is below PCT")

    kw: dict[str, Any] = {"formatter_class": fmt_cls, "epilog": EXIT_STATUS_HELP}

    p = sub.add_parser("convert", help="inputs (merged) to one or more formats",
                       description="Read the inputs, merge them, write each output.", **kw)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUT_HELP)
    common(p)
    outputs(p, True, "an output; repeatable (one collection, several formats)")
    gates(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("merge", help="inputs to one mergeable file (json or lcov)",
                       description="Merge the inputs (set union per test: associative,\n"
                                   "order-independent, idempotent) into a file that can be\n"
                                   "merged again.", **kw)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUT_HELP)
    common(p)
    outputs(p, True, "the merged file (.json: kcov coverage JSON, .info: lcov)")
    gates(p)
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("summary", help="terminal summary of the inputs",
                       description="Print a per-file table and totals.", **kw)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUT_HELP)
    common(p)
    p.add_argument("--functions", choices=["unreached", "all"],
                   help="also list functions: those never reached (and those without "
                        "points), or all")
    p.add_argument("--root", metavar="DIR",
                   help="file names relative to DIR (default: their common directory)")
    gates(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("diff", help="what run A reached that run B did not",
                       description="List the functions and lines A reached and B did not;\n"
                                   "-o writes A's coverage restricted to those points.", **kw)
    p.add_argument("a", metavar="A", help="an input (as for convert)")
    p.add_argument("b", metavar="B", help="the input to compare with")
    common(p)
    outputs(p, False, "write the difference (A's universe, the new hits) too")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("tests", help="per-test questions: which tests reach a function, "
                                     "what a test added",
                       description="Without options: per test, the points it reached, those\n"
                                   "no other test reached, and its functions.", **kw)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=INPUT_HELP)
    common(p)
    q = p.add_mutually_exclusive_group()
    q.add_argument("--function", metavar="NAME",
                   help="print the tests that reach function NAME (or FILE:NAME), one a line")
    q.add_argument("--test", metavar="TEST",
                   help="what TEST added: the points it reached and no other test did")
    p.add_argument("--baseline", action="append", metavar="INPUT",
                   help="with --test: compare with this run instead of the other tests")
    outputs(p, False, "with --test: write what it added too")
    p.set_defaults(func=cmd_tests)
    return top


def _error(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run kcov-report; returns the exit status (see the module docstring)."""
    args_list = list(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        full = "--help-all" in args_list
        args = build_parser(full).parse_args(
            ["--help" if a == "--help-all" else a for a in args_list] if full else args_list)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)

    return _base.run_cli(PROG, run)


if __name__ == "__main__":
    sys.exit(main())
