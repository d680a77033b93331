"""PII masked for analysts without the ``pii`` scope: a ``masked`` schema of views, and a guard.

Why a ``masked`` schema and a guard: DuckDB has no grants, and ``SET search_path = 'masked'``
does not hide ``main`` (a name missing from ``masked`` falls back to it). So a caller without
``pii`` may name only views of ``masked`` (``masked_rules``: a layer on the read-only walk of
DuckDB's own parse tree every caller passes, ``sql_guard``; subqueries and CTE scopes included),
and the statement runs on that search path (``run_masked``). Each view has its source's name
and columns; personal values become keyed pseudonyms, ``'pii:' || left(sha256(salt || value), 16)``
with a per-installation salt, so distinct counts and joins still work but a guessed address
cannot be hashed and looked up.

Inventory (``_column`` decides from the catalogue; a JSON column not listed here is NULL):
  interactions          the envelope's pii identity hints (email, phone, cookie_id, device_id,
                        loyalty_card, account_number): pseudonym. ``payload``: the fields the
                        event type's contracts (every version) mark pii, pseudonymised in place;
                        an event type the catalogue does not know: NULL
  customer_360          ``profile``: identifiers[].value, answers[].answer (the Customer360 contract)
  customer_identifiers  ``value``; identity_decisions ``identifiers[].value``: pseudonym
  complaint_cases       ``customer_anchor`` ("kind:value"): kind kept, value pseudonym;
                        ``case_view`` kept (the fold keeps no description, note or reason text)
  complaint_events      ``value`` (raw Avro): NULL, as every BLOB column
  the rest              customer_timeline, customer_channels, contact_findings, the complaint
                        views, dead_letters, interaction_counts: ids, codes, times, amounts
Identifiers of kind customer_id stay readable (the join key, not personal). Left out:
versioned tables (``*_v<N>``, read through the stable views) and bookkeeping (``INTERNAL``).
Not masked: anonymous customer ids (``anon-`` + an HMAC of an identifier keyed with the
installation's ``anon_id.key``: without the key a guess cannot be checked against them).
"""

from __future__ import annotations

import re
import weakref

from touchstream.projections.duckdb_store import DuckDBStore, QueryError
from touchstream.projections.sql_guard import Rules, check_read_only
from touchstream.serving.export_pii import hint_columns, payload_paths, profile_paths

MASKED = "masked"
_REFUSED: "weakref.WeakKeyDictionary[DuckDBStore, frozenset[str]]" = weakref.WeakKeyDictionary()
INTERNAL = frozenset({"sink_offsets", "projection_versions", "complaint_sla_watermark",
                      "complaint_sla_partitions", "complaint_sla_agenda", "complaint_case_hints"})
VERSIONED = re.compile(r"_v\d+$")
ANCHORS = frozenset({"identifier", "anchor", "customer_anchor"})   # "kind:value" strings
SAFE_JSON = frozenset({"case_view"})
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(name: str) -> str:
    """A contract's field name or event type as a SQL string (they never need escaping; checked)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
        raise ValueError(f"unexpected name in a contract: {name!r}")
    return f"'{name}'"


def _pseudo(expr: str, salt: str) -> str:
    return f"('pii:' || left(sha256('{salt}' || ({expr})), 16))"


def _json_leaf(value: str, salt: str) -> str:
    text = f"json_extract_string({value}, '$')"   # a string as itself, an object or array as its JSON text
    return f"to_json({_pseudo(text, salt)})"


def _json_masked(expr: str, tree: dict, salt: str, depth: int = 0) -> str:
    """``expr`` (JSON) with the leaves of ``tree`` (field -> subtree, "*" = every array item) pseudonymised;
    a leaf beside ``kind = 'customer_id'`` is kept. Null or absent pii fields come out absent."""
    if "*" in tree:
        x = f"x{depth}"
        inner = _json_leaf(x, salt) if tree["*"] is None else _json_masked(x, tree["*"], salt, depth + 1)
        return (f"CASE WHEN json_type({expr}) = 'ARRAY' THEN to_json(list_transform("
                f"CAST({expr} AS JSON[]), lambda {x}: {inner})) END")
    fields = []
    for name, sub in sorted(tree.items()):
        value = f"({expr}->{_literal(name)})"
        if sub is None:
            masked = f"CASE WHEN {expr}->>'kind' = 'customer_id' THEN {value} ELSE {_json_leaf(value, salt)} END"
        else:
            masked = f"CASE WHEN json_type({value}) IN ('OBJECT', 'ARRAY') THEN {_json_masked(value, sub, salt, depth)} END"
        fields += [_literal(name), masked]
    return f"json_merge_patch({expr}, json_object({', '.join(fields)}))"


def _tree(paths) -> dict:
    """Paths as nested dicts, a leaf as None (``pii_paths`` never descends into a pii field)."""
    tree: dict = {}
    for path in paths:
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = None
    return tree


def _payload(salt: str) -> str:
    by_type = payload_paths()
    plain = ", ".join(_literal(t) for t, paths in sorted(by_type.items()) if not paths) or "NULL"
    cases = "".join(f" WHEN event_type = {_literal(t)} THEN {_json_masked('payload', _tree(paths), salt)}"
                    for t, paths in sorted(by_type.items()) if paths)
    return f"CASE WHEN event_type IN ({plain}) THEN payload{cases} ELSE NULL END"   # unknown type: NULL


def _column(relation: str, name: str, dtype: str, columns: set[str], salt: str) -> str:
    """The masked view's expression for one column of ``relation`` (see the inventory above)."""
    q = _quote(name)
    if dtype == "BLOB":
        return "NULL::BLOB"
    if name in hint_columns() and dtype == "VARCHAR":
        return _pseudo(q, salt)
    if name in ANCHORS and dtype == "VARCHAR":
        kind, value = f"split_part({q}, ':', 1)", f"substr({q}, strpos({q}, ':') + 1)"
        return (f"CASE WHEN {q} IS NULL OR {kind} = 'customer_id' THEN {q} WHEN strpos({q}, ':') = 0 "
                f"THEN {_pseudo(q, salt)} ELSE {kind} || ':' || {_pseudo(value, salt)} END")
    if relation == "customer_identifiers" and name == "value":
        return f"CASE WHEN kind = 'customer_id' THEN {q} ELSE {_pseudo(q, salt)} END"
    if dtype.replace('"', "") == "STRUCT(kind VARCHAR, value VARCHAR)[]":
        value = "CASE WHEN i.kind = 'customer_id' THEN i.value ELSE " + _pseudo("i.value", salt) + " END"
        return f"list_transform({q}, lambda i: struct_pack(kind := i.kind, \"value\" := {value}))"
    if dtype == "JSON":
        if name == "payload" and "event_type" in columns:
            return _payload(salt)
        if name == "profile":
            return _json_masked(q, _tree(profile_paths()), salt)
        return q if name in SAFE_JSON else "NULL::JSON"
    return q


def install_masked_schema(con, salt: str) -> list[str]:
    """(Re)create schema ``masked``: one view per user-facing relation of ``main``; returns their names.
    Run at every start of the serving process once every sink created its tables (in
    ``store.transaction()``): views are replaced, views whose source is gone are dropped."""
    if not re.fullmatch(r"[0-9a-f]{16,}", salt):
        raise ValueError("the salt must be hex (at least 16 digits), as pii_salt makes it")
    columns: dict[str, list[tuple[str, str]]] = {}
    for relation, name, dtype in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "ORDER BY table_name, ordinal_position").fetchall():
        if relation not in INTERNAL and not VERSIONED.search(relation):
            columns.setdefault(relation, []).append((name, dtype))
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {MASKED}")
    for relation, cols in sorted(columns.items()):
        names = {n for n, _ in cols}
        select = ", ".join(f"{_column(relation, n, t, names, salt)} AS {_quote(n)}" for n, t in cols)
        con.execute(f"CREATE OR REPLACE VIEW {MASKED}.{_quote(relation)} AS SELECT {select} FROM main.{_quote(relation)}")
    for (stale,) in con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
                                "AND schema_name = ?", [MASKED]).fetchall():
        if stale not in columns:
            con.execute(f"DROP VIEW {MASKED}.{_quote(stale)}")
    return sorted(columns)


class MaskedSqlError(QueryError):
    """A statement a caller without the pii scope may not run; the message names what it reached for."""


def check_masked_sql(con, sql: str, macros: frozenset[str] | None = None) -> None:
    """Raise ``MaskedSqlError`` unless ``sql`` is one read (``sql_guard``) of views of ``masked`` only
    (unqualified, or ``masked.x``), CTEs in scope and the allowed table functions.
    ``macros``: ``refused_functions(con)`` computed earlier (it costs ~50 ms: it lists every function)."""
    check_read_only(con, sql, masked_rules(con, refused_functions(con) if macros is None else macros))


def masked_rules(con, macros: frozenset[str]) -> Rules:
    """The masked layer of the read-only walk: which tables, table functions and functions a caller
    without the pii scope may name. No EXPLAIN: the plan would print the views' text, and so the salt."""
    views = {v.lower() for (v,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE database_name = current_database() AND schema_name = ?",
        [MASKED]).fetchall()}

    def refuse(what: str) -> MaskedSqlError:
        return MaskedSqlError(f"{what} is not readable without the pii scope; read the masked views: "
                              f"{', '.join(sorted(views))}")

    def function(node: dict) -> None:
        if node.get("function_name", "").lower() in macros:
            raise refuse(f"function {node['function_name']}")

    def table(node: dict, ctes: frozenset) -> None:
        kind = node.get("type")
        if kind == "BASE_TABLE":
            name, schema, catalog = node["table_name"].lower(), node["schema_name"].lower(), node["catalog_name"]
            shown = ".".join(p for p in (catalog, schema, node["table_name"]) if p)
            if catalog or schema not in ("", MASKED) or name not in (views if schema else views | ctes):
                raise refuse(f"table {shown}")
        elif kind == "TABLE_FUNCTION":
            called = node["function"]
            name = called.get("function_name", "").lower()
            if called.get("schema") or called.get("catalog") or name not in TABLE_FUNCTIONS:
                raise refuse(f"table function {called.get('function_name')}()")
        elif kind == "SHOW_REF" and node.get("query") is None:
            raise refuse(f"SHOW {node.get('table_name')}")

    return Rules(table=table, function=function, explain=False, error=MaskedSqlError,
                 no_explain="without the pii scope only one plain SELECT is allowed: EXPLAIN would print "
                            "the masked views' definitions")


def refused_functions(con) -> frozenset[str]:
    """User functions, and macros that read tables (pg_get_viewdef would print a view: the salt)."""
    return frozenset(f.lower() for (f,) in con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE NOT internal OR (function_type = 'macro' "
        "AND (macro_definition ILIKE '%select%' OR macro_definition ILIKE '%from%'))").fetchall())


def run_masked(store: DuckDBStore, sql: str, params: list | None = None, *, max_rows: int = 10_000,
               timeout: float = 30.0, arrow: bool = False):
    """``store.query`` (or ``query_arrow``) for a caller without the pii scope: the read-only guard with
    the masked rules on top, the statement on a cursor whose search path is ``masked`` (same limits,
    same ``QueryError`` messages)."""
    cur = store.cursor()
    try:
        if store not in _REFUSED:   # functions change only with DDL, which nothing runs after start
            _REFUSED[store] = refused_functions(cur)
        rules = masked_rules(cur, _REFUSED[store])
    finally:
        cur.close()
    run = store.query_arrow if arrow else store.query
    return run(sql, params, max_rows=max_rows, timeout=timeout, search_path=MASKED, rules=rules)
