"""Kernels built with `kcov-build kernel` for the real-kernel tests.

A built kernel is cached under .cache/kernel/<key>, the key covering the
source tarball, its fragments, the compiler's version and the builder
itself, so local reruns boot at once.  With CI=true every kernel is built
from scratch (source extraction included) in pytest's temporary directory
of the run.  Either way a build holds a lock, so pytest-xdist's workers
build each kernel once and share it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest

from examples.kernel.kmodules import kcov_build_cmd
from kcov._base import locked, write_atomic

from .prereq import in_ci, need  # noqa: F401  (kernel suites import them from here)

from .vm import REPO, VENV_BIN

KCONF = REPO / "kernel_conf"
LINUX_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
CACHE = REPO / ".cache"


def builder_env(cache: Path) -> dict[str, str]:
    """Environment for kcov-build kernel: this tree's fragments, our cache."""
    env = dict(os.environ)
    env["KCOV_KERNEL_CONF_DIR"] = str(KCONF)
    env["KCOV_BUILD_CACHE"] = str(cache)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    return env


# DWARF for the gcc kernel, so that tests/report symbolises its vmlinux.
DEBUGINFO_CONFIG = REPO / "tests" / "report" / "data" / "debuginfo.config"
# KASAN, KMEMLEAK, lockdep and the atomic-sleep checks, no CONFIG_KCOV.
DEBUG_CONFIG = KCONF / "linux" / "debug.config"


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of the suite: a name, a compiler and the fragments after
    kcov.config (which kcov-build kernel merges first)."""

    name: str
    compiler: str
    fragments: tuple[Path, ...]


# Each kernel is built once per run and serves every suite that needs one
# like it.  The clang kernel also loads modules: tests/kprofile boots it with
# kcov.ko and an SBCC-instrumented module.  The gcc kernel carries DWARF:
# tests/report maps its PCs to source lines (reportfix.py).  The debug kernel
# is tests/kstress's: kcov.ko under KASAN, kmemleak and lockdep.
KERNELS = {
    "gcc-12": KernelSpec("gcc-12", "gcc-12", (KCONF / "linux" / "vm.config", DEBUGINFO_CONFIG)),
    "clang-19": KernelSpec("clang-19", "clang-19", (KCONF / "linux" / "vm.config",
                                                    KCONF / "linux" / "modules.config")),
    "debug": KernelSpec("debug", "gcc-12", (KCONF / "linux" / "vm.config", DEBUG_CONFIG)),
}


def fragments(compiler: str) -> list[Path]:
    """The fragments of the kcov kernel built with `compiler`."""
    return list(KERNELS[compiler].fragments)


@dataclass(frozen=True)
class BuiltKernel:
    name: str
    compiler: str
    outdir: Path
    image: Path
    seconds: float  # wall time of the build that produced it
    cached: bool

    @property
    def system_map(self) -> Path:
        return self.outdir / "System.map"

    @property
    def vmlinux(self) -> Path:
        return self.outdir / "vmlinux"

    @property
    def dotconfig(self) -> Path:
        return self.outdir / ".config"

    def config(self) -> dict[str, str]:
        """CONFIG_X -> value of the built .config ('n' for 'is not set')."""
        out: dict[str, str] = {}
        for line in self.dotconfig.read_text().splitlines():
            if (m := re.match(r"^(CONFIG_\w+)=(.*)$", line)) is not None:
                out[m.group(1)] = m.group(2)
            elif (m := re.match(r"^# (CONFIG_\w+) is not set$", line)) is not None:
                out[m.group(1)] = "n"
        return out


def source_key(compiler: str, fragments: Sequence[Path]) -> str:
    """16 hex digits that change with what a `kcov-build kernel` build of
    the tarball depends on: the tarball, kcov.config and `fragments`,
    kcov-build's kernel builder and the compiler's version (also the key
    of benchmarks/kmod_anchor.py's kernels)."""
    import kcov_build.kernel as kernel_mod

    h = hashlib.sha256()
    st = LINUX_TARBALL.stat()
    h.update(f"{LINUX_TARBALL}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for f in (KCONF / "linux" / "kcov.config", *fragments, Path(kernel_mod.__file__)):
        h.update(f.read_bytes())
    ver = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    h.update(ver.encode())
    return h.hexdigest()[:16]


def _key(spec: KernelSpec) -> str:
    prefix = spec.name if spec.name == spec.compiler else f"{spec.name}-{spec.compiler}"
    return f"{prefix}-{source_key(spec.compiler, spec.fragments)}"


# Kernels built in this pytest process (CI), so that every suite asking for
# the same kernel (tests/vm, tests/kprofile, tests/report) shares one build.
_BUILT: dict[str, BuiltKernel] = {}


def build_kernel(name: str, tmp_factory: pytest.TempPathFactory | None, jobs: int | None = None) -> BuiltKernel:
    """Kernel `name` of KERNELS: built once per process; locally from the
    cache when it is there; with CI=true always from scratch."""
    if name not in _BUILT:
        _BUILT[name] = _build(KERNELS[name], tmp_factory, jobs)
    return _BUILT[name]


def _build(spec: KernelSpec, tmp_factory: pytest.TempPathFactory | None, jobs: int | None) -> BuiltKernel:
    need(LINUX_TARBALL.is_file(), f"{LINUX_TARBALL} is missing (apt install linux-source-6.1)")
    need(shutil.which(spec.compiler) is not None, f"{spec.compiler} is not installed")
    if in_ci():
        assert tmp_factory is not None, "with CI=true kernels are built in pytest's temporary directory"
        # The run's own directory, shared by pytest-xdist's workers (each has
        # a popen-gwN below it), so a kernel two workers need is built once.
        base = tmp_factory.getbasetemp()
        run = base.parent if base.name.startswith("popen-gw") else base
        root = run / f"kernel-{spec.name}"
        # One kcov-build cache for the run: the tarball is extracted once
        # (kcov-build kernel locks the extraction) and serves every kernel.
        outdir, cache, marker = root / "build", run / "kcov-build-cache", root / "kcov-test-built.json"
        lock: contextlib.AbstractContextManager[None] = locked(root.with_name(root.name + ".lock"))
    else:
        outdir = CACHE / "kernel" / _key(spec)
        cache, marker = CACHE / "kcov-build", outdir / "kcov-test-built.json"
        lock = locked(outdir.with_name(outdir.name + ".lock"))
    with lock:
        if marker is not None and marker.is_file():
            info = json.loads(marker.read_text())
            image = Path(info["image"])
            if image.is_file():
                return BuiltKernel(spec.name, spec.compiler, outdir, image, float(info["seconds"]), True)
        cmd = [*kcov_build_cmd(), "kernel", "--src", str(LINUX_TARBALL)]
        for frag in spec.fragments:
            cmd += ["--config", str(frag)]
        cmd += ["--compiler", spec.compiler, "-j", str(jobs or os.cpu_count() or 2), "-O", str(outdir)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=builder_env(cache), check=False)
        seconds = time.monotonic() - t0
        assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
        image = Path(proc.stdout.strip().splitlines()[-1])
        assert image.is_file(), proc.stdout
        if marker is not None:
            write_atomic(marker, json.dumps({"image": str(image), "seconds": seconds}))
        sys.stderr.write(f"\n[kernel {spec.name}] built in {seconds:.0f}s\n")
        return BuiltKernel(spec.name, spec.compiler, outdir, image, seconds, False)


if __name__ == "__main__":  # build (or find) a cached kernel by hand: python -m tests.support.kernels debug
    k = build_kernel(sys.argv[1] if len(sys.argv) > 1 else "gcc-12", None)
    print(f"{k.image} ({'cached' if k.cached else 'built'}, {k.seconds:.0f}s)")
