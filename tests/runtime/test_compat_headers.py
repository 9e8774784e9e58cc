"""The compat headers of include/kcov/compat: every name, with the value of
the OS it imitates (bsd-kcov.md §1.1, §2.1, §3.1; linux-kcov.md §1)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runtime_clients import Toolchain

DATA = Path(__file__).parent / "data"
SYSTEM_LINUX_KCOV = Path("/usr/include/linux/kcov.h")

# Values from the spec tables (amd64/arm64, LP64), independent of the headers.
EXPECTED: dict[str, dict[str, int]] = {
    "freebsd": {
        "KCOV_MAXENTRIES": 1 << 24,
        "KCOV_ENTRY_SIZE": 8,
        "KCOV_MODE_TRACE_PC": 0,
        "KCOV_MODE_TRACE_CMP": 1,
        "KIOENABLE": 0x20046302,
        "KIODISABLE": 0x20006303,
        "KIOSETBUFSIZE": 0x20046304,
        "KCOV_CMP_CONST": 1,
        "KCOV_CMP_SIZE(0)": 0,
        "KCOV_CMP_SIZE(1)": 2,
        "KCOV_CMP_SIZE(2)": 4,
        "KCOV_CMP_SIZE(3)": 6,
        "KCOV_CMP_MASK": 6,
        "KCOV_CMP_GET_SIZE(7)": 3,
        "KCOV_CMP_GET_SIZE(4)": 2,
    },
    "netbsd": {
        "KCOV_IOC_SETBUFSIZE": 0x80084B01,
        "KCOV_IOC_ENABLE": 0x80044B02,
        "KCOV_IOC_DISABLE": 0x20004B03,
        "KCOV_IOC_REMOTE_ATTACH": 0x80104B0A,
        "KCOV_IOC_REMOTE_DETACH": 0x20004B0B,
        "KCOV_REMOTE_VHCI": 0,
        "KCOV_REMOTE_VHCI_ID(3, 5)": (3 << 32) | 5,
        "KCOV_REMOTE_VHCI_ID(1, 0x1ffffffffULL)": (1 << 32) | 0xFFFFFFFF,
        "KCOV_MODE_NONE": 0,
        "KCOV_MODE_TRACE_PC": 1,
        "KCOV_MODE_TRACE_CMP": 2,
        "KCOV_ENTRY_SIZE": 8,
        "sizeof(kcov_int_t)": 8,
        "sizeof(struct kcov_ioc_remote_attach)": 16,
        "offsetof(struct kcov_ioc_remote_attach, id)": 8,
    },
    "openbsd": {
        "KIOSETBUFSIZE": 0x80084B01,
        "KIOENABLE": 0x80044B02,
        "KIODISABLE": 0x20004B03,
        "KIOREMOTEATTACH": 0x80084B04,
        "KCOV_MODE_NONE": 0,
        "KCOV_MODE_TRACE_PC": 1,
        "KCOV_MODE_TRACE_CMP": 2,
        "KCOV_REMOTE_COMMON": 0,
        "sizeof(struct kio_remote_attach)": 8,
        "offsetof(struct kio_remote_attach, id)": 4,
    },
    "linux": {
        "KCOV_INIT_TRACE": 0x80086301,
        "KCOV_ENABLE": 0x6364,
        "KCOV_DISABLE": 0x6365,
        "KCOV_REMOTE_ENABLE": 0x40186366,
        "KCOV_TRACE_PC": 0,
        "KCOV_TRACE_CMP": 1,
        "KCOV_CMP_CONST": 1,
        "KCOV_CMP_SIZE(0)": 0,
        "KCOV_CMP_SIZE(3)": 6,
        "KCOV_CMP_MASK": 6,
        "KCOV_SUBSYSTEM_COMMON": 0,
        "KCOV_SUBSYSTEM_USB": 1 << 56,
        "KCOV_SUBSYSTEM_MASK": 0xFF << 56,
        "KCOV_INSTANCE_MASK": 0xFFFFFFFF,
        "KCOV_REMOTE_MAX_HANDLES": 0x100,
        "sizeof(struct kcov_remote_arg)": 24,
        "offsetof(struct kcov_remote_arg, trace_mode)": 0,
        "offsetof(struct kcov_remote_arg, area_size)": 4,
        "offsetof(struct kcov_remote_arg, num_handles)": 8,
        "offsetof(struct kcov_remote_arg, common_handle)": 16,
        "offsetof(struct kcov_remote_arg, handles)": 24,
        "kcov_remote_handle(KCOV_SUBSYSTEM_USB, 0x42)": (1 << 56) | 0x42,
        "kcov_remote_handle(KCOV_SUBSYSTEM_COMMON, 0x100000000ULL)": 0,
        "kcov_remote_handle(0x1ULL << 40, 1)": 0,
    },
}

OSES = sorted(EXPECTED)


def _values(cc: str, includes: list[str], os_name: str, out: Path) -> dict[str, int]:
    exe = out / f"values-{os_name}-{cc}-{len(includes)}"
    proc = subprocess.run(
        [cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", *includes,
         f"-DOS_{os_name.upper()}", str(DATA / "compat_values.c"), "-o", str(exe)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    values: dict[str, int] = {}
    for line in run.stdout.splitlines():
        name, _, value = line.rpartition(" ")
        values[name] = int(value, 16)
    return values


@pytest.mark.parametrize("os_name", OSES)
def test_values_match_spec(toolchain: Toolchain, tmp_path: Path, os_name: str) -> None:
    got = _values("clang-19", [f"-I{toolchain.compat(os_name)}"], os_name, tmp_path)
    assert got == EXPECTED[os_name]


def test_linux_header_matches_system_header(toolchain: Toolchain, tmp_path: Path) -> None:
    """Our <linux/kcov.h> against Debian's linux-libc-dev copy."""
    if not SYSTEM_LINUX_KCOV.is_file():
        pytest.skip(f"{SYSTEM_LINUX_KCOV} not installed (linux-libc-dev)")
    ours = _values("clang-19", [f"-I{toolchain.compat('linux')}"], "linux", tmp_path)
    system = _values("clang-19", [], "linux", tmp_path)
    assert ours == system


@pytest.mark.parametrize("os_name", OSES)
@pytest.mark.parametrize("cc", ["gcc-12", "clang-14", "clang-19", "clang++-19", "g++-12"])
def test_header_compiles_cleanly(
    toolchain: Toolchain, tmp_path: Path, os_name: str, cc: str
) -> None:
    """C and C++ clients (syzkaller's executor is C++), with BSD code's usual
    <sys/ioctl.h> next to it: no clash with Linux's _IO macros, no warnings."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    header = "linux/kcov.h" if os_name == "linux" else "sys/kcov.h"
    src = tmp_path / ("t.cc" if cc.endswith("++-19") or cc.startswith("g++") else "t.c")
    src.write_text(f"#include <sys/ioctl.h>\n#include <{header}>\n"
                   f"#include <{header}>\nint main(void) {{ return 0; }}\n")
    proc = subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                           f"-I{toolchain.compat(os_name)}", str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_freebsd_coverage_h_needs_kcov_h(toolchain: Toolchain, tmp_path: Path) -> None:
    """Like FreeBSD's, <sys/coverage.h> refuses user space on its own."""
    inc = f"-I{toolchain.compat('freebsd')}"
    alone = tmp_path / "alone.c"
    alone.write_text("#include <sys/coverage.h>\n")
    proc = subprocess.run(["clang-19", "-fsyntax-only", inc, str(alone)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "sys/kcov.h" in proc.stderr
    after = tmp_path / "after.c"
    after.write_text("#include <sys/kcov.h>\n#include <sys/coverage.h>\n"
                     "int x = COV_CMP_SIZE(2) | COV_CMP_CONST;\n")
    proc = subprocess.run(["clang-19", "-fsyntax-only", "-Wall", "-Werror", inc, str(after)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
