"""An upgraded installation keeps its identity state: the version-1 JSON checkpoint, moved into the store once.

Before the store, the stage wrote its whole state to ``checkpoint.json`` (epoch, sequence
counter, positions per raw partition and ``IdentityResolver.to_dict()``) and the epoch
of every start to ``epoch``. Found at start, they are written into the store in one
save, then renamed ``*.migrated`` (kept, not deleted: the only copy of the old state
until the store has proven itself). A store that already holds state is never
overwritten: the files are only renamed (a crash between that save and the renames).
An erasure removes the renamed files (``drop_migrated``): they hold the person too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from touchstream.processors.identity_store import IdentityStateStore, Saved
from touchstream.projections.identity_journal import FACT_KINDS, Facts

log = logging.getLogger(__name__)
VERSION = 1
CHECKPOINT, EPOCH = "checkpoint.json", "epoch"


def read_json_checkpoint(folder: Path) -> Saved:
    """What the version-1 files hold; the epoch is the higher of the checkpoint's and the epoch file's."""
    path, epoch_path = folder / CHECKPOINT, folder / EPOCH
    saved = Saved()
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"{path}: unknown checkpoint version {data.get('version')!r}")
        resolver = data["resolver"] or {"version": 1}
        if resolver.get("version") != 1:
            raise ValueError(f"{path}: unknown identity state version {resolver.get('version')!r}")
        saved = Saved(data["epoch"], data["counter"], {(t, p): o for t, p, o in data["offsets"]},
                      Facts(*(resolver.get(kind, []) for kind in FACT_KINDS)))
    if epoch_path.exists():
        saved.epoch = max(saved.epoch, int(epoch_path.read_text()))
    return saved


def drop_migrated(folder: Path) -> list[Path]:
    """Remove the migrated version-1 files under ``folder`` (an erasure: the old state holds the person
    and the store has been in use since); the paths removed."""
    gone = [folder / f"{name}.migrated" for name in (CHECKPOINT, EPOCH) if (folder / f"{name}.migrated").exists()]
    for path in gone:
        path.unlink()
    if gone:
        log.info("identity: migrated version-1 checkpoint removed by an erasure: %s", ", ".join(map(str, gone)))
    return gone


def migrate_json_checkpoint(folder: Path, store: IdentityStateStore) -> bool:
    """Move the version-1 files under ``folder`` into ``store``; True when there were any."""
    found = [folder / name for name in (CHECKPOINT, EPOCH) if (folder / name).exists()]
    if not found:
        return False
    if store.empty():
        saved = read_json_checkpoint(folder)
        store.save(saved)
        log.info("identity state migrated from %s into the store: epoch %d, %d fact row(s)",
                 folder / CHECKPOINT, saved.epoch, len(saved.facts))
    for path in found:
        path.rename(path.with_name(path.name + ".migrated"))
    return True
