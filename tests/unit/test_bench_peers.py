"""The bench peers' shared step (``touchstream.bench.peer_fold``) and the quix venv's idempotence.

The peers themselves need a broker (and the quix one its own venv), so what is
tested here is what makes them comparable with Touchstream: folding one event at
a time onto a JSON-round-tripped stored profile gives the same 360 as folding the
customer's events at once, membership records are recognised in every header
shape the clients hand over, and the DuckDB row carries the canonical view JSON.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from itertools import islice

import pytest

from tests.local_codec import LocalCodec
from touchstream.bench import peer_env
from touchstream.bench.peer_fold import (Tally, customer_key, duckdb_row, fold_one, is_membership, result)
from touchstream.demo.generator import generate
from touchstream.events.catalogue import Catalogue
from touchstream.projections import customer_360 as c360

CAT = Catalogue()
NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo() -> dict[str, list[dict]]:
    """~600 demo events grouped by their first identity hint (the fold does not care how they were routed)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for event in islice(generate(12, 6, 7), 600):
        record = CAT.validate(event, now=NOW, default_source="demo").record
        kind, value = next((k, v) for k, v in record["envelope"]["identity"].items() if v)
        groups[f"{kind}:{value}"].append(record)
    return groups


def _per_event(records: list[dict], customer_id: str) -> c360.Profile:
    """What a peer does: stored state is JSON (a faust table value, a quix state value)."""
    stored = None
    for record in records:
        profile = fold_one(stored, record, customer_id)
        stored = json.loads(json.dumps(c360.to_dict(profile)))
    return c360.from_dict(stored)


def test_event_at_a_time_equals_the_whole_fold(demo):
    busiest = sorted(demo, key=lambda k: -len(demo[k]))[:6]
    assert len(demo[busiest[0]]) > 10
    for customer in busiest:
        whole = c360.fold(demo[customer], customer)
        stepped = _per_event(demo[customer], customer)
        assert c360.fingerprint(stepped) == c360.fingerprint(whole), c360.differences(stepped, whole)
        assert c360.view_json(c360.view(stepped)) == c360.view_json(c360.view(whole))


def test_a_redelivered_event_changes_nothing(demo):
    customer = max(demo, key=lambda k: len(demo[k]))
    records = demo[customer]
    assert c360.fingerprint(_per_event(records + records[:3], customer)) == \
        c360.fingerprint(c360.fold(records, customer))


def test_framed_avro_decodes_to_what_the_fold_expects(demo):
    """The peers decode with ``AvroCodec`` (schema by id); the decoded record folds like the original."""
    codec = LocalCodec()
    customer = max(demo, key=lambda k: len(demo[k]))
    framed = [codec.encode(CAT.schema(r["envelope"]["event_type"]), r) for r in demo[customer]]
    assert all(f[0] == 0 for f in framed)   # Confluent magic byte
    decoded = [codec.decode(f).record for f in framed]
    assert c360.fingerprint(_per_event(decoded, customer)) == c360.fingerprint(c360.fold(demo[customer], customer))


@pytest.mark.parametrize("headers, expected", [
    ([("touchstream.kind", b"membership"), ("touchstream.seq", b"4")], True),
    ([("touchstream.kind", b"event"), ("touchstream.customer_id", b"CU-1")], False),
    ({"touchstream.kind": b"membership"}, True),           # faust Event.headers
    ([("touchstream.kind", "membership")], True),
    ([("other", b"membership")], False),
    ([], False),
    (None, False),                                          # confluent-kafka: no headers
])
def test_membership_records_are_recognised(headers, expected):
    assert is_membership(headers) is expected


def test_customer_key():
    assert customer_key(b"CU-1") == "CU-1"
    assert customer_key("CU-1") == "CU-1"
    with pytest.raises(ValueError):
        customer_key(None)


def test_duckdb_row_carries_the_canonical_view(demo):
    customer = max(demo, key=lambda k: len(demo[k]))
    profile = c360.fold(demo[customer], customer)
    cid, events, last_seen, text = duckdb_row(customer, profile)
    view = c360.view(profile)
    assert (cid, events) == (customer, len(demo[customer]))
    assert last_seen == datetime.fromisoformat(view["last_seen"]) and last_seen.tzinfo is not None
    assert text == c360.view_json(view) and json.loads(text)["customer_id"] == customer


def test_result_shape_and_rate():
    tally = Tally()
    assert result("p", tally, {})["rate"] == 0.0          # no time measured: no rate, never infinity
    for key in ("a", "a", "b"):
        tally.saw()
        tally.folded(key)
    tally.saw()
    tally.membership += 1
    tally.first, tally.last = 10.0, 12.0
    out = result("p", tally, {"lib": "1"}, duckdb_rows=2)
    assert {k: out[k] for k in ("peer", "records", "events", "membership", "customers", "seconds", "rate")} == \
        {"peer": "p", "records": 4, "events": 3, "membership": 1, "customers": 2, "seconds": 2.0, "rate": 2.0}
    assert out["duckdb_rows"] == 2 and out["versions"] == {"lib": "1"} and out["peak_rss_mb"] > 0


def test_quix_venv_is_built_once(tmp_path, monkeypatch):
    """A venv whose stamp matches is reused without running anything; a stale stamp means a rebuild."""
    venv = peer_env.venv_dir(tmp_path)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / peer_env.STAMP).write_text(json.dumps(peer_env._stamp()))
    monkeypatch.setattr(peer_env.subprocess, "run", lambda *a, **k: pytest.fail("rebuilt a current venv"))
    assert peer_env.ensure_quix_python(tmp_path) == venv / "bin" / "python"

    stale = {**peer_env._stamp(), "requirements": ["quixstreams==0.0.1"]}
    (venv / peer_env.STAMP).write_text(json.dumps(stale))
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "python").touch()
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(peer_env.subprocess, "run", run)
    assert peer_env.ensure_quix_python(tmp_path) == venv / "bin" / "python"
    assert calls[0][1:3] == ["-m", "venv"] and "quixstreams==3.28.1" in calls[1]
    assert "--no-deps" in calls[2] and str(peer_env.repo_root()) in calls[2]
    assert json.loads((venv / peer_env.STAMP).read_text()) == peer_env._stamp()


def test_a_failed_build_shows_the_log(tmp_path, monkeypatch, capsys):
    def pip_fails(cmd, stdout, **kwargs):
        stdout.write("ERROR: No matching distribution found for quixstreams==3.28.1\n")
        return type("Done", (), {"returncode": 0 if cmd[1:3] == ["-m", "venv"] else 1})()
    monkeypatch.setattr(peer_env.subprocess, "run", pip_fails)
    with pytest.raises(RuntimeError, match="quix-venv-install.log"):
        peer_env.ensure_quix_python(tmp_path)
    assert "No matching distribution" in capsys.readouterr().err
    assert not (peer_env.venv_dir(tmp_path) / peer_env.STAMP).exists()
