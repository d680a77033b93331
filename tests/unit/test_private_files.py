"""Everything under TOUCHSTREAM_HOME is owner-only: folders 0700, files 0600.

What they protect: the DuckDB file, the identity checkpoint and Kafka's logs hold personal
data, the key store and the secret files hold credentials; at 0644 every local user could
read them. The files Touchstream writes itself must be owner-only whatever the umask of the
process (a test's, a developer's shell's 022); what Kafka, DuckDB and the log files create is
owner-only because ``touchstream up`` starts every child under umask 077; and an older
install is repaired by the next ``up``.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import free_ports
from touchstream.config import Settings
from touchstream.identity.config_file import load_identity_config
from touchstream.private_files import restrict_tree, secret_file, write_private
from touchstream.processors.identity_store import Saved
from touchstream.processors.identity_store_sqlite import open_identity_store
from touchstream.projections.duckdb_store import DuckDBStore
from touchstream.projections.identity_journal import Facts
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.serving.access import ensure_operator_key, pii_salt
from touchstream.stack import broker_runner, local_stack
from touchstream.stack.readiness import wait_for_file
from touchstream.stack.supervisor import ServiceSpec


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_to_others(root: Path) -> list[str]:
    """Every path below ``root`` (itself included) that group or others may use."""
    paths = [root, *root.rglob("*")]
    return sorted(f"{p.relative_to(root)} {mode(p):o}" for p in paths if not p.is_symlink() and mode(p) & 0o077)


@pytest.fixture
def loose_umask():
    """A developer's usual umask: files 0644 and folders 0755 unless the code says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_what_touchstream_writes_is_owner_only_whatever_the_umask(tmp_path: Path, loose_umask):
    settings = Settings(home=tmp_path / "home")
    store = DuckDBStore(settings.duckdb_path)
    store.close()
    identity = open_identity_store(settings.data_dir / "identity")   # left open: its -wal and -shm files exist
    facts = Facts(["e-1"], [["email", "a@b.nl", 1, "observed", None]])
    identity.save(Saved(identity.load().epoch, 1, {("t", 0): 5}, facts))
    ApiKeyStore(settings.api_keys_path).create("web-shop", ["web"])
    ensure_operator_key(settings)
    pii_salt(settings)
    load_identity_config(settings.identity_config_path)
    broker_runner.write_server_properties(settings)
    broker_runner.cluster_id(settings)

    home = settings.home
    for folder in (home, settings.data_dir, identity.folder, settings.kafka_data_dir, settings.logs_dir):
        assert mode(folder) == 0o700, folder
    for name in ("data/touchstream.duckdb", "data/identity/identity.sqlite", "data/identity/identity.sqlite-wal",
                 "data/identity/identity.sqlite-shm", "api_keys.json", "operator.key", "pii.salt", "anon_id.key"):
        assert mode(home / name) == 0o600, name
    assert open_to_others(home) == []
    identity.close()


def test_private_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path, loose_umask):
    target = tmp_path / "deep" / "er" / "state.json"
    write_private(target, "one")
    write_private(target, "two")
    assert target.read_text() == "two" and mode(target) == 0o600
    assert mode(tmp_path / "deep") == mode(tmp_path / "deep" / "er") == 0o700
    made = []
    threads = [threading.Thread(target=lambda: made.append(secret_file(tmp_path / "s.key", lambda: os.urandom(8).hex())))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 1 and mode(tmp_path / "s.key") == 0o600   # of racing writers the first one wins
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "s.key"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def _old_install(settings: Settings, outside: Path) -> None:
    """A home as an install before this rule left it: 0755 folders, 0644 files, a link out of the home."""
    for rel, text in (("data/touchstream.duckdb", "db"), ("kafka/data/touchstream.raw.web-0/0.log", "events"),
                      ("logs/serving.log", "log"), ("data/identity/checkpoint.json", "{}")):
        path = settings.home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    for folder in (settings.home, *[p for p in settings.home.rglob("*") if p.is_dir()]):
        folder.chmod(0o755)
    outside.write_text("not ours")
    outside.chmod(0o644)
    (settings.home / "link").symlink_to(outside)


def test_up_repairs_an_old_install_and_starts_children_under_umask_077(tmp_path: Path, loose_umask, monkeypatch):
    settings = Settings(home=tmp_path / "home", collector_port=free_ports(1)[0])
    outside = tmp_path / "outside.txt"
    _old_install(settings, outside)
    assert len(open_to_others(settings.home)) > 5

    seen = settings.home / "child"

    def spec(settings_, name):   # the collector replaced by a shell that reports what its files get
        log = local_stack.supervisor(settings_).log_file(name)
        script = f'umask > "{seen}.umask"; echo made > "{seen}.file"; mkdir "{seen}.dir"; exec sleep 60'
        return ServiceSpec(name, ["sh", "-c", script], cwd=settings_.home, log_file=log,
                           ready=lambda alive: wait_for_file(seen.with_suffix(".dir"), 10, log, alive, name))

    monkeypatch.setattr(local_stack, "python_spec", spec)
    try:
        local_stack.up(settings, ["collector"])
    finally:
        local_stack.down(settings, ["collector"])
    assert os.umask(0o022) == 0o022                      # the caller's umask is back after up
    assert seen.with_suffix(".umask").read_text().strip() == "0077"
    assert mode(seen.with_suffix(".file")) == 0o600 and mode(seen.with_suffix(".dir")) == 0o700
    assert open_to_others(settings.home) == []            # old files, the new log file, the pid files
    assert mode(outside) == 0o644                         # a link is not followed out of the home


def test_restrict_tree_counts_what_it_changed(tmp_path: Path):
    (tmp_path / "a").mkdir(mode=0o755)
    (tmp_path / "a" / "f").write_text("x")
    (tmp_path / "a" / "f").chmod(0o640)
    (tmp_path / "a" / "g").write_text("y")
    (tmp_path / "a" / "g").chmod(0o600)
    tmp_path.chmod(0o755)
    assert restrict_tree(tmp_path) == 3 and restrict_tree(tmp_path) == 0
    assert restrict_tree(tmp_path / "missing") == 0 and sys.platform.startswith("linux")
