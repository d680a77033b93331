"""Read-only analyst SQL, decided on DuckDB's own parse tree, for every caller.

Why a walk and not the statement type: DuckDB calls ``WITH x AS (DELETE FROM t RETURNING *)
SELECT * FROM x`` a SELECT statement and runs the DELETE; ``EXPLAIN ANALYZE`` runs the
statement it explains; ``nextval``/``setval`` advance a sequence even in a transaction that is
rolled back; ``checkpoint()`` writes the file. So a statement is accepted only when it is one
plain SELECT (``json_serialize_sql`` serialises nothing else) whose every query node is a read
(``READ_NODES``: a CTE body may be an INSERT, UPDATE, DELETE or COPY node), whose every table
reference is a known kind and that calls none of ``EFFECTS``; or EXPLAIN, without ANALYZE and
without an option list, of such a SELECT. ``Rules`` layers a caller's own checks (the masked
views for callers without the pii scope) on the same walk, so there is one walk to keep right.
The store also runs the statement in a transaction it rolls back: a write the walk missed
cannot persist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import duckdb


class QueryError(ValueError):
    """Analyst SQL refused or failed; the message is safe to show to the analyst."""


READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
TABLE_REFS = frozenset({"BASE_TABLE", "TABLE_FUNCTION", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT",
                        "SHOW_REF"})
_SEQUENCE, _LOG = "advances a sequence (even when rolled back)", "changes the server's logging or profiling"
_HIDDEN, _MEMORY = "runs SQL or reads a table named in a string the guard cannot check", "reads process memory"
_RESOURCE = "changes the server's registered resources or grammar"
EFFECTS = {   # functions (scalar or table) with an effect outside the statement, refused for every scope
    "nextval": _SEQUENCE, "setval": _SEQUENCE,
    "checkpoint": "writes the database file", "force_checkpoint": "writes the database file",
    "query": _HIDDEN, "query_table": _HIDDEN, "json_execute_serialized_sql": _HIDDEN,
    "enable_logging": _LOG, "disable_logging": _LOG, "truncate_duckdb_logs": _LOG, "write_log": _LOG,
    "enable_profiling": _LOG, "disable_profiling": _LOG,
    "arrow_scan": _MEMORY, "arrow_scan_dumb": _MEMORY, "python_arrow_scan": _MEMORY, "pandas_scan": _MEMORY,
    "python_map_function": _MEMORY,
    "add_grammar_extension": _RESOURCE, "remove_grammar_extension": _RESOURCE,
    "register_external_resource": _RESOURCE, "register_external_resource_type": _RESOURCE,
    "create_external_resource": _RESOURCE, "deregister_external_resource": _RESOURCE,
    "destroy_external_resource": _RESOURCE,
}
STATEMENT_NAMES = {"MULTI": "PIVOT", "MERGE_INTO": "MERGE", "VACUUM": "VACUUM/ANALYZE", "CALL": "CALL/CHECKPOINT",
                   "LOAD": "INSTALL/LOAD"}   # DuckDB's statement types as the analyst wrote them


@dataclass(frozen=True)
class Rules:
    """What a caller may name beyond reading: ``table(ref, ctes)`` and ``function(expr)`` raise to refuse
    (``ctes``: the CTE names bound where the reference stands); ``explain``: whether EXPLAIN is allowed
    (else ``no_explain`` says why); refusals are raised as ``error``."""
    table: Callable[[dict, frozenset], None] | None = None
    function: Callable[[dict], None] | None = None
    explain: bool = True
    no_explain: str = ""
    error: type[QueryError] = QueryError


READ_ONLY = Rules()


def check_read_only(con, sql: str, rules: Rules = READ_ONLY) -> None:
    """Raise ``rules.error`` unless ``sql`` is one read (see the module's docstring) that ``rules`` accept;
    ``con``: a cursor (the statement is parsed there, never run)."""
    try:
        node, explained = select_tree(con, sql)
        walk(node, rules)   # first: its reason is the more precise one
        if explained and not rules.explain:
            raise QueryError(rules.no_explain)
    except QueryError as exc:
        if isinstance(exc, rules.error):
            raise
        raise rules.error(str(exc)) from None


def select_tree(con, sql: str) -> tuple[dict, bool]:
    """The query node of the one SELECT in ``sql`` (for EXPLAIN, of the SELECT it explains), and whether
    it is explained."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc).splitlines()[0]) from None
    if len(statements) != 1:
        raise QueryError(f"send exactly one statement, got {len(statements)}")
    tokens = _tokens(sql)
    words = [w for _, w in tokens]
    try:
        kind = statements[0].type.name
    except ValueError:   # a statement type the Python client has no name for (UPDATE EXTENSIONS)
        kind = " ".join(words[:2]) or "unknown"
    if kind == "EXPLAIN":
        sql = _explained(sql, tokens)
    elif kind != "SELECT":
        raise QueryError(f"read-only endpoint: {_named(kind, words[0])} is not allowed, only SELECT or EXPLAIN")
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        raise QueryError(f"read-only endpoint: only one plain SELECT is allowed ({tree.get('error_message')})")
    if len(tree["statements"]) != 1:
        raise QueryError(f"send exactly one statement, got {len(tree['statements'])}")
    return tree["statements"][0]["node"], kind == "EXPLAIN"


def _named(kind: str, first: str) -> str:
    """The statement as the analyst wrote it (``TRUNCATE``), and as DuckDB parsed it where that differs."""
    shown = STATEMENT_NAMES.get(kind, kind)
    if shown.startswith(first) or first in shown.split("/"):
        return first if first in shown.split("/") else shown
    return f"{first} (parsed as {shown})"


def _tokens(sql: str) -> list[tuple[int, str]]:
    """The statement's first three tokens, comments left out: (offset, text in upper case)."""
    tokens, found = duckdb.tokenize(sql), []
    for n, (start, kind) in enumerate(tokens):
        if kind != duckdb.token_type.comment:
            end = tokens[n + 1][0] if n + 1 < len(tokens) else len(sql)
            found.append((start, sql[start:end].strip().upper()))
            if len(found) == 3:
                break
    return found


def _explained(sql: str, tokens: list[tuple[int, str]]) -> str:
    """The statement after EXPLAIN, which the caller checks as a SELECT of its own. ANALYZE runs it, and
    an option list may ask for that too, so both are refused."""
    words = [w for _, w in tokens]
    if len(words) < 2 or words[0] != "EXPLAIN":
        raise QueryError("read-only endpoint: EXPLAIN must be the statement's first word")
    if words[1] in ("ANALYZE", "ANALYSE"):
        raise QueryError("EXPLAIN ANALYZE runs the statement: not allowed")
    if words[1].startswith("("):
        raise QueryError("read-only endpoint: EXPLAIN options are not allowed (they can ask for ANALYZE)")
    return sql[tokens[1][0]:]


def walk(node, rules: Rules = READ_ONLY, ctes: frozenset = frozenset()) -> None:
    """Check every query node, table reference and function call under ``node`` (a serialised parse tree);
    ``ctes``: the CTE names bound where ``node`` stands (a CTE is bound in the body of its query node and
    in the CTEs after it, not in its own body unless recursive)."""
    if isinstance(node, list):
        for item in node:
            walk(item, rules, ctes)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if "class" in node:   # an expression
        if node["class"] == "FUNCTION":
            name = node.get("function_name", "").lower()
            if name in EFFECTS:
                raise QueryError(f"read-only endpoint: {name}() {EFFECTS[name]}: not allowed")
            if rules.function:
                rules.function(node)
    elif "cte_map" in node or str(kind).endswith("_NODE"):   # a query node
        if kind not in READ_NODES:
            raise QueryError(f"read-only endpoint: {_verb(kind)} inside a query is not allowed")
        scope = set(ctes)
        for entry in node.get("cte_map", {}).get("map", []):
            body = (entry["value"].get("query_node") or {}).get("type")
            if body not in READ_NODES:
                raise QueryError(f"read-only endpoint: {_verb(body)} inside a CTE is not allowed")
            walk(entry["value"], rules, frozenset(scope))
            scope.add(entry["key"].lower())
        rest = {k: v for k, v in node.items() if k != "cte_map"}
        if kind in ("RECURSIVE_CTE_NODE", "CTE_NODE"):   # the recursive part / the child sees the CTE
            walk(rest.pop("right" if kind == "RECURSIVE_CTE_NODE" else "child", None), rules,
                 frozenset(scope | {node["cte_name"].lower()}))
        walk(list(rest.values()), rules, frozenset(scope))
        return
    elif "sample" in node and "alias" in node:   # a table reference: what it holds first, then the caller's rule
        if kind not in TABLE_REFS:
            raise QueryError(f"read-only endpoint: table reference {kind} is not allowed")
        walk(list(node.values()), rules, ctes)
        if rules.table:
            rules.table(node, ctes)
        return
    walk(list(node.values()), rules, ctes)


def _verb(kind) -> str:
    """``DELETE_QUERY_NODE`` as ``DELETE``."""
    return str(kind).removesuffix("_NODE").removesuffix("_QUERY")
