"""The error every kcov-build step reports: one line and an exit status.

Its own module, below everything else, so that the PGO checks (PgoError) and
the build raise the same class without importing each other.
"""
from __future__ import annotations

from kcov._base.errors import ToolkitError


class BuildError(ToolkitError):
    """A build kcov-build cannot run: one line and exit_status."""

    @property
    def status(self) -> int:
        """The former name of ``exit_status`` (PgoError's readers use it)."""
        return self.exit_status
