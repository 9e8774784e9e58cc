"""kcov-build config: read a kernel configuration and say whether kcov is on.

    kcov-build config FILE [FILE ...] [--os auto|freebsd|linux|netbsd|openbsd]
                      [--search DIR ...] [--write OUT] [--compiler CC]
                      [-r | --redundant] [--json]

A kernel only has kcov when its configuration asks for it, and each kernel
asks differently (spec bsd-kcov.md §1.2 and the table at its top,
linux-kcov.md §3.1):

  FreeBSD   options COVERAGE   instruments the kernel (sys/conf/kern.pre.mk)
            options KCOV       /dev/kcov, the consumer of the coverage hooks
  NetBSD    makeoptions KCOV=1 compiles with -fsanitize-coverage (kcov(4))
            options KCOV       /dev/kcov
  OpenBSD   pseudo-device kcov /dev/kcov; the count is conventionally 1
  Linux     CONFIG_KCOV=y, CONFIG_DEBUG_FS=y (/sys/kernel/debug/kcov lives in
            debugfs), CONFIG_KCOV_ENABLE_COMPARISONS=y (comparison records),
            CONFIG_KCOV_INSTRUMENT_ALL=y (otherwise only files that opt in
            are instrumented, and allnoconfig/tinyconfig turn it off)

Reading follows the real tools, so that the verdict matches what the kernel
build will do:

* BSD files are read the way config(8) reads them: '#' comments, a line that
  starts with a blank continues the previous one, statements apply in order.
  FreeBSD `nooptions X` after `options X` is legal and removes it (config.y
  rmopt_schedule), so it is no conflict; the conflict we report is a second
  `machine` with another value, which FreeBSD's config.y rejects.  NetBSD
  (sem.c, current) warns and replaces a repeated `options`, but a repeated
  `pseudo-device` or `no pseudo-device` of an undefined one is an error.
  OpenBSD's config(8) rejects any repeated `option`, `makeoptions` or
  `pseudo-device`.
* `include` is resolved against the including file's directory, then the
  places config(8) itself looks (FreeBSD: ../../conf next to it; NetBSD and
  OpenBSD: the source root, three levels above the top-level conf
  directory), then each --search DIR.  An include that is not found is not
  an error: config files for GENERIC-based kernels are routinely read
  without a source tree.  It is reported on stderr and in the report as
  "not read", and coverage is judged from the files that were read (GENERIC
  does not enable coverage on any of the three).  A missing top-level FILE
  is an error (66).  An include cycle is a data error (65).
* Linux fragments are merged in order with the semantics of
  scripts/kconfig/merge_config.sh -m: the first FILE is the base, a later
  fragment's assignment replaces every earlier line naming the symbol, and
  each redefinition is reported on stderr in merge_config.sh's words ("Value
  of CONFIG_X is redefined by fragment F:").  -r also reports redundant
  repeats, like merge_config.sh -r.  Inside one fragment merge_config.sh
  notices nothing and Kconfig would only warn "override: reassigning"; a
  fragment that gives one symbol two different values contradicts itself,
  so that is reported as a conflict (65).

--write OUT writes the merged configuration atomically, with whatever
coverage options were missing added at the end: for Linux the merged
fragment (as merge_config.sh -m writes it; the added options are merged as
one more fragment), for the BSDs one flattened file with every include that
was read inlined between marker comments and every include that was not
read kept as an include line.

--compiler CC compiles a small C file with -fsanitize-coverage=trace-pc and
with -fsanitize-coverage=trace-cmp, each on its own, and reports which the
compiler rejects.

Exit status: 0 coverage is on (with --write: in the written file; with
--compiler: and the compiler accepts both flags), 1 it is not (the report
names what is missing), 64 bad usage, 65 malformed or contradictory
configuration, include cycle, or an OS that cannot be told apart, 66 a FILE
does not exist, 69 the compiler cannot be run, 73 OUT cannot be written.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from os import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_OK, EX_UNAVAILABLE, EX_USAGE
from pathlib import Path
from typing import Any, Iterable, Sequence

from kcov._base.errors import ArgumentParser, ToolkitError, run_cli

from . import _util

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


# --------------------------------------------------------------------------
# BSD config(8) files


@dataclass
class Token:
    text: str
    quoted: bool = False
    glued: bool = False  # no blank between this token and the previous one


@dataclass
class Stmt:
    tokens: list[Token]
    file: Path
    first: int  # 1-based line numbers spanned (continuations included)
    last: int

    @property
    def where(self) -> Where:
        return Where(str(self.file), self.first)

    def fail(self, message: str) -> ConfigError:
        return ConfigError(EX_DATAERR, f"{self.file}:{self.first}: {message}")


_TOKEN_BREAK = set(' \t,=";')


def _strip_comment(line: str) -> str:
    quoted = False
    for i, c in enumerate(line):
        if c == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
    return line


def _tokenize(text: str, where: str) -> list[list[Token]]:
    """Split one logical line into statements (';'-separated) of tokens."""
    stmts: list[list[Token]] = [[]]
    i = 0
    glued = False
    while i < len(text):
        c = text[i]
        if c in " \t\f\r":
            i += 1
            glued = False
            continue
        if c == ";":
            stmts.append([])
            i += 1
        elif c == "+" and text[i + 1 : i + 2] == "=":
            stmts[-1].append(Token("+=", glued=glued))
            i += 2
        elif c in ",=":
            stmts[-1].append(Token(c, glued=glued))
            i += 1
        elif c == '"':
            j = i + 1
            while j < len(text) and not (text[j] == '"' and text[j - 1] != "\\"):
                j += 1
            if j >= len(text):
                raise ConfigError(EX_DATAERR, f"{where}: closing quote missing")
            stmts[-1].append(Token(text[i + 1 : j], quoted=True, glued=glued))
            i = j + 1
        else:
            j = i + 1
            while j < len(text) and text[j] not in _TOKEN_BREAK and text[j : j + 2] != "+=":
                j += 1
            stmts[-1].append(Token(text[i:j], glued=glued))
            i = j
        glued = True
    return [s for s in stmts if s]


def bsd_statements(text: str, path: Path) -> list[Stmt]:
    """Logical statements of a config(8) file, as its lexer sees them."""
    out: list[Stmt] = []
    pending: tuple[str, int, int] | None = None

    def flush() -> None:
        if pending is not None:
            body, first, last = pending
            for toks in _tokenize(body, f"{path}:{first}"):
                out.append(Stmt(toks, path, first, last))

    for n, raw in enumerate(text.splitlines(), 1):
        body = _strip_comment(raw)
        # config(8): a newline followed by a blank is a continuation.
        if raw[:1] in (" ", "\t") and pending is not None:
            pending = (pending[0] + " " + body, pending[1], n)
            continue
        flush()
        pending = (body, n, n) if body.strip() else None
    flush()
    return out


# Keywords each config(8) accepts at the start of a statement in a kernel
# configuration file.  Statements we do not interpret are accepted and kept.
_FREEBSD_KW = {
    "config", "cpu", "nocpu", "device", "devices", "nodevice", "nodevices", "env", "envvar",
    "hints", "ident", "machine", "makeoptions", "makeoption", "nomakeoption", "nomakeoptions",
    "maxusers", "profile", "option", "options", "nooption", "nooptions", "include", "files",
}
_NETBSD_KW = {
    "include", "cinclude", "options", "makeoptions", "pseudo-device", "no", "machine", "ident",
    "maxusers", "file-system", "select", "config", "maxpartitions", "pseudo-root", "prefix",
    "buildprefix", "defflag", "defparam", "defopt", "deffs", "defpseudo", "defpseudodev", "define",
    "device", "attach", "file", "object", "version", "package", "obsolete", "ioconf", "devclass",
    "device-major", "mkflagvar", "makeoption", "option",
}
_OPENBSD_KW = {
    "include", "option", "options", "rmoption", "rmoptions", "makeoption", "makeoptions",
    "pseudo-device", "machine", "maxusers", "config", "maxpartitions", "define", "defopt",
    "device", "attach", "file", "object", "major", "disable", "enable",
}
_KEYWORDS = {"freebsd": _FREEBSD_KW, "netbsd": _NETBSD_KW, "openbsd": _OPENBSD_KW}


def _is_attachment(stmt: Stmt) -> bool:
    """`pci* at mainbus? bus ?`, `no foo0 at bar?`: a device instance line."""
    words = [t.text for t in stmt.tokens if not t.quoted]
    return len(words) >= 3 and words[1] == "at"


def _option_list(stmt: Stmt, start: int, os_: str) -> list[tuple[str, str | None, bool]]:
    """NAME[=VALUE|+=VALUE], comma-separated, from tokens[start:]."""
    toks = stmt.tokens[start:]
    items: list[tuple[str, str | None, bool]] = []
    i = 0
    while i < len(toks):
        name = toks[i]
        if name.text in (",", "=", "+=") and not name.quoted:
            raise stmt.fail(f"expected an option name, found '{name.text}'")
        if os_ == "freebsd" and name.quoted and "=" in name.text:
            raise stmt.fail("The `=' in options should not be quoted")
        i += 1
        value: str | None = None
        append = False
        if i < len(toks) and not toks[i].quoted and toks[i].text in ("=", "+="):
            append = toks[i].text == "+="
            i += 1
            if i == len(toks) or (not toks[i].quoted and toks[i].text == "," and os_ != "freebsd"):
                raise stmt.fail(f"option {name.text}: value missing after '='")
            # The value runs to the next blank; FreeBSD's lexer keeps commas
            # in it (lang.l TOEOL), the others end it at a comma.
            parts = [toks[i]]
            i += 1
            while i < len(toks) and toks[i].glued and (os_ == "freebsd" or toks[i].quoted or toks[i].text != ","):
                parts.append(toks[i])
                i += 1
            value = "".join(f'"{t.text}"' if t.quoted else t.text for t in parts)
        items.append((name.text, value, append))
        if i < len(toks):
            if toks[i].text != "," or toks[i].quoted:
                raise stmt.fail(f"unexpected '{toks[i].text}' after option {name.text}")
            i += 1
            if i == len(toks):
                raise stmt.fail("option list ends with ','")
    if not items:
        raise stmt.fail(f"'{stmt.tokens[0].text}' needs at least one name")
    return items


class BsdReader:
    """Reads a config(8) file and its includes into a Result."""

    def __init__(self, os_: str, search: Sequence[Path]) -> None:
        self.os = os_
        self.search = list(search)
        self.result = Result(os_)
        self.stack: list[Path] = []
        self.top_dir: Path | None = None

    # -- include resolution ------------------------------------------------
    def _candidates(self, name: str, including: Path) -> list[Path]:
        p = Path(name)
        if p.is_absolute():
            return [p]
        if self.os == "openbsd" and name.startswith("../../../"):
            name = name[9:]  # config(8)'s own kludge for files.* paths
        c = [including.parent / name]
        if self.os == "freebsd":
            c.append(including.parent / "../../conf" / name)
        elif self.top_dir is not None:
            c.append(self.top_dir / "../../.." / name)  # config(8)'s default srcdir
        c += [d / name for d in self.search]
        return c

    def _resolve(self, stmt: Stmt) -> tuple[Path | None, list[str], str, bool]:
        toks = stmt.tokens
        optional = toks[0].text == "cinclude"
        if len(toks) != 2:
            raise stmt.fail(f"'{toks[0].text}' takes exactly one file name")
        name = toks[1].text
        cands = self._candidates(name, stmt.file)
        for c in cands:
            if c.is_file():
                return c.resolve(), [], name, optional
        return None, [os.path.normpath(str(c)) for c in cands], name, optional

    # -- reading -------------------------------------------------------------
    def read_top(self, path: Path) -> None:
        if self.top_dir is None:
            self.top_dir = path.parent
        self.result.text += self._read(path, top=True)

    def _read(self, path: Path, *, top: bool = False) -> str:
        real = path.resolve()
        if real in self.stack:
            chain = " -> ".join(str(p) for p in [*self.stack, real])
            raise ConfigError(EX_DATAERR, f"{path}: include cycle: {chain}")
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise ConfigError(EX_DATAERR, f"{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise ConfigError(EX_NOINPUT, f"{path}: no such file") from None
        except IsADirectoryError:
            raise ConfigError(EX_NOINPUT, f"{path}: is a directory, not a configuration file") from None
        except OSError as e:
            raise ConfigError(EX_NOINPUT, f"{path}: {e.strerror}") from None
        self.stack.append(real)
        self.result.files.append(str(path))
        raw = text.splitlines()
        out: list[str] = []
        cursor = 0
        for stmt in bsd_statements(text, path):
            head = stmt.tokens[0]
            if head.quoted:
                raise stmt.fail(f"expected a keyword, found \"{head.text}\"")
            if head.text in ("include", "cinclude") and head.text in _KEYWORDS[self.os]:
                found, searched, name, optional = self._resolve(stmt)
                if found is None:
                    if not optional:
                        self.result.unresolved.append(Unresolved(name, stmt.where, searched))
                    continue
                out += raw[cursor : stmt.first - 1]
                out.append(f"# kcov-build: begin of inlined {_unparse_words(stmt)} ({found})")
                inner = self._read(found)
                out += inner.splitlines()
                out.append(f"# kcov-build: end of inlined {_unparse_words(stmt)}")
                cursor = stmt.last
                continue
            self._apply(stmt)
        out += raw[cursor:]
        self.stack.pop()
        return "\n".join(out) + ("\n" if out else "")

    # -- semantics ------------------------------------------------------------
    def _warn(self, stmt: Stmt, message: str) -> None:
        self.result.warnings.append(f"{stmt.where}: {message}")

    def _apply(self, stmt: Stmt) -> None:
        kw = stmt.tokens[0].text
        if kw not in _KEYWORDS[self.os]:
            if self.os != "freebsd" and _is_attachment(stmt):
                return
            raise stmt.fail(f"unknown keyword '{kw}' for a {self.os} kernel configuration")
        handler = getattr(self, f"_{self.os}", None)
        assert handler is not None
        handler(kw, stmt)

    def _set(self, key: str, value: str | None, stmt: Stmt) -> None:
        self.result.state[key] = (value, stmt.where)

    def _args(self, stmt: Stmt, n: int = 1) -> list[str]:
        words = [t.text for t in stmt.tokens[1:]]
        if len(words) < n:
            raise stmt.fail(f"'{stmt.tokens[0].text}' needs an argument")
        return words

    def _freebsd(self, kw: str, stmt: Stmt) -> None:
        st = self.result.state
        if kw in ("options", "option"):
            for name, value, _ in _option_list(stmt, 1, "freebsd"):
                prev = st.get(f"options:{name}")
                if prev is not None and value is not None and prev[0] != value:
                    self._warn(stmt, f"option {name} redefined from {prev[0]} to {value}")
                self._set(f"options:{name}", value, stmt)
        elif kw in ("nooptions", "nooption"):
            for name, _, _ in _option_list(stmt, 1, "freebsd"):
                st.pop(f"options:{name}", None)
        elif kw in ("makeoptions", "makeoption"):
            for name, value, append in _option_list(stmt, 1, "freebsd"):
                prev = st.get(f"makeoptions:{name}")
                if prev is not None and append:
                    self._set(f"makeoptions:{name}", f"{prev[0]} {value}", stmt)
                elif prev is not None:
                    # config.y newopt(dupe=0): the first definition stays.
                    self._warn(stmt, f"duplicate option `{name}' encountered (the first one stays)")
                else:
                    self._set(f"makeoptions:{name}", value or "", stmt)
        elif kw in ("nomakeoption", "nomakeoptions"):
            st.pop(f"makeoptions:{self._args(stmt)[0]}", None)
        elif kw in ("device", "devices"):
            for name, _, _ in _option_list(stmt, 1, "freebsd"):
                if f"device:{name}" in st:
                    self._warn(stmt, f"duplicate device `{name}' encountered")
                    continue
                self._set(f"device:{name}", None, stmt)
        elif kw in ("nodevice", "nodevices"):
            for name, _, _ in _option_list(stmt, 1, "freebsd"):
                st.pop(f"device:{name}", None)
        elif kw == "machine":
            words = self._args(stmt)
            value = " ".join(words)
            prev = st.get("machine")
            if prev is not None and prev[0] != value:
                raise stmt.fail(f"only one machine directive is allowed (already 'machine {prev[0]}' at {prev[1]})")
            self._set("machine", value, stmt)
        elif kw == "ident":
            self._set("ident", self._args(stmt)[0], stmt)
        elif kw == "cpu":
            self._set(f"cpu:{self._args(stmt)[0]}", None, stmt)
        elif kw == "nocpu":
            st.pop(f"cpu:{self._args(stmt)[0]}", None)
        else:
            self._args(stmt)  # maxusers, env, hints, files, ...: need an argument

    def _netbsd(self, kw: str, stmt: Stmt) -> None:
        st = self.result.state
        if kw == "no":
            if len(stmt.tokens) < 2:
                raise stmt.fail("'no' needs what to remove")
            what = stmt.tokens[1].text
            if what in ("options", "option", "makeoptions", "makeoption"):
                kind = "options" if what.startswith("option") else "makeoptions"
                for name, _, _ in _option_list(stmt, 2, "netbsd"):
                    if st.pop(f"{kind}:{name}", None) is None:
                        self._warn(stmt, f"{kind} `{name}' is not defined")
            elif what == "pseudo-device":
                words = self._args(stmt, 2)
                if st.pop(f"pseudo-device:{words[1]}", None) is None:
                    raise stmt.fail(f"`{words[1]}' not defined (no pseudo-device of an undefined pseudo-device)")
            elif what == "ident":
                st.pop("ident", None)
            return
        if kw in ("options", "option"):
            for name, value, _ in _option_list(stmt, 1, "netbsd"):
                prev = st.get(f"options:{name}")
                if prev is not None:
                    shown = name if prev[0] is None else f"{name}={prev[0]}"
                    self._warn(stmt, f"already have options `{shown}' (replaced; set at {prev[1]})")
                self._set(f"options:{name}", value, stmt)
        elif kw in ("makeoptions", "makeoption"):
            for name, value, append in _option_list(stmt, 1, "netbsd"):
                prev = st.get(f"makeoptions:{name}")
                if append and prev is not None:
                    self._set(f"makeoptions:{name}", f"{prev[0]} {value}", stmt)
                    continue
                if prev is not None:
                    self._warn(stmt, f"already have makeoptions `{name}={prev[0]}' (replaced; set at {prev[1]})")
                self._set(f"makeoptions:{name}", value, stmt)
        elif kw == "pseudo-device":
            self._pseudo(stmt)
        elif kw == "machine":
            self._set("machine", " ".join(self._args(stmt)), stmt)
        elif kw == "ident":
            self._set("ident", self._args(stmt)[0], stmt)

    def _openbsd(self, kw: str, stmt: Stmt) -> None:
        st = self.result.state
        if kw in ("options", "option", "makeoptions", "makeoption"):
            kind = "options" if kw.startswith("option") else "makeoptions"
            for name, value, _ in _option_list(stmt, 1, "openbsd"):
                prev = st.get(f"{kind}:{name}")
                if prev is not None:
                    shown = name if prev[0] is None else f"{name}={prev[0]}"
                    raise stmt.fail(f"already have {kind} `{shown}' (set at {prev[1]}; "
                                    "OpenBSD config(8) rejects a repeat)")
                self._set(f"{kind}:{name}", value, stmt)
        elif kw in ("rmoption", "rmoptions"):
            for name, _, _ in _option_list(stmt, 1, "openbsd"):
                st.pop(f"options:{name}", None)
        elif kw == "pseudo-device":
            self._pseudo(stmt)
        elif kw == "machine":
            self._set("machine", " ".join(self._args(stmt)), stmt)

    def _pseudo(self, stmt: Stmt) -> None:
        words = self._args(stmt)
        name = words[0]
        count: str | None = None
        if len(words) >= 2:
            count = words[1]
            if not re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", count):
                raise stmt.fail(f"pseudo-device {name}: count '{count}' is not a number")
        if len(words) > 2:
            raise stmt.fail(f"pseudo-device {name}: unexpected '{words[2]}'")
        prev = self.result.state.get(f"pseudo-device:{name}")
        if prev is not None:
            raise stmt.fail(f"`{name}' already defined (pseudo-device at {prev[1]})")
        self._set(f"pseudo-device:{name}", count, stmt)


def _unparse_words(stmt: Stmt) -> str:
    return " ".join(f'"{t.text}"' if t.quoted else t.text for t in stmt.tokens)


def _bsd_additions(result: Result, missing: Iterable[Requirement]) -> list[str]:
    lines: list[str] = []
    for req in missing:
        if result.os == "netbsd" and req.key == "makeoptions:KCOV" and req.key in result.state:
            lines.append("no makeoptions KCOV")  # replace a KCOV=0 without a warning
        lines.append(req.text)
    return lines


# --------------------------------------------------------------------------
# Linux .config and fragments

_LX_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_LX_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_LX_VALUE = re.compile(r'^(?:[ynm]|-?\d+|0[xX][0-9a-fA-F]+|"(?:[^"\\]|\\.)*")$')


@dataclass
class Assignment:
    sym: str
    value: str  # "n" for "# CONFIG_X is not set"
    line: int
    raw: str


def parse_fragment(text: str, path: str) -> list[Assignment]:
    """The assignments of one fragment, checking syntax and self-contradiction."""
    out: list[Assignment] = []
    seen: dict[str, Assignment] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        m = _LX_SET.match(line)
        if m:
            sym, value = m.group(1), m.group(2)
            if not _LX_VALUE.match(value):
                raise ConfigError(EX_DATAERR, f"{path}:{n}: bad value for {sym}: '{value}' "
                                  "(expected y, m, n, a number or a quoted string)")
            a = Assignment(sym, value, n, line)
        else:
            m = _LX_UNSET.match(line)
            if m:
                a = Assignment(m.group(1), "n", n, line)
            elif not line.strip() or line.lstrip().startswith("#"):
                continue
            else:
                raise ConfigError(EX_DATAERR, f"{path}:{n}: not a Kconfig line: '{line.strip()}' "
                                  "(expected CONFIG_NAME=VALUE, '# CONFIG_NAME is not set' or a comment)")
        prev = seen.get(a.sym)
        if prev is not None and prev.value != a.value:
            raise ConfigError(EX_DATAERR, f"{path}:{n}: conflicting values for {a.sym} in one fragment: "
                              f"'{prev.raw}' at line {prev.line}, '{a.raw}' here")
        seen[a.sym] = a
        out.append(a)
    return out


def _words(lines: Sequence[str]) -> str:
    """`echo $VAR` of grep output in merge_config.sh: words joined by one space."""
    return " ".join(" ".join(lines).split())


def merge_fragments(frags: Sequence[tuple[str, str]], redundant: bool) -> tuple[str, list[str]]:
    """merge_config.sh -m on (name, text) pairs: the merged text and its messages.

    The first is the base.  For each symbol a later fragment assigns, every
    line of the merged text matching /SYM[ =]/ is deleted before the fragment
    is appended, as the script's sed does; the messages reproduce its echo
    output (grep -w lines, word-split by the shell).
    """
    merged = frags[0][1]
    messages: list[str] = []
    for name, text in frags[1:]:
        frag_lines = text.splitlines()
        cfgs = [m.group(1) for line in frag_lines for m in [_LX_SET.match(line) or _LX_UNSET.match(line)] if m]
        for cfg in cfgs:
            word = re.compile(rf"(?<![A-Za-z0-9_]){cfg}(?![A-Za-z0-9_])")
            tmp_lines = merged.splitlines(keepends=True)
            prev = [ln.rstrip("\n") for ln in tmp_lines if word.search(ln)]
            if not prev:
                continue
            new = [ln for ln in frag_lines if word.search(ln)]
            if "\n".join(prev) != "\n".join(new):
                messages += [f"Value of {cfg} is redefined by fragment {name}:",
                             f"Previous value: {_words(prev)}", f"New value: {_words(new)}", ""]
            elif redundant:
                messages.append(f"Value of {cfg} is redundant by fragment {name}:")
            kill = re.compile(rf"{cfg}[ =]")
            merged = "".join(ln for ln in tmp_lines if not kill.search(ln))
        merged += "\n" + text
    return merged, messages


def read_linux(paths: Sequence[Path], redundant: bool) -> Result:
    result = Result("linux")
    frags: list[tuple[str, str]] = []
    origin: dict[str, tuple[str, Where]] = {}
    for p in paths:
        text = _read_top(p)
        for a in parse_fragment(text, str(p)):
            origin[a.sym] = (a.value, Where(str(p), a.line))
        frags.append((str(p), text))
        result.files.append(str(p))
    result.text, result.redefinitions = merge_fragments(frags, redundant)
    result.state = linux_state(result.text, origin)
    return result


def linux_state(text: str, origin: dict[str, tuple[str, Where]] | None = None) -> dict[str, tuple[str | None, Where]]:
    """Symbol values of a merged text, last assignment winning as in Kconfig."""
    state: dict[str, tuple[str | None, Where]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _LX_SET.match(line) or _LX_UNSET.match(line)
        if m:
            value = m.group(2) if m.re is _LX_SET else "n"
            where = Where("<merged>", n)
            if origin is not None and origin.get(m.group(1), ("", where))[0] == value:
                where = origin[m.group(1)][1]
            state[m.group(1)] = (value, where)
    return state


# --------------------------------------------------------------------------
# Common driver


def _read_top(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise ConfigError(EX_NOINPUT, f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(EX_NOINPUT, f"{path}: is a directory, not a configuration file") from None
    except OSError as e:
        raise ConfigError(EX_NOINPUT, f"{path}: {e.strerror}") from None


_RCS = {"freebsd": "$FreeBSD", "netbsd": "$NetBSD", "openbsd": "$OpenBSD"}


def detect_os(paths: Sequence[Path]) -> str:
    """Tell the kernel from the top-level files' content (path names break ties)."""
    score = dict.fromkeys(OSES, 0)
    linux_lines = 0
    bsd_lines = 0
    for p in paths:
        text = _read_top(p)
        for os_, tag in _RCS.items():
            if tag in text:
                score[os_] += 10
        for raw in text.splitlines():
            if _LX_SET.match(raw) or _LX_UNSET.match(raw):
                linux_lines += 1
                continue
            body = _strip_comment(raw).split()
            if not body:
                continue
            if body[0].startswith("CONFIG_"):  # a malformed Kconfig line is still Kconfig
                linux_lines += 1
                continue
            bsd_lines += 1
            kw = body[0]
            if kw in ("nooptions", "nooption", "nodevice", "nodevices", "device", "devices", "cpu", "nocpu",
                      "nomakeoption", "nomakeoptions", "hints", "env", "envvar", "files", "profile"):
                score["freebsd"] += 3
            elif kw in ("no", "file-system", "cinclude", "select", "pseudo-root"):
                score["netbsd"] += 3
            elif kw in ("rmoption", "rmoptions", "option"):
                score["openbsd"] += 3
            elif kw == "include" and len(body) > 1:
                if body[1].startswith('"arch/'):
                    score["netbsd"] += 1
                    score["openbsd"] += 1
                elif not body[1].startswith('"'):
                    score["freebsd"] += 1
            elif kw == "pseudo-device" and body[1:2] == ["kcov"]:
                score["openbsd"] += 3
            elif kw == "pseudo-device":
                score["netbsd"] += 1
                score["openbsd"] += 1
            elif kw == "makeoptions" and len(body) > 1 and body[1].startswith("KCOV"):
                score["netbsd"] += 3
            elif kw in ("ident", "machine", "options", "makeoptions", "maxusers"):
                for os_ in ("freebsd", "netbsd", "openbsd"):
                    score[os_] += 1
            elif len(body) > 2 and body[1] == "at":
                score["netbsd"] += 1
                score["openbsd"] += 1
    if linux_lines and not bsd_lines:
        return "linux"
    if not linux_lines and not bsd_lines:
        if any(p.suffix == ".config" or p.name.startswith(".config") for p in paths):
            return "linux"
    best = max(score.values())
    leaders = [os_ for os_, s in score.items() if s == best and os_ != "linux"]
    if best > 0 and len(leaders) > 1:
        hinted = [os_ for os_ in leaders if any(os_ in (part.lower() for part in p.parts) for p in paths)]
        if len(hinted) == 1:
            return hinted[0]
    if best > 0 and len(leaders) == 1 and not linux_lines:
        return leaders[0]
    names = ", ".join(str(p) for p in paths)
    raise ConfigError(EX_DATAERR, f"{names}: cannot tell which kernel this configuration is for; pass --os")


def read_config(paths: Sequence[Path], os_: str = "auto", search: Sequence[Path] = (),
                redundant: bool = False) -> Result:
    """Read FILEs (merged in order) into a Result; raises ConfigError."""
    for p in paths:
        _read_top(p)  # a missing FILE is 66 before anything else is said
    if os_ == "auto":
        os_ = detect_os(paths)
    if os_ == "linux":
        return read_linux(paths, redundant)
    reader = BsdReader(os_, search)
    for p in paths:
        reader.read_top(p)
    return reader.result


def added_lines(result: Result) -> list[str]:
    missing = result.missing()
    if not missing:
        return []
    if result.os == "linux":
        return [r.text for r in missing]
    return _bsd_additions(result, missing)


ADDED_HEADER = "# kcov-build: coverage options added by kcov-build config --write"
ADDED_FRAGMENT = "<kcov-build coverage options>"


def with_coverage(result: Result, redundant: bool = False) -> tuple[str, list[str]]:
    """The text --write produces, and merge messages for the added options."""
    extra = added_lines(result)
    if not extra:
        return result.text, []
    if result.os == "linux":
        return merge_fragments([("<merged>", result.text), (ADDED_FRAGMENT, "\n".join([ADDED_HEADER, *extra]) + "\n")],
                               redundant)
    return result.text + "\n".join(["", ADDED_HEADER, *extra]) + "\n", []


def write_atomic(path: Path, text: str) -> None:
    try:
        _util.write_atomic(path, text, errors="surrogateescape", mkdir=False)
    except OSError as e:
        raise ConfigError(EX_CANTCREAT, f"{path}: cannot write: {e.strerror}") from None


def check_compiler(cc: str) -> dict[str, bool]:
    """Which coverage flags `cc` accepts, by compiling a small file with each."""
    src = "int kcov_probe(int a, int b) { if (a < b) return a; return b; }\n"
    out: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="kcov-cc-") as d:
        c = Path(d) / "probe.c"
        c.write_text(src)
        for flag in COMPILER_FLAGS:
            try:
                p = subprocess.run([cc, "-c", flag, "-o", str(Path(d) / "probe.o"), str(c)],
                                   capture_output=True, text=True, timeout=120, check=False)
            except FileNotFoundError:
                raise ConfigError(EX_UNAVAILABLE, f"compiler '{cc}' not found") from None
            except PermissionError:
                raise ConfigError(EX_UNAVAILABLE, f"compiler '{cc}' is not executable") from None
            except subprocess.TimeoutExpired:
                raise ConfigError(EX_UNAVAILABLE, f"compiler '{cc}' did not finish compiling an empty file") from None
            out[flag] = p.returncode == 0
    return out


# --------------------------------------------------------------------------
# Reports


def _report_json(result: Result, written: str | None, compiler: str | None,
                 flags: dict[str, bool] | None, added: list[str], coverage: bool) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        producer = f"kcov-build {version('kcov')}"
    except Exception:  # noqa: BLE001 - a report without a version is still useful
        producer = "kcov-build"
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "producer": producer,
        "os": result.os,
        "files": result.files,
        "not_read": [{"include": u.name, "at": str(u.where), "searched": u.searched} for u in result.unresolved],
        "warnings": result.warnings,
        "redefinitions": [m for m in result.redefinitions if m],
        "requirements": [
            {"option": r.text, "satisfied": result.satisfied(r), "why": r.why,
             "at": str(result.state[r.key][1]) if result.satisfied(r) else None}
            for r in REQUIREMENTS[result.os]
        ],
        "missing": [r.text for r in result.missing()],
        "compiler": None if compiler is None else {
            "command": compiler, "flags": flags, "missing": [f for f, ok in (flags or {}).items() if not ok]},
        "written": written,
        "added": added,
        "coverage": coverage,
    }


def _report_text(rep: dict[str, Any]) -> str:
    lines = [f"{rep['os']} kernel configuration: {', '.join(rep['files'])}"]
    for u in rep["not_read"]:
        lines.append(f"  not read: include {u['include']} ({u['at']}); coverage judged from the files read")
    for r in rep["requirements"]:
        state = f"set at {r['at']}" if r["satisfied"] else "MISSING"
        lines.append(f"  {r['option']:<36} {state}  ({r['why']})")
    if rep["compiler"] is not None:
        for flag, ok in rep["compiler"]["flags"].items():
            lines.append(f"  {rep['compiler']['command']} {flag:<30} {'accepted' if ok else 'REJECTED'}")
    if rep["written"] is not None:
        what = f"added {', '.join(rep['added'])}" if rep["added"] else "nothing added"
        lines.append(f"  wrote {rep['written']} ({what})")
    verdict = "on" if rep["coverage"] else "off"
    why = []
    if rep["missing"] and not rep["written"]:
        why.append(f"missing {', '.join(rep['missing'])}")
    if rep["compiler"] is not None and rep["compiler"]["missing"]:
        why.append(f"{rep['compiler']['command']} rejects {', '.join(rep['compiler']['missing'])}")
    lines.append(f"coverage: {verdict}" + (f" ({'; '.join(why)})" if why else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=f"{PROG} config", usage_message=lambda prog, message: f"config: {message} (try '{prog} --help')",
        description="Read a kernel configuration and report whether kcov coverage is on and what is missing.",
                epilog="Exit status: 0 coverage on, 1 not on (see the report), 64 usage, 65 malformed or "
                "contradictory configuration or include cycle, 66 missing FILE, 69 compiler unavailable, "
                "73 OUT not writable.")
    p.add_argument("files", nargs="+", metavar="FILE", help="configuration file(s); Linux fragments merge in order")
    p.add_argument("--os", choices=("auto", *OSES), default="auto", help="kernel (default: from the content)")
    p.add_argument("--search", action="append", default=[], metavar="DIR", type=Path,
                   help="also look for included files here (repeatable)")
    p.add_argument("--write", metavar="OUT", type=Path, help="write the merged configuration with coverage on")
    p.add_argument("--compiler", metavar="CC", help="check that CC accepts the coverage flags")
    p.add_argument("-r", "--redundant", action="store_true", help="also report redundant repeats (merge_config.sh -r)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    return p


def main(argv: list[str]) -> int:
    return run_cli(PROG, lambda: _main(argv), interrupted=None)


def _main(argv: list[str]) -> int:
    opts = _parser().parse_args(argv)
    paths = [Path(f) for f in opts.files]
    for d in opts.search:
        if not d.is_dir():
            raise ConfigError(EX_USAGE, f"config: --search {d}: not a directory")
    if opts.write is not None and opts.write.is_dir():
        raise ConfigError(EX_USAGE, f"config: --write {opts.write}: is a directory")
    result = read_config(paths, opts.os, opts.search, opts.redundant)

    for m in result.redefinitions:
        print(m, file=sys.stderr)
    for w in result.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    for u in result.unresolved:
        print(f"{PROG}: note: {u.where}: include {u.name} not found (looked in {', '.join(u.searched)}); "
              "its contents were not read and coverage options are judged from the files that were "
              "(use --search DIR to point at the kernel's conf directory)", file=sys.stderr)

    flags = check_compiler(opts.compiler) if opts.compiler else None
    added: list[str] = []
    coverage = not result.missing()
    if opts.write is not None:
        text, messages = with_coverage(result, opts.redundant)
        for m in messages:
            print(m, file=sys.stderr)
        added = added_lines(result)
        write_atomic(opts.write, text)
        coverage = True
    if flags is not None and not all(flags.values()):
        coverage = False
    rep = _report_json(result, str(opts.write) if opts.write else None, opts.compiler, flags, added, coverage)
    if opts.json:
        print(json.dumps(rep, indent=2))
    else:
        sys.stdout.write(_report_text(rep))
    return EX_OK if coverage else EX_NOT_ON
