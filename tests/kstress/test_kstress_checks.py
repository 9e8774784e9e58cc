"""The kernel stress suite's own checks, without a kernel: the debug
configuration fragment, the kmemleak report parser and the kernel-log
patterns (the runs in test_kstress.py show them failing on real reports)."""
from __future__ import annotations

import re

import pytest
from kstress_host import DEBUG_CONFIG, kernel_problems, parse_kmemleak


def test_fragment_documents_every_option() -> None:
    """Each option line of debug.config has its reason on the line above."""
    lines = DEBUG_CONFIG.read_text().splitlines()
    options = [(i, line) for i, line in enumerate(lines)
               if re.match(r"^(CONFIG_\w+=|# CONFIG_\w+ is not set$)", line)]
    assert len(options) >= 20
    for i, line in options:
        above = lines[i - 1]
        assert above.startswith("# ") and not re.match(r"^# CONFIG_\w+ is not set$", above), \
            f"debug.config:{i + 1}: {line!r} has no reason above it"
    assert "# CONFIG_KCOV is not set" in lines
    assert not any(line.startswith("CONFIG_KCOV") for line in lines)


def test_kmemleak_parser() -> None:
    """parse_kmemleak on the format of mm/kmemleak.c (6.1)."""
    text = """unreferenced object 0xffff888004a1b000 (size 1337):
  comm "sh", pid 251, jiffies 4294900000 (age 12.340s)
  hex dump (first 32 bytes):
    6b 73 74 72 65 73 73 63 74 6c 20 6c 65 61 6b 00  kstressctl leak.
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<ffffffff812c3d15>] __kmem_cache_alloc_node+0x1c5/0x2f0
    [<ffffffffa0002079>] kstressctl_trigger+0x79/0xed0 [kstressctl]
unreferenced object 0xffff888004a1c000 (size 64):
  comm "swapper/0", pid 1, jiffies 4294890000 (age 20.000s)
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<ffffffff812c3d15>] kmalloc_trace+0x25/0x90
"""
    leaks = parse_kmemleak(text)
    assert [(x.size, x.comm) for x in leaks] == [(1337, "sh"), (64, "swapper/0")]
    assert leaks[0].mentions("kstressctl") and not leaks[1].mentions("kstressctl")
    assert "kstressctl leak" in leaks[0].hexdump
    assert parse_kmemleak("") == []
    with pytest.raises(ValueError):
        parse_kmemleak("something else\n")


def test_problem_patterns() -> None:
    """kernel_problems flags each kind of report the debug kernel prints."""
    for line in ("[ 1.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1",
                 "[ 1.0] BUG: KASAN: use-after-free in kcov_close+0x1/0x2 [kcov]",
                 "[ 1.0] WARNING: possible circular locking dependency detected",
                 "[ 1.0] BUG: sleeping function called from invalid context at x.c:1",
                 "[ 1.0] INFO: task python:12 blocked for more than 120 seconds.",
                 "[ 1.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
                 "[ 1.0] WARNING: suspicious RCU usage"):
        assert kernel_problems(line) == [line], line
    assert kernel_problems("[ 1.0] kcov: /dev/kcov (freebsd) and /sys/kernel/debug/kcov ready") == []


def test_kcov_build_config_says_coverage_off() -> None:
    """kcov-build config reads the fragment and agrees: no kcov in this kernel."""
    import subprocess

    from kstress_host import VENV_BIN

    p = subprocess.run([str(VENV_BIN / "kcov-build"), "config", str(DEBUG_CONFIG)],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "coverage: off" in p.stdout and "CONFIG_KCOV=y                        MISSING" in p.stdout
