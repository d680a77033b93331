"""``python -m touchstream.registry``: the registry process of the local stack.

Reads ``_schemas`` to the end before it opens its port, so the stack's readiness
probe (``GET /subjects`` answering 200) also means "state is complete". Logs go to
stderr; at INFO they name subjects, versions and ids, never schema contents.
"""

from __future__ import annotations

import os
import argparse
import logging
import sys

import uvicorn

from touchstream.config import Settings
from touchstream.kafka_access import kafka_access
from touchstream.private_files import PRIVATE_UMASK
from touchstream.registry.base import StoreError
from touchstream.registry.credentials import writer_secret
from touchstream.registry.http_app import create_app
from touchstream.registry.kafka_store import KafkaSchemaStore
from touchstream.registry.service import RegistryService
from touchstream.topics import SCHEMAS_TOPIC

log = logging.getLogger("touchstream.registry")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m touchstream.registry", description=__doc__.splitlines()[0])
    parser.add_argument("--topic", default=SCHEMAS_TOPIC, help="storage topic (default %(default)s)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    os.umask(PRIVATE_UMASK)   # owner-only files (data, logs, secrets), however the process was started
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = Settings.from_env().for_service("registry")
    try:
        store = KafkaSchemaStore(kafka_access(settings), args.topic)
    except StoreError as exc:
        log.error("cannot start: %s", exc)
        return 1
    try:
        state = store.state()
        log.info(
            "loaded %d subjects from %s; serving on %s:%d",
            len(state.versions), args.topic, settings.host, settings.registry_port,
        )
        app = create_app(RegistryService(store), on_shutdown=lambda: _close(store),
                         writer_secret=writer_secret(settings))
        # On SIGTERM uvicorn stops gracefully (running on_shutdown) and then re-raises the signal.
        uvicorn.run(app, host=settings.host, port=settings.registry_port, log_level=args.log_level)
    finally:
        store.close()
    return 0


def _close(store: KafkaSchemaStore) -> None:
    store.close()
    log.info("schema store closed")


if __name__ == "__main__":
    sys.exit(main())
