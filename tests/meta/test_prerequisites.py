"""The stock kernel is derived, never pinned, and no suite skips silently
where everything is required (CI=true, make test, make check)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kcov_build.distro import NoStockKernel, installed, parse_release, stock_kernel

from tests.support.prereq import REPO


def fake_system(tmp: Path, images: list[str], headers: list[str]) -> tuple[Path, Path]:
    boot, src = tmp / "boot", tmp / "src"
    boot.mkdir()
    src.mkdir()
    for r in images:
        (boot / f"vmlinuz-{r}").write_bytes(b"MZ")
    for r in headers:
        (src / f"linux-headers-{r}").mkdir()
        (src / f"linux-headers-{r}" / "Makefile").write_text("# kbuild\n")
    return boot, src


def test_release_strings() -> None:
    assert parse_release("6.1.0-57-amd64") == ((6, 1, 0, 57), "amd64")
    assert parse_release("6.1.0-57-rt-amd64") == ((6, 1, 0, 57), "rt-amd64")
    assert parse_release("6.12.48+deb12-cloud-amd64") == ((6, 12, 48, 0), "cloud-amd64")
    assert parse_release("vmlinuz") is None


def test_newest_image_with_headers_wins(tmp_path: Path) -> None:
    # 6.1.0-58 has no headers, 6.1.0-9 sorts below 6.1.0-57 by number,
    # the rt flavour is not the generic one.
    boot, src = fake_system(tmp_path, ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-57-amd64",
                                       "6.1.0-58-amd64", "6.1.0-60-rt-amd64", "6.12.48+deb12-amd64"],
                            ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.1.0-57-amd64", "6.1.0-60-rt-amd64",
                             "6.12.48+deb12-amd64"])
    env: dict[str, str] = {}
    k = stock_kernel("6.1", boot=boot, src=src, environ=env)
    assert (k.release, k.image, k.headers) == ("6.1.0-57-amd64", boot / "vmlinuz-6.1.0-57-amd64",
                                               src / "linux-headers-6.1.0-57-amd64")
    assert stock_kernel(boot=boot, src=src, environ=env).release == "6.12.48+deb12-amd64"
    assert stock_kernel("6.1", "rt-amd64", boot=boot, src=src, environ=env).release == "6.1.0-60-rt-amd64"
    assert stock_kernel(boot=boot, src=src, environ={"KCOV_STOCK_KERNEL": "6.1.0-56-amd64"}).release \
        == "6.1.0-56-amd64"
    assert [k.release for k in installed(boot, src)][:2] == ["6.12.48+deb12-amd64", "6.1.0-60-rt-amd64"]


def test_no_kernel_says_what_to_install(tmp_path: Path) -> None:
    boot, src = fake_system(tmp_path, ["6.1.0-57-amd64"], [])
    with pytest.raises(NoStockKernel, match=r"images: vmlinuz-6.1.0-57-amd64; headers: none\); "
                                            r"apt install linux-image-amd64 linux-headers-amd64"):
        stock_kernel("6.1", boot=boot, src=src, environ={})
    with pytest.raises(NoStockKernel, match="KCOV_STOCK_KERNEL=6.1.0-1-amd64"):
        stock_kernel(boot=boot, src=src, environ={"KCOV_STOCK_KERNEL": "6.1.0-1-amd64"})


def test_cli_prints_the_installed_kernel() -> None:
    exe = REPO / ".venv" / "bin" / "kcov-build"
    p = subprocess.run([str(exe), "stock-kernel", "--series", "6.1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    release = p.stdout.strip()
    assert Path(f"/boot/vmlinuz-{release}").is_file() and Path(f"/usr/src/linux-headers-{release}/Makefile").is_file()
    p = subprocess.run([str(exe), "stock-kernel"], capture_output=True, text=True,
                       env=dict(os.environ, KCOV_STOCK_KERNEL="0.0.0-0-amd64"))
    assert (p.returncode, p.stdout) == (os.EX_UNAVAILABLE, "")
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("kcov-build stock-kernel: KCOV_STOCK_KERNEL=0.0.0-0-amd64")


def counts(out: str) -> dict[str, int]:
    """pytest's closing line as {'failed': 2, 'error': 1, ...}; a setup
    failure (a fixture's need(), a skipif mark) counts as an error."""
    last = out.strip().splitlines()[-1]
    got = {w.rstrip("s"): int(n) for n, w in re.findall(r"(\d+) (\w+)", last)}
    got["not passed"] = got.get("failed", 0) + got.get("error", 0)
    return got


def pytest_outcomes(args: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[str, int]:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "KCOV_REQUIRE_ALL", "PYTEST_ADDOPTS")}
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", *args],
                       cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=600)
    return p.stdout + p.stderr, p.returncode


PROBE = '''
import pytest
from tests.support.prereq import need

def test_need():
    need(False, "the probe's tool is missing")

@pytest.mark.skipif(True, reason="a skipif mark")
def test_mark():
    assert False

def test_plain_skip():
    pytest.skip("a plain skip")

@pytest.mark.vm
def test_guest_only():
    assert False
'''


@pytest.mark.parametrize("strict_env", [{"CI": "true"}, {"KCOV_REQUIRE_ALL": "1"}, {}])
def test_every_skip_fails_where_everything_is_required(tmp_path: Path, strict_env: dict[str, str]) -> None:
    """tests/conftest.py's rule, applied to a probe folder: need(), a
    skipif mark and a plain skip all fail under CI=true and make test; a
    guest-only test still skips outside the VM."""
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems, pytest_runtest_makereport  # noqa: F401\n")
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    vm: guest only\n")
    out, rc = pytest_outcomes([str(tmp_path)], {**strict_env, "PYTHONPATH": str(REPO)}, cwd=tmp_path)
    if strict_env:
        assert (counts(out)["not passed"], counts(out)["skipped"], rc) == (3, 1, 1), out
        assert "the probe's tool is missing" in out and "a skipif mark" in out and "a plain skip" in out, out
    else:
        assert (counts(out)["skipped"], counts(out)["not passed"], rc) == (4, 0, 0), out
    assert "guest-only: runs inside the VM" in out, out


@pytest.mark.parametrize("suite", ["tests/kmod/test_kmod.py::test_module_builds_exports_and_is_not_instrumented",
                                   "tests/vm/test_kernel_vm.py::test_stock_debian_kernel_boots"])
def test_kernel_suite_without_its_kernel_fails_in_ci(suite: str) -> None:
    """With no installed kernel to boot (KCOV_STOCK_KERNEL names none), a
    kernel suite fails under CI=true and skips, saying why, in an ad-hoc run."""
    bogus = {"KCOV_STOCK_KERNEL": "0.0.0-0-amd64"}
    out, rc = pytest_outcomes([suite], {**bogus, "CI": "true"})
    assert (rc, counts(out)["not passed"], counts(out).get("skipped", 0)) == (1, 1, 0), out
    assert "CI=true but KCOV_STOCK_KERNEL=0.0.0-0-amd64: no /boot/vmlinuz-0.0.0-0-amd64" in out, out
    out, rc = pytest_outcomes([suite], bogus)
    assert (rc, counts(out).get("skipped")) == (0, 1) and "KCOV_STOCK_KERNEL=0.0.0-0-amd64" in out, out
