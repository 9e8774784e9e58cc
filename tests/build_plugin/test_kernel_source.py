"""`kcov-build kernel --src TARBALL` extracts the tarball once into its
cache, and builds that start together share the one extraction."""
from __future__ import annotations

import tarfile
import threading
import time
from pathlib import Path

import pytest

from kcov_build import kernel


def _tarball(tmp_path: Path) -> Path:
    top = tmp_path / "linux-x"
    (top / "scripts" / "kconfig").mkdir(parents=True)
    (top / "scripts" / "kconfig" / "merge_config.sh").write_text("#!/bin/sh\n")
    (top / "Makefile").write_text("# a kernel tree\n")
    path = tmp_path / "linux-x.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        tf.add(top, arcname="linux-x")
    return path


def test_concurrent_builds_extract_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = _tarball(tmp_path)
    monkeypatch.setenv("KCOV_BUILD_CACHE", str(tmp_path / "cache"))
    untar = kernel._untar
    calls: list[Path] = []

    def slow_untar(tb: Path, into: Path) -> None:
        calls.append(into)
        time.sleep(0.5)  # both builds are in _extract by now
        untar(tb, into)

    monkeypatch.setattr(kernel, "_untar", slow_untar)
    trees: list[Path] = []
    threads = [threading.Thread(target=lambda: trees.append(kernel.resolve_source(str(tarball))))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1, calls
    assert len(trees) == 2 and trees[0] == trees[1]
    assert (trees[0] / "Makefile").read_text() == "# a kernel tree\n"
    # A later build finds it extracted.
    assert kernel.resolve_source(str(tarball)) == trees[0] and len(calls) == 1


def test_a_broken_tarball_is_one_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "linux-y.tar.gz"
    bad.write_bytes(b"not a tarball at all" * 1000)
    cache = tmp_path / "cache"
    monkeypatch.setenv("KCOV_BUILD_CACHE", str(cache))
    with pytest.raises(kernel.KernelError, match=r"cannot extract .*linux-y\.tar\.gz: ") as exc:
        kernel.resolve_source(str(bad))
    assert exc.value.exit_status == 65 and "\n" not in str(exc.value)
    assert [p.name for p in (cache / "src").iterdir() if not p.name.endswith(".lock")] == []
