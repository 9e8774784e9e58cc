"""``kcov-build check``'s call graph: which functions the runtime calls
while it records, read from its disassembly (``objdump -dr``) from every
``__sanitizer_cov_*`` entry point (see analysis.py)."""
from __future__ import annotations

import bisect
import re
import subprocess
from collections import deque
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from os import EX_NOINPUT, EX_UNAVAILABLE
from pathlib import Path
from typing import Any, Iterable, Sequence

from kcov.inventory import Function

from .compiledb import AnalysisError

# --------------------------------------------------------------------------
# Runtime call graph from the disassembly


_SECTION = re.compile(r"^Disassembly of section (?P<sec>\S+):$")
_MEMBER = re.compile(r"^(?:In archive .*:|(?P<file>\S.*):\s+file format \S+)$")
_HEADER = re.compile(r"^(?P<addr>[0-9a-f]+) <(?P<name>[^>]+)>:$")
_INSN = re.compile(r"^\s*(?P<addr>[0-9a-f]+):\s+(?P<mn>[a-z][\w.]*)\s*(?P<ops>.*)$")
_RELOC = re.compile(r"^\s*[0-9a-f]+: (?P<type>R_\w+)\s+(?P<sym>[^\s+-]+)(?P<add>[+-]0x[0-9a-f]+)?")
_DIRECT = re.compile(r"^(?:[a-z]+\s+)?(?P<addr>[0-9a-f]+) <(?P<sym>[^>]+)>$")
_GOTCALL = re.compile(r"\*.*#\s*[0-9a-f]+ <(?P<sym>[^>@+]+)(?:@[^>]*)?>$")
_BRANCH = re.compile(r"^(?:call|callq|jmp|jmpq|j[a-z]{1,3}|bl|b|b\.[a-z]+|cbz|cbnz|tbz|tbnz)$")
_CALLRELOCS = ("PLT32", "PC32", "GOTPCREL", "GOTPCRELX", "REX_GOTPCRELX", "CALL26", "JUMP26", "PLT")


_SKIP_SECTIONS = (".plt", ".plt.got", ".plt.sec", ".init", ".fini")


def _is_plt(sym: str) -> bool:
    """'foo@plt' is a PLT stub; 'foo@plt+0x30' is just a nearby label."""
    return sym.endswith("@plt")


def _base(name: str) -> str:
    """Symbol name without a version (@@Base, @GLIBC_2.2.5) or a PLT suffix."""
    return name.split("@", 1)[0]


@dataclass
class _Region:
    key: tuple[str, str, int]  # (member, section, start)
    name: str
    calls: list[tuple[str, Any]] = field(default_factory=list)  # ("sym", name) | ("addr", key-ish)


def runtime_callees(path: str | Path) -> dict[str, tuple[str, list[str]]]:
    """Symbols the runtime calls, directly or transitively, from its callbacks.

    Maps each callee that leaves the binary (undefined, or reached through the
    PLT and so interposable) to (entry point, call chain from the entry
    point to the caller).
    """
    from .objcheck import ObjdumpError, objdump_tool

    p = Path(path)
    if not p.is_file():
        raise AnalysisError(f"{p}: no such runtime file", EX_NOINPUT)
    try:
        tool = objdump_tool()
    except ObjdumpError as e:
        raise AnalysisError(str(e), EX_UNAVAILABLE) from None
    proc = subprocess.run([tool, "-dr", "--no-show-raw-insn", str(p)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise AnalysisError(f"{p}: objdump cannot read it: {last}")
    regions = _regions(proc.stdout)
    if not any(r.name.startswith("__sanitizer_cov_") for r in regions.values()):
        raise AnalysisError(f"{p}: no __sanitizer_cov_* function in it; is it a coverage runtime?")
    return _walk(regions)


def _regions(text: str) -> dict[tuple[str, str, int], _Region]:
    """Parse objdump output into code regions with their outgoing calls.

    A region starts at every symbol and at every direct call target, so a
    stripped DSO's local functions still become nodes.  Instructions belong
    to the last region starting at or before them.
    """
    member, section = "", ""
    named: dict[tuple[str, str, int], str] = {}
    insns: list[tuple[str, str, int, str, str, str | None]] = []  # member, sec, addr, mn, ops, reloc
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m is not None:
            section = m.group("sec")
            continue
        m = _MEMBER.match(line)
        if m is not None:
            member = m.group("file") or member
            continue
        m = _HEADER.match(line)
        if m is not None:
            named.setdefault((member, section, int(m.group("addr"), 16)), m.group("name"))
            continue
        m = _RELOC.match(line)
        if m is not None and insns:
            mb, sc, ad, mn, ops, rel = insns[-1]
            if rel is None and any(m.group("type").endswith(t) for t in _CALLRELOCS):
                sym = m.group("sym")
                add = int(m.group("add") or "0", 16)
                # A relocation against a section symbol names an offset in it.
                ref = f"{sym}+{add + 4:#x}" if sym.startswith(".") else sym
                insns[-1] = (mb, sc, ad, mn, ops, ref)
            continue
        m = _INSN.match(line)
        if m is not None:
            insns.append((member, section, int(m.group("addr"), 16), m.group("mn"), m.group("ops").strip(), None))
    starts: dict[tuple[str, str], set[int]] = {}
    for (mb, sc, ad) in named:
        starts.setdefault((mb, sc), set()).add(ad)
    branches: list[tuple[str, str, int, int]] = []  # member, section, from, to (jumps)
    for mb, sc, ad, mn, ops, rel in insns:
        if rel is not None or sc in _SKIP_SECTIONS or not _BRANCH.match(mn):
            continue
        d = _DIRECT.match(ops)
        if d is None or _is_plt(d.group("sym")):
            continue
        if mn.startswith(("call", "bl")) and mn != "b":
            starts.setdefault((mb, sc), set()).add(int(d.group("addr"), 16))
        else:
            branches.append((mb, sc, ad, int(d.group("addr"), 16)))
    # A jump that leaves its region is a tail call; in a stripped DSO its
    # target may be a local function with no symbol, which then starts a
    # region of its own.  Repeat until the partition is stable.
    sorted_starts = {k: sorted(v) for k, v in starts.items()}
    for _ in range(16):
        added = False
        for mb, sc, src, dst in branches:
            ss = sorted_starts.get((mb, sc))
            if not ss:
                continue
            a, b = bisect.bisect_right(ss, src) - 1, bisect.bisect_right(ss, dst) - 1
            if a != b and (b < 0 or ss[b] != dst):
                starts[(mb, sc)].add(dst)
                added = True
        if not added:
            break
        sorted_starts = {k: sorted(v) for k, v in starts.items()}
    regions: dict[tuple[str, str, int], _Region] = {}

    def region_of(mb: str, sc: str, ad: int) -> _Region | None:
        ss = sorted_starts.get((mb, sc))
        if not ss:
            return None
        j = bisect.bisect_right(ss, ad) - 1
        if j < 0:
            return None
        key = (mb, sc, ss[j])
        r = regions.get(key)
        if r is None:
            nm = named.get(key)
            if nm is None or re.search(r"[+-]0x[0-9a-f]+$", nm):
                nm = f"fn_{ss[j]:#x}"
            r = regions[key] = _Region(key, _base(nm) if "@@" in nm or "@" in nm else nm)
        return r

    for mb, sc, ad, mn, ops, rel in insns:
        if sc in _SKIP_SECTIONS or not _BRANCH.match(mn):
            continue
        here = region_of(mb, sc, ad)
        if here is None:
            continue
        if rel is not None:
            if rel.startswith("."):
                sec, off = rel.rsplit("+", 1)
                tgt = region_of(mb, sec, int(off, 16))
                if tgt is not None and tgt is not here:
                    here.calls.append(("region", tgt.key))
            else:
                here.calls.append(("sym", _base(rel)))
            continue
        d = _DIRECT.match(ops)
        if d is not None:
            sym = d.group("sym")
            if _is_plt(sym):
                here.calls.append(("plt", _base(sym)))
                continue
            tgt = region_of(mb, sc, int(d.group("addr"), 16))
            if tgt is not None and tgt is not here:
                here.calls.append(("region", tgt.key))
            continue
        g = _GOTCALL.search(ops)
        if g is not None:
            here.calls.append(("sym", _base(g.group("sym"))))
    # Regions that are never a call source still need to exist as targets.
    for key in named:
        region_of(*key)
    return regions


def _walk(regions: dict[tuple[str, str, int], _Region]) -> dict[str, tuple[str, list[str]]]:
    by_name: dict[str, list[_Region]] = {}
    for r in regions.values():
        by_name.setdefault(r.name, []).append(r)
    found: dict[str, tuple[str, list[str]]] = {}
    roots = sorted((r for r in regions.values() if r.name.startswith("__sanitizer_cov_")), key=lambda r: r.name)
    for root in roots:
        seen = {root.key}
        queue: deque[tuple[_Region, list[str]]] = deque([(root, [root.name])])
        while queue:
            r, chain = queue.popleft()
            for kind, what in r.calls:
                targets: list[_Region] = []
                if kind == "region":
                    targets = [regions[what]] if what in regions else []
                else:
                    defined = by_name.get(what, [])
                    same = [d for d in defined if d.key[0] == r.key[0]]
                    targets = (same or defined)[:1]
                    # Undefined here, or bound through the PLT (interposable).
                    if (not targets or kind == "plt") and what not in found:
                        found[what] = (root.name, chain)
                for t in targets:
                    if t.key not in seen:
                        seen.add(t.key)
                        queue.append((t, [*chain, t.name]))
    return found


@dataclass(frozen=True)
class Finding:
    function: Function
    entry: str
    chain: tuple[str, ...]

    def message(self) -> str:
        via = " -> ".join((*self.chain, self.function.name))
        return (f"{self.function.file}:{self.function.start_line}: function {self.function.name} "
                f"is instrumented but the runtime calls it from {self.entry} (via {via}); exclude it")


def check_functions(
    functions: Iterable[Function],
    callees: dict[str, tuple[str, list[str]]],
    *,
    fun_patterns: Sequence[str] = (),
    src_globs: Sequence[str] = (),
) -> list[Finding]:
    """Instrumented project functions among the runtime's outgoing calls."""
    out: list[Finding] = []
    for f in functions:
        if f.no_coverage or not f.external or f.name.startswith("__sanitizer_"):
            continue
        if any(fnmatchcase(f.mangled, p) for p in fun_patterns) or any(fnmatchcase(f.file, g) for g in src_globs):
            continue
        hit = callees.get(f.mangled) or callees.get(f.name)
        if hit is not None:
            out.append(Finding(f, hit[0], tuple(hit[1])))
    return sorted(out, key=lambda x: (x.function.file, x.function.start_line))


