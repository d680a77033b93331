"""Does this text still name an erased person? The erasure audit's recogniser (issue 17).

Why by pseudonym: after an erasure nothing keeps the person's identifier values (keeping them to search
for would be a copy of its own). What is kept is their customer ids and the ref of every erased subject
(``ring.ref(subject(kind, value))``, an HMAC under the master key). So every token of a text that could
be an identifier is named as identity resolution would name it (``subjects.subject``: e-mail lower case,
phone E.164) under every identifier kind, and its ref looked up: a hit means the value is still readable.
Customer ids are kept in clear and matched as substrings, case-insensitively, as ``projections.erasure``
matches its terms.

Why sealed values are opened first: a sealed value (``tsenc1:<kid>:<data>``) is readable exactly when its
key still exists; ``opener`` (the key ring's or codec's) opens it with the remaining keys, and a value
whose key is gone (``opener`` answers None) reads as nothing: it is dropped, kid (which names the subject's
ref) and data alike. Without an opener no sealed value is readable.

Pure: no I/O. The scanners over Kafka, SQLite and DuckDB are ``processors.erasure_audit_scan``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Iterable

from touchstream.privacy.sealing import PREFIX
from touchstream.privacy.subjects import subject

KINDS = ("email", "phone", "cookie_id", "device_id", "loyalty_card", "account_number", "customer_id")
OTHER_KINDS = tuple(k for k in KINDS if k not in ("email", "phone"))   # any string may be one of these
MAX_TOKEN = 256          # longer strings are text, not an identifier: only their tokens are tried
CACHE = 1 << 18          # tokens whose verdict is remembered (most recur: field names, event types)
SHORT_CACHE = 1 << 16    # short texts whose verdict is remembered (at most MAX_TOKEN characters each)
MAX_PHONE_GROUPS = 8     # digit groups one phone number may be written in ("+31 (0)6 12 34 56 78")
SEALED = re.compile(re.escape(PREFIX) + r"([A-Za-z0-9._-]+):([A-Za-z0-9+/]+={0,2})")
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().+/-]*\d")
DIGIT_GROUP = re.compile(r"\+?\d+")
# Only what the envelope accepts as a phone (events/envelope.py) reaches identity as one, and only what
# has an "@" inside as an e-mail address: other tokens are not tried as those kinds (phone parsing is slow).
PHONE_SHAPE = re.compile(r"\+?[0-9 ()./-]{5,32}")
WIDE = re.compile(r"[\s\"'`,;<>()\[\]{}|=&\\]+")   # keeps ':' '/' '.' '-' '_' '@' '+' inside a token
NARROW = re.compile(r"[^\w@.+-]+")                  # splits at every other punctuation as well
EDGES = ".,:;!?-_'\"/+"                              # stripped from a token's ends (end of a sentence)
Opener = Callable[[str], "str | None"]


class Recogniser:
    """Recognises mentions of one erased person (or several) in text and in decoded values."""

    def __init__(self, refs: set[str], customer_ids: set[str], ref: Callable[[str], str], terms: Iterable[str] = (),
                 *, opener: Opener | None = None, cache: int = CACHE, _known=None):
        """``refs``: the erased subjects' refs; ``ref``: the ring's ``ref``; ``terms``: plain values matched
        as substrings; ``opener``: opens a sealed value (None when its key is gone)."""
        self.refs, self.ref, self.opener = frozenset(refs), ref, opener
        self.customer_ids = frozenset(c.lower() for c in customer_ids if c)
        self.terms = frozenset(t.lower() for t in terms if t)
        self._known = _known or lru_cache(maxsize=cache)(self._lookup)
        self._short = lru_cache(maxsize=min(cache, SHORT_CACHE))(self._mentions)

    def without_customer_ids(self) -> "Recogniser":
        """The same search minus the customer ids: for what names them by design (the erasure ledger,
        identity's suppression table), where only the identifiers must be gone."""
        return self._copy(customer_ids=set(), opener=self.opener)

    def with_opener(self, opener: Opener | None) -> "Recogniser":
        """The same search, opening sealed values with ``opener`` (e.g. a codec's ``open_text``)."""
        return self._copy(customer_ids=self.customer_ids, opener=opener)

    def _copy(self, *, customer_ids, opener) -> "Recogniser":
        return Recogniser(self.refs, customer_ids, self.ref, self.terms, opener=opener, _known=self._known)

    def mentions(self, text: str) -> bool:
        """Whether ``text``, its sealed values opened where their keys remain, names the person. A short
        text's verdict is remembered: a decoded record's values repeat (field names, types, codes)."""
        if PREFIX in text:
            return self._mentions(self.readable(text))
        return self._short(text) if len(text) <= MAX_TOKEN else self._mentions(text)

    def _mentions(self, text: str) -> bool:
        low = text.lower()
        if any(c in low for c in self.customer_ids) or any(t in low for t in self.terms):
            return True
        return bool(self.refs) and any(self._known(c) for c in candidates(text))

    def in_value(self, value) -> bool:
        """Whether a decoded value (dicts, lists, tuples, strings, bytes, integers) names the person;
        bytes are read as UTF-8, undecodable bytes dropped."""
        if isinstance(value, str):
            return self.mentions(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.mentions(bytes(value).decode("utf-8", errors="ignore"))
        if isinstance(value, dict):
            return any(self.in_value(k) or self.in_value(v) for k, v in value.items())
        if isinstance(value, (list, tuple, set, frozenset)):
            return any(self.in_value(v) for v in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.mentions(str(value))
        return False

    def readable(self, text: str) -> str:
        """``text`` with every sealed value replaced by its plaintext, or by a space when it does not open.
        Why its data goes too: random base64 can hold a short customer id, in any case, by chance. In raw
        Avro bytes a dead value may take the start of the next string with it (it cannot be told where its
        data ends); the decoded record, searched as well, has that string whole."""
        if PREFIX not in text:
            return text
        return SEALED.sub(self._open_match, text)

    def _open_match(self, match: re.Match) -> str:
        kid, blob = match.group(1), match.group(2)
        for cut in _blob_cuts(blob) if self.opener is not None else ():
            try:
                plain = self.opener(f"{PREFIX}{kid}:{blob[:cut]}")
            except ValueError:   # SealError, DecodeError: malformed, or cut in the wrong place
                continue
            if plain is None or plain.startswith(PREFIX):
                break            # the key is gone (or the opener has no keys): nothing here is readable
            return f" {plain} {blob[cut:]}"
        return " "

    def _lookup(self, token: str) -> bool:
        """Whether ``token``, read as any kind of identifier it could be, is an erased subject."""
        return any(self.ref(subject(kind, token)) in self.refs for kind in _kinds(token))


def _kinds(token: str) -> tuple[str, ...]:
    """The identifier kinds ``token`` could be, as the envelope validates hints (``check_envelope``)."""
    kinds = OTHER_KINDS
    if "@" in token.strip()[1:-1]:
        kinds += ("email",)
    if PHONE_SHAPE.fullmatch(token.strip()):
        kinds += ("phone",)
    return kinds


def _blob_cuts(blob: str) -> list[int]:
    """Where a sealed value's data may end: all of it first; in raw Avro bytes the next field's length
    byte and text can run on in base64 characters, so then each shorter whole base64 quantum."""
    whole = len(blob)
    return [whole, *range(whole - (whole % 4 or 4), 39, -4)]


def candidates(text: str) -> set[str]:
    """The substrings of ``text`` that could be an identifier as written: the whole string, its tokens
    (split at whitespace, then at punctuation too), e-mail addresses and phone numbers in it."""
    found: set[str] = set()
    whole = text.strip()
    if len(whole) <= MAX_TOKEN:
        found.add(whole)
    for splitter in (WIDE, NARROW):
        for token in splitter.split(text):
            if 0 < len(token) <= MAX_TOKEN:
                found.update((token, token.strip(EDGES)))
    found.update(EMAIL.findall(text))
    found.update(phones(text))
    found.discard("")
    return found


def phones(text: str) -> set[str]:
    """Every way a run of digits and separators could be one phone number (7 to 17 digits): a number
    written in groups may follow other digits, so each window of consecutive groups is a candidate."""
    found: set[str] = set()
    for run in PHONE_RUN.finditer(text):
        groups = list(DIGIT_GROUP.finditer(run.group()))
        for i in range(len(groups)):
            for j in range(i, min(i + MAX_PHONE_GROUPS, len(groups))):
                piece = run.group()[groups[i].start():groups[j].end()]
                if 7 <= sum(ch.isdigit() for ch in piece) <= 17:
                    found.add(piece)
    return found
