"""Upstream LZ4 1.9.4, the real third-party code several suites build:
Debian's pinned orig tarball, fetched once into .cache/src and checked by
its sha256 (tests/build_plugin, tests/profile)."""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

from .prereq import REPO, missing

LZ4_URL = "http://deb.debian.org/debian/pool/main/l/lz4/lz4_1.9.4.orig.tar.gz"
LZ4_SHA256 = "0b0e3aa07c8c063ddf40b082bdf7e37a1562bda40a0ff5272957f3e987e0e54b"
CACHE = REPO / ".cache" / "src"


def lz4_tarball() -> Path:
    """The tarball's path, downloaded first if need be (a missing network is
    a missing prerequisite: tests.support.prereq.missing)."""
    path = CACHE / "lz4_1.9.4.orig.tar.gz"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        try:
            with urllib.request.urlopen(LZ4_URL, timeout=120) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            missing(f"cannot download {LZ4_URL}: {e}")
        os.replace(tmp, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == LZ4_SHA256, f"{path} is not Debian's lz4 1.9.4 orig tarball (sha256 {digest})"
    return path
