"""kcov-build kernel: bad input gets one line on stderr and a sysexits code.

The configuration error case runs the real kconfig of Debian's
linux-source-6.1 (tinyconfig + merge + olddefconfig, no compile), so it
checks the real "did not stick" detection, not a mock of it.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.kernels import CACHE, KCONF, LINUX_TARBALL, builder_env, in_ci, kcov_build_cmd, need


def run(args: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kcov_build_cmd(), "kernel", *args], capture_output=True, text=True,
                          env=builder_env(cache), cwd=cwd, check=False, timeout=600)


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    lines = p.stderr.strip().splitlines()
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stdout == "", p.stdout
    assert len(lines) >= 1 and lines[-1].startswith("kcov-build: "), p.stderr
    return lines[-1]


def test_missing_src(tmp_path: Path) -> None:
    p = run(["--src", str(tmp_path / "nope"), "--config", str(KCONF / "linux" / "vm.config")], tmp_path, tmp_path)
    assert p.returncode == 66
    msg = one_line_error(p)
    assert len(p.stderr.strip().splitlines()) == 1
    assert "nope" in msg and "no such file" in msg


def test_src_not_a_kernel_tree(tmp_path: Path) -> None:
    p = run(["--src", str(tmp_path)], tmp_path, tmp_path)
    assert p.returncode == 66
    assert "not a Linux source tree" in one_line_error(p)


def test_missing_fragment(tmp_path: Path) -> None:
    p = run(["--src", str(tmp_path), "--config", str(tmp_path / "missing.config")], tmp_path, tmp_path)
    assert p.returncode == 66
    assert len(p.stderr.strip().splitlines()) == 1
    assert "missing.config" in one_line_error(p)


def test_malformed_fragment(tmp_path: Path) -> None:
    frag = tmp_path / "bad.config"
    frag.write_text("CONFIG_KCOV=y\nthis is not kconfig\n")
    p = run(["--src", str(tmp_path), "--config", str(frag)], tmp_path, tmp_path)
    assert p.returncode == 65
    msg = one_line_error(p)
    assert f"{frag}:2" in msg


@pytest.mark.parametrize("args, status, words", [
    (["--compiler", "tcc"], 64, "expected gcc"),
    (["--compiler", "clang-3"], 69, "clang-3 not found"),
    (["-j", "0"], 64, "-j 0"),
    ([], 64, "--src"),
])
def test_bad_options(tmp_path: Path, args: list[str], status: int, words: str) -> None:
    src = [] if not args else ["--src", str(tmp_path)]
    p = run([*src, *args], tmp_path, tmp_path)
    assert p.returncode == status, p.stderr
    assert words in one_line_error(p)


def test_option_that_cannot_be_set(tmp_path: Path) -> None:
    """9P_FS needs INET: asking for it without INET must fail and say so."""
    need(LINUX_TARBALL.is_file(), f"{LINUX_TARBALL} is missing (apt install linux-source-6.1)")
    frag = tmp_path / "no-inet.config"
    frag.write_text("CONFIG_64BIT=y\nCONFIG_NET=y\n# CONFIG_INET is not set\nCONFIG_NET_9P=y\n"
                    "CONFIG_9P_FS=y\nCONFIG_KCOV_NO_SUCH_OPTION=y\n")
    cache = tmp_path / "cache" if in_ci() else CACHE / "kcov-build"
    out = tmp_path / "out"
    p = run(["--src", str(LINUX_TARBALL), "--config", str(frag), "--compiler", "gcc", "-O", str(out)],
            cache, tmp_path)
    assert p.returncode == 65, p.stderr
    msg = one_line_error(p)
    assert "did not stick" in msg and "dependency" in msg
    assert "CONFIG_9P_FS asked y got not set" in msg
    assert "CONFIG_KCOV_NO_SUCH_OPTION asked y got not set" in msg
    # what did stick is not listed; the kcov fragment itself stuck
    assert "CONFIG_NET_9P asked" not in msg and "CONFIG_KCOV asked" not in msg
    assert (out / "kcov-build.log").is_file()
    assert not (out / "vmlinux").exists()
