"""Each kernel of the suite (tests/support/kernels.py), built by
`kcov-build kernel` from linux-source-6.1, has what its suites rely on.

The kernel suites boot these kernels; here each is only built and checked.
Under pytest-xdist each test here is a unit of its own, taken right after
the chain of kernel suites (tests/conftest.py): so one worker builds the
kernels while the other goes through the suites, which then find them built
(under a lock, shared through the run's temporary directory) instead of
building them one after the other in the chain.
"""
from __future__ import annotations

import pytest

from tests.support.kernels import KERNELS, build_kernel

pytestmark = pytest.mark.slow

# Options each kernel must have (or not: "n"), beyond the image itself.
KCOV = {"CONFIG_KCOV": "y", "CONFIG_KCOV_ENABLE_COMPARISONS": "y", "CONFIG_KCOV_INSTRUMENT_ALL": "y",
        "CONFIG_DEBUG_FS": "y", "CONFIG_9P_FS": "y", "CONFIG_64BIT": "y"}
WANT = {
    # tests/kprofile loads kcov.ko and an SBCC module into it.
    "clang-19": KCOV | {"CONFIG_MODULES": "y", "CONFIG_MODULE_UNLOAD": "y", "CONFIG_CC_IS_CLANG": "y"},
    # tests/kstress: kcov.ko under KASAN, kmemleak and lockdep, no in-tree kcov.
    "debug": {
        "CONFIG_KASAN": "y", "CONFIG_KASAN_GENERIC": "y", "CONFIG_KASAN_INLINE": "y",
        "CONFIG_KASAN_VMALLOC": "y", "CONFIG_DEBUG_KMEMLEAK": "y", "CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN": "n",
        "CONFIG_PROVE_LOCKING": "y", "CONFIG_LOCKDEP": "y", "CONFIG_DEBUG_ATOMIC_SLEEP": "y",
        "CONFIG_DEBUG_FS": "y", "CONFIG_MODULES": "y", "CONFIG_MODULE_UNLOAD": "y",
        "CONFIG_PREEMPT_NOTIFIERS": "y", "CONFIG_TRACEPOINTS": "y", "CONFIG_SMP": "y",
        "CONFIG_KCOV": "n",
    },
    # tests/vm boots it; tests/report maps its PCs to source lines (DWARF).
    "gcc-12": KCOV | {"CONFIG_DEBUG_INFO_DWARF5": "y", "CONFIG_CC_IS_GCC": "y"},
}


def test_every_kernel_is_checked() -> None:
    assert set(WANT) == set(KERNELS)


# In the order the chain of kernel suites needs them, less the one it builds
# itself first (tests/support/scheduling.py): by the time this worker gets
# to clang-19, it is built.
@pytest.mark.parametrize("name", ["debug", "gcc-12", "clang-19"])
def test_kernel_built(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    kernel = build_kernel(name, tmp_path_factory)
    assert kernel.image.is_file() and kernel.vmlinux.is_file() and kernel.system_map.is_file()
    cfg = kernel.config()
    got = {k: cfg.get(k, "n") for k in WANT[name]}
    assert got == WANT[name]
