"""kcov.ko with real kernel code and real clients (issue 4, points 3-4):
linux-source-6.1's fs/minix built out of tree with kcov-build, Linux's
kcov.rst examples compiled unchanged, syzkaller's fork server and the
stress run.  The guest halves (guest/test_kmod_minix.py, _clients.py,
_stress.py) run in the same boot as the rest of the guest suite; here we
check the builds and that those guest tests ran and passed."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from kmod_host import GuestRun, Module
from kmod_progs import Programs, code_blocks, constants_check, kcov_rst_examples

from kcov_build.objcheck import callback_calls

from tests.support.kernel import stock

pytestmark = pytest.mark.slow

MINIX_SOURCES = {"bitmap.c", "itree_v1.c", "itree_v2.c", "namei.c", "inode.c", "file.c", "dir.c"}


def modinfo(ko: Path, field: str) -> str:
    return subprocess.run(["modinfo", "-F", field, str(ko)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_minix_is_linux_source_built_instrumented(minix_module: Module, linux_src: Path) -> None:
    src = linux_src / "fs" / "minix"
    for name in MINIX_SOURCES:
        assert (minix_module.dir / name).read_bytes() == (src / name).read_bytes()
    assert modinfo(minix_module.ko, "name") == "minix"
    assert modinfo(minix_module.ko, "depends") == "kcov"
    assert modinfo(minix_module.ko, "vermagic").startswith(f"{stock().release} ")
    calls = callback_calls(minix_module.ko)
    # Every function of the driver calls the PC callback, and the
    # operations' entry points compare too.
    uninstrumented = [f for f, c in calls.items() if not c.get("__sanitizer_cov_trace_pc")]
    assert len(calls) > 40 and not uninstrumented, uninstrumented
    for fn in ("minix_mkdir", "minix_readdir", "minix_rename", "minix_unlink", "minix_getattr"):
        assert calls[fn]["__sanitizer_cov_trace_pc"] > 0, fn
        assert any(k.startswith(("__sanitizer_cov_trace_cmp", "__sanitizer_cov_trace_const_cmp"))
                   for k in calls[fn]), (fn, calls[fn])


def test_kcovsys_is_instrumented(kcovsys_module: Module) -> None:
    calls = callback_calls(kcovsys_module.ko)
    assert calls["kcovsys_probe"].get("__sanitizer_cov_trace_pc", 0) > 0
    assert any(k.startswith("__sanitizer_cov_trace_const_cmp") for k in calls["kcovsys_probe"])
    assert modinfo(kcovsys_module.ko, "depends") == "kcov"


def test_kcov_rst_examples_are_compiled_unchanged(kmod_programs: Programs, linux_src: Path) -> None:
    rst = (linux_src / "Documentation" / "dev-tools" / "kcov.rst").read_text()
    blocks = code_blocks(rst)
    pc = (kmod_programs.path("kcov_rst_pc.c")).read_text()
    cmp = (kmod_programs.path("kcov_rst_cmp.c")).read_text()
    assert pc == blocks[0]
    assert cmp.endswith(blocks[1]) and cmp.startswith(pc[:pc.index("int main")])
    # Every line of the programs is a line of the document (minus its indent).
    doc_lines = {line.strip() for line in rst.splitlines()}
    assert all(line.strip() in doc_lines for line in (pc + cmp).splitlines())
    for name in ("kcov_rst_pc", "kcov_rst_cmp"):
        assert kmod_programs.path(name).is_file()


def test_kcov_rst_constants_match_linux_uapi(tmp_path: Path, linux_src: Path) -> None:
    rst = (linux_src / "Documentation" / "dev-tools" / "kcov.rst").read_text()
    src = kcov_rst_examples(rst)["cmp"]
    check = constants_check(src)
    assert check.count("_Static_assert") >= 8
    good = tmp_path / "good.c"
    good.write_text(check)
    assert subprocess.run(["gcc", "-fsyntax-only", str(good)], capture_output=True).returncode == 0
    # The check can fail: a wrong KCOV_ENABLE does not compile.
    bad = tmp_path / "bad.c"
    bad.write_text(constants_check(re.sub(r"_IO\('c', 100\)", "_IO('c', 99)", src)))
    p = subprocess.run(["gcc", "-fsyntax-only", str(bad)], capture_output=True, text=True)
    assert p.returncode != 0 and "KCOV_ENABLE" in p.stderr


# The guest tests of points 3 and 4, by file: how many must have passed.
GUEST_FILES = {
    "test_kmod_minix": 9,    # fs/minix: per-operation coverage, both devices
    "test_kmod_clients": 5,  # kcov.rst examples, fork server in both ABIs
    "test_kmod_stress": 1,   # 8 processes x 2,000 cycles, no leak, clean log
}


@pytest.mark.parametrize("guest_file", sorted(GUEST_FILES))
def test_guest_file_passed(guest_run: GuestRun, guest_file: str) -> None:
    main = guest_run.main
    assert main is not None, f"the guest suite left no report\n{guest_run.result.describe()}"
    mine = [t for t in main.failed if f".{guest_file}::" in t]
    assert not mine, f"{mine}\n{guest_run.result.describe()}"
    passed = [t for t in main.passed if f".{guest_file}::" in t]
    assert len(passed) >= GUEST_FILES[guest_file], (guest_file, passed, main.summary())
