"""kcov-build -- BUILD...: wrap a whole build, the way scan-build does.

The build sees two compiler wrappers, `cc` and `c++`, from a state directory
keyed by the settings (see wrap.state_dir).  They are injected where each
build system looks:

- make (and kbuild): CC=... and CXX=... on the command line, which override
  assignments in Makefiles; a CC=... the user already passed names the real
  compiler instead;
- cmake (configure step): -DCMAKE_C_COMPILER / -DCMAKE_CXX_COMPILER; the
  cache keeps the wrapper, so `cmake --build` later needs no kcov-build;
- everything else (ninja, meson, configure scripts, shell scripts): the CC
  and CXX environment variables.

The real compiler is, in order: --compiler, CC= on the make command line,
the kernel's own compiler for an out-of-tree module build (kbuild must use
the compiler the kernel was built with), $CC, then the newest clang on PATH.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from . import kconfig
from ._paths import RuntimePaths
from ._util import run_foreground, write_atomic
from .capability import capability_error
from .errors import BuildError
from .flags import instrumentation_flags, link_flags, profile_link_flags
from .settings import Settings
from .toolchain import cxx_for, identify, newest_clang, resolve
from .wrap import ENV_LOG, ENV_VERBOSE, ensure_state, rule_flags

PROG = "kcov-build"
MAKES = frozenset({"make", "gmake", "bmake", "remake"})

# A compiler's name: cc, gcc-12, x86_64-linux-gnu-gcc, clang++-19, ...
_COMPILER_NAME = re.compile(r"(?:^|.*[-_])(?:cc|c\+\+|gcc|g\+\+|clang|clang\+\+)(?:[-_.]\w*)*$")


def looks_like_compiler(cmd0: str) -> bool:
    return _COMPILER_NAME.fullmatch(os.path.basename(cmd0)) is not None


def _make_var(args: Sequence[str], name: str) -> str | None:
    value = None
    for a in args:
        if a.startswith(f"{name}="):
            value = a.split("=", 1)[1]
    return value


def _make_dir(args: Sequence[str]) -> str | None:
    d = None
    for i, a in enumerate(args):
        if a == "-C" and i + 1 < len(args):
            d = args[i + 1] if d is None else os.path.join(d, args[i + 1])
        elif a.startswith("-C") and len(a) > 2:
            d = a[2:] if d is None else os.path.join(d, a[2:])
        elif a.startswith("--directory="):
            d = a.split("=", 1)[1]
    return d


def _kconfig(kdir: str) -> dict[str, str]:
    """The configuration of the kernel build tree KDIR, strings unquoted
    ({} if it has none yet)."""
    for rel in ("include/config/auto.conf", ".config"):
        p = Path(kdir, rel)
        if p.is_file():
            return {k: v.strip('"') for k, v in kconfig.read_values(p).items()}
    return {}


def kernel_compiler(args: Sequence[str]) -> str | None:
    """For `make -C KDIR M=...`: the compiler the kernel in KDIR was built with."""
    if not any(a.startswith(("M=", "KBUILD_EXTMOD=")) for a in args):
        return None
    kdir = _make_dir(args)
    if kdir is None:
        return None
    conf = _kconfig(kdir)
    if conf.get("CONFIG_CC_IS_GCC") == "y":
        major = int(conf.get("CONFIG_GCC_VERSION", "0")) // 10000
        cands = [f"gcc-{major}", "gcc"] if major else ["gcc"]
    elif conf.get("CONFIG_CC_IS_CLANG") == "y":
        major = int(conf.get("CONFIG_CLANG_VERSION", "0")) // 10000
        cands = [f"clang-{major}", "clang"] if major else ["clang"]
    else:
        return None
    # The version text must match what the kernel recorded, or kbuild warns.
    text = conf.get("CONFIG_CC_VERSION_TEXT", "")
    first = text.split(" ", 1)[0] if text else ""
    for c in ([first] if first else []) + cands:
        if resolve(c) is not None:
            return c
    return None


def choose_compilers(cmd: Sequence[str], s: Settings) -> tuple[str, str | None, list[str]]:
    """(real cc, real c++, notes)."""
    notes: list[str] = []
    is_make = os.path.basename(cmd[0]) in MAKES
    make_cc = _make_var(cmd[1:], "CC") if is_make else None
    make_cxx = _make_var(cmd[1:], "CXX") if is_make else None
    env_cc = os.environ.get("CC") or None
    cxx: str | None = None
    if s.compiler:
        cc = s.compiler
        if make_cc and make_cc != cc:
            notes.append(f"CC={make_cc} on the make command line is replaced by --compiler {cc}")
    elif make_cc:
        cc, cxx = make_cc, make_cxx
    elif (k := kernel_compiler(cmd[1:])) is not None:
        cc = k
        notes.append(f"building against a kernel built with {k}: using it")
    elif env_cc:
        cc, cxx = env_cc, os.environ.get("CXX") or None
    else:
        found = newest_clang()
        if found is None:
            found = "gcc" if resolve("gcc") else None
        if found is None:
            raise BuildError("no compiler found: install clang or gcc, or pass --compiler", os.EX_UNAVAILABLE)
        cc = found
    if len(shlex.split(cc)) != 1:
        raise BuildError(f"compiler '{cc}' is a command line, not a compiler; pass --compiler PATH", os.EX_USAGE)
    real = resolve(cc)
    if real is None:
        raise BuildError(f"compiler {cc}: command not found", os.EX_UNAVAILABLE)
    real_cxx = resolve(cxx) if cxx else cxx_for(real)
    return real, real_cxx, notes


def _inject(cmd: list[str], cc: str, cxx: str) -> list[str]:
    base = os.path.basename(cmd[0])
    if base in MAKES:
        rest = [a for a in cmd[1:] if not a.startswith(("CC=", "CXX="))]
        return [cmd[0], *rest, f"CC={cc}", f"CXX={cxx}"]
    if base == "cmake" and not any(a in ("--build", "--install", "-E", "-P", "--open") for a in cmd[1:]):
        return [cmd[0], f"-DCMAKE_C_COMPILER={cc}", f"-DCMAKE_CXX_COMPILER={cxx}", *cmd[1:]]
    return list(cmd)


def _kmod_profile(new: list[str], cmd: Sequence[str], s: Settings, state: Path) -> list[str]:
    """--sbcc, make -C KDIR M=DIR: the module link's LDFLAGS_MODULE (kmod_profile.py)."""
    from .kmod_profile import KmodProfileError, kbuild_args, profiled

    if not profiled(s) or os.path.basename(cmd[0]) not in MAKES:
        return new

    kdir = _make_dir(cmd[1:])
    try:
        return kbuild_args(new, s, state, _kconfig(kdir) if kdir else {})
    except KmodProfileError as e:
        raise BuildError(str(e), e.exit_status) from None


def _read_log(path: str) -> list[dict[str, object]]:
    seen: dict[tuple[str, str], dict[str, object]] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        seen[(e["directory"], e["file"])] = e
    return list(seen.values())


def summary(s: Settings, state: Path, paths: RuntimePaths) -> list[str]:
    """What is injected, as printed by --dry-run and --verbose."""
    cov = instrumentation_flags(s)
    if s.family == "clang" and s.sancov:
        cov += rule_flags(s, state)
    lines = [
        f"compiler: {s.cc} ({s.family} {'.'.join(map(str, s.version))})".replace(" )", ")"),
        f"c++ compiler: {s.cxx or 'none'}",
        f"compile flags: {shlex.join(cov + s.cflags)}",
        "link flags (hosted links; none for kernel code): "
        + ("none" if s.runtime == "none" else shlex.join(
            profile_link_flags(s, paths) + link_flags(paths, s.runtime == "static"))),
    ]
    if s.abi:
        lines.append(f"include: -I{paths.compat_dir / s.abi}")
    for g in s.exclude_files:
        lines.append(f"exclude file: {g}" + (" (per file: gcc has no ignorelist)" if s.family != "clang" else ""))
    for p in s.exclude_functions:
        lines.append(
            f"exclude function: {p}"
            + ("" if s.family == "clang" else " (gcc: the whole file that defines it)")
        )
    for g in s.only_files:
        lines.append(f"only file: {g}")
    for p in s.only_functions:
        lines.append(f"only function: {p}")
    if s.needs_analysis:
        lines.append(f"source analysis (libclang) for annotations: {', '.join(s.all_annotations)}")
    lines.append(f"wrappers: {state / 'cc'} {state / 'c++'}")
    return lines


def run_build(
    cmd: Sequence[str],
    s: Settings,
    paths: RuntimePaths,
    *,
    dry_run: bool = False,
    verbose: bool = False,
    compdb: str | None = None,
    inventory: str | None = None,
) -> int:
    if resolve(cmd[0]) is None:
        raise BuildError(f"{cmd[0]}: command not found", 127)
    cc, cxx, notes = choose_compilers(cmd, s)
    s.cc, s.cxx = cc, cxx
    comp = identify(cc)
    s.family, s.version = comp.family, comp.version
    msg = capability_error(s, cc)
    if msg is not None:
        raise BuildError(msg, os.EX_USAGE)
    state = ensure_state(s)
    new = _inject(list(cmd), str(state / "cc"), str(state / "c++"))
    new = _kmod_profile(new, cmd, s, state)
    env = dict(os.environ, CC=str(state / "cc"), CXX=str(state / "c++"))
    for n in notes:
        print(f"{PROG}: note: {n}", file=sys.stderr)
    if dry_run:
        for line in summary(s, state, paths):
            print(f"# {line}")
        print(shlex.join([f"CC={state / 'cc'}", f"CXX={state / 'c++'}", *new]))
        return 0
    if verbose:
        env[ENV_VERBOSE] = "1"
        for line in summary(s, state, paths):
            print(f"{PROG}: {line}", file=sys.stderr)
        print(f"{PROG}: running {shlex.join(new)}", file=sys.stderr)
    log_fd, log = -1, None
    if compdb or inventory:
        log_fd, log = tempfile.mkstemp(prefix="kcov-build-", suffix=".jsonl")
        os.close(log_fd)
        env[ENV_LOG] = log
    try:
        rc = run_foreground(new, PROG, env)
        if log is not None:
            entries = _read_log(log)
            if rc != 0:
                print(f"{PROG}: the build failed (status {rc}); no compile database or inventory written",
                      file=sys.stderr)
            else:
                if compdb:
                    write_atomic(Path(compdb), json.dumps(entries, indent=1) + "\n")
                    print(f"{PROG}: wrote {compdb} ({len(entries)} compiles)", file=sys.stderr)
                if inventory:
                    from . import analysis

                    ents = [
                        analysis.CompileEntry(str(e["directory"]), str(e["file"]), list(e["arguments"]))  # type: ignore[call-overload]
                        for e in entries
                    ]
                    try:
                        funcs = analysis.inventory(ents, annotations=s.all_annotations, progress=True)
                        analysis.write_inventory(funcs, inventory)
                    except analysis.AnalysisError as e:
                        raise BuildError(f"inventory: {e}", os.EX_DATAERR) from None
                    print(f"{PROG}: wrote {inventory} ({len(funcs)} functions)", file=sys.stderr)
    finally:
        if log is not None:
            try:
                os.unlink(log)
            except OSError:
                pass
    return rc
