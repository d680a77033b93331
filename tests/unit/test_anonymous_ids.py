"""Anonymous customer ids are keyed: deterministic for one installation, useless for confirming a guess.

What they protect: an analyst sees ``anon-...`` ids unmasked (they are the join key of the
360). When the id was ``anon-`` + sha1 of the identifier, anyone could hash a guessed e-mail
address and look for it: the README's "a guessed address cannot be looked up" was false.
Now the id is an HMAC keyed with the installation's secret (``anon_id.key``, 0600, made
once), so it is the same on every replay that loads that key and unguessable without it.
"""

from __future__ import annotations

import hashlib
import hmac
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from touchstream.demo.generator import DEFAULT_START
from touchstream.events.catalogue import Catalogue
from touchstream.identity.config_file import ANONYMOUS_ID_KEY_FILE, IdentityConfigError, load_identity_config
from touchstream.projections.identity_replay import anonymous_id
from touchstream.projections.identity_resolution import IdentityConfig, IdentityResolver, Identifier

KEY_A, KEY_B = "a1" * 32, "b2" * 32
EMAIL = "ann@example.com"


def _visit(minute: int, identity: dict, event_id: str) -> dict:
    event = {"envelope": {"event_id": event_id, "event_type": "web.page_viewed", "channel": "web",
                          "content": "specification", "initiated_by": "customer", "identity": identity,
                          "occurred_at": (DEFAULT_START + timedelta(minutes=minute)).isoformat()},
             "url": "https://shop.example/p"}
    return Catalogue().validate(event, now=DEFAULT_START + timedelta(days=1), default_source="test").record


EVENTS = [_visit(0, {"email": " Ann@Example.com "}, "v1"), _visit(1, {"email": EMAIL, "cookie_id": "ck-1"}, "v2"),
          _visit(2, {"cookie_id": "ck-2"}, "v3")]


def _anonymous(key: str, events=EVENTS) -> dict[str, str]:
    resolver = IdentityResolver(IdentityConfig(anonymous_id_key=key))
    for event in events:
        resolver.observe(event)
    return resolver.assignment()


def test_same_events_and_key_give_the_same_ids_another_key_others():
    first = _anonymous(KEY_A)
    assert first == _anonymous(KEY_A) == _anonymous(KEY_A, list(reversed(EVENTS)))   # a replay, any order
    assert all(cid.startswith("anon-") and len(cid) == 25 for cid in first.values())
    assert first[f"email:{EMAIL}"] == first["cookie_id:ck-1"] != first["cookie_id:ck-2"]
    other = _anonymous(KEY_B)
    assert set(first) == set(other) and not set(first.values()) & set(other.values())


def test_a_guess_cannot_be_confirmed_without_the_key():
    seen = _anonymous(KEY_A)[f"email:{EMAIL}"]
    node = Identifier("email", EMAIL)
    old_scheme = "anon-" + hashlib.sha1(str(node).encode()).hexdigest()[:20]
    guesses = {old_scheme, anonymous_id(node, b""), anonymous_id(node, bytes.fromhex(KEY_B)),
               "anon-" + hashlib.sha256(str(node).encode()).hexdigest()[:20]}
    assert seen not in guesses                                      # the unsalted id (and friends) are gone
    assert seen == anonymous_id(node, bytes.fromhex(KEY_A))          # only the key holder can recompute it
    assert seen == "anon-" + hmac.new(bytes.fromhex(KEY_A), b"email:" + EMAIL.encode(), "sha256").hexdigest()[:20]


def test_the_key_survives_a_checkpoint_round_trip_only_with_the_same_config():
    live = IdentityResolver(IdentityConfig(anonymous_id_key=KEY_A))
    for event in EVENTS:
        live.observe(event)
    state = live.to_dict()
    assert KEY_A not in repr(state)                                   # facts only: the key is not checkpointed
    assert IdentityResolver.from_dict(state, IdentityConfig(anonymous_id_key=KEY_A)).assignment() == live.assignment()
    assert IdentityResolver.from_dict(state, IdentityConfig(anonymous_id_key=KEY_B)).assignment() != live.assignment()


def test_the_install_key_is_made_once_0600_beside_the_guard_rails(tmp_path: Path):
    home = tmp_path / "home"
    rails = home / "identity.toml"
    first = load_identity_config(rails)
    key_file = home / ANONYMOUS_ID_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(home.stat().st_mode) == 0o700
    assert len(bytes.fromhex(first.anonymous_id_key)) == 32
    rails.write_text('default_region = "BE"\n')
    again = load_identity_config(rails)   # what a replay loads: the same key, the guard rails of the file
    assert again.anonymous_id_key == first.anonymous_id_key and again.default_region == "BE"
    assert first.anonymous_id_key not in repr(again)                 # never printed with the config
    assert load_identity_config(tmp_path / "other" / "identity.toml").anonymous_id_key != first.anonymous_id_key
    rails.write_text(f'anonymous_id_key = "{KEY_A}"\n')             # not a guard rail: the file cannot set it
    with pytest.raises(IdentityConfigError, match="unknown key"):
        load_identity_config(rails)
    rails.unlink()
    key_file.write_text("not hex\n")
    with pytest.raises(IdentityConfigError, match="not a hex key"):
        load_identity_config(rails)
