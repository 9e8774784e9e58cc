"""Run a shell command inside a qemu VM with virtme-ng, from a host test.

virtme-ng (`vng`, PyPI) boots a kernel image with the host's root file
system shared read-only over virtio-9p (writable overlays on /etc, /tmp,
/var, ...), runs one command as root and exits with its status; stdin,
stdout and stderr of the command are virtio-serial ports wired to vng's own.
So the project's `.venv` and source tree are usable in the guest unchanged.
There is no KVM here: qemu runs in TCG (`--disable-kvm`), which is slow but
deterministic enough for tests.

What this adds on top of vng:

* a private host directory shared read-write with the guest (`--rwdir`),
  where the guest script leaves its exit status and the guest's `dmesg`, so
  the kernel log comes back even when the command fails;
* a timeout that kills qemu (the whole process group), never a hung test;
* `nokaslr` on the kernel command line, so PCs match System.map;
* `dmesg_problems()`, the WARN/BUG/Oops/KFENCE scan every VM test ends with.

Works with a distribution kernel (/boot/vmlinuz-*, whose modules vng finds
under /lib/modules and loads from an initramfs it builds) and with a
self-built bzImage whose virtio, 9p and console drivers are built in
(kernel_conf/linux/vm.config).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .prereq import REPO, VENV_BIN
from .watchdog import WATCHDOG_MARK

# Kernel log lines that mean the kernel misbehaved.
_PROBLEM = re.compile(
    r"(WARNING:|BUG:|kernel BUG at|Oops|general protection fault|KFENCE:|KASAN:|UBSAN:"
    r"|Kernel panic|Call Trace:|RIP: )"
)


def find_vng() -> str | None:
    """vng from the project's venv first, then from PATH."""
    path = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
    return shutil.which("vng", path=path)


def dmesg_problems(dmesg: str) -> list[str]:
    """The lines of a kernel log that report a WARN, BUG, Oops, ..."""
    return [line for line in dmesg.splitlines() if _PROBLEM.search(line)]


@dataclass
class VmResult:
    """What a command run in the VM left behind."""

    #: Exit status of the command in the guest; None if it never reported
    #: one (boot failure, timeout, panic).
    returncode: int | None
    stdout: str
    stderr: str
    #: `dmesg` of the guest, taken after the command; "" if unavailable.
    dmesg: str
    #: Exit status of vng itself (qemu).
    vng_returncode: int | None
    seconds: float
    timed_out: bool = False
    command: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A summary for assertion messages."""
        lines = self.stderr.splitlines()
        tail = "\n".join(lines[-40:])
        fired = next((i for i, line in enumerate(lines) if WATCHDOG_MARK in line), None)
        if fired is not None and fired < len(lines) - 40:
            tail = "\n".join(lines[fired:fired + 300]) + "\n[...]\n" + tail
        return (
            f"guest exit {self.returncode}, vng exit {self.vng_returncode}, "
            f"{self.seconds:.0f}s{' (timed out)' if self.timed_out else ''}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr/console (tail) ---\n{tail}\n"
            f"--- dmesg (tail) ---\n" + "\n".join(self.dmesg.splitlines()[-30:])
        )


@dataclass
class Vm:
    """A kernel image to boot, and how.

    `memory` and `cpus` go to qemu; `append` adds kernel parameters; the
    command runs in `cwd` (a host path, visible at the same place in the
    guest) with `env` exported on top of vng's environment.
    """

    kernel: Path
    memory: str = "1G"
    cpus: int | None = None
    append: Sequence[str] = ("nokaslr",)
    timeout: float = 600.0
    console: bool = True  # the kernel's console log in VmResult.stderr (vng --verbose)
    extra_args: Sequence[str] = ()

    def command(self, script: str, shared: Path, cwd: Path) -> list[str]:
        vng = find_vng()
        if vng is None:
            raise FileNotFoundError("vng (virtme-ng) not found in .venv/bin or on PATH")
        cmd = [vng, "--run", str(self.kernel), "--disable-kvm", "--memory", self.memory,
               f"--rwdir={shared}", "--cwd", str(cwd)]
        if self.cpus is not None:
            cmd += ["--cpus", str(self.cpus)]
        for a in self.append:
            cmd += ["--append", a]
        if self.console:
            cmd.append("--verbose")
        cmd += [*self.extra_args, "--exec", script]
        return cmd

    def run(self, shell_command: str, *, cwd: Path | str = REPO, env: Mapping[str, str] | None = None,
            timeout: float | None = None) -> VmResult:
        """Boot, run `shell_command` with /bin/sh, collect output and dmesg, power off."""
        shared = Path(tempfile.mkdtemp(prefix="kcov-vm-"))
        try:
            script = shared / "run.sh"
            script.write_text(_guest_script(shell_command, shared, Path(cwd), env or {}))
            cmd = self.command(f"/bin/sh {shlex.quote(str(script))}", shared, Path(cwd))
            return self._run(cmd, shared, Path(cwd), timeout if timeout is not None else self.timeout)
        finally:
            shutil.rmtree(shared, ignore_errors=True)

    def _run(self, cmd: list[str], shared: Path, cwd: Path, timeout: float) -> VmResult:
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        rc_file = shared / "rc"
        rc_text = rc_file.read_text().strip() if rc_file.is_file() else ""
        dmesg_file = shared / "dmesg"
        return VmResult(
            returncode=int(rc_text) if rc_text.lstrip("-").isdigit() else None,
            stdout=out,
            stderr=err,
            dmesg=dmesg_file.read_text(errors="replace") if dmesg_file.is_file() else "",
            vng_returncode=None if timed_out else proc.returncode,
            seconds=time.monotonic() - t0,
            timed_out=timed_out,
            command=cmd,
        )


def _guest_script(command: str, shared: Path, cwd: Path, env: Mapping[str, str]) -> str:
    """The /bin/sh script the guest runs: the command, then its status and dmesg."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    q = shlex.quote
    return (
        "#!/bin/sh\n"
        f"export PATH={q(str(VENV_BIN))}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "export HOME=/tmp PYTHONDONTWRITEBYTECODE=1 KCOV_GUEST=1\n"
        # tests.support and examples.kernel import from any cwd
        f"export PYTHONPATH={q(str(REPO))}\n"
        f"{exports}"
        f"cd {q(str(cwd))} || exit 125\n"
        f"( {command}\n)\n"
        "rc=$?\n"
        f"dmesg > {q(str(shared / 'dmesg'))} 2>&1\n"
        f"echo $rc > {q(str(shared / 'rc'))}\n"
        "sync\n"
        "exit $rc\n"
    )
