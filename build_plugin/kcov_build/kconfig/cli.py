"""kcov-build config: the driver and the command line (see the package's
docstring)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from os import EX_CANTCREAT, EX_DATAERR, EX_OK, EX_UNAVAILABLE, EX_USAGE
from pathlib import Path
from typing import Any, Sequence

from kcov._base.errors import ArgumentParser, run_cli

from .model import (COMPILER_FLAGS, EX_NOT_ON, FORMAT, FORMAT_VERSION, OSES, PROG, REQUIREMENTS, ConfigError,
                    Result, _read_top)

from .. import _util
from .bsd import BsdReader, _bsd_additions, _strip_comment
from .linux import _LX_SET, _LX_UNSET, merge_fragments, read_linux



# --------------------------------------------------------------------------
# Common driver


_RCS = {"freebsd": "$FreeBSD", "netbsd": "$NetBSD", "openbsd": "$OpenBSD"}


def detect_os(paths: Sequence[Path]) -> str:
    """Tell the kernel from the top-level files' content (path names break ties)."""
    score = dict.fromkeys(OSES, 0)
    linux_lines = 0
    bsd_lines = 0
    for p in paths:
        text = _read_top(p)
        for os_, tag in _RCS.items():
            if tag in text:
                score[os_] += 10
        for raw in text.splitlines():
            if _LX_SET.match(raw) or _LX_UNSET.match(raw):
                linux_lines += 1
                continue
            body = _strip_comment(raw).split()
            if not body:
                continue
            if body[0].startswith("CONFIG_"):  # a malformed Kconfig line is still Kconfig
                linux_lines += 1
                continue
            bsd_lines += 1
            kw = body[0]
            if kw in ("nooptions", "nooption", "nodevice", "nodevices", "device", "devices", "cpu", "nocpu",
                      "nomakeoption", "nomakeoptions", "hints", "env", "envvar", "files", "profile"):
                score["freebsd"] += 3
            elif kw in ("no", "file-system", "cinclude", "select", "pseudo-root"):
                score["netbsd"] += 3
            elif kw in ("rmoption", "rmoptions", "option"):
                score["openbsd"] += 3
            elif kw == "include" and len(body) > 1:
                if body[1].startswith('"arch/'):
                    score["netbsd"] += 1
                    score["openbsd"] += 1
                elif not body[1].startswith('"'):
                    score["freebsd"] += 1
            elif kw == "pseudo-device" and body[1:2] == ["kcov"]:
                score["openbsd"] += 3
            elif kw == "pseudo-device":
                score["netbsd"] += 1
                score["openbsd"] += 1
            elif kw == "makeoptions" and len(body) > 1 and body[1].startswith("KCOV"):
                score["netbsd"] += 3
            elif kw in ("ident", "machine", "options", "makeoptions", "maxusers"):
                for os_ in ("freebsd", "netbsd", "openbsd"):
                    score[os_] += 1
            elif len(body) > 2 and body[1] == "at":
                score["netbsd"] += 1
                score["openbsd"] += 1
    if linux_lines and not bsd_lines:
        return "linux"
    if not linux_lines and not bsd_lines:
        if any(p.suffix == ".config" or p.name.startswith(".config") for p in paths):
            return "linux"
    best = max(score.values())
    leaders = [os_ for os_, s in score.items() if s == best and os_ != "linux"]
    if best > 0 and len(leaders) > 1:
        hinted = [os_ for os_ in leaders if any(os_ in (part.lower() for part in p.parts) for p in paths)]
        if len(hinted) == 1:
            return hinted[0]
    if best > 0 and len(leaders) == 1 and not linux_lines:
        return leaders[0]
    names = ", ".join(str(p) for p in paths)
    raise ConfigError(EX_DATAERR, f"{names}: cannot tell which kernel this configuration is for; pass --os")


def read_config(paths: Sequence[Path], os_: str = "auto", search: Sequence[Path] = (),
                redundant: bool = False) -> Result:
    """Read FILEs (merged in order) into a Result; raises ConfigError."""
    for p in paths:
        _read_top(p)  # a missing FILE is 66 before anything else is said
    if os_ == "auto":
        os_ = detect_os(paths)
    if os_ == "linux":
        return read_linux(paths, redundant)
    reader = BsdReader(os_, search)
    for p in paths:
        reader.read_top(p)
    return reader.result


def added_lines(result: Result) -> list[str]:
    missing = result.missing()
    if not missing:
        return []
    if result.os == "linux":
        return [r.text for r in missing]
    return _bsd_additions(result, missing)


ADDED_HEADER = "# kcov-build: coverage options added by kcov-build config --write"
ADDED_FRAGMENT = "<kcov-build coverage options>"


def with_coverage(result: Result, redundant: bool = False) -> tuple[str, list[str]]:
    """The text --write produces, and merge messages for the added options."""
    extra = added_lines(result)
    if not extra:
        return result.text, []
    if result.os == "linux":
        return merge_fragments([("<merged>", result.text), (ADDED_FRAGMENT, "\n".join([ADDED_HEADER, *extra]) + "\n")],
                               redundant)
    return result.text + "\n".join(["", ADDED_HEADER, *extra]) + "\n", []


def write_atomic(path: Path, text: str) -> None:
    try:
        _util.write_atomic(path, text, errors="surrogateescape", mkdir=False)
    except OSError as e:
        raise ConfigError(EX_CANTCREAT, f"{path}: cannot write: {e.strerror}") from None


def check_compiler(cc: str) -> dict[str, bool]:
    """Which coverage flags `cc` accepts, by compiling a small file with each."""
    src = "int kcov_probe(int a, int b) { if (a < b) return a; return b; }\n"
    out: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="kcov-cc-") as d:
        c = Path(d) / "probe.c"
        c.write_text(src)
        for flag in COMPILER_FLAGS:
            try:
                p = subprocess.run([cc, "-c", flag, "-o", str(Path(d) / "probe.o"), str(c)],
                                   capture_output=True, text=True, timeout=120, check=False)
            except FileNotFoundError:
                raise ConfigError(EX_UNAVAILABLE, f"compiler '{cc}' not found") from None
            except PermissionError:
                raise ConfigError(EX_UNAVAILABLE, f"compiler '{cc}' is not executable") from None
            except subprocess.TimeoutExpired:
                raise ConfigError(EX_UNAVAILABLE, f"compiler '{cc}' did not finish compiling an empty file") from None
            out[flag] = p.returncode == 0
    return out


# --------------------------------------------------------------------------
# Reports


def _report_json(result: Result, written: str | None, compiler: str | None,
                 flags: dict[str, bool] | None, added: list[str], coverage: bool) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        producer = f"kcov-build {version('kcov')}"
    except Exception:  # noqa: BLE001 - a report without a version is still useful
        producer = "kcov-build"
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "producer": producer,
        "os": result.os,
        "files": result.files,
        "not_read": [{"include": u.name, "at": str(u.where), "searched": u.searched} for u in result.unresolved],
        "warnings": result.warnings,
        "redefinitions": [m for m in result.redefinitions if m],
        "requirements": [
            {"option": r.text, "satisfied": result.satisfied(r), "why": r.why,
             "at": str(result.state[r.key][1]) if result.satisfied(r) else None}
            for r in REQUIREMENTS[result.os]
        ],
        "missing": [r.text for r in result.missing()],
        "compiler": None if compiler is None else {
            "command": compiler, "flags": flags, "missing": [f for f, ok in (flags or {}).items() if not ok]},
        "written": written,
        "added": added,
        "coverage": coverage,
    }


def _report_text(rep: dict[str, Any]) -> str:
    lines = [f"{rep['os']} kernel configuration: {', '.join(rep['files'])}"]
    for u in rep["not_read"]:
        lines.append(f"  not read: include {u['include']} ({u['at']}); coverage judged from the files read")
    for r in rep["requirements"]:
        state = f"set at {r['at']}" if r["satisfied"] else "MISSING"
        lines.append(f"  {r['option']:<36} {state}  ({r['why']})")
    if rep["compiler"] is not None:
        for flag, ok in rep["compiler"]["flags"].items():
            lines.append(f"  {rep['compiler']['command']} {flag:<30} {'accepted' if ok else 'REJECTED'}")
    if rep["written"] is not None:
        what = f"added {', '.join(rep['added'])}" if rep["added"] else "nothing added"
        lines.append(f"  wrote {rep['written']} ({what})")
    verdict = "on" if rep["coverage"] else "off"
    why = []
    if rep["missing"] and not rep["written"]:
        why.append(f"missing {', '.join(rep['missing'])}")
    if rep["compiler"] is not None and rep["compiler"]["missing"]:
        why.append(f"{rep['compiler']['command']} rejects {', '.join(rep['compiler']['missing'])}")
    lines.append(f"coverage: {verdict}" + (f" ({'; '.join(why)})" if why else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=f"{PROG} config", usage_message=lambda prog, message: f"config: {message} (try '{prog} --help')",
        description="Read a kernel configuration and report whether kcov coverage is on and what is missing.",
                epilog="Exit status: 0 coverage on, 1 not on (see the report), 64 usage, 65 malformed or "
                "contradictory configuration or include cycle, 66 missing FILE, 69 compiler unavailable, "
                "73 OUT not writable.")
    p.add_argument("files", nargs="+", metavar="FILE", help="configuration file(s); Linux fragments merge in order")
    p.add_argument("--os", choices=("auto", *OSES), default="auto", help="kernel (default: from the content)")
    p.add_argument("--search", action="append", default=[], metavar="DIR", type=Path,
                   help="also look for included files here (repeatable)")
    p.add_argument("--write", metavar="OUT", type=Path, help="write the merged configuration with coverage on")
    p.add_argument("--compiler", metavar="CC", help="check that CC accepts the coverage flags")
    p.add_argument("-r", "--redundant", action="store_true", help="also report redundant repeats (merge_config.sh -r)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    return p


def main(argv: list[str]) -> int:
    return run_cli(PROG, lambda: _main(argv), interrupted=None)


def _main(argv: list[str]) -> int:
    opts = _parser().parse_args(argv)
    paths = [Path(f) for f in opts.files]
    for d in opts.search:
        if not d.is_dir():
            raise ConfigError(EX_USAGE, f"config: --search {d}: not a directory")
    if opts.write is not None and opts.write.is_dir():
        raise ConfigError(EX_USAGE, f"config: --write {opts.write}: is a directory")
    result = read_config(paths, opts.os, opts.search, opts.redundant)

    for m in result.redefinitions:
        print(m, file=sys.stderr)
    for w in result.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    for u in result.unresolved:
        print(f"{PROG}: note: {u.where}: include {u.name} not found (looked in {', '.join(u.searched)}); "
              "its contents were not read and coverage options are judged from the files that were "
              "(use --search DIR to point at the kernel's conf directory)", file=sys.stderr)

    flags = check_compiler(opts.compiler) if opts.compiler else None
    added: list[str] = []
    coverage = not result.missing()
    if opts.write is not None:
        text, messages = with_coverage(result, opts.redundant)
        for m in messages:
            print(m, file=sys.stderr)
        added = added_lines(result)
        write_atomic(opts.write, text)
        coverage = True
    if flags is not None and not all(flags.values()):
        coverage = False
    rep = _report_json(result, str(opts.write) if opts.write else None, opts.compiler, flags, added, coverage)
    if opts.json:
        print(json.dumps(rep, indent=2))
    else:
        sys.stdout.write(_report_text(rep))
    return EX_OK if coverage else EX_NOT_ON

