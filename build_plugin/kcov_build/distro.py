"""The distribution's stock kernels installed on this machine: the one place
that says which kernel image and headers kcov.ko, the examples and the test
suites build against.

Debian moves its kernel ABI number with every security update
(6.1.0-56-amd64, then 6.1.0-57-amd64, ...): `linux-image-amd64` and
`linux-headers-amd64` are meta-packages that pull in whatever is current.
So nothing here names a version.  A stock kernel is an image
`/boot/vmlinuz-RELEASE` whose kbuild headers `/usr/src/linux-headers-RELEASE`
are installed too (a module needs both: the headers to build it, the image
to boot it), and the stock kernel is the newest of those, by version.

Debian 12 ships several flavours beside the generic one (`-cloud-amd64`,
`-rt-amd64`) and two series (6.1 and 6.12); `flavour` and `series` choose
among them.  KCOV_STOCK_KERNEL=RELEASE overrides the choice (it must name an
installed kernel with its headers).

    kcov-build stock-kernel [--series 6.1] [--flavour amd64] [--image|--headers]

prints the release (or the image's or the headers' path), for shell use:
`make -C runtime/linux KDIR=$(kcov-build stock-kernel --headers)`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

BOOT = Path("/boot")
SRC = Path("/usr/src")
ENV = "KCOV_STOCK_KERNEL"

# 6.1.0-57-amd64, 6.1.0-57-cloud-amd64, 6.12.48+deb12-rt-amd64, ...
_RELEASE = re.compile(
    r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)"
    r"(?:-(?P<abi>\d+))?(?:\+(?P<tag>[0-9A-Za-z.~]+))?-(?P<flavour>[a-z0-9-]+)$"
)


class NoStockKernel(LookupError):
    """No installed kernel image with its headers matches; the message says
    what was found and which package to install."""


@dataclass(frozen=True, order=True)
class StockKernel:
    """An installed distribution kernel: its image and its kbuild headers."""

    version: tuple[int, int, int, int]
    release: str  # e.g. 6.1.0-57-amd64, what `uname -r` prints when it runs
    flavour: str  # amd64, cloud-amd64, rt-amd64
    image: Path  # /boot/vmlinuz-RELEASE
    headers: Path  # /usr/src/linux-headers-RELEASE (KDIR of an out-of-tree module)

    @property
    def series(self) -> str:
        """'6.1' or '6.12': which linux-source-SERIES the kernel was built from."""
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def modules(self) -> Path:
        return Path("/lib/modules") / self.release


def parse_release(release: str) -> tuple[tuple[int, int, int, int], str] | None:
    """(version, flavour) of a Debian kernel release string, or None.

    The flavour is all that follows the version: 6.1.0-57-rt-amd64 is
    rt-amd64, not amd64."""
    m = _RELEASE.match(release)
    if m is None:
        return None
    version = (int(m.group("major")), int(m.group("minor")), int(m.group("patch")), int(m.group("abi") or 0))
    return version, m.group("flavour")


def installed(boot: Path = BOOT, src: Path = SRC) -> list[StockKernel]:
    """Every kernel with an image in boot and headers in src, newest first."""
    found = []
    for image in boot.glob("vmlinuz-*"):
        release = image.name.removeprefix("vmlinuz-")
        parsed = parse_release(release)
        headers = src / f"linux-headers-{release}"
        if parsed is None or not image.is_file() or not (headers / "Makefile").is_file():
            continue
        version, flavour = parsed
        found.append(StockKernel(version, release, flavour, image, headers))
    return sorted(found, reverse=True)


def stock_kernel(
    series: str | None = None, flavour: str = "amd64", *, boot: Path = BOOT, src: Path = SRC,
    environ: Mapping[str, str] | None = None,
) -> StockKernel:
    """The newest installed kernel of that flavour (and series, if given)
    that has both its image and its headers, or KCOV_STOCK_KERNEL's."""
    env = os.environ if environ is None else environ
    kernels = installed(boot, src)
    wanted = env.get(ENV, "")
    if wanted:
        for k in kernels:
            if k.release == wanted:
                return k
        raise NoStockKernel(
            f"{ENV}={wanted}: no {boot}/vmlinuz-{wanted} with headers in {src}/linux-headers-{wanted} "
            f"(apt install linux-image-{wanted} linux-headers-{wanted})"
        )
    for k in kernels:
        if k.flavour == flavour and (series is None or k.series == series):
            return k
    images = sorted(p.name for p in boot.glob("vmlinuz-*"))
    headers = sorted(p.name for p in src.glob("linux-headers-*"))
    what = f"{flavour} kernel" + (f" of the {series} series" if series else "")
    pkg = (f"linux-image-{flavour} linux-headers-{flavour}" if series in (None, "6.1")
           else f"linux-image-{series}-{flavour} linux-headers-{series}-{flavour}")
    raise NoStockKernel(
        f"no {what} with both {boot}/vmlinuz-RELEASE and {src}/linux-headers-RELEASE "
        f"(images: {', '.join(images) or 'none'}; headers: {', '.join(headers) or 'none'}); "
        f"apt install {pkg}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here only: stock_kernel() stays importable without the built
    # kcov package (examples/kernel and tests/support import this module).
    from kcov._base.errors import ArgumentParser, ToolkitError, run_cli

    p = ArgumentParser(
        prog="kcov-build stock-kernel",
        description="Print the installed stock kernel (newest image with its headers): "
                    "its release, or with --image/--headers a path.",
        usage_message=lambda prog, message: f"{message} (try '{prog} --help')",
    )
    p.add_argument("--series", help="6.1 or 6.12 (default: any)")
    p.add_argument("--flavour", default="amd64", help="amd64 (default), cloud-amd64 or rt-amd64")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--image", action="store_true", help="print /boot/vmlinuz-RELEASE")
    what.add_argument("--headers", action="store_true", help="print /usr/src/linux-headers-RELEASE")
    what.add_argument("--all", action="store_true", help="list every installed kernel with headers")

    def run() -> int:
        opts = p.parse_args(argv)
        if opts.all:
            for k in installed():
                print(f"{k.release}\t{k.image}\t{k.headers}")
            return os.EX_OK
        try:
            k = stock_kernel(opts.series, opts.flavour)
        except NoStockKernel as e:
            raise ToolkitError(str(e), os.EX_UNAVAILABLE) from None
        print(k.image if opts.image else k.headers if opts.headers else k.release)
        return os.EX_OK

    return run_cli(p.prog, run)
