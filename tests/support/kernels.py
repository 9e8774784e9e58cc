"""Kernels built with `kcov-build kernel` for the real-kernel tests.

A built kernel is cached under .cache/kernel/<key>, the key covering the
source tarball, the two fragments, the compiler's version and the builder
itself, so local reruns boot at once.  With CI=true every kernel is built
from scratch (source extraction included) in pytest's temporary directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .prereq import in_ci, need  # noqa: F401  (kernel suites import them from here)

from .vm import REPO, VENV_BIN

KCONF = REPO / "kernel_conf"
LINUX_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
CACHE = REPO / ".cache"


def kcov_build_cmd() -> list[str]:
    exe = VENV_BIN / "kcov-build"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "kcov_build"]


def builder_env(cache: Path) -> dict[str, str]:
    """Environment for kcov-build kernel: this tree's fragments, our cache."""
    env = dict(os.environ)
    env["KCOV_KERNEL_CONF_DIR"] = str(KCONF)
    env["KCOV_BUILD_CACHE"] = str(cache)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    return env


@dataclass(frozen=True)
class BuiltKernel:
    compiler: str
    outdir: Path
    image: Path
    seconds: float  # wall time of the build that produced it
    cached: bool

    @property
    def system_map(self) -> Path:
        return self.outdir / "System.map"

    @property
    def dotconfig(self) -> Path:
        return self.outdir / ".config"


# DWARF for the gcc kernel, so that tests/report symbolises its vmlinux.
DEBUGINFO_CONFIG = REPO / "tests" / "report" / "data" / "debuginfo.config"


def fragments(compiler: str) -> list[Path]:
    """The fragments after kcov.config (which kcov-build kernel merges first).

    Each kernel is built once per run and serves every suite that needs
    one like it.  The clang kernel also loads modules: tests/kprofile boots
    it with kcov.ko and an SBCC-instrumented module.  The gcc kernel carries
    DWARF: tests/report maps its PCs to source lines (reportfix.py)."""
    frags = [KCONF / "linux" / "vm.config"]
    if compiler.startswith("clang"):
        frags.append(KCONF / "linux" / "modules.config")
    else:
        frags.append(DEBUGINFO_CONFIG)
    return frags


def _key(compiler: str) -> str:
    import kcov_build.kernel as kernel_mod

    h = hashlib.sha256()
    st = LINUX_TARBALL.stat()
    h.update(f"{LINUX_TARBALL}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for f in (KCONF / "linux" / "kcov.config", *fragments(compiler), Path(kernel_mod.__file__)):
        h.update(f.read_bytes())
    ver = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    h.update(ver.encode())
    return f"{compiler}-{h.hexdigest()[:16]}"


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# Kernels built in this pytest process (CI), so that every suite asking for
# the same compiler's kernel (tests/vm, tests/kprofile) shares one build.
_BUILT: dict[str, BuiltKernel] = {}


def build_kernel(compiler: str, tmp_factory: pytest.TempPathFactory) -> BuiltKernel:
    if compiler in _BUILT:
        return _BUILT[compiler]
    k = _build_kernel(compiler, tmp_factory)
    _BUILT[compiler] = k
    return k


def _build_kernel(compiler: str, tmp_factory: pytest.TempPathFactory) -> BuiltKernel:
    need(LINUX_TARBALL.is_file(), f"{LINUX_TARBALL} is missing (apt install linux-source-6.1)")
    need(shutil.which(compiler) is not None, f"{compiler} is not installed")
    if in_ci():
        root = tmp_factory.mktemp(f"kernel-{compiler}")
        outdir, cache, marker = root / "build", root / "cache", None
    else:
        outdir = CACHE / "kernel" / _key(compiler)
        cache, marker = CACHE / "kcov-build", outdir / "kcov-test-built.json"
        if marker.is_file():
            info = json.loads(marker.read_text())
            image = Path(info["image"])
            if image.is_file():
                return BuiltKernel(compiler, outdir, image, float(info["seconds"]), True)
    cmd = [*kcov_build_cmd(), "kernel", "--src", str(LINUX_TARBALL)]
    for frag in fragments(compiler):
        cmd += ["--config", str(frag)]
    cmd += ["--compiler", compiler, "-j", str(os.cpu_count() or 2), "-O", str(outdir)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=builder_env(cache), check=False)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    image = Path(proc.stdout.strip().splitlines()[-1])
    assert image.is_file(), proc.stdout
    if marker is not None:
        _write_json(marker, {"image": str(image), "seconds": seconds})
    sys.stderr.write(f"\n[kernel {compiler}] built in {seconds:.0f}s\n")
    return BuiltKernel(compiler, outdir, image, seconds, False)


