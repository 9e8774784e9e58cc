"""`make demo-kernel` (examples/kernel/demo_kernel.py, issue 4 point 6): run
from the repository root as docs/kernel-module.md says, it builds kcov.ko and minix.ko,
boots the stock kernel and prints a per-operation coverage summary of
fs/minix.  Checked here by its output."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
from kmod_host import REPO, VENV_BIN, kmodules, need

pytestmark = pytest.mark.slow

OPS = ["create", "write", "fsync", "read", "mkdir", "readdir", "rename", "unlink", "stat"]
ROW = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$")
TOTAL = re.compile(r"^all operations: (\d+) distinct PCs \((\d+) in minix\.ko's text, "
                   r"(\d+) functions\) of (\d+) trace-pc call sites$")


def test_demo_kernel() -> None:
    missing = kmodules.missing_prerequisites()
    need(not missing, f"missing {'; '.join(missing)}")
    t0 = time.monotonic()
    p = subprocess.run([str(VENV_BIN / "python"), "examples/kernel/demo_kernel.py"], cwd=REPO,
                       capture_output=True, text=True, timeout=600, check=False)
    secs = time.monotonic() - t0
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr[-4000:]}"
    lines = p.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("operation"))
    rows = [ROW.match(line) for line in lines[header + 1:header + 1 + len(OPS)]]
    assert all(rows), lines[header:]
    table = {m[1]: (int(m[2]), int(m[3]), int(m[4]), m[5]) for m in rows if m}
    assert list(table) == OPS
    for name, (records, pcs, new, top) in table.items():
        assert records >= pcs > 0 and 0 <= new <= pcs, name
        assert "minix" in top, (name, top)
    assert table["create"][2] == table["create"][1]  # all new at first
    assert "minix_mkdir" in table["mkdir"][3] or "minix_add_link" in table["mkdir"][3]
    assert "minix_readdir" in table["readdir"][3]
    total = next(TOTAL.match(line) for line in lines if line.startswith("all operations"))
    assert total is not None
    distinct, inside, funcs, sites = (int(x) for x in total.groups())
    assert distinct == sum(new for _r, _p, new, _t in table.values())
    assert distinct - 3 <= inside <= distinct and inside <= sites and funcs >= 20
    # The issue asks for about 2 minutes; a loaded CI machine gets slack.
    print(f"demo-kernel took {secs:.0f} s")  # reported, not asserted: speed belongs in benchmarks
