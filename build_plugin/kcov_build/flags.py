"""The compiler and linker flags kcov-build injects, from the settings.

Below the PGO profile checks, the wrapper and the build, which all build
command lines from these; above the settings and the toolchain.
"""
from __future__ import annotations

from ._paths import RuntimePaths
from .settings import MODES, SBCC_FLAGS, Settings
from .toolchain import sbcc_raw_version

GENERATE_FLAGS = ("-fprofile-generate",)


def compile_flags(s: Settings) -> list[str]:
    """What a compile gets for --pgo-generate / --pgo-use."""
    flags = list(GENERATE_FLAGS) if s.pgo_generate else []
    if s.pgo_use:
        flags.append(f"-fprofile-instr-use={s.pgo_use}")
    return flags


def conflict(sbcc: bool, generate: bool, use: str | None) -> str | None:
    """A message if the PGO options cannot go together."""
    if generate and sbcc:
        return ("--pgo-generate and --sbcc cannot be combined: clang instruments either at the IR level "
                "(PGO) or in the frontend (source-based coverage), not both")
    if use and (generate or sbcc):
        return "--pgo-use builds optimised code without profile instrumentation: drop --pgo-generate and --sbcc"
    return None


def coverage_flags(mode: str) -> list[str]:
    return [f"-fsanitize-coverage={MODES[mode]}"]


def instrumentation_flags(s: Settings) -> list[str]:
    """What a compile gets: SanitizerCoverage (--mode), source-based
    coverage (--sbcc), or both."""
    return [*(coverage_flags(s.mode) if s.sancov else []), *(SBCC_FLAGS if s.sbcc else []), *compile_flags(s)]


def profile_link_flags(s: Settings, paths: RuntimePaths) -> list[str]:
    """--sbcc: the per-image object of our profile runtime, for the raw
    profile version of the clang at hand.  It also defines
    __llvm_profile_runtime, so that the driver's -u__llvm_profile_runtime
    pulls nothing from compiler-rt's libclang_rt.profile.a (which the
    driver adds to any link that carries -fprofile-instr-generate).  The
    same for --pgo-generate (-fprofile-generate), whose value-profiling
    entry points the object defines too."""
    if not s.sbcc and not s.pgo_generate:
        return []
    version = sbcc_raw_version(s.version) if s.family == "clang" else None
    return [str(paths.profile_stub(version))]


def include_flags(paths: RuntimePaths, abi: str | None) -> list[str]:
    flags = [f"-I{paths.include_dir}"]
    if abi is not None:
        flags.insert(0, f"-I{paths.compat_dir / abi}")
    return flags


def link_flags(paths: RuntimePaths, static: bool) -> list[str]:
    if static:
        # Appended after the user's inputs, so the archive resolves their
        # references to the callbacks.
        return [str(paths.static_lib), "-lpthread"]
    # --no-as-needed: a DSO whose only references to the runtime are weak or
    # come from objects linked later must still record DT_NEEDED, or the
    # callbacks bind to nothing at run time.
    return [
        f"-L{paths.lib_dir}",
        "-Wl,--push-state,--no-as-needed",
        "-lkcovrt",
        "-Wl,--pop-state",
        f"-Wl,-rpath,{paths.lib_dir}",
    ]
