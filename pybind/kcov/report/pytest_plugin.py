"""pytest plugin: per-test kcov coverage of instrumented code.

Installed with the package (a ``pytest11`` entry point named, like the
module, ``kcov.report.pytest_plugin``: ``-p kcov.report.pytest_plugin``
loads it when plugin autoloading is off, ``-p no:kcov.report.pytest_plugin``
blocks it) and off unless ``--kcov`` is given::

    pytest --kcov --kcov-report html:cov/ --kcov-report json:cov.json \\
           --kcov-pcs session.pcs tests/

Each test's setup, call and teardown are traced on the thread that runs
them (the calling thread, as kcov records): the call under the test's node
id, setup and teardown, when they reach anything, under ``<node id>|setup``
and ``<node id>|teardown`` (coverage.py's context names), so a
module-scoped fixture's work is not charged to whichever test came first.

* ``--kcov-provider hosted`` (the default): the in-process runtime;
  instrumented libraries the tests load (ctypes, extension modules) record.
  The module map is ``/proc/self/maps`` (read again when a test reached a
  library loaded after the last read).
* ``--kcov-provider linux`` (or ``freebsd``): the kernel's device (or
  ``kcov.ko``'s); system calls the tests make record the instrumented
  kernel code they run.  Give each kernel module (``--kcov-binary
  minix.ko``: its base comes from ``/sys/module/<name>/sections/``, which
  needs root) or vmlinux (its KASLR slide from ``/proc/kallsyms``).

At the end of the session the PCs go to ``--kcov-pcs`` (a kcov-pcs dump
with one ``test`` section per test, for ``kcov-report`` later) and are
collected (:func:`~kcov.report.collect.collect`) into every
``--kcov-report FORMAT:PATH``; a summary line closes the terminal report.
``kcov-report tests OUT.json --function NAME`` then lists the tests that
reach a function and ``--test NODEID`` what a test added.

Tests marked ``no_kcov`` are not traced (a test that enables kcov on its
own thread would find it busy; a phase that cannot be traced is listed
in the summary).  Threads and processes a test starts are not traced, as
with kcov itself; pytest-xdist is not supported.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

import numpy as np
import pytest

from .model import ReportError, Totals

if TYPE_CHECKING:
    import numpy.typing as npt

    from .outputs import Output
    from .pcs import ModuleMap

DEFAULT_ENTRIES = 1 << 20  # 8 MiB per descriptor: one PC per callback call
PROVIDERS = ("hosted", "linux", "freebsd", "auto")
_OPTIONS = ("kcov_provider", "kcov_binary", "kcov_report", "kcov_pcs", "kcov_entries",
            "kcov_inventory", "kcov_no_universe")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kcov", "per-test kcov coverage of instrumented code")
    g.addoption("--kcov", action="store_true", default=False,
                help="trace each test with kcov and report per-test coverage")
    g.addoption("--kcov-provider", choices=PROVIDERS, default=None,
                help="hosted (in-process runtime, default), linux or freebsd (the "
                     "kernel's kcov device), auto")
    g.addoption("--kcov-binary", action="append", default=None, metavar="FILE",
                help="a binary to report: an instrumented library or executable, a "
                     "kernel module .ko or vmlinux (kernel providers: required for "
                     "their load address); repeatable")
    g.addoption("--kcov-report", action="append", default=None, metavar="FORMAT:PATH",
                help="write the session's coverage as FORMAT (json, lcov, cobertura, "
                     "html, text, json-summary) to PATH; repeatable")
    g.addoption("--kcov-pcs", default=None, metavar="PATH",
                help="write the raw per-test PCs (a kcov-pcs dump) to PATH")
    g.addoption("--kcov-entries", type=int, default=None, metavar="N",
                help=f"buffer size in 8-byte entries (default {DEFAULT_ENTRIES}); a test "
                     "that fills it is reported as overflowed")
    g.addoption("--kcov-inventory", default=None, metavar="FILE",
                help="a kcov-build inventory JSON: list functions never reached")
    g.addoption("--kcov-no-universe", action="store_true", default=None,
                help="count only reached points, not every callback call site")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_kcov: do not trace this test with kcov (--kcov)")
    if not config.getoption("kcov"):
        given = [o for o in _OPTIONS if config.getoption(o) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise pytest.UsageError(f"{flag} needs --kcov")
        return
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("--kcov does not support pytest-xdist (-n)")
    config.pluginmanager.register(KcovPlugin(config), "kcov-report-plugin")


class KcovPlugin:
    """The per-session state of ``--kcov``."""

    def __init__(self, config: pytest.Config) -> None:
        import kcov

        from .outputs import check_writable, parse_outputs

        opt = config.getoption
        self.provider: str = opt("kcov_provider") or "hosted"
        self.binaries = [Path(b) for b in opt("kcov_binary") or ()]
        for b in self.binaries:
            if not b.is_file():
                raise pytest.UsageError(f"--kcov-binary {b}: no such file")
        self.universe = not opt("kcov_no_universe")
        self.inventory = opt("kcov_inventory")
        if self.inventory is not None and not Path(self.inventory).is_file():
            raise pytest.UsageError(f"--kcov-inventory {self.inventory}: no such file")
        self.pcs_path: str | None = opt("kcov_pcs")
        if self.pcs_path is not None:
            try:
                check_writable(self.pcs_path, "pcs")
            except ReportError as e:
                raise pytest.UsageError(f"--kcov-pcs: {e}") from None
        self.reports: list[Output] = []
        for spec in opt("kcov_report") or ():
            fmt, sep, path = spec.partition(":")
            if not sep or not fmt or not path:
                raise pytest.UsageError(f"--kcov-report {spec}: expected FORMAT:PATH")
            try:
                self.reports += parse_outputs([path], fmt)
            except ReportError as e:
                raise pytest.UsageError(f"--kcov-report {spec}: {e}") from None
        entries = opt("kcov_entries") or DEFAULT_ENTRIES
        try:
            self.k = kcov.open(provider=self.provider, entries=entries)
        except (OSError, ValueError) as e:
            raise pytest.UsageError(f"--kcov: cannot open the {self.provider} kcov "
                                    f"device: {e}") from None
        self.mode = kcov.Mode.PC
        self.runs: dict[str, npt.NDArray[np.uint64]] = {}
        self.overflowed: list[str] = []
        self.untraced: list[str] = []
        self.maps: list[ModuleMap] = []
        self._starts = np.zeros(0, dtype=np.uint64)
        self._ends = np.zeros(0, dtype=np.uint64)
        self.totals: Totals | None = None
        self.ntests = 0
        self.error: str | None = None
        self.messages: list[str] = []
        self.written: list[str] = []

    # -- tracing --------------------------------------------------------------

    def _traced(self, item: pytest.Item, name: str, keep_empty: bool
                ) -> Generator[None, Any, None]:
        import kcov

        if item.get_closest_marker("no_kcov") is not None:
            yield
            return
        try:
            self.k.enable(self.mode)
            self.k.reset()
        except kcov.KcovError as e:  # e.g. the thread traces with kcov itself
            self.untraced.append(f"{name} ({e})")
            yield
            return
        try:
            yield
        finally:
            try:
                snap = self.k.snapshot()
                self.k.disable()
            except kcov.KcovError as e:
                self.untraced.append(f"{name} ({e})")
            else:
                self._record(name, snap.pcs, snap.overflowed, keep_empty)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, None]:
        yield from self._traced(item, f"{item.nodeid}|setup", False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        yield from self._traced(item, item.nodeid, True)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, None]:
        yield from self._traced(item, f"{item.nodeid}|teardown", False)

    def _record(self, name: str, pcs: npt.NDArray[np.uint64], overflowed: bool,
                keep_empty: bool) -> None:
        u = np.unique(np.asarray(pcs, dtype=np.uint64))
        if overflowed:
            self.overflowed.append(name)
        if not len(u) and not keep_empty:
            return
        old = self.runs.get(name)
        self.runs[name] = u if old is None else np.union1d(old, u)
        if self.provider == "hosted" and len(u) and not self._all_mapped(u):
            self._snapshot_maps()

    def _all_mapped(self, pcs: npt.NDArray[np.uint64]) -> bool:
        inside = np.zeros(len(pcs), dtype=bool)
        for s, e in zip(self._starts.tolist(), self._ends.tolist()):
            inside |= (pcs > np.uint64(s)) & (pcs <= np.uint64(e))
        return bool(inside.all())

    def _snapshot_maps(self) -> None:
        """Add the mappings of now (a library loaded for one test may be
        gone at the end of the session)."""
        from .pcs import snapshot_modules

        for m in snapshot_modules():
            if m not in self.maps:
                self.maps.append(m)
        self._starts = np.array([m.start for m in self.maps], dtype=np.uint64)
        self._ends = np.array([m.end for m in self.maps], dtype=np.uint64)

    # -- the end of the session -----------------------------------------------

    def _kernel_maps(self) -> list[ModuleMap]:
        from .elf import read_elf
        from .pcs import kernel_maps, kmod_maps

        out: list[ModuleMap] = []
        for b in self.binaries:
            with read_elf(b) as e:
                kind = e.kind
            if kind == "kmod":
                name = b.name.split(".", 1)[0].replace("-", "_")
                out += kmod_maps(name, b)
            elif kind == "vmlinux":
                out += kernel_maps(b)
        return out

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .inputs import maps_with_pcs
        from .outputs import write_outputs
        from .collect import collect
        from .pcs import PcDump, write_pcs

        self.k.close()
        try:
            if self.provider == "hosted":
                self._snapshot_maps()
                # Only the modules PCs were recorded in (not every library
                # of the Python process).
                maps = maps_with_pcs(PcDump(self.maps, self.runs))
            else:
                maps = self._kernel_maps()
            if self.pcs_path:
                Path(self.pcs_path).parent.mkdir(parents=True, exist_ok=True)
                write_pcs(self.pcs_path, self.runs, maps,
                          comment=f"pytest --kcov ({self.provider}): {len(self.runs)} tests")
                self.written.append(f"PCs {self.pcs_path}")
            if not self.reports and not self.runs:
                return
            dump = PcDump(maps, dict(self.runs), "the pytest session")
            data = collect(dump, binaries=self.binaries, universe=self.universe,
                           inventory=self.inventory, progress=self._say)
            data.tests |= set(self.runs)
            write_outputs(data, self.reports, {}, self._say)
            self.written += [f"{o.fmt} {o.path}" for o in self.reports]
            self.ntests = len(data.tests)
            self.totals = data.totals()
        except (ReportError, OSError) as e:
            self.error = str(e).splitlines()[0]
            if session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def _say(self, msg: str) -> None:
        if msg.startswith("warning:"):
            self.messages.append(msg)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        tr.write_sep("-", "kcov coverage")
        for m in self.messages:
            tr.write_line(f"kcov: {m}", yellow=True)
        if self.overflowed:
            shown = ", ".join(self.overflowed[:3]) + (", ..." if len(self.overflowed) > 3 else "")
            tr.write_line(f"kcov: warning: {len(self.overflowed)} test phase(s) filled the "
                          f"buffer, their coverage is incomplete ({shown}): raise "
                          "--kcov-entries", yellow=True)
        if self.untraced:
            shown = "; ".join(self.untraced[:2]) + ("; ..." if len(self.untraced) > 2 else "")
            tr.write_line(f"kcov: warning: {len(self.untraced)} test phase(s) could not be "
                          f"traced: {shown} (mark tests that use kcov themselves no_kcov)",
                          yellow=True)
        if self.error is not None:
            tr.write_line(f"kcov: error: {self.error}", red=True)
        t = self.totals
        if t is not None:
            tr.write_line(
                f"kcov: {self.ntests} tests; points {t.hit}/{t.points} "
                f"({t.point_percent:.2f}%), lines {t.lines_hit}/{t.lines} "
                f"({t.line_percent:.2f}%), functions {t.functions_hit}/{t.functions} "
                f"({t.function_percent:.2f}%)")
        for w in self.written:
            tr.write_line(f"kcov: wrote {w}")
        ask = next((o.path for o in self.reports if o.fmt in ("json", "lcov")), None)
        if ask is None and self.pcs_path:
            ask = self.pcs_path
        if ask is not None and self.error is None:
            tr.write_line(f"kcov: which tests reach F: kcov-report tests {_q(ask)} "
                          f"--function F; what T added: ... --test T")


def _q(path: str) -> str:
    return path if all(c.isalnum() or c in "/._-+:" for c in path) else repr(path)


__all__ = ["KcovPlugin", "pytest_addoption", "pytest_configure"]
