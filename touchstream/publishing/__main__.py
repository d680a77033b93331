"""``python -m touchstream.publishing``: the HTTP collector process."""

from __future__ import annotations

import logging
import os

import uvicorn

from touchstream.config import Settings
from touchstream.private_files import PRIVATE_UMASK
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.collector import build_collector
from touchstream.publishing.publisher import Publisher


def main() -> None:
    os.umask(PRIVATE_UMASK)   # owner-only files (data, logs, secrets), however the process was started
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env().for_service("collector")   # its Kafka principal
    publisher = Publisher(settings, source="collector")
    api = build_collector(publisher, ApiKeyStore(settings.api_keys_path))
    try:
        uvicorn.run(api, host=settings.host, port=settings.collector_port, log_level="warning")
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
