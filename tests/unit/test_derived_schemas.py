"""Guards on the derived record schemas (``schemas/derived/``) and the customer-360 contract.

What they protect: the derived layout (namespace, topic and key, docs, pii), the exact
fields other stages rely on, the registry accepting and bootstrap registering them, and
that every customer-360 view converts to a ``Customer360`` record that survives the wire
(demo customers, and any generated event stream). The topics themselves are checked by
the topic catalogue's tests, not here.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
from hypothesis import given

from tests.unit.test_customer_360 import EUR, FAST, SMALL, ev, streams
from tests.unit.test_schemas import named_definitions, pascal
from touchstream.demo.generator import generate
from touchstream.events.catalogue import Catalogue
from touchstream.events.validation import EventValidationError
from touchstream.projections.customer_360 import fold, new_profile, view
from touchstream.projections.customer_360_contract import FINDING_SCHEMA, SCHEMA, finding_records, to_record
from touchstream.projections.identity_resolution import IdentityResolver
from touchstream.registry import bootstrap
from touchstream.registry.memory_store import MemorySchemaStore
from touchstream.registry.service import RegistryService
from touchstream.schemas import (
    DERIVED_DIR,
    DERIVED_NAMESPACE,
    SchemaLayoutError,
    _load_derived_file,
    load_all,
    load_derived,
    load_derived_versions,
)
from touchstream.schemas.__main__ import render_markdown, schema_files

DERIVED = load_derived_versions()
IDS = [f"{d.name}.v{d.version}" for d in DERIVED]
EXPECTED = {"customer_membership_changed", "identity_decided", "contact_finding_raised", "customer_360",
            "complaint_case_view", "complaint_sla_event", "erasure_requested", "subject_erased"}
NOW = datetime(2100, 1, 1, tzinfo=timezone.utc)
TS = {"type": "long", "logicalType": "timestamp-millis"}
OPTIONAL = ["null", "string"]
IDENTIFIER = {"type": "array", "items": "touchstream.derived.Identifier"}  # compared by name, see _shape


def _shape(fields: list[dict]) -> dict:
    """name -> type, with named records reduced to their full name (their fields are checked on their own)."""
    def simple(t):
        if isinstance(t, list):
            return [simple(b) for b in t]
        if isinstance(t, dict) and t.get("type") == "record":
            return f"{t.get('namespace', DERIVED_NAMESPACE)}.{t['name']}"
        if isinstance(t, dict) and t.get("type") == "array":
            return {"type": "array", "items": simple(t["items"])}
        return t
    return {f["name"]: simple(f["type"]) for f in fields}


def _wire(schema: dict, record: dict) -> dict:
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, parsed, parsed)


# --------------------------------------------------------------------------- loading and layout


def test_every_derived_file_is_loaded_and_kept_out_of_the_event_catalogue():
    assert {d.path for d in DERIVED} == set(DERIVED_DIR.glob("*.avsc"))
    assert set(load_derived()) == EXPECTED
    assert not any(s.path.parent == DERIVED_DIR for s in load_all())
    assert set(DERIVED_DIR.glob("*.avsc")) <= set(schema_files()), "derived files are locked too"


@pytest.mark.parametrize("derived", DERIVED, ids=IDS)
def test_parses_with_fastavro_and_follows_the_layout(derived):
    fastavro.parse_schema(derived.schema)
    raw = json.loads(derived.path.read_text())
    assert (raw["type"], raw["name"], raw["namespace"]) == ("record", pascal(derived.name), DERIVED_NAMESPACE)
    assert set(raw["x-touchstream"]) == {"topic", "key"}
    assert derived.topic.startswith("touchstream.") and derived.key
    assert derived.subject == derived.record_name == f"{DERIVED_NAMESPACE}.{raw['name']}"
    names = [full for full, _ in named_definitions(derived.schema)]
    assert len(names) == len(set(names)), "a named type is defined twice"
    for full, node in named_definitions(derived.schema):
        if node["type"] == "record":
            assert node.get("doc"), f"{full}: record needs a doc"


def test_named_types_agree_across_derived_schemas():
    """touchstream.derived.Identifier is defined in two files: it must mean one shape."""
    seen: dict[str, str] = {}
    for d in load_derived().values():
        for full, node in named_definitions(d.schema):
            shape = json.dumps(node, sort_keys=True)
            assert seen.setdefault(full, shape) == shape, f"{full} differs between derived schemas"


def test_identifier_values_are_pii():
    found = 0
    for d in DERIVED:
        for full, node in named_definitions(d.schema):
            if full.endswith("Identifier"):
                found += 1
                assert {f["name"]: f for f in node["fields"]}["value"].get("pii") is True, full
    assert found >= 3


@pytest.mark.parametrize("body, problem", [
    ({"type": "record", "name": "X", "namespace": "touchstream.web", "x-touchstream": {"topic": "t", "key": "k"}},
     "namespace"),
    ({"type": "record", "name": "X", "namespace": DERIVED_NAMESPACE, "x-touchstream": {"key": "k"}}, "topic"),
    ({"type": "record", "name": "X", "namespace": DERIVED_NAMESPACE}, "x-touchstream.topic"),
])
def test_layout_errors(tmp_path: Path, body, problem):
    path = tmp_path / "x.v1.avsc"
    path.write_text(json.dumps({**body, "fields": []}))
    with pytest.raises(SchemaLayoutError, match=problem):
        _load_derived_file(path)
    with pytest.raises(SchemaLayoutError, match="expected"):
        _load_derived_file(tmp_path / "X.avsc")


# --------------------------------------------------------------------------- the fields other stages use


def test_customer_membership_changed_fields():
    d = load_derived()["customer_membership_changed"]
    assert d.topic == "touchstream.customer-events"
    assert _shape(d.schema["fields"]) == {"customer_id": "string", "identifiers": IDENTIFIER, "seq": "long",
                                          "decided_by": "string"}


def test_identity_decided_fields():
    d = load_derived()["identity_decided"]
    assert d.topic == "touchstream.identity.decisions"
    assert _shape(d.schema["fields"]) == {
        "decision_id": "string", "decision": "string", "seq": "long", "decided_by": "string", "decided_at": TS,
        "customer_id": OPTIONAL, "from_ids": {"type": "array", "items": "string"},
        "into_ids": {"type": "array", "items": "string"}, "identifiers": IDENTIFIER, "trust": OPTIONAL,
        "reason": OPTIONAL, "rule": OPTIONAL, "evidence_event_id": OPTIONAL}
    defaults = {f["name"]: f["default"] for f in d.schema["fields"] if "default" in f}
    assert defaults == {"customer_id": None, "from_ids": [], "into_ids": [], "identifiers": [], "trust": None,
                        "reason": None, "rule": None, "evidence_event_id": None}


def test_contact_finding_raised_fields():
    d = load_derived()["contact_finding_raised"]
    assert d.topic == "touchstream.contact-findings"
    strings = {"type": "array", "items": "string"}
    assert _shape(d.schema["fields"]) == {"finding_id": "string", "customer_id": "string", "kind": "string",
                                          "at": TS, "subject": "string", "channels": strings, "evidence": strings}


def test_customer_360_has_every_key_of_the_view():
    assert SCHEMA.topic == "touchstream.customer-360"
    assert [f["name"] for f in SCHEMA.schema["fields"]] == list(view(new_profile("CU-1")))


def test_money_sums_may_outgrow_the_precision_of_one_amount():
    """Ledger sums are decimal(38,2): two maximal Money amounts (decimal(18,2)) already need 19 digits."""
    top = "9999999999999999.99"
    orders = [ev("commerce.order_placed", h, order_id=f"O{h}", total=EUR(top)) for h in (0, 1)]
    record = to_record(view(fold(orders, "CU-1")))
    assert record["commerce"]["revenue_to_date"] == {"EUR": Decimal("19999999999999999.98")}
    assert record["commerce"]["last_order"]["total"] == Decimal(top)


def test_a_view_that_drifted_from_the_schema_is_refused_with_its_path():
    drifted = view(new_profile("CU-1"))
    drifted["touchmap"]["new_key"] = 1
    drifted["journey"]["since"] = "yesterday"
    with pytest.raises(EventValidationError) as exc:
        to_record(drifted)
    assert {p.path for p in exc.value.problems} == {"touchmap.new_key", "journey.since"}


# --------------------------------------------------------------------------- registry and docs


@pytest.mark.parametrize("derived", DERIVED, ids=IDS)
def test_the_local_registry_accepts_it(derived):
    svc = RegistryService(MemorySchemaStore())
    registered = svc.register(derived.subject, derived.canonical)
    assert registered.version == 1 and svc.register(derived.subject, derived.canonical) == registered


class _FakeClient:
    subjects: list[str] = []

    def __init__(self, conf):
        pass

    def register_schema(self, subject, schema):
        self.subjects.append(subject)
        return len(self.subjects)

    def close(self):
        pass


def test_bootstrap_registers_derived_schemas_unless_given_a_list(monkeypatch, tmp_path):
    from touchstream.config import Settings

    monkeypatch.setattr(bootstrap, "SchemaRegistryClient", _FakeClient)
    monkeypatch.setattr(_FakeClient, "subjects", [])
    settings = Settings(home=tmp_path)
    ids = bootstrap.register_all(settings)
    assert {f"derived.{d.name}.v{d.version}" for d in DERIVED} <= set(ids)
    assert "phone.call_ended.v1" in ids and len(ids) == len(load_all()) + len(DERIVED)
    assert set(_FakeClient.subjects) >= {d.subject for d in DERIVED}
    assert list(bootstrap.register_all(settings, [load_derived()["customer_360"]])) == ["derived.customer_360.v1"]


def test_events_doc_has_a_derived_topics_section():
    text = render_markdown()
    section = text[text.index("## Derived topics"):]
    for d in DERIVED:
        assert f"| `{d.name}` | {d.version} | `{d.subject}` | `{d.topic}` |" in section


# --------------------------------------------------------------------------- round trips


@pytest.fixture(scope="module")
def demo_views() -> list[dict]:
    """Demo customers as the pipeline sees them: validated events, grouped by identity resolution, folded."""
    catalogue, resolver, groups = Catalogue(), IdentityResolver(), defaultdict(list)
    for event in generate(30, 45, 5):
        record = catalogue.validate(event, now=NOW, default_source="demo").record
        customer_id = resolver.observe(record).customer_id
        if customer_id is not None:
            groups[customer_id].append(record)
    return [view(fold(records, customer_id)) for customer_id, records in sorted(groups.items())]


def test_every_demo_view_survives_the_wire(demo_views):
    assert len(demo_views) >= 30
    for v in demo_views:
        record = to_record(v)
        assert _wire(SCHEMA.schema, record) == record, v["customer_id"]
    # The round trip meant something: the optional parts the schema describes were filled somewhere.
    assert any(v["commerce"]["last_order"] for v in demo_views)
    assert any(v["complaints"]["last"] for v in demo_views)
    assert any(v["attitude"]["csat"] for v in demo_views)
    assert any(v["answers"] and v["consents"] for v in demo_views)


def test_demo_findings_become_contact_finding_records(demo_views):
    published = 0
    for v in demo_views:
        records = finding_records(v["customer_id"], v)
        assert [r["finding_id"] for r in records] == [f"{v['customer_id']}/{f['id']}" for f in v["findings"]]
        for record in records:
            assert _wire(FINDING_SCHEMA.schema, record) == record
        published += len(records)
    assert published > 0


@FAST
@given(events=streams())
def test_any_stream_gives_a_view_that_fits_the_contract(events):
    v = view(fold(events, "CU-1", SMALL))
    record = to_record(v)
    assert _wire(SCHEMA.schema, record) == record
    for finding in finding_records("CU-1", v):
        assert _wire(FINDING_SCHEMA.schema, finding) == finding
