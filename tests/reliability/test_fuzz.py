"""Fuzzing the surfaces users feed, hosted half (issue 7, point 4).

* The hosted ioctl and mmap surface, per device personality: random command
  numbers (every ABI's, their neighbours, random words), arguments (values,
  NULL, valid, unmapped and kernel-half pointers), lengths, offsets,
  protections and flags, in every descriptor state.  Only the errnos the
  ABI of the command documents may come back (bsd-kcov.md §1.6, §2.2, §3.2;
  linux-kcov.md §2.3, §2.4), exactly ENOTTY for a command of another ABI
  than the one that sized the descriptor, and the descriptor must stay
  consistent.
* ``kcov-build config`` with random file contents: an exit status of
  0, 1, 64, 65, 66, 69 or 73, never a traceback, a one-line error, and with
  ``--write`` no output or temporary file unless it succeeded.
* ``kcov-run`` with random arguments: a usage/availability status, never a
  traceback.

Budgets are fixed and the search derandomized; KCOV_FUZZ_EXAMPLES scales
them.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.prereq import own
from hypothesis import given
from hypothesis import strategies as st

from kcov import Abi, _core
from tests.support import abi_tables as T
from fuzzhelp import budget
from rel_workers import Worker



# Personalities by kcov.Abi value; the commands, documented errnos and
# which ABI answers are tests/support/abi_tables.py's (the spec's, shared
# with kcov.ko's stress suite).
FREEBSD, LINUX, NETBSD, OPENBSD = (int(a) for a in Abi)
NAME = {int(a): a.name.lower() for a in Abi}
ALL_CMDS = list(T.ALL_CMDS)


def check_ioctl(cmd: int, sized: int, personality: int, err: int, a: Any) -> None:
    """`err` is what the spec allows for `cmd` on a descriptor sized in ABI
    `sized` (0: not sized) of a node with `personality`: exactly EINVAL or
    ENOTTY for an unknown command, exactly ENOTTY for another ABI's command
    (EFAULT first for a bad NetBSD/OpenBSD pointer), else 0 or an errno the
    command's ABI documents."""
    handler, exact = T.expected_ioctl(cmd, NAME.get(sized), NAME[personality])
    if exact is not None:
        assert err in exact, f"{cmd:#x} ({handler}) on a {NAME.get(sized)} descriptor " \
            f"arg {a!r}: errno {err}, want one of {sorted(exact)}"
    else:
        assert handler is not None
        assert err == 0 or err in T.DOCUMENTED[handler], \
            f"{cmd:#x} ({handler}) arg {a!r}: undocumented errno {err}"


commands = st.one_of(
    st.sampled_from(ALL_CMDS),
    st.sampled_from(ALL_CMDS).flatmap(
        lambda c: st.integers(-3, 3).map(lambda d: (c + d) & 0xFFFFFFFF)),
    st.sampled_from(ALL_CMDS).flatmap(  # another size field
        lambda c: st.integers(0, 0x1FFF).map(
            lambda s: (c & ~(0x1FFF << 16)) | (s << 16))),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 2**64 - 1),
)
POINTERS = ["null", "buffer", "unmapped", "kernel", "odd"]
arguments = st.one_of(
    st.sampled_from([0, 1, 2, 3, 511, 512, 4096, 1 << 24, (1 << 24) + 1,
                     0x7FFFFFFF // 8 + 1, 2**31 - 1, 2**32 - 1, 2**63,
                     2**64 - 1]),
    st.integers(0, 2**64 - 1),
    st.tuples(st.sampled_from(POINTERS), st.binary(min_size=0, max_size=32)),
)


class Arg:
    """Turns a drawn argument into an integer, keeping buffers alive."""

    def __init__(self) -> None:
        self.keep: list[Any] = []

    def value(self, a: Any) -> int:
        if isinstance(a, int):
            return a
        kind, data = a
        if kind == "buffer":
            buf = ctypes.create_string_buffer(bytes(data) + bytes(32), 64)
            self.keep.append(buf)
            return ctypes.addressof(buf)
        return {"null": 0, "unmapped": 0x10, "kernel": 0xFFFF800000000000,
                "odd": 0x7FFFFFFFFFFF}[kind]


calls = st.lists(st.one_of(
    st.tuples(st.just("ioctl"), commands, arguments),
    st.tuples(st.just("mmap"),
              st.sampled_from([0, 1, 8, 4095, 4096, 4097, 8192, 1 << 20,
                               1 << 40, 2**63]),
              st.integers(0, 15),  # prot: READ, WRITE, EXEC, SEM
              st.sampled_from([0x01, 0x02, 0x03, 0x01 | 0x20000,
                               0x02 | 0x4000, 0x0F]),  # no MAP_FIXED
              st.sampled_from([0, 1, 8, 4096, 8192, -4096, 1 << 40])),
), min_size=1, max_size=12)


def _fuzz_one(personality: int, setup: str, seq: list[Any]) -> None:
    arg = Arg()
    fd = _core.hosted_open(personality, True)
    page = int(_core.PAGE_SIZE)
    name = NAME[personality]
    try:
        if setup != "open":
            n = 512 if not T.BY_POINTER[name] else \
                arg.value(("buffer", (512).to_bytes(8, "little")))
            assert _core.hosted_ioctl(fd, T.SETBUFSIZE[name], n) == 0
        if setup == "running":
            pc = T.MODES[name]["PC"]
            mode = pc if not T.BY_POINTER[name] else \
                arg.value(("buffer", pc.to_bytes(4, "little")))
            assert _core.hosted_ioctl(fd, T.ENABLE[name], mode) == 0
        for call in seq:
            if call[0] == "ioctl":
                _, cmd, a = call
                before = dict(_core.hosted_info(fd))
                err = _core.hosted_ioctl(fd, cmd, arg.value(a))
                check_ioctl(cmd, before["abi"], personality, err, a)
                if err != 0:
                    after = dict(_core.hosted_info(fd))
                    assert after["state"] == before["state"], \
                        f"a refused {cmd:#x} changed the state"
            else:
                _, length, prot, flags, off = call
                err, m = _core.hosted_mmap(fd, length, prot, flags, off)
                assert err == 0 or err in T.MMAP_ERRNOS, \
                    f"mmap({length}, {prot}, {flags:#x}, {off}): errno {err}"
                if m is not None:
                    assert m.length == length
                    if prot & 1 and m.nwords:
                        m.word(0)  # readable, and no crash
            inf = dict(_core.hosted_info(fd))
            assert inf["state"] in (1, 2, 3)
            assert inf["count"] <= max(inf["capacity"], 0) or inf["count"] == 0
            assert inf["bufsize"] % page == 0
    finally:
        _core.hosted_close(fd)


@budget(2000)
@given(personality=st.sampled_from([FREEBSD, LINUX, NETBSD, OPENBSD]),
       setup=st.sampled_from(["open", "ready", "running"]), seq=calls)
def test_fuzz_ioctl_mmap(personality: int, setup: str, seq: list[Any]) -> None:
    """Random ioctls and mmaps on a descriptor, on a thread that exits after."""
    w = Worker("fuzz")
    try:
        w.call(lambda: _fuzz_one(personality, setup, seq))
    finally:
        w.exit()


# --- kcov-build config ---------------------------------------------------------

LINES = st.one_of(
    st.sampled_from([
        "CONFIG_KCOV=y", "CONFIG_KCOV=n", "CONFIG_KCOV=m", "CONFIG_KCOV=",
        "# CONFIG_KCOV is not set", "CONFIG_DEBUG_FS=y",
        "CONFIG_KCOV_ENABLE_COMPARISONS=y", "CONFIG_KCOV_INSTRUMENT_ALL=y",
        'CONFIG_CMDLINE="console=ttyS0', 'CONFIG_CMDLINE="x"',
        "CONFIG_NR_CPUS=0x10", "CONFIG_X=maybe", "options KCOV",
        "options COVERAGE", "makeoptions KCOV=1", "pseudo-device kcov 1",
        "include GENERIC", "include self.conf", "include ../../../../etc/passwd",
        "ident KCOV", "machine amd64", "nooptions KCOV", "device kcov",
        "#", "", "   ", "\t", "options", "include", "CONFIG_=y", "=y",
    ]),
    st.text(max_size=40).map(lambda s: s.replace("\n", " ")),
    st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
)
CONFIG_STATUS = {0, 1, 64, 65, 66, 69, 73}


def _config_main(argv: list[str]) -> tuple[int, str, str]:
    from kcov_build import kconfig

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = kconfig.main(argv)
        except SystemExit as e:  # argparse's own exits are allowed
            status = e.code if isinstance(e.code, int) else 1
    return status, out.getvalue(), err.getvalue()


@budget(1500)
@given(lines=st.lists(LINES, max_size=25), name=st.sampled_from(
    [".config", "KCOV", "frag.config", "GENERIC", "self.conf"]),
    extra=st.lists(st.sampled_from(["--json", "-r", "--os=linux",
                                    "--os=freebsd", "--os=netbsd",
                                    "--os=openbsd", "--os=bogus"]),
                   max_size=2),
    write=st.booleans())
def test_fuzz_kcov_build_config(tmp_path_factory: pytest.TempPathFactory,
                                lines: list[str], name: str,
                                extra: list[str], write: bool) -> None:
    d = tmp_path_factory.mktemp("cfg", numbered=True)
    src = d / name
    src.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    out = d / "out" / "merged.config"
    out.parent.mkdir()
    argv = [str(src), *extra] + (["--write", str(out)] if write else [])
    status, stdout, stderr = _config_main(argv)
    assert status in CONFIG_STATUS, f"status {status}\n{stderr}"
    assert "Traceback" not in stderr
    if status >= 64:
        errors = [ln for ln in stderr.splitlines() if "note:" not in ln]
        assert errors, f"status {status} without a message"
        assert all(ln.startswith("kcov-build") or ln.startswith("usage:")
                   or "kcov-build" in ln or ln.strip() == "" or
                   not ln.startswith(" ") for ln in errors), stderr
    if write:
        left = sorted(p.name for p in out.parent.iterdir())
        if status in (0, 1):
            assert left == ["merged.config"], left
        else:
            assert left == [], f"status {status} left {left}"


# --- kcov-run -------------------------------------------------------------------

RUN_ARGS = st.lists(st.one_of(
    st.sampled_from(["--abi", "freebsd", "linux", "netbsd", "openbsd", "vms",
                     "--", "-h", "--help", "--version", "-x", "--abi=",
                     "/nonexistent/prog", "/", "/etc/passwd", "true", ""]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"],
                                   blacklist_characters="\x00"), max_size=12),
), max_size=5)


@budget(40)
@given(args=RUN_ARGS)
def test_fuzz_kcov_run(args: list[str]) -> None:
    exe = Path(sys.executable).parent / "kcov-run"
    own(exe.is_file(), "kcov-run is not installed")
    r = subprocess.run([str(exe), *args], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL, cwd="/tmp")
    stderr = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    # The program's own status when it ran (`true` gives 0), else a usage,
    # unavailable, not-executable or not-found status.
    assert r.returncode in (0, 1, 2, 64, 69, 126, 127), (r.returncode, stderr)
