"""What kcov-build injects, decided once per invocation.

A Settings value holds everything the per-compile wrapper needs: the real
compilers, the instrumentation mode, the runtime to link, and the exclusion
rules.  It comes from the command line on top of an optional profile
(``--config FILE``, TOML, see kernel_conf/profiles/) and is serialised into
the wrapper directory, so a compile started by make, ninja or kbuild minutes
later sees exactly what kcov-build printed.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from kcov._base.errors import ToolkitError

MODES = {"pc": "trace-pc", "cmp": "trace-pc,trace-cmp", "pc,cmp": "trace-pc,trace-cmp"}
ABIS = ("freebsd", "netbsd", "openbsd", "linux")
RUNTIMES = ("shared", "static", "none")
# Source-based coverage (--sbcc): clang's frontend instrumentation, whose raw
# profile layout our runtime writes per clang version (runtime/profile).
SBCC_FLAGS = ("-fprofile-instr-generate", "-fcoverage-mapping")

# The project's own no-coverage annotation (kcov/noinstr.h, through kcovrt.h) is always
# looked for when source analysis runs.
DEFAULT_ANNOTATIONS = ("KCOV_NO_COVERAGE",)


class SettingsError(ToolkitError):
    """A bad option value or profile: reported in one line."""

    exit_status = os.EX_USAGE


@dataclass(frozen=True)
class Compiler:
    family: str  # "clang", "gcc" or "other"
    version: tuple[int, ...] = ()

    def describe(self) -> str:
        v = ".".join(map(str, self.version))
        return f"{self.family} {v}".strip()


_VERSION_RE = re.compile(r"version (\d+(?:\.\d+)+)")


def identify(cc: str) -> Compiler:
    """Which compiler cc is, asked from the compiler itself."""
    try:
        out = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    low = out.lower()
    base = os.path.basename(cc)
    if "clang" in low or (not out and "clang" in base):
        m = _VERSION_RE.search(out)
        return Compiler("clang", tuple(int(x) for x in m.group(1).split(".")) if m else ())
    if "free software foundation" not in low and "gcc" not in base and "g++" not in base:
        return Compiler("other")
    # The first line of gcc --version carries a vendor string that may hold
    # other numbers; -dumpfullversion is exact (GCC >= 7, older ignore it).
    version: tuple[int, ...] = ()
    try:
        v = subprocess.run(
            [cc, "-dumpfullversion", "-dumpversion"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        v = ""
    if re.fullmatch(r"\d+(\.\d+)*", v):
        version = tuple(int(x) for x in v.split("."))
    return Compiler("gcc", version)


def resolve(cc: str) -> str | None:
    """The absolute path of an executable, or None."""
    if os.sep in cc:
        return os.path.abspath(cc) if os.path.isfile(cc) and os.access(cc, os.X_OK) else None
    return shutil.which(cc)


def newest_clang() -> str | None:
    """The clang-N with the highest N on PATH, else plain clang."""
    best: tuple[int, str] | None = None
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for p in glob.glob(os.path.join(d or ".", "clang-[0-9]*")):
            m = re.fullmatch(r"clang-(\d+)", os.path.basename(p))
            if m and os.access(p, os.X_OK) and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), os.path.basename(p))
    if best is not None:
        return best[1]
    return "clang" if shutil.which("clang") else None


def cxx_for(cc: str) -> str | None:
    """The C++ driver that goes with a C compiler (clang-19 -> clang++-19)."""
    d, base = os.path.split(cc)
    for pat, rep in ((r"clang", "clang++"), (r"gcc", "g++"), (r"^cc$", "c++")):
        if re.search(pat, base) and "++" not in base:
            cand = os.path.join(d, re.sub(pat, rep, base, count=1))
            found = resolve(cand)
            if found is not None:
                return found
    return None


@dataclass
class Settings:
    mode: str = "pc,cmp"
    sancov: bool = True  # inject -fsanitize-coverage (off for --sbcc without --mode)
    sbcc: bool = False  # inject -fprofile-instr-generate -fcoverage-mapping
    pgo_generate: bool = False  # inject -fprofile-generate (IR PGO, pgo.py)
    pgo_use: str | None = None  # inject -fprofile-instr-use=PATH (absolute)
    abi: str | None = None
    runtime: str = "shared"
    compiler: str | None = None  # as asked (--compiler or profile)
    exclude_files: list[str] = field(default_factory=list)  # absolute globs
    exclude_functions: list[str] = field(default_factory=list)
    only_files: list[str] = field(default_factory=list)  # absolute globs
    only_functions: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    analyze: bool = False
    cflags: list[str] = field(default_factory=list)
    # Filled in by finish(): the real compilers and what they are.
    cc: str | None = None
    cxx: str | None = None
    family: str = "other"
    version: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["version"] = list(self.version)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Settings:
        d = dict(d)
        d["version"] = tuple(d.get("version", ()))
        return cls(**d)

    @property
    def needs_analysis(self) -> bool:
        """Whether each compile must be parsed to apply the rules.

        clang applies --exclude-function itself (an ignorelist); gcc has no
        ignorelist, so a file defining such a function is found by parsing.
        Annotations other than the attributes each compiler honours need
        parsing with both.
        """
        if self.analyze or self.annotations:
            return True
        return self.family != "clang" and bool(self.exclude_functions)

    @property
    def all_annotations(self) -> list[str]:
        return [*DEFAULT_ANNOTATIONS, *(a for a in self.annotations if a not in DEFAULT_ANNOTATIONS)]


def absolute_glob(pattern: str, base: str) -> str:
    """Anchor a relative glob at base; patterns starting with '*' stay free."""
    if os.path.isabs(pattern) or pattern.startswith("*"):
        return pattern
    return os.path.join(base, pattern)


_PROFILE_KEYS = {
    "mode": str, "sbcc": bool, "abi": str, "runtime": str, "compiler": str,
    "exclude-file": list, "exclude-function": list, "only-file": list, "only-function": list,
    "annotation": list,
    "analyze": bool, "cflags": list,
}


def load_profile(path: str) -> dict[str, Any]:
    """Read a kcov-build profile: a TOML file with a [kcov-build] table."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the backport (a dependency there)
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such profile") from None
    except OSError as e:
        raise SettingsError(f"{path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingsError(f"{path}: not a valid TOML profile: {e}") from None
    table = data.get("kcov-build")
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: no [kcov-build] table")
    for key, value in table.items():
        want = _PROFILE_KEYS.get(key)
        if want is None:
            raise SettingsError(f"{path}: unknown key '{key}' (known: {', '.join(sorted(_PROFILE_KEYS))})")
        if not isinstance(value, want) or (want is list and not all(isinstance(v, str) for v in value)):
            raise SettingsError(f"{path}: '{key}' must be a {'list of strings' if want is list else want.__name__}")
    base = os.path.dirname(os.path.abspath(path))
    for key in ("exclude-file", "only-file"):
        if key in table:
            # Globs in a profile are relative to the profile, like an include.
            table[key] = [absolute_glob(g, base) for g in table[key]]
    return table


def check_values(s: Settings) -> None:
    if not s.sancov and not s.sbcc and not s.pgo_generate and not s.pgo_use:
        raise SettingsError("nothing to instrument: give --mode or --sbcc")
    if s.mode not in MODES:
        raise SettingsError(f"mode '{s.mode}' is not one of {', '.join(sorted(MODES))}")
    if s.abi is not None and s.abi not in ABIS:
        raise SettingsError(f"abi '{s.abi}' is not one of {', '.join(ABIS)}")
    if s.runtime not in RUNTIMES:
        raise SettingsError(f"runtime '{s.runtime}' is not one of {', '.join(RUNTIMES)}")


def sbcc_raw_version(version: tuple[int, ...]) -> int | None:
    """The raw profile version a clang of this version writes, if our
    runtime writes it too (InstrProfData.inc of LLVM 14, 16 and 19)."""
    if not version:
        return None
    major = version[0]
    if 14 <= major <= 17:
        return 8
    if 19 <= major <= 22:
        return 10
    return None


def capability_error(s: Settings, cc: str) -> str | None:
    """A message if the compiler cannot do what the settings ask for."""
    v = ".".join(map(str, s.version))
    if s.pgo_generate or s.pgo_use:
        from .pgo import capability_error as pgo_error

        msg = pgo_error(s, cc)
        if msg is not None:
            return msg
    if s.sbcc:
        if s.family != "clang":
            return (
                f"--sbcc needs clang: {cc} is {'GCC' if s.family == 'gcc' else 'not clang'}, and source-based "
                "coverage is clang's -fprofile-instr-generate -fcoverage-mapping (gcc's --coverage is gcov)"
            )
        if s.version and sbcc_raw_version(s.version) is None:
            return (
                f"--sbcc: {cc} is clang {v}, whose raw profile format the kcov profile runtime does not write "
                "(it writes v8 for clang 14-17 and v10 for clang 19-22)"
            )
        if (s.exclude_functions or s.only_functions) and not s.sancov:
            return (
                "--exclude-function and --only-function apply to SanitizerCoverage (--mode), not to --sbcc; "
                "use --exclude-file or --only-file"
            )
    if s.family == "gcc" and s.version:
        if s.version < (6,):
            return f"{cc} is GCC {v}, which has no -fsanitize-coverage=trace-pc (GCC 6 added it); use GCC >= 6 or clang"
        if s.sancov and "cmp" in s.mode and s.version < (8,):
            return (
                f"{cc} is GCC {v}, which has no -fsanitize-coverage=trace-cmp (GCC 8 added it); "
                "use --mode pc or a newer compiler"
            )
    if s.family == "clang" and s.version and s.version < (13,) and (s.exclude_functions or s.exclude_files or s.only_functions):
        return f"{cc} is clang {v}, which has no -fsanitize-coverage-ignorelist/-allowlist (clang 13 added them)"
    if s.family != "clang" and s.only_functions:
        return (
            f"{cc} is not clang: gcc has no SanitizerCoverage allowlist, so --only-function "
            "cannot be honoured; use clang, or --only-file"
        )
    if s.family == "other" and (s.exclude_functions or s.annotations):
        return f"{cc} is neither clang nor gcc; kcov-build cannot apply function exclusions with it"
    return None


def progress(msg: str) -> None:
    print(f"kcov-build: {msg}", file=sys.stderr, flush=True)
