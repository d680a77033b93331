"""The identity resolver's facts as keyed rows, and the journal of those that changed.

Why: the resolver's state is facts (events seen, identifiers with how and when they were
first seen, link evidence, unlinks, findings already reported) from which the customers
are re-derived. Written whole, they cost the identity stage more CPU than resolving, and
the cost grows with every event ever seen. Each fact is a row with a key, so a store can
keep them as rows and write only those a batch added or changed: the journal collects
them as the resolver records them, and ``drain`` hands them over once.

Rows are plain lists of str/int (the shape ``IdentityResolver.to_dict`` has always had):

- events: event id
- nodes: [kind, value, first_seen, trust, note]; keyed by (kind, value), replaced when it changes
- evidence and separations: [kind_a, value_a, kind_b, value_b, at, event_id, trust, reason]
- reported: [rule, kind, value]

Evidence rows are never deleted, even when a later unlink voids them: the graph refuses
evidence an unlink voided (``IdentityGraph.add``), so a restore that applies the
separations before the evidence re-derives the same state. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from touchstream.projections.identity_facts import Evidence, Identifier, Pair, Separation

FACT_KINDS = ("events", "nodes", "evidence", "separations", "reported")


@dataclass
class Facts:
    """Rows of facts: all of a resolver's (a restore), or those changed since the last save (a delta).
    Lists, except in what a store loads: there each kind may be an iterable to be read once."""

    events: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    evidence: list = field(default_factory=list)
    separations: list = field(default_factory=list)
    reported: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {kind: getattr(self, kind) for kind in FACT_KINDS}

    def __len__(self) -> int:
        return sum(len(getattr(self, kind)) for kind in FACT_KINDS)

    def plus(self, later: "Facts") -> "Facts":
        """These rows, then ``later``'s (a node row in both: the later one is the node's state)."""
        return Facts(*(getattr(self, kind) + getattr(later, kind) for kind in FACT_KINDS))


def link_row(pair: Pair, fact: Evidence | Separation) -> list:
    return [*pair[0], *pair[1], fact.at, fact.event_id, fact.trust.symbol, fact.reason]


def separation_row(sep: Separation) -> list:
    return link_row(sep.pair, sep)


def reported_row(rule: str, node: Identifier) -> list:
    return [rule, *node]


class Journal:
    """The facts recorded since the last ``drain``: appended on the resolver's path, turned into rows
    only when a store asks (a node is kept once however often it changes; its row is read then)."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.events: list[str] = []
        self.nodes: dict[Identifier, None] = {}   # insertion-ordered set
        self.links: list[tuple[Pair, Evidence]] = []
        self.separations: list[Separation] = []
        self.findings: list[tuple[str, Identifier]] = []

    def event(self, event_id: str) -> None:
        self.events.append(event_id)

    def node(self, node: Identifier) -> None:
        """A node seen first, seen earlier than known, better trusted or newly noted."""
        self.nodes[node] = None

    def evidence(self, pair: Pair, ev: Evidence) -> None:
        self.links.append((pair, ev))

    def separation(self, sep: Separation) -> None:
        self.separations.append(sep)

    def reported(self, rule: str, node: Identifier) -> None:
        self.findings.append((rule, node))

    def forget(self, nodes) -> None:
        """Drop what names ``nodes`` (an erasure: a store deletes those facts, it must not be handed them)."""
        for node in nodes:
            self.nodes.pop(node, None)
        self.links = [(pair, ev) for pair, ev in self.links if pair[0] not in nodes and pair[1] not in nodes]
        self.separations = [s for s in self.separations if s.pair[0] not in nodes and s.pair[1] not in nodes]
        self.findings = [(rule, node) for rule, node in self.findings if node not in nodes]

    def drain(self, node_row) -> Facts:
        """The changes as rows (``node_row(node)`` reads a node's current row), and an empty journal."""
        facts = Facts([*self.events], [node_row(n) for n in self.nodes],
                      [link_row(pair, ev) for pair, ev in self.links],
                      [separation_row(s) for s in self.separations],
                      [reported_row(rule, node) for rule, node in self.findings])
        self._reset()
        return facts


class _NoJournal(Journal):
    """What a resolver whose state is not stored keeps: nothing."""

    def _record(self, *_fact) -> None:
        pass

    event = node = evidence = separation = reported = _record

    def drain(self, node_row) -> Facts:
        raise ValueError("this resolver keeps no journal: construct it with journal=True")


NO_JOURNAL = _NoJournal()
