"""What a replay of the raw topics computes for complaints: the pure folds over complete histories.

The expected side of every "live equals replay" complaint test, in process or on the broker:
each case folded from all its events, named after the customer identity resolution gives the
strongest hint it knows (else the events' customer_id hint), FCR judged across the customer's
cases, callbacks, SLA clocks and due events at the latest event time (the watermark at rest).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from touchstream.processors.complaint_resolution import case_hints, case_key
from touchstream.projections import complaint_resolution as cases
from touchstream.projections import complaint_sla as sla
from touchstream.projections.customer_360 import view_fingerprint, view_json
from touchstream.projections.identity_resolution import IdentityResolver

POLICIES = sla.load_policies()


class Replayed:
    def __init__(self, records: list[dict], resolver: IdentityResolver | None = None, region: str | None = "NL"):
        """``resolver``: a fresh one observes every record first; None names customers by their hint."""
        if resolver is not None:
            for r in records:
                resolver.observe(r)
        self.watermark: datetime = max(r["envelope"]["occurred_at"] for r in records)
        by_case = defaultdict(list)
        for r in records:
            if case_key(r):
                by_case[case_key(r)].append(r)
        folded = []
        for key, history in by_case.items():
            case = cases.fold(history, key)
            if not case.steps:
                continue
            owners = [resolver.customer_of(*h.split(":", 1)) for h in case_hints(history, region)] if resolver else []
            case.customer_id = next((o for o in owners if o), None) or cases.customer_hint(case)
            sla.pin_policy(case, POLICIES)
            folded.append(case)
        self.cases = {v["case_id"]: (v["customer_id"], view_fingerprint(view_json(v)))
                      for v in cases.views(folded, self.watermark)}
        self.clocks, self.due = {}, {}
        for case in folded:
            policy = sla.pin_policy(case, POLICIES)
            for c in sla.clocks(case, policy, self.watermark):
                self.clocks[(case.case_id, c.name)] = (c.state, c.due_at, c.met_at)
            self.due[case.case_id] = {e["envelope"]["event_id"] for e in sla.due_events(case, policy, self.watermark)}
