"""Unmodified kcov clients against kcov.ko: the PC and comparison examples
of Linux's Documentation/dev-tools/kcov.rst (compiled unchanged on the host,
see tests/kmod/kmod_progs.py), and syzkaller's fork-server sequence
(data/progs/forkserver.c) in the Linux and FreeBSD ABIs.

The kcov.rst examples trace read(-1, NULL, 0).  The stock kernel's read
path is not instrumented, so they record nothing until kcovsys.ko
(data/kcovsys) puts instrumented code on the system call path.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import kmod_guest as H
import kmod_text as T

pytestmark = pytest.mark.vm

CMP_LINE = re.compile(r"ip: 0x([0-9a-f]+) type: 0x([0-9a-f]+), arg1: 0x([0-9a-f]+), "
                      r"arg2: 0x([0-9a-f]+), size: (\d+), (const|non-const)")
MINUS_ONE = (1 << 64) - 1


def env_path(name: str) -> Path:
    if name not in os.environ:
        pytest.fail(f"{name} is not set (run by tests/kmod)")
    return Path(os.environ[name])


def prog(name: str) -> Path:
    return env_path("KMOD_PROGS") / name


def run(*cmd: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def kcovsys() -> Iterator[T.ModuleText]:
    """kcovsys.ko for one test: loaded, it records in every system call."""
    ko = env_path("KCOVSYS_KO")
    r = run("insmod", ko)
    assert r.returncode == 0, r.stderr
    try:
        yield T.ModuleText("kcovsys", ko)
    finally:
        r = run("rmmod", "kcovsys")
        assert r.returncode == 0, r.stderr


def reads() -> int:
    return int(Path("/sys/module/kcovsys/parameters/reads").read_text())


def pc_example() -> list[int]:
    r = run(prog("kcov_rst_pc"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert all(re.fullmatch(r"0x[0-9a-f]+", line) for line in lines), r.stdout
    return [int(line, 16) for line in lines]


def test_kcov_rst_pc_example_records_nothing_on_the_stock_read_path() -> None:
    assert not Path("/sys/module/kcovsys").exists()
    assert pc_example() == []


def test_kcov_rst_pc_example(kcovsys: T.ModuleText) -> None:
    ko = env_path("KCOVSYS_KO")
    before = reads()
    pcs = pc_example()
    assert reads() == before + 1
    assert 3 <= len(pcs) <= 40, pcs
    T.check_pcs(kcovsys, ko, pcs, "kcov.rst PC example")
    funcs = {kcovsys.function_of(pc) for pc in pcs}
    assert "kcovsys_probe" in funcs
    assert any(f is not None and f.startswith("kcovsys_bad_read") for f in funcs), funcs
    # kcov aims at stable coverage: the same call gives the same PCs.
    assert sorted(set(pc_example())) == sorted(set(pcs))


def test_kcov_rst_cmp_example(kcovsys: T.ModuleText) -> None:
    ko = env_path("KCOVSYS_KO")
    r = run(prog("kcov_rst_cmp"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    recs = [CMP_LINE.fullmatch(line) for line in lines]
    assert lines and all(recs), r.stdout
    parsed = [(int(m[1], 16), int(m[2], 16), int(m[3], 16), int(m[4], 16), int(m[5]), m[6])
              for m in recs if m]
    for _ip, typ, _a1, _a2, size, const in parsed:
        assert typ <= 7 and size == 1 << ((typ & 6) >> 1)
        assert (const == "const") == bool(typ & 1)
    T.check_pcs(kcovsys, ko, [p[0] for p in parsed], "kcov.rst CMP example")
    # `fd == -1` on the read(-1, ...) path: both operands -1, one constant.
    assert any(a1 == a2 == MINUS_ONE and size == 8 and const == "const"
               for _ip, _t, a1, a2, size, const in parsed), r.stdout
    # `id == __NR_read`, __NR_read being 0.
    assert any(a1 == a2 == 0 and const == "const" for _ip, _t, a1, a2, _s, const in parsed)


# --- syzkaller's fork server ---------------------------------------------

INPUTS = ["7", "abc", "0xC0FFEE", "42"]
NPROGS = 12


def parse_forkserver(out: str) -> list[dict[str, object]]:
    progs: list[dict[str, object]] = []
    for line in out.splitlines():
        f = line.split()
        if f[0] == "prog":
            progs.append({"i": int(f[1]), "mode": f[2], "status": int(f[4]),
                          "count": int(f[6]), "pcs": [], "cmps": []})
        elif f[0] == "pc":
            progs[-1]["pcs"].append(int(f[1], 16))  # type: ignore[union-attr]
        elif f[0] == "cmp":
            progs[-1]["cmps"].append(tuple(int(x, 0) for x in f[1:]))  # type: ignore[union-attr]
    return progs


@pytest.mark.parametrize("abi", ["linux", "freebsd"])
def test_syzkaller_fork_server(abi: str) -> None:
    assert not Path("/sys/module/kcovsys").exists()
    r = run(prog(f"forkserver-{abi}"), NPROGS, *INPUTS)
    assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr}"
    progs = parse_forkserver(r.stdout)
    assert [p["i"] for p in progs] == list(range(NPROGS))
    text = T.ModuleText("kcovtest", Path(os.environ["KCOVTEST_KO"]))
    ko = Path(os.environ["KCOVTEST_KO"])
    pc_sets: dict[str, set[int]] = {}
    for p in progs:
        i, count = int(p["i"]), int(p["count"])  # type: ignore[call-overload]
        assert p["status"] == 0 and count > 0, p
        assert p["mode"] == ("cmp" if i % 3 == 2 else "pc")
        if p["mode"] == "pc":
            pcs: list[int] = p["pcs"]  # type: ignore[assignment]
            assert len(pcs) == count and pcs == sorted(pcs)  # sorted in place
            T.check_pcs(text, ko, pcs, f"{abi} prog {i}")
            s = set(pcs)
            # The same input gives the same PCs in every child.
            assert pc_sets.setdefault(INPUTS[i % len(INPUTS)], s) == s, i
        else:
            cmps: list[tuple[int, ...]] = p["cmps"]  # type: ignore[assignment]
            assert len(cmps) == count and all(c[0] <= 7 for c in cmps)
            T.check_pcs(text, ko, [c[3] for c in cmps], f"{abi} prog {i}")
            if INPUTS[i % len(INPUTS)] == "0xC0FFEE":
                assert any(c[1] == c[2] == 0xC0FFEE for c in cmps), cmps
    # A number and a word take different paths; so does the 0xC0FFEE branch.
    assert pc_sets["7"] != pc_sets["abc"] and pc_sets["7"] != pc_sets["0xC0FFEE"]
    # The parent never traced itself, and every child's exit freed its binding.
    assert H.wait_until(lambda: H.stats()["tasks"] == 0, 10), H.stats()
