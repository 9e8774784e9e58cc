"""Atomic outputs: the one file writer and the one directory swap.

Every file kcov writes (reports, PC dumps, profiles, kcov-build's
configurations, inventories and generated sources) goes through
:func:`write_atomic`, or :func:`atomic_target` when another program writes
it; every output directory goes through :func:`atomic_directory`.  A
reader of the path sees the old output or the complete new one, never a
part, and a failure leaves nothing behind.  Outputs get the mode any
program's would: 0666 (0777 for programs and directories) less the umask,
so 0644 under umask 022 and 0600 under 077.

The umask is read, never set: setting it to read it back (the usual
idiom) changes it for every thread of the process in between.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_directory", "atomic_target", "locked", "umask", "write_atomic"]

#: Above this many files, an output directory is flushed with one sync(2)
#: rather than an fsync(2) per file (an extracted kernel tree holds ~80000).
SYNC_EACH_MAX = 1000


def umask() -> int:
    """The process umask, without changing it (Linux's /proc/self/status
    has it since 4.7; elsewhere a probe file created with mode 0777 shows
    which bits it clears)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with tempfile.TemporaryDirectory(prefix="kcov-umask-") as d:
        probe = os.path.join(d, "probe")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777))
        return 0o777 & ~os.stat(probe).st_mode


def _mode(executable: bool) -> int:
    return (0o777 if executable else 0o666) & ~umask()


def _fsync_dir(directory: Path) -> None:
    """Make a rename in directory durable.  Some file systems refuse to
    fsync a directory (EINVAL); their renames are then as durable as they get."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def _parent(path: Path, mkdir: bool) -> Path:
    directory = path.parent if str(path.parent) else Path(".")
    if mkdir:
        directory.mkdir(parents=True, exist_ok=True)
    return directory


def _publish(fd: int, tmp: str, path: Path, executable: bool) -> None:
    """Give the written temporary file its mode, flush it and rename it
    over path; closes fd."""
    try:
        os.fchmod(fd, _mode(executable))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(_parent(path, False))


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, executable: bool = False,
                 errors: str = "strict", mkdir: bool = True) -> None:
    """Write data (str as UTF-8, encoded with `errors`) to path through a
    temporary file in the same directory; `executable` gives the x bits the
    umask allows; with `mkdir`, missing parent directories are created.
    Raises OSError."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=_parent(p, mkdir), prefix=f".{p.name}.", suffix=".tmp")
    try:
        try:
            raw = data.encode("utf-8", errors) if isinstance(data, str) else data
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            raise
        _publish(fd, tmp, p, executable)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str], *, executable: bool = False,
                  mkdir: bool = True) -> Iterator[Path]:
    """Yield an empty temporary file beside path for another program to
    write (llvm-profdata -o, cc -o); when the block ends it is published
    as :func:`write_atomic` would, or removed if the block raises."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=_parent(p, mkdir), prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        # The program may have replaced the file rather than written it.
        _publish(os.open(tmp, os.O_RDONLY), tmp, p, executable)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _settle_tree(root: Path) -> None:
    """Give every directory of the tree the umask's mode (a tool may have
    chosen its own: llvm-cov makes 0770 less the umask), then flush it."""
    mode = _mode(True)
    dirs: list[Path] = []
    files: list[Path] = []
    for top, _, names in os.walk(root):
        dirs.append(Path(top))
        files.extend(Path(top) / n for n in names)
    for d in dirs:
        os.chmod(d, mode)
    if len(files) > SYNC_EACH_MAX:
        os.sync()
        return
    for f in files:
        if f.is_symlink() or not f.is_file():
            continue
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for d in dirs:
        _fsync_dir(d)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory beside path to build an output
    in; when the block ends its directories get the umask's mode, it is
    flushed and takes path's place (whatever was there is removed), or it
    is removed if the block raises.

    Linux cannot swap two non-empty directories atomically without
    renameat2(), so an old output is first renamed aside, then the new one
    renamed in, then the old one deleted: at every moment the path holds
    either a complete output or nothing."""
    p = Path(path)
    parent = _parent(p, True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{p.name}."))
    try:
        yield tmp
        _settle_tree(tmp)
        old = None
        if p.exists() or p.is_symlink():
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{p.name}.old."))
            os.replace(p, old / "previous")
        os.replace(tmp, p)
        _fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive flock(2) on `path` (created, with its directory, if
    need be) for the block: so that two processes never fill one output at
    once, e.g. two builds extracting the same source tree into a cache."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
