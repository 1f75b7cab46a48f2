"""A small synchronous client of a node's HTTP API, for commands that write through a node
(`epcis import --node`, the demo, benchmarks): sign with the member's key, submit in batches,
and wait until every transaction is committed or rejected.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from ledger import SigningKey, Transaction
from ledger.errors import PartledgerError

MAX_BATCH = 500


class NodeError(PartledgerError):
    code = "node"


class NodeClient:
    """One node's API. Errors come back as `NodeError` with the node's code and reason."""

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s)
        self._chain: bytes | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, f"{self.url}{path}", **kw)
        except httpx.HTTPError as exc:
            raise NodeError(f"cannot reach the node at {self.url}: {exc}",
                            code="unreachable") from exc

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """A JSON answer; a 4xx/5xx becomes `NodeError` with the node's code and reason (a batch
        submission whose every transaction was refused still returns its per-tx results)."""
        r = self._send(method, path, **kw)
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if r.status_code >= 400 and not (r.status_code == 400 and isinstance(doc, dict)
                                         and ("results" in doc or "accepted" in doc)):
            reason = doc.get("error") if isinstance(doc, dict) else r.text[:200]
            code = doc.get("code") if isinstance(doc, dict) else "http_error"
            raise NodeError(f"the node answered {r.status_code}: {reason}", code=str(code))
        return doc

    def request_raw(self, method: str, path: str, **kw: Any) -> bytes:
        """Like `request`, for answers in bytes (e.g. canonical msgpack)."""
        r = self._send(method, path, **kw)
        if r.status_code >= 400:
            raise NodeError(f"the node answered {r.status_code}: {r.text[:200]}",
                            code="http_error")
        return r.content

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.request("GET", "/v1/status")
        return doc

    @property
    def chain_id(self) -> bytes:
        if self._chain is None:
            self._chain = bytes.fromhex(self.status()["chain_id"])
        return self._chain

    def next_nonce(self, signer: bytes) -> int:
        return int(self.request("GET", f"/v1/nonce/{signer.hex()}")["next_nonce"])

    def sign(self, key: SigningKey, items: Sequence[tuple[str, dict[str, Any]]]
             ) -> list[Transaction]:
        """Sign (kind, body) items with consecutive nonces from the node's next nonce."""
        nonce = self.next_nonce(key.public)
        return [Transaction.create(key, chain=self.chain_id, kind=kind, body=body,
                                   nonce=nonce + i) for i, (kind, body) in enumerate(items)]

    def submit(self, txs: Sequence[Transaction]) -> list[dict[str, Any]]:
        """Submit in batches; one result per transaction (accepted into the mempool or not)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(txs), MAX_BATCH):
            chunk = txs[i:i + MAX_BATCH]
            doc = self.request("POST", "/v1/txs", json={"txs": [t.encode().hex() for t in chunk]})
            out.extend(doc.get("results", [doc]))
        return out

    def wait(self, tx_ids: Sequence[bytes], *, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Statuses once every transaction is committed or rejected (or the time is up)."""
        deadline = time.monotonic() + timeout_s
        ids = [t.hex() for t in tx_ids]
        while True:
            remaining_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
            statuses: list[dict[str, Any]] = []
            for i in range(0, len(ids), 10 * MAX_BATCH):
                doc = self.request("POST", "/v1/txs/status",
                                   json={"tx_ids": ids[i:i + 10 * MAX_BATCH],
                                         "wait_ms": min(remaining_ms, 10_000)},
                                   timeout=timeout_s + 10)
                statuses.extend(doc["statuses"])
            done = all(s["status"] in ("committed", "rejected") for s in statuses)
            if done or remaining_ms == 0:
                return statuses

    def submit_and_wait(self, txs: Sequence[Transaction], *, timeout_s: float = 60.0
                        ) -> list[dict[str, Any]]:
        accepted = self.submit(txs)
        pending = [t.tx_id for t, r in zip(txs, accepted, strict=True) if r["accepted"]]
        final = {s["tx_id"]: s for s in self.wait(pending, timeout_s=timeout_s)} if pending else {}
        return [final.get(t.tx_id.hex(), r) for t, r in zip(txs, accepted, strict=True)]
