"""The schema registry's contract: store port + service, compatibility rules, ``_schemas`` record bytes.

``RegistryContract`` is written once against the ``SchemaStore`` port. A subclass
supplies ``open_store``: a callable that opens a store over one backing log
(calling it again plays a restart). Here it runs on the in-memory store;
``tests/integration/test_registry_kafka.py`` runs the same class on Kafka.
"""

from __future__ import annotations

import copy
import json
import threading

import avro.schema
import pytest

from touchstream.registry import compatibility, records
from touchstream.registry.base import (
    IncompatibleSchema,
    InvalidCompatibilityLevel,
    InvalidSchema,
    InvalidVersion,
    RegistryState,
    SchemaNotFound,
    SchemaVersion,
    SubjectConfigNotFound,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)
from touchstream.registry.memory_store import MemorySchemaStore
from touchstream.registry.service import RegistryService
from touchstream.schemas import load_all

V1 = {"type": "record", "name": "Order", "namespace": "t.shop", "fields": [{"name": "id", "type": "string"}]}


def evolve(base: dict, *fields: dict, **changes) -> dict:
    body = copy.deepcopy(base)
    body["fields"] = body["fields"] + list(fields)
    body.update(changes)
    return body


def text(body: dict, **dumps) -> str:
    return json.dumps(body, **dumps)


V2 = evolve(V1, {"name": "total", "type": "long", "default": 0})
NO_DEFAULT = evolve(V1, {"name": "currency", "type": "string"})
OTHER = {"type": "record", "name": "Refund", "namespace": "t.shop", "fields": [{"name": "id", "type": "string"}]}


class RegistryContract:
    """Behaviour every ``SchemaStore`` must give the service. Subclasses define ``open_store``."""

    @pytest.fixture
    def svc(self, open_store) -> RegistryService:
        return RegistryService(open_store())

    # -- ids and versions ----------------------------------------------------

    def test_first_registration_is_id_1_version_1(self, svc):
        sv = svc.register("t.shop.Order", text(V1))
        assert (sv.id, sv.version, sv.subject, sv.deleted) == (1, 1, "t.shop.Order", False)
        assert json.loads(svc.schema_by_id(1).schema) == V1
        assert svc.get_version("t.shop.Order", "latest") == sv

    def test_same_schema_again_returns_existing_version(self, svc):
        first = svc.register("t.shop.Order", text(V1))
        spaced = json.dumps(dict(reversed(list(V1.items()))), indent=2)  # other key order and whitespace
        assert svc.register("t.shop.Order", spaced) == first
        assert svc.versions("t.shop.Order") == [1]

    def test_ids_are_global_and_new_schemas_get_max_plus_one(self, svc):
        a = svc.register("t.shop.Order", text(V1))
        b = svc.register("t.shop.Order", text(V2))
        c = svc.register("copy-of-order", text(V1))
        d = svc.register("t.shop.Refund", text(OTHER))
        assert (a.id, b.id, c.id, d.id) == (1, 2, 1, 3)
        assert (b.version, c.version) == (2, 1)
        assert svc.subjects() == ["copy-of-order", "t.shop.Order", "t.shop.Refund"]
        assert {(sv.subject, sv.version) for sv in svc.id_versions(1)} == {("t.shop.Order", 1), ("copy-of-order", 1)}

    def test_a_changed_doc_is_a_different_schema(self, svc):
        a = svc.register("t.shop.Order", text(V1))
        b = svc.register("t.shop.Order", text(dict(V1, doc="An order.")))
        assert b.id != a.id and b.version == 2

    def test_lookup(self, svc):
        svc.register("t.shop.Order", text(V1))
        svc.register("t.shop.Order", text(V2))
        assert svc.lookup("t.shop.Order", text(V1, indent=1)).version == 1
        with pytest.raises(SchemaNotFound):
            svc.lookup("t.shop.Order", text(OTHER))
        with pytest.raises(SubjectNotFound):
            svc.lookup("nobody", text(V1))

    def test_reading_what_is_missing(self, svc):
        svc.register("t.shop.Order", text(V1))
        with pytest.raises(SchemaNotFound) as exc:
            svc.schema_by_id(42)
        assert exc.value.error_code == 40403 and exc.value.http_status == 404
        with pytest.raises(VersionNotFound):
            svc.get_version("t.shop.Order", 2)
        with pytest.raises(SubjectNotFound):
            svc.versions("nobody")
        with pytest.raises(InvalidVersion) as bad:
            svc.get_version("t.shop.Order", "zero")
        assert bad.value.error_code == 42202 and bad.value.http_status == 422

    def test_invalid_schemas_are_refused(self, svc):
        for bad in ["{not json", '{"type": "recrod", "name": "X"}', text(evolve(V1, {"name": "n", "type": "int", "default": "x"}))]:
            with pytest.raises(InvalidSchema) as exc:
                svc.register("t.shop.Order", bad)
            assert exc.value.error_code == 42201
        with pytest.raises(InvalidSchema):
            svc.register("t.shop.Order", text(V1), references=[{"name": "x", "subject": "y", "version": 1}])
        with pytest.raises(InvalidSchema):
            svc.register("t.shop.Order", "{}", schema_type="PROTOBUF")
        assert svc.subjects() == []

    # -- compatibility -------------------------------------------------------

    def test_incompatible_change_is_refused_with_the_field_named(self, svc):
        svc.register("t.shop.Order", text(V1))
        with pytest.raises(IncompatibleSchema) as exc:
            svc.register("t.shop.Order", text(NO_DEFAULT))
        assert exc.value.error_code == 409
        assert "currency" in exc.value.message and "t.shop.Order" in exc.value.message
        assert svc.versions("t.shop.Order") == [1]
        assert svc.check_compatibility("t.shop.Order", text(NO_DEFAULT))
        assert svc.check_compatibility("t.shop.Order", text(V2)) == []

    def test_transitive_levels_check_every_live_version(self, svc):
        svc.register("s", text(V1))
        svc.register("s", text(V2))
        v3 = evolve(V1, {"name": "total", "type": "long"})  # reads v2, but not v1 (no default)
        assert svc.check_compatibility("s", text(v3)) == []
        svc.set_config("s", "BACKWARD_TRANSITIVE")
        assert svc.check_compatibility("s", text(v3), version=None)
        assert svc.check_compatibility("s", text(v3), version=1)
        with pytest.raises(IncompatibleSchema):
            svc.register("s", text(v3))

    def test_compatibility_against_an_empty_or_missing_subject(self, svc):
        assert svc.check_compatibility("nobody", text(V1)) == []
        with pytest.raises(SubjectNotFound):
            svc.check_compatibility("nobody", text(V1), version=1)

    # -- config --------------------------------------------------------------

    def test_config_levels(self, svc):
        assert svc.get_config() == "BACKWARD"
        with pytest.raises(SubjectConfigNotFound):
            svc.get_config("t.shop.Order")
        assert svc.get_config("t.shop.Order", default_to_global=True) == "BACKWARD"
        assert svc.set_config(None, "full") == "FULL"
        assert svc.set_config("t.shop.Order", "NONE") == "NONE"
        assert (svc.get_config(), svc.get_config("t.shop.Order")) == ("FULL", "NONE")
        with pytest.raises(InvalidCompatibilityLevel) as exc:
            svc.set_config(None, "SIDEWAYS")
        assert exc.value.error_code == 42203
        svc.register("t.shop.Order", text(V1))
        assert svc.register("t.shop.Order", text(NO_DEFAULT)).version == 2  # NONE lets it through
        assert svc.delete_config("t.shop.Order") == "NONE"
        assert svc.get_config("t.shop.Order", default_to_global=True) == "FULL"

    # -- deletes -------------------------------------------------------------

    def test_soft_then_permanent_subject_delete(self, svc):
        svc.register("a", text(V1))
        svc.register("a", text(V2))
        svc.set_config("a", "NONE")
        with pytest.raises(SubjectNotSoftDeleted):
            svc.delete_subject("a", permanent=True)
        assert svc.delete_subject("a") == [1, 2]
        assert svc.subjects() == [] and svc.subjects(deleted=True) == ["a"]
        assert svc.subjects(deleted_only=True) == ["a"]
        assert svc.versions("a", deleted=True) == [1, 2]
        assert svc.schema_by_id(1).deleted  # ids stay readable: old data still points at them
        with pytest.raises(SubjectConfigNotFound):
            svc.get_config("a")
        with pytest.raises(SubjectSoftDeleted):
            svc.delete_subject("a")
        assert svc.delete_subject("a", permanent=True) == [1, 2]
        assert svc.subjects(deleted=True) == []
        with pytest.raises(SchemaNotFound):
            svc.schema_by_id(1)
        with pytest.raises(SubjectNotFound):
            svc.delete_subject("a")

    def test_versions_are_not_reused_after_soft_delete_and_ids_are(self, svc):
        first = svc.register("a", text(V1))
        svc.delete_subject("a")
        again = svc.register("a", text(V1))
        assert (again.id, again.version) == (first.id, 2)

    def test_version_delete(self, svc):
        svc.register("a", text(V1))
        svc.register("a", text(V2))
        with pytest.raises(VersionNotSoftDeleted):
            svc.delete_version("a", 2, permanent=True)
        assert svc.delete_version("a", "latest") == 2
        assert svc.get_version("a", "latest").version == 1
        with pytest.raises(VersionNotFound):
            svc.get_version("a", 2)
        assert svc.get_version("a", 2, deleted=True).deleted
        with pytest.raises(VersionSoftDeleted):
            svc.delete_version("a", 2)
        assert svc.delete_version("a", 2, permanent=True) == 2
        assert svc.versions("a", deleted=True) == [1]

    # -- durability and concurrency ------------------------------------------

    def test_reopening_the_store_restores_the_same_state(self, open_store):
        svc = RegistryService(open_store())
        ids = [svc.register("a", text(V1)).id, svc.register("a", text(V2)).id, svc.register("b", text(OTHER)).id]
        svc.set_config(None, "FULL")
        svc.set_config("b", "NONE")
        svc.delete_subject("b")
        before = svc.store.state()
        reopened = RegistryService(open_store())
        assert reopened.store.state() == before
        assert [reopened.register("a", text(V1)).id, reopened.register("a", text(V2)).id] == ids[:2]
        assert reopened.register("c", text(dict(OTHER, name="Other"))).id == max(ids) + 1
        assert reopened.get_config() == "FULL"

    def test_concurrent_registrations_get_distinct_ids_and_versions(self, svc):
        bodies = [evolve(V1, {"name": f"f{i}", "type": "int", "default": i}) for i in range(8)]
        results: list[SchemaVersion] = []
        errors: list[Exception] = []

        def register(body):
            try:
                results.append(svc.register(f"s{bodies.index(body) % 2}", text(body)))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=register, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(r.id for r in results) == list(range(1, 9))
        for subject in ("s0", "s1"):
            assert sorted(r.version for r in results if r.subject == subject) == [1, 2, 3, 4]

    def test_store_port_directly(self, open_store):
        store = open_store()
        store.put_schema(SchemaVersion("x", 1, 7, text(V1)))
        store.put_schema(SchemaVersion("x", 2, 9, text(V2), deleted=True))
        store.put_config("x", "FORWARD")
        store.put_config(None, "FULL")
        store.put_config(None, None)
        store.delete_schema("x", 1)
        state = store.state()
        assert list(state.versions["x"]) == [2] and state.versions["x"][2].deleted
        assert state.configs == {"x": "FORWARD"} and state.max_id == 9
        store.sync()
        assert open_store().state() == state


class TestMemoryStore(RegistryContract):
    @pytest.fixture
    def open_store(self):
        shared: list = []  # one log, many stores: opening another store plays a restart
        return lambda: MemorySchemaStore(shared)


# -- compatibility rules (pure) ---------------------------------------------


def parsed(body: dict):
    return avro.schema.parse(json.dumps(body))


def reasons(new: dict, old: dict, level: str = "BACKWARD") -> list[str]:
    return compatibility.check(parsed(new), [(1, parsed(old))], level)


def test_adding_a_field_with_default_is_backward_compatible():
    assert reasons(V2, V1) == []


def test_adding_a_field_without_default_names_the_field():
    found = reasons(NO_DEFAULT, V1)
    assert len(found) == 1 and "'currency'" in found[0] and "default" in found[0]


def test_changing_a_type_names_the_field_and_types():
    changed = copy.deepcopy(V2)
    changed["fields"][1]["type"] = "string"
    (reason,) = reasons(changed, V2)
    assert "'total'" in reason and "string" in reason and "long" in reason


def test_direction_matters_for_promotions():
    as_int = evolve(V1, {"name": "n", "type": "int", "default": 0})
    as_long = evolve(V1, {"name": "n", "type": "long", "default": 0})
    assert reasons(as_long, as_int, "BACKWARD") == []
    assert reasons(as_long, as_int, "FORWARD") and reasons(as_long, as_int, "FULL")
    assert reasons(as_long, as_int, "NONE") == []


def test_removed_enum_symbol_and_nested_field_paths():
    old = evolve(V1, {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["open", "closed"]}}]}})
    new = copy.deepcopy(old)
    new["fields"][1]["type"]["fields"][0]["type"]["symbols"] = ["open"]
    (reason,) = reasons(new, old)
    assert "meta.status" in reason and "closed" in reason


def test_real_event_schema_evolution():
    current = load_all()[0].schema
    with_default = evolve(current, {"name": "note", "type": ["null", "string"], "default": None})
    without = evolve(current, {"name": "note", "type": "string"})
    assert reasons(with_default, current) == []
    assert any("'note'" in r for r in reasons(without, current))


def test_levels_are_validated():
    assert compatibility.validate_level("full_transitive") == "FULL_TRANSITIVE"
    with pytest.raises(InvalidCompatibilityLevel):
        compatibility.validate_level("ALL")


# -- the _schemas record format (pure) ---------------------------------------


def test_schema_record_bytes_match_confluent_layout():
    sv = SchemaVersion("t.shop.Order", 3, 12, '{"type":"string"}')
    assert records.schema_key("t.shop.Order", 3) == b'{"keytype":"SCHEMA","subject":"t.shop.Order","version":3,"magic":1}'
    assert records.schema_value(sv) == (
        b'{"subject":"t.shop.Order","version":3,"id":12,"schema":"{\\"type\\":\\"string\\"}","deleted":false}'
    )
    other = SchemaVersion("s", 1, 1, "{}", schema_type="JSON", deleted=True)
    assert records.schema_value(other).endswith(b'"deleted":true,"schemaType":"JSON"}')


def test_config_record_bytes_match_confluent_layout():
    assert records.config_key(None) == b'{"keytype":"CONFIG","subject":null,"magic":0}'
    assert records.config_key("s") == b'{"keytype":"CONFIG","subject":"s","magic":0}'
    assert records.config_value("BACKWARD") == b'{"compatibilityLevel":"BACKWARD"}'


def test_fold_tolerates_foreign_key_types_and_rejects_garbage():
    state = RegistryState()
    assert records.apply(state, b'{"keytype":"NOOP","magic":0}', b"") is False
    assert records.apply(state, b'{"keytype":"MODE","subject":null,"magic":0}', b'{"mode":"READWRITE"}') is False
    assert records.apply(state, b'{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}', b'{"subject":"s","version":1}') is False
    assert records.apply(state, b'{"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}', b'{"subject":"s"}') is False
    with pytest.raises(records.MalformedRecord):
        records.apply(state, b"not json", b"{}")
    with pytest.raises(records.MalformedRecord):
        records.apply(state, records.schema_key("s", 1), b'{"subject":"s"}')
    assert state == RegistryState()


def test_memory_store_skips_malformed_records():
    log = [(b"garbage", b"x"), (records.schema_key("s", 1), records.schema_value(SchemaVersion("s", 1, 4, "{}")))]
    state = MemorySchemaStore(log).state()
    assert state.versions["s"][1].id == 4
