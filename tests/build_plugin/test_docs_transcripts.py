"""The `console` transcripts of docs/kcov-build.md are what kcov-build prints
now: each `$` command is run as written, in a directory laid out like the
repository, and its output (stdout and stderr) must match the lines shown.

In the transcripts `…` stands for elided text, a line of its own for elided
lines.  What differs from one machine to the next is normalised: the cache
directory (`~/.cache/kcov-build`, here $KCOV_BUILD_CACHE), the hash of the
settings in the wrappers' directory, and clang's patch release.  The
`kcov-build kernel` transcript builds a kernel; tests/vm runs that build.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.prereq import REPO, need_tools

DOC = REPO / "docs" / "kcov-build.md"
SHOWN_CACHE = "/root/.cache/kcov-build"
# The transcripts run here, by their first command, and the one that is not.
RUN = [
    "kcov-build config kernel_conf/linux/kcov.config --compiler gcc-12",
    "kcov-build --dry-run --exclude-function 'kv_hash' -- make -C examples/kvdev",
    "kcov-build --compdb compile_commands.json -- make -C examples/kvdev",
]
NOT_RUN = ["kcov-build kernel --src /usr/src/linux-source-6.1.tar.xz --config kernel_conf/linux/vm.config \\"]


def transcripts() -> dict[str, str]:
    """The console blocks, by their first command."""
    blocks = re.findall(r"^```console\n(.*?)^```", DOC.read_text(), re.S | re.M)
    return {b.splitlines()[0].removeprefix("$ "): b for b in blocks}


def steps(block: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) for each `$` line."""
    out: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:].split("  #", 1)[0].strip(), []))
        else:
            out[-1][1].append(line)
    return out


def normalise(text: str, cache: Path) -> str:
    text = text.replace(str(cache), "CACHE").replace(SHOWN_CACHE, "CACHE")
    text = re.sub(r"wrap-[0-9a-f]*…", "wrap-…", text)
    return re.sub(r"\(clang (\d+)\.\d+\.\d+\)", r"(clang \1.x.y)", text)


def pattern(shown: list[str]) -> re.Pattern[str]:
    parts = [r"(?:[^\n]*\n)*?" if line == "…" else
             r"[^\n]*?".join(map(re.escape, line.split("…"))) + r"\n" for line in shown]
    return re.compile("".join(parts))


@pytest.mark.parametrize("first", RUN)
def test_transcript(first: str, tmp_path: Path) -> None:
    need_tools("clang-19", "gcc-12", "make")
    block = transcripts()[first]
    work, cache = tmp_path / "work", tmp_path / "cache"
    shutil.copytree(REPO / "kernel_conf", work / "kernel_conf")
    shutil.copytree(REPO / "examples" / "kvdev", work / "examples" / "kvdev")
    shutil.copy(REPO / "kernel_conf" / "linux" / "kcov.config", work / ".config")  # for `config .config --write`
    env = {**os.environ, "KCOV_BUILD_CACHE": str(cache)}
    env.pop("XDG_CACHE_HOME", None)
    for cmd, shown in steps(block):
        p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
        assert p.returncode == 0, f"$ {cmd}\n{p.stdout}"
        if shown:
            out = normalise(p.stdout, cache)
            assert pattern([normalise(s, cache) for s in shown]).fullmatch(out), \
                f"$ {cmd}\nshown:\n" + "\n".join(shown) + f"\nprinted:\n{out}"
    if "--write merged.config" in block:
        assert (work / "merged.config").is_file()


def test_every_transcript_is_run_or_named() -> None:
    """A new transcript in docs/kcov-build.md is run here or named as not run."""
    assert sorted(transcripts()) == sorted(RUN + NOT_RUN)
