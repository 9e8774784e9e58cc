"""The wheel's runtime as users consume it.

* A user's build finds and links the runtime through pkg-config and through
  CMake's find_package(KcovRuntime), shared and static, and the result
  records coverage through the kcovrt C API.
* The runtime itself is never instrumented.
* Objects built with any SanitizerCoverage mode link against it.
* A CPython extension module built instrumented reports its coverage to a
  Python harness in the same process.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.support.prereq import REPO as REPO_ROOT, need_tool as need, own

import kcov

DATA = Path(__file__).resolve().parent / "data"
LIB = Path(kcov.get_lib_dir())
VENV_BIN = Path(sys.executable).parent


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


def recorded_pcs(out: str) -> int:
    m = re.search(r"^pcs (\d+)$", out, re.M)
    assert m, out
    return int(m.group(1))


def test_pkg_config_build_records(tmp_path: Path) -> None:
    pkgconf = need("pkg-config")
    cc = need("gcc-12")
    env = dict(os.environ, PKG_CONFIG_PATH=str(LIB / "pkgconfig"))
    flags = run([pkgconf, "--cflags", "--libs", "kcovrt"], env=env).stdout.split()
    assert "-fsanitize-coverage=trace-pc,trace-cmp" in flags
    exe = tmp_path / "client"
    # The client itself carries the flags too: the runtime records only the
    # enabled thread, so instrumenting the driver is harmless.
    run([cc, str(DATA / "api_client.c"), str(DATA / "target.c"), "-o", str(exe), *flags])
    assert recorded_pcs(run([str(exe)]).stdout) > 0


@pytest.mark.parametrize("target", ["client_shared", "client_static"])
def test_cmake_find_package_records(tmp_path: Path, target: str) -> None:
    cmake = need("cmake")
    need("make")
    build = tmp_path / "build"
    run([cmake, "-S", str(DATA), "-B", str(build), "-G", "Unix Makefiles",
         f"-DKcovRuntime_DIR={kcov.get_cmake_dir()}", "-DCMAKE_C_COMPILER=gcc-12"])
    run([cmake, "--build", str(build), "--target", target])
    assert recorded_pcs(run([str(build / target)]).stdout) > 0


def test_runtime_is_not_instrumented() -> None:
    objdump = need("llvm-objdump-19")
    nm = need("llvm-nm-19")
    # In the archive's objects a callback call is an undefined reference.
    undefined = run([nm, "-u", str(LIB / "libkcovrt.a")]).stdout.split()
    assert not [s for s in undefined if s.startswith("__sanitizer_cov_")], undefined
    for lib in (LIB / "libkcovrt.so", LIB / "libkcov-preload.so"):
        text = run([objdump, "-d", "--no-show-raw-insn", str(lib)]).stdout
        # A call to a callback names it exactly (via the PLT or not); a
        # "<sym+0x..>" target is objdump naming an unrelated PLT slot.
        calls = [ln for ln in text.splitlines()
                 if re.search(r"\bcall\w*\s.*<__sanitizer_cov_\w+(@plt)?>\s*$", ln)]
        assert calls == [], f"{lib.name} calls coverage callbacks:\n" + "\n".join(calls[:5])
    # ...while it does define every callback the compilers emit.
    syms = set(run([nm, "-D", "--defined-only", str(LIB / "libkcovrt.so")]).stdout.split())
    for cb in ("trace_pc", "trace_cmp1", "trace_cmp8", "trace_const_cmp4",
               "trace_switch", "trace_cmpf", "trace_cmpd", "trace_pc_guard",
               "trace_pc_guard_init", "8bit_counters_init", "bool_flag_init",
               "pcs_init", "trace_div4", "trace_div8", "trace_gep", "trace_pc_indir"):
        assert f"__sanitizer_cov_{cb}" in syms, cb


@pytest.mark.parametrize("cc,modes", [
    ("clang-19", "trace-pc-guard,pc-table,trace-cmp,trace-div,trace-gep,indirect-calls"),
    ("clang-19", "inline-8bit-counters,pc-table,trace-loads,trace-stores"),
    ("clang-19", "inline-bool-flag,pc-table,control-flow"),
    ("clang-14", "trace-pc-guard,trace-cmp,trace-div,trace-gep"),
    ("gcc-12", "trace-pc,trace-cmp"),
])
def test_any_coverage_mode_links(tmp_path: Path, cc: str, modes: str) -> None:
    compiler = need(cc)
    exe = tmp_path / "allmodes"
    extra = ["-fno-sanitize-link-runtime"] if cc.startswith("clang") else []
    run([compiler, "-O1", f"-fsanitize-coverage={modes}", *extra, str(DATA / "allmodes.c"),
         "-o", str(exe), f"-L{LIB}", "-Wl,--no-as-needed", "-lkcovrt",
         f"-Wl,-rpath,{LIB}"])
    assert run([str(exe)]).stdout.strip() == "ok 1"


def test_instrumented_python_extension(tmp_path: Path) -> None:
    cc = need("gcc-12")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    mod = tmp_path / f"spam{suffix}"
    run([str(VENV_BIN / "kcov-build"), cc, "-O1", "-fPIC", "-shared",
         f"-I{sysconfig.get_paths()['include']}", str(DATA / "spammod.c"), "-o", str(mod)])
    script = textwrap.dedent("""
        import os, sys
        import kcov
        import spam
        real = os.path.realpath(spam.__file__)
        lo, hi = None, None
        for line in open("/proc/self/maps"):
            f = line.split()
            if len(f) >= 6 and f[5] == real:
                a, b = (int(x, 16) for x in f[0].split("-"))
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
        sets = {}
        with kcov.open(provider="hosted") as k:
            for v in (-1, 4242, 7):
                with k.trace(kcov.Mode.PC):
                    spam.classify(v)
                sets[v] = {int(p) for p in k.pcs()}
            with k.trace(kcov.Mode.CMP):
                spam.classify(4242)
            c = k.comparisons()
            consts = {(int(a), int(b)) for a, b, k_ in zip(c.arg1, c.arg2, c.is_const) if k_}
        assert all(s and all(lo <= p < hi for p in s) for s in sets.values()), sets
        assert sets[-1] != sets[4242] != sets[7], sets
        assert (4242, 4242) in consts, consts
        print("ok", {v: len(s) for v, s in sets.items()})
    """)
    out = run([sys.executable, "-c", script], cwd=tmp_path,
              env=dict(os.environ, PYTHONPATH=str(tmp_path))).stdout
    assert out.startswith("ok "), out


def test_engine_is_freestanding(tmp_path: Path) -> None:
    """The engine and its ABI front-ends build with no libc, as the kernel
    module needs them."""
    repo = Path(__file__).resolve().parents[2]
    engine = repo / "runtime" / "engine.c"
    if not engine.exists():
        own(False, "runtime sources are not in this tree")
    sources = [engine, *sorted(engine.parent.glob("abi_*.c"))]
    nm = need("llvm-nm-19")
    for cc in ("gcc-12", "clang-19"):
        compiler = need(cc)
        undefined: set[str] = set()
        defined: set[str] = set()
        for src in sources:
            obj = tmp_path / f"{src.stem}-{cc}.o"
            run([compiler, "-std=c11", "-O2", "-ffreestanding", "-nostdlib", "-fno-builtin",
                 "-Wall", "-Werror", "-I", str(engine.parent / "include"), "-c", str(src),
                 "-o", str(obj)])
            undefined |= set(run([nm, "-u", str(obj)]).stdout.split()) - {"U"}
            defined |= set(run([nm, "--defined-only", "-j", str(obj)]).stdout.split())
        undefined -= defined
        foreign = {s for s in undefined if not s.startswith("kcov_plat_")}
        assert not foreign, f"{cc}: engine needs {sorted(foreign)}"
        assert "kcov_plat_buf_alloc" in undefined  # the check can see symbols


def _pyproject() -> dict:  # type: ignore[type-arg]
    import tomllib

    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_setup_installs_the_test_extras() -> None:
    """scripts/setup.sh pins exactly what pyproject's test extra lists."""
    text = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    block = text[text.index("REQS=(") : text.index("\n)\n", text.index("REQS=("))]
    reqs = set(re.findall(r'"([^"$]+)"', block))
    meta = _pyproject()["project"]
    assert set(meta["optional-dependencies"]["test"]) <= reqs, sorted(reqs)
    assert {_name(r) for r in meta["dependencies"] if "python_version" not in r} <= {_name(r) for r in reqs}


def test_test_extras_list_what_the_tests_import() -> None:
    """Every third-party module a test file imports comes from a dependency
    or the test extra, so `pip install kcov[test]` is enough to run them."""
    import ast
    from importlib.metadata import packages_distributions

    meta = _pyproject()["project"]
    declared = {_name(r) for r in [*meta["dependencies"], *meta["optional-dependencies"]["test"]]}
    ours = {"kcov", "kcov_build", "tests", "examples"}
    dists = packages_distributions()
    local = ({p.stem for p in (REPO_ROOT / "tests").rglob("*.py")}
             | {p.name for p in (REPO_ROOT / "tests").rglob("*") if p.is_dir()})
    needed: dict[str, str] = {}
    for path in sorted((REPO_ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for n in names:
                top = n.split(".")[0]
                if top in sys.stdlib_module_names or top in ours or top in local or top.startswith("_"):
                    continue
                needed[top] = str(path.relative_to(REPO_ROOT))
    missing = {top: where for top, where in needed.items()
               if not {_name(d) for d in dists.get(top, [top])} & declared}
    assert not missing, f"imported by tests but not declared in pyproject's test extra: {missing}"
