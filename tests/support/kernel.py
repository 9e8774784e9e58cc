"""The stock kernel the kernel suites boot and build modules for: the newest
installed Debian kernel of the series linux-source provides (6.1), found by
kcov_build.distro (the one place that derives it; see its docstring)."""
from __future__ import annotations

import functools

from kcov_build.distro import NoStockKernel, StockKernel, stock_kernel

from .prereq import missing

#: linux-source-SERIES is what tests/kmod and tests/kstress build minix.ko
#: and the debug kernel from; the stock kernel must be of the same series.
SERIES = "6.1"


@functools.lru_cache(maxsize=None)
def _find() -> StockKernel | str:
    try:
        return stock_kernel(SERIES)
    except NoStockKernel as e:
        return str(e)


def stock() -> StockKernel:
    """The stock kernel, or skip (fail where everything is required)."""
    k = _find()
    if isinstance(k, str):
        missing(k)
    return k
