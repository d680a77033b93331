"""Who the demo customers are: personas, their channel habits, and their identifiers.

Why personas: the customer-360 infers a *preferred media package* from behaviour
(domain.md section 3), so the demo needs customers whose channel mix differs in a
recognisable way (a digital native on web / e-mail / chat, a phone person, a store
regular, a business buyer with meetings, documents and postal mail). Rates are per
day so volume scales with ``days``. Pure data, no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# -- the company's side: catalogue, stores, staff ---------------------------------
# (sku, category, unit price in cents)
PRODUCTS = (
    ("SKU-COF-01", "coffee machines", 34900), ("SKU-COF-02", "coffee machines", 59900),
    ("SKU-GRN-01", "grinders", 12900), ("SKU-BEAN-1", "coffee beans", 1495),
    ("SKU-BEAN-2", "coffee beans", 1895), ("SKU-CUP-01", "accessories", 2450),
    ("SKU-MLK-01", "milk frothers", 7990), ("SKU-SRV-01", "service plans", 9900),
    ("SKU-OFC-01", "office machines", 189000), ("SKU-OFC-02", "office machines", 249000),
)
CONSUMER_SKUS = PRODUCTS[:8]
BUSINESS_SKUS = (PRODUCTS[8], PRODUCTS[9], PRODUCTS[3], PRODUCTS[7])
STORES = ("ST-AMS-01", "ST-UTR-02", "ST-RTM-03", "ST-EIN-04")
AGENTS = tuple(f"AG-{n:03d}" for n in range(1, 25))
STAFF = tuple(f"SF-{n:03d}" for n in range(1, 13))
ACCOUNT_MANAGERS = ("AM-001", "AM-002", "AM-003")
COMPANY_NUMBER = "+31201234567"
SHORT_CODE = "4411"
FIRST = ("anna", "bram", "chloe", "daan", "eva", "finn", "grace", "hugo", "ines", "jonas", "kim",
         "lars", "mila", "noah", "olga", "piet", "quinn", "ruth", "sam", "tess", "umar", "vera")
LAST = ("bakker", "janssen", "devries", "smit", "mulder", "bos", "visser", "peters", "hendriks",
        "dekker", "brouwer", "dijkstra", "kaya", "nguyen", "garcia", "okafor", "novak", "rossi")
DOMAINS = ("mail.example", "post.example", "inbox.example", "webmail.example")
COMPANIES = ("Acme Offices", "Brightdesk BV", "Cobalt Consulting", "Delta Dental", "Evergreen Law",
             "Fjord Design", "Gable Architects", "Harbor Logistics")


@dataclass(frozen=True)
class Persona:
    """Channel habits of one kind of customer; probabilities are per day unless noted."""

    name: str
    weight: float
    new_share: float      # share who start anonymous and reveal identifiers over time
    web: float            # a web session
    chat: float
    call: float           # an inbound service call
    email_in: float       # an e-mail to support
    store: float
    order: float          # a remote order (web, phone or document)
    social: float
    complaint: float
    email_open: float     # per campaign mail
    email_click: float    # per opened mail
    sms: bool             # accepts SMS (reminders, promotions)
    postal: bool          # receives the postal catalogue
    order_channel: str
    pay_late: float       # per invoice
    pay_missing: float    # per invoice
    paths: tuple          # complaint lifecycles, with weights


PERSONAS = (
    Persona("digital_native", 0.40, 0.45, web=0.20, chat=0.03, call=0.004, email_in=0.02, store=0.01,
            order=0.035, social=0.015, complaint=0.006, email_open=0.45, email_click=0.35, sms=False,
            postal=False, order_channel="web", pay_late=0.02, pay_missing=0.01,
            paths=(("callback_kept", 3), ("callback_missed", 3), ("reopened", 3), ("social", 2),
                   ("escalated", 1), ("proactive", 1), ("chat_fcr", 2), ("no_response", 1))),
    Persona("phone_person", 0.20, 0.30, web=0.03, chat=0.0, call=0.04, email_in=0.003, store=0.01,
            order=0.02, social=0.0, complaint=0.007, email_open=0.15, email_click=0.15, sms=True,
            postal=True, order_channel="phone", pay_late=0.12, pay_missing=0.04,
            paths=(("phone_fcr", 5), ("callback_kept", 2), ("callback_missed", 2), ("escalated", 1),
                   ("proactive", 2), ("reopened", 1))),
    Persona("store_regular", 0.25, 0.35, web=0.06, chat=0.005, call=0.008, email_in=0.004, store=0.12,
            order=0.008, social=0.005, complaint=0.006, email_open=0.25, email_click=0.20, sms=True,
            postal=False, order_channel="web", pay_late=0.03, pay_missing=0.01,
            paths=(("store_fcr", 5), ("phone_fcr", 2), ("reopened", 1), ("proactive", 1),
                   ("callback_missed", 1), ("social", 1))),
    Persona("business_buyer", 0.15, 0.25, web=0.08, chat=0.0, call=0.03, email_in=0.03, store=0.0,
            order=0.0, social=0.0, complaint=0.007, email_open=0.30, email_click=0.25, sms=True,
            postal=True, order_channel="document", pay_late=0.30, pay_missing=0.10,
            paths=(("escalated", 4), ("callback_kept", 2), ("callback_missed", 1), ("meeting", 2),
                   ("reopened", 1), ("proactive", 1))),
)
PERSONA_WEIGHTS = tuple(p.weight for p in PERSONAS)


class Customer:
    """One customer: stable identifiers, what the company knows so far, and a little history.

    ``known`` flags say which identifiers channel systems have learned: events only
    carry identifiers their system could know at that moment, so identity fragments
    link up over time instead of arriving complete.
    """

    __slots__ = ("idx", "persona", "cid", "first", "last", "email", "phone", "cookie", "device",
                 "loyalty", "account", "company", "handle", "has_account", "email_known",
                 "phone_known", "card_known", "email_ok", "consent_email", "consent_sms",
                 "ladder", "asked", "orders", "receipts", "rating", "unlinked")

    def __init__(self, idx: int, persona: Persona, rng: random.Random, tag: str, base: int, new: bool):
        self.idx, self.persona = idx, persona
        self.first, self.last = rng.choice(FIRST), rng.choice(LAST)
        self.cid = f"CU-{tag[:4]}-{idx:06d}"
        self.email = f"{self.first}.{self.last}{idx}.{tag[:4]}@{rng.choice(DOMAINS)}"
        self.phone = f"+316{(base + idx * 7919) % 10**8:08d}"
        self.cookie = f"ck-{rng.getrandbits(64):016x}"
        self.device = f"dev-{rng.getrandbits(48):012x}" if rng.random() < 0.4 else None
        self.loyalty = f"LC{(base + idx * 104729) % 10**10:010d}" if persona.name != "business_buyer" else None
        b2b = persona.name == "business_buyer"
        self.account = f"ACC-{(base + idx * 7907) % 10**7:07d}" if b2b else None
        self.company = rng.choice(COMPANIES) if b2b else None
        self.handle = f"@{self.first}{self.last[:3]}{idx % 1000}"
        self.has_account = self.email_known = self.phone_known = self.card_known = not new
        if not new and self.loyalty and rng.random() < 0.4 and persona.name != "store_regular":
            self.card_known = False
        self.email_ok = True
        self.consent_email = not new and rng.random() < 0.8
        self.consent_sms = persona.sms and not new and rng.random() < 0.7
        self.ladder: list = []       # (day, step) still to come, for new customers
        self.asked: set = set()      # golden questions answered: never ask twice
        self.orders: list = []       # recent (order_id, sku, unit cents, qty, channel)
        self.receipts: list = []     # recent (receipt_id, store_id, sku, unit cents)
        self.rating = rng.randint(6, 10)  # the customer's mood: drives NPS and reviews
        self.unlinked = False

    # Identity hints as each kind of channel system would see them (fresh dicts: never shared).
    def web_ids(self, logged_in: bool) -> dict:
        ids = {"cookie_id": self.cookie}
        if logged_in and self.has_account:
            ids["customer_id"] = self.cid
        if logged_in and self.device is not None and self.persona.name == "digital_native":
            ids["device_id"] = self.device
        return ids

    def email_ids(self, with_cid: bool = False) -> dict:
        if with_cid and self.has_account:
            return {"email": self.email, "customer_id": self.cid}
        return {"email": self.email}

    def phone_ids(self, identified: bool) -> dict:
        if identified and self.has_account:
            return {"phone": self.phone, "customer_id": self.cid}
        return {"phone": self.phone}

    def crm_ids(self) -> dict:
        if self.account is not None:
            return {"customer_id": self.cid, "account_number": self.account}
        return {"customer_id": self.cid}

    def store_ids(self) -> dict:
        return {"loyalty_card": self.loyalty}

    def billing_ids(self) -> dict:
        return {"account_number": self.account} if self.account is not None else {"customer_id": self.cid}

    @property
    def b2b(self) -> bool:
        return self.account is not None
