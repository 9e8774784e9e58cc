"""Kernel-grade semantics of kcov.ko, on real kernel code (kcovtest.ko):
where the PCs come from, comparison records, IRQ context, read-only
mappings, fork, close while RUNNING, and a short stress run."""
from __future__ import annotations

import mmap
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import kcov
from tests.support import kmod_guest as H
from kcov import Mode

pytestmark = pytest.mark.vm

INPUTS = [b"7", b"42", b"0xC0FFEE", b"2000000", b"abc", b"x", b"zzz"]


def pc_set(k: kcov.Kcov, arg: bytes) -> frozenset[int]:
    with k.trace(Mode.PC):
        H.work(arg)
        return frozenset(int(p) for p in k.pcs())


@pytest.mark.parametrize("abi", ["freebsd", "linux", "netbsd", "openbsd"])
def test_pcs_lie_in_module_text(abi: str) -> None:
    lo, hi = H.text_range()
    with H.open_dev(abi, 1024) as k:
        for arg in INPUTS:
            pcs = pc_set(k, arg)
            assert pcs, f"{arg!r}: no coverage"
            outside = [hex(p) for p in pcs if not lo <= p <= hi]
            assert not outside, f"{arg!r}: PCs outside kcovtest .text [{lo:#x}, {hi:#x}]: {outside}"


def test_different_inputs_give_different_pc_sets() -> None:
    with H.open_dev("freebsd", 1024) as k:
        sets = {arg: pc_set(k, arg) for arg in INPUTS}
        # Deterministic: the same input covers the same PCs again.
        for arg in INPUTS:
            assert pc_set(k, arg) == sets[arg], arg
    assert sets[b"7"] != sets[b"abc"]
    assert sets[b"abc"] != sets[b"x"]
    assert sets[b"0xC0FFEE"] != sets[b"2000000"]
    assert len(set(sets.values())) >= 5, {a.decode(): len(s) for a, s in sets.items()}


def cmp_records(abi: str, arg: bytes) -> kcov.Comparisons:
    with H.open_dev(abi, 1024) as k, k.trace(Mode.CMP):
        H.work(arg)
        return kcov.Comparisons.from_records(np.array(k.comparisons().records, copy=True))


@pytest.mark.parametrize("abi", ["freebsd", "linux"])
def test_cmp_records_carry_the_constants(abi: str) -> None:
    lo, hi = H.text_range()
    c = cmp_records(abi, b"0xC0FFEE")
    assert len(c) > 0
    assert all(lo <= int(p) <= hi for p in c.pc)
    assert all(int(t) <= 7 for t in c.type)
    hit = (c.arg1 == 0xC0FFEE) & c.is_const & (c.size == 8)
    assert hit.any(), list(zip(c.arg1, c.arg2))
    assert (c.arg2[hit] == 0xC0FFEE).all()
    # The switch on 7 / 42 / 1234: one record per case.
    s = cmp_records(abi, b"42")
    cases = {7, 42, 1234}
    if abi == "freebsd":  # FreeBSD's layout: arg1 = value | CONST, arg2 = case
        sw = (s.arg1 == (42 | 1)) & (s.type == 6)
        assert {int(x) for x in s.arg2[sw]} == cases
    else:  # Linux's: const records, arg1 = case, arg2 = value
        sw = (s.arg2 == 42) & s.is_const & (s.size == 8)
        assert cases <= {int(x) for x in s.arg1[sw]}


def test_irq_context_not_recorded() -> None:
    funcs = H.function_ranges()
    irq = {n: funcs[n] for n in ("kcovtest_irq_work", "kcovtest_hard_fn", "kcovtest_soft_fn")}
    before = H.kcovtest_counters()
    with H.open_dev("freebsd", 4096) as k:
        with k.trace(Mode.PC):
            H.work(b"irq")
            pcs = [int(p) for p in k.pcs()]
    after = H.kcovtest_counters()
    # The hard-IRQ hrtimer and the softirq timer really ran meanwhile...
    assert after["hard"] > before["hard"] and after["soft"] > before["soft"]
    # ...their instrumented code was not recorded, the writer's was.
    assert pcs
    wrong = [(hex(p), n) for p in pcs for n, (a, b) in irq.items() if a <= p < b]
    assert not wrong, wrong


@pytest.mark.parametrize("abi", ["freebsd", "linux"])
def test_mprotect_readonly_keeps_recording(abi: str) -> None:
    with H.open_dev(abi, H.PAGE // 8) as k:
        m = k.mapping
        k.enable(Mode.PC)
        m.set_count(0)
        H.mprotect(m.address, m.length, mmap.PROT_READ)
        try:
            H.work(b"abc")
            n = m.count()
            assert n > 0
            H.work(b"abc")
            assert m.count() > n
            k.disable()
        finally:
            H.mprotect(m.address, m.length, mmap.PROT_READ | mmap.PROT_WRITE)


def test_fork_child_not_traced() -> None:
    with H.open_dev("freebsd", H.PAGE // 8) as k:
        k.enable(Mode.PC)
        m = k.mapping
        m.set_count(0)
        pid = os.fork()
        if pid == 0:  # the child: shares the buffer, must not record into it
            status = 0
            try:
                H.work(b"abc")
                H.work(b"7")
                # The parent owns the descriptor: the child may not enable it.
                try:
                    k.ioctl(kcov.spec("freebsd").enable, 0)
                    status = 3
                except kcov.KcovBusyError:
                    pass
            except BaseException:  # noqa: BLE001 - reported as the status
                status = 2
            os._exit(status)
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
        assert m.count() == 0, "the forked child recorded into the parent's buffer"
        H.work(b"abc")
        assert m.count() > 0, "the parent stopped recording after fork"
        k.disable()


@pytest.mark.parametrize("abi,keeps_recording", [("freebsd", False), ("openbsd", False),
                                                  ("linux", True), ("netbsd", True)])
def test_close_while_running_frees_at_exit(abi: str, keeps_recording: bool) -> None:
    base = H.stats()
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def owner() -> None:
        k = H.open_dev(abi, H.PAGE // 8)
        k.enable(Mode.PC)
        box["k"] = k
        ready.set()
        go.wait(30)
        H.work(b"abc")
        done.set()

    t = threading.Thread(target=owner)
    t.start()
    assert ready.wait(30)
    k = box["k"]
    assert isinstance(k, kcov.Kcov)
    m = k.mapping
    k.close()  # closed by another thread while RUNNING: DYING
    s = H.stats()
    assert s["descriptors"] == base["descriptors"] + 1, "freed while its owner runs"
    assert s["tasks"] == base["tasks"] + 1
    m.set_count(0)
    go.set()
    H.join_os(t)
    assert done.is_set()
    assert (m.count() > 0) == keeps_recording
    # The owner's exit freed the descriptor (the mapping keeps the buffer).
    assert H.wait_until(lambda: H.stats()["descriptors"] == base["descriptors"]
                        and H.stats()["tasks"] == base["tasks"]), H.stats()
    assert H.stats()["buffers"] == base["buffers"] + 1
    box.clear()
    del m, k
    # no_leaks checks the buffer went with the mapping.


STRESS = r"""
import os, sys, threading
import kcov
from tests.support import kmod_guest as H
procs, cycles = int(sys.argv[1]), int(sys.argv[2])
def run(n):
    abi = ("freebsd", "linux", "netbsd", "openbsd")[n % 4]
    for i in range(cycles):
        k = H.open_dev(abi, 512)
        if i % 10 == 9:  # exit while enabled, in a thread of its own
            t = threading.Thread(target=lambda: (k.enable(kcov.Mode.PC), H.work(b"7")))
            t.start(); H.join_os(t)
        k.enable(kcov.Mode.PC)
        k.reset()
        H.work(b"abc")
        assert k.count > 0, (abi, i)
        k.disable()
        k.close()
pids = []
for n in range(procs):
    pid = os.fork()
    if pid == 0:
        try:
            run(n); os._exit(0)
        except BaseException as e:
            print(repr(e), file=sys.stderr, flush=True); os._exit(1)
    pids.append(pid)
bad = sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) != 0 for p in pids)
sys.exit(bad)
"""


def test_short_stress() -> None:
    r = subprocess.run([sys.executable, "-c", STRESS, "4", "60"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
