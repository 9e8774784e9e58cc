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
  before it does, the state of every vCPU (instruction pointer, interrupt
  flag, the words on its stack), read through qemu's monitor and
  symbolised with `symbols` (a System.map or a /proc/kallsyms copy), so a
  guest that froze silently still says where;
* `nokaslr` on the kernel command line, so PCs match System.map;
* `dmesg_problems()`, the WARN/BUG/Oops/KFENCE scan every VM test ends with.

Works with a distribution kernel (/boot/vmlinuz-*, whose modules vng finds
under /lib/modules and loads from an initramfs it builds) and with a
self-built bzImage whose virtio, 9p and console drivers are built in
(kernel_conf/linux/vm.config).
"""
from __future__ import annotations

import bisect
import os
import re
import shlex
import shutil
import signal
import socket
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
        # What the watchdog or the timeout printed is shown whole.
        for mark in (WATCHDOG_MARK, VCPU_MARK):
            at = next((i for i, line in enumerate(lines) if mark in line), None)
            if at is not None and at < len(lines) - 40:
                tail = "\n".join(lines[at:at + 300]) + "\n[...]\n" + tail
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
    #: System.map or /proc/kallsyms text ("ADDR TYPE NAME [module]"), read at
    #: a timeout to name the vCPUs' code; the guest may write it (kallsyms
    #: after its modules are loaded).  None: the image's own System.map if
    #: it is a build tree's.
    symbols: Path | None = None

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
        cmd.append(f"--qemu-opts=-monitor unix:{shared / MONITOR},server,nowait")
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
            state = vcpu_state(shared / MONITOR, self.symbols or _build_tree_map(self.kernel))
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            err += f"\n{VCPU_MARK}\n{state}\n"
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


MONITOR = "monitor.sock"
VCPU_MARK = "--- vCPUs at the timeout (qemu monitor) ---"


def _build_tree_map(image: Path) -> Path | None:
    """The System.map of a kernel build tree's arch/x86/boot/bzImage."""
    parents = image.resolve().parents
    return parents[3] / "System.map" if len(parents) > 3 and (parents[3] / "System.map").is_file() else None


def _hmp(sock: socket.socket, command: str, quiet: float = 0.5, limit: float = 5.0) -> str:
    """One human-monitor command's output."""
    sock.sendall(command.encode() + b"\n")
    out, end = b"", time.monotonic() + limit
    sock.settimeout(quiet)
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode(errors="replace"))


def load_symbols(path: Path | None) -> tuple[list[int], list[str]]:
    """Sorted text-symbol addresses and names from a System.map or kallsyms."""
    if path is None or not path.is_file():
        return [], []
    syms = []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW" and parts[0].strip("0") != "":
            name = parts[2] + (f" {parts[3]}" if len(parts) > 3 else "")
            syms.append((int(parts[0], 16), name))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def symbolise(addr: int, addrs: list[int], names: list[str]) -> str | None:
    i = bisect.bisect_right(addrs, addr) - 1
    if i < 0 or addr - addrs[i] > 0x10000:
        return None
    return f"{names[i]}+{addr - addrs[i]:#x}"


def vcpu_state(monitor: Path, symbols: Path | None, stack_words: int = 96) -> str:
    """Where each vCPU of a running qemu is, read through its monitor socket:
    RIP, whether interrupts are enabled, and the code addresses found among
    the words on its stack (a rough backtrace), each symbolised."""
    addrs, names = load_symbols(symbols)
    lines = [] if addrs else [f"(no symbols: {symbols or 'none given'})"]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(monitor))
            _hmp(sock, "")
            info = [line.strip() for line in _hmp(sock, "info cpus").splitlines() if "CPU #" in line]
            lines += info
            for cpu in sorted(int(n) for n in re.findall(r"CPU #(\d+)", "\n".join(info))):
                _hmp(sock, f"cpu {cpu}")
                regs = _hmp(sock, "info registers")
                rip = re.search(r"RIP=([0-9a-f]{16})", regs)
                rsp = re.search(r"RSP=([0-9a-f]{16})", regs)
                rfl = re.search(r"RFL=([0-9a-f]+)", regs)
                if rip is None or rsp is None:
                    lines.append(f"CPU {cpu}: no registers")
                    continue
                ip = int(rip.group(1), 16)
                irq = "on" if rfl is not None and int(rfl.group(1), 16) & 0x200 else "off"
                lines.append(f"CPU {cpu}: RIP {ip:#x} {symbolise(ip, addrs, names) or '?'}, interrupts {irq}")
                dump = _hmp(sock, f"x /{stack_words}gx 0x{rsp.group(1)}")
                for word in re.findall(r"0x([0-9a-f]{16})", dump):
                    where = symbolise(int(word, 16), addrs, names)
                    if where is not None:
                        lines.append(f"    stack: {where}")
    except OSError as e:
        lines.append(f"(qemu monitor unavailable: {e})")
    return "\n".join(lines)


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
