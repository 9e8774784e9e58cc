"""User-space programs the guest suite runs against kcov.ko, built on the host.

* Linux's own kcov clients: the PC and comparison examples of
  Documentation/dev-tools/kcov.rst, taken from the linux-source-6.1 tarball
  and compiled unchanged with gcc.  The comparison example's block starts
  with "/* Same includes and defines as above. */", so it is compiled with
  the first example's includes and defines in front, as the text says.
  Their locally defined constants are checked against Debian's
  <linux/kcov.h> (linux-libc-dev) at compile time.
* data/progs/forkserver.c (syzkaller's fork-server sequence) and
  data/progs/stress.c, each built for the Linux ABI and for FreeBSD's
  (with the kcov package's compat <sys/kcov.h>).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import kcov

HERE = Path(__file__).resolve().parent
PROGS = HERE / "data" / "progs"

# The example's #defines that <linux/kcov.h> also defines (as a macro or an
# enumerator), and so must agree with it.
UAPI_NAMES = ("KCOV_INIT_TRACE", "KCOV_ENABLE", "KCOV_DISABLE", "KCOV_TRACE_PC",
              "KCOV_TRACE_CMP", "KCOV_CMP_CONST", "KCOV_CMP_MASK")


@dataclass(frozen=True)
class Programs:
    """The built programs (guest paths are the same: the guest shares /)."""

    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name


def code_blocks(rst: str) -> list[str]:
    """The `.. code-block:: c` blocks of a reStructuredText document, with
    the block's 4-space indentation removed (body lines indented by a tab
    in kcov.rst keep it)."""
    blocks, lines, i = [], rst.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == ".. code-block:: c":
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i][0] in " \t"):
                body.append(lines[i][4:] if lines[i].startswith("    ") else lines[i])
                i += 1
            blocks.append("\n".join(body).strip("\n") + "\n")
        else:
            i += 1
    return blocks


def kcov_rst_examples(rst: str) -> dict[str, str]:
    """{"pc": source, "cmp": source} from kcov.rst's first two examples."""
    blocks = code_blocks(rst)
    assert len(blocks) >= 2, "kcov.rst: expected the PC and comparison examples"
    pc, cmp = blocks[0], blocks[1]
    assert "KCOV_TRACE_PC" in pc and "int main" in pc, pc
    assert cmp.startswith("/* Same includes and defines as above. */"), cmp[:200]
    prelude = pc[:pc.index("int main")]
    return {"pc": pc, "cmp": prelude + cmp}


def defines(source: str) -> dict[str, str]:
    """Object-like #defines of a C source: name -> replacement text."""
    out = {}
    for m in re.finditer(r"^\s*#define\s+(\w+)(?!\()\s+(.+?)\s*$", source, re.M):
        out[m.group(1)] = m.group(2)
    return out


def constants_check(source: str) -> str:
    """A C file that fails to compile unless the example's constants equal
    <linux/kcov.h>'s."""
    lines = ["#include <sys/ioctl.h>", "#include <linux/kcov.h>"]
    found = defines(source)
    for name in UAPI_NAMES:
        if name in found:
            lines.append(f'_Static_assert(({found[name]}) == ({name}), "{name}");')
    # KCOV_CMP_SIZE(n) is function-like: compare it by its use.
    m = re.search(r"#define\s+KCOV_CMP_SIZE\(n\)\s+(.+)", source)
    if m:
        lines.append(f'_Static_assert(({m.group(1).replace("(n)", "(3)")}) == KCOV_CMP_SIZE(3), '
                     '"KCOV_CMP_SIZE");')
    return "\n".join(lines) + "\n"


def gcc(args: list[str]) -> None:
    p = subprocess.run(["gcc", *args], capture_output=True, text=True, check=False)
    assert p.returncode == 0, f"gcc {' '.join(args)} failed:\n{p.stderr[-4000:]}"


def build(out: Path, rst: str) -> Programs:
    """Compile everything into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for name, src in kcov_rst_examples(rst).items():
        (out / f"kcov_rst_{name}.c").write_text(src)
        check = out / f"kcov_rst_{name}_uapi.c"
        check.write_text(constants_check(src))
        gcc(["-fsyntax-only", str(check)])
        gcc(["-O2", str(out / f"kcov_rst_{name}.c"), "-o", str(out / f"kcov_rst_{name}")])
    bsd = ["-DFORKSERVER_FREEBSD", "-DSTRESS_FREEBSD",
           f"-I{Path(kcov.get_include()) / 'kcov' / 'compat' / 'freebsd'}"]
    for prog, extra in (("forkserver", []), ("stress", ["-pthread"])):
        for abi, flags in (("linux", []), ("freebsd", bsd)):
            gcc(["-O2", "-Wall", "-Wextra", "-Werror", *extra, *flags,
                 str(PROGS / f"{prog}.c"), "-o", str(out / f"{prog}-{abi}")])
    return Programs(out)
