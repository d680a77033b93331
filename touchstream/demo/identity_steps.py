"""How a new customer's identifiers surface one channel at a time, and get linked.

Why: identity resolution is only tested by realistic fragments. A new customer first
browses with nothing but a cookie; a sign-up form reveals an e-mail (claimed, then
verified by a confirmation click); a call reveals a phone number the agent ties to
the account; a loyalty card issued at the till is linked to the phone number the
customer gives. Each step emits identity.identifier_observed / identifiers_linked
with the trust the observing system can honestly claim. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo import research, touchpoints
from touchstream.demo.emitter import SECOND, Emitter
from touchstream.demo.personas import STAFF, STORES, Customer

POLICY = "privacy-2025-10"


def observed(em: Emitter, t: int, channel: str, source: str, ids: dict, kind: str, value: str,
              how: str, trust: str, initiated_by: str = "customer") -> None:
    em.emit(t, "identity.identifier_observed", channel, "identity", initiated_by, source, ids,
            {"identifier": {"kind": kind, "value": value}, "how": how, "trust": trust})


def linked(em: Emitter, t: int, channel: str, source: str, ids: dict, a: tuple, b: tuple,
            trust: str, reason: str, initiated_by: str = "customer") -> None:
    em.emit(t, "identity.identifiers_linked", channel, "identity", initiated_by, source, ids,
            {"identifier_a": {"kind": a[0], "value": a[1]}, "identifier_b": {"kind": b[0], "value": b[1]},
             "trust": trust, "reason": reason})


def consent(em: Emitter, c: Customer, t: int, channel: str, source: str, ids: dict, purpose: str,
            for_channel: str | None, given: bool = True) -> None:
    fields = {"purpose": purpose, "policy_version": POLICY}
    if for_channel:
        fields["for_channel"] = for_channel
    event = "feedback.consent_given" if given else "feedback.consent_withdrawn"
    em.emit(t, event, channel, "informing", "customer", source, ids, fields)


def sign_up(em: Emitter, c: Customer, t: int) -> int:
    """Web sign-up: cookie + claimed e-mail, then the confirmation click verifies it and opens an account."""
    rng = em.rng
    t = research.web_session(em, c, t, False, "specification", pages=2)
    newsletter = rng.random() < 0.75
    anon = {"cookie_id": c.cookie}
    em.emit(t, "web.form_submitted", "web", "inquiry", "customer", "web-shop",
            {"cookie_id": c.cookie, "email": c.email},
            {"form_id": "signup-v3", "form_kind": "signup", "page_url": research.SHOP + "/account/signup",
             "answers": {"email": c.email, "first_name": c.first.title(), "newsletter": "yes" if newsletter else "no"}})
    t += SECOND
    observed(em, t, "web", "web-shop", dict(anon), "email", c.email, "form", "claimed")
    linked(em, t, "web", "web-shop", dict(anon), ("cookie_id", c.cookie), ("email", c.email), "observed", "form")
    c.has_account = c.email_known = True
    click = None
    while click is None:  # the confirmation mail: the customer clicks sooner or later
        click = touchpoints.company_email(em, c, t + 5 * SECOND, "informing", "company", "Confirm your e-mail address",
                                          template="verify-email", open_rate=1.0, click_rate=1.0,
                                          url=research.SHOP + "/account/verify")
        c.email_ok = True
    observed(em, click + SECOND, "email", "web-shop", c.email_ids(True), "email", c.email, "login", "verified")
    linked(em, click + SECOND, "web", "web-shop", c.web_ids(True), ("email", c.email), ("customer_id", c.cid),
            "verified", "login")
    linked(em, click + 2 * SECOND, "web", "web-shop", c.web_ids(True), ("cookie_id", c.cookie),
            ("customer_id", c.cid), "observed", "login")
    c.consent_email = newsletter
    if newsletter:
        consent(em, c, click + 3 * SECOND, "web", "preference-center", c.web_ids(True), "marketing", "email")
    return click + 3 * SECOND


def first_call(em: Emitter, c: Customer, t: int) -> int:
    """A call from an unknown number; the agent finds (or creates) the account and links the number."""
    call = touchpoints.start_call(em, c, t, "inquiry", identified=False)
    ids = {"phone": c.phone}
    observed(em, call.answered_at + SECOND, "phone", "pbx", dict(ids), "phone", c.phone, "call", "observed")
    if c.has_account:
        linked(em, call.t, "phone", "crm", c.phone_ids(True), ("phone", c.phone), ("customer_id", c.cid),
                "verified", "agent_confirmed")
    else:  # a phone person's first contact: the agent opens an account and notes the e-mail they spell out
        c.has_account = True
        linked(em, call.t, "phone", "crm", c.phone_ids(True), ("phone", c.phone), ("customer_id", c.cid),
                "verified", "agent_confirmed")
        observed(em, call.t + SECOND, "phone", "crm", c.phone_ids(True), "email", c.email, "agent_entry", "claimed")
        linked(em, call.t + SECOND, "phone", "crm", c.phone_ids(True), ("email", c.email), ("customer_id", c.cid),
                "claimed", "agent_confirmed")
        c.email_known = True
        if c.persona.sms and em.rng.random() < 0.7:
            c.consent_sms = True
            consent(em, c, call.t + 2 * SECOND, "phone", "crm", c.phone_ids(True), "marketing", "sms")
    c.phone_known = True
    call.t += 2 * SECOND
    return touchpoints.end_call(em, c, call, resolved=True)


def loyalty_card(em: Emitter, c: Customer, t: int, store: str | None = None) -> tuple[int, str]:
    """A card issued at the till, linked to the phone number the customer gives (claimed, unverified)."""
    rng = em.rng
    store = store or rng.choice(STORES)
    ids = c.store_ids()
    observed(em, t, "store", "pos", dict(ids), "loyalty_card", c.loyalty, "purchase", "verified")
    linked(em, t + SECOND, "store", "pos", {"loyalty_card": c.loyalty, "phone": c.phone},
            ("loyalty_card", c.loyalty), ("phone", c.phone), "claimed", "purchase")
    c.card_known = True
    if not c.phone_known and c.persona.sms:
        c.phone_known = True
    if c.persona.sms and not c.consent_sms and rng.random() < 0.6:
        c.consent_sms = True
        consent(em, c, t + 2 * SECOND, "store", "pos", c.store_ids(), "marketing", "sms")
    return t + 3 * SECOND, rng.choice(STAFF)


def unlink_shared_device(em: Emitter, c: Customer, t: int) -> None:
    """A family member logged in on the same browser: the cookie no longer means this customer."""
    em.emit(t, "identity.identifiers_unlinked", "web", "identity", "company", "web-shop", {"cookie_id": c.cookie},
            {"identifier_a": {"kind": "cookie_id", "value": c.cookie},
             "identifier_b": {"kind": "customer_id", "value": c.cid}, "trust": "observed",
             "reason": "shared_device"})
    c.cookie = f"ck-{em.rng.getrandbits(64):016x}"
    c.unlinked = True


def withdraw(em: Emitter, c: Customer, t: int, channel: str) -> None:
    """The customer unsubscribes: marketing on that channel stops."""
    if channel == "email":
        consent(em, c, t, "web", "preference-center", c.web_ids(True), "marketing", "email", given=False)
        c.consent_email = False
    else:
        consent(em, c, t, "sms", "sms-gateway", c.phone_ids(False), "marketing", "sms", given=False)
        c.consent_sms = False
