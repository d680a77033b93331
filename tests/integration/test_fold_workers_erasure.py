"""Erasure with fold workers (issue 17), on a stack of its own (``up --workers 2``): a customer whose 360 a
worker folded and published is erased through ``POST /erasures``; afterwards every worker has applied the
``SubjectErased`` (its ledger group committed past it), serving's tables hold nothing of the person, the
compacted 360 topic's last record for their customer id is a tombstone, and once the workers are stopped
no partition store holds a value of theirs (``find_subject`` over each store file)."""

from __future__ import annotations

import uuid

import duckdb
import pytest

from tests.integration.pipeline_helpers import records_matching, sql, wait_for
from tests.integration.test_erasure_on_broker import erase, readable_rows
from tests.integration.test_fold_workers_stack import own_stack  # noqa: F401 - the stack fixture
from tests.integration.test_privacy_on_broker import complaint
from touchstream.cli import main as cli_main
from touchstream.fold.erasures import ledger_group
from touchstream.fold.worker import store_path
from touchstream.processors.customer_360_rows import PROFILE_HEADER
from touchstream.processors.erasure_store import find_subject
from touchstream.processors.replay import committed_offsets
from touchstream.publishing.publisher import Publisher
from touchstream.serving.catchup import wait_pipeline
from touchstream.topics import CUSTOMER_360_TOPIC, CUSTOMER_EVENTS_TOPIC, ERASURES_TOPIC, load_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
WORKERS = ("fold-1", "fold-2")


def the_360s(settings, customer: str) -> list:
    """Every record for ``customer`` on the 360 topic, in order (key, value, headers)."""
    found = []
    records_matching(settings, [CUSTOMER_360_TOPIC],
                     lambda r: r.key == customer.encode() and found.append((r.key, r.value, dict(r.headers))))
    return found


def ledger_end(settings) -> int:
    count = records_matching(settings, [ERASURES_TOPIC], lambda r: True)
    return count.get(ERASURES_TOPIC, 0)


def applied_by_every_worker(settings, end: int) -> bool:
    return all(committed_offsets(settings, ledger_group(w), [ERASURES_TOPIC]).get((ERASURES_TOPIC, 0), 0) >= end
               for w in WORKERS)


def test_an_erasure_reaches_the_fold_workers_stores_and_the_360_topic(own_stack):  # noqa: F811
    settings = own_stack
    assert cli_main(["up", "--workers", "2"]) == 0
    word, tag = uuid.uuid4().hex[:12], f"fe-{uuid.uuid4().hex[:10]}"
    email, other = f"nora.{word}@example.com", f"olaf.{uuid.uuid4().hex[:12]}@example.com"
    with Publisher(settings, source="crm") as publisher:
        publisher.publish_batch([complaint(tag, 0, email, word), complaint(tag, 1, email, word),
                                 complaint(tag, 2, other, "kept")])
    wait_pipeline(settings, timeout=180)
    customer = sql(settings, "SELECT customer_id FROM customer_identifiers WHERE value = ?", [email])[0][0]
    kept = sql(settings, "SELECT customer_id FROM customer_identifiers WHERE value = ?", [other])[0][0]
    wait_for(lambda: sql(settings, "SELECT count(*) FROM customer_360 WHERE customer_id = ?", [customer])[0][0],
             timeout=60, what="the worker's 360 in serving")
    published = the_360s(settings, customer)
    assert any(v is not None and PROFILE_HEADER in h for _k, v, h in published), "a worker folded and published them"

    status = erase(settings, f"email:{email}")
    assert status["customer_ids"] == [customer], status
    end = ledger_end(settings)
    wait_for(lambda: applied_by_every_worker(settings, end), timeout=120, what="the workers' ledger groups")
    wait_pipeline(settings, timeout=180)

    assert readable_rows(settings, [word, customer.lower()]) == {}, "serving's tables"
    last = the_360s(settings, customer)[-1]
    assert last[1] is None, "the last 360 record for the customer id is a tombstone"
    assert sql(settings, "SELECT count(*) FROM customer_360 WHERE customer_id = ?", [kept]) == [[1]]

    assert cli_main(["down"]) == 0   # the stores are the workers' while they run (one DuckDB process per file)
    partitions = {t.name: t.partitions for t in load_topics(settings.topic_config)}[CUSTOMER_EVENTS_TOPIC]
    stores = [p for n in range(partitions) if (p := store_path(settings.data_dir, n)).exists()]
    assert stores
    held = 0
    for path in stores:
        con = duckdb.connect(str(path), read_only=True)
        try:
            assert find_subject(con, customer, [("email", email), ("word", word)]) == {}, path
            held += con.execute("SELECT count(*) FROM erasures WHERE erasure_id = ?",
                                [status["erasure_id"]]).fetchone()[0]
        finally:
            con.close()
    assert held == len(stores), "every store recorded the erasure"
