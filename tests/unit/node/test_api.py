"""The HTTP API of a real single-validator node (it commits alone: quorum of 1)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import trio

from cli.node import Node, NodeConfig
from cli.node._api import build_app
from cli.node._config import ApiSection
from cli.node._devnet import create_devnet
from ledger import ConsensusParams, Home, read_key_file
from ledger._proof import verify_bundle
from tests.node_helpers import commission_tx, signed_txs

FAST = ConsensusParams(timeout_ms=1000, max_block_txs=500, block_interval_ms=50)


def with_node(tmp_path: Path, body: Callable[[Node, httpx.AsyncClient, Any], Awaitable[None]],
              *, api: ApiSection | None = None) -> None:
    cfg = NodeConfig.for_testing()
    if api is not None:
        cfg = cfg.with_(api=api)
    net = create_devnet(tmp_path / "net", nodes=1, consensus=FAST, config=cfg)
    home = Home.at(net.nodes[0].home)
    node = Node.open(home, NodeConfig.load(home.config_path))
    key = read_key_file(net.nodes[0].org_key)

    async def main() -> None:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(node.run)
                try:
                    async with httpx.AsyncClient(base_url=node.api_url or "") as client:
                        await body(node, client, key)
                finally:
                    node.stop()
    try:
        trio.run(main)
    finally:
        node.close()


def test_Api_submit_status_block_proof_nonce(tmp_path: Path) -> None:
    async def body(node: Node, c: httpx.AsyncClient, key: Any) -> None:
        chain = node.genesis.chain_id
        txs = signed_txs(key, chain, 3)
        r = await c.post("/v1/txs", json={"tx": txs[0].encode().hex()})
        assert r.status_code == 202 and r.json()["status"] == "pending"
        r = await c.post("/v1/txs", content=b"".join([b"\x92", *(
            b"\xc5" + len(t.encode()).to_bytes(2, "big") + t.encode() for t in txs[1:])]),
            headers={"content-type": "application/msgpack"})
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 2
        # the batch's two are pending until a commit, which needs this task to yield first
        fill = r.json()["mempool"]
        assert fill["max_txs"] == node.mempool.max_txs and fill["size"] in (2, 3), fill
        r = await c.get(f"/v1/nonce/{key.public.hex()}")
        assert r.json()["next_nonce"] == 3  # counts the pending ones
        r = await c.get(f"/v1/txs/{txs[2].tx_id.hex()}", params={"wait_ms": 20000})
        st = r.json()
        assert st["status"] == "committed", st
        r = await c.get(f"/v1/txs/{txs[2].tx_id.hex()}/proof")
        verify_bundle(r.json(), chain_id=chain, validators=node.genesis.validators)
        r = await c.get(f"/v1/blocks/{st['height']}")
        blk = r.json()
        assert txs[2].tx_id.hex() in [t["tx_id"] for t in blk["txs"]]
        assert blk["seal"]["votes"][0]["validator"] == node.node_key.public.hex()
        r = await c.get(f"/v1/blocks/{st['height']}", params={"format": "msgpack"})
        assert r.headers["content-type"] == "application/msgpack"
        r = await c.post("/v1/txs/status", json={"tx_ids": [t.tx_id.hex() for t in txs]})
        assert r.json()["counts"] == {"committed": 3}
        # a waiter sees its pending transactions through to their commit
        later = signed_txs(key, chain, 2, first_nonce=3)
        r = await c.post("/v1/txs", json={"txs": [t.encode().hex() for t in later]})
        assert r.json()["accepted"] == 2
        r = await c.post("/v1/txs/status", json={"tx_ids": [t.tx_id.hex() for t in later],
                                                 "wait_ms": 20000})
        assert r.json()["counts"] == {"committed": 2}, r.text
        # the state machine refuses the second commissioning of one part: the proposer leaves
        # it out of the block and its status says why
        first, second = commission_tx(key, chain, 5, "dup"), commission_tx(key, chain, 6, "dup")
        r = await c.post("/v1/txs", json={"txs": [first.encode().hex(), second.encode().hex()]})
        assert r.json()["accepted"] == 2
        r = await c.get(f"/v1/txs/{second.tx_id.hex()}", params={"wait_ms": 20000})
        rej = r.json()
        assert rej["status"] == "rejected" and rej["code"] and rej["reason"], rej
        r = await c.get(f"/v1/txs/{first.tx_id.hex()}", params={"wait_ms": 20000})
        assert r.json()["status"] == "committed"
        # raw state, paged (what `RemoteReader` uses): the signer's nonce key
        r = await c.get("/v1/state/" + (b"nonce/" + key.public).hex())
        assert r.json()["value"] is not None
        r = await c.get("/v1/state", params={"prefix": "", "limit": 2})
        page = r.json()
        assert len(page["items"]) == 2 and page["next"] == page["items"][1][0]
        r = await c.get("/v1/state", params={"prefix": "", "limit": 2, "after": page["next"]})
        assert r.json()["items"][0][0] > page["next"]
        st = (await c.get("/v1/status")).json()
        assert st["height"] >= 1 and st["role"] == "validator" and st["peers"] == 0
        assert st["tip_hash"] and st["state_root"] and st["validators"]

    with_node(tmp_path, body)


def test_Api_rejects_bad_requests_with_reasons(tmp_path: Path) -> None:
    async def body(node: Node, c: httpx.AsyncClient, key: Any) -> None:
        chain = node.genesis.chain_id
        cases = [
            (await c.post("/v1/txs", content=b"{not json"), 400, "bad_json"),
            (await c.post("/v1/txs", json={"nope": 1}), 400, "bad_body"),
            (await c.post("/v1/txs", json={"tx": "zz"}), 400, "bad_hex"),
            (await c.post("/v1/txs", json={"tx": "c0"}), 400, None),
            (await c.post("/v1/txs", content=b"x" * (node.config.api.max_body_bytes + 1)),
             413, "body_too_large"),
            (await c.get("/v1/txs/abcd"), 400, "bad_hex"),
            (await c.get("/v1/txs/" + "00" * 32), 404, "not_found"),
            (await c.get("/v1/blocks/999999"), 404, "not_found"),
            (await c.get("/v1/blocks/x1"), 400, "bad_height"),
            (await c.get("/v1/blocks/" + "7" * 40), 400, "bad_height"),  # found by fuzzing
            (await c.get("/v1/blocks/9223372036854775808"), 400, "bad_height"),
            (await c.get("/v1/blocks/\u00b2"), 400, "bad_height"),  # a digit, not ASCII
            (await c.get("/v1/parts"), 400, "missing_id"),
            (await c.get("/v1/txs/" + "00" * 32, params={"wait_ms": "soon"}), 400, "bad_param"),
            (await c.get("/v1/blocks", params={"limit": "-1"}), 400, "bad_param"),
            (await c.get("/v1/blocks", params={"limit": "\u00b2"}), 400, "bad_param"),
            (await c.get("/v1/no-such-thing"), 404, "no_route"),
            (await c.delete("/v1/txs"), 405, "method_not_allowed"),
        ]
        for r, status, code in cases:
            assert r.status_code == status, (r.request.url, r.text)
            if code is not None:
                assert r.json()["code"] == code, r.text
        bad_sig = dataclasses.replace(commission_tx(key, chain, 0, "s"), sig=b"\x01" * 64,
                                      raw=b"")
        r = await c.post("/v1/txs", json={"tx": bad_sig.encode().hex()})
        assert r.status_code == 400 and r.json()["code"] == "bad_signature"
        r = await c.get(f"/v1/txs/{bad_sig.tx_id.hex()}")
        assert r.json()["status"] == "rejected"
        r = await c.get("/v1/parts/urn:epc:id:sgtin:4012345.077777.nothing")
        assert r.status_code == 404 or r.status_code == 400
        spec = (await c.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.") and "/v1/txs" in spec["paths"]
        text = (await c.get("/metrics")).text
        assert "partledger_height " in text and "partledger_mempool_txs " in text
        assert "partledger_p2p_malformed_frames" in text
        assert "partledger_store_compaction_seconds_total" in text
        kf = re.search(r"^partledger_store_key_filter_keys (\S+)$", text, re.M)
        assert kf is not None and float(kf.group(1)) > 0  # the node's store is writable

    with_node(tmp_path, body)


def test_Api_write_endpoints_need_a_token_beyond_loopback(tmp_path: Path) -> None:
    async def body(node: Node, c: httpx.AsyncClient, key: Any) -> None:
        # The same node's app, configured as if it listened on a LAN address.
        cfg = node.config.with_(api=ApiSection(listen="192.0.2.10:8001",
                                               tokens={"acme": "t" * 24}))
        lan = dataclasses.replace(node.config, api=cfg.api)
        node.config = lan
        app = build_app(node)
        tx = commission_tx(key, node.genesis.chain_id, 0, "tok")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://lan") as lc:
            r = await lc.post("/v1/txs", json={"tx": tx.encode().hex()})
            assert r.status_code == 401 and r.json()["code"] == "token_required"
            r = await lc.post("/v1/txs", json={"tx": tx.encode().hex()},
                              headers={"authorization": "Bearer " + "x" * 24})
            assert r.status_code == 403 and r.json()["code"] == "bad_token"
            r = await lc.get("/v1/status")
            assert r.status_code == 200  # reading needs no token
            r = await lc.post("/v1/txs", json={"tx": tx.encode().hex()},
                              headers={"authorization": "Bearer " + "t" * 24})
            assert r.status_code == 202, r.text

    with_node(tmp_path, body)
