"""python -m kcov_build: the same as the kcov-build console script."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
