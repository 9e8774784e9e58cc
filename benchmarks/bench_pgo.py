#!/usr/bin/env python3
"""Speed-up of PGO through kcov's profile runtime: lz4 1.9.4, plain -O2 vs PGO -O2.

Builds LZ4 1.9.4 (Debian's orig tarball, its own Makefile, the lz4 command
line tool) twice with the same clang and CFLAGS=-O2:

* plain: ``make CC=clang-19 CFLAGS=-O2``;
* PGO: ``kcov-build --pgo-generate`` (IR instrumentation, kcov's runtime),
  a training workload, ``kcov-build pgo merge``, then ``kcov-build
  --pgo-use``.

The training set and the measured corpus are different files: the corpus
is the first CORPUS MiB of C sources and headers of Debian's
linux-source-6.1 tarball, the training set the next TRAIN MiB (without
that package: /usr/include and /usr/share/doc text).  Training compresses
at levels 1 and 9 and decompresses.  Each measured round compresses the
corpus at level 1 (lz4's default), a sixth of it at level 9 (lz4 -9, the
HC compressor), and decompresses the level-1 file, each step one run of
the lz4 tool with its input on /dev/shm (when there is one) and its output
to /dev/null, so that the kernel's share (reading the input) stays small
and equal.  Each of REPEATS rounds runs both binaries, the order
alternating from round to round so that drifts (frequency, caches, other
load) hit both alike; the figure is the median CPU time (user + system,
from wait4: the scheduler's exact runtime, unlike the tick-sampled split
between user and system) of each step, with the fastest and slowest round.
Both binaries must produce the same compressed bytes and round-trip the
corpus.

Prints the table and the speed-up (plain / PGO, median of the rounds'
total CPU time) measured in this one run.  It is a benchmark: exit status 0 whatever the ratio,
non-zero only when it could not measure.

Usage: .venv/bin/python benchmarks/bench_pgo.py [--quick] [--repeats N] [--corpus MIB] [--compiler CC]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "pgo.json"
LINUX_TAR = Path("/usr/src/linux-source-6.1.tar.xz")
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))  # tests.support.lz4: the tarball the tests build

from kcov._base import write_atomic  # noqa: E402
from tests.support.lz4 import fetch_lz4  # noqa: E402


class BenchError(Exception):
    pass


def sh(cmd: list[object], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{' '.join(map(str, cmd[:4]))}... exited {p.returncode}: {' | '.join(tail)}")
    return p.stdout


def lz4_tarball() -> Path:
    try:
        return fetch_lz4()
    except ValueError as e:
        raise BenchError(str(e)) from None


def corpora(work: Path, corpus_mib: float, train_mib: float) -> tuple[Path, Path, str]:
    """(corpus, training set, description), each one concatenation of files."""
    want = (int(corpus_mib * 2**20), int(train_mib * 2**20))
    out = (work / "corpus.bin", work / "train.bin")
    sizes = [0, 0]
    with open(out[0], "wb") as c, open(out[1], "wb") as t:
        dst = (c, t)

        def add(data: bytes) -> bool:
            i = 0 if sizes[0] < want[0] else 1
            if sizes[1] >= want[1]:
                return False
            dst[i].write(data)
            sizes[i] += len(data)
            return True

        if LINUX_TAR.is_file():
            what = "C sources and headers of linux-source-6.1"
            with tarfile.open(LINUX_TAR, "r|xz") as tf:
                for m in tf:
                    if m.isfile() and m.name.endswith((".c", ".h")):
                        f = tf.extractfile(m)
                        if f is None or not add(f.read()):
                            break
        else:
            what = "text files of /usr/include and /usr/share/doc"
            for top in ("/usr/include", "/usr/share/doc"):
                for dirpath, _, files in sorted(os.walk(top)):
                    for name in sorted(files):
                        p = Path(dirpath, name)
                        if p.is_file() and not p.is_symlink() and not name.endswith(".gz"):
                            if not add(p.read_bytes()):
                                break
    if sizes[0] < want[0] or sizes[1] == 0:
        raise BenchError(f"not enough corpus data ({sizes[0]} + {sizes[1]} bytes of {what})")
    return out[0], out[1], what


def build(src: Path, cc: str, mode: str, profile: Path | None = None) -> Path:
    """Build programs/lz4: plain, instrumented (gen) or optimised (use)."""
    sh(["make", "-C", src / "lib", "clean"])
    sh(["make", "-C", src / "programs", "clean"])
    make = ["make", "-j2", "-C", src / "programs", "lz4"]
    kb = BIN / "kcov-build"
    if mode == "plain":
        sh([*make, f"CC={cc}", "CFLAGS=-O2"])
    elif mode == "gen":
        sh([kb, "--pgo-generate", "--compiler", cc, "--", *make, "CFLAGS=-O2"])
    else:
        sh([kb, "--pgo-use", profile, "--compiler", cc, "--", *make, "CFLAGS=-O2"])
    out = src.parent / f"lz4-{mode}"
    shutil.copy(src / "programs" / "lz4", out)
    return out


def cpu_run(cmd: list[object]) -> float:
    """CPU seconds (user + system) of one run of cmd, its output discarded."""
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise BenchError(f"{cmd[0]} exited {p.returncode}")
    return ru.ru_utime + ru.ru_stime


@dataclass(frozen=True)
class Stat:
    median: float
    lo: float
    hi: float

    @classmethod
    def of(cls, xs: list[float]) -> Stat:
        return cls(statistics.median(xs), min(xs), max(xs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small corpus and few rounds (seconds, not minutes)")
    ap.add_argument("--repeats", type=int, help="measurement rounds (default 15, quick 3)")
    ap.add_argument("--corpus", type=float, help="MiB of corpus (default 48, quick 2)")
    ap.add_argument("--compiler", default="clang-19")
    ap.add_argument("--json", action="store_true", help=f"also write {RESULTS.relative_to(ROOT)}")
    opts = ap.parse_args(argv)
    repeats = opts.repeats or (3 if opts.quick else 15)
    corpus_mib = opts.corpus or (2.0 if opts.quick else 48.0)
    train_mib = max(1.0, corpus_mib / 4)
    if shutil.which(opts.compiler) is None:
        print(f"bench_pgo: {opts.compiler} is not installed", file=sys.stderr)
        return 69
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="bench-pgo-", dir=base) as td:
        work = Path(td)
        try:
            t0 = time.monotonic()
            with tarfile.open(lz4_tarball()) as tf:
                tf.extractall(work, filter="data")
            src = work / "lz4-1.9.4"
            corpus, train, what = corpora(work, corpus_mib, train_mib)
            plain = build(src, opts.compiler, "plain")
            gen = build(src, opts.compiler, "gen")
            runs = work / "profiles"
            runs.mkdir()
            env = dict(os.environ, LLVM_PROFILE_FILE=f"{runs}/lz4-%m.profraw")
            for args in (["-1"], ["-9"], ["-1", "-BD"]):
                sh([gen, "-q", "-f", *args, train, work / "t.lz4"], env=env)
                sh([gen, "-q", "-d", "-f", work / "t.lz4", work / "t.out"], env=env)
            profile = work / "lz4.profdata"
            sh([BIN / "kcov-build", "pgo", "merge", "-o", profile, *sorted(runs.iterdir())])
            pgo = build(src, opts.compiler, "use", profile)
            built = time.monotonic() - t0

            exes = {"plain": plain, "pgo": pgo}
            part = work / "part.bin"  # level 9 is ~20x slower: a sixth of the corpus
            with open(corpus, "rb") as f:
                part.write_bytes(f.read(corpus.stat().st_size // 6))
            packed: dict[str, bytes] = {}
            for b, exe in exes.items():
                sh([exe, "-q", "-f", "-1", corpus, work / f"c-{b}.lz4"])
                sh([exe, "-q", "-d", "-f", work / f"c-{b}.lz4", work / f"d-{b}.out"])
                if (work / f"d-{b}.out").read_bytes() != corpus.read_bytes():
                    raise BenchError(f"the {b} lz4 did not round-trip the corpus")
                packed[b] = (work / f"c-{b}.lz4").read_bytes()
            if packed["plain"] != packed["pgo"]:
                raise BenchError("plain and PGO lz4 compress the corpus differently")
            steps = {
                "compress -1": lambda exe: [exe, "-q", "-c", "-1", corpus],
                "compress -9": lambda exe: [exe, "-q", "-c", "-9", part],
                "decompress": lambda exe: [exe, "-q", "-d", "-c", work / "c-plain.lz4"],
            }
            times: dict[str, dict[str, list[float]]] = {b: {k: [] for k in steps} for b in exes}
            for r in range(repeats + 1):
                for b in (("plain", "pgo") if r % 2 == 0 else ("pgo", "plain")):
                    for step, cmd in steps.items():
                        t = cpu_run(cmd(exes[b]))
                        if r > 0:  # round 0 warms the page cache and the CPU
                            times[b][step].append(t)
        except (BenchError, OSError, tarfile.TarError) as e:
            print(f"bench_pgo: {e}", file=sys.stderr)
            return 1

    stats = {b: {k: Stat.of(v) for k, v in per_step.items()} for b, per_step in times.items()}
    total = {b: Stat.of([sum(r) for r in zip(*times[b].values())]) for b in times}
    print(f"PGO through kcov's profile runtime: lz4 1.9.4, {opts.compiler} -O2")
    print(f"corpus: {corpus_mib:g} MiB of {what} (level 9: the first {corpus_mib / 6:.3g} MiB); "
          f"training: the next {train_mib:g} MiB")
    print(f"{repeats} rounds, plain and PGO interleaved; CPU time per run: median [min-max]")
    print(f"{'':14}{'plain -O2':>26}{'PGO -O2':>26}{'plain/PGO':>11}")
    for step in times["plain"]:
        a, b = stats["plain"][step], stats["pgo"][step]
        print(f"{step:14}{_fmt(a):>26}{_fmt(b):>26}{a.median / b.median:>11.3f}")
    a, b = total["plain"], total["pgo"]
    ratio = a.median / b.median
    print(f"{'total':14}{_fmt(a):>26}{_fmt(b):>26}{ratio:>11.3f}")
    print(f"speed-up of PGO over plain -O2: {ratio:.3f}x  (builds and training: {built:.0f} s)")
    if opts.json:
        write_atomic(RESULTS, json.dumps({
            "compiler": opts.compiler, "corpus_mib": corpus_mib, "repeats": repeats, "corpus": what,
            "plain": {k: asdict(v) for k, v in stats["plain"].items()} | {"total": asdict(total["plain"])},
            "pgo": {k: asdict(v) for k, v in stats["pgo"].items()} | {"total": asdict(total["pgo"])},
            "speedup": ratio,
        }, indent=1) + "\n")
    return 0


def _fmt(s: Stat) -> str:
    return f"{s.median * 1e3:.1f} ms [{s.lo * 1e3:.1f}-{s.hi * 1e3:.1f}]"


if __name__ == "__main__":
    sys.exit(main())
