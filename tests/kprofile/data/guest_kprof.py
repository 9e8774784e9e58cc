"""Runs inside the VM (tests/kprofile): loads kcov.ko and a kprofdemo.ko,
drives the workload through /sys/kernel/debug/kprofdemo and copies what
kcov.ko serves to the shared directory for the host to judge.

    guest_kprof.py OUT KCOV_KO PHASE KPROFDEMO_KO [BAD_KO VP_KO]

PHASE "sbcc": the module built with kcov-build --sbcc; saves its profile
after loading (init.profraw), after a reset (reset.profraw) and after the
workload (workload.profraw), then unloads it and kcov.ko.  BAD_KO, if
given, is a module whose link claims another raw version: kcov.ko must
refuse to serve its profile.  VP_KO is kprofdemo built for IR PGO: the
workload again, and its profile (vp.profraw) with the values kcov.ko
recorded at the indirect calls.
PHASE "pgo": the module rebuilt with the profile (not instrumented): the
same workload, and kcov.ko must not list it.

Everything it saw goes to OUT/PHASE.json; the exit status is 0 unless a step
could not be run at all (the host asserts on the JSON).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROFDIR = Path("/sys/kernel/debug/kcov-profile")
DEMO = Path("/sys/kernel/debug/kprofdemo")

# (command, expected result); "bogus 1" must fail with EINVAL.
WORKLOAD = [
    ("classify -5", -1), ("classify 0", 0), ("classify 7", 1), ("classify 42", 1),
    ("classify 99", 1), ("classify 1000", 2),
    ("collatz 27", 111), ("collatz 1", 0), ("collatz 6", 8),
    ("bogus 1", None),
]


def sh(*cmd: str) -> dict[str, object]:
    p = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    return {"cmd": " ".join(cmd), "rc": p.returncode, "out": p.stdout + p.stderr}


def workload() -> list[dict[str, object]]:
    done: list[dict[str, object]] = []
    for cmd, want in WORKLOAD:
        fd = os.open(DEMO, os.O_WRONLY)
        try:
            os.write(fd, cmd.encode())
            err = 0
        except OSError as e:
            err = e.errno
        finally:
            os.close(fd)
        got = int(DEMO.read_text()) if err == 0 else None
        done.append({"cmd": cmd, "want": want, "got": got, "errno": err})
    return done


def main() -> int:
    out, kcov_ko, phase, demo_ko = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    bad_ko = sys.argv[5] if len(sys.argv) > 5 else None
    vp_ko = sys.argv[6] if len(sys.argv) > 6 else None
    res: dict[str, object] = {"steps": []}
    steps: list[dict[str, object]] = res["steps"]  # type: ignore[assignment]
    steps.append(sh("insmod", kcov_ko))
    res["dir_after_kcov"] = sorted(os.listdir(PROFDIR)) if PROFDIR.is_dir() else None
    steps.append(sh("insmod", demo_ko))
    res["files"] = sorted(os.listdir(PROFDIR)) if PROFDIR.is_dir() else None
    prof = PROFDIR / "kprofdemo.profraw"
    if phase == "sbcc" and prof.is_file():
        (out / "init.profraw").write_bytes(prof.read_bytes())
        with open(prof, "wb") as f:  # any write resets
            f.write(b"1")
        (out / "reset.profraw").write_bytes(prof.read_bytes())
    res["workload"] = workload()
    if phase == "sbcc" and prof.is_file():
        (out / "workload.profraw").write_bytes(prof.read_bytes())
        # Two snapshots of an idle module are identical.
        res["stable"] = prof.read_bytes() == (out / "workload.profraw").read_bytes()
    steps.append(sh("rmmod", "kprofdemo"))
    res["files_after_rmmod"] = sorted(os.listdir(PROFDIR)) if PROFDIR.is_dir() else None
    if bad_ko is not None:
        steps.append(sh("insmod", bad_ko))
        res["files_with_bad"] = sorted(os.listdir(PROFDIR))
        steps.append(sh("rmmod", Path(bad_ko).stem))
    if vp_ko is not None:
        steps.append(sh("insmod", vp_ko))
        vp = PROFDIR / "kprofvp.profraw"
        res["files_with_vp"] = sorted(os.listdir(PROFDIR))
        with open(vp, "wb") as f:
            f.write(b"1")
        res["vp_workload"] = workload()
        (out / "vp.profraw").write_bytes(vp.read_bytes())
        steps.append(sh("rmmod", Path(vp_ko).stem))
    steps.append(sh("rmmod", "kcov"))
    res["dir_after_unload"] = PROFDIR.exists()
    (out / f"{phase}.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
