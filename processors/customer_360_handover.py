"""A fold worker's traffic to the other partitions of ``touchstream.customer-events``.

Why: a fold worker folds only the customers of its own partitions (``local``), yet identity
may move an identifier to a customer on another partition (a merge, split or rename), and
the events stored under that identifier must then be folded there. The worker sends them
on: the same Avro bytes, keyed by the customer that holds the identifier now and carrying
that claim's sequence number, so the receiving worker stores them under the right customer
whatever it has heard so far; a redelivered copy is ignored there by its event id. An event
that arrives for a customer of another partition (its anchor moved while it was in flight)
is sent on the same way. The sends are flushed before the batch's transaction commits, so a
crash re-sends rather than loses them.
"""

from __future__ import annotations

from touchstream.processors.identity_resolution import ANCHOR, CUSTOMER, KIND, SEQ
from touchstream.projections.customer_360_routing import Claim
from touchstream.topics import CUSTOMER_EVENTS_TOPIC

EVENT_ID = "event_id"   # the header the publishers put on every raw record
HANDOVER = "touchstream.handover"   # marks a copy re-keyed by a fold worker (its value: the sending partition)


class Handover:
    def __init__(self, output, partition: int, seal=lambda anchor: anchor):
        """``seal``: the anchor header's value from the anchor (identifier), sealed as identity seals it."""
        self.output, self.mark, self.seal = output, str(partition).encode(), seal
        self.stats = {"forwarded": 0, "handed_over": 0}

    def _send(self, event_id: str, anchor: str, claim: Claim, value: bytes) -> None:
        # ``event_id`` as on the raw record identity forwarded: a subscriber (and the bench's freshness
        # probe) tells the copy's event without decoding it
        headers = [(EVENT_ID, event_id.encode()), (KIND, b"event"), (CUSTOMER, claim.customer_id.encode()),
                   (ANCHOR, self.seal(anchor).encode()), (SEQ, str(claim.seq).encode()), (HANDOVER, self.mark)]
        self.output.send(CUSTOMER_EVENTS_TOPIC, claim.customer_id, value, headers)

    def forward(self, events: list[tuple[str, str, bytes]], claim_of) -> None:
        """Events (event id, anchor, value) of this batch whose anchor's customer is on another partition."""
        for event_id, anchor, value in events:
            self._send(event_id, anchor, claim_of(anchor), value)
        self.stats["forwarded"] += len(events)

    def hand_over(self, store, con, leaving: dict[str, Claim]) -> None:
        """The stored events of identifiers now held by a customer of another partition: sent there, and
        deleted here (in the batch's transaction)."""
        if not leaving:
            return
        rows = store.take_events(con, leaving)
        for event_id, anchor, value in rows:
            self._send(event_id, anchor, leaving[anchor], value)
        self.stats["handed_over"] += len(rows)
