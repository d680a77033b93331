"""``touchstream.Client``: the Python API of the query service (the same answers as the CLI and HTTP).

Talks HTTP to the serving process, which owns the DuckDB file; a notebook or a
service needs nothing else installed to ask for a 360 or run read-only SQL.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import httpx
import pyarrow as pa

from touchstream.config import Settings


API_KEY_ENV, OPERATOR_KEY_FILE = "TOUCHSTREAM_API_KEY", "operator.key"


def local_key(settings: Settings, env: dict | None = None) -> str | None:
    """The key the CLI and ``Client`` send: ``$TOUCHSTREAM_API_KEY``, else the local operator's key
    (``$TOUCHSTREAM_HOME/operator.key``, written by the serving process at its first start)."""
    explicit = (os.environ if env is None else env).get(API_KEY_ENV)
    if explicit:
        return explicit
    path = settings.home / OPERATOR_KEY_FILE
    return (path.read_text().strip() or None) if path.exists() else None


def auth_headers(settings: Settings, api_key: str | None = None) -> dict[str, str]:
    key = api_key or local_key(settings)
    return {"Authorization": f"Bearer {key}"} if key else {}


class ClientError(RuntimeError):
    """The query service refused the request or could not be reached; the message says which."""


class Client:
    def __init__(self, url: str | None = None, *, api_key: str | None = None, timeout: float = 30.0,
                 http: httpx.Client | None = None):
        """``api_key``: else ``$TOUCHSTREAM_API_KEY``, else the local operator key (``local_key``);
        ``http``: an httpx client to talk through (a test's ``fastapi.testclient.TestClient``)."""
        settings = Settings.from_env()
        self.url = (url or settings.query_url).rstrip("/")
        self._headers = auth_headers(settings, api_key)
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, path: str, params: dict | None = None) -> httpx.Response:
        try:
            return self._http.get(f"{self.url}{path}", headers=self._headers,
                                  params={k: v for k, v in (params or {}).items() if v is not None})
        except httpx.HTTPError as exc:
            raise ClientError(f"query service not reachable at {self.url} ({exc}); is `touchstream up` running?") from None

    def _one(self, collection: str, key: str) -> dict | None:
        response = self._get(f"/{collection}/{quote(key, safe='')}")
        if response.status_code == 404:
            return None
        _raise_for(response)
        return response.json()

    def customer(self, id_or_identifier: str) -> dict | None:
        """The 360 as JSON-ready data, by customer id or any identifier; None if nobody has it."""
        return self._one("customers", id_or_identifier)

    def complaint(self, case_id: str) -> dict | None:
        """One complaint case as JSON-ready data; None if there is no such case."""
        return self._one("complaints", case_id)

    def timeline(self, id_or_identifier: str, *, limit: int = 200, order: str = "desc") -> dict | None:
        """The customer's touchmap: every interaction on any channel (``interactions``), newest first
        unless ``order="asc"``; None if nobody has that id or identifier."""
        response = self._get(f"/customers/{quote(id_or_identifier, safe='')}/timeline",
                             {"limit": limit, "order": order})
        if response.status_code == 404:
            return None
        _raise_for(response)
        return response.json()

    def complaints(self, *, open: bool | None = None, breached: bool | None = None, channel: str | None = None,
                   customer: str | None = None, limit: int = 100) -> list[dict]:
        """Complaint cases, newest first, filtered like ``GET /complaints``."""
        flags = {"open": open, "breached": breached}
        response = self._get("/complaints", {**{k: str(v).lower() for k, v in flags.items() if v is not None},
                                             "channel": channel, "customer": customer, "limit": limit})
        _raise_for(response)
        return response.json()["rows"]

    def kpis(self) -> list[dict]:
        """The KPI views readable by name, with what each answers."""
        response = self._get("/kpis")
        _raise_for(response)
        return response.json()["views"]

    def kpi(self, name: str, *, limit: int = 1000) -> list[dict]:
        response = self._get(f"/kpis/{quote(name, safe='')}", {"limit": limit})
        _raise_for(response)
        return response.json()["rows"]

    def sql(self, sql: str, params: list | None = None, *, max_rows: int = 10_000, timeout: float = 30.0) -> list[dict]:
        """Read-only SQL; rows as dicts (exact decimals and timestamps come back as strings)."""
        result = self._sql(sql, params, max_rows, timeout, "json").json()
        return [dict(zip(result["columns"], row)) for row in result["rows"]]

    def sql_arrow(self, sql: str, params: list | None = None, *, max_rows: int = 1_000_000,
                  timeout: float = 60.0) -> "pa.Table":
        """Read-only SQL as an Arrow table with DuckDB's exact types (decimals, timestamps, lists)."""
        return pa.ipc.open_stream(self._sql(sql, params, max_rows, timeout, "arrow").content).read_all()

    def open_values(self, values: list[str]) -> list[str | None]:
        """Sealed values (``tsenc1:...``) opened by the query service (the key's ``pii`` scope): each one's
        plaintext, or None when the person was erased. At most 1,000 per call."""
        try:
            response = self._http.post(f"{self.url}/privacy/open", json={"values": values}, headers=self._headers)
        except httpx.HTTPError as exc:
            raise ClientError(f"query service not reachable at {self.url} ({exc})") from None
        _raise_for(response)
        return response.json()["values"]

    def _sql(self, sql: str, params, max_rows: int, timeout: float, form: str) -> httpx.Response:
        body = {"sql": sql, "params": params or [], "max_rows": max_rows, "timeout": timeout, "format": form}
        try:
            response = self._http.post(f"{self.url}/sql", json=body, headers=self._headers, timeout=timeout + 10)
        except httpx.HTTPError as exc:
            raise ClientError(f"query service not reachable at {self.url} ({exc})") from None
        _raise_for(response)
        return response


def _raise_for(response: httpx.Response) -> None:
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:500]
        raise ClientError(f"HTTP {response.status_code}: {detail}")
