"""kcov-run: exit status, errors, options, and an unmodified client."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

KCOV_RUN = str(Path(sys.executable).with_name("kcov-run"))


def kcov_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KCOV_RUN, *args], capture_output=True, text=True, timeout=60)


def test_exit_status_is_the_programs() -> None:
    assert kcov_run("--", "sh", "-c", "exit 7").returncode == 7
    assert kcov_run("sh", "-c", "exit 0").returncode == 0


def test_signal_death_is_the_programs() -> None:
    # kcov-run execs the program, so the caller sees the signal itself.
    r = kcov_run("sh", "-c", "kill -TERM $$")
    assert r.returncode == -signal.SIGTERM


def test_missing_program_is_one_line() -> None:
    r = kcov_run("no-such-program-kcov")
    assert r.returncode == 127
    assert r.stderr.strip() == "kcov-run: no-such-program-kcov: command not found"


def test_bad_usage_has_no_traceback() -> None:
    for args in ((), ("--max-entries", "1", "true"), ("--abi", "solaris", "true")):
        r = kcov_run(*args)
        assert r.returncode != 0, args
        assert "Traceback" not in r.stderr and r.stderr.strip(), args


CLIENT = textwrap.dedent("""
    import errno, fcntl, mmap, os, sys
    fd = os.open("/dev/kcov", os.O_RDWR)          # served by the preload library
    try:
        fcntl.ioctl(fd, 0x20046304, int(sys.argv[1]))   # KIOSETBUFSIZE, by value
    except OSError as e:
        print("setbufsize", errno.errorcode[e.errno])
        sys.exit(0)
    m = mmap.mmap(fd, int(sys.argv[1]) * 8, mmap.MAP_SHARED,
                  mmap.PROT_READ | mmap.PROT_WRITE)
    fcntl.ioctl(fd, 0x20046302, 0)                # KIOENABLE PC
    fcntl.ioctl(fd, 0x20006303, 0)                # KIODISABLE
    print("ok", len(m))
""")


def test_unmodified_python_client_and_max_entries() -> None:
    ok = kcov_run(sys.executable, "-c", CLIENT, "1024")
    assert ok.returncode == 0 and ok.stdout.split() == ["ok", "8192"], ok.stderr
    capped = kcov_run("--max-entries", "512", sys.executable, "-c", CLIENT, "1024")
    assert capped.stdout.split() == ["setbufsize", "EINVAL"], capped.stderr
    # Without kcov-run there is no /dev/kcov here at all.
    plain = subprocess.run([sys.executable, "-c", CLIENT, "1024"], capture_output=True,
                           text=True, timeout=60)
    assert plain.returncode != 0
