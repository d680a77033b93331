"""An in-memory ``SchemaStore`` for unit tests.

It writes the same ``_schemas`` key/value bytes as the Kafka store into a plain
list, and folds them the same way. Passing one list to two stores plays the
part of a restart: the second store rebuilds its state from the first one's log.
"""

from __future__ import annotations

import logging
import threading

from touchstream.registry import records
from touchstream.registry.base import RegistryState, SchemaStore, SchemaVersion

log = logging.getLogger(__name__)

Log = list[tuple[bytes, bytes | None]]


class MemorySchemaStore(SchemaStore):
    def __init__(self, log_records: Log | None = None):
        self.log: Log = [] if log_records is None else log_records
        self._lock = threading.Lock()
        self._state = RegistryState()
        self._applied = 0
        self.sync()

    def _append(self, key: bytes, value: bytes | None) -> None:
        with self._lock:
            self.log.append((key, value))
        self.sync()

    def put_schema(self, record: SchemaVersion) -> None:
        self._append(records.schema_key(record.subject, record.version), records.schema_value(record))

    def put_config(self, subject: str | None, level: str | None) -> None:
        value = None if level is None else records.config_value(level)
        self._append(records.config_key(subject), value)

    def delete_schema(self, subject: str, version: int) -> None:
        self._append(records.schema_key(subject, version), None)

    def state(self) -> RegistryState:
        with self._lock:
            return self._state.copy()

    def sync(self, timeout: float = 30.0) -> None:
        """Fold whatever the shared log gained since the last call (another store may append)."""
        with self._lock:
            for key, value in self.log[self._applied :]:
                try:
                    records.apply(self._state, key, value)
                except records.MalformedRecord as exc:
                    log.warning("skipping malformed _schemas record: %s", exc)
            self._applied = len(self.log)
