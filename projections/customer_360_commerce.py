"""Commerce facts of the customer-360: orders, deliveries, invoices, payments, credits, returns.

Why ledgers keyed by business id (order_id, invoice_id, ...) and not running
sums: a republished fact (same id, new event) must replace, not add, and a late
event must land in the right place; sums, balance due and revenue are computed
from the ledgers by ``commerce_view``, exactly (Decimal), per currency.
Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal

from touchstream.projections.customer_360_events import on
from touchstream.projections.customer_360_state import Commerce, Entry, Mark, Order, Profile


def _order(commerce: Commerce, order_id: str, kind: str = "order") -> Order:
    order = commerce.orders.get(order_id)
    if order is None:
        order = commerce.orders[order_id] = Order(order_id, kind)
    return order


def _place(order: Order, record: dict, mark: Mark, total: dict) -> None:
    """The latest placement event of an order wins (a corrected republish), whatever the arrival order."""
    if order.placed is not None and mark < order.placed:
        return
    order.placed, order.channel = mark, record["envelope"]["channel"]
    order.total, order.currency = total["amount"], total["currency"]
    order.campaign_id = record.get("campaign_id")


@on("commerce.order_placed")
def _order_placed(profile: Profile, record: dict, mark: Mark) -> None:
    _place(_order(profile.commerce, record["order_id"]), record, mark, record["total"])


@on("store.purchase_completed")
def _purchase(profile: Profile, record: dict, mark: Mark) -> None:
    _place(_order(profile.commerce, record["receipt_id"], "receipt"), record, mark, record["total"])


@on("commerce.order_fulfilled")
def _fulfilled(profile: Profile, record: dict, mark: Mark) -> None:
    order = _order(profile.commerce, record["order_id"])
    if order.fulfilled is None or mark > order.fulfilled:
        order.fulfilled = mark


@on("commerce.order_delivered")
def _delivered(profile: Profile, record: dict, mark: Mark) -> None:
    order = _order(profile.commerce, record["order_id"])
    if order.delivered is None or mark > order.delivered:
        order.delivered = mark


def _enter(ledger: dict[str, Entry], key: str, entry: Entry) -> None:
    current = ledger.get(key)
    if current is None or entry.mark > current.mark:
        ledger[key] = entry


@on("commerce.invoice_issued")
def _invoice(profile: Profile, record: dict, mark: Mark) -> None:
    amount = record["amount"]
    due = record.get("due_date")
    _enter(profile.commerce.invoices, record["invoice_id"],
           Entry(mark, amount["amount"], amount["currency"], record.get("order_id"), due and due.isoformat()))


@on("commerce.payment_received")
def _payment(profile: Profile, record: dict, mark: Mark) -> None:
    amount = record["amount"]
    ref = record.get("invoice_id") or record.get("order_id")
    _enter(profile.commerce.payments, record["payment_id"],
           Entry(mark, amount["amount"], amount["currency"], ref, record.get("method")))


@on("commerce.credit_issued")
def _credit(profile: Profile, record: dict, mark: Mark) -> None:
    amount = record["amount"]
    ref = record.get("invoice_id") or record.get("order_id") or record.get("case_id")
    _enter(profile.commerce.credits, record["credit_id"],
           Entry(mark, amount["amount"], amount["currency"], ref, record.get("reason")))


@on("commerce.return_received")
def _return(profile: Profile, record: dict, mark: Mark) -> None:
    refund = record["refund"]
    _enter(profile.commerce.returns, record["return_id"],
           Entry(mark, refund["amount"], refund["currency"], record["order_id"], record.get("reason")))


@on("store.item_returned")
def _store_return(profile: Profile, record: dict, mark: Mark) -> None:
    """A store return has no id of its own: the event id is its key."""
    refund = record["refund"]
    _enter(profile.commerce.returns, f"store:{mark.event_id}",
           Entry(mark, refund["amount"], refund["currency"], record["receipt_id"], record.get("reason")))


# -- derived -------------------------------------------------------------------------------
def _sums(entries) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for amount, currency in entries:
        out[currency] = out.get(currency, Decimal(0)) + amount
    return out


def _money(sums: dict[str, Decimal]) -> dict[str, Decimal]:
    return dict(sorted(sums.items()))


def _minus(a: dict[str, Decimal], *others: dict[str, Decimal]) -> dict[str, Decimal]:
    out = dict(a)
    for other in others:
        for currency, amount in other.items():
            out[currency] = out.get(currency, Decimal(0)) - amount
    return out


LEDGERS = ("invoices", "payments", "credits", "returns")


def commerce_view(commerce: Commerce) -> dict:
    """Counts, last order and delivery, balance due (invoiced - paid - credited), revenue (sales - refunds).

    Amounts are Decimals and times datetimes (``customer_360.typed_view``); JSON shows them as strings."""
    if not (commerce.orders or any(getattr(commerce, name) for name in LEDGERS)):   # most customers: quick
        return {"orders": 0, "receipts": 0, "last_order": None, "last_delivery_at": None,
                **{name: {"count": 0, "amount": {}} for name in LEDGERS}, "balance_due": {}, "revenue_to_date": {}}
    placed = [o for o in commerce.orders.values() if o.placed is not None]
    last = max(placed, key=lambda o: o.placed, default=None)
    deliveries = [o.delivered for o in commerce.orders.values() if o.delivered is not None]
    totals = {name: _sums((e.amount, e.currency) for e in getattr(commerce, name).values()) for name in LEDGERS}
    sales = _sums((o.total, o.currency) for o in placed if o.total is not None)
    return {
        "orders": len(placed),
        "receipts": sum(1 for o in placed if o.kind == "receipt"),
        "last_order": last and {"order_id": last.order_id, "kind": last.kind, "at": last.placed.at,
                                "channel": last.channel, "total": last.total, "currency": last.currency},
        "last_delivery_at": max(deliveries).at if deliveries else None,
        **{name: {"count": len(getattr(commerce, name)), "amount": _money(totals[name])} for name in LEDGERS},
        "balance_due": _money(_minus(totals["invoices"], totals["payments"], totals["credits"])),
        "revenue_to_date": _money(_minus(sales, totals["returns"])),
    }
