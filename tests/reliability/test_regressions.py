"""Regular tests for what the model-based test and the fuzzers found.

Each test is the shrunk input a run reported, kept so that the fix stays.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_kcov_run_empty_program_name() -> None:
    """test_fuzz_kcov_run, args=['']: os.execvpe raised ValueError and
    kcov-run died with a traceback; now it is a usage error."""
    exe = Path(sys.executable).parent / "kcov-run"
    if not exe.is_file():
        pytest.skip("kcov-run is not installed")
    r = subprocess.run([str(exe), ""], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 64, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("kcov-run: ") and r.stderr.count("\n") == 1
