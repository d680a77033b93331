"""Sealing the personal values of whole records, and opening them again: what the SDK, the
collector and ``AvroCodec`` call.

Why one place: the producer side and the codec must agree on which values are sealed and under
whose key, and the plan of each schema is compiled once here (records are the hot path).
"""

from __future__ import annotations

import time
from typing import Callable

from touchstream.privacy.keyring import KeyRing
from touchstream.privacy.pii_plan import Fields, Leaf, plan, transform, whose
from touchstream.privacy.sealing import is_sealed
from touchstream.privacy.subjects import primary_subject, text_period


class Sealer:
    """Seals events for one key ring; plans are cached by schema (the caller's key for it)."""

    def __init__(self, ring: KeyRing, clock: Callable[[], float] = time.time):
        self.ring, self.clock = ring, clock   # clock: which month's key seals free text
        self._plans: dict[str, Fields | None] = {}
        self._refs: dict[str, str] = {}

    def plan(self, name: str, schema: dict) -> Fields | None:
        found = self._plans.get(name, False)
        if found is False:
            found = self._plans[name] = plan(schema)
        return found

    def ref(self, subject_: str) -> str:
        ref = self._refs.get(subject_)
        if ref is None:
            if len(self._refs) > 200_000:
                self._refs.clear()
            ref = self._refs[subject_] = self.ring.ref(subject_)
        return ref

    def seal_events(self, events: list[tuple[str, dict, dict]]) -> list[tuple[dict, bytes]]:
        """``(schema name, schema, record)`` -> (sealed record, Kafka record key) each; every new key
        the batch made is stored before this returns."""
        out = []
        for name, schema, record in events:
            primary = primary_subject(record["envelope"]["identity"])
            if primary is None:
                raise ValueError("an event with no identifier to key it by")
            out.append((self._seal(self.plan(name, schema), record, primary), self.ref(primary).encode()))
        self.ring.commit()
        return out

    def seal_record(self, name: str, schema: dict, record: dict, primary: str | None = None) -> dict:
        """One record sealed (a derived record: identifiers under themselves, free text under ``primary``);
        its new keys are stored by the next ``commit``."""
        return self._seal(self.plan(name, schema), record, primary)

    def seal_text(self, subject: str, text: str) -> str:
        """A header or other loose value sealed under ``subject`` (stored by the next ``commit``)."""
        return self.ring.seal(self.ref(subject), text)

    def open_text(self, value: str) -> str | None:
        """A loose value opened: as it is if it is not sealed, None if its key was erased (free text
        sealed twice, under its month's key and its subject's, is opened through both)."""
        if not is_sealed(value):
            return value
        text = self.ring.unseal(value)
        return self.ring.unseal(text) if text is not None and is_sealed(text) else text

    def commit(self) -> None:
        self.ring.commit()

    def _seal(self, node: Fields | None, record: dict, primary: str | None) -> dict:
        if node is None:
            return record

        period = None

        def one(value: str, leaf: Leaf, parent: dict, name: str) -> str:
            nonlocal period
            token = self.ring.seal(self.ref(whose(leaf, name, value, parent, primary)), value)
            if leaf.expires:   # and again under its month's key, which retention deletes
                period = period or self.ref(text_period(self.clock()))
                token = self.ring.seal(period, token)
            return token
        return transform(record, node, one)

    def open(self, node: Fields | None, record: dict) -> dict:
        """``record`` with every sealed value opened: None (or "" where the schema has no null) for one
        whose key was erased. Values that are not sealed (written before sealing existed) stay."""
        return self.open_marked(node, record)[0]

    def open_marked(self, node: Fields | None, record: dict) -> tuple[dict, bool]:
        """``open``, and whether some value's key was erased (an erased person's event: its identity hints
        may all be gone, which a consumer must tell apart from an event that never had any)."""
        if node is None:
            return record, False
        erased = False

        def one(value: str, leaf: Leaf, parent: dict, name: str):
            nonlocal erased
            opened = self._open_one(value, leaf, parent, name)
            if opened is None or (opened == "" and value != ""):
                erased = True
            return opened
        return transform(record, node, one), erased

    def _open_one(self, value: str, leaf: Leaf, _parent: dict, _name: str):
        if not is_sealed(value):
            return value
        text = self.ring.unseal(value)
        if text is not None and leaf.expires and is_sealed(text):
            text = self.ring.unseal(text)   # the month's key opened; now the subject's
        if text is None:
            return None if leaf.nullable else ""
        return text

