"""The Python API examples of docs/python-api.md, and the README's tour of
hosted tracing, run and do what they say."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pybind_helpers import REPO

from tests.support.prereq import need_tool

DOC = REPO / "docs" / "python-api.md"
README = REPO / "README.md"


def blocks(lang: str, doc: Path = DOC) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", doc.read_text(), re.S | re.M)


def test_api_doc_examples(tmp_path: Path) -> None:
    if not DOC.exists():
        pytest.skip("docs/python-api.md is not in this tree")
    (c_src,) = blocks("c")
    (tmp_path / "demo.c").write_text(c_src)
    # The build command as shown, with the venv's python first on PATH.
    (build,) = [b for b in blocks("sh") if "-o libdemo.so" in b]
    need_tool("clang-19")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(["bash", "-ec", build], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tmp_path / "libdemo.so").is_file(), f"{build}\n{r.stderr}"
    py = blocks("python")
    assert len(py) >= 4
    # The README's tour uses the same libdemo.so.
    py += blocks("python", README)
    for i, code in enumerate(py):
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"example {i}:\n{code}\n{r.stderr}"
        # Output promised in the example's trailing comments.
        for line in re.findall(r"^# (\w+ Kcov\w+Error .*)$", code, re.M):
            assert line in r.stdout.splitlines()
