"""Whether the compiler at hand can do what the settings ask for.

Above the settings and the PGO profile checks (pgo.py), below the wrapper
and the build: both ask capability_error before any compile.
"""
from __future__ import annotations

from .pgo import capability_error as pgo_error
from .settings import Settings
from .toolchain import sbcc_raw_version


def capability_error(s: Settings, cc: str) -> str | None:
    """A message if the compiler cannot do what the settings ask for."""
    v = ".".join(map(str, s.version))
    if s.pgo_generate or s.pgo_use:
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
    lists = s.exclude_functions or s.exclude_files or s.only_functions
    if s.family == "clang" and s.version and s.version < (13,) and lists:
        return f"{cc} is clang {v}, which has no -fsanitize-coverage-ignorelist/-allowlist (clang 13 added them)"
    if s.family != "clang" and s.only_functions:
        return (
            f"{cc} is not clang: gcc has no SanitizerCoverage allowlist, so --only-function "
            "cannot be honoured; use clang, or --only-file"
        )
    if s.family == "other" and (s.exclude_functions or s.annotations):
        return f"{cc} is neither clang nor gcc; kcov-build cannot apply function exclusions with it"
    return None
