"""The erasure audit's recogniser and its database scanners (issue 17).

The recogniser knows an erased person only by pseudonyms (``ring.ref(subject(kind, value))``) and customer
ids, as the erasure keeps them: any spelling identity resolution would take for the identifier must be
found wherever it stands in a text, unrelated text never, and a sealed value only while its key exists.
"""

from __future__ import annotations

import json
import sqlite3
import string

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from touchstream.privacy.keyring import MasterKey, MemoryKeyRing
from touchstream.privacy.subjects import subject
from touchstream.processors.erasure_audit_scan import CHUNK, scan_duckdb, scan_files, scan_sqlite
from touchstream.projections.erasure import SKIPPED
from touchstream.projections.erasure_audit import MAX_TOKEN, Recogniser

RING = MemoryKeyRing(MasterKey(bytes(range(32))))
CUSTOMER = "CUST-7731"
EMAIL, PHONE, CARD = "Tess.Vos@Example.com", "06 4321 8765", "LC-0042-9917"
IDENTIFIERS = [("email", EMAIL), ("phone", PHONE), ("loyalty_card", CARD)]
SEPARATORS = st.sampled_from([" ", "\n", "\t", ", ", "; ", " (", ") ", '"', "<", ">", " [", "] ", "{", "|"])
FILLER = st.text(max_size=60)


def recogniser(identifiers=IDENTIFIERS, customer_ids=(CUSTOMER,), **kw) -> Recogniser:
    refs = {RING.ref(subject(kind, value)) for kind, value in identifiers}
    return Recogniser(refs, set(customer_ids), RING.ref, **kw)


# -- identifiers as they may be written --------------------------------------------------------------------
_LOCAL = st.from_regex(r"[a-z0-9](?:[a-z0-9._+%'-]{0,14}[a-z0-9])?", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z0-9]{1,10}(?:-[a-z0-9]{1,5})?\.(?:com|nl|co\.uk|org)", fullmatch=True)
_EMAILS = st.builds(lambda local, domain, upper: (f"{local}@{domain}", f"{local}@{domain}".upper() if upper
                                                  else f"{local}@{domain}"), _LOCAL, _DOMAIN, st.booleans())
_NATIONAL = st.from_regex(r"6[0-9]{8}", fullmatch=True)   # Dutch mobile numbers without the leading 0
_PHONE_STYLES = [lambda n: f"0{n}", lambda n: f"+31{n}", lambda n: f"+31 {n[0]} {n[1:]}",
                 lambda n: f"0{n[0]} {n[1:5]} {n[5:]}", lambda n: f"0{n[0]}-{n[1:]}", lambda n: f"0031 {n}",
                 lambda n: f"+31 (0){n[0]} {n[1:5]} {n[5:]}", lambda n: f"(0{n[0]}) {n[1:3]} {n[3:5]} {n[5:7]} {n[7:]}"]
_PHONES = st.builds(lambda n, style: (f"0{n}", style(n)), _NATIONAL, st.sampled_from(_PHONE_STYLES))
_CODES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,30}[A-Za-z0-9]", fullmatch=True)
_OTHERS = st.tuples(st.sampled_from(["cookie_id", "device_id", "loyalty_card", "account_number", "customer_id"]),
                    _CODES).map(lambda kv: (kv[0], kv[1], kv[1]))
# (kind, the value identity saw, the value as this text writes it)
WRITTEN = st.one_of(_EMAILS.map(lambda e: ("email", *e)), _PHONES.map(lambda p: ("phone", *p)), _OTHERS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(WRITTEN, FILLER, SEPARATORS, SEPARATORS, FILLER)
def test_an_identifier_anywhere_in_a_text_is_recognised(written, before, sep1, sep2, after):
    kind, value, spelling = written
    found = recogniser([(kind, value)], customer_ids=())
    assert found.mentions(f"{before}{sep1}{spelling}{sep2}{after}")
    assert found.mentions(spelling)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_unrelated_text_is_not_recognised(text):
    low = text.lower()
    assume(all(v.lower() not in low for _k, v in IDENTIFIERS) and CUSTOMER.lower() not in low)
    assume("43218765" not in "".join(ch for ch in text if ch.isdigit()))
    assert not recogniser().mentions(text)


@settings(max_examples=200)
@given(WRITTEN, st.binary(max_size=40), st.binary(max_size=40))
def test_bytes_are_searched_as_utf8_with_errors_dropped(written, before, after):
    kind, value, spelling = written
    found = recogniser([(kind, value)], customer_ids=())
    assert found.in_value(before + b" " + spelling.encode() + b"\n" + after)
    assert not found.in_value(before + b" " + after)


def test_customer_ids_and_terms_are_substrings_in_any_case():
    found = recogniser(terms=["Parcel-Secret"])
    assert found.mentions(f"case of x{CUSTOMER.lower()}y")
    assert found.mentions("my PARCEL-SECRET word")
    assert not found.mentions("CUST-773 and parcel secret")
    assert not found.without_customer_ids().mentions(CUSTOMER)
    assert found.without_customer_ids().mentions(f"mail {EMAIL}")


def test_every_candidate_in_a_long_text_is_tried():
    text = "lorem ipsum " * (MAX_TOKEN // 6) + f"contact:{EMAIL.upper()}; card={CARD}."
    assert len(text) > MAX_TOKEN
    assert recogniser([("email", EMAIL)]).mentions(text)
    assert recogniser([("loyalty_card", CARD)]).mentions(text)
    assert recogniser([("phone", PHONE)]).mentions("call +31 (0)6 4321 8765 at 10:00 or 1234 5678")
    assert not recogniser([("phone", PHONE)]).mentions("call 06 4321 8766")


def test_values_are_walked_keys_included():
    found = recogniser()
    assert found.in_value({"profile": [{"identifiers": ({"kind": "email", "value": EMAIL.lower()},)}]})
    assert found.in_value({EMAIL: 1})
    assert found.in_value([None, 3.5, {"tel": 643218765}])   # an integer is read as its digits
    assert not found.in_value([None, 3.5, {"tel": 643218766}])
    assert found.in_value({"n": [b"\xff" + CUSTOMER.encode()]})
    assert not found.in_value({"kind": "email", "value": "someone@else.org", "n": 7, "ok": True})


def test_a_sealed_value_is_readable_while_its_key_exists():
    ring = MemoryKeyRing()
    ref = ring.ref(subject("email", EMAIL))
    token = ring.seal(ref, EMAIL)
    ring.commit()
    found = Recogniser({ref}, set(), ring.ref, opener=ring.unseal)
    assert found.mentions(f"anchor {token} end")
    assert found.in_value(b"\x02" + f"x{token}xa1b2".encode() + b"\x00")   # raw Avro: a length byte runs on
    assert not found.with_opener(None).mentions(token)
    assert not found.mentions(token[:-8] + "AAAAAAAA")   # tampered: unreadable, no error
    ring.erase([ref])
    assert not found.mentions(token)
    assert found.mentions(f"{token} {EMAIL}")   # what follows a dead token is still read


def test_the_kid_of_a_sealed_value_is_not_a_mention():
    ring = MemoryKeyRing()
    ref = ring.ref(subject("email", EMAIL))
    token = ring.seal(ref, "unrelated text")
    ring.commit()
    kid = ring.kids(ref)[0]
    found = Recogniser({ref, ring.ref(subject("cookie_id", kid))}, set(), ring.ref, opener=ring.unseal)
    assert not found.mentions(token) and not found.with_opener(None).mentions(token)
    ring.erase([ref])
    assert not found.mentions(token)
    assert found.mentions(f"cookie {kid}")   # the same string in clear is a cookie the test erased


def test_the_data_of_a_dead_sealed_value_is_not_read_as_text():
    """Random base64 may spell a short customer id by chance; once the key is gone none of it is read."""
    token = f"tsenc1:{'0' * 20}.abcdef:" + "Qx9" * 4 + "cUsT42" + "Zk/+" * 8
    found = Recogniser(set(), {"cust42"}, RING.ref, opener=lambda _token: None)
    assert not found.mentions(f"anchor {token}") and found.mentions(f"anchor {token} CUST42")


# -- the database scanners ---------------------------------------------------------------------------------
def test_sqlite_every_table_read_only_with_allowed_tables(tmp_path):
    path = tmp_path / "identity.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE nodes (kind TEXT, value TEXT, owner TEXT, seq INTEGER);
        CREATE TABLE blobs (data BLOB);
        CREATE TABLE forgotten (customer_id TEXT);
    """)
    con.execute('CREATE TABLE "odd ""name""" (n TEXT)')
    con.execute('INSERT INTO "odd ""name""" VALUES (?)', [f"card {CARD}"])
    con.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?)", [
        ("email", EMAIL.lower(), "c-1", 1), ("phone", "+31643218765", "c-2", 2), ("email", "a@b.org", CUSTOMER, 3),
        ("email", "x@y.org", "c-3", 4)])
    con.execute("INSERT INTO blobs VALUES (?)", [json.dumps({"n": [CARD]}).encode()])
    con.execute("INSERT INTO forgotten VALUES (?)", [CUSTOMER])
    con.commit()
    con.close()
    before = path.read_bytes()
    found = {"nodes": 3, "blobs": 1, 'odd "name"': 1}
    assert scan_sqlite(path, recogniser(), allowed_tables={"forgotten"}) == found
    assert scan_sqlite(path, recogniser()) == {**found, "forgotten": 1}
    assert path.read_bytes() == before
    with pytest.raises(sqlite3.OperationalError):
        scan_sqlite(tmp_path / "absent.sqlite", recogniser())
    assert not (tmp_path / "absent.sqlite").exists()


def test_duckdb_every_base_table_in_chunks_with_skipped_tables():
    con = duckdb.connect()
    con.execute("""
        CREATE TABLE interactions (event_id VARCHAR, email VARCHAR, payload JSON, n BIGINT);
        CREATE TABLE c360 (anchor VARCHAR, value BLOB, ids STRUCT(kind VARCHAR, value VARCHAR)[],
                           tags MAP(VARCHAR, VARCHAR));
        CREATE TABLE erasures (erasure_id VARCHAR, customer_id VARCHAR);
        CREATE TABLE counts (n BIGINT);
        CREATE VIEW everything AS SELECT * FROM interactions;
    """)
    con.execute("INSERT INTO interactions SELECT 'e' || i, CASE WHEN i % 1000 = 7 THEN $email ELSE 'p' || i || '@x.org' "
                "END, json_object('who', CASE WHEN i = 3 THEN $id ELSE 'x' END), i FROM range($n) r(i)",
                {"email": EMAIL, "id": CUSTOMER, "n": CHUNK + 1500})
    con.execute("INSERT INTO c360 VALUES ('customer_id:x', ?, [{'kind': 'phone', 'value': '+31643218765'}], "
                "MAP {'a': 'b'}), ('k', NULL, [], MAP {'card': ?}), ('k', 'nothing'::BLOB, NULL, NULL)",
                [b"\x00\x01", CARD])
    con.execute("INSERT INTO erasures VALUES ('er-1', ?), (?, 'someone')", [CUSTOMER, EMAIL])
    con.execute("INSERT INTO counts VALUES (7731)")
    assert "erasures" in SKIPPED
    found = scan_duckdb(con, recogniser(), SKIPPED)
    assert found == {"interactions": 5, "c360": 2, "erasures": 1}   # e7, e1007, e2007, e3007 and e3
    assert scan_duckdb(con, recogniser(), {}) == {**found, "erasures": 2}


def test_files_count_the_lines_that_mention(tmp_path):
    checkpoint = tmp_path / "identity.json"
    checkpoint.write_text(json.dumps({"nodes": [["email", EMAIL.lower()]]}) + "\nnothing\n" + f"{CUSTOMER}\n")
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps({"nodes": [["email", "a@b.org"]]}))
    assert scan_files([checkpoint, clean, tmp_path / "absent.json"], recogniser()) == {str(checkpoint): 2}


@pytest.mark.parametrize("secure_delete", ["OFF", "FAST"])
def test_files_find_what_a_database_freed_but_did_not_zero(tmp_path, secure_delete):
    """A deleted row's text stays in the file's free pages unless SQLite zeroes them (``secure_delete``):
    the rows are gone, the copy is not; reading the file itself finds it."""
    path = tmp_path / "checkpoint.sqlite"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA secure_delete = {secure_delete}")
    con.execute("CREATE TABLE nodes (value TEXT)")
    con.executemany("INSERT INTO nodes VALUES (?)", [(EMAIL.lower(),), *((f"p{i}@x.org",) for i in range(500))])
    con.commit()
    con.execute("DELETE FROM nodes WHERE value = ?", [EMAIL.lower()])
    con.commit()
    con.close()
    assert scan_sqlite(path, recogniser()) == {}
    assert bool(scan_files([path], recogniser())) == (secure_delete == "OFF")
