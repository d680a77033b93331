"""An in-memory ``IdentityStateStore`` for tests and the in-process pipeline.

The rows live in dicts keyed as the SQLite tables are, so the two backends agree on
what a save keeps. One instance outlives the stages restored from it: handing it to a
second stage plays a restart.
"""

from __future__ import annotations

from touchstream.processors.identity_store import IdentityStateStore, Saved
from touchstream.projections.identity_forget import Forgetting, names
from touchstream.projections.identity_journal import FACT_KINDS, Facts


def _key(kind: str, row) -> tuple:
    """The key a row is stored under: a node by (kind, value), an event by its id, anything else whole."""
    if kind == "events":
        return (row,)
    return tuple(row[:2]) if kind == "nodes" else tuple(row)


class MemoryIdentityStore(IdentityStateStore):
    def __init__(self):
        self.rows: dict[str, dict] = {kind: {} for kind in FACT_KINDS}
        self.offsets: dict[tuple[str, int], int] = {}
        self.forgotten: dict[tuple[str, str], None] = {}   # (customer_id, erasure_id) rows, insertion-ordered
        self.epoch, self.counter = 0, 0
        self.saves = 0

    def save(self, delta: Saved) -> None:
        for kind in FACT_KINDS:
            table = self.rows[kind]
            for row in getattr(delta.facts, kind):
                key = _key(kind, row)
                if kind == "nodes" or key not in table:
                    table[key] = row if kind == "events" else list(row)
        self.offsets.update(delta.offsets)
        self.epoch, self.counter = delta.epoch, delta.counter
        self.saves += 1

    def forget(self, gone: Forgetting, counter: int) -> None:
        nodes = gone.nodes
        for kind, table in self.rows.items():
            if kind == "events":
                continue
            named = names if kind in ("evidence", "separations") else _names_node(kind)
            for key in [key for key, row in table.items() if named(row, nodes)]:
                del table[key]
        self.forgotten.update(dict.fromkeys(gone.rows()))
        self.counter = counter

    def _read(self) -> Saved:
        facts = Facts(*([list(row) if kind != "events" else row for row in self.rows[kind].values()]
                        for kind in FACT_KINDS))
        return Saved(self.epoch, self.counter, dict(self.offsets), facts, list(self.forgotten))

    def _last_epoch(self) -> int:
        return self.epoch

    def _write_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def empty(self) -> bool:
        return not (self.epoch or self.offsets or self.forgotten or any(self.rows.values()))


def _names_node(kind: str):
    """Does a row of ``kind`` (nodes: [kind, value, ...]; reported: [rule, kind, value]) name a node of ``nodes``."""
    at = 0 if kind == "nodes" else 1
    return lambda row, nodes: (row[at], row[at + 1]) in nodes
