"""What the registry does, over any ``SchemaStore``: Confluent Schema Registry semantics.

- Ids are global: the same schema (same identity, see ``schema_forms``) keeps one
  id under every subject; a new schema gets the highest id seen + 1.
- Re-registering a schema a subject already holds (live) returns that version.
- Versions are never reused after a soft delete; a hard delete (only after a
  soft delete) removes the record for good.
- Compatibility is checked against live versions only, at the subject's level,
  else the global level, else BACKWARD.

Writes are serialised by one lock: this process is the only writer of its store
(Confluent elects a leader for that; the local stack runs one registry).
"""

from __future__ import annotations

import logging
import threading

from touchstream.registry import compatibility, schema_forms
from touchstream.registry.base import (
    AVRO,
    DEFAULT_COMPATIBILITY,
    IncompatibleSchema,
    InvalidSchema,
    InvalidVersion,
    RegistryState,
    SchemaNotFound,
    SchemaStore,
    SchemaVersion,
    SubjectConfigNotFound,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
    VersionNotSoftDeleted,
    VersionSoftDeleted,
)

log = logging.getLogger(__name__)

LATEST = None
_MAX_VERSION = 2**31 - 1


def parse_version(raw: object) -> int | None:
    """``latest`` (or -1) -> None, a positive int -> itself, anything else -> InvalidVersion (42202)."""
    text = str(raw).strip()
    if text.lower() == "latest" or text == "-1":
        return LATEST
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersion(
            f"The specified version '{raw}' is not a valid version id. "
            f'Allowed values are between [1, {_MAX_VERSION}] and the string "latest"'
        )
    return number


class RegistryService:
    def __init__(self, store: SchemaStore, default_compatibility: str = DEFAULT_COMPATIBILITY):
        self.store = store
        self.default_compatibility = compatibility.validate_level(default_compatibility)
        self._write_lock = threading.RLock()

    # -- schemas -------------------------------------------------------------

    def register(
        self,
        subject: str,
        schema: str,
        schema_type: str = AVRO,
        references: list | None = None,
        normalize: bool = False,
    ) -> SchemaVersion:
        """Register ``schema`` under ``subject``; the new or existing version (IncompatibleSchema, 409)."""
        parsed = self._parse(schema, schema_type, references, normalize)
        with self._write_lock:
            state = self.store.state()
            live = state.subject_versions(subject)
            for sv in reversed(live):
                if schema_forms.identity_of(sv.schema, sv.schema_type) == parsed.identity:
                    return sv
            level = self._level(state, subject)
            reasons = compatibility.check(parsed.parsed, self._parsed_versions(live), level)
            if reasons:
                raise IncompatibleSchema(
                    f'Schema being registered is incompatible with an earlier schema for subject "{subject}" '
                    f"(compatibility {level}), details: [{'; '.join(reasons)}]",
                    reasons,
                )
            same = self._find_identity(state, parsed.identity)
            every = state.subject_versions(subject, deleted=True)
            record = SchemaVersion(
                subject=subject,
                version=(every[-1].version + 1) if every else 1,
                id=same.id if same else state.max_id + 1,
                schema=same.schema if same else parsed.text,
                schema_type=same.schema_type if same else (schema_type or AVRO).upper(),
            )
            self.store.put_schema(record)
        log.info("registered subject=%s version=%d id=%d", record.subject, record.version, record.id)
        return record

    def lookup(
        self,
        subject: str,
        schema: str,
        schema_type: str = AVRO,
        references: list | None = None,
        normalize: bool = False,
        deleted: bool = False,
    ) -> SchemaVersion:
        """The newest version of ``subject`` holding ``schema`` (SchemaNotFound, 40403, if none)."""
        parsed = self._parse(schema, schema_type, references, normalize)
        versions = self._existing(self.store.state(), subject, deleted)
        for sv in reversed(versions):
            if schema_forms.identity_of(sv.schema, sv.schema_type) == parsed.identity:
                return sv
        raise SchemaNotFound("Schema not found")

    def schema_by_id(self, schema_id: int) -> SchemaVersion:
        found = self.store.state().by_id(schema_id)
        if found is None:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return found

    def id_versions(self, schema_id: int, deleted: bool = False) -> list[SchemaVersion]:
        """Every (subject, version) holding ``schema_id``, live ones unless ``deleted``."""
        state = self.store.state()
        if state.by_id(schema_id) is None:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return [sv for sv in state.all_versions() if sv.id == schema_id and (deleted or not sv.deleted)]

    def subjects(self, deleted: bool = False, deleted_only: bool = False, prefix: str | None = None) -> list[str]:
        state = self.store.state()
        out = []
        for subject in sorted(state.versions):
            has_live = bool(state.subject_versions(subject))
            if deleted_only:
                keep = not has_live
            else:
                keep = has_live or deleted
            if keep and subject.startswith(prefix or ""):
                out.append(subject)
        return out

    def versions(self, subject: str, deleted: bool = False, deleted_only: bool = False) -> list[int]:
        found = self._existing(self.store.state(), subject, deleted or deleted_only)
        return [sv.version for sv in found if sv.deleted or not deleted_only]

    def get_version(self, subject: str, version: object = "latest", deleted: bool = False) -> SchemaVersion:
        """One version; ``latest`` is the newest visible one (soft-deleted ones only with ``deleted``)."""
        number = parse_version(version)
        found = self._existing(self.store.state(), subject, deleted)
        if number is LATEST:
            return found[-1]
        for sv in found:
            if sv.version == number:
                return sv
        raise VersionNotFound(f"Version {number} not found.")

    # -- deletes -------------------------------------------------------------

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        """Soft delete every live version, or (``permanent``) drop the soft-deleted ones."""
        with self._write_lock:
            state = self.store.state()
            every = state.subject_versions(subject, deleted=True)
            live = [sv for sv in every if not sv.deleted]
            if not every:
                raise SubjectNotFound(f"Subject '{subject}' not found.")
            if permanent:
                if live:
                    raise SubjectNotSoftDeleted(
                        f"Subject '{subject}' was not deleted first before being permanently deleted"
                    )
                for sv in every:
                    self.store.delete_schema(subject, sv.version)
                done = [sv.version for sv in every]
            else:
                if not live:
                    raise SubjectSoftDeleted(
                        f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"
                    )
                for sv in live:
                    self.store.put_schema(sv.soft_deleted())
                if subject in state.configs:
                    self.store.put_config(subject, None)
                done = [sv.version for sv in live]
        log.info("deleted subject=%s versions=%s permanent=%s", subject, done, permanent)
        return done

    def delete_version(self, subject: str, version: object, permanent: bool = False) -> int:
        """Soft delete one live version, or (``permanent``) drop one soft-deleted version."""
        number = parse_version(version)
        with self._write_lock:
            sv = self.get_version(subject, version, deleted=number is not LATEST)
            if permanent:
                if not sv.deleted:
                    raise VersionNotSoftDeleted(
                        f"Version {sv.version} not deleted first before being permanently deleted"
                    )
                self.store.delete_schema(subject, sv.version)
            else:
                if sv.deleted:
                    raise VersionSoftDeleted(
                        f"Version {sv.version} was soft deleted.Set permanent=true to delete permanently"
                    )
                self.store.put_schema(sv.soft_deleted())
        log.info("deleted subject=%s version=%d permanent=%s", subject, sv.version, permanent)
        return sv.version

    # -- compatibility and config --------------------------------------------

    def check_compatibility(
        self,
        subject: str,
        schema: str,
        version: object | None = "latest",
        schema_type: str = AVRO,
        references: list | None = None,
        normalize: bool = False,
    ) -> list[str]:
        """Reasons ``schema`` is incompatible (empty: compatible).

        With a version, only that version is checked (at the subject's level,
        as Confluent does); with ``version=None`` every version the level asks for.
        An empty subject accepts anything.
        """
        parsed = self._parse(schema, schema_type, references, normalize)
        state = self.store.state()
        level = self._level(state, subject)
        if version is None:
            targets = state.subject_versions(subject)
        else:
            number = parse_version(version)
            if number is LATEST:
                targets = state.subject_versions(subject)[-1:]
            else:
                targets = [self.get_version(subject, number)]
            level = level.replace("_TRANSITIVE", "")
        return compatibility.check(parsed.parsed, self._parsed_versions(targets), level)

    def get_config(self, subject: str | None = None, default_to_global: bool = False) -> str:
        configs = self.store.state().configs
        if subject is None:
            return configs.get(None, self.default_compatibility)
        if subject in configs:
            return configs[subject]
        if default_to_global:
            return configs.get(None, self.default_compatibility)
        raise SubjectConfigNotFound(f"Subject '{subject}' does not have subject-level compatibility configured")

    def set_config(self, subject: str | None, level: object) -> str:
        level = compatibility.validate_level(level)
        with self._write_lock:
            self.store.put_config(subject, level)
        log.info("compatibility subject=%s level=%s", subject or "(global)", level)
        return level

    def delete_config(self, subject: str | None) -> str:
        """Remove a subject's (or the global) level; returns the level that was in force."""
        with self._write_lock:
            previous = self.get_config(subject)
            self.store.put_config(subject, None)
        return previous

    # -- helpers -------------------------------------------------------------

    def _level(self, state: RegistryState, subject: str) -> str:
        return state.configs.get(subject) or state.configs.get(None) or self.default_compatibility

    @staticmethod
    def _parse(schema: str, schema_type: str, references: list | None, normalize: bool):
        if references:
            raise InvalidSchema("Schema references are not supported by this registry")
        return schema_forms.parse(schema, (schema_type or AVRO).upper(), bool(normalize))

    @staticmethod
    def _existing(state: RegistryState, subject: str, deleted: bool) -> list[SchemaVersion]:
        found = state.subject_versions(subject, deleted=deleted)
        if not found:
            raise SubjectNotFound(f"Subject '{subject}' not found.")
        return found

    @staticmethod
    def _find_identity(state: RegistryState, identity: str) -> SchemaVersion | None:
        for sv in state.all_versions():
            if schema_forms.identity_of(sv.schema, sv.schema_type) == identity:
                return sv
        return None

    @staticmethod
    def _parsed_versions(versions: list[SchemaVersion]) -> list:
        out = []
        for sv in versions:
            try:
                out.append((sv.version, schema_forms.parse(sv.schema, sv.schema_type).parsed))
            except InvalidSchema:
                log.warning("subject=%s version=%d is not a parseable schema; not checked", sv.subject, sv.version)
        return out
