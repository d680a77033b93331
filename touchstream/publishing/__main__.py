"""``python -m touchstream.publishing``: the HTTP collector process.

``TOUCHSTREAM_COLLECTOR_WORKERS`` > 1 runs that many uvicorn worker processes behind the one
port (uvicorn binds it here and hands it to each); every worker builds its own app and
producer from ``create_app``. The workers are this process's children in its process group,
so the supervisor's signal to the group stops them all, and each asks Linux to stop it too
should this process die without passing a signal on (they would hold the port otherwise).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal

import uvicorn
from fastapi import FastAPI

from touchstream.config import Settings
from touchstream.private_files import PRIVATE_UMASK
from touchstream.publishing.api_keys import ApiKeyStore
from touchstream.publishing.collector import build_collector
from touchstream.publishing.publisher import Publisher

APP_FACTORY = "touchstream.publishing.__main__:create_app"
PR_SET_PDEATHSIG = 1


def _process_setup() -> None:
    os.umask(PRIVATE_UMASK)   # owner-only files (data, logs, secrets), however the process was started
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _end_with_parent() -> None:
    """A uvicorn worker gets SIGTERM when the collector's main process dies (Linux; elsewhere nothing)."""
    if multiprocessing.parent_process() is None:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def create_app() -> FastAPI:
    """The collector with a producer of its own: uvicorn calls it once in every worker process."""
    _process_setup()
    _end_with_parent()
    settings = Settings.from_env().for_service("collector")   # its Kafka principal
    publisher = Publisher(settings, source="collector")
    return build_collector(publisher, ApiKeyStore(settings.api_keys_path))


def main() -> None:
    _process_setup()
    settings = Settings.from_env()
    uvicorn.run(APP_FACTORY, factory=True, workers=max(1, settings.collector_workers),
                host=settings.host, port=settings.collector_port, log_level="warning")


if __name__ == "__main__":
    main()
