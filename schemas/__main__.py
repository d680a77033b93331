"""Maintenance commands for the event contracts.

    python -m touchstream.schemas --lock [--force]   add new .avsc files to schemas/schemas.lock
    python -m touchstream.schemas --check            exit 1 if the lock and the files disagree
    python -m touchstream.schemas --markdown         print the event catalogue (docs/events.md)

The lock (``schemas.lock``) maps each event, common and derived ``.avsc`` file (path relative
to ``schemas/``) to the sha256 of its bytes: derived records are published contracts too. A
published schema is never edited: a change is a new ``v<N+1>`` file. ``--lock`` therefore only
adds files; it refuses to rewrite the hash of a changed or deleted file unless ``--force`` is
given (only for a file that was never published, e.g. still on a branch). ``--markdown`` also
lists the derived records, under "Derived topics".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from touchstream.schemas import (
    COMMON_DIR,
    DERIVED_DIR,
    SCHEMA_DIR,
    common_types,
    event_files,
    load_all,
    load_derived_versions,
)
from touchstream.topics import raw_topic

LOCK_PATH = SCHEMA_DIR / "schemas.lock"
LOCK_COMMAND = "python -m touchstream.schemas --lock"
MARKDOWN_COMMAND = "python -m touchstream.schemas --markdown > docs/events.md"


# --------------------------------------------------------------------------- lock


def schema_files() -> list[Path]:
    """Every file the lock guards: common types, every version of every event and of every derived record."""
    return sorted(COMMON_DIR.glob("*.avsc")) + event_files() + sorted(DERIVED_DIR.glob("*.avsc"))


def _rel(path: Path) -> str:
    return path.relative_to(SCHEMA_DIR).as_posix()


def current_hashes() -> dict[str, str]:
    return {_rel(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in schema_files()}


def read_lock(path: Path = LOCK_PATH) -> dict[str, str]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def lock_diff(lock: dict[str, str], current: dict[str, str]) -> dict[str, list[str]]:
    """Files ``changed`` since locked, ``unlocked`` (not in the lock yet), ``deleted`` (locked, gone)."""
    return {
        "changed": sorted(k for k in current if k in lock and lock[k] != current[k]),
        "unlocked": sorted(k for k in current if k not in lock),
        "deleted": sorted(k for k in lock if k not in current),
    }


def render_lock(hashes: dict[str, str]) -> str:
    return json.dumps(dict(sorted(hashes.items())), indent=2) + "\n"


def update_lock(force: bool = False, path: Path = LOCK_PATH) -> int:
    lock, current = read_lock(path), current_hashes()
    diff = lock_diff(lock, current)
    if (diff["changed"] or diff["deleted"]) and not force:
        for name in diff["changed"]:
            print(f"{name}: edited after it was locked; restore it and add a new version file", file=sys.stderr)
        for name in diff["deleted"]:
            print(f"{name}: locked but deleted; a published schema stays", file=sys.stderr)
        print("nothing written (use --force only for schemas that were never published)", file=sys.stderr)
        return 1
    new = dict(current) if force else {**lock, **{k: current[k] for k in diff["unlocked"]}}
    path.write_text(render_lock(new))
    for name in diff["unlocked"]:
        print(f"locked {name}")
    return 0


def check_lock(path: Path = LOCK_PATH) -> int:
    diff = lock_diff(read_lock(path), current_hashes())
    for kind, names in diff.items():
        for name in names:
            print(f"{name}: {kind}", file=sys.stderr)
    return 1 if any(diff.values()) else 0


# --------------------------------------------------------------------------- markdown


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def type_str(t) -> str:
    """Compact type notation: ``string?`` optional, ``array<OrderLine>``, ``timestamp``, ``Money``."""
    if isinstance(t, str):
        return _short(t)
    if isinstance(t, list):
        parts = [type_str(x) for x in t if x != "null"]
        return " | ".join(parts) + ("?" if "null" in t else "")
    logical = t.get("logicalType")
    if logical == "timestamp-millis":
        return "timestamp"
    if logical == "date":
        return "date"
    if logical == "decimal":
        return f"decimal({t['precision']},{t.get('scale', 0)})"
    kind = t["type"]
    if kind in ("record", "enum", "fixed", "error"):
        return t["name"]
    if kind == "array":
        return f"array<{type_str(t['items'])}>"
    if kind == "map":
        return f"map<{type_str(t['values'])}>"
    return type_str(kind)


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _inner(t):
    """The named definition under unions and arrays, if any (to list enum symbols / nested fields)."""
    if isinstance(t, list):
        found = [_inner(x) for x in t if x != "null"]
        return found[0] if len(found) == 1 else None
    if isinstance(t, dict):
        if t.get("type") == "array":
            return _inner(t["items"])
        if t.get("type") == "map":
            return _inner(t["values"])
        if t.get("type") in ("record", "enum"):
            return t
    return None


def _field_table(fields: list[dict]) -> list[str]:
    return ["| field | type | pii | doc |", "| --- | --- | --- | --- |", *_field_rows(fields)]


def _details(title: str, schema: dict, where: str, fields: list[dict]) -> list[str]:
    """One schema's section: heading, doc, where it lives, its field table."""
    return [f"### {title}", "", _cell(schema.get("doc", "")), "", where, "", *_field_table(fields), ""]


def _field_rows(fields: list[dict], prefix: str = "") -> list[str]:
    rows = []
    for fld in fields:
        inner = _inner(fld["type"])
        common = inner is not None and inner.get("namespace", "").startswith("touchstream.common")
        doc = fld.get("doc", "")
        if inner is not None and inner["type"] == "enum" and not common:
            symbols = ", ".join(f"`{s}`" for s in inner["symbols"])
            doc = f"{doc} {inner.get('doc', '')} One of {symbols} (default `{inner['default']}`)."
        pii = "yes" if fld.get("pii") else ""
        rows.append(f"| `{prefix}{fld['name']}` | `{_cell(type_str(fld['type']))}` | {pii} | {_cell(doc)} |")
        if inner is not None and inner["type"] == "record" and not common:
            container = fld["type"].get("type") if isinstance(fld["type"], dict) else None
            mark = {"array": "[]", "map": "{}"}.get(container, "")
            rows += _field_rows(inner["fields"], f"{prefix}{fld['name']}{mark}.")
    return rows


def render_markdown() -> str:
    schemas = load_all()
    named = common_types()
    out = [
        "# Event catalogue",
        "",
        f"Generated from the `.avsc` files under `schemas/` by `{MARKDOWN_COMMAND}`.",
        "Do not edit by hand: `tests/unit/test_schemas.py` fails when this file and the schemas disagree.",
        "",
        "Every event is an Avro record (namespace `touchstream.<domain>`) whose first field is `envelope`",
        "(`touchstream.common.Envelope`, below). The registry subject is the record's full name, and all",
        "event types of a domain share the raw topic `touchstream.raw.<domain>`. `channels`, `contents` and",
        "`initiated_by` list the envelope values the event may carry.",
        "",
        "Conventions: `T?` is optional (`[\"null\", T]`, default null); `timestamp` is UTC timestamp-millis;",
        "`date` is an Avro date; money is `Money` (exact decimal and ISO 4217 currency, never a float); every",
        "enum has a default symbol (`unknown`) so new symbols can be added; fields marked pii are personal",
        "data (never logged, masked for analysts without the PII scope).",
        "",
        "`initiated_by` is the side that started the conversation an event belongs to, not the sender of",
        "one message: a company reply to a customer's e-mail is `email.sent` with `initiated_by: customer`",
        "(it is not contact pressure), a customer's answer to a campaign mail is `email.received` with",
        "`initiated_by: company` (a response to a company message).",
        "",
        *_responses_markdown(),
        "",
        "## Shared types",
        "",
    ]
    for full in ("touchstream.common.Envelope", "touchstream.common.IdentityHints", "touchstream.common.Money"):
        body = named[full]
        out += [f"### `{_short(full)}`", "", _cell(body.get("doc", "")), "", *_field_table(body["fields"]), ""]
    for full in ("touchstream.common.Channel", "touchstream.common.Content", "touchstream.common.Initiator"):
        body = named[full]
        symbols = ", ".join(f"`{s}`" for s in body["symbols"])
        out += [f"- `{_short(full)}`: {symbols} (default `{body['default']}`). {_cell(body.get('doc', ''))}"]
    out += [
        "",
        f"## All event types ({len(schemas)})",
        "",
        "| event_type | v | subject | topic | channels | contents | initiated_by | fields |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in schemas:
        meta = s.meta
        fields = "<br>".join(
            f"`{f['name']}`: `{_cell(type_str(f['type']))}`{' (pii)' if f.get('pii') else ''}"
            for f in s.schema["fields"][1:]
        )
        out.append(
            f"| `{s.event_type}` | {s.version} | `{s.subject}` | `{raw_topic(s.domain)}` "
            f"| {', '.join(meta['channels'])} | {', '.join(meta['contents'])} "
            f"| {', '.join(meta['initiated_by'])} | {fields} |"
        )
    out += ["", "## Event details", ""]
    for s in schemas:
        where = f"Subject `{s.subject}`, topic `{raw_topic(s.domain)}`, file `schemas/{_rel(s.path)}`."
        out += _details(f"`{s.event_type}` v{s.version}", s.schema, where, s.schema["fields"][1:])
    out += _derived_markdown()
    return "\n".join(out).rstrip("\n") + "\n"


def _responses_markdown() -> list[str]:
    """Which events answer a complaint's customer, listed from the fold's own rule so the two cannot drift."""
    from touchstream.projections.complaint_case_events import RESPONSE_TYPES
    from touchstream.projections.complaint_case_metrics import RESPONSE_STEPS
    touches = ", ".join(f"`{t}`" for t in sorted(RESPONSE_TYPES))
    steps = ", ".join(f"`complaint.{k}`" for k in sorted(RESPONSE_STEPS))
    return [
        "What answers a complaint's customer (its first response, the next response to a contact, a periodic",
        "update; `complaint_case_events.answers`): a completed company contact on any channel. That is an event",
        f"threaded to the case (`envelope.correlation_id` = case id) among {touches}; an agent's",
        "`web.chat_message_sent` (`sender: agent`); a `phone.call_ended` with `outcome: completed` and",
        f"`talk_seconds` > 0, in either direction; {steps}; and a `phone.callback_made` with",
        "`reached: true`. A call that ended otherwise (no answer, voicemail, abandoned, no talk time) answers nobody.",
    ]


def _derived_markdown() -> list[str]:
    """The "Derived topics" section: records the processors publish, with their topic and key."""
    derived = load_derived_versions()
    out = [
        f"## Derived topics ({len(derived)})",
        "",
        "Records Touchstream's processors publish (files under `schemas/derived/`, namespace",
        "`touchstream.derived`): not interaction events, so most carry no envelope (`complaint_sla_event`,",
        "an event about a complaint case, carries the common one). They are published contracts like the",
        "events (locked, registered under the record's full name, changed only by a new `v<N+1>` file).",
        "Records nested in a record are listed once, under the first field that defines them; a later field",
        "names them by type.",
        "",
        "| record | v | subject | topic | key |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [f"| `{d.name}` | {d.version} | `{d.subject}` | `{d.topic}` | {_cell(d.key)} |" for d in derived]
    out.append("")
    for d in derived:
        where = f"Subject `{d.subject}`, topic `{d.topic}`, key: {_cell(d.key)}. File `schemas/{_rel(d.path)}`."
        out += _details(f"`{d.name}` v{d.version}", d.schema, where, d.schema["fields"])
    return out


# --------------------------------------------------------------------------- cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m touchstream.schemas", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--lock", action="store_true", help="add new schema files to schemas.lock")
    action.add_argument("--check", action="store_true", help="exit 1 if schemas.lock and the files disagree")
    action.add_argument("--markdown", action="store_true", help="print the event catalogue as Markdown")
    parser.add_argument("--force", action="store_true",
                        help="with --lock: also rewrite hashes of changed/deleted files (unpublished schemas only)")
    args = parser.parse_args(argv)
    if args.lock:
        return update_lock(force=args.force)
    if args.check:
        return check_lock()
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
