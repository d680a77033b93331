"""Is a service ready? Answered by a real round trip, never by a sleep.

A listening socket is not a ready Kafka broker (KRaft accepts connections before
it serves requests) and a log line can change wording between versions, so
``wait_for_kafka`` only returns after the broker answered a metadata request
with itself in the broker list, and ``wait_for_http`` after a 200.

Both poll with a short, growing backoff and, when given ``alive``, stop at once
if the process died (no point waiting 2 minutes for a JVM that exited after 1 s).
Failures raise ``TimeoutError`` (or ``ServiceDied``) naming the service, the
address and the tail of its log files, which is what one needs to fix it.
"""

from __future__ import annotations

import logging
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import httpx

from touchstream.kafka_access import KafkaAccess, as_access

Alive = Callable[[], bool]
LogFiles = Path | Sequence[Path] | None


class ServiceDied(RuntimeError):
    """The process exited while we were waiting for it to become ready."""


class WrongService(RuntimeError):
    """Something answers at the address, but it is not the service we started."""


def log_tail(path: Path | None, lines: int = 30) -> str:
    """Last ``lines`` lines of ``path`` ('' when there is no such file)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _as_list(logs: LogFiles) -> list[Path]:
    if logs is None:
        return []
    if isinstance(logs, (str, Path)):
        return [Path(logs)]
    return [Path(p) for p in logs]


def describe_failure(what: str, logs: LogFiles) -> str:
    parts = [what]
    for path in _as_list(logs):
        tail = log_tail(path)
        parts.append(f"--- last lines of {path} ---\n{tail}" if tail else f"(log {path} is empty or missing)")
    return "\n".join(parts)


def _backoff() -> Iterator[float]:
    delay = 0.05
    while True:
        yield delay
        delay = min(delay * 1.6, 0.25)


def _poll(service: str, address: str, timeout: float, attempt: Callable[[float], object],
          logs: LogFiles, alive: Alive | None) -> object:
    """Call ``attempt(remaining_seconds)`` until it returns without raising."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    for delay in _backoff():
        if alive is not None and not alive():
            raise ServiceDied(describe_failure(f"{service} at {address} exited before it became ready", logs))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            return attempt(remaining)
        except WrongService as exc:
            raise WrongService(describe_failure(f"{service} at {address}: {exc}", logs)) from None
        except Exception as exc:  # noqa: BLE001 - any other failure means "not ready yet"
            last = exc
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
    reason = f" (last error: {type(last).__name__}: {last})" if last else ""
    raise TimeoutError(describe_failure(f"{service} at {address} not ready after {timeout:.0f}s{reason}", logs))


class _DropBootstrapErrors(logging.Filter):
    """kafka-python logs every failed bootstrap at ERROR; while polling that is expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Bootstrap failed" not in record.getMessage()


@contextmanager
def _quiet_kafka() -> Iterator[None]:
    logger = logging.getLogger("kafka.net.manager")
    flt = _DropBootstrapErrors()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


def split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
    return out


def tcp_open(addresses: Iterable[tuple[str, int]], timeout: float) -> None:
    errors = []
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=min(timeout, 1.0)):
                return
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc}")
    raise ConnectionError("; ".join(errors))


def kafka_metadata(bootstrap: KafkaAccess | str, timeout: float = 5.0) -> dict:
    """One metadata round trip: returns kafka-python's ``describe_cluster()`` dict.

    The admin client is closed even when its constructor fails: kafka-python 3.0
    starts an IO thread before bootstrapping and would otherwise leak it.
    """
    from kafka import KafkaAdminClient

    class _ProbeAdmin(KafkaAdminClient):
        def __init__(self, **configs):
            try:
                super().__init__(**configs)
            except BaseException:
                if hasattr(self, "_net"):
                    self._closed = False
                    self.close()
                raise

    ms = max(200, int(timeout * 1000))
    admin = _ProbeAdmin(**as_access(bootstrap).kafka_python(
        client_id="touchstream-readiness", bootstrap_timeout_ms=ms, request_timeout_ms=ms))
    try:
        return admin.describe_cluster()
    finally:
        admin.close()


def wait_for_kafka(bootstrap: KafkaAccess | str, timeout: float = 120.0, log_file: LogFiles = None,
                   alive: Alive | None = None, service: str = "Kafka broker",
                   cluster_id: str | None = None) -> dict:
    """Block until the broker at ``bootstrap`` answers metadata and lists a broker.

    Cheap TCP probes come first so no Kafka client (and its thread) is built
    while nothing listens; then each attempt is a full client round trip. With
    ``cluster_id``, an answer from another cluster (someone else's broker on
    that port) raises ``WrongService`` instead of passing for ours.
    """
    addresses = split_bootstrap(as_access(bootstrap).bootstrap)

    def attempt(remaining: float) -> dict:
        tcp_open(addresses, remaining)
        meta = kafka_metadata(bootstrap, timeout=min(remaining, 5.0))
        if cluster_id is not None and meta.get("cluster_id") != cluster_id:
            raise WrongService(f"answered as cluster {meta.get('cluster_id')!r}, ours is {cluster_id!r} "
                               "(another broker holds the port?)")
        if not meta.get("brokers"):
            raise ConnectionError("metadata answered with no live broker yet")
        return meta

    with _quiet_kafka():
        return _poll(service, as_access(bootstrap).bootstrap, timeout, attempt, log_file, alive)  # type: ignore[return-value]


def wait_for_http(url: str, timeout: float = 60.0, log_file: LogFiles = None,
                  alive: Alive | None = None, service: str = "HTTP service") -> httpx.Response:
    """Block until ``GET url`` returns 200."""

    def attempt(remaining: float) -> httpx.Response:
        response = httpx.get(url, timeout=max(0.5, min(remaining, 3.0)))
        if response.status_code != 200:
            raise ConnectionError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response

    return _poll(service, url, timeout, attempt, log_file, alive)  # type: ignore[return-value]


def wait_for_file(path: Path, timeout: float = 60.0, log_file: LogFiles = None,
                  alive: Alive | None = None, service: str = "worker") -> Path:
    """Block until ``path`` exists: a worker without HTTP writes it when it is ready."""

    def attempt(_remaining: float) -> Path:
        if not path.exists():
            raise FileNotFoundError(f"{path} not written yet")
        return path

    return _poll(service, str(path), timeout, attempt, log_file, alive)  # type: ignore[return-value]
