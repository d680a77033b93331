"""Where the identity stage keeps its state between runs: one JSON file, replaced atomically.

Why a snapshot and not a changelog: the resolver's state is facts (events seen,
sightings, link evidence, unlinks) from which the customers are re-derived on
load, and the raw topics keep every event forever. So a snapshot every few
seconds plus a silent catch-up over the records processed after it (the stage
replays them from the raw topics, without publishing again) restores exactly
the state of the moment before a crash.

The epoch is bumped and written at every start, before anything is published,
so sequence numbers of a new run are always above those of any earlier run,
even one that crashed before its first snapshot.

Both files hold every identifier seen (personal data): the folder is 0700 and the files
0600 whatever the umask (``touchstream.private_files``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from touchstream.private_files import private_dir, write_private

VERSION = 1


@dataclass
class Snapshot:
    epoch: int = 0
    counter: int = 0
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)   # next offset per raw partition
    resolver: dict | None = None


class IdentityCheckpoint:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        private_dir(self.folder)
        self.path = self.folder / "checkpoint.json"
        self.epoch_path = self.folder / "epoch"

    def load(self) -> Snapshot:
        """The last snapshot (an empty one on first start), with a fresh epoch already persisted."""
        snap = Snapshot()
        if self.path.exists():
            data = json.loads(self.path.read_text())
            if data.get("version") != VERSION:
                raise ValueError(f"{self.path}: unknown checkpoint version {data.get('version')!r}")
            snap = Snapshot(data["epoch"], data["counter"],
                            {(t, p): o for t, p, o in data["offsets"]}, data["resolver"])
        last = int(self.epoch_path.read_text()) if self.epoch_path.exists() else 0
        snap.epoch = max(snap.epoch, last) + 1
        snap.counter = 0
        write_private(self.epoch_path, str(snap.epoch))
        return snap

    def save(self, snap: Snapshot) -> None:
        data = {"version": VERSION, "epoch": snap.epoch, "counter": snap.counter,
                "offsets": sorted([t, p, o] for (t, p), o in snap.offsets.items()), "resolver": snap.resolver}
        write_private(self.path, json.dumps(data, separators=(",", ":")))
