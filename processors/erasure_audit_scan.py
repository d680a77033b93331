"""The erasure audit's searches: every record of every topic, every row of every table, and plain files,
read in full and shown to the recogniser (``projections.erasure_audit``), counted per topic or table.

Why read everything instead of asking each store by key: the audit proves that no copy is left, and a
copy nobody knew of (a new table, a header, a field a newer schema dropped, a dead letter quoting a
payload) is exactly what a lookup by key would miss. Why the raw record as well as the decoded one: a
record that does not decode is searched as bytes, and decoding resolves old records to the newest schema,
which drops fields the writer still wrote. Sealed values are opened with the keys that remain (the codec's
key ring), so the caller refreshes that ring first: a ring that loaded a key before another process
erased it would still open it and the audit would (rightly) fail.

Where the person's customer id is named by design (the erasure ledger topic, identity's suppression table,
DuckDB's ``erasures`` log), only the identifiers are searched for (``Recogniser.without_customer_ids``).
Nothing is written anywhere: topics are read by an assigned consumer that commits no offset, databases
are opened read-only.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from touchstream.codec.avro_codec import DecodeError
from touchstream.config import Settings
from touchstream.kafka_access import KafkaAccess, kafka_access
from touchstream.projections.erasure import searchable
from touchstream.projections.erasure_audit import Recogniser

log = logging.getLogger(__name__)
CHUNK = 2000   # rows fetched at a time from a database


@dataclass
class TopicScan:
    """What ``scan_topics`` read (records per topic, so an empty topic shows as read), the records per
    topic that still name the person (only topics with some), and the topics that do not exist."""

    scanned: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def scan_topics(settings: Settings, codec, recognise: Recogniser, topics: list[str], *,
                ignore_customer_ids: set[str] = frozenset(), access: KafkaAccess | None = None,
                timeout: float = 120.0, group: str = "touchstream-erasure-audit") -> TopicScan:
    """Read every partition of ``topics`` from its first offset to its end now and count the records whose
    key, a header value, raw value or decoded-and-opened value (``codec.decode``) names the person.
    ``ignore_customer_ids``: topics searched for everything but the customer ids. ``access``: the login
    (default the settings' principal); ``group``: a consumer group id the login may use (nothing is
    committed, but the client still looks its coordinator up). ``TimeoutError`` if the topics are not read to their ends in
    ``timeout`` seconds: an audit that did not read everything proves nothing."""
    if recognise.opener is None:
        recognise = recognise.with_opener(codec.open_text)
    plain = recognise.without_customer_ids()
    consumer = Consumer((access or kafka_access(settings)).confluent(**{
        "group.id": group, "enable.auto.commit": False, "enable.partition.eof": True,
        "isolation.level": "read_uncommitted", "auto.offset.reset": "earliest"}))
    scan = TopicScan()
    try:
        ends = _assign(consumer, topics, scan, timeout)
        for m in _read_to_end(consumer, ends, timeout):
            topic = m.topic()
            scan.scanned[topic] += 1
            if _record_mentions(m, codec, plain if topic in ignore_customer_ids else recognise):
                scan.hits[topic] = scan.hits.get(topic, 0) + 1
    finally:
        consumer.close()
    log.info("erasure audit read %s; missing %s; records naming the person: %s", scan.scanned, scan.missing, scan.hits)
    return scan


def _assign(consumer: Consumer, topics: list[str], scan: TopicScan, timeout: float) -> dict[tuple[str, int], int]:
    """Assign every partition of ``topics`` from its beginning; the end offset of each non-empty one."""
    metadata = consumer.list_topics(timeout=timeout).topics
    parts, ends = [], {}
    for topic in topics:
        found = metadata.get(topic)
        if found is None or found.error is not None or not found.partitions:
            scan.missing.append(topic)
            continue
        scan.scanned[topic] = 0
        for p in sorted(found.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout, cached=False)
            if high > low:
                parts.append(TopicPartition(topic, p, OFFSET_BEGINNING))
                ends[(topic, p)] = high
    consumer.assign(parts)
    return ends


def _read_to_end(consumer: Consumer, ends: dict[tuple[str, int], int], timeout: float):
    """Yield every record up to ``ends``; a partition is done at its end offset or its end-of-partition
    event (a compacted log's or a transaction marker's gap may leave the last offset unread)."""
    todo, deadline = dict(ends), time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            raise TimeoutError(f"erasure audit: not read to the end in {timeout:.0f}s: {sorted(todo)}")
        for m in consumer.consume(num_messages=CHUNK, timeout=0.5):
            where = (m.topic(), m.partition())
            error = m.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                todo.pop(where, None)
                continue
            if where in todo and m.offset() < todo[where]:
                yield m
                if m.offset() + 1 >= todo[where]:
                    del todo[where]


def _record_mentions(m, codec, recognise: Recogniser) -> bool:
    """Key, headers, raw bytes, then the decoded record with its sealed values opened."""
    if recognise.in_value(m.key()) or any(recognise.in_value(v) for _k, v in m.headers() or ()):
        return True
    value = m.value()
    if value is None:
        return False
    if recognise.in_value(value):
        return True
    try:
        return recognise.in_value(codec.decode(value).record)
    except DecodeError:   # not Avro, or a schema the registry lacks: its raw bytes were searched
        return False


def scan_sqlite(path: str | Path, recognise: Recogniser, *, allowed_tables: set[str] = frozenset()) -> dict[str, int]:
    """Rows per table of the SQLite database at ``path`` (opened read-only) in which any text, byte or
    integer value names the person; every column is read, as SQLite stores any type in any column.
    ``allowed_tables``: searched for everything but the customer ids (a suppression list names them)."""
    plain = recognise.without_customer_ids()
    con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        log.info("erasure audit reads SQLite %s: tables %s", path, tables)
        found = {t: _count_rows(con.execute(f'SELECT * FROM "{_quoted(t)}"'),
                                plain if t in allowed_tables else recognise) for t in tables}
    finally:
        con.close()
    return {t: n for t, n in found.items() if n}


def scan_duckdb(con, recognise: Recogniser, skipped: dict[str, str]) -> dict[str, int]:
    """Rows per base table of the main schema whose text, JSON or byte values (also inside lists, structs
    and maps) name the person; ``skipped`` (``projections.erasure.SKIPPED``): tables searched for
    everything but the customer ids, as they name them by design."""
    plain = recognise.without_customer_ids()
    found = {}
    for table, columns in _duckdb_columns(con).items():
        names = ", ".join(f'"{_quoted(c)}"' for c in columns)
        found[table] = _count_rows(con.execute(f'SELECT {names} FROM "{_quoted(table)}"'),
                                   plain if table in skipped else recognise)
    return {t: n for t, n in sorted(found.items()) if n}


def _duckdb_columns(con) -> dict[str, list[str]]:
    """The searchable columns of each base table (views only repeat them); tables without any are logged."""
    tables = [t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND NOT temporary ORDER BY table_name").fetchall()]
    columns: dict[str, list[str]] = {t: [] for t in tables}
    for table, column, dtype in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' ORDER BY table_name, column_index").fetchall():
        if table in columns and searchable(dtype):
            columns[table].append(column)
    log.info("erasure audit reads DuckDB tables %s", tables)
    return {t: cs for t, cs in columns.items() if cs}


def scan_files(paths: Iterable[str | Path], recognise: Recogniser) -> dict[str, int]:
    """Lines per plain file (JSON checkpoints, an export listing) that name the person, read as UTF-8 with
    undecodable bytes dropped; a file that does not exist is not a copy and is left out."""
    found = {}
    for path in map(Path, paths):
        if path.is_file():
            with path.open("rb") as lines:
                found[str(path)] = sum(recognise.in_value(line) for line in lines)
    return {p: n for p, n in found.items() if n}


def _count_rows(cursor, recognise: Recogniser) -> int:
    """How many rows of an executed query hold a value that names the person, read ``CHUNK`` at a time."""
    count = 0
    while rows := cursor.fetchmany(CHUNK):
        count += sum(recognise.in_value(row) for row in rows)
    return count


def _quoted(name: str) -> str:
    """A table or column name inside double quotes."""
    return name.replace('"', '""')
