"""Identity forgets an erased customer on the real stack (issue 17), through the erasure ledger.

A ``SubjectErased`` is published on ``touchstream.privacy.erasures`` as serving publishes it once the
person's keys are deleted; the running identity service (its own consumer group on the ledger) must
then hold none of the person's identifiers or customer ids in ``identity.sqlite`` but in the
``forgotten`` table, and a later event that names the customer id must not bring it back, also
after identity restarted (the suppression list is loaded, the ledger read again at start).
"""

from __future__ import annotations

import os
import signal
import uuid
from datetime import datetime, timezone

import pytest

from tests.integration.pipeline_helpers import wait_for
from tests.integration.test_privacy_on_broker import records_of
from tests.unit.test_identity_erasure import text_cells
from touchstream.codec.avro_codec import AvroCodec
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.publishing.publisher import Publisher
from touchstream.processors.topic_output import TopicOutput
from touchstream.schemas import load_derived
from touchstream.serving.catchup import wait_pipeline
from touchstream.stack import local_stack
from touchstream.processors.identity_resolution import CUSTOMER, KIND
from touchstream.topics import CUSTOMER_EVENTS_TOPIC, ERASURES_TOPIC

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def visit(tag: str, n: int, identity: dict) -> dict:
    return {"envelope": {"event_id": f"{tag}-{n}", "event_type": "web.page_viewed", "channel": "web",
                         "content": "inquiry", "initiated_by": "customer", "occurred_at": f"2026-03-01T09:0{n}:00Z",
                         "identity": identity, "correlation_id": tag},
            "url": f"https://shop.example/p/{n}"}


def naming(path, terms: list[str]) -> dict[str, int]:
    """Cells per table that hold a term (case-insensitive, as a substring)."""
    out = {}
    for table, cells in text_cells(path).items():
        n = sum(1 for cell in cells if any(t.lower() in cell.lower() for t in terms))
        if n:
            out[table] = n
    return out


def publish_erased(settings, erasure_id: str, customer_ids: list[str], subjects: list[str] = ()) -> None:
    """As serving does: ``SubjectErased`` first, then the keys of the person's subjects deleted."""
    schema = load_derived()["subject_erased"]
    body = {f["name"]: [] for f in schema.schema["fields"]}   # a field serving adds beyond these: empty
    now = datetime.now(timezone.utc)
    ring = TopicKeyRing(settings.for_service("serving"))
    refs = sorted({ring.ref(s) for s in subjects} | {ring.ref(f"{k}:{c}") for c in customer_ids
                                                     for k in ("customer", "customer_id")})
    body.update(erasure_id=erasure_id, customer_ids=customer_ids, requested_at=now, erased_at=now, kids_deleted=0,
                refs=refs)
    serving = settings.for_service("serving")   # the ledger's writer
    codec = AvroCodec(serving.registry_url, auto_register=False)
    output = TopicOutput(serving, client_id=f"test-{erasure_id}")
    output.send(ERASURES_TOPIC, erasure_id, codec.encode(schema, body))
    output.flush()
    ring.erase(refs)


def test_identity_forgets_an_erased_customer_and_a_later_event_does_not_bring_it_back(stack):
    word = uuid.uuid4().hex[:10]
    tag, customer, email = f"ie-{word}", f"CU-IE-{word}", f"ida.{word}@example.com"
    kept, kept_email = f"CU-KEPT-{word}", f"kai.{word}@example.com"
    store = stack.data_dir / "identity" / "identity.sqlite"
    with Publisher(stack, source="web") as publisher:
        publisher.publish_batch([visit(tag, 0, {"customer_id": customer, "email": email, "cookie_id": f"ck-{word}"}),
                                 visit(tag, 1, {"customer_id": kept, "email": kept_email})])
    wait_pipeline(stack, timeout=180)
    person = [customer, email, f"ck-{word}"]
    wait_for(lambda: naming(store, person), timeout=60, what="identity to save the person")

    publish_erased(stack, f"er-{word}", [customer], [f"email:{email}", f"cookie_id:ck-{word}"])
    wait_for(lambda: not naming(store, person[1:]) and naming(store, [customer]) == {"forgotten": 1},
             timeout=60, what="identity to forget the person")
    assert naming(store, [kept, kept_email]).get("nodes") == 2, "the other customer is untouched"

    with Publisher(stack, source="web") as publisher:
        publisher.publish_batch([visit(tag, 2, {"customer_id": customer, "cookie_id": f"ck-new-{word}"})])
    wait_pipeline(stack, timeout=180)
    wait_for(lambda: naming(store, [f"ck-new-{word}"]).get("nodes"), timeout=60, what="the later event saved")
    assert naming(store, person) == {"forgotten": 1}
    assert routed_to(stack, f"{tag}-2") == ["anon"], "the forgotten customer id counted as absent: the cookie alone"

    sup = local_stack.supervisor(stack)   # a restart: the suppression list is loaded, the ledger read again
    os.kill(sup.running_pid("identity"), signal.SIGTERM)
    wait_for(lambda: not sup.is_running("identity"), timeout=60, what="identity to stop")
    local_stack.up(stack, services=["identity"])
    with Publisher(stack, source="web") as publisher:
        publisher.publish_batch([visit(tag, 3, {"customer_id": customer})])
    wait_pipeline(stack, timeout=180)
    assert naming(store, person) == {"forgotten": 1}
    assert naming(store, [f"er-{word}"]) == {"forgotten": 1}   # applied once, by its id
    assert routed_to(stack, f"{tag}-3") == [], "only the forgotten customer id: in no profile"


def routed_to(settings, event_id: str) -> list[str]:
    """The customers identity routed an event to on customer-events (``anon`` for an anonymous one)."""
    out = []
    for m in records_of(settings, CUSTOMER_EVENTS_TOPIC, event_id):
        headers = dict(m.headers() or [])
        if headers.get(KIND) == b"event":
            cid = headers[CUSTOMER].decode()
            out.append("anon" if cid.startswith("anon-") else cid)
    return out
