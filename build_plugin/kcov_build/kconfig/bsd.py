"""BSD kernel configurations, read the way config(8) reads them (see the
package's docstring): FreeBSD, NetBSD and OpenBSD."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from os import EX_DATAERR
from pathlib import Path
from typing import Iterable, Sequence


from .model import MAX_INCLUDE_DEPTH, ConfigError, Requirement, Result, Unresolved, Where, _read_top




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
        text = _read_top(path)
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


