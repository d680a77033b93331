"""The tuned ``Catalogue.validate`` and ``validate_batch`` agree with the plain reference
(``tests/validation_reference.py``) on every generated event: the same record, key and topic for
an accepted one, the same problems (paths and reasons, in order) for a rejected one, the same
exception for input that makes both raise something else. Events are drawn valid-shaped for each
schema (with allowed channels, identities and times most of the time), then some are mutated:
a field removed, a value swapped for an odd one, an unknown field added, the whole event replaced."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import validation_reference as reference
from tests.avro_strategies import json_for
from touchstream.events import envelope as envelope_module
from touchstream.events.catalogue import Catalogue
from touchstream.events.validation import EventValidationError, text_problems, to_avro
from touchstream.schemas import load_latest

SCHEMAS = load_latest()
CATALOGUE = Catalogue(SCHEMAS)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
ODD = [None, "", " ", "x", "phone", "web", "customer", "complaint", "a@b", "@b", "b@", "+31 20 123 4567", "abc\n",
       0, 1, -1, 2**31, 2**63, 1.5, 2.0, float("nan"), True, False, [], {}, ["a"], {"a": 1}, {"envelope": None},
       "2026-01-05T07:28:07.301Z", "2026-01-05T07:28:07.301456+02:00", "2026-01-05T07:28:07", "2026-01-05t07:28z",
       "1999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-01-05", "12.50", "1.005", 1772355600123, 10**15,
       datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1), datetime(1999, 1, 1, tzinfo=timezone.utc),
       datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=timezone(timedelta(hours=3)))]
ODDITY = st.sampled_from(ODD).map(copy.deepcopy)   # a fresh copy: later mutations must not reach ODD
HINT = st.one_of(st.none(), st.sampled_from(["", " ", "c-1", "a@b.example", "@x", "+31 20 123 4567", "12", "x\n"]))
MOMENTS = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(timezone.utc))
TIMES = st.one_of(MOMENTS.map(lambda d: d.isoformat().replace("+00:00", "Z")), MOMENTS,
                  MOMENTS.map(lambda d: int(d.timestamp() * 1000)), st.sampled_from(ODD[28:]))


@st.composite
def plausible(draw):
    """An event of one schema with an envelope the rules accept, but for what a later draw spoils."""
    schema = draw(st.sampled_from(sorted(SCHEMAS.values(), key=lambda s: s.event_type)))
    event = draw(json_for(schema.schema))
    env, meta = event["envelope"], schema.meta
    env["event_type"] = schema.event_type
    for field, key in (("channel", "channels"), ("content", "contents"), ("initiated_by", "initiated_by")):
        if meta.get(key):
            env[field] = draw(st.sampled_from(meta[key]))
    env["identity"] = {"customer_id": "c-1", **draw(st.dictionaries(st.sampled_from(envelope_module.IDENTITY_FIELDS),
                                                                      HINT, max_size=3))}
    env["occurred_at"] = draw(TIMES)
    env["event_id"] = draw(st.sampled_from(["e-1", "demo-6e0db4bb-00000001", None, "", "a b", "x" * 129]))
    if draw(st.booleans()):
        env["recorded_at"] = draw(TIMES)
    else:
        env.pop("recorded_at")
    return event


def locations(value, here=()):
    yield here
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from locations(inner, here + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from locations(inner, here + (index,))


@st.composite
def events(draw):
    event = draw(plausible())
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        where = draw(st.sampled_from(list(locations(event))))
        if not where:
            return draw(ODDITY)
        parent = event
        for step in where[:-1]:
            parent = parent[step]
        change = draw(st.sampled_from(["remove", "replace", "add"]))
        if change == "remove" and isinstance(parent, dict):
            del parent[where[-1]]
        elif change == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["colour", "zz", "a", "event_id"]))] = draw(ODDITY)
        else:
            parent[where[-1]] = draw(ODDITY)
    return event


def outcome(check):
    with mock.patch.object(envelope_module, "new_event_id", lambda: "generated-id"):
        try:
            return "valid", repr(check())
        except EventValidationError as exc:
            return "invalid", [(p.path, p.reason) for p in exc.problems]
        except Exception as exc:  # noqa: BLE001 - both sides must fail the same way
            return "raised", type(exc).__name__, str(exc)


SOURCES = st.sampled_from([{}, {"source": "pbx"}, {"default_source": "bench"}, {"source": " "}])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events(), sources=SOURCES)
def test_validate_agrees_with_the_reference(event, sources):
    def tuned():
        valid = CATALOGUE.validate(event, now=NOW, **sources)
        return valid.record, valid.key, valid.topic
    expected = outcome(lambda: reference.validate(SCHEMAS, event, NOW, **sources))
    assert outcome(tuned) == expected


def reference_batch(batch, sources):
    """The catalogue's batch rule over the reference: every event's problems, prefixed with its index."""
    valid, problems = [], []
    for index, event in enumerate(batch):
        try:
            valid.append(reference.validate(SCHEMAS, event, NOW, **sources))
        except EventValidationError as exc:
            problems += [reference.Problem(f"[{index}].{p.path}".rstrip("."), p.reason) for p in exc.problems]
    if problems:
        raise EventValidationError(problems)
    return valid


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.one_of(plausible(), events()), max_size=4), sources=SOURCES)
def test_validate_batch_agrees_with_the_reference(batch, sources):
    def tuned():
        return [(v.record, v.key, v.topic) for v in CATALOGUE.validate_batch(batch, now=NOW, **sources)]
    assert outcome(tuned) == outcome(lambda: reference_batch(batch, sources))


KINDS = {"type": "record", "name": "Kinds", "namespace": "t", "fields": [
    {"name": name, "type": kind, **({"default": None} if isinstance(kind, list) and kind[0] == "null" else {})}
    for name, kind in {
        "s": "string", "os": ["null", "string"], "so": ["string", "null"], "i": "int", "oi": ["null", "int"],
        "l": "long", "b": "boolean", "ob": ["null", "boolean"], "f": "float", "d": "double", "od": ["null", "double"],
        "by": "bytes", "n": "null", "e": {"type": "enum", "name": "E", "symbols": ["web", "x"]}, "oe": ["null", "E"],
        "oe2": ["null", {"type": "enum", "name": "E2", "symbols": ["phone", "x"]}],
        "t": {"type": "long", "logicalType": "timestamp-millis"},
        "tu": {"type": "long", "logicalType": "timestamp-micros"},
        "dt": {"type": "int", "logicalType": "date"}, "ls": {"type": "string", "logicalType": "uuid"},
        "m": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
        "a": {"type": "array", "items": ["null", "string"]}, "mp": {"type": "map", "values": "int"},
        "u": ["int", "string", "null"], "us": ["string", "int"], "w": {"type": ["null", "string"]},
        "r": ["null", {"type": "record", "name": "R", "fields": [{"name": "x", "type": "string", "default": "d"}]}],
    }.items()]}


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(st.sampled_from([f["name"] for f in KINDS["fields"]] + ["zz"]), ODDITY))
def test_every_field_kind_agrees_with_the_reference(value):
    """Each kind of field, present or missing, with every odd value: the fields a record takes inline included."""
    def walked():
        problems: list = []
        record = reference.Walk(KINDS).value(KINDS, value, [], problems)
        if problems:
            raise EventValidationError(problems)
        return record
    assert outcome(lambda: to_avro(KINDS, value)) == outcome(walked)


TEXT = st.text(alphabet=["a", "é", "\x00", "\ud800", "\udfff", "\U0001f600", " "], max_size=4)
JSONISH = st.recursive(st.one_of(TEXT, st.integers(), st.none(), st.just(NOW)), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=3)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=JSONISH, path=st.sampled_from(["", "envelope"]))
def test_text_problems_agree_with_the_reference(value, path):
    """The walk that makes no paths for a clean event finds exactly what the walk with paths finds."""
    assert text_problems(value, path) == reference.unstorable(value, path)


def test_the_comparison_can_fail():
    """A reference that differed would be caught: one rule changed in the reference is noticed."""
    event = {"envelope": {"event_type": "web.page_viewed", "event_id": "e-1", "occurred_at": "1999-01-01T00:00:00Z",
                          "channel": "web", "content": "inquiry", "initiated_by": "customer",
                          "identity": {"cookie_id": "c"}}, "url": "https://x.example"}
    tuned = outcome(lambda: CATALOGUE.validate(event, now=NOW, source="pbx"))
    assert tuned == outcome(lambda: reference.validate(SCHEMAS, event, NOW, source="pbx"))
    assert tuned[0] == "invalid" and tuned[1] == [("envelope.occurred_at", "1999-01-01T00:00:00Z is before "
                                                   "2000-01-01; send the real time")]
    with mock.patch.object(reference, "EARLIEST", datetime(1990, 1, 1, tzinfo=timezone.utc)):
        assert outcome(lambda: reference.validate(SCHEMAS, event, NOW, source="pbx")) != tuned
