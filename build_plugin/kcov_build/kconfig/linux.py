"""Linux .config files and fragments: the one reader of them in kcov-build
(kcov-build config, kernel and module builds), and merge_config.sh -m's
merge."""
from __future__ import annotations

import re
from dataclasses import dataclass
from os import EX_DATAERR
from pathlib import Path
from typing import Sequence


from .model import ConfigError, Result, Where, _read_top




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




def read_values(path: Path) -> dict[str, str]:
    """{CONFIG_X: value} of a .config or fragment, checked as
    parse_fragment checks it ("is not set" reads as "n", strings keep their
    quotes), or of a build tree's include/config/auto.conf, which is make
    syntax (strings unquoted, unset symbols absent).  ConfigError: 66
    unreadable, 65 malformed."""
    text = _read_top(path)
    if path.name != "auto.conf":
        return {a.sym: a.value for a in parse_fragment(text, str(path))}
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if (m := _LX_SET.match(line)) is not None:
            out[m.group(1)] = m.group(2)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise ConfigError(EX_DATAERR, f"{path}:{n}: not an auto.conf line: '{line.strip()}'")
    return out
