"""Reading ``kcov-coverage`` JSON, format and version checked first by
:meth:`CoverageData.from_json`."""
from __future__ import annotations

import json
import re

from ...model import FORMAT, CoverageData, FormatError
from .write import SUMMARY_FORMAT

_FORMAT_RE = re.compile(rb'"format"\s*:\s*"([^"]*)"')


def sniff(head: bytes) -> str:
    """``"coverage"``, ``"summary"``, ``"other"`` (some other JSON) or
    ``""`` (not JSON)."""
    if not head.lstrip().startswith(b"{"):
        return ""
    m = _FORMAT_RE.search(head)
    if m is None:
        return "other"
    name = m.group(1).decode("utf-8", "replace")
    return {FORMAT: "coverage", SUMMARY_FORMAT: "summary"}.get(name, "other")


def parse(raw: bytes, source: str) -> CoverageData:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{source}: not valid JSON ({e})") from None
    if isinstance(doc, dict) and doc.get("format") == SUMMARY_FORMAT:
        raise FormatError(f"{source}: a kcov summary holds no points and "
                          "cannot be read back; use the kcov coverage JSON "
                          "(format json)")
    return CoverageData.from_json(doc, source)
