"""Where the identity stage keeps its state between runs: the port, and what a save holds.

Why rows and not a snapshot: the resolver's state is facts (events seen, identifiers,
link evidence, unlinks, findings reported; ``projections/identity_journal``) from which
the customers are re-derived on load. Writing them whole every few seconds cost the
stage more CPU than resolving and grew with every event ever seen; a store keeps them
as keyed rows, and a save writes only the facts the resolver journalled since the last
one, with the stage's positions per raw partition and its sequence counter, in one
transaction. The raw topics keep every event, so a save plus a silent catch-up over
the records processed after it (the stage replays them without publishing) restores
exactly the state of the moment before a crash; any earlier save restores consistently.

The epoch is bumped and written at every start (``load``), before anything is
published, so sequence numbers of a new run are always above those of any earlier run,
even one that crashed before its first save.

Backends: ``identity_store_memory`` (tests), ``identity_store_sqlite`` (the service).
Every backend passes ``tests/unit/test_identity_store_contract.py``.
``identity_store_sqlite.open_identity_store`` opens the service's store and migrates a
version-1 JSON checkpoint into it once (``identity_store_migration``).

An erasure (``forget``) is the one change that deletes rows: every fact row naming an identifier
of the erased customers, in one transaction with the suppression list it adds (the erased customer
ids, each with the erasure id; ``projections/identity_forget``). The suppression list is the only
place the store keeps those ids, and a load hands it back so the resolver keeps suppressing them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from touchstream.projections.identity_forget import Forgetting
from touchstream.projections.identity_journal import Facts

Offsets = dict[tuple[str, int], int]   # next offset per raw partition


@dataclass
class Saved:
    """A save (``facts``: the rows added or changed since the last one), or a load (``facts``: all of them,
    each kind an iterable to be read once: a backend may stream them, so a restore never holds every row)."""

    epoch: int = 0
    counter: int = 0
    offsets: Offsets = field(default_factory=dict)
    facts: Facts = field(default_factory=Facts)
    forgotten: list = field(default_factory=list)   # on load: (customer_id, erasure_id) rows of the suppression list


class IdentityStateStore(abc.ABC):
    """Keyed fact rows plus the stage's positions, sequence counter and epoch."""

    def load(self) -> Saved:
        """Everything saved (empty on first start), with a fresh epoch already persisted and the counter at 0."""
        epoch = self._last_epoch() + 1
        self._write_epoch(epoch)
        saved = self._read()
        saved.epoch, saved.counter = epoch, 0
        return saved

    @abc.abstractmethod
    def save(self, delta: Saved) -> None:
        """In one transaction: add the fact rows (a node row replaces the node's older one; a row already
        stored is kept once), set the offsets given (others are kept), the epoch and the counter."""

    @abc.abstractmethod
    def forget(self, gone: Forgetting, counter: int) -> None:
        """In one transaction: delete every fact row naming one of ``gone.nodes`` (a node's own row, link
        evidence and unlinks with it at either end, findings about it), add ``gone.rows()`` to the suppression
        list (a row already there is kept once) and set the counter. Afterwards no copy the backend keeps
        may hold those identifiers or ids outside the suppression list."""

    @abc.abstractmethod
    def _read(self) -> Saved:
        """All fact rows (iterables), the suppression list, the offsets and the counter."""

    @abc.abstractmethod
    def _last_epoch(self) -> int:
        """The last epoch written, 0 if none."""

    @abc.abstractmethod
    def _write_epoch(self, epoch: int) -> None:
        """Persist the epoch alone, durably (nothing may be published under it before)."""

    @abc.abstractmethod
    def empty(self) -> bool:
        """Nothing saved yet: no facts, no suppression list, no offsets, no epoch."""

    def close(self) -> None:
        """Release the backend (a no-op in memory)."""

