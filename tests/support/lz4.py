"""Upstream LZ4 1.9.4, the real third-party code several suites build and
benchmarks/bench_pgo.py measures: Debian's pinned orig tarball, fetched once
into .cache/src and checked by its sha256 (tests/build_plugin,
tests/profile)."""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LZ4_URL = "http://deb.debian.org/debian/pool/main/l/lz4/lz4_1.9.4.orig.tar.gz"
LZ4_SHA256 = "0b0e3aa07c8c063ddf40b082bdf7e37a1562bda40a0ff5272957f3e987e0e54b"
CACHE = REPO / ".cache" / "src"


def fetch_lz4() -> Path:
    """The tarball's path, downloaded first if need be.  OSError when it
    cannot be downloaded, ValueError when the file is not the tarball."""
    path = CACHE / "lz4_1.9.4.orig.tar.gz"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with urllib.request.urlopen(LZ4_URL, timeout=120) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
        os.replace(tmp, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != LZ4_SHA256:
        raise ValueError(f"{path} is not Debian's lz4 1.9.4 orig tarball (sha256 {digest})")
    return path


def lz4_tarball() -> Path:
    """fetch_lz4() for a test: a missing network is a missing prerequisite
    (tests.support.prereq.missing), a wrong file a failure."""
    from .prereq import missing

    try:
        return fetch_lz4()
    except OSError as e:
        missing(f"cannot download {LZ4_URL}: {e}")


# python-lz4 4.3.3's sdist, for the LZ4 sources it bundles in lz4libs/
# (tests/build_plugin: test_kcov_build_lz4.py, test_analysis.py).
SDIST = "lz4-4.3.3.tar.gz"
SDIST_SHA256 = "01fe674ef2889dbb9899d8a67361e0c4a2c833af5aeb37dd505727cf5d2a131e"
SDIST_CACHE = REPO / ".cache" / "sdist"


def lz4libs(out: Path) -> Path:
    """The sdist's lz4libs/ (lz4.c, lz4hc.c, lz4frame.c, xxhash.c and their
    headers) extracted below `out`; the sdist is downloaded once with pip."""
    import subprocess
    import sys
    import tarfile

    from .prereq import missing

    path = SDIST_CACHE / SDIST
    if not path.is_file():
        SDIST_CACHE.mkdir(parents=True, exist_ok=True)
        try:
            p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                                "lz4==4.3.3", "-d", str(SDIST_CACHE)], capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            missing(f"cannot download lz4==4.3.3: {e}")
        if p.returncode != 0 or not path.is_file():
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            missing(f"cannot download lz4==4.3.3 from PyPI: {last}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SDIST_SHA256, f"{path} is not the pinned lz4 4.3.3 sdist (sha256 {digest})"
    with tarfile.open(path) as tf:
        members = [m for m in tf.getmembers() if "/lz4libs/" in m.name and m.isfile()]
        if hasattr(tarfile, "data_filter"):
            tf.extractall(out, members=members, filter="data")
        else:  # Python < 3.11.4; members were restricted to lz4libs/ files above
            tf.extractall(out, members=members)  # noqa: S202
    (src,) = list(out.glob("*/lz4libs"))
    return src
