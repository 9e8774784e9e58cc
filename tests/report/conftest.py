"""Fixtures of the kcov.report tests, defined in reportfix.py."""
from reportfix import (dwarf_kernel, fixture_builds, fx, fx_clang,  # noqa: F401
                       fx_gcc, kernel_modules, runs, runs_clang)
