"""What sealing personal values costs per event (issue 17's budget: at most 15 µs of CPU per event).

Three figures from the bench's own traffic, in process: sealing (the SDK's and the collector's side)
once every subject has a key, and over the whole traffic with each subject's key made and stored on
the stack's key topic at its first event; and opening, as one decoding process
pays it (identity, serving and each fold worker decode every event once): the records decoded first,
then only their opening timed, best of three, CPU time.
"""

from __future__ import annotations

import time

from touchstream.bench.base import Figure
from touchstream.codec.avro_codec import AvroCodec
from touchstream.kafka_access import kafka_access
from touchstream.privacy.key_topic import TopicKeyRing
from touchstream.privacy.sealer import Sealer
from touchstream.schemas import load_latest

SAMPLE = 20_000


def figures(settings, traffic) -> list[Figure]:
    sample = traffic.events[:SAMPLE]
    ring = TopicKeyRing(settings, access=kafka_access(settings, "admin"))
    try:
        cost = _open_cpu(settings, ring, sample) / max(1, len(sample))
    finally:
        ring.close()
    events = max(1, len(traffic.events))
    return [Figure("privacy.seal", "seal personal values: CPU per event published", traffic.seal_steady * 1e6,
                   "µs", higher_is_better=False, detail="a batch of 5,000 whose subjects have keys"),
            Figure("privacy.seal_first", "seal personal values, keys made and stored: CPU per event",
                   traffic.seal_cpu / events * 1e6, "µs", higher_is_better=False,
                   detail=f"{len(traffic.events):,} events, each subject's key made at its first event"),
            Figure("privacy.open", "open personal values: CPU per event per decoding process", cost * 1e6, "µs",
                   higher_is_better=False, detail=f"best of 3 over {len(sample):,} decoded events")]


def _open_cpu(settings, ring: TopicKeyRing, sample) -> float:
    """CPU seconds to open every sealed value of ``sample``'s records (decoded without keys first, so
    only the opening is timed), best of three; the first pass reads the keys and is not counted."""
    codec, opener, schemas = AvroCodec(settings.registry_url, auto_register=False), Sealer(ring), load_latest()
    decoded = [(schemas[e.event_type], codec.decode(e.value).record) for e in sample]
    plans = [(opener.plan(s.subject, s.schema), record) for s, record in decoded]
    best = float("inf")
    for attempt in range(4):
        t0 = time.process_time()
        for node, record in plans:
            opener.open(node, record)
        if attempt:
            best = min(best, time.process_time() - t0)
    return best
