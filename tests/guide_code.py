"""The Python blocks of ``docs/subscribing.md``, ready to run: the guide's tests execute its own code."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "subscribing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def guide_block(marker: str) -> dict:
    """Execute the one guide block that contains ``marker``; its functions, not run yet."""
    found = [b for b in BLOCKS if marker in b]
    assert len(found) == 1, marker
    namespace: dict = {"__name__": "guide"}
    exec(compile(found[0], "<guide>", "exec"), namespace)
    return namespace
