"""``touchstream export``: Parquet snapshots read back with DuckDB equal the source, masked, partitioned, consistent.

One DuckDB file is filled the way the serving process fills it (``tests.demo_report_fill``:
interaction log, customer-360, complaint cases and SLA clocks; identity decisions through the
real decision sink). Every expectation is computed from that source database (row counts,
fingerprints of the sorted rows, sink offsets, identifier values), never written down. PII
expectations come from the Avro contracts (fields marked ``pii``), not from the exporter.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import zipfile
from math import ceil
from types import SimpleNamespace

import duckdb
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.demo_report_fill import NOW, fill
from tests.local_codec import LocalCodec
from tests.pipeline_harness import validated
from touchstream.cli import CliError, build_parser
from touchstream.cli import export as cli
from touchstream.demo.generator import generate
from touchstream.processors.identity_decisions import IdentityDecisionSink
from touchstream.processors.identity_resolution import decision_record
from touchstream.processors.records import RawRecord
from touchstream.projections.duckdb_store import DuckDBStore, load_sql
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.projections.interaction_log import Position, to_row
from touchstream.publishing.dead_letters import AlreadySentDeadLetters
from touchstream.schemas import common_types, load_derived, load_latest
from touchstream.serving.export_api import (BY_NAME, EXCLUDED, VERSIONED, export_router, relations_present,
                                            write_snapshot)

TOPIC = "touchstream.raw.export-test"   # the writer of the concurrency tests, apart from the fill's topics
TOKEN = re.compile(r"[\w.+@-]+")   # what an identifier value is made of (e-mail, E.164 phone, card, cookie)
HINTS = [f["name"] for f in common_types()["touchstream.common.IdentityHints"]["fields"] if f.get("pii")]


def _decisions(db: DuckDBStore, events) -> None:
    """Identity decisions of the events, published as the identity stage does and stored by the real sink."""
    resolver, codec, schema = IdentityResolver(), LocalCodec(), load_derived()["identity_decided"]
    decisions = [d for e in events for d in resolver.observe(e.record).decisions]
    records = [RawRecord("touchstream.identity.decisions", 0, n, None,
                         codec.encode(schema, decision_record(d, n + 1, NOW)), [])
               for n, d in enumerate(decisions)]
    IdentityDecisionSink(db, codec, AlreadySentDeadLetters()).handle(records)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    db = DuckDBStore(folder / "serving.duckdb")
    _, _, _, cases = fill(db)
    _decisions(db, cases.valid)
    db.execute_script(load_sql("complaint_customer_360"))   # as the serving process does
    interactions = _count(db, "interactions")
    partition_rows = interactions // 3 + 1                    # three part files, the last one short
    snaps = {}
    for pii in (True, False):
        (folder / f"pii-{pii}").mkdir()
        snaps[pii] = write_snapshot(db, folder / f"pii-{pii}", pii=pii, partition_rows=partition_rows)
    yield SimpleNamespace(db=db, folder=folder, snaps=snaps, partition_rows=partition_rows)
    db.close()


def _on(db: DuckDBStore, use):
    """``use(cursor)`` on a read cursor of the source, closed afterwards."""
    cur = db.cursor()
    try:
        return use(cur)
    finally:
        cur.close()


def _count(db: DuckDBStore, name: str) -> int:
    return _on(db, lambda cur: cur.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])


def source_rows(db: DuckDBStore, name: str) -> list[dict]:
    return _on(db, lambda cur: cur.sql(f'SELECT * FROM "{name}"').to_arrow_table().to_pylist())


def exported_rows(folder, name: str, where: str = "") -> list[dict]:
    """The table as an analyst reads it: DuckDB over the part files."""
    return duckdb.sql(f"SELECT * FROM read_parquet('{folder}/{name}/*.parquet') {where}").to_arrow_table().to_pylist()


def fingerprint(rows: list[dict], drop: set[str] = frozenset()) -> str:
    """sha256 of the sorted rows (order-free: files may hold rows in another order than a scan)."""
    lines = sorted(json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True, default=str)
                   for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_every_table_and_view_is_exported_or_left_out_on_purpose(source):
    present = _on(source.db, relations_present)
    unclassified = {n for n in present if n not in BY_NAME and n not in EXCLUDED and not VERSIONED.match(n)}
    assert not unclassified, f"decide whether to export (and how to mask) {sorted(unclassified)}"
    assert not set(EXCLUDED) & set(BY_NAME)
    assert set(BY_NAME) <= set(present)   # the fill exercises every exported relation
    assert source.snaps[True]["absent"] == []


def test_every_exported_table_read_back_with_duckdb_equals_the_source(source):
    snap = source.snaps[True]
    assert set(snap["tables"]) == set(BY_NAME)
    for name, table in snap["tables"].items():
        want, got = source_rows(source.db, name), exported_rows(source.folder / "pii-True", name)
        assert table["rows"] == len(want) == len(got), name
        assert fingerprint(got) == fingerprint(want), name
        described = _on(source.db, lambda cur: cur.execute(f'DESCRIBE "{name}"').fetchall())
        assert [(c["name"], c["type"]) for c in table["columns"]] == [r[:2] for r in described], name
    assert snap["tables"]["interactions"]["rows"] > 0 and snap["tables"]["identity_decisions"]["rows"] > 0


def test_the_manifest_carries_the_sink_offsets_and_the_active_360_version_of_the_snapshot(source):
    want = {(r["sink"], r["topic"], r["partition"], r["next_offset"]) for r in source_rows(source.db, "sink_offsets")}
    got = [(sink, o["topic"], o["partition"], o["next_offset"])
           for sink, offsets in source.snaps[False]["offsets"].items() for o in offsets]
    assert len(got) == len(want) and set(got) == want
    assert {"interaction_log", "complaint_resolution", "identity_decisions"} <= set(source.snaps[False]["offsets"])
    assert source.snaps[False]["customer_360_version"] == source_rows(source.db, "projection_versions")[0]["version"]


def test_large_tables_are_split_at_the_requested_number_of_rows(source):
    for pii, snap in source.snaps.items():
        for name, table in snap["tables"].items():
            sizes = [f["rows"] for f in table["files"]]
            assert len(sizes) == max(1, ceil(table["rows"] / source.partition_rows)), name
            assert all(s == source.partition_rows for s in sizes[:-1]) and sizes[-1] <= source.partition_rows, name
            for f in table["files"]:   # each file holds what the manifest says (read on its own)
                path = source.folder / f"pii-{pii}" / f["path"]
                assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall() == [(f["rows"],)]
                assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
    assert len(source.snaps[True]["tables"]["interactions"]["files"]) == 3
    assert source.snaps[True]["tables"]["dead_letters"]["rows"] == 0   # an empty table still has a readable file


def test_identifier_columns_are_null_without_pii_and_the_rest_equals_the_source(source):
    snap = source.snaps[False]
    for name, table in snap["tables"].items():
        masked = set(table["masked"])
        want, got = source_rows(source.db, name), exported_rows(source.folder / "pii-False", name)
        assert fingerprint(got, masked) == fingerprint(want, masked), name
    assert set(snap["tables"]["interactions"]["masked"]) == {*HINTS, "payload"}
    rows = exported_rows(source.folder / "pii-False", "interactions")
    assert any(r[c] is not None for r in source_rows(source.db, "interactions") for c in HINTS)
    assert all(r[c] is None for r in rows for c in HINTS)
    assert all(r["value"] is None for r in exported_rows(source.folder / "pii-False", "complaint_events"))
    decisions = exported_rows(source.folder / "pii-False", "identity_decisions")
    assert all(i["value"] is None and i["kind"] for r in decisions for i in r["identifiers"])


def _pii_values(db: DuckDBStore) -> set[str]:
    """Every identifier value the source holds (customer ids are not personal data: they stay)."""
    values = {r[c] for r in source_rows(db, "interactions") for c in HINTS if r[c]}
    values |= {r["value"] for r in source_rows(db, "customer_identifiers") if r["kind"] != "customer_id"}
    values |= {i["value"] for r in source_rows(db, "identity_decisions") for i in r["identifiers"]
               if i["kind"] != "customer_id"}
    return values


def _leaks(folder, snap: dict, values: set[str]) -> dict[str, int]:
    """Per table, how many identifier values occur anywhere in its files (any column, inside JSON too)."""
    words = {v for v in values if TOKEN.fullmatch(v)}   # found as whole tokens; any other value by substring
    out = {}
    for name in snap["tables"]:
        # every column of every row as text: nested values, JSON and the bytes of a blob too
        text = duckdb.sql("SELECT string_agg(CAST(t AS VARCHAR), chr(10)) "
                          f"FROM read_parquet('{folder}/{name}/*.parquet') t").fetchall()[0][0] or ""
        found = (words & set(TOKEN.findall(text))) | {v for v in values - words if v in text}
        if found:
            out[name] = len(found)
    return out


def test_no_identifier_value_leaks_into_a_snapshot_without_pii(source):
    values = _pii_values(source.db)
    assert len(values) > 50
    assert _leaks(source.folder / "pii-False", source.snaps[False], values) == {}
    leaked = _leaks(source.folder / "pii-True", source.snaps[True], values)
    assert {"interactions", "customer_360", "customer_identifiers", "identity_decisions"} <= set(leaked)


def _only_nulled(masked, original) -> bool:
    """``masked`` is ``original`` with some values replaced by null (nothing added, nothing else changed)."""
    if masked is None:
        return True
    if isinstance(original, dict):
        return isinstance(masked, dict) and masked.keys() == original.keys() and all(
            _only_nulled(masked[k], original[k]) for k in original)
    if isinstance(original, list):
        return isinstance(masked, list) and len(masked) == len(original) and all(
            _only_nulled(m, o) for m, o in zip(masked, original))
    return masked == original


def test_pii_fields_inside_json_are_null_without_pii_as_the_schemas_mark_them(source):
    pii_fields = {t: {f["name"] for f in s.schema["fields"] if f.get("pii")} for t, s in load_latest().items()}
    original = {r["event_id"]: r for r in source_rows(source.db, "interactions")}
    checked = 0
    for row in exported_rows(source.folder / "pii-False", "interactions"):
        got, want = json.loads(row["payload"]), json.loads(original[row["event_id"]]["payload"])
        assert _only_nulled(got, want), row["event_type"]
        for name in pii_fields[row["event_type"]]:
            checked += want.get(name) is not None
            assert got.get(name) is None, (row["event_type"], name)
    assert checked > 0
    profiles = {r["customer_id"]: json.loads(r["profile"]) for r in source_rows(source.db, "customer_360")}
    for row in exported_rows(source.folder / "pii-False", "customer_360"):
        got = json.loads(row["profile"])
        assert _only_nulled(got, profiles[row["customer_id"]])
        assert got["identifiers"] and all(i["value"] is None and i["kind"] for i in got["identifiers"])


# -- consistency while the sinks write ------------------------------------------------------------
class Writer:
    """Interaction-log batches on TOPIC, rows and offsets in one transaction each (as the log sink writes)."""

    def __init__(self, db: DuckDBStore, seed: int = 11):
        self.db, self.events, self.done = db, validated(list(generate(12, 20, seed))), 0

    def write(self, n: int = 7) -> bool:
        batch = self.events[self.done:self.done + n]
        positions = [Position(TOPIC, 0, self.done + i) for i in range(len(batch))]
        self.db.apply_interactions("interaction_log", [to_row(e.event_type, e.record, 1, p, NOW)
                                                       for e, p in zip(batch, positions)], positions)
        self.done += len(batch)
        return self.done < len(self.events)


def _topic_offset(snap: dict) -> int:
    return next(o["next_offset"] for o in snap["offsets"]["interaction_log"] if o["topic"] == TOPIC)


@pytest.fixture
def live(tmp_path):
    db = DuckDBStore(tmp_path / "live.duckdb")
    writer = Writer(db)
    writer.write(20)
    yield db, writer
    db.close()


class BusyCursor:
    """A read cursor before each of whose statements a sink batch commits: the busiest the sink can be."""

    def __init__(self, cur, writer: Writer):
        self._cur, self._writer = cur, writer

    def execute(self, *args, **kwargs):
        self._writer.write()
        return self._cur.execute(*args, **kwargs)

    def sql(self, *args, **kwargs):
        self._writer.write()
        return self._cur.sql(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cur, name)


def test_a_snapshot_ignores_what_is_written_while_it_is_taken(live, tmp_path, monkeypatch):
    db, writer = live
    real = db.cursor
    monkeypatch.setattr(db, "cursor", lambda: BusyCursor(real(), writer))
    (tmp_path / "snap").mkdir()
    snap = write_snapshot(db, tmp_path / "snap", partition_rows=8)
    files = exported_rows(tmp_path / "snap", "interactions")
    assert snap["tables"]["interactions"]["rows"] == len(files) < _count(db, "interactions")   # writes went on
    assert _topic_offset(snap) == sum(r["topic"] == TOPIC for r in files)   # offsets and rows of one instant
    counts = exported_rows(tmp_path / "snap", "interaction_counts")
    assert sum(r["events"] for r in counts) == len(files)   # a view read later sees the same instant


@pytest.fixture
def http(source):
    app = FastAPI()
    app.include_router(export_router(source.db))
    return TestClient(app)


def test_an_http_export_taken_while_a_thread_writes_agrees_with_its_offsets(live, tmp_path):
    db, writer = live
    app = FastAPI()
    app.include_router(export_router(db))
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set() and writer.write(3):
            pass

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        response = TestClient(app).get("/export", params={"partition_rows": 5})
    finally:
        stop.set()
        thread.join()
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    (tmp_path / "x.zip").write_bytes(response.content)
    manifest = cli.unpack(tmp_path / "x.zip", tmp_path / "out")
    files = exported_rows(tmp_path / "out", "interactions")
    assert manifest["tables"]["interactions"]["rows"] == len(files)
    assert _topic_offset(manifest) == sum(r["topic"] == TOPIC for r in files)
    assert not list(db.path.parent.glob(".export-*"))   # the work folder is gone once the zip is open


def test_the_http_export_refuses_unknown_tables(http):
    response = http.get("/export", params={"tables": "interactions,nope"})
    assert response.status_code == 400 and "nope" in response.json()["detail"]


# -- the command ----------------------------------------------------------------------------------
def test_the_command_parses():
    args = build_parser().parse_args(["export", "--format", "parquet", "snap", "--pii", "--tables", "a,b",
                                      "--partition-rows", "10", "--force"])
    assert args.func is cli.run
    assert (str(args.dir), args.format, args.pii, args.tables, args.partition_rows, args.force) == (
        "snap", "parquet", True, "a,b", 10, True)
    defaults = build_parser().parse_args(["export", "snap"])
    assert (defaults.format, defaults.pii, defaults.tables, defaults.force) == ("parquet", False, None, False)


def _args(tmp_path, **kw):
    base = dict(dir=tmp_path / "out", format="parquet", pii=False, tables=None, partition_rows=1000,
                force=False, timeout=60.0)
    return SimpleNamespace(**{**base, **kw})


def test_the_command_downloads_verifies_unpacks_and_sums_up(source, http, tmp_path, capsys):
    settings = SimpleNamespace(query_url="http://serving", home=tmp_path / "home")
    args = _args(tmp_path, tables="interactions,complaint_cases", partition_rows=source.partition_rows)
    assert cli.run(args, settings, http=http) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(manifest["tables"]) == ["complaint_cases", "interactions"]
    for name in manifest["tables"]:
        assert len(exported_rows(tmp_path / "out", name)) == _count(source.db, name)
    out = capsys.readouterr().out
    total = sum(_count(source.db, n) for n in manifest["tables"])
    assert f"2 tables, {total} rows" in out
    with pytest.raises(CliError, match="not empty"):
        cli.run(args, settings, http=http)
    with pytest.raises(CliError, match="csv"):
        cli.run(_args(tmp_path, dir=tmp_path / "other", format="csv"), settings, http=http)


def _export_zip(http, **params) -> bytes:
    response = http.get("/export", params=params)
    assert response.status_code == 200
    return response.content


def _corrupt(data: bytes, member: str) -> bytes:
    """The zip with one byte in the middle of ``member`` flipped, everything else as it was."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = bytearray(src.read(info))
            if info.filename == member:
                body[len(body) // 2] ^= 0xFF
            dst.writestr(info, bytes(body))
    return out.getvalue()


def test_a_corrupted_file_is_caught_by_the_manifest_and_nothing_is_unpacked(http, tmp_path):
    data = _export_zip(http, tables="complaint_cases,complaint_sla")
    member = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))["tables"]["complaint_sla"]["files"][0]
    (tmp_path / "bad.zip").write_bytes(_corrupt(data, member["path"]))
    with pytest.raises(CliError, match="sha256"):
        cli.unpack(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not list(tmp_path.glob(".out.partial-*"))
    (tmp_path / "good.zip").write_bytes(data)
    manifest = cli.unpack(tmp_path / "good.zip", tmp_path / "out")
    path = tmp_path / "out" / member["path"]
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(CliError, match=member["path"]):
        cli.verify(tmp_path / "out", manifest)


def test_force_replaces_the_exported_tables_so_no_stale_part_file_remains(source, http, tmp_path):
    rows = _count(source.db, "interactions")
    (tmp_path / "small.zip").write_bytes(_export_zip(http, tables="interactions", partition_rows=rows // 4 + 1))
    (tmp_path / "big.zip").write_bytes(_export_zip(http, tables="interactions", partition_rows=rows))
    cli.unpack(tmp_path / "small.zip", tmp_path / "out")
    assert len(list((tmp_path / "out" / "interactions").glob("*.parquet"))) == 4
    with pytest.raises(CliError, match="not empty"):
        cli.unpack(tmp_path / "big.zip", tmp_path / "out")
    cli.unpack(tmp_path / "big.zip", tmp_path / "out", force=True)
    assert len(list((tmp_path / "out" / "interactions").glob("*.parquet"))) == 1
    assert len(exported_rows(tmp_path / "out", "interactions")) == rows
