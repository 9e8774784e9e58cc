"""Regular tests for what the model-based test and the fuzzers found.

Each test is the shrunk input a run reported, kept so that the fix stays.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prereq import own


def test_kcov_run_empty_program_name() -> None:
    """test_fuzz_kcov_run, args=['']: os.execvpe raised ValueError and
    kcov-run died with a traceback; now it is a usage error."""
    exe = Path(sys.executable).parent / "kcov-run"
    own(exe.is_file(), "kcov-run is not installed")
    r = subprocess.run([str(exe), ""], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 64, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("kcov-run: ") and r.stderr.count("\n") == 1


# --- Reader fuzzing (test_fuzz_readers.py) ----------------------------------------


def _report(argv: list[str], cwd: Path) -> tuple[int, str]:
    import contextlib
    import io

    from kcov.report.cli import main

    err = io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, err.getvalue()


@pytest.mark.parametrize("dump, line", [
    # test_fuzz_pcs, ops=[('long', ('b', 235), 4096, b'A')]: a PC of 4096 digits
    ("kcov-pcs v1\ntest t\n0x10\n0x" + "a" * 17 + "\n", 4),
    # test_fuzz_pcs, ops=[('long', ('b', 107), 4096, b'A')]: a module end of 4096 digits
    ("kcov-pcs v1\nmodule 0x1000 0x1" + "0" * 16 + " 0x0 exe - /bin/true\ntest t\n0x1010\n", 2),
])
def test_pcs_numbers_beyond_64_bits(tmp_path: Path, dump: str, line: int) -> None:
    """read_pcs put them in uint64 arrays (or collect() compared them with
    uint64 PCs): OverflowError and a traceback; now a FormatError naming the
    line, status 65."""
    from kcov.report import FormatError, collect, read_pcs

    p = tmp_path / "d.pcs"
    p.write_text(dump)
    with pytest.raises(FormatError, match=rf"d\.pcs:{line}: .*64 bits"):
        read_pcs(p)
    with pytest.raises(FormatError):
        collect(p)
    status, err = _report(["convert", "d.pcs", "-o", "out.json"], tmp_path)
    assert status == 65 and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out.json").exists()


def test_bare_pcs_beyond_64_bits(tmp_path: Path) -> None:
    """test_fuzz_bare, ops=[('delete', ('b', 1), 1)]: two rawcover PCs
    joined into one of 24 digits: OverflowError; now status 65."""
    from kcov.report import FormatError, ModuleMap, read_pcs

    p = tmp_path / "raw.txt"
    p.write_text("55d1c8b0a35255d1c8b0a380\n55d1c8b0a395\n")
    with pytest.raises(FormatError, match=r"raw\.txt:1: PC .*64 bits"):
        read_pcs(p, [ModuleMap(0x1000, 0x2000, 0, "exe", "", "/bin/true")])
    status, err = _report(["convert", "raw.txt", "--module", "/bin/true@0x0", "-o", "o.json"], tmp_path)
    assert status == 65 and err.count("\n") == 1 and "Traceback" not in err, err


def test_pcs_module_path_too_long(tmp_path: Path) -> None:
    """test_fuzz_pcs, ops=[('long', ('b', 388), 4096, b'A')]: a module path
    longer than the file system takes: Path.exists() raised OSError
    (ENAMETOOLONG) out of collect(); now "cannot read", status 66."""
    from kcov.report import MissingFileError, collect

    p = tmp_path / "d.pcs"
    p.write_text(f"kcov-pcs v1\nmodule 0x1000 0x2000 0x1000 exe - /tmp/{'A' * 5000}\ntest t\n0x1010\n")
    with pytest.raises(MissingFileError, match="cannot read: File name too long") as e:
        collect(p)
    assert e.value.exit_status == 66 and "\n" not in str(e.value)


def _report_subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """kcov-report in a child with 1 GiB of address space: a regression
    shows as a MemoryError or a timeout, not as a machine out of memory."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    exe = Path(sys.executable).parent / "kcov-report"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)


def test_html_line_far_past_the_source(tmp_path: Path) -> None:
    """An lcov DA line 4000000000 of an existing source: the HTML writer
    listed every line up to it (a MemoryError after gigabytes); now the
    source's lines, then the lines past its end that coverage names."""
    src = tmp_path / "a.c"
    src.write_text("int a;\nint b;\n")
    (tmp_path / "big.info").write_text(f"SF:{src}\nDA:1,1\nDA:4000000000,1\nend_of_record\n")
    r = _report_subprocess(["convert", "big.info", "-o", "html:big.html"], tmp_path)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "big.html").read_text()
    assert 'id="L4000000000"' in page or "L4000000000" in page
    assert page.count('class="ln"') == 3  # lines 1, 2 and 4000000000


def test_html_source_that_is_not_a_file(tmp_path: Path) -> None:
    """An lcov SF:/dev/zero: the HTML writer read it to the end (never);
    now a source that is not a regular file is "not found"."""
    (tmp_path / "zero.info").write_text("SF:/dev/zero\nDA:1,1\nend_of_record\n")
    fifo = tmp_path / "fifo.c"
    os.mkfifo(fifo)
    (tmp_path / "fifo.info").write_text(f"SF:{fifo}\nDA:1,1\nend_of_record\n")
    for name in ("zero", "fifo"):
        r = _report_subprocess(["convert", f"{name}.info", "-o", f"html:{name}.html"], tmp_path)
        assert r.returncode == 0, r.stderr
        assert "Source file not found" in (tmp_path / f"{name}.html").read_text()


@pytest.fixture(scope="module")
def indexed_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real .profdata (clang-19 with compiler-rt's runtime, llvm-profdata-19)."""
    for tool in ("clang-19", "llvm-profdata-19"):
        if shutil.which(tool) is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{tool} is required in CI")
            pytest.skip(f"{tool} is not installed")
    d = tmp_path_factory.mktemp("profdata")
    (d / "p.c").write_text("int main(int c, char **v) { return c > 2 ? 1 : 0; }\n")
    subprocess.run(["clang-19", "-fprofile-instr-generate", "p.c", "-o", "p"], cwd=d, check=True)
    subprocess.run([str(d / "p")], cwd=d, env={**os.environ, "LLVM_PROFILE_FILE": str(d / "p.profraw")})
    subprocess.run(["llvm-profdata-19", "merge", "-o", "p.profdata", "p.profraw"], cwd=d, check=True)
    return d / "p.profdata"


def test_profdata_truncated_header(indexed_profile: Path, tmp_path: Path) -> None:
    """test_truncation_at_every_boundary_profdata: a .profdata cut inside its
    header made llvm-profdata-19 crash (SIGSEGV, then seconds symbolising
    its stack): "llvm-profdata-19 failed: PLEASE submit a bug report"; now
    the header is vetted first."""
    import kcov.profile as kp

    data = indexed_profile.read_bytes()
    for cut in (24, 32, 40, 56):
        bad = tmp_path / f"cut{cut}.profdata"
        bad.write_bytes(data[:cut])
        with pytest.raises(kp.ProfileFormatError, match="truncated or damaged indexed profile"):
            kp.show(bad)
        with pytest.raises(kp.ProfileFormatError):
            kp.merge([bad], tmp_path / "out.profdata")
    assert not list(tmp_path.glob("*out.profdata*"))


def test_profdata_tool_crash_is_named(indexed_profile: Path, tmp_path: Path) -> None:
    """test_fuzz_profdata: a summary of 15 fields where LLVM 19 writes 6
    passes the header check but makes llvm-profdata-19 crash (SIGSEGV);
    the error quoted the crash banner or a stack frame, after seconds of
    symbolising the stack.  Now it says that the tool crashed, in one line."""
    import kcov.profile as kp

    data = bytearray(indexed_profile.read_bytes())
    assert int.from_bytes(data[8:16], "little") & 0xFFFFFFFF == 12  # LLVM 19's header: 9 words
    data[72:80] = (15).to_bytes(8, "little")
    bad = tmp_path / "summary.profdata"
    bad.write_bytes(data)
    with pytest.raises(kp.ToolError) as e:
        kp.show(bad)
    msg = str(e.value)
    assert "\n" not in msg and "crashed (SIGSEGV)" in msg, msg


def test_sancov_pc_outside_the_code_of_an_image() -> None:
    """test_fuzz_sancov_writer, Draw 1: [the library's load address]: a PC
    in a loaded image but not in its code gave that image a .sancov with no
    PC at all; now images whose code holds none of the PCs get no file."""
    import ctypes

    import kcov.profile as kp
    from kcov.profile.runtime import image_of

    lib = kp.runtime.library()
    addr = ctypes.cast(lib.kcovprof_reset_module, ctypes.c_void_p).value
    found = image_of(addr)
    assert found is not None
    _, bias, lo, hi = found
    outside = bias if not lo <= bias < hi else hi
    if image_of(outside) is None:
        pytest.skip("no byte of the image outside its code is mapped")
    assert kp.sancov([outside]) == {}
    assert list(kp.sancov([addr + 1])) == [found[0]]


def _coverage_json(path: Path, file: str, function: str = "f", test: str = "t") -> None:
    import json

    doc = {"format": "kcov-coverage", "version": 1, "tests": [test], "functions": [],
           "modules": [{"key": "name:m", "name": "m", "path": "/m", "build_id": "", "kind": "exe",
                        "universe": True,
                        "points": [{"offset": 16, "frames": [[function, file, 3, 0]], "tests": [test]}]}]}
    path.write_text(json.dumps(doc))


def test_lcov_of_points_without_a_source_file(tmp_path: Path) -> None:
    """test_fuzz_json, ops=[('path', 1, 11)]: a frame without a file (the
    symboliser's ??) became "SF:" in lcov, which kcov-report could not read
    back ("empty SF path"); now such points are left out of lcov, and an
    lcov without any record is still one (a TN line)."""
    from kcov.report import formats

    _coverage_json(tmp_path / "in.json", "")
    status, err = _report(["merge", "in.json", "-o", "out.info"], tmp_path)
    assert status == 0, err
    assert (tmp_path / "out.info").read_text() == "TN:\n"
    assert formats.read(tmp_path / "out.info").points == {}
    status, err = _report(["merge", "out.info", "in.json", "-o", "again.info"], tmp_path)
    assert status == 0, err


def test_cobertura_control_character_in_a_path(tmp_path: Path) -> None:
    """test_fuzz_lcov, ops=[('flip', ('b', 563), 1)]: a bit flip turned a
    path character into a control character, which Cobertura's XML cannot
    hold: the output was not well-formed XML; now it is replaced."""
    import xml.etree.ElementTree as ET

    (tmp_path / "in.info").write_text("SF:/src/a\x01b.c\nFN:3,f\nFNDA:1,f\nDA:3,1\nend_of_record\n")
    status, err = _report(["convert", "in.info", "-o", "out.xml"], tmp_path)
    assert status == 0, err
    names = [c.get("filename") for c in ET.parse(tmp_path / "out.xml").iter("class")]
    assert names == ["a\ufffdb.c"], names


def test_json_lone_surrogate(tmp_path: Path) -> None:
    """JSON can spell a lone surrogate (\\ud800), which no writer can
    encode: UnicodeEncodeError and a traceback when writing; now the reader
    refuses it, status 65."""
    _coverage_json(tmp_path / "in.json", "/src/a.c", test="\ud800")
    raw = (tmp_path / "in.json").read_text()
    assert "\\ud800" in raw
    status, err = _report(["convert", "in.json", "-o", "out.info"], tmp_path)
    assert status == 65 and err.count("\n") == 1 and "Unicode" in err, err
    assert not (tmp_path / "out.info").exists()


def test_lcov_line_break_in_a_name(tmp_path: Path) -> None:
    """A file name with a newline (from JSON) was written into lcov as two
    lines, a tracefile nobody could read; now lcov refuses it, status 65."""
    _coverage_json(tmp_path / "in.json", "/src/a\nb.c")
    status, err = _report(["convert", "in.json", "-o", "out.info"], tmp_path)
    assert status == 65 and err.count("\n") == 1 and "line break" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]
