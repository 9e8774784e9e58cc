"""A guest that never ends is killed at the harness's timeout, and the
harness says first where each vCPU was (tests/support/vm.py vcpu_state):
the instruction pointer and the code addresses on its stack, named from
the kallsyms the guest left."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.support.kernel import stock
from tests.support.vm import VCPU_MARK, Vm, find_vng, load_symbols
from tests.support.prereq import need


def test_a_hung_guest_is_killed_and_says_where_its_cpus_were(tmp_path: Path) -> None:
    need(find_vng() is not None, "vng (virtme-ng) is not installed in .venv")
    need(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 is not installed")
    syms = tmp_path / "kallsyms"
    vm = Vm(kernel=stock().image, memory="512M", cpus=2, timeout=90, symbols=syms,
            extra_args=(f"--rwdir={tmp_path}",))
    # Text symbols only; then never end (the monitor sees the idle loop).
    res = vm.run(f"grep ' [tT] ' /proc/kallsyms > {syms}; sync; echo kallsyms-saved; sleep 3600")
    assert res.timed_out and res.returncode is None, res.describe()
    assert "kallsyms-saved" in res.stdout, res.describe()
    assert load_symbols(syms)[0], "the guest left no symbols"
    state = res.stderr.split(VCPU_MARK, 1)[1]
    cpus = re.findall(r"^CPU (\d+): RIP 0x[0-9a-f]+ (\S+), interrupts (on|off)$", state, re.M)
    assert [c for c, _, _ in cpus] == ["0", "1"], state
    # Both vCPUs idle: each RIP is named, in the kernel's idle code.
    for _, where, _ in cpus:
        assert where != "?", state
    assert re.search(r"idle|halt|mwait", state), state
    # And the code addresses on their stacks: the idle loop's callers.
    assert re.search(r"^    stack: \S*(do_idle|cpu_startup_entry)\S*", state, re.M), state
    assert VCPU_MARK in res.describe()
