"""Write demo events as JSON Lines, the input of ``touchstream publish``.

Kept apart from the generator because it does I/O. Compact separators and the
generator's fixed key order make the file byte-identical for the same arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable


def write_jsonl(events: Iterable[dict], path: str | Path) -> int:
    """Write one event per line to ``path`` ('-' for stdout); returns the number written."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    count = 0
    if str(path) == "-":
        handle, close = sys.stdout, False
    else:
        handle, close = Path(path).open("w", encoding="utf-8", newline="\n"), True
    try:
        write = handle.write
        for event in events:
            write(dumps(event))
            write("\n")
            count += 1
    finally:
        if close:
            handle.close()
    return count
