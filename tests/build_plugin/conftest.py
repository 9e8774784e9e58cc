"""Fixtures for the kcov-build tests; the helpers live in buildhelp.py."""
from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest

from buildhelp import BIN, COMPILERS, DATA, RECORD_COMPILERS, Client, kcov_build, run

# The venv's cmake and ninja (installed by scripts/setup.sh) are the ones the
# build tests use, also when pytest runs without the venv activated.
if str(BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(params=COMPILERS)
def cc(request: pytest.FixtureRequest) -> str:
    if shutil.which(request.param) is None:
        pytest.skip(f"{request.param} is not installed")
    return str(request.param)


@pytest.fixture(params=RECORD_COMPILERS)
def record_cc(request: pytest.FixtureRequest) -> str:
    if shutil.which(request.param) is None:
        pytest.skip(f"{request.param} is not installed")
    return str(request.param)


_clients: dict[str, Client] = {}


@pytest.fixture
def client(record_cc: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """Build the record fixture once per compiler and session.

    The client is compiled with the bare compiler, the targets with
    kcov-build -c, and the link is a link-only kcov-build call: the three
    kinds of call a real build makes.
    """
    c = _clients.get(record_cc)
    if c is None:
        out = tmp_path_factory.mktemp(f"client-{record_cc}")
        run([record_cc, "-O2", "-c", DATA / "client.c", "-o", out / "client.o"])
        kcov_build(record_cc, "-O2", "-c", DATA / "pc_target.c", "-o", out / "pc_target.o")
        kcov_build(record_cc, "-O2", "-c", DATA / "cmp_target.c", "-o", out / "cmp_target.o")
        exe = out / "client"
        kcov_build(record_cc, out / "client.o", out / "pc_target.o", out / "cmp_target.o", "-o", exe, "-ldl")
        c = _clients[record_cc] = Client(record_cc, exe)
    yield c
