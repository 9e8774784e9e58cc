"""kcov-build config: parse, merge, write and check kernel configurations.

Every kernel_conf/ file is read, with and without a (fake) kernel source
tree, the Linux merge is compared line for line with the kernel's own
scripts/kconfig/merge_config.sh, --write output is read back, and each kind of
bad input must give one stderr line, its exit status and no traceback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.prereq import own

from buildhelp import kcov_build, need_tool

from kcov_build import kconfig

ROOT = Path(__file__).resolve().parents[2]
KCONF = ROOT / "kernel_conf"
DATA = Path(__file__).parent / "data" / "kconfig"
BAD = DATA / "bad"
LINUX_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
MERGE_SCRIPT = "linux-source-6.1/scripts/kconfig/merge_config.sh"

# Where each fake tree puts the files config(8) would find.
SEARCH = {
    "freebsd": DATA / "freebsd/sys/amd64/conf",
    "netbsd": DATA / "netbsd/sys",
    "openbsd": DATA / "openbsd/sys",
}
BSD_CONF = {os_: KCONF / os_ / "KCOV" for os_ in SEARCH}


def config(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    p = kcov_build("config", *args, check=False)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def report(*args: str | os.PathLike[str]) -> tuple[int, dict[str, object]]:
    p = config(*args, "--json")
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def values(state: dict[str, tuple[str | None, object]]) -> dict[str, str | None]:
    return {k: v for k, (v, _) in state.items()}


# -- kernel_conf files --------------------------------------------------------


@pytest.mark.parametrize("os_", sorted(SEARCH))
def test_bsd_conf_without_tree(os_: str) -> None:
    """GENERIC is not there: a note says so, coverage is judged from KCOV."""
    p = config(BSD_CONF[os_])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "coverage: on" in p.stdout
    assert f"{os_} kernel configuration" in p.stdout
    notes = [ln for ln in p.stderr.splitlines() if "note:" in ln]
    assert len(notes) == 1 and "GENERIC not found" in notes[0] and "judged from the files" in notes[0]
    rc, rep = report(BSD_CONF[os_])
    assert rep["os"] == os_ and rep["coverage"] is True and rep["missing"] == []
    assert [u["include"] for u in rep["not_read"]] == [  # type: ignore[union-attr, index]
        "GENERIC" if os_ == "freebsd" else "arch/amd64/conf/GENERIC"]


@pytest.mark.parametrize("os_", sorted(SEARCH))
def test_bsd_conf_with_fake_tree(os_: str) -> None:
    """With --search the includes, and theirs, are read and applied in order."""
    p = config(BSD_CONF[os_], "--search", SEARCH[os_])
    assert p.returncode == 0 and "note:" not in p.stderr, p.stderr
    res = kconfig.read_config([BSD_CONF[os_]], "auto", [SEARCH[os_]])
    assert res.os == os_ and not res.unresolved and not res.missing()
    st = values(res.state)
    if os_ == "freebsd":
        # GENERIC -> std.fake (next to it) -> std.common (config(8)'s ../../conf).
        assert len(res.files) == 4
        assert st["machine"] == "amd64" and st["ident"] == "KCOV" and "cpu:HAMMER" in st
        assert "options:INET" in st and "options:INET6" not in st  # nooptions in std.fake
        assert st["options:MAXUSERS_FAKE"] == "0x10" and "options:KTRACE" in st
        assert st["makeoptions:DEBUG"] == "-g" and "device:uart" in st
    elif os_ == "netbsd":
        assert len(res.files) == 3 and st["machine"] == "amd64 x86"
        assert st["makeoptions:COPTS"] == '"-O2 -fno-omit-frame-pointer"'
        assert "options:NTP" in st and "options:EXEC_ELF64" in st and "pseudo-device:pty" in st
        assert st["makeoptions:KCOV"] == "1"
    else:
        assert len(res.files) == 3 and st["pseudo-device:pty"] == "16" and st["pseudo-device:kcov"] == "1"
        assert "options:DDB" in st and "options:PCIVERBOSE" in st


def test_linux_conf_files() -> None:
    rc, rep = report(KCONF / "linux/kcov.config")
    assert rc == 0 and rep["os"] == "linux" and rep["missing"] == []
    vm = KCONF / "linux/vm.config"
    own(vm.is_file(), "kernel_conf/linux/vm.config")
    # vm.config alone is bootable but not instrumented; with kcov.config it is.
    rc, rep = report(vm)
    assert rep["os"] == "linux"
    rc, rep = report(vm, KCONF / "linux/kcov.config")
    assert rc == 0 and rep["coverage"] is True


def test_options_then_nooptions_is_legal() -> None:
    """FreeBSD config(8) applies statements in order: nooptions KCOV wins."""
    rc, rep = report(DATA / "freebsd-no-then-yes")
    assert rc == 1 and rep["missing"] == ["options KCOV"]


def test_freebsd_makeoptions_first_wins(tmp_path: Path) -> None:
    f = tmp_path / "KERN"
    f.write_text("machine amd64\nmakeoptions DEBUG=-g\nmakeoptions DEBUG=-O0\noptions COVERAGE,KCOV\n")
    p = config(f, "--os", "freebsd")
    assert p.returncode == 0 and "duplicate option `DEBUG'" in p.stderr
    assert values(kconfig.read_config([f], "freebsd").state)["makeoptions:DEBUG"] == "-g"


# -- Linux merge against the kernel's merge_config.sh ---------------------


@pytest.fixture(scope="session")
def merge_config() -> Path:
    cached = ROOT / ".cache/kconfig" / MERGE_SCRIPT
    if not cached.is_file():
        if not LINUX_TARBALL.is_file():
            if os.environ.get("CI") == "true":
                pytest.fail(f"{LINUX_TARBALL} is missing (install linux-source-6.1)")
            pytest.skip(f"{LINUX_TARBALL} is not installed")
        with tarfile.open(LINUX_TARBALL) as tar:
            member = tar.getmember(MERGE_SCRIPT)
            tar.extractall(ROOT / ".cache/kconfig", members=[member], filter="data")
    return cached


def run_merge_config(script: Path, work: Path, files: list[Path]) -> tuple[str, list[str]]:
    """merge_config.sh -m FILES in `work`: the merged text and its redefinition lines."""
    p = subprocess.run(["sh", str(script), "-m", *[f.name for f in files]], cwd=work, capture_output=True,
                       text=True, env={**os.environ, "KCONFIG_CONFIG": "merged"}, timeout=60, check=True)
    return (work / "merged").read_text(), redefinitions(p.stdout)


def redefinitions(text: str) -> list[str]:
    keep = ("Value of ", "Previous value:", "New value:")
    return [ln for ln in text.splitlines() if ln.startswith(keep)]


@pytest.mark.parametrize("names", [
    ["base.config", "partial.config", "kcov.config"],
    ["kcov.config", "base.config"],
    ["partial.config", "partial.config"],
    ["base.config", "partial.config"],
    ["vm.config", "kcov.config"],
    ["base.config", "vm.config", "partial.config"],
])
def test_merge_matches_merge_config_sh(merge_config: Path, tmp_path: Path, names: list[str]) -> None:
    """Our --write equals merge_config.sh -m on the same fragments (+ what we add)."""
    src = {p.name: p for p in [*(KCONF / "linux").glob("*.config"), *(DATA / "linux").iterdir()]}
    own(all(n in src for n in names), f"one of {names}")
    files = [tmp_path / n for n in names]
    for n in set(names):
        shutil.copy(src[n], tmp_path / n)
    out = tmp_path / "ours"
    # Run where the fragments are, so both tools name them alike.
    p = kcov_build("config", *[f.name for f in files], "--write", out.name, "--json", check=False, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    added = json.loads(p.stdout)["added"]
    theirs_files = list(files)
    if added:
        # Our additions are one more fragment, as merge_config.sh would merge it.
        extra = tmp_path / "kcov-added.config"
        extra.write_text("\n".join([kconfig.ADDED_HEADER, *added]) + "\n")
        theirs_files.append(extra)
    text, msgs = run_merge_config(merge_config, tmp_path, theirs_files)
    assert out.read_text() == text
    ours = redefinitions(p.stderr.replace(kconfig.ADDED_FRAGMENT, "kcov-added.config"))
    assert ours == msgs
    # What merge_config.sh wrote is what we judge: read it back, coverage is on.
    assert not kconfig.read_config([tmp_path / "merged"], "linux").missing()


def test_redundant_flag(tmp_path: Path) -> None:
    kc = KCONF / "linux/kcov.config"
    p = config(kc, kc, "-r")
    assert p.returncode == 0
    assert p.stderr.count("is redundant by fragment") == 4 and "redefined" not in p.stderr


# -- --write round trip --------------------------------------------------


@pytest.mark.parametrize("case", ["freebsd", "freebsd-tree", "netbsd", "netbsd-tree", "openbsd-tree", "linux"])
def test_write_round_trip(case: str, tmp_path: Path) -> None:
    os_ = case.split("-")[0]
    search = [SEARCH[os_]] if case.endswith("-tree") else []
    if os_ == "linux":
        inputs = [DATA / "linux/base.config", DATA / "linux/partial.config"]
    else:
        # Strip the coverage lines so --write has something to add.
        inputs = [tmp_path / "IN"]
        text = BSD_CONF[os_].read_text()
        keep = [ln for ln in text.splitlines() if "kcov" not in ln.split("#")[0].lower() or "include" in ln]
        inputs[0].write_text("\n".join(keep) + "\n")
    before = kconfig.read_config(inputs, os_, search)
    assert before.missing(), "the input should lack coverage"
    out = tmp_path / "sub" / "OUT"
    out.parent.mkdir()
    args = [*inputs, "--os", os_, "--write", out, *[a for d in search for a in ("--search", d)]]
    rc, rep = report(*args)
    assert rc == 0 and rep["coverage"] is True and rep["added"] and rep["written"] == str(out)
    assert not list(out.parent.glob(".OUT.*")), "temporary file left behind"
    after = kconfig.read_config([out], os_)
    assert not after.missing()
    expect = values(before.state)
    for line in rep["added"]:  # type: ignore[union-attr]
        if os_ == "linux":
            sym, val = line.split("=", 1)
            expect[sym] = val
        else:
            words = line.split()
            if words[0] == "pseudo-device":
                expect[f"pseudo-device:{words[1]}"] = words[2] if len(words) > 2 else None
            elif words[:2] == ["no", "makeoptions"]:
                expect.pop(f"makeoptions:{words[2]}", None)
            else:
                name, _, val = words[1].partition("=")
                expect[f"{words[0]}:{name}"] = val or None
    assert values(after.state) == expect
    if search:
        # Everything read was inlined: no include is left to resolve.
        assert not after.unresolved and len(after.files) == 1
    elif os_ != "linux":
        assert [u.name for u in after.unresolved] == [u.name for u in before.unresolved]
    # Writing the written file again adds nothing and changes nothing.
    again = tmp_path / "AGAIN"
    rc, rep2 = report(out, "--os", os_, "--write", again)
    assert rc == 0 and rep2["added"] == [] and again.read_text() == out.read_text()


# -- bad input -----------------------------------------------------------


BAD_CASES = [
    # file, extra args, status, message fragment
    (BAD / "no-such-file", [], 66, "no such file"),
    (BAD / "freebsd-malformed", [], 65, "freebsd-malformed:3: unknown keyword 'optoins'"),
    (BAD / "freebsd-two-machines", ["--os", "freebsd"], 65, "freebsd-two-machines:4: only one machine directive"),
    (BAD / "freebsd-two-machines", [], 65, "cannot tell which kernel"),
    (BAD / "freebsd-cycle-a", [], 65, "include cycle"),
    (BAD / "netbsd-malformed", [], 65, "netbsd-malformed:2: option KCOV: value missing"),
    (BAD / "netbsd-two-pseudo", [], 65, "netbsd-two-pseudo:5: `bpfilter' already defined"),
    (BAD / "openbsd-malformed", [], 65, "openbsd-malformed:2: pseudo-device kcov: count 'one'"),
    (BAD / "openbsd-repeat-option", ["--search", SEARCH["openbsd"]], 65,
     "openbsd-repeat-option:3: already have options `DDB'"),
    (BAD / "linux-malformed.config", [], 65, "linux-malformed.config:2: not a Kconfig line"),
    (BAD / "linux-bad-value.config", [], 65, "linux-bad-value.config:1: bad value for CONFIG_KCOV"),
    (BAD / "linux-conflict.config", [], 65, "linux-conflict.config:3: conflicting values for CONFIG_KCOV"),
    (KCONF / "linux/kcov.config", ["--os", "plan9"], 64, "invalid choice"),
    (KCONF / "linux/kcov.config", ["--search", BAD / "no-such-dir"], 64, "not a directory"),
    (KCONF / "linux/kcov.config", ["--compiler", "no-such-cc-kcov"], 69, "compiler 'no-such-cc-kcov' not found"),
]


@pytest.mark.parametrize("path,extra,status,message", BAD_CASES,
                         ids=[f"{c[0].name}{'-' + str(c[1][0]) if c[1] else ''}" for c in BAD_CASES])
def test_bad_input(path: Path, extra: list[str | Path], status: int, message: str) -> None:
    p = config(path, *extra)
    assert p.returncode == status, p.stdout + p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kcov-build: "), p.stderr
    assert message in lines[0]
    assert p.stdout == ""


def test_openbsd_repeat_without_tree_is_fine() -> None:
    """The repeated option is in the unread GENERIC: nothing to contradict."""
    rc, rep = report(BAD / "openbsd-repeat-option")
    assert rc == 0 and rep["not_read"]


def test_missing_second_fragment(tmp_path: Path) -> None:
    p = config(KCONF / "linux/kcov.config", tmp_path / "absent.config", "--write", tmp_path / "out")
    assert p.returncode == 66 and not (tmp_path / "out").exists()


def test_unwritable_output(tmp_path: Path) -> None:
    p = config(KCONF / "linux/kcov.config", "--write", tmp_path / "no" / "dir" / "out")
    assert p.returncode == 73 and len(p.stderr.splitlines()) == 1


# -- --compiler ----------------------------------------------------------


@pytest.mark.parametrize("cc", ["gcc-12", "clang-19"])
def test_compiler_supports_flags(cc: str) -> None:
    if shutil.which(cc) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{cc} is not installed")
        pytest.skip(f"{cc} is not installed")
    rc, rep = report(KCONF / "linux/kcov.config", "--compiler", cc)
    assert rc == 0 and rep["compiler"] == {
        "command": cc, "missing": [],
        "flags": {"-fsanitize-coverage=trace-pc": True, "-fsanitize-coverage=trace-cmp": True}}


def test_compiler_without_trace_cmp(tmp_path: Path) -> None:
    real = need_tool("gcc-12", "gcc", "clang-19", "cc")
    fake = tmp_path / "old-cc"
    fake.write_text(f"""#!/bin/sh
for a in "$@"; do
  case "$a" in *trace-cmp*) echo "old-cc: unrecognized argument '$a'" >&2; exit 1;; esac
done
exec {real} "$@"
""")
    fake.chmod(0o755)
    rc, rep = report(BSD_CONF["freebsd"], "--compiler", fake)
    assert rc == 1 and rep["coverage"] is False
    assert rep["compiler"]["missing"] == ["-fsanitize-coverage=trace-cmp"]  # type: ignore[index]
    p = config(BSD_CONF["freebsd"], "--compiler", fake)
    assert p.returncode == 1 and "REJECTED" in p.stdout and "rejects -fsanitize-coverage=trace-cmp" in p.stdout


def test_read_values_is_the_one_dotconfig_reader(tmp_path: Path) -> None:
    """kconfig.read_values reads what kcov-build's module and kernel builds
    read: a .config (strings quoted), a build tree's auto.conf (make
    syntax: strings unquoted, possibly empty), and rejects a bad line."""
    dot = tmp_path / ".config"
    dot.write_text('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="x y"\nCONFIG_E=""\n# comment\n')
    assert kconfig.read_values(dot) == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_S": '"x y"', "CONFIG_E": '""'}
    auto = tmp_path / "include" / "config" / "auto.conf"
    auto.parent.mkdir(parents=True)
    auto.write_text("CONFIG_A=y\nCONFIG_S=x y\nCONFIG_E=\n")
    assert kconfig.read_values(auto) == {"CONFIG_A": "y", "CONFIG_S": "x y", "CONFIG_E": ""}
    # The module build reads the tree's auto.conf first, strings unquoted.
    from kcov_build.build import _kconfig
    assert _kconfig(str(tmp_path)) == {"CONFIG_A": "y", "CONFIG_S": "x y", "CONFIG_E": ""}
    dot.write_text("CONFIG_A=yes\n")
    with pytest.raises(kconfig.ConfigError, match=r"\.config:1: bad value for CONFIG_A"):
        kconfig.read_values(dot)
    # Debian's own, as installed.
    headers = Path("/usr/src").glob("linux-headers-*-amd64/include/config/auto.conf")
    for conf in headers:
        values = kconfig.read_values(conf)
        assert values["CONFIG_CC_IS_GCC"] == "y" and not values["CONFIG_CC_VERSION_TEXT"].startswith('"')
        assert kconfig.read_values(conf.parents[2] / ".config")["CONFIG_CC_VERSION_TEXT"].startswith('"')
