"""A read-only view of a running node's state over its HTTP API.

`RemoteReader(url)` has the reader interface of the provenance queries (`get(key)`,
`iter_prefix(prefix)`), backed by `GET /v1/state/{key}` and `GET /v1/state?prefix=`, so a query
function can run on the caller's machine against a live node. Each `get` is one request: for
whole traces prefer the node's own query endpoints (`/v1/trace/...`), which run next to the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from ledger.errors import StoreError

PAGE = 1000


class RemoteReader:
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            r = self._client.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the node at {self.url}: {exc}",
                             code="node_unreachable") from exc
        if r.status_code != 200:
            raise StoreError(f"the node at {self.url} answered {r.status_code}: {r.text[:200]}",
                             code="node_error")
        return r.json()

    def get(self, key: bytes) -> bytes | None:
        v = self._get_json(f"/v1/state/{key.hex()}")["value"]
        return None if v is None else bytes.fromhex(v)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"prefix": prefix.hex(), "limit": PAGE}
            if after is not None:
                params["after"] = after
            doc = self._get_json("/v1/state", params)
            for k, v in doc["items"]:
                yield bytes.fromhex(k), bytes.fromhex(v)
            after = doc["next"]
            if after is None:
                return

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
