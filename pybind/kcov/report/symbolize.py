"""Module-relative offsets to source frames, in batches, with a cache.

``Symbolizer(binary).frames(offsets)`` returns ``{offset: (Frame, ...)}``,
innermost frame first (inlined callees before the functions they were
inlined into), each with function, absolute source path, line and column
(line 0 means the compiler attached no line).  Offsets are module-relative
(:mod:`kcov.report.elf`): link-time addresses for executables, shared
objects and vmlinux, synthetic-layout offsets for kernel modules.  The
symboliser does no return-address adjustment: give it call sites.

The work is done by ``llvm-symbolizer`` (the newest ``llvm-symbolizer-N``
on ``PATH``, or plain ``llvm-symbolizer``), kept running: one process per
binary answers every batch (two for batches of 20,000 addresses or more on
a machine with two or more CPUs, each fed a contiguous half of the sorted
offsets, so each reads the DWARF of different compile units).  Threads
write the addresses and read the answers through 1 MiB pipes while the
caller parses what has arrived.  Output is the LLVM style (a blank line
ends each answer; the JSON style costs llvm-symbolizer about twice as
much), parsed with one regular expression, each distinct frame text made
into a :class:`Frame` once.  Every answer is cached per ``(binary,
offset)``.  Without llvm-symbolizer, GNU ``addr2line -afi`` is
used (no columns; binutils 2.40 misses some inline entries of clang's
DWARF 5); with neither, :class:`SymbolizerUnavailableError`.  A
``Symbolizer`` is not thread-safe.

Function names are DWARF's ``DW_AT_name`` for C binaries, so an alias
(the kernel's ``init_module``) or a compiler clone (``foo.isra.0``,
``foo.cold``) is named as the source function.  Binaries with C++ symbols
get the demangled linkage names instead (``ns::C::f(int)``, qualified);
llvm-symbolizer then names the outermost frame from the symbol table, and
compiler clone suffixes (``.cold``, ``.isra.0``, ``.part.1``,
``.constprop.0``, ``.lto_priv.0``, ``.llvm.<n>``) are removed so that the
cold part of a function and an IPA clone count as the function itself.

Kernel modules are relocatable: their DWARF names code by (section,
offset) and llvm-symbolizer cannot tell the sections of a ``.ko`` apart.
The module is therefore first linked (``ld``) into a scratch executable
that places each executable section at its synthetic-layout offset above
:data:`KMOD_BASE`, with undefined symbols left at 0; the linker applies
the DWARF relocations and the result symbolises like any executable.
"""
from __future__ import annotations

import atexit
import codecs
import fcntl
import gc
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

from .elf import ET_REL, ElfFile, read_elf
from .model import Frame, ReportError

__all__ = [
    "KMOD_BASE",
    "Symbolizer",
    "SymbolizerError",
    "SymbolizerUnavailableError",
    "clean_function_name",
    "find_tool",
    "get_symbolizer",
]

#: Where a kernel module's synthetic layout starts in the scratch link:
#: the top gigabyte, where -mcmodel=kernel code expects to run and from
#: where a PC-relative reference to an undefined symbol (address 0) fits.
KMOD_BASE = 0xFFFFFFFFC0000000
# Batches at least this large are split over two processes.
_PARALLEL_MIN = 20000
# Answers are read in blocks of up to this size (and the pipe made as big).
_PIPE_SIZE = 1 << 20
_CLONE = re.compile(r"(?:\.(?:cold|part|isra|constprop|lto_priv|localalias|llvm|clone)(?:\.\d+)?)+$")
_CLONE_DEMANGLED = re.compile(r"(?: \(\.[\w.]+\))+$")


class SymbolizerUnavailableError(ReportError):
    """Neither llvm-symbolizer nor addr2line is installed (exit status 69)."""

    exit_status = os.EX_UNAVAILABLE


class SymbolizerError(ReportError):
    """The symboliser failed (crashed, or the scratch link of a module
    failed); exit status 70."""

    exit_status = os.EX_SOFTWARE


def find_tool(path: str | None = None) -> tuple[str, str]:
    """``(executable, flavour)`` of the symboliser to use: ``"llvm"`` for
    the newest llvm-symbolizer on PATH, else ``"gnu"`` for addr2line."""
    best: tuple[int, str] | None = None
    dirs = (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep)
    for d in dirs:
        try:
            names = os.listdir(d or ".")
        except OSError:
            continue
        for n in names:
            m = re.fullmatch(r"llvm-symbolizer(?:-(\d+))?", n)
            full = os.path.join(d, n)
            if m and os.access(full, os.X_OK):
                ver = int(m.group(1)) if m.group(1) else 0
                if best is None or ver > best[0]:
                    best = (ver, full)
    if best is not None:
        return best[1], "llvm"
    a2l = shutil.which("addr2line", path=path)
    if a2l is not None:
        return a2l, "gnu"
    raise SymbolizerUnavailableError(
        "neither llvm-symbolizer nor addr2line is on PATH: install llvm (or binutils)", os.EX_UNAVAILABLE)


def clean_function_name(name: str) -> str:
    """Strip compiler clone suffixes: ``foo.isra.0`` -> ``foo``,
    ``ns::f(int) (.cold)`` -> ``ns::f(int)``."""
    if "." in name:
        name = _CLONE_DEMANGLED.sub("", name)
        name = _CLONE.sub("", name) or name
    return name


# One frame of an LLVM-style answer: function line, then file:line:column;
# an empty line after the last frame of an answer.
_LLVM_FRAME = re.compile(r"^(.*)\n(.*):(\d+):(\d+)\n(\n?)", re.M)


class _Parser:
    """Answer text -> frames.  Frames are made once per distinct text (an
    inlined callee's frame recurs in every point it was inlined at)."""

    def __init__(self, gnu: bool) -> None:
        self.gnu = gnu
        self.frames: dict[str, Frame | None] = {}
        self.paths: dict[str, str] = {"??": ""}

    def _frame(self, func: str, file: str, line: str, col: str) -> Frame | None:
        path = self.paths.get(file)
        if path is None:
            path = self.paths[file] = os.path.normpath(file) if file else ""
        func = "" if func == "??" else clean_function_name(func)
        if not (func or path):
            return None
        return Frame(func, path, int(line) if line.isdigit() else 0, int(col) if col.isdigit() else 0)

    def answers(self, text: str) -> list[tuple[Frame, ...]]:
        """The frames of each answer in ``text``: complete LLVM-style
        answers, each ending with an empty line."""
        out: list[tuple[Frame, ...]] = []
        cur: list[Frame] = []
        memo, make = self.frames, self._frame
        for func, file, line, col, end in _LLVM_FRAME.findall(text):
            key = f"{func}\n{file}:{line}:{col}"
            if key in memo:
                fr = memo[key]
            else:
                fr = memo[key] = make(func, file, line, col)
            if fr is not None:
                cur.append(fr)
            if end:
                out.append(tuple(cur))
                cur = []
        if len(out) != text.count("\n\n"):  # an answer of another shape
            out = [self.record(t) for t in text.split("\n\n")[:-1]]
        return out

    def record(self, text: str) -> tuple[Frame, ...]:
        """The frames of one answer (LLVM style, or GNU addr2line's without
        its address line), line by line."""
        lines = text.split("\n")
        out = []
        for i in range(0, len(lines) - 1, 2):
            func, loc = lines[i], lines[i + 1]
            if self.gnu:
                file, _, line = loc.split(" (discriminator", 1)[0].rpartition(":")
                col = "0"
            else:
                rest, _, col = loc.rpartition(":")
                file, _, line = rest.rpartition(":")
            fr = self._frame(func, file, line, col)
            if fr is not None:
                out.append(fr)
        return tuple(out)


class _Process:
    """One long-lived llvm-symbolizer answering batches over pipes."""

    def __init__(self, argv: list[str]) -> None:
        env = dict(os.environ)
        env.pop("DEBUGINFOD_URLS", None)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env)
        except OSError as e:
            raise SymbolizerUnavailableError(f"{argv[0]}: cannot run: {e.strerror}", os.EX_UNAVAILABLE) from None
        if hasattr(fcntl, "F_SETPIPE_SZ") and self.proc.stdout is not None:
            try:
                fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:
                pass  # above /proc/sys/fs/pipe-max-size: the default size works too

    def start(self, addrs: Sequence[int], q: queue.Queue[tuple[int, bytes | None]], tag: int) -> None:
        """Send ``addrs``; the answers arrive in ``q`` as ``(tag, raw
        chunk)``, then ``(tag, None)``.  A writer and a reader thread do
        the I/O, so the caller parses while the symboliser still works."""
        payload = "".join(f"0x{a:x}\n" for a in addrs).encode()
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        stdin, fd = proc.stdin, proc.stdout.fileno()

        def write() -> None:
            try:
                stdin.write(payload)
                stdin.flush()
            except OSError:
                pass  # the reader sees the early end

        def read() -> None:
            want, seen, last_nl = len(addrs), 0, False
            try:
                while seen < want:
                    b = os.read(fd, _PIPE_SIZE)
                    if not b:
                        break
                    # Each answer ends with an empty line.
                    seen += b.count(b"\n\n") + (1 if last_nl and b[:1] == b"\n" else 0)
                    last_nl = b[-1:] == b"\n"
                    q.put((tag, b))
                    if len(b) < _PIPE_SIZE // 4 and seen < want:
                        # llvm-symbolizer flushes every answer: let the pipe
                        # fill rather than wake up for each of them.
                        time.sleep(0.002)
            finally:
                q.put((tag, None))

        threading.Thread(target=write, daemon=True).start()
        threading.Thread(target=read, daemon=True).start()

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: llvm-symbolizer exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Symbolizer:
    """Frames of module-relative offsets of one binary (see the module
    docstring).  Use as a context manager, or call :meth:`close`; the
    instances of :func:`get_symbolizer` are closed at exit."""

    def __init__(self, binary: str | Path | ElfFile, *, tool: str | None = None,
                 jobs: int | None = None) -> None:
        self.elf = binary if isinstance(binary, ElfFile) else read_elf(binary)
        self.path = self.elf.path
        if tool is None:
            self.tool, self.flavour = find_tool()
        else:
            self.tool = tool
            self.flavour = "gnu" if "addr2line" in os.path.basename(tool) and \
                "llvm" not in os.path.basename(tool) else "llvm"
        self.jobs = max(1, min(jobs if jobs is not None else (os.cpu_count() or 1), 2))
        self._cache: dict[int, tuple[Frame, ...]] = {}
        self._parser = _Parser(self.flavour == "gnu")
        self._procs: list[_Process] = []
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._target = str(self.path)
        self._bias = 0
        if self.elf.type == ET_REL:
            self._target = self._link_module()
            self._bias = KMOD_BASE

    # -- public -------------------------------------------------------------

    def frames(self, offsets: Iterable[int]) -> dict[int, tuple[Frame, ...]]:
        """``{offset: frames}`` for each offset; unknown code gives ``()``."""
        want = [int(o) for o in offsets]
        todo = sorted({o for o in want if o not in self._cache})
        if todo:
            # Parsing makes millions of acyclic objects (frames, tuples);
            # the cycle collector would only scan them again and again.
            collecting = gc.isenabled()
            gc.disable()
            try:
                self._resolve(todo)
            finally:
                if collecting:
                    gc.enable()
        c = self._cache
        return {o: c[o] for o in want}

    @property
    def cached(self) -> int:
        """How many offsets are cached."""
        return len(self._cache)

    def close(self) -> None:
        for p in self._procs:
            p.close()
        self._procs = []
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> Symbolizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work -----------------------------------------------------------------

    def _argv(self) -> list[str]:
        names = "linkage" if _has_cxx_symbols(self.elf) else "short"
        return [self.tool, f"--obj={self._target}", f"--functions={names}", "--inlines",
                "--demangle", "--output-style=LLVM"]

    def _resolve(self, todo: list[int]) -> None:
        bias = self._bias
        addrs = [(o + bias) & 0xFFFFFFFFFFFFFFFF for o in todo]
        cache = self._cache
        if self.flavour == "gnu":
            rec = self._parser.record
            texts = self._addr2line(addrs)
            if len(texts) != len(todo):
                raise SymbolizerError(f"{self.path}: addr2line gave {len(texts)} answers "
                                      f"for {len(todo)} addresses")
            for o, t in zip(todo, texts):
                cache[o] = rec(t)
            return
        n = self.jobs if len(addrs) >= _PARALLEL_MIN else 1
        while len(self._procs) < n:
            self._procs.append(_Process(self._argv()))
        step = (len(addrs) + n - 1) // n
        parts = [(i, min(i + step, len(addrs))) for i in range(0, len(addrs), step)]
        q: queue.Queue[tuple[int, bytes | None]] = queue.Queue()
        for k, (lo, hi) in enumerate(parts):
            self._procs[k].start(addrs[lo:hi], q, k)
        # Parse the answers of every process as they arrive, each in order.
        decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in parts]
        pos = [lo for lo, _hi in parts]
        tails = [""] * len(parts)
        running = len(parts)
        answers = self._parser.answers
        while running:
            k, chunk = q.get()
            if chunk is None:
                running -= 1
                continue
            block = tails[k] + decoders[k].decode(chunk)
            cut = block.rfind("\n\n") + 2
            if cut < 2:  # no complete answer yet
                tails[k] = block
                continue
            tails[k] = block[cut:]
            p, hi = pos[k], parts[k][1]
            for fr in answers(block[:cut])[:hi - p]:
                cache[todo[p]] = fr
                p += 1
            pos[k] = p
        for k, (lo, hi) in enumerate(parts):
            if pos[k] < hi:
                rc = self._procs[k].proc.poll()
                for proc in self._procs:  # the next batch starts afresh
                    proc.close()
                self._procs = []
                raise SymbolizerError(f"{self.tool} stopped after {pos[k] - lo} of {hi - lo} "
                                      f"addresses of {self.path} (exit status {rc})", os.EX_SOFTWARE)

    def _addr2line(self, addrs: list[int]) -> list[str]:
        p = subprocess.run([self.tool, "-a", "-f", "-i", "-C", "-e", self._target],
                           input="".join(f"0x{a:x}\n" for a in addrs), capture_output=True,
                           text=True, errors="replace", check=False)
        if p.returncode != 0:
            msg = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
            raise SymbolizerError(f"addr2line {self._target}: {msg}")
        out: list[str] = []
        cur: list[str] | None = None
        for line in p.stdout.split("\n"):
            if line.startswith("0x") and _is_hex(line[2:]):
                if cur is not None:
                    out.append("\n".join(cur))
                cur = []
            elif cur is not None and line:
                cur.append(line)
        if cur is not None:
            out.append("\n".join(cur))
        return out

    def _link_module(self) -> str:
        """Link a relocatable object into a scratch executable with each
        executable section at KMOD_BASE + its synthetic-layout offset."""
        ld = shutil.which("ld") or shutil.which("ld.bfd")
        if ld is None:
            raise SymbolizerUnavailableError(
                f"{self.path}: symbolising a kernel module needs GNU ld (install binutils)", os.EX_UNAVAILABLE)
        self._scratch = tempfile.TemporaryDirectory(prefix="kcov-sym-")
        d = Path(self._scratch.name)
        lines = ["SECTIONS {"]
        top = 0
        placed = set()
        for idx, base in sorted(self.elf.layout.items(), key=lambda kv: kv[1]):
            sec = self.elf.sections[idx]
            if sec.name in placed or not re.fullmatch(r"[A-Za-z0-9_.$-]+", sec.name):
                continue
            placed.add(sec.name)
            lines.append(f"  {sec.name} 0x{KMOD_BASE + base:x} : {{ *({sec.name}) }}")
            top = max(top, base + sec.size)
        # Everything else (data, module metadata) goes after, by the
        # linker's orphan rules; debug sections stay non-allocated.
        lines.append(f"  . = 0x{KMOD_BASE + top + 0x1000:x};")
        lines.append("}")
        script = d / "kmod.ld"
        script.write_text("\n".join(lines) + "\n")
        out = d / (self.path.name + ".linked")
        p = subprocess.run([ld, "-o", str(out), "-T", str(script), "-e", "0",
                            "--unresolved-symbols=ignore-all", "--noinhibit-exec", str(self.path)],
                           capture_output=True, text=True, check=False)
        if not out.is_file():
            msg = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
            raise SymbolizerError(f"{self.path}: cannot link the module for symbolisation: {msg}")
        return str(out)


def _has_cxx_symbols(elf: ElfFile) -> bool:
    """True if a symbol string table holds an Itanium-mangled name."""
    for sec in elf.sections:
        if sec.name in (".strtab", ".dynstr") and b"\0_Z" in bytes(elf.data(sec)):
            return True
    return False


def _is_hex(s: str) -> bool:
    try:
        int(s, 16)
    except ValueError:
        return False
    return True


_SHARED: dict[tuple[str, int, int, int], Symbolizer] = {}
_SHARED_LOCK = threading.Lock()


def get_symbolizer(binary: str | Path) -> Symbolizer:
    """A shared :class:`Symbolizer` per file (same path, size and mtime),
    so repeated reports reuse the running process and the cache."""
    p = Path(binary)
    try:
        st = p.stat()
    except OSError:
        return Symbolizer(p)  # raises the right error
    key = (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    with _SHARED_LOCK:
        s = _SHARED.get(key)
        if s is None:
            s = _SHARED[key] = Symbolizer(p)
        return s


@atexit.register
def _close_shared() -> None:
    for s in _SHARED.values():
        s.close()
    _SHARED.clear()
