"""Fixtures of the source-based coverage tests; helpers live in profhelp.py."""
from __future__ import annotations

import os

from profhelp import BIN

# The venv's console scripts, also when pytest runs without the venv activated.
if str(BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
