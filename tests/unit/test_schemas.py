"""Guards on the Avro event contracts under ``schemas/``.

What they protect: the layout rules of ``touchstream.schemas``, the interaction catalogue
coverage of domain.md section 2, the conventions every schema follows (optional fields,
enum defaults, money, time, personal data), wire round trips, the lock on published files
and the generated catalogue in ``docs/events.md``.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest

from touchstream.schemas import COMMON_DIR, DERIVED_DIR, common_types, load_all, load_latest
from touchstream.schemas.__main__ import (
    LOCK_COMMAND,
    MARKDOWN_COMMAND,
    current_hashes,
    lock_diff,
    read_lock,
    render_markdown,
)
from touchstream.topics import load_topics

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = load_all()
IDS = [f"{s.event_type}.v{s.version}" for s in SCHEMAS]

# Every event type of the catalogue. A new event type is added here on purpose.
EXPECTED_EVENT_TYPES = {
    "web.page_viewed", "web.form_submitted", "web.chat_message_sent",
    "email.sent", "email.delivered", "email.opened", "email.clicked", "email.bounced", "email.received",
    "phone.call_started", "phone.call_answered", "phone.call_ended", "phone.callback_made",
    "sms.sent", "sms.delivered", "sms.received",
    "store.visited", "store.purchase_completed", "store.item_returned",
    "postal.mail_sent", "postal.mail_received",
    "social.comment_posted", "social.review_posted", "social.reply_sent",
    "meeting.scheduled", "meeting.held",
    "document.sent", "document.signed",
    "commerce.requirement_specified", "commerce.order_placed", "commerce.order_fulfilled",
    "commerce.order_delivered", "commerce.invoice_issued", "commerce.payment_received",
    "commerce.credit_issued", "commerce.return_received",
    "identity.identifier_observed", "identity.identifiers_linked", "identity.identifiers_unlinked",
    "feedback.survey_answered", "feedback.csat_given", "feedback.nps_given",
    "feedback.golden_question_answered", "feedback.consent_given", "feedback.consent_withdrawn",
    "feedback.compliment_given",
    "campaign.message_sent",
    "complaint.opened", "complaint.acknowledged", "complaint.updated", "complaint.callback_promised",
    "complaint.escalated", "complaint.resolved", "complaint.reopened", "complaint.closed",
    "complaint.satisfaction_given",
}

# Past-tense last words of event names. Regular verbs end in -ed; irregular ones are listed.
IRREGULAR_PAST = {"sent", "held", "made", "given", "withdrawn", "paid", "won", "lost", "begun", "done",
                  "taken", "seen", "chosen", "written", "read", "bought", "sold", "kept", "met", "left", "put", "set"}

# Interaction catalogue (domain.md section 2): content row -> side that initiates it.
CATALOGUE = {
    "order_payment": "customer", "specification": "customer", "inquiry": "customer",
    "complaint": "customer", "compliment": "customer",
    "fulfilment": "company", "invoicing": "company", "promotion": "company", "informing": "company",
}
BRIEF_CHANNELS = {"web", "email", "phone", "sms", "store", "postal_mail", "social", "meeting", "document"}

# Fields holding money must be touchstream.common.Money (exact decimal), never a number.
MONEY_FIELD_NAMES = {"amount", "total", "price", "unit_price", "refund", "budget"}
MONEY_FIELDS = {"touchstream.document.Sent.value"}  # money under a generic name
# The only floating-point fields: scores that are not money.
FLOAT_ALLOWED = {("social.comment_posted", "sentiment")}
# Free text and personal data: a string or map field with one of these names must carry "pii": true.
PII_FIELD_NAMES = {"text", "description", "note", "notes", "comment", "body_excerpt", "subject", "answer",
                   "answers", "summary", "author_handle", "location", "diagnostic"}
# Identity hints that are not raw personal identifiers: customer_id is the pseudonymous canonical key
# projections join on (the common schema leaves it unmarked on purpose).
NON_PII_IDENTITY_HINTS = {"customer_id"}
TIMESTAMP_FIELDS = {"promised_by"}  # besides *_at
DATE_FIELDS = {"needed_by", "valid_until", "due_date"}  # besides *_date


# --------------------------------------------------------------------------- helpers


def _fullname(node: dict, namespace: str) -> str:
    name = node["name"]
    if "." in name:
        return name
    ns = node.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def named_definitions(schema) -> list[tuple[str, dict]]:
    """(full name, definition) of every named type defined inline, in document order."""
    out: list[tuple[str, dict]] = []

    def walk(t, ns):
        if isinstance(t, list):
            for x in t:
                walk(x, ns)
        elif isinstance(t, dict):
            kind = t.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                full = _fullname(t, ns)
                out.append((full, t))
                if kind in ("record", "error"):
                    for fld in t["fields"]:
                        walk(fld["type"], full.rpartition(".")[0])
            elif kind == "array":
                walk(t["items"], ns)
            elif kind == "map":
                walk(t["values"], ns)
            elif isinstance(kind, (list, dict)):
                walk(kind, ns)

    walk(schema, "")
    return out


def own_fields(schema) -> list[tuple[str, dict]]:
    """(record full name, field) for every field of every record defined outside common/."""
    return [
        (full, fld)
        for full, node in named_definitions(schema)
        if node["type"] == "record" and not full.startswith("touchstream.common.")
        for fld in node["fields"]
    ]


def branches(t) -> list:
    return t if isinstance(t, list) else [t]


def non_null(t):
    rest = [b for b in branches(t) if b != "null"]
    return rest[0] if len(rest) == 1 else rest


def is_logical(t, logical: str, base: str) -> bool:
    t = non_null(t)
    return isinstance(t, dict) and t.get("logicalType") == logical and t.get("type") == base


def is_money(t) -> bool:
    t = non_null(t)
    name = t if isinstance(t, str) else t.get("name") if isinstance(t, dict) else None
    return name in ("touchstream.common.Money", "Money")


def primitives(t) -> set[str]:
    """Primitive type names used anywhere in a field type (not descending into named records)."""
    out: set[str] = set()
    for b in branches(t):
        if isinstance(b, str):
            out.add(b)
        elif isinstance(b, dict):
            kind = b["type"]
            if kind == "array":
                out |= primitives(b["items"])
            elif kind == "map":
                out |= primitives(b["values"])
            elif isinstance(kind, str) and kind not in ("record", "enum", "fixed", "error"):
                out.add(kind)
    return out


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def symbols(full: str) -> set[str]:
    return set(common_types()[full]["symbols"]) - {"unknown"}


# --------------------------------------------------------------------------- loading and layout


def test_every_event_file_is_loaded():
    files = {p for p in (REPO / "schemas").glob("*/*.avsc") if p.parent not in (COMMON_DIR, DERIVED_DIR)}
    assert {s.path for s in SCHEMAS} == files


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_parses_with_fastavro(schema):
    fastavro.parse_schema(schema.schema)


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_layout(schema):
    raw = json.loads(schema.path.read_text())
    name = schema.event_type.split(".", 1)[1]
    assert raw["type"] == "record"
    assert raw["name"] == pascal(name)
    assert raw["namespace"] == f"touchstream.{schema.domain}"
    assert raw["fields"][0] == {"name": "envelope", "type": "touchstream.common.Envelope"}, "first field is the envelope"
    assert schema.schema["fields"][0]["type"]["name"] == "Envelope"
    names = [f["name"] for f in raw["fields"]]
    assert len(names) == len(set(names)), "duplicate field names"


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_meta(schema):
    meta = schema.meta
    assert set(meta) == {"event_type", "channels", "contents", "initiated_by"}
    for key, allowed in (
        ("channels", symbols("touchstream.common.Channel")),
        ("contents", symbols("touchstream.common.Content")),
        ("initiated_by", symbols("touchstream.common.Initiator")),
    ):
        values = meta[key]
        assert values, f"{key} is empty"
        assert len(values) == len(set(values)), f"{key} has duplicates"
        assert set(values) <= allowed, f"{key}: unknown symbols {set(values) - allowed}"


def test_subjects_are_unique_per_event_type():
    owners: dict[str, set[str]] = {}
    for s in SCHEMAS:
        owners.setdefault(s.subject, set()).add(s.event_type)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


def test_every_domain_has_a_raw_topic():
    raw_domains = {t.domain for t in load_topics() if t.domain}
    assert {s.domain for s in SCHEMAS} <= raw_domains


# --------------------------------------------------------------------------- the catalogue


def test_expected_event_types_exist():
    actual = set(load_latest())
    assert sorted(EXPECTED_EVENT_TYPES - actual) == [], "missing schema files"
    assert sorted(actual - EXPECTED_EVENT_TYPES) == [], "new event type: add it to EXPECTED_EVENT_TYPES"


@pytest.mark.parametrize("event_type", sorted(EXPECTED_EVENT_TYPES))
def test_event_names_are_past_tense(event_type):
    last = event_type.split(".", 1)[1].rsplit("_", 1)[-1]
    assert last.endswith("ed") or last in IRREGULAR_PAST, f"{event_type}: name events in the past tense"


def test_every_catalogue_content_is_covered_by_its_initiator():
    missing = []
    for content, side in CATALOGUE.items():
        if not any(content in s.meta["contents"] and side in s.meta["initiated_by"] for s in SCHEMAS):
            missing.append(f"{content} ({side})")
    assert missing == []


def test_every_brief_channel_has_events():
    covered = {c for s in SCHEMAS for c in s.meta["channels"]}
    assert sorted(BRIEF_CHANNELS - covered) == []


def test_identity_events_use_identity_content():
    for s in SCHEMAS:
        if s.domain == "identity":
            assert s.meta["contents"] == ["identity"]
        if s.domain == "complaint":
            assert s.meta["contents"] == ["complaint"]


# --------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_every_enum_has_a_default(schema):
    for full, node in named_definitions(schema.schema):
        if node["type"] == "enum":
            assert node.get("default") in node["symbols"], f"{full}: enum needs a default symbol"


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_named_types_defined_once(schema):
    names = [full for full, _ in named_definitions(schema.schema)]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_named_types_agree_across_event_types():
    """A nested type name means one shape in the latest schemas (e.g. touchstream.commerce.OrderLine)."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for s in load_latest().values():
        for full, node in named_definitions(s.schema)[1:]:
            shape = json.dumps(node, sort_keys=True)
            if full in seen and seen[full][1] != shape:
                clashes.append(f"{full}: {seen[full][0]} vs {s.event_type}")
            seen.setdefault(full, (s.event_type, shape))
    assert clashes == [], "rename the type or change it in every event that uses it"


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_records_have_docs(schema):
    for full, node in named_definitions(schema.schema):
        if node["type"] == "record":
            assert node.get("doc"), f"{full}: record needs a doc"


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_optional_fields_are_null_first_with_null_default(schema):
    for record, fld in own_fields(schema.schema):
        if isinstance(fld["type"], list):
            where = f"{record}.{fld['name']}"
            assert fld["type"][0] == "null" and len(fld["type"]) == 2, f"{where}: use [\"null\", T]"
            assert "default" in fld and fld["default"] is None, f"{where}: optional needs \"default\": null"


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_times_use_logical_types(schema):
    for record, fld in own_fields(schema.schema):
        name, t, where = fld["name"], fld["type"], f"{record}.{fld['name']}"
        if name.endswith("_at") or name in TIMESTAMP_FIELDS:
            assert is_logical(t, "timestamp-millis", "long"), f"{where}: use timestamp-millis"
        if name.endswith("_date") or name in DATE_FIELDS:
            assert is_logical(t, "date", "int"), f"{where}: use the date logical type"
        inner = non_null(t)
        if isinstance(inner, dict) and inner.get("type") == "long" and "logicalType" in inner:
            assert inner["logicalType"] == "timestamp-millis", f"{where}: timestamps are millis"


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_money_is_money(schema):
    for record, fld in own_fields(schema.schema):
        where = f"{record}.{fld['name']}"
        money_name = fld["name"] in MONEY_FIELD_NAMES or fld["name"].endswith(("_price", "_amount", "_total"))
        if money_name or where in MONEY_FIELDS:
            assert is_money(fld["type"]), f"{where}: money must be touchstream.common.Money"
        if primitives(fld["type"]) & {"float", "double"}:
            assert (schema.event_type, fld["name"]) in FLOAT_ALLOWED, f"{where}: no floating point (money is Money)"


def test_money_is_an_exact_decimal():
    amount = {f["name"]: f for f in common_types()["touchstream.common.Money"]["fields"]}["amount"]
    assert amount["type"]["logicalType"] == "decimal"


def test_identity_hints_are_pii():
    fields = common_types()["touchstream.common.IdentityHints"]["fields"]
    unmarked = [f["name"] for f in fields if not f.get("pii") and f["name"] not in NON_PII_IDENTITY_HINTS]
    assert unmarked == []


def test_identifier_values_are_pii():
    found = 0
    for s in SCHEMAS:
        for full, node in named_definitions(s.schema):
            if full == "touchstream.identity.Identifier":
                found += 1
                value = {f["name"]: f for f in node["fields"]}["value"]
                assert value.get("pii") is True
    assert found


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
def test_free_text_is_pii(schema):
    for record, fld in own_fields(schema.schema):
        if fld["name"] in PII_FIELD_NAMES and primitives(fld["type"]) & {"string"}:
            assert fld.get("pii") is True, f"{record}.{fld['name']}: free text / personal data needs \"pii\": true"
        if "pii" in fld:
            assert fld["pii"] is True, f"{record}.{fld['name']}: write \"pii\": true or leave it out"


# --------------------------------------------------------------------------- round trip

ENVELOPE = {
    "event_id": "e-1", "event_type": "store.purchase_completed",
    "occurred_at": datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc),
    "recorded_at": datetime(2025, 3, 1, 12, 0, 1, tzinfo=timezone.utc),
    "channel": "store", "content": "order_payment", "initiated_by": "customer", "source": "pos",
    "identity": {"customer_id": None, "email": None, "phone": None, "cookie_id": None, "device_id": None,
                 "loyalty_card": "L-1", "account_number": None},
    "correlation_id": None, "causation_id": None,
}

# The JSON -> Avro -> bytes -> JSON round trip of every schema lives in
# test_event_validation.py (strategies in tests/avro_strategies.py).


def test_round_trip_keeps_money_exact():
    schema = load_latest()["store.purchase_completed"].schema
    record = {"envelope": ENVELOPE, "receipt_id": "R1", "store_id": "S1", "staff_id": None, "campaign_id": None}
    record["lines"] = [{"sku": "A-1", "quantity": 3, "unit_price": {"amount": Decimal("0.10"), "currency": "EUR"}}]
    record["total"] = {"amount": Decimal("0.30"), "currency": "EUR"}
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    buf.seek(0)
    back = fastavro.schemaless_reader(buf, parsed, parsed)
    assert str(back["total"]["amount"]) == "0.30"
    assert back["lines"][0]["unit_price"]["amount"] * 3 == back["total"]["amount"]


# --------------------------------------------------------------------------- lock and docs


def test_every_schema_file_is_locked():
    diff = lock_diff(read_lock(), current_hashes())
    assert diff["unlocked"] == [], f"not in schemas/schemas.lock: run `{LOCK_COMMAND}` to add them"


def test_locked_schema_files_are_unchanged():
    diff = lock_diff(read_lock(), current_hashes())
    assert diff["changed"] == [], (
        "a published schema was edited: restore it and put the change in a new "
        "<event_name>.v<N+1>.avsc (BACKWARD compatible) instead"
    )
    assert diff["deleted"] == [], "a published schema was deleted: restore it"


def test_lock_diff_reports_each_kind():
    diff = lock_diff({"a": "1", "b": "2", "gone": "3"}, {"a": "1", "b": "changed", "new": "4"})
    assert diff == {"changed": ["b"], "unlocked": ["new"], "deleted": ["gone"]}


def test_events_doc_is_generated():
    doc = REPO / "docs" / "events.md"
    assert doc.exists(), f"generate it: {MARKDOWN_COMMAND}"
    assert doc.read_text() == render_markdown(), f"docs/events.md is stale: {MARKDOWN_COMMAND}"


def test_events_doc_lists_every_event_type():
    text = render_markdown()
    for s in SCHEMAS:
        assert re.search(rf"^\| `{re.escape(s.event_type)}` \| {s.version} \|", text, re.M), s.event_type
