"""kcov-build kernel: configure and build a whole Linux kernel with kcov.

    kcov-build kernel --src DIR|TARBALL --config FRAGMENT [--config ...]
                      [--base tinyconfig|defconfig|olddefconfig|FILE]
                      [--compiler gcc|gcc-N|clang|clang-N] [-j N] [-O OUTDIR]

Here the coverage comes from the kernel's own kcov (CONFIG_KCOV), so the
plugin's job is the configuration, not compiler flags: Kbuild already adds
-fsanitize-coverage=trace-pc[,trace-cmp] to every object when KCOV and
KCOV_INSTRUMENT_ALL are on.  The steps are the ones a kernel developer runs
by hand, out of tree (make O=OUTDIR) so the source stays pristine:

1. the base configuration (default tinyconfig);
2. scripts/kconfig/merge_config.sh -m: the base, then the project's
   kernel_conf/linux/kcov.config, then the user's fragments (later wins);
3. make olddefconfig, which silently drops what a missing dependency or the
   compiler does not allow; so
4. every option the fragments asked for is checked against the final
   .config, and a mismatch is an error that names the options;
5. make, with one progress line every few seconds on stderr and the full log
   in OUTDIR/kcov-build.log (its tail is shown on failure).

On success the path of the boot image is printed on stdout.  The exit status
is make's on a failed build, or a sysexits(3) code for bad input.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from os import EX_DATAERR, EX_NOINPUT, EX_OK, EX_UNAVAILABLE, EX_USAGE
from pathlib import Path
from typing import IO, Any, Sequence

from kcov._base.errors import ArgumentParser, ToolkitError, run_cli
from kcov._base.files import atomic_directory, locked

from . import kconfig
from ._util import exit_status, terminal_signals_ignored, write_atomic

PROG = "kcov-build kernel"


PROGRESS_EVERY = 5.0  # seconds between progress lines
LOG_NAME = "kcov-build.log"
BASES = ("tinyconfig", "defconfig", "olddefconfig")
TARBALL_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.zst")


class KernelError(ToolkitError):
    """A failure reported in one line, ending with `exit_status`."""


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG, usage_message=lambda prog, message: f"{message} (try '{prog} --help')",
        description="Configure and build a Linux kernel with its kcov (CONFIG_KCOV) turned on.",
        epilog="The project's kcov.config fragment is always merged after the base "
        "and before your fragments, so a fragment of yours can override it.",
    )
    p.add_argument("--src", required=True, metavar="DIR|TARBALL",
                   help="kernel source tree, or a tarball (extracted once into the cache)")
    p.add_argument("--config", action="append", default=[], metavar="FRAGMENT",
                   help="a config fragment to merge (repeatable; later wins)")
    p.add_argument("--base", default="tinyconfig", metavar="tinyconfig|defconfig|olddefconfig|FILE",
                   help="starting configuration (default: tinyconfig); olddefconfig keeps OUTDIR/.config")
    p.add_argument("--compiler", default="gcc", metavar="gcc|gcc-N|clang|clang-N",
                   help="compiler (default: gcc); clang builds with LLVM=1 or LLVM=-N")
    p.add_argument("--arch", default=None,
                   help="kernel ARCH (default: the host's, e.g. x86_64, which makes tinyconfig 64-bit)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="parallel jobs (default: number of CPUs)")
    p.add_argument("-O", "--output", default=None, metavar="OUTDIR",
                   help="build directory (make O=OUTDIR; default: ./kcov-kernel-COMPILER)")
    p.add_argument("--target", action="append", default=[], metavar="TARGET",
                   help="make target instead of the default 'all' (repeatable)")
    return p


# --- Locations ------------------------------------------------------------


def cache_dir() -> Path:
    """Where extracted source trees are kept between runs."""
    env = os.environ.get("KCOV_BUILD_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kcov-build"


def kernel_conf_dir() -> Path:
    """The project's kernel_conf/ directory.

    $KCOV_KERNEL_CONF_DIR wins; then the copy installed with the package
    (kcov_build/kernel_conf); then the source checkout this module lives in.
    """
    env = os.environ.get("KCOV_KERNEL_CONF_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "kernel_conf", here.parent.parent / "kernel_conf"]
    for c in candidates:
        if (c / "linux" / "kcov.config").is_file():
            return c
    raise KernelError(
        "kernel_conf/linux/kcov.config not found (set KCOV_KERNEL_CONF_DIR or reinstall kcov)",
        EX_UNAVAILABLE,
    )


# --- Progress ---------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"kcov-build: {msg}", file=sys.stderr, flush=True)


def _elapsed(t0: float) -> str:
    s = int(time.monotonic() - t0)
    return f"{s // 60}m{s % 60:02d}s"


# --- Source ---------------------------------------------------------------


def _is_tarball(p: Path) -> bool:
    return p.is_file() and p.name.endswith(TARBALL_SUFFIXES)


def _extract(tarball: Path) -> Path:
    """Extract tarball once into the cache; return the kernel tree inside it."""
    st = tarball.stat()
    key = hashlib.sha256(f"{tarball.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    name = tarball.name.split(".tar")[0].split(".t")[0]
    dest = cache_dir() / "src" / f"{name}-{key}"
    # Under a lock: a second build of the same tarball waits for the first
    # one's extraction, rather than extracting again and swapping the tree
    # the first one is building from.
    with locked(dest.with_name(dest.name + ".lock")):
        if not dest.is_dir():
            with atomic_directory(dest) as tmp:
                _untar(tarball, tmp)
    entries = [e for e in dest.iterdir() if e.is_dir()]
    tree = entries[0] if len(entries) == 1 else dest
    return tree


def _untar(tarball: Path, into: Path) -> None:
    """tar -x, fed by us so that the share of the tarball read is the progress."""
    size = tarball.stat().st_size
    t0 = time.monotonic()
    _say(f"extracting {tarball} into {into.parent} (once)")
    with subprocess.Popen(_tar_cmd(tarball, into), stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        done = 0
        last = t0
        try:
            with tarball.open("rb") as f:
                while chunk := f.read(1 << 20):
                    proc.stdin.write(chunk)
                    done += len(chunk)
                    if time.monotonic() - last >= PROGRESS_EVERY:
                        last = time.monotonic()
                        _say(f"  extracting: {100 * done // max(size, 1)}% [{_elapsed(t0)}]")
            proc.stdin.close()
        except BrokenPipeError:  # tar stopped reading: its stderr says why
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        rc = proc.wait()
    if rc != 0:
        first = err.strip().splitlines()[:1]
        raise KernelError(f"cannot extract {tarball}: {first[0] if first else 'tar failed'}", EX_DATAERR)
    _say(f"  extracted in {_elapsed(t0)}")


def _tar_cmd(tarball: Path, into: Path) -> list[str]:
    decomp = {".xz": "--xz", ".txz": "--xz", ".gz": "--gzip", ".tgz": "--gzip",
              ".bz2": "--bzip2", ".tbz2": "--bzip2", ".zst": "--zstd"}.get(tarball.suffix)
    return ["tar", "-x", *([decomp] if decomp else []), "-f", "-", "-C", str(into)]


def resolve_source(src: str) -> Path:
    p = Path(src)
    if not p.exists():
        raise KernelError(f"--src {src}: no such file or directory", EX_NOINPUT)
    if _is_tarball(p):
        p = _extract(p)
    elif not p.is_dir():
        raise KernelError(f"--src {src}: neither a directory nor a kernel tarball", EX_NOINPUT)
    if not (p / "Makefile").is_file() or not (p / "scripts" / "kconfig" / "merge_config.sh").is_file():
        raise KernelError(f"--src {src}: not a Linux source tree (no Makefile or scripts/kconfig/merge_config.sh)",
                          EX_NOINPUT)
    return p.resolve()


# --- Compiler ---------------------------------------------------------------


@dataclass(frozen=True)
class Toolchain:
    name: str
    make_vars: tuple[str, ...]


def toolchain(compiler: str) -> Toolchain:
    """The make variables for a compiler name: gcc[-N] or clang[-N]."""
    m = re.fullmatch(r"(gcc|clang)(-(\d+))?", compiler)
    if m is None:
        raise KernelError(f"--compiler {compiler}: expected gcc, gcc-N, clang or clang-N", EX_USAGE)
    family, suffix = m.group(1), m.group(2) or ""
    cc = f"{family}{suffix}"
    if shutil.which(cc) is None:
        raise KernelError(f"--compiler {compiler}: {cc} not found on PATH", EX_UNAVAILABLE)
    if family == "gcc":
        return Toolchain(compiler, (f"CC={cc}", f"HOSTCC={cc}"))
    llvm_tools = [f"ld.lld{suffix}", f"llvm-ar{suffix}", f"llvm-nm{suffix}", f"llvm-objcopy{suffix}",
                  f"llvm-strip{suffix}", f"llvm-readelf{suffix}"]
    if all(shutil.which(t) for t in llvm_tools):
        return Toolchain(compiler, (f"LLVM={suffix or 1}",))
    # No LLVM binutils of that version: clang with GNU binutils.
    return Toolchain(compiler, (f"CC={cc}", f"HOSTCC={cc}"))


def default_arch() -> str:
    m = platform.machine()
    return {"aarch64": "arm64", "armv7l": "arm", "ppc64le": "powerpc", "riscv64": "riscv"}.get(m, m)


# --- Config fragments -------------------------------------------------------

def read_fragment(path: Path) -> dict[str, str]:
    """{CONFIG_X: value} of a .config or fragment (kconfig.read_values);
    'is not set' reads as 'n'."""
    try:
        return kconfig.read_values(path)
    except kconfig.ConfigError as e:
        raise KernelError(e.message, e.exit_status) from None


def mismatches(asked: dict[str, str], final: dict[str, str]) -> list[tuple[str, str, str]]:
    """(option, asked, got) for every asked option the final config lacks."""
    bad = []
    for opt, want in asked.items():
        got = final.get(opt, "n")
        if _norm(want) != _norm(got):
            bad.append((opt, want, "not set" if opt not in final else got))
    return bad


def _norm(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        return v
    return v.lower() if v.lower().startswith("0x") else v


# --- Running make -----------------------------------------------------------

_OBJ_LINE = re.compile(r"^\s+(CC|AS|CC \[M\]|AS \[M\])\s+(\S+)")


class Runner:
    """Runs commands with their output appended to the log, with progress."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.log: IO[str] = log_path.open("w", encoding="utf-8", errors="replace")

    def close(self) -> None:
        self.log.close()

    def run(self, cmd: Sequence[str], what: str, *, progress: bool = False) -> int:
        self.log.write(f"\n$ {' '.join(cmd)}\n")
        self.log.flush()
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace")
        except OSError as e:
            raise KernelError(f"{cmd[0]}: {e.strerror}", EX_UNAVAILABLE) from None
        state: dict[str, Any] = {"objs": 0, "last": ""}
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(what, t0, state, stop), daemon=True)
        if progress:
            ticker.start()
        try:
            with terminal_signals_ignored():
                assert proc.stdout is not None
                for line in proc.stdout:
                    self.log.write(line)
                    m = _OBJ_LINE.match(line)
                    if m is not None:
                        state["objs"] += 1
                        state["last"] = m.group(2)
                rc = proc.wait()
        finally:
            stop.set()
            self.log.flush()
        if progress:
            ticker.join()
            _say(f"{what}: {state['objs']} objects compiled in {_elapsed(t0)}")
        return exit_status(rc)

    @staticmethod
    def _tick(what: str, t0: float, state: dict[str, object], stop: threading.Event) -> None:
        while not stop.wait(PROGRESS_EVERY):
            _say(f"{what}: [{_elapsed(t0)}] {state['objs']} objects compiled, last {state['last']}")

    def tail(self, n: int = 40) -> str:
        self.log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


@dataclass
class Build:
    src: Path
    out: Path
    tools: Toolchain
    arch: str
    jobs: int

    def make(self, *targets: str, jobs: int = 1) -> list[str]:
        return ["make", "-C", str(self.src), f"O={self.out}", f"ARCH={self.arch}",
                *self.tools.make_vars, f"-j{jobs}", *targets]


def configure(b: Build, r: Runner, base: str, fragments: list[Path]) -> None:
    """Base config, merge_config.sh -m, olddefconfig, then verify."""
    dotconfig = b.out / ".config"
    if base in ("tinyconfig", "defconfig"):
        _step(r, b.make(base), f"make {base}")
    elif base == "olddefconfig":
        if not dotconfig.is_file():
            raise KernelError(f"--base olddefconfig: {dotconfig} does not exist", EX_NOINPUT)
    else:
        src = Path(base)
        if not src.is_file():
            raise KernelError(f"--base {base}: not tinyconfig, defconfig, olddefconfig or a file", EX_NOINPUT)
        read_fragment(src)  # reject a malformed base before make sees it
        if src.resolve() != dotconfig.resolve():
            write_atomic(dotconfig, src.read_bytes())
    merge = [str(b.src / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(b.out),
             str(dotconfig), *map(str, fragments)]
    _step(r, merge, "merge_config.sh -m")
    _step(r, b.make("olddefconfig"), "make olddefconfig")
    asked: dict[str, str] = {}
    for f in fragments:
        asked.update(read_fragment(f))
    bad = mismatches(asked, read_fragment(dotconfig))
    if bad:
        detail = "; ".join(f"{o} asked {w} got {g}" for o, w, g in bad)
        raise KernelError(
            f"{len(bad)} option(s) did not stick after olddefconfig "
            f"(a dependency is missing, or the compiler lacks support): {detail}",
            EX_DATAERR,
        )
    _say(f"configured {dotconfig}: all {len(asked)} fragment options set")


def _step(r: Runner, cmd: list[str], what: str) -> None:
    _say(what)
    rc = r.run(cmd, what)
    if rc != 0:
        print(r.tail(), file=sys.stderr)
        raise KernelError(f"{what} failed (exit {rc}); full log in {r.log_path}", rc)


def build(b: Build, r: Runner, targets: list[str]) -> Path:
    what = f"make -j{b.jobs} {' '.join(targets) or 'all'}"
    _say(f"building {b.src.name} with {b.tools.name} in {b.out}")
    rc = r.run(b.make(*targets, jobs=b.jobs), what, progress=True)
    if rc != 0:
        print(r.tail(), file=sys.stderr)
        raise KernelError(f"kernel build failed (make exit {rc}); full log in {r.log_path}", rc)
    out = subprocess.run(b.make("-s", "image_name"), capture_output=True, text=True, check=False)
    image = b.out / (out.stdout.strip().splitlines() or ["vmlinux"])[-1]
    if not image.is_file():
        image = b.out / "vmlinux"
    return image


def _run(opts: argparse.Namespace) -> int:
    t0 = time.monotonic()
    fragments = [Path(f) for f in opts.config]
    for f in fragments:
        if not f.is_file():
            raise KernelError(f"--config {f}: no such file", EX_NOINPUT)
        read_fragment(f)
    if opts.jobs < 1:
        raise KernelError(f"-j {opts.jobs}: must be at least 1", EX_USAGE)
    tools = toolchain(opts.compiler)
    for tool in ("make", "tar"):
        if shutil.which(tool) is None:
            raise KernelError(f"{tool} not found on PATH", EX_UNAVAILABLE)
    kcov_frag = kernel_conf_dir() / "linux" / "kcov.config"
    src = resolve_source(opts.src)
    out = Path(opts.output or f"kcov-kernel-{opts.compiler}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    if (src / ".config").exists():
        raise KernelError(f"{src} is not clean (it has a .config); run 'make mrproper' there first", EX_DATAERR)
    b = Build(src=src, out=out, tools=tools, arch=opts.arch or default_arch(), jobs=opts.jobs)
    r = Runner(out / LOG_NAME)
    try:
        configure(b, r, opts.base, [kcov_frag, *fragments])
        image = build(b, r, opts.target)
    finally:
        r.close()
    _say(f"done in {_elapsed(t0)}; log in {out / LOG_NAME}")
    print(image)
    return EX_OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    return run_cli("kcov-build", lambda: _run(_parser().parse_args(args)))


if __name__ == "__main__":
    sys.exit(main())
