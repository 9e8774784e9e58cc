"""kcov-build config's model: what each kernel needs for coverage
(REQUIREMENTS), what was read (Result) and the one error type."""
from __future__ import annotations

from dataclasses import dataclass, field
from os import EX_NOINPUT
from pathlib import Path

from kcov._base.errors import ToolkitError

PROG = "kcov-build"
FORMAT = "kcov-build-config"
FORMAT_VERSION = 1

EX_NOT_ON = 1  # kcov-build config: coverage is not on

OSES = ("freebsd", "linux", "netbsd", "openbsd")
MAX_INCLUDE_DEPTH = 32
COMPILER_FLAGS = ("-fsanitize-coverage=trace-pc", "-fsanitize-coverage=trace-cmp")


class ConfigError(ToolkitError):
    """A problem that ends the command: one stderr line and `exit_status`
    (given first, unlike the other errors: the message is often long)."""

    def __init__(self, exit_status: int, message: str) -> None:
        super().__init__(message, exit_status)
        self.message = message


@dataclass(frozen=True)
class Requirement:
    """One configuration statement coverage needs, and why."""

    key: str  # how the state names it, e.g. "options:KCOV", "CONFIG_KCOV"
    text: str  # the line that satisfies it, as written into a config
    why: str


REQUIREMENTS: dict[str, tuple[Requirement, ...]] = {
    "freebsd": (
        Requirement("options:COVERAGE", "options COVERAGE",
                    "instruments the kernel with -fsanitize-coverage (sys/conf/kern.pre.mk)"),
        Requirement("options:KCOV", "options KCOV", "provides /dev/kcov, the consumer of the coverage hooks"),
    ),
    "netbsd": (
        Requirement("makeoptions:KCOV", "makeoptions KCOV=1",
                    "compiles the kernel with -fsanitize-coverage (kcov(4): makeoptions KCOV)"),
        Requirement("options:KCOV", "options KCOV", "provides /dev/kcov"),
    ),
    "openbsd": (
        Requirement("pseudo-device:kcov", "pseudo-device kcov 1", "provides /dev/kcov (kcov(4))"),
    ),
    "linux": (
        Requirement("CONFIG_KCOV", "CONFIG_KCOV=y", "kcov itself and -fsanitize-coverage=trace-pc"),
        Requirement("CONFIG_DEBUG_FS", "CONFIG_DEBUG_FS=y", "/sys/kernel/debug/kcov lives in debugfs"),
        Requirement("CONFIG_KCOV_ENABLE_COMPARISONS", "CONFIG_KCOV_ENABLE_COMPARISONS=y",
                    "comparison records (KCOV_TRACE_CMP, -fsanitize-coverage=trace-cmp)"),
        Requirement("CONFIG_KCOV_INSTRUMENT_ALL", "CONFIG_KCOV_INSTRUMENT_ALL=y",
                    "otherwise only files that opt in are instrumented"),
    ),
}


@dataclass
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Unresolved:
    name: str
    where: Where
    searched: list[str]


@dataclass
class Result:
    """What was read and what it amounts to; the report is made from this."""

    os: str
    files: list[str] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # key -> (value, where it was set); BSD keys are "kind:NAME".
    state: dict[str, tuple[str | None, Where]] = field(default_factory=dict)
    # Text to write with --write (merged fragment or flattened BSD config).
    text: str = ""
    redefinitions: list[str] = field(default_factory=list)  # merge_config.sh messages

    def satisfied(self, req: Requirement) -> bool:
        entry = self.state.get(req.key)
        if entry is None:
            return False
        value = entry[0]
        if self.os == "linux":
            return value == "y"
        if req.key == "makeoptions:KCOV":
            return value is not None and value.strip('"').isdigit() and int(value.strip('"')) > 0
        return True

    def missing(self) -> list[Requirement]:
        return [r for r in REQUIREMENTS[self.os] if not self.satisfied(r)]



def _read_top(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise ConfigError(EX_NOINPUT, f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(EX_NOINPUT, f"{path}: is a directory, not a configuration file") from None
    except OSError as e:
        raise ConfigError(EX_NOINPUT, f"{path}: {e.strerror}") from None

