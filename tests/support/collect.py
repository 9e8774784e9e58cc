"""How many tests a guest run must report: pytest collects the same
selection on the host, so a guest suite that loses a test (an import error
swallowed, a file not picked up) cannot pass with fewer."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .prereq import REPO


def collected(*args: str | Path) -> int:
    """The number of tests `pytest --collect-only ARGS` finds, as the guest
    would (KCOV_GUEST=1, so nothing is marked to skip)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["KCOV_GUEST"] = "1"
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    m = re.search(r"^(\d+)(?:/\d+)? tests? collected", p.stdout, flags=re.M)
    assert p.returncode == 0 and m, f"collecting {args} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return int(m.group(1))
