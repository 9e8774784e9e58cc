"""kcov-build -- BUILD...: whole builds through make, cmake/ninja and kbuild.

Real projects with their own build systems: the foundation's example
(examples/kvdev, a Makefile and a CMakeLists.txt that know nothing of kcov)
and upstream LZ4 1.9.4 (Debian's pinned orig tarball: its Makefiles and its
build/cmake project), built with clang-19 and gcc-12, with and without
exclusions.  Every claim is checked in the objects by disassembly
(kcov_build.objcheck): excluded functions have no callback calls, the others
do.  The kbuild case builds an out-of-tree module against Debian's kernel
headers.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.lz4 import lz4_tarball
from tests.support.prereq import need_tools as need

from buildhelp import kcov_build, run

from kcov_build.objcheck import callback_calls

from tests.support.kernel import stock

ROOT = Path(__file__).resolve().parents[2]
KVDEV = ROOT / "examples" / "kvdev"
LZ4_LIB = ("lz4.c", "lz4hc.c", "lz4frame.c", "xxhash.c")


def instrumented(path: Path) -> dict[str, bool]:
    """function -> has at least one callback call."""
    return {f: bool(c) for f, c in callback_calls(path).items()}


def assert_all_instrumented(path: Path, *, at_least: float = 0.9) -> None:
    inst = instrumented(path)
    assert inst, f"{path} has no functions"
    share = sum(inst.values()) / len(inst)
    assert share >= at_least, f"{path}: only {share:.0%} of {len(inst)} functions instrumented"


def assert_none_instrumented(path: Path) -> None:
    inst = instrumented(path)
    assert inst and not any(inst.values()), [f for f, v in inst.items() if v]


# --- The sources ------------------------------------------------------------


@pytest.fixture
def lz4_src(tmp_path: Path) -> Path:
    with tarfile.open(lz4_tarball()) as tf:
        tf.extractall(tmp_path, filter="data")
    return tmp_path / "lz4-1.9.4"


@pytest.fixture
def kvdev_src(tmp_path: Path) -> Path:
    dst = tmp_path / "kvdev"
    shutil.copytree(KVDEV, dst)
    return dst


# --- make -------------------------------------------------------------------


@pytest.mark.parametrize("cc", ["clang-19", "gcc-12"])
def test_make_kvdev_records(cc: str, kvdev_src: Path) -> None:
    """The example's own Makefile, CC overridden: instrumented, linked, records."""
    need(cc)
    kcov_build("--compiler", cc, "--", "make", "-C", kvdev_src)
    lib = kvdev_src / "libkvdev.so"
    assert_all_instrumented(kvdev_src / "kvdev.o")
    needed = run(["readelf", "-d", lib]).stdout
    assert "[libkcovrt.so]" in needed  # the hosted link got the runtime
    import kcov

    dll = ctypes.CDLL(str(lib))
    fn = dll.kvdev_ioctl
    fn.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint32)]
    fn.restype = ctypes.c_int
    val = ctypes.c_uint32(7)
    with kcov.open(provider="hosted", entries=4096) as k:
        with k.trace():
            assert fn(0x40046B01, b"alpha", ctypes.byref(val)) == 0
        put = set(k.pcs().tolist())
        with k.trace():
            assert fn(0x80046B02, b"nope", ctypes.byref(val)) < 0
        miss = set(k.pcs().tolist())
    assert put and miss and put != miss


@pytest.mark.slow
@pytest.mark.parametrize("cc", ["clang-19", "gcc-12"])
def test_make_lz4_parallel_no_exclusions(cc: str, lz4_src: Path, tmp_path: Path) -> None:
    need(cc)
    compdb = tmp_path / "compile_commands.json"
    kcov_build("--compiler", cc, "--compdb", compdb, "--", "make", "-j2", "-C", lz4_src, "lib", "lz4")
    for name in LZ4_LIB:
        assert_all_instrumented(lz4_src / "lib" / name.replace(".c", ".o"))
    # The lz4 program links the runtime and still works.
    lz4 = lz4_src / "lz4"
    assert "[libkcovrt.so]" in run(["readelf", "-d", lz4]).stdout
    data = tmp_path / "data"
    data.write_bytes(b"kcov " * 20000)
    run([lz4, "-q", "-f", data, tmp_path / "data.lz4"])
    run([lz4, "-q", "-d", "-f", tmp_path / "data.lz4", tmp_path / "back"])
    assert (tmp_path / "back").read_bytes() == data.read_bytes()
    # Parallel compiles all reached the compile database, each once.
    entries = json.loads(compdb.read_text())
    files = [os.path.normpath(os.path.join(e["directory"], e["file"])) for e in entries]
    assert len(files) == len(set(files))
    for name in LZ4_LIB:
        assert str(lz4_src / "lib" / name) in files


@pytest.mark.slow
def test_make_lz4_exclusions_clang(lz4_src: Path) -> None:
    """clang: per-function exclusion through the ignorelist, per-file too."""
    need("clang-19")
    p = kcov_build(
        "--compiler", "clang-19", "--exclude-file", "lib/xxhash.c",
        "--exclude-function", "LZ4_compress_fast", "--exclude-function", "LZ4_decompress_safe*",
        "--", "make", "-j2", "lib", cwd=lz4_src,
    )
    assert "Traceback" not in p.stderr
    lib = lz4_src / "lib"
    assert_none_instrumented(lib / "xxhash.o")
    inst = instrumented(lib / "lz4.o")
    assert inst["LZ4_compress_fast"] is False
    assert inst["LZ4_decompress_safe"] is False and inst["LZ4_decompress_safe_partial"] is False
    assert inst["LZ4_compress_default"] is True and inst["LZ4_compress_destSize"] is True
    assert_all_instrumented(lib / "lz4hc.o")
    # The shared library is one compile-and-link call of all four sources:
    # xxhash.c is split off and compiled alone, without coverage.
    so = instrumented(next(lib.glob("liblz4.so.1.*")))
    assert so["LZ4_XXH32"] is False and so["LZ4_compress_fast"] is False
    assert so["LZ4_compress_default"] is True and so["LZ4_compressBound"] is True


@pytest.mark.slow
def test_make_lz4_exclusions_gcc(lz4_src: Path) -> None:
    """gcc has no ignorelist: a function exclusion excludes its whole file, with a note."""
    need("gcc-12")
    p = kcov_build(
        "--compiler", "gcc-12", "--exclude-file", "*/xxhash.c",
        "--exclude-function", "LZ4_compressHC", "--", "make", "-j2", "-C", "lib", "liblz4.a",
        cwd=lz4_src,
    )
    lib = lz4_src / "lib"
    assert_none_instrumented(lib / "xxhash.o")
    assert_none_instrumented(lib / "lz4hc.o")
    assert "lz4hc.c: built without coverage: it defines LZ4_compressHC" in p.stderr
    assert "gcc cannot exclude single functions" in p.stderr
    assert_all_instrumented(lib / "lz4.o")
    assert_all_instrumented(lib / "lz4frame.o")


# --- cmake / ninja ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cc", ["clang-19", "gcc-12"])
def test_cmake_ninja_lz4(cc: str, lz4_src: Path, tmp_path: Path) -> None:
    """Configure through kcov-build; the cache keeps the wrapper for plain `cmake --build`."""
    need(cc, "cmake", "ninja")
    build = tmp_path / "build"
    kcov_build(
        "--compiler", cc, "--exclude-file", "*/lib/xxhash.c", "--",
        "cmake", "-S", lz4_src / "build" / "cmake", "-B", build, "-G", "Ninja",
        "-DCMAKE_POLICY_VERSION_MINIMUM=3.5", "-DBUILD_STATIC_LIBS=ON", "-DCMAKE_BUILD_TYPE=Release",
    )
    # The two targets checked (not the shared library or lz4c).
    run(["cmake", "--build", build, "-j2", "--target", "lz4_static", "lz4cli"])
    objs = {p.name: p for p in (build / "CMakeFiles" / "lz4_static.dir").rglob("*.c.o")}
    assert_none_instrumented(objs["xxhash.c.o"])
    for name in ("lz4.c.o", "lz4hc.c.o", "lz4frame.c.o"):
        assert_all_instrumented(objs[name])
    assert "[libkcovrt.so]" in run(["readelf", "-d", build / "lz4"]).stdout


@pytest.mark.parametrize("cc", ["clang-19", "gcc-12"])
def test_cmake_kvdev(cc: str, kvdev_src: Path, tmp_path: Path) -> None:
    need(cc, "cmake")
    build = tmp_path / "b"
    kcov_build("--compiler", cc, "--", "cmake", "-S", kvdev_src, "-B", build)
    kcov_build("--compiler", cc, "--", "cmake", "--build", build)
    (lib,) = build.glob("libkvdev.so")
    assert instrumented(lib)["kvdev_ioctl"]
    assert "[libkcovrt.so]" in run(["readelf", "-d", lib]).stdout


# --- what is injected, and what is not -------------------------------------


def test_dry_run_prints_injection_and_runs_nothing(kvdev_src: Path) -> None:
    need("clang-19")
    p = kcov_build("--dry-run", "--compiler", "clang-19", "--exclude-function", "kv_*", "--", "make", "-C", kvdev_src)
    out = p.stdout
    assert "# compile flags: -fsanitize-coverage=trace-pc,trace-cmp -fsanitize-coverage-ignorelist=" in out
    assert "-lkcovrt" in out and "exclude function: kv_*" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("CC=") and " make -C " in last and "CC=" in last.split(" make ", 1)[1]
    ignorelist = next(w.split("=", 1)[1] for w in out.split() if w.startswith("-fsanitize-coverage-ignorelist="))
    assert "fun:kv_*" in Path(ignorelist).read_text()
    assert not (kvdev_src / "kvdev.o").exists()


def test_verbose_shows_each_call(kvdev_src: Path) -> None:
    need("gcc-12")
    p = kcov_build("-v", "--compiler", "gcc-12", "--", "make", "-C", kvdev_src)
    calls = [line for line in p.stderr.splitlines() if line.startswith("kcov-build: /usr/bin/gcc-12")]
    assert len(calls) == 2, p.stderr  # one compile, one link
    assert "-fsanitize-coverage=trace-pc,trace-cmp" in calls[0] and "-lkcovrt" not in calls[0]
    assert "-lkcovrt" in calls[1]


def test_make_cc_names_the_real_compiler(kvdev_src: Path) -> None:
    need("gcc-12")
    p = kcov_build("--dry-run", "--", "make", "-C", kvdev_src, "CC=gcc-12")
    assert "# compiler: /usr/bin/gcc-12 (gcc 12" in p.stdout
    assert "CC=gcc-12" not in p.stdout.splitlines()[-1]


def test_default_compiler_is_newest_clang(tmp_path: Path, kvdev_src: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for v in (7, 99, 23):
        f = bindir / f"clang-{v}"
        f.write_text(f'#!/bin/sh\necho "clang version {v}.0.0"\n')
        f.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("CC", None)
    p = kcov_build("--dry-run", "--", "make", "-C", kvdev_src, env=env)
    assert f"# compiler: {bindir}/clang-99 (clang 99.0.0)" in p.stdout


def test_runtime_sources_are_never_instrumented(tmp_path: Path) -> None:
    """A file that defines the callbacks is a runtime: it would recurse."""
    need("clang-19")
    (tmp_path / "rt.c").write_text(
        "#include <stdint.h>\nstatic volatile uintptr_t last;\n"
        "void __sanitizer_cov_trace_pc(void) { last = (uintptr_t)__builtin_return_address(0); }\n"
        "int rt_helper(int a) { return a ? a + 1 : 0; }\n"
    )
    (tmp_path / "app.c").write_text("int app(int a) { return a > 2 ? a : -a; }\n")
    (tmp_path / "Makefile").write_text(
        "all: rt.o app.o\n%.o: %.c\n\t$(CC) -O1 -c $< -o $@\n"
    )
    p = kcov_build("--compiler", "clang-19", "--runtime", "none", "--", "make", cwd=tmp_path)
    assert "rt.c: built without coverage: it defines SanitizerCoverage callbacks" in p.stderr
    assert_none_instrumented(tmp_path / "rt.o")
    assert instrumented(tmp_path / "app.o")["app"]


def test_build_status_is_propagated(kvdev_src: Path) -> None:
    need("gcc-12")
    (kvdev_src / "kvdev.c").write_text("int broken( {\n")
    p = kcov_build("--compiler", "gcc-12", "--", "make", "-C", kvdev_src, check=False)
    assert p.returncode == 2  # make's own status
    assert "Traceback" not in p.stderr
    assert kcov_build("--", "sh", "-c", "exit 7", check=False).returncode == 7


def test_old_gcc_refused_for_a_build(tmp_path: Path, kvdev_src: Path) -> None:
    gcc7 = tmp_path / "gcc-7"
    gcc7.write_text(
        '#!/bin/sh\ncase "$1" in\n--version) echo "gcc-7 (Debian 7.5.0-3) 7.5.0";'
        ' echo "Copyright (C) 2017 Free Software Foundation, Inc.";;\n'
        "-dumpfullversion) echo 7.5.0;;\nesac\n"
    )
    gcc7.chmod(0o755)
    p = kcov_build("--compiler", gcc7, "--", "make", "-C", kvdev_src, check=False)
    assert p.returncode == 64 and "trace-cmp (GCC 8 added it)" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not (kvdev_src / "kvdev.o").exists()
    assert kcov_build("--compiler", gcc7, "--mode", "pc", "--dry-run", "--", "make", "-C", kvdev_src).returncode == 0


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["--compiler", "no-such-cc-xyz", "--", "make"], 69, ["no-such-cc-xyz", "not found"]),
        (["--", "no-such-build-tool-xyz"], 127, ["no-such-build-tool-xyz", "not found"]),
        (["--config", "/nonexistent/profile.toml", "--", "make"], 64, ["no such profile"]),
        (["--compiler", "clang-19", "--", "clang-19", "-c", "x.c"], 64, ["--compiler is for builds"]),
        (["--compdb", "x.json", "--", "gcc-12", "-c", "x.c"], 64, ["--compdb"]),
    ],
)
def test_build_usage_errors(args: list[str], status: int, words: list[str]) -> None:
    p = kcov_build(*args, check=False)
    assert p.returncode == status, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kcov-build: "), p.stderr
    for w in words:
        assert w in lines[0]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("mode = 'pc'\n", ["no [kcov-build] table"]),
        ("[kcov-build]\nmode = \n", ["not a valid TOML profile"]),
        ("[kcov-build]\nmodes = 'pc'\n", ["unknown key 'modes'"]),
        ("[kcov-build]\nexclude-file = 'x.c'\n", ["'exclude-file' must be a list of strings"]),
        ("[kcov-build]\nmode = 'edge'\n", ["mode 'edge'"]),
    ],
)
def test_bad_profiles(tmp_path: Path, text: str, words: list[str]) -> None:
    prof = tmp_path / "p.toml"
    prof.write_text(text)
    p = kcov_build("--config", prof, "--dry-run", "--", "make", check=False)
    assert p.returncode == 64, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    for w in words:
        assert w in p.stderr


def test_profiles_in_kernel_conf(kvdev_src: Path) -> None:
    need("clang-19")
    hosted = ROOT / "kernel_conf" / "profiles" / "hosted.toml"
    out = kcov_build("--config", hosted, "--compiler", "clang-19", "--dry-run", "--", "make", "-C", kvdev_src).stdout
    assert "-lkcovrt" in out and "source analysis (libclang)" in out
    module = ROOT / "kernel_conf" / "profiles" / "linux-module.toml"
    out = kcov_build("--config", module, "--compiler", "gcc-12", "--dry-run", "--", "make", "-C", kvdev_src).stdout
    assert "link flags (hosted links; none for kernel code): none" in out
    # The command line wins over the profile.
    out = kcov_build("--config", module, "--runtime", "static", "--compiler", "gcc-12", "--dry-run", "--",
                     "make").stdout
    assert "libkcovrt.a" in out


# --- kbuild -----------------------------------------------------------------

@pytest.mark.slow
def test_kbuild_out_of_tree_module(tmp_path: Path) -> None:
    """An out-of-tree module against Debian's headers: kbuild's own rules,
    the kernel's compiler (gcc-12, read from its config), coverage on every
    compile, nothing linked (the callbacks come from the kernel or our
    module, so modpost is told to only warn here)."""
    kdir = stock().headers
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "hello.c").write_text(
        "#include <linux/module.h>\n#include <linux/init.h>\n"
        "static int n;\nstatic noinline int hello_calc(int a) { return a > 3 ? a * 2 : a - 1; }\n"
        "static int __init hello_init(void) { n = hello_calc(n + 5); return 0; }\n"
        "static void __exit hello_exit(void) { }\nmodule_init(hello_init);\nmodule_exit(hello_exit);\n"
        'MODULE_LICENSE("GPL");\n'
    )
    (mod / "Kbuild").write_text("obj-m := hello.o\n")
    env = dict(os.environ)
    env.pop("CC", None)
    p = kcov_build(
        "-v", "--", "make", "-C", kdir, f"M={mod}", "KBUILD_MODPOST_WARN=1", "modules", env=env,
    )
    assert "building against a kernel built with gcc-12" in p.stderr
    calls = [line for line in p.stderr.splitlines() if line.startswith("kcov-build: /usr/bin/gcc-12")]
    compiles = [line for line in calls if "hello.c" in line]
    assert compiles and all("-fsanitize-coverage=trace-pc,trace-cmp" in line for line in compiles)
    assert calls and not any("-lkcovrt" in line for line in calls)
    inst = callback_calls(mod / "hello.ko")
    assert inst["hello_calc"].get("__sanitizer_cov_trace_pc", 0) >= 2
    assert inst["hello_calc"].get("__sanitizer_cov_trace_const_cmp4", 0) >= 1
    undefined = subprocess.run(["nm", "-u", mod / "hello.ko"], capture_output=True, text=True).stdout
    assert "__sanitizer_cov_trace_pc" in undefined and "kcovrt" not in undefined


# --- annotations, found by libclang -----------------------------------------

ANNOTATED = """\
#include <kcovrt.h>
#define MYNOCOV __attribute__((annotate("my_nocov")))
KCOV_NO_COVERAGE int f_kcov(int a) { return a > 1 ? a : 2; }
__attribute__((no_sanitize("coverage"))) int f_clang(int a) { return a > 1 ? a : 3; }
MYNOCOV int f_mine(int a) { return a > 1 ? a : 5; }
int f_plain(int a) { return a > 1 ? a : 6; }
"""
GCC_ONLY = """\
#include <kcovrt.h>
KCOV_NO_COVERAGE int g_kcov(int a) { return a > 1 ? a : 2; }
__attribute__((no_sanitize_coverage)) int g_gcc(int a) { return a > 1 ? a : 4; }
int g_plain(int a) { return a > 1 ? a : 6; }
"""


def _annotated_project(tmp_path: Path) -> Path:
    import kcov

    (tmp_path / "a.c").write_text(ANNOTATED)
    (tmp_path / "g.c").write_text(GCC_ONLY)
    (tmp_path / "Makefile").write_text(
        f"CFLAGS = -O1 -Wno-attributes -I{kcov.get_include()}\n"
        "all: a.o g.o\n%.o: %.c\n\t$(CC) $(CFLAGS) -c $< -o $@\n"
    )
    return tmp_path


def test_annotations_clang(tmp_path: Path) -> None:
    """clang: each marked function is left out, the others in the same file stay."""
    need("clang-19")
    proj = _annotated_project(tmp_path)
    kcov_build("--compiler", "clang-19", "--annotation", "MYNOCOV", "--", "make", cwd=proj)
    a = instrumented(proj / "a.o")
    assert a == {"f_kcov": False, "f_clang": False, "f_mine": False, "f_plain": True}
    g = instrumented(proj / "g.o")
    # clang ignores gcc's spelling; the analysis finds it and ignorelists it.
    assert g == {"g_kcov": False, "g_gcc": False, "g_plain": True}


def test_annotations_without_analysis_show_why_it_exists(tmp_path: Path) -> None:
    """The control: without analysis clang instruments what it does not understand."""
    need("clang-19")
    proj = _annotated_project(tmp_path)
    kcov_build("--compiler", "clang-19", "--", "make", cwd=proj)
    assert instrumented(proj / "a.o")["f_mine"] is True
    assert instrumented(proj / "g.o")["g_gcc"] is True
    assert instrumented(proj / "a.o")["f_kcov"] is False  # the macro picks clang's spelling


def test_annotations_gcc(tmp_path: Path) -> None:
    """gcc honours its own spelling per function; for the rest, the whole file."""
    need("gcc-12")
    proj = _annotated_project(tmp_path)
    p = kcov_build("--compiler", "gcc-12", "--annotation", "MYNOCOV", "--", "make", cwd=proj)
    assert_none_instrumented(proj / "a.o")
    assert "a.c: built without coverage:" in p.stderr and "which gcc ignores" in p.stderr
    g = instrumented(proj / "g.o")
    assert g == {"g_kcov": False, "g_gcc": False, "g_plain": True}
    assert "g.c" not in p.stderr


def test_inventory_of_a_wrapped_build(kvdev_src: Path, tmp_path: Path) -> None:
    """--inventory: the functions of every source the build compiled (libclang)."""
    need("clang-19")
    inv = tmp_path / "inventory.json"
    kcov_build("--compiler", "clang-19", "--inventory", inv, "--", "make", "-C", kvdev_src)
    data = json.loads(inv.read_text())
    funcs = {f["name"]: f for f in data["functions"]}
    defined = {f for f, _ in instrumented(kvdev_src / "kvdev.o").items()}
    assert "kvdev_ioctl" in funcs
    assert {f for f in defined if not f.startswith(".")} <= set(funcs)  # every emitted function is listed
    assert all(f["file"] == str(kvdev_src / "kvdev.c") for f in funcs.values())
    assert all(f["start_line"] <= f["end_line"] for f in funcs.values())


@pytest.mark.parametrize("cc", ["clang-19", "gcc-12"])
def test_split_compile_and_link_call(cc: str, tmp_path: Path) -> None:
    """One call compiling and linking two sources, one excluded: it is split,
    the program still links (link-only arguments stay on the link) and runs."""
    need(cc)
    (tmp_path / "main.c").write_text(
        "#include <math.h>\nint helper(int);\n"
        "int main(int argc, char **argv) { (void)argv; return helper(argc) + (int)sqrt(0.0); }\n"
    )
    (tmp_path / "helper.c").write_text("int helper(int a) { return a > 5 ? 1 : 0; }\n")
    exe = tmp_path / "prog"
    p = kcov_build(
        "-v", "--exclude-file", "helper.c", cc, "-O1", "main.c", "helper.c", "-L", "/usr/lib",
        "-o", exe, "-lm", cwd=tmp_path,
    )
    lines = [line for line in p.stderr.splitlines() if line.startswith(("/usr", cc))]
    assert len(lines) == 2, p.stderr  # the excluded compile, then the rest
    assert "-fsanitize-coverage" not in lines[0] and "-lm" not in lines[0] and "-c helper.c" in lines[0]
    assert "-fsanitize-coverage" in lines[1] and "-lm" in lines[1]
    inst = instrumented(exe)
    assert inst["main"] and not inst["helper"]
    assert run([exe], check=False).returncode == 0
    temp = lines[0].split(" -o ", 1)[1].split()[0]  # the excluded source's temporary object
    assert temp in lines[1] and not Path(temp).exists()  # linked, then removed


@pytest.mark.slow
def test_only_function_clang_allowlist(lz4_src: Path) -> None:
    need("clang-19")
    p = kcov_build(
        "-v", "--compiler", "clang-19", "--only-function", "LZ4_compress_*", "--only-file", "*/lz4.c",
        "--", "make", "-C", "lib", "liblz4.a", cwd=lz4_src,
    )
    assert "-fsanitize-coverage-allowlist=" in p.stderr
    lib = lz4_src / "lib"
    inst = instrumented(lib / "lz4.o")
    assert inst["LZ4_compress_default"] and inst["LZ4_compress_fast"]
    assert not inst["LZ4_decompress_safe"] and not inst["LZ4_versionNumber"]
    for other in ("lz4hc.o", "lz4frame.o", "xxhash.o"):
        assert_none_instrumented(lib / other)


@pytest.mark.slow
def test_only_file_gcc_and_only_function_refused(lz4_src: Path) -> None:
    need("gcc-12")
    kcov_build("--compiler", "gcc-12", "--only-file", "lib/lz4hc.c", "--", "make", "-C", "lib", "liblz4.a", cwd=lz4_src)
    lib = lz4_src / "lib"
    assert_all_instrumented(lib / "lz4hc.o")
    for other in ("lz4.o", "lz4frame.o", "xxhash.o"):
        assert_none_instrumented(lib / other)
    p = kcov_build("--compiler", "gcc-12", "--only-function", "LZ4_*", "--", "make", cwd=lz4_src, check=False)
    assert p.returncode == 64 and "gcc has no SanitizerCoverage allowlist" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
