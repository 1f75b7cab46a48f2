"""Shared helpers for node tests: valid transactions, in-process and multi-process consortia."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ledger import SigningKey, Transaction

if TYPE_CHECKING:
    from cli.node import Node
    from cli.node._devnet import Devnet


def commission_body(serial: str, *, company_prefix: str = "4012345") -> dict[str, Any]:
    """An EPCIS ObjectEvent that commissions one new serialised part (always accepted for a
    member under the default identifier policy, as long as `serial` is new)."""
    iir = "0" + "77".zfill(12 - len(company_prefix))
    epc = f"urn:epc:id:sgtin:{company_prefix}.{iir}.{serial}"
    return {"type": "ObjectEvent", "eventID": f"urn:uuid:{uuid.uuid4()}",
            "eventTime": "2025-03-01T10:00:00.000Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "commissioning", "disposition": "active",
            "epcList": [epc]}


def commission_tx(key: SigningKey, chain: bytes, nonce: int, serial: str) -> Transaction:
    return Transaction.create(key, chain=chain, kind="ObjectEvent", body=commission_body(serial),
                              nonce=nonce)


def signed_txs(key: SigningKey, chain: bytes, n: int, *, first_nonce: int = 0,
               tag: str = "") -> list[Transaction]:
    tag = tag or uuid.uuid4().hex[:8]
    return [commission_tx(key, chain, first_nonce + i, f"{tag}x{i}") for i in range(n)]


def wait_until(pred: Any, *, timeout_s: float, interval_s: float = 0.1,
               what: str = "condition") -> Any:
    """Poll `pred()` until it returns a truthy value; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except (httpx.HTTPError, OSError) as exc:
            last_exc = exc
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


def status(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/status", timeout=5)
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def submit(url: str, txs: list[Transaction]) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/txs", json={"txs": [t.encode().hex() for t in txs]}, timeout=30)
    assert r.status_code in (202, 400), r.text
    doc: dict[str, Any] = r.json()
    return doc


def chunks(xs: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def processes_under(d: Path) -> list[int]:
    """Node processes whose command line names a home under `d`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(d).encode() in cmd and b"start" in cmd:
            found.append(int(proc.name))
    return found


@contextmanager
def devnet_node(tmp_path: Path, *, member: int = 0, timeout_ms: int = 2000,
                max_block_txs: int = 100, block_interval_ms: int = 10
                ) -> Iterator[tuple[Devnet, Node]]:
    """A 4-validator devnet under `tmp_path` and the `Node` of one member, opened (not run)
    for unit tests of the node's logic; closed on exit."""
    from cli.node import Node, NodeConfig
    from cli.node._devnet import create_devnet
    from ledger import ConsensusParams, Home

    net = create_devnet(tmp_path / "net", nodes=4, config=NodeConfig.for_testing(),
                        consensus=ConsensusParams(timeout_ms=timeout_ms,
                                                  max_block_txs=max_block_txs,
                                                  block_interval_ms=block_interval_ms))
    home = Home.at(net.nodes[member].home)
    node = Node.open(home, NodeConfig.load(home.config_path))
    try:
        yield net, node
    finally:
        node.close()
