"""``touchstream.Client``: the Python API of the query service (the same answers as the CLI and HTTP).

Talks HTTP to the serving process, which owns the DuckDB file; a notebook or a
service needs nothing else installed to ask for a 360 or run read-only SQL.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from touchstream.config import Settings


class ClientError(RuntimeError):
    """The query service refused the request or could not be reached; the message says which."""


class Client:
    def __init__(self, url: str | None = None, *, timeout: float = 30.0):
        self.url = (url or Settings.from_env().query_url).rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._http.get(f"{self.url}{path}")
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

    def sql(self, sql: str, params: list | None = None, *, max_rows: int = 10_000, timeout: float = 30.0) -> list[dict]:
        """Read-only SQL; rows as dicts (exact decimals and timestamps come back as strings)."""
        body = {"sql": sql, "params": params or [], "max_rows": max_rows, "timeout": timeout}
        try:
            response = self._http.post(f"{self.url}/sql", json=body, timeout=timeout + 10)
        except httpx.HTTPError as exc:
            raise ClientError(f"query service not reachable at {self.url} ({exc})") from None
        _raise_for(response)
        result = response.json()
        return [dict(zip(result["columns"], row)) for row in result["rows"]]


def _raise_for(response: httpx.Response) -> None:
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:500]
        raise ClientError(f"HTTP {response.status_code}: {detail}")
