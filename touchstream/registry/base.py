"""The registry's storage port and domain types.

A registry is a fold over an append-only log of records (Confluent keeps that log
in the compacted ``_schemas`` topic). ``SchemaStore`` is the port: append a
record, read the current state, wait until the state has caught up with the log.
``RegistryState`` is the fold itself, shared by every store, so an in-memory
store and the Kafka store cannot disagree on what a record means.

Errors carry Confluent's error codes, because clients branch on them
(``SchemaRegistryError.error_code``), and the HTTP status follows from the code.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace

AVRO = "AVRO"
DEFAULT_COMPATIBILITY = "BACKWARD"


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one subject: what a SCHEMA record of ``_schemas`` holds."""

    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = AVRO
    deleted: bool = False

    def soft_deleted(self) -> "SchemaVersion":
        return replace(self, deleted=True)


class RegistryError(Exception):
    """A refusal the client should see, with Confluent's ``error_code``."""

    error_code = 50001

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def http_status(self) -> int:
        code = self.error_code
        return code if code < 1000 else code // 100


class SubjectNotFound(RegistryError):
    error_code = 40401


class VersionNotFound(RegistryError):
    error_code = 40402


class SchemaNotFound(RegistryError):
    error_code = 40403


class SubjectSoftDeleted(RegistryError):
    error_code = 40404


class SubjectNotSoftDeleted(RegistryError):
    error_code = 40405


class VersionSoftDeleted(RegistryError):
    error_code = 40406


class VersionNotSoftDeleted(RegistryError):
    error_code = 40407


class SubjectConfigNotFound(RegistryError):
    error_code = 40408


class IncompatibleSchema(RegistryError):
    error_code = 409

    def __init__(self, message: str, reasons: list[str] | None = None):
        super().__init__(message)
        self.reasons = list(reasons or [])


class InvalidSchema(RegistryError):
    error_code = 42201


class InvalidVersion(RegistryError):
    error_code = 42202


class InvalidCompatibilityLevel(RegistryError):
    error_code = 42203


class BadRequest(RegistryError):
    error_code = 400


class StoreError(RegistryError):
    """The store could not write or did not catch up in time."""

    error_code = 50001


@dataclass
class RegistryState:
    """The current state folded from the log: every version of every subject and the configs.

    Soft-deleted versions stay (marked); hard-deleted ones are gone. ``max_id``
    only grows, so an id is never handed out twice while the log still holds it.
    """

    versions: dict[str, dict[int, SchemaVersion]] = field(default_factory=dict)
    configs: dict[str | None, str] = field(default_factory=dict)
    max_id: int = 0

    def put_schema(self, record: SchemaVersion) -> None:
        self.versions.setdefault(record.subject, {})[record.version] = record
        self.max_id = max(self.max_id, record.id)

    def remove_schema(self, subject: str, version: int) -> None:
        by_version = self.versions.get(subject)
        if by_version is not None:
            by_version.pop(version, None)
            if not by_version:
                del self.versions[subject]

    def put_config(self, subject: str | None, level: str | None) -> None:
        if level is None:
            self.configs.pop(subject, None)
        else:
            self.configs[subject] = level

    def copy(self) -> "RegistryState":
        return RegistryState(
            versions={s: dict(v) for s, v in self.versions.items()},
            configs=dict(self.configs),
            max_id=self.max_id,
        )

    def subject_versions(self, subject: str, *, deleted: bool = False) -> list[SchemaVersion]:
        """Versions of ``subject`` in version order; soft-deleted ones only when asked."""
        found = self.versions.get(subject, {})
        return [found[v] for v in sorted(found) if deleted or not found[v].deleted]

    def all_versions(self) -> list[SchemaVersion]:
        return [sv for subject in sorted(self.versions) for sv in self.subject_versions(subject, deleted=True)]

    def by_id(self, schema_id: int) -> SchemaVersion | None:
        """Any version holding ``schema_id`` (soft-deleted included, as Confluent serves them)."""
        for sv in self.all_versions():
            if sv.id == schema_id:
                return sv
        return None


class SchemaStore(abc.ABC):
    """Where the registry's records live. Writes are visible to ``state()`` when they return."""

    @abc.abstractmethod
    def put_schema(self, record: SchemaVersion) -> None:
        """Append a SCHEMA record (a soft delete is a record with ``deleted=True``)."""

    @abc.abstractmethod
    def put_config(self, subject: str | None, level: str | None) -> None:
        """Append a CONFIG record; ``subject`` None is global, ``level`` None removes it."""

    @abc.abstractmethod
    def delete_schema(self, subject: str, version: int) -> None:
        """Hard delete: the version is gone for good (a tombstone in the log)."""

    @abc.abstractmethod
    def state(self) -> RegistryState:
        """A consistent snapshot of the current state; the caller may not mutate the store through it."""

    @abc.abstractmethod
    def sync(self, timeout: float = 30.0) -> None:
        """Block until every record already in the log is in ``state()``; StoreError on timeout."""

    def close(self) -> None:
        """Release resources; the default store holds none."""

    def __enter__(self) -> "SchemaStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
