"""API keys under contention and revocation.

What they protect: ten ``touchstream keys create`` at once (threads of one process, or ten
processes) must each leave a key that works: the secret printed is the only copy, so a key
lost by a racing writer is a credential handed out that never authenticates. A revoked key
must be refused (401) by both services that read the store, and the CLI says what it did.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import stat
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from tests.event_builders import plain_event
from tests.local_codec import LocalCodec
from touchstream.cli import main
from touchstream.client import OPERATOR_KEY_FILE
from touchstream.config import Settings
from touchstream.privacy.keyring import MemoryKeyRing
from touchstream.publishing.api_keys import ApiKeyStore, UnknownKeyError
from touchstream.publishing import publisher as publisher_module
from touchstream.publishing.collector import build_collector
from touchstream.publishing.publisher import Publisher
from touchstream.serving.access import Caller, ensure_operator_key, require

WRITERS = 10
ROUNDS = 3   # keys per child process: more overlapping writes than one each


def _cli(home: Path, *argv: str) -> tuple[int, str, str]:
    """``touchstream ARGV`` in this process against ``home``: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setenv("TOUCHSTREAM_HOME", str(home))
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _create_in_child(home: str, n: int, start, results) -> None:
    """``touchstream keys create`` ROUNDS times in a child process, started together with the others."""
    start.wait()
    for r in range(ROUNDS):
        try:
            code, out, err = _cli(Path(home), "keys", "create", "--system", f"shop-{n}-{r}", "--channels", "web")
            secret = [line for line in out.splitlines() if line.startswith("ts_")]   # the key's own line
            results.put((code, secret[0] if secret else err))
        except Exception as exc:   # noqa: BLE001 - reported to the parent instead of leaving it waiting
            results.put((-1, repr(exc)))


def test_ten_threads_creating_keys_lose_none(tmp_path: Path):
    store, secrets, start = ApiKeyStore(tmp_path / "api_keys.json"), [], threading.Barrier(WRITERS)

    def create(n: int) -> None:
        start.wait()
        secrets.append(store.create(f"shop-{n}", ["web"])[0])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(secrets) == WRITERS and all(store.authenticate(s) for s in secrets)
    keys = store.all()
    assert len(keys) == WRITERS and len({k.key_id for k in keys}) == WRITERS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api_keys.json", "api_keys.json.lock"]   # no temp left
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_ten_cli_processes_creating_keys_each_print_a_secret_that_works(tmp_path: Path):
    # forkserver: children forked from a clean server that imported the CLI once (no threads of
    # pytest's copied in, and they reach the barrier within a second instead of ten).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["touchstream.cli", "touchstream.cli.keys", __name__])
    start, results = ctx.Barrier(WRITERS), ctx.Queue()
    children = [ctx.Process(target=_create_in_child, args=(str(tmp_path), n, start, results)) for n in range(WRITERS)]
    for child in children:
        child.start()
    printed = [results.get(timeout=60) for _ in range(WRITERS * ROUNDS)]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert [p for p in printed if p[0] != 0] == []
    store = ApiKeyStore(Settings(home=tmp_path).api_keys_path)
    owners = sorted(getattr(store.authenticate(secret), "system", None) or "LOST" for _, secret in printed)
    assert owners == sorted(f"shop-{n}-{r}" for n in range(WRITERS) for r in range(ROUNDS))


class _NoKafka:
    """No broker here: nothing to serve when polled, nothing to flush."""

    def poll(self, timeout: float) -> int:
        time.sleep(timeout)
        return 0

    def flush(self, timeout: float | None = None) -> int:
        return 0


def _collector(settings: Settings, keys: ApiKeyStore, monkeypatch) -> TestClient:
    """The real collector app; its publisher validates for real and delivers nowhere (no Kafka here)."""
    monkeypatch.setattr(publisher_module, "Producer", lambda config: _NoKafka())
    pub = Publisher(settings, source="collector", codec=LocalCodec(), keys=MemoryKeyRing())
    monkeypatch.setattr(pub, "send_reporting", lambda valid, on_result: [on_result(v.event_id, None) for v in valid])
    return TestClient(build_collector(pub, keys))


def _query(keys: ApiKeyStore) -> TestClient:
    """The query service's gate (``require``), as every endpoint of it uses it."""
    app = FastAPI()

    @app.get("/read")
    def read(caller: Caller = Depends(require("analyst", keys))):
        return {"system": caller.system}

    return TestClient(app)


def test_a_revoked_key_gets_401_from_the_collector_and_the_query_service(tmp_path: Path, monkeypatch):
    settings = Settings(home=tmp_path)
    keys = ApiKeyStore(settings.api_keys_path)
    web, web_key = keys.create("web-shop", ["web"])
    analyst, analyst_key = keys.create("notebook", [], ["analyst"])
    kept, _ = keys.create("other", [], ["analyst"])
    event = plain_event("web.page_viewed", datetime.now(timezone.utc) - timedelta(hours=1), {"cookie_id": "c-1"},
                        url="https://shop.example/")
    collector, query = _collector(settings, keys, monkeypatch), _query(keys)
    assert collector.post("/events", json=event, headers={"X-API-Key": web}).status_code == 202
    assert query.get("/read", headers={"Authorization": f"Bearer {analyst}"}).status_code == 200

    for key in (web_key, analyst_key):
        code, out, _err = _cli(tmp_path, "keys", "revoke", key.key_id)
        assert code == 0 and f"revoked key {key.key_id} of {key.system}" in out
    assert collector.post("/events", json=event, headers={"X-API-Key": web}).status_code == 401
    assert query.get("/read", headers={"Authorization": f"Bearer {analyst}"}).status_code == 401
    assert query.get("/read", headers={"X-API-Key": kept}).status_code == 200   # the others still work
    code, out, _err = _cli(tmp_path, "keys", "list")
    assert code == 0 and web_key.key_id not in out and "other" in out
    collector.app.state.delivery.close()


def test_revoking_an_unknown_key_fails_with_a_clear_message(tmp_path: Path):
    keys = ApiKeyStore(Settings(home=tmp_path).api_keys_path)
    with pytest.raises(UnknownKeyError):
        keys.revoke("nope")
    _secret, key = keys.create("web-shop", ["web"])
    for attempt in ("deadbeef", key.key_id):
        if attempt == key.key_id:
            assert _cli(tmp_path, "keys", "revoke", attempt)[0] == 0
        code, out, err = _cli(tmp_path, "keys", "revoke", attempt)
        assert code != 0 and out == ""
        assert f"no key with id {attempt!r}" in err and "keys list" in err


def test_revoking_the_operator_key_removes_the_file_the_cli_would_send(tmp_path: Path):
    settings = Settings(home=tmp_path)
    secret = ensure_operator_key(settings)
    key = ApiKeyStore(settings.api_keys_path).authenticate(secret)
    code, out, _err = _cli(tmp_path, "keys", "revoke", key.key_id)
    assert code == 0 and "operator key" in out and not (tmp_path / OPERATOR_KEY_FILE).exists()
    assert ApiKeyStore(settings.api_keys_path).authenticate(secret) is None
    assert ensure_operator_key(settings) != secret   # serving's next start makes a new one


def test_a_reader_store_sees_every_key_written_by_another_from_its_next_call(tmp_path: Path):
    """The collector's store keeps the parsed file between requests; a key created or revoked through
    another store (the CLI, another process) must count from the reader's very next call."""
    path = tmp_path / "api_keys.json"
    reader, writer = ApiKeyStore(path), ApiKeyStore(path)
    assert reader.authenticate("ts_nothing") is None
    first, key = writer.create("shop", ["web"])
    assert reader.authenticate(first) == key
    second, other = writer.create("pbx", ["phone"])
    assert reader.authenticate(second) == other and reader.authenticate(first) == key
    writer.revoke(key.key_id)
    assert reader.authenticate(first) is None and reader.authenticate(second) == other
    reader.all().clear()   # a caller's copy: the store's own list is untouched
    assert reader.authenticate(second) == other
