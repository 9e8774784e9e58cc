"""The source-based coverage example of docs/profiles-pgo.md runs and prints
its report."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from profhelp import KVDEV, ROOT, env_with, kcov_build, need_clang

DOC = ROOT / "docs" / "profiles-pgo.md"


def test_readme_sbcc_example(tmp_path: Path) -> None:
    if not DOC.exists():
        pytest.skip("docs/profiles-pgo.md is not in this tree")
    need_clang("clang-19")
    text = DOC.read_text()
    section = text[text.index("## Source-based coverage (SBCC)"):]
    section = section[:section.index("\n## ", 10)]
    (code,) = re.findall(r"^```py\n(.*?)^```", section, re.S | re.M)
    src = tmp_path / "kvdev"
    shutil.copytree(KVDEV, src)
    kcov_build("--sbcc", "--compiler", "clang-19", "--", "make", "-C", src)
    r = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=120,
                       env=env_with())
    assert r.returncode == 0, r.stderr
    total = [ln for ln in r.stdout.splitlines() if ln.startswith("TOTAL")]
    assert total, r.stdout
    # The docs show the same figures as this run (the column widths follow the path).
    shown = [ln.split() for ln in section.splitlines() if ln.startswith("TOTAL")]
    assert total[0].split() in shown, (total[0], shown)
    assert (src / "html" / "index.html").is_file() and "FNDA:1,kvdev.c:kv_put" in (src / "kv.lcov").read_text()
    assert not (src / "default.profraw").exists()
