"""``touchstream up --workers 2`` on a stack of its own: the demo's customer-360 rows, folded by two
worker processes and read by serving's query tier, are a replay's, by hash; ``status`` and ``down``
know the workers.

A stack of its own (broker included, on free ports and a fresh home): the session's stack runs
serving's own fold on the same topic names, so workers beside it would fold its events too.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import OVERRIDE_VARS, PORT_VARS, free_ports
from tests.integration.pipeline_helpers import sql
from tests.pipeline_harness import expected_fingerprints
from touchstream.cli import main as cli_main
from touchstream.config import Settings
from touchstream.identity.config_file import load_identity_config
from touchstream.stack import local_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def own_stack(tmp_path, monkeypatch):
    for name in OVERRIDE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOUCHSTREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TOUCHSTREAM_HOST", "127.0.0.1")
    for name, port in zip(PORT_VARS, free_ports(len(PORT_VARS))):
        monkeypatch.setenv(name, str(port))
    settings = Settings.from_env()
    try:
        yield settings
    finally:
        local_stack.down(settings)


def digest(rows: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(rows.items())).encode()).hexdigest()


def test_two_fold_workers_give_the_rows_of_a_replay(own_stack, tmp_path, capsys):
    assert cli_main(["up", "--workers", "2"]) == 0
    assert cli_main(["demo", "--customers", "60", "--days", "7"]) == 0   # publishes, waits for every projection
    assert cli_main(["demo", "--customers", "60", "--days", "7", "--jsonl", str(tmp_path / "demo.jsonl")]) == 0
    capsys.readouterr()
    assert cli_main(["status"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "running" in lines["fold-1"] and "running" in lines["fold-2"]
    events = [json.loads(line) for line in (tmp_path / "demo.jsonl").read_text().splitlines()]
    expected = expected_fingerprints(events, load_identity_config(own_stack.identity_config_path))
    live = dict(sql(own_stack, "SELECT customer_id, fingerprint FROM customer_360"))
    assert len(live) == len(expected) and digest(live) == digest(expected)
    # campaign mails after a withdrawal told to the service line (touchstream/demo/consent_register.py)
    assert sql(own_stack, "SELECT count(*) FROM contact_findings WHERE kind = 'contact_without_consent'")[0][0] > 0
    assert cli_main(["down"]) == 0
    assert not local_stack.known_workers(own_stack), "down left a fold worker's pid file"
