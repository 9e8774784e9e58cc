"""`make demo-kernel`: coverage of a real file system driver on the stock kernel.

1. Builds kcov.ko (runtime/linux) for the installed Debian kernel, and
   fs/minix from Debian's linux-source-6.1 as minix.ko, instrumented with
   trace-pc,trace-cmp by kcov-build (kmodules.py), into build/demo-kernel/.
2. Boots the stock kernel (the newest installed /boot/vmlinuz-6.1.*-amd64
   with its headers, found by kcov_build.distro), which has no
   CONFIG_KCOV, under qemu with virtme-ng (TCG: no KVM needed), loads both
   modules there and runs minixcov.py: mkfs.minix, a loop mount, and one
   kcov trace per file operation through /sys/kernel/debug/kcov.
3. Prints, per operation, the PCs recorded, how many were new, and the
   minix functions reached.

Run from the repository root: .venv/bin/python examples/kernel/demo_kernel.py
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kmodules as K  # noqa: E402

OUT = K.REPO / "build" / "demo-kernel"
VM_TIMEOUT = 600.0


def step(msg: str) -> None:
    print(msg, flush=True)


def coverage_sites(ko: Path) -> tuple[int, int]:
    """(functions, trace-pc call sites) of an instrumented module."""
    from kcov_build.objcheck import callback_calls

    calls = callback_calls(ko)
    return len(calls), sum(c.get("__sanitizer_cov_trace_pc", 0) for c in calls.values())


def boot_and_trace(kcov_ko: Path, minix_ko: Path) -> dict[str, object]:
    """Run minixcov.py in a VM; its JSON result."""
    shared = Path(tempfile.mkdtemp(prefix="kcov-demo-"))
    result = shared / "result.json"
    py = shlex.quote(sys.executable)
    script = (f"{py} {shlex.quote(str(HERE / 'minixcov.py'))} --kcov-ko {shlex.quote(str(kcov_ko))} "
              f"--ko {shlex.quote(str(minix_ko))} --json {shlex.quote(str(result))} "
              f"2> {shlex.quote(str(shared / 'stderr'))}")
    vng = str(K.venv_bin() / "vng")
    cmd = [vng, "--run", str(K.stock().image), "--disable-kvm", "--memory", "1G",
           f"--rwdir={shared}", "--cwd", str(K.REPO), "--append", "nokaslr",
           "--exec", script]
    env = dict(os.environ, PATH=os.pathsep.join([str(K.venv_bin()), os.environ.get("PATH", "")]),
               PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.Popen(cmd, cwd=K.REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=VM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(timed out after {VM_TIMEOUT:.0f} s)"
    guest_err = (shared / "stderr").read_text() if (shared / "stderr").is_file() else ""
    if not result.is_file():
        tail = "\n".join((out + err + guest_err).splitlines()[-30:])
        raise SystemExit(f"demo-kernel: the guest left no result (vng exit {proc.returncode})\n{tail}")
    data: dict[str, object] = json.loads(result.read_text())
    for f in shared.iterdir():
        f.unlink()
    shared.rmdir()
    return data


def summary(data: dict[str, object], sites: int) -> list[str]:
    """The per-operation table."""
    ops: list[dict[str, object]] = data["ops"]  # type: ignore[assignment]
    lines = [f"{'operation':<10} {'records':>7} {'PCs':>5} {'new':>5}  top functions (distinct PCs)"]
    seen: set[int] = set()
    for o in ops:
        pcs = set(o["pcs"])  # type: ignore[call-overload]
        new = pcs - seen
        seen |= pcs
        funcs: dict[str, int] = o["functions"]  # type: ignore[assignment]
        top = sorted(funcs.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
        lines.append(f"{o['name']:<10} {o['records']:>7} {len(pcs):>5} {len(new):>5}  "
                     + ", ".join(f"{name} {n}" for name, n in top))
    reached = {fn for o in ops for fn in o["functions"]}  # type: ignore[attr-defined]
    sections: dict[str, list[int]] = data["sections"]  # type: ignore[assignment]
    inside = {pc for pc in seen if any(lo < pc <= hi for lo, hi in sections.values())}
    lines.append(f"all operations: {len(seen)} distinct PCs ({len(inside)} in minix.ko's text, "
                 f"{len(reached - {'?'})} functions) of {sites} trace-pc call sites")
    if len(inside) < len(seen):
        lines.append(f"  ({len(seen) - len(inside)} in the kernel's text: a coverage call that ends "
                     "a function is a jmp, so its return address is the caller's)")
    return lines


def main() -> int:
    t0 = time.monotonic()
    missing = K.missing_prerequisites()
    if missing:
        print("demo-kernel: missing " + "; ".join(missing) + " (run `make setup`)", file=sys.stderr)
        return 69
    try:
        step(f"building kcov.ko (runtime/linux) for {K.stock().release} ...")
        kcov_mod = K.build_kcov(OUT / "kcov")
        step("extracting fs/minix from linux-source-6.1 and building minix.ko with kcov-build ...")
        minix = K.build_minix(OUT / "minix", kcov_mod.symvers)
    except K.BuildError as e:
        print(f"demo-kernel: {e}", file=sys.stderr)
        return 70
    funcs, sites = coverage_sites(minix.ko)
    step(f"  minix.ko: {funcs} functions, {sites} trace-pc call sites "
         f"({time.monotonic() - t0:.0f} s so far)")
    step(f"booting {K.stock().image} under qemu (TCG) and tracing fs/minix ...")
    t1 = time.monotonic()
    data = boot_and_trace(kcov_mod.ko, minix.ko)
    step(f"  VM done in {time.monotonic() - t1:.0f} s\n")
    for line in summary(data, sites):
        print(line)
    print(f"\ndemo-kernel: {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
