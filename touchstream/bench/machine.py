"""The machine and the versions a bench ran on, printed above every table."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("faust-streaming", "aiokafka", "kafka-python", "confluent-kafka", "fastavro", "duckdb", "pyarrow")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(kafka_version: str) -> dict:
    versions = {name: _version(name) for name in PACKAGES}
    try:
        import confluent_kafka

        versions["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:
        pass
    versions["kafka"] = kafka_version
    return {"cores": os.cpu_count(), "memory_gb": _memory_gb(), "cpu": _cpu(),
            "python": platform.python_version(), "versions": versions}
