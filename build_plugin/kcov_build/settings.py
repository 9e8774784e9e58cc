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
import os
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


_PROFILE_KEYS: dict[str, type] = {
    "mode": str, "sbcc": bool, "abi": str, "runtime": str, "compiler": str,
    "exclude-file": list, "exclude-function": list, "only-file": list, "only-function": list,
    "annotation": list,
    "analyze": bool, "cflags": list,
}


def load_profile(path: str) -> dict[str, Any]:
    """Read a kcov-build profile: a TOML file with a [kcov-build] table."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python < 3.11: the backport (a dependency there)
        import tomli as tomllib

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
        if not isinstance(value, want) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
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


def progress(msg: str) -> None:
    print(f"kcov-build: {msg}", file=sys.stderr, flush=True)
