"""The JUnit XML report a guest pytest run leaves in the directory it
shares with the host: how many tests ran, failed, erred and skipped."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Junit:
    tests: int
    failures: int
    errors: int
    skipped: int
    failed: list[str]
    passed: tuple[str, ...] = ()

    @classmethod
    def read(cls, path: Path) -> Junit | None:
        if not path.is_file():
            return None
        root = ET.parse(path).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        assert suite is not None
        failed = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                  if c.find("failure") is not None or c.find("error") is not None]
        passed = tuple(f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                       if not any(c.find(k) is not None for k in ("failure", "error", "skipped")))
        return cls(int(suite.get("tests", 0)), int(suite.get("failures", 0)),
                   int(suite.get("errors", 0)), int(suite.get("skipped", 0)), failed, passed)

    def summary(self) -> str:
        return (f"{self.tests} tests, {self.failures} failed, {self.errors} errors, "
                f"{self.skipped} skipped" + (f": {self.failed}" if self.failed else ""))
