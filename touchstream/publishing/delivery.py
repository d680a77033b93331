"""Delivery reports as asyncio futures: how the collector waits for Kafka without holding a thread.

The collector used to wait in its request thread, polling the shared producer until its own
reports were in; a report served by another request's thread then sat unseen until that
thread's poll timed out, so concurrency bought nothing. Here one thread polls the producer
for every request, each report counts down its request's ``_Acks`` and the last one resolves
the request's future on its event loop (``call_soon_threadsafe``, once per request, not per
event). librdkafka's ``linger.ms`` already groups the records of concurrent requests into one
produce request, which is the group commit; nothing waits on a global flush.
"""

from __future__ import annotations

import asyncio
import threading

from touchstream.events.catalogue import ValidEvent
from touchstream.publishing.publisher import PublishError, Publisher

POLL_SECONDS = 0.5   # how long one poll may block; it returns at once when a report is in


class _Acks:
    """One request's delivery reports, counted down in the poll thread; the last resolves the future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future, expected: int):
        self.loop, self.future = loop, future
        self.pending = expected
        self.failed: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, event_id: str, err: str | None) -> None:
        with self.lock:
            if err is not None:
                self.failed[event_id] = err
            self.pending -= 1
            if self.pending != 0:
                return
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future, self.failed)
        except RuntimeError:   # the loop is closed (a report flushed at shutdown): no one is waiting
            pass


def _resolve(future: asyncio.Future, failed: dict[str, str]) -> None:
    """On the event loop; a future that timed out was cancelled already, and its late report is dropped."""
    if future.done():
        return
    if failed:
        future.set_exception(PublishError(failed))
    else:
        future.set_result(None)


class AsyncDelivery:
    """Sends a request's events and hands back a future that Kafka's acknowledgements resolve."""

    def __init__(self, publisher: Publisher, timeout: float = 30.0):
        self.publisher = publisher
        self.timeout = timeout
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()

    def send(self, events: list[ValidEvent], loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """Encode and queue ``events`` (blocking: call it off the loop); raises as ``Publisher`` does.

        The future is made on ``loop`` and only ever completed there."""
        self._ensure_poller()
        future = loop.create_future()
        if not events:
            loop.call_soon_threadsafe(_resolve, future, {})
            return future
        self.publisher.send_reporting(events, _Acks(loop, future, len(events)))
        return future

    async def wait(self, future: asyncio.Future) -> None:
        """Until every event of the request is acknowledged; PublishError when one was refused or
        none came within ``timeout`` (the events may still land: the client retries with the same ids)."""
        try:
            await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            raise PublishError({"<pending>": f"unacknowledged after {self.timeout}s"}) from None

    def _ensure_poller(self) -> None:
        """Started on first use, in the process that serves (a uvicorn worker), never at import."""
        with self._start_lock:
            if self._poller is None or not self._poller.is_alive():
                self._stop.clear()
                self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)
                self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.publisher.poll(POLL_SECONDS)

    def close(self) -> None:
        """Stop polling, then flush what is still queued (the publisher's close)."""
        with self._start_lock:
            poller, self._poller = self._poller, None
        self._stop.set()
        if poller is not None:
            poller.join()
        self.publisher.close()
