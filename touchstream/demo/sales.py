"""The sale and after-sales stages: orders, fulfilment, invoices, payments, returns, store visits.

Why this shape: the customer-360 must answer "date of the last delivery, returns and
credits, payment status" (domain.md section 3), so each order runs its full
commercial thread (placed -> fulfilled -> delivered -> invoiced -> paid) under
one correlation id, with realistic gaps: late deliveries, late or missing payments
after reminders, returns with credit notes. Pure: no I/O.
"""

from __future__ import annotations

from touchstream.demo import identity_steps, research, touchpoints
from touchstream.demo.emitter import DAY, HOUR, MINUTE, SECOND, Emitter
from touchstream.demo.personas import CONSUMER_SKUS, STAFF, STORES, Customer

CARRIERS = ("PostNL", "DHL", "DPD")


def order_lines(em: Emitter, skus: tuple, max_lines: int = 2, max_qty: int = 2) -> tuple[list, int]:
    rng = em.rng
    lines, total = [], 0
    for sku, _category, price in rng.sample(skus, rng.randint(1, max_lines)):
        qty = rng.randint(1, max_qty)
        lines.append({"sku": sku, "quantity": qty, "unit_price": em.money(price)})
        total += qty * price
    return lines, total


def web_order(em: Emitter, c: Customer, t: int, campaign: str | None = None) -> int:
    """Checkout on the web shop, confirmation mail, then the commercial thread."""
    rng = em.rng
    t = research.web_session(em, c, t, True, "order_payment", pages=2)
    order = em.new_id("ORD")
    lines, total = order_lines(em, CONSUMER_SKUS)
    ids = c.web_ids(True)
    ids["email"] = c.email
    fields = {"order_id": order, "lines": lines, "total": em.money(total)}
    if campaign:
        fields["campaign_id"] = campaign
    em.emit(t, "commerce.order_placed", "web", "order_payment", "customer", "web-shop", ids, fields, order)
    if c.email_ok:
        touchpoints.company_email(em, c, t + 5 * SECOND, "order_payment", "customer", f"Your order {order}",
                                  template="order-confirmation", open_rate=0.7, click_rate=0.1,
                                  url=research.SHOP + "/account/orders", corr=order)
    pay_now = rng.random() < 0.75
    settle(em, c, t + MINUTE, order, total, "web", "email", pay_now)
    fulfil(em, c, t, order, lines, "web")
    return t


def phone_order(em: Emitter, c: Customer, t: int) -> int:
    """An order taken by an agent; invoiced by post, paid by transfer or cheque."""
    call = touchpoints.start_call(em, c, t, "order_payment", identified=True)
    order = em.new_id("ORD")
    lines, total = order_lines(em, CONSUMER_SKUS)
    em.emit(call.t, "commerce.order_placed", "phone", "order_payment", "customer", "crm", c.phone_ids(True),
            {"order_id": order, "lines": lines, "total": em.money(total)}, order)
    call.t += 30 * SECOND
    end = touchpoints.end_call(em, c, call, resolved=True)
    settle(em, c, end + HOUR, order, total, "phone", "postal_mail", False)
    fulfil(em, c, end, order, lines, "phone")
    return end


def settle(em: Emitter, c: Customer, t: int, order: str | None, total: int, order_channel: str,
           invoice_channel: str, pay_now: bool, method: str | None = None) -> None:
    """Invoice and payment: at checkout, or by due date, late after a reminder, or never."""
    rng = em.rng
    invoice = em.new_id("INV")
    due = t + (0 if pay_now else 14 * DAY)
    inv_fields = {"invoice_id": invoice, "amount": em.money(total), "due_date": em.date(due)}
    if order:
        inv_fields["order_id"] = order
    em.emit(t, "commerce.invoice_issued", invoice_channel, "invoicing", "company", "billing", c.billing_ids(),
            inv_fields, order)
    if invoice_channel == "postal_mail":
        touchpoints.letter(em, c, t + HOUR, "invoicing", "company", "invoice", template="invoice-v2", corr=order)
    pay = {"payment_id": em.new_id("PAY"), "invoice_id": invoice, "amount": em.money(total)}
    if order:
        pay["order_id"] = order
    if pay_now:
        pay["method"] = method or rng.choice(("card", "card", "wallet"))
        em.emit(t - 30 * SECOND, "commerce.payment_received", order_channel, "order_payment", "customer", "payments",
                c.billing_ids(), pay, order)
        return
    roll = rng.random()
    persona = c.persona
    pay["method"] = method or ("cheque" if invoice_channel == "postal_mail" and rng.random() < 0.3 else "bank_transfer")
    if roll < persona.pay_missing + persona.pay_late:
        reminder = due + 3 * DAY + 9 * HOUR
        if c.phone_known and c.consent_sms and rng.random() < 0.5:
            touchpoints.sms(em, c, reminder, "invoicing", "company", f"Reminder: invoice {invoice} is overdue.",
                            template="payment-reminder", corr=order)
        else:
            touchpoints.letter(em, c, reminder, "invoicing", "company", "statement", template="payment-reminder",
                               corr=order)
        if roll < persona.pay_missing:
            return  # never paid within the window: an open balance for the customer-360
        paid = reminder + rng.randint(1, 12) * DAY
    else:
        paid = due - rng.randint(0, 12) * DAY - rng.randint(0, 8) * HOUR
    paid = max(paid, t + HOUR)
    if pay["method"] == "cheque":
        em.emit(paid - HOUR, "postal.mail_received", "postal_mail", "order_payment", "customer", "mailroom",
                c.crm_ids(), {"mail_id": em.new_id("PM"), "kind": "payment", "summary": f"Cheque for {invoice}"}, order)
        em.emit(paid, "commerce.payment_received", "postal_mail", "order_payment", "customer", "payments",
                c.billing_ids(), pay, order)
    else:
        em.emit(paid, "commerce.payment_received", "web", "order_payment", "customer", "payments",
                c.billing_ids(), pay, order)


def fulfil(em: Emitter, c: Customer, t: int, order: str, lines: list, channel: str,
           place: str | None = None) -> tuple[int, bool]:
    """Shipped, notified, delivered (sometimes late), then maybe a return. Returns (delivered at, late)."""
    rng = em.rng
    shipped = t + rng.randint(4 * HOUR, 30 * HOUR)
    shipment, carrier = em.new_id("SHP"), rng.choice(CARRIERS)
    expected = shipped + 2 * DAY
    em.emit(shipped, "commerce.order_fulfilled", channel, "fulfilment", "company", "warehouse", c.crm_ids(),
            {"order_id": order, "shipment_id": shipment, "carrier": carrier,
             "tracking_number": f"3S{rng.getrandbits(40):012X}", "expected_delivery_date": em.date(expected)}, order)
    if c.phone_known and c.persona.sms and rng.random() < 0.6:
        touchpoints.sms(em, c, em.office(shipped + MINUTE, 8, 21), "fulfilment", "company", "Your order is on its way.",
                        template="shipped", corr=order)
    elif c.email_known and c.email_ok:
        touchpoints.company_email(em, c, em.office(shipped + MINUTE, 7, 22), "fulfilment", "company",
                                  "Your order has shipped",
                                  template="shipped", open_rate=0.6, click_rate=0.3,
                                  url=research.SHOP + "/account/orders", corr=order)
    late = rng.random() < 0.07
    delivered = shipped + (rng.randint(5, 8) if late else rng.randint(1, 2)) * DAY + rng.randint(0, 8) * HOUR
    if late and c.persona.name == "digital_native":
        research.web_session(em, c, expected + 10 * HOUR, True, "fulfilment", pages=1, corr=order)
    em.emit(delivered, "commerce.order_delivered", channel, "fulfilment", "company", "carrier-tracking", c.crm_ids(),
            {"order_id": order, "shipment_id": shipment, "carrier": carrier,
             "delivered_to": place or rng.choice(("home", "home", "pickup_point"))}, order)
    sku, qty, unit = lines[0]["sku"], lines[0]["quantity"], lines[0]["unit_price"]
    c.orders = (c.orders + [(order, sku, unit, qty, channel, delivered, late)])[-3:]
    if rng.random() < 0.06 and channel == "web":
        web_return(em, c, delivered + rng.randint(1, 5) * DAY, order, sku, unit, qty)
    return delivered, late


def web_return(em: Emitter, c: Customer, t: int, order: str, sku: str, unit: dict, qty: int) -> None:
    """A return registered on the web, received at the warehouse, refunded by a credit note."""
    rng = em.rng
    reason = rng.choice(("changed_mind", "changed_mind", "defective", "damaged", "not_as_described"))
    content = "order_payment" if reason == "changed_mind" else "complaint"
    t = research.web_session(em, c, t, True, "order_payment", pages=1, corr=order)
    em.emit(t, "web.form_submitted", "web", content, "customer", "web-shop", c.web_ids(True),
            {"form_id": "return-v1", "form_kind": "support", "answers": {"order_id": order, "reason": reason},
             "page_url": research.SHOP + "/account/returns"}, order)
    received = t + rng.randint(2, 5) * DAY
    refund = em.money(int(unit["amount"].replace(".", "")) * qty)
    em.emit(received, "commerce.return_received", "web", content, "customer", "warehouse", c.crm_ids(),
            {"return_id": em.new_id("RET"), "order_id": order, "refund": refund, "reason": reason,
             "lines": [{"sku": sku, "quantity": qty, "unit_price": unit}],
             "comment": "Not what I expected" if reason == "changed_mind" else "Stopped working after two days"}, order)
    em.emit(received + HOUR, "commerce.credit_issued", "email", "invoicing", "company", "billing", c.billing_ids(),
            {"credit_id": em.new_id("CRN"), "amount": refund, "reason": "return", "order_id": order}, order)


def store_visit(em: Emitter, c: Customer, t: int, initiated_by: str = "customer", campaign: str | None = None) -> int:
    """A card-scanned visit; usually a purchase, now and then a return of an earlier receipt."""
    rng = em.rng
    store, staff = rng.choice(STORES), rng.choice(STAFF)
    new_card = not c.card_known  # a card is issued at the till, with a purchase
    if new_card:
        t, staff = identity_steps.loyalty_card(em, c, t, store)
    content = "promotion" if initiated_by == "company" else rng.choice(("order_payment", "order_payment", "inquiry",
                                                                         "specification"))
    em.emit(t, "store.visited", "store", content, initiated_by, "pos", c.store_ids(),
            {"store_id": store, "visit_id": em.new_id("VIS"), "duration_seconds": rng.randint(300, 2400),
             "staff_id": staff})
    t += rng.randint(5, 30) * MINUTE
    if c.receipts and rng.random() < 0.06:
        receipt, _store, sku, unit = c.receipts[0]
        reason = rng.choice(("defective", "changed_mind", "wrong_item"))
        em.emit(t, "store.item_returned", "store", "order_payment" if reason == "changed_mind" else "complaint",
                "customer", "pos", c.store_ids(),
                {"receipt_id": receipt, "store_id": store, "sku": sku, "quantity": 1, "refund": unit,
                 "reason": reason})
        c.receipts = c.receipts[1:]
        t += 2 * MINUTE
    if campaign or new_card or rng.random() < 0.75:
        lines, total = order_lines(em, CONSUMER_SKUS, max_qty=3)
        receipt = em.new_id("RCPT")
        fields = {"receipt_id": receipt, "store_id": store, "lines": lines, "total": em.money(total), "staff_id": staff}
        if campaign:
            fields["campaign_id"] = campaign
        em.emit(t, "store.purchase_completed", "store", "order_payment", "customer", "pos", c.store_ids(), fields)
        c.receipts = (c.receipts + [(receipt, store, lines[0]["sku"], lines[0]["unit_price"])])[-3:]
    if rng.random() < 0.04:
        em.emit(t + MINUTE, "feedback.compliment_given", "store", "compliment", "customer", "pos", c.store_ids(),
                {"text": "The staff member was really helpful.", "about": staff})
    return t
