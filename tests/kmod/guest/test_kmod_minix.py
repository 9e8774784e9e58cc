"""Real kernel code no one here wrote: fs/minix from linux-source-6.1, built
out of tree with kcov-build (tests/kmod builds it; MINIX_KO names it) and
loaded in place of the stock minix.ko, driven by the Python harness
examples/kernel/minixcov.py: mkfs, loop mount, and one kcov trace per file
operation, on /sys/kernel/debug/kcov (Linux ABI) and /dev/kcov (FreeBSD).
"""
from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from elftools.elf.elffile import ELFFile

import kmod_text as T
from examples.kernel import minixcov as M
from kcov import Mode

pytestmark = pytest.mark.vm

# The operation's own entry point into minix (VFS -> minix).
ENTRY = {
    "create": "minix_create",
    "write": "minix_write_begin",
    "fsync": "minix_write_inode",
    "read": "minix_read_folio",
    "mkdir": "minix_mkdir",
    "readdir": "minix_readdir",
    "rename": "minix_rename",
    "unlink": "minix_unlink",
    "stat": "minix_getattr",
}

Ops = dict[str, M.OpCoverage]


@pytest.fixture(scope="module")
def ko() -> Path:
    if "MINIX_KO" not in os.environ:
        pytest.fail("MINIX_KO is not set (run by tests/kmod)")
    return Path(os.environ["MINIX_KO"])


@pytest.fixture(scope="module")
def minix(ko: Path) -> Iterator[M.ModuleText]:
    """Our minix.ko, loaded for this file and unloaded after it."""
    M.load_modules(None, ko)
    yield M.ModuleText("minix", ko)
    subprocess.run(["rmmod", "minix"], check=True, timeout=60)


@pytest.fixture(scope="module")
def linux_ops(minix: M.ModuleText) -> Ops:
    return {o.name: o for o in M.run_workload(minix, "linux")}


@pytest.fixture(scope="module")
def bsd_ops(minix: M.ModuleText) -> Ops:
    return {o.name: o for o in M.run_workload(minix, "freebsd")}


def test_our_minix_replaces_the_stock_module(minix: M.ModuleText, ko: Path) -> None:
    sysfs = Path("/sys/module/minix")
    with open(ko, "rb") as f:
        build_id = ELFFile(f).get_section_by_name(".note.gnu.build-id").data()
    assert (sysfs / "notes" / ".note.gnu.build-id").read_bytes() == build_id
    assert "O" in (sysfs / "taint").read_text()  # out of tree
    assert (Path("/sys/module/kcov/holders") / "minix").exists()  # callbacks bound to kcov.ko
    assert ".text" in minix.sections and len(minix.functions) > 40


@pytest.mark.parametrize("device", ["linux", "freebsd"])
def test_every_operation_records(device: str, linux_ops: Ops, bsd_ops: Ops) -> None:
    ops = linux_ops if device == "linux" else bsd_ops
    assert list(ops) == list(M.OPS)
    for o in ops.values():
        assert len(o.pcs) > 0 and not o.overflowed, (device, o.name, o.records)
        assert o.records >= len(o.pcs)


def test_operations_give_different_pc_sets(linux_ops: Ops) -> None:
    for a, b in itertools.combinations(linux_ops.values(), 2):
        assert set(a.pcs.tolist()) != set(b.pcs.tolist()), (a.name, b.name)


@pytest.mark.parametrize("device", ["linux", "freebsd"])
def test_pcs_lie_in_minix_text(device: str, minix: M.ModuleText, ko: Path,
                               linux_ops: Ops, bsd_ops: Ops) -> None:
    ops = linux_ops if device == "linux" else bsd_ops
    for o in ops.values():
        T.check_pcs(minix, ko, o.pcs.tolist(), f"{device} {o.name}")
        inside = [pc for pc in o.pcs.tolist() if minix.section_of(pc) is not None]
        assert len(inside) >= len(o.pcs) - 3 and inside


def test_each_operation_reaches_its_entry_point(minix: M.ModuleText, linux_ops: Ops) -> None:
    for name, fn in ENTRY.items():
        reached = {minix.function_of(pc) for pc in linux_ops[name].pcs.tolist()}
        assert fn in reached, f"{name}: {fn} not in {sorted(x for x in reached if x)}"
    # mkdir, symbolised by hand: a PC between minix_mkdir's first and last byte.
    mk = next(f for f in minix.functions if f.name == "minix_mkdir")
    assert any(mk.start < pc <= mk.end for pc in linux_ops["mkdir"].pcs.tolist())
    assert not any(mk.start < pc <= mk.end for pc in linux_ops["stat"].pcs.tolist())


def test_both_devices_see_the_same_operations(linux_ops: Ops, bsd_ops: Ops) -> None:
    """A fresh file system each time, so the same code runs: the function
    sets agree and the PC sets nearly do."""
    for name in M.OPS:
        a, b = set(linux_ops[name].pcs.tolist()), set(bsd_ops[name].pcs.tolist())
        assert len(a & b) >= 0.8 * len(a | b), (name, len(a), len(b), len(a & b))
        assert ENTRY[name] in bsd_ops[name].functions


def test_comparisons_per_operation(minix: M.ModuleText, ko: Path) -> None:
    ops = M.run_workload(minix, "linux", Mode.CMP)
    for o in ops:
        assert len(o.pcs) > 0 and not o.overflowed, o.name
        T.check_pcs(minix, ko, o.pcs.tolist(), f"cmp {o.name}")
    mkdir = next(o for o in ops if o.name == "mkdir")
    assert "minix_mkdir" in mkdir.functions or "minix_add_link" in mkdir.functions
