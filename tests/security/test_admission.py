"""What a real node process refuses through its API, and what it refuses to start with.

A one-validator chain (it commits alone) with a second member that has only the observer role.
Through the HTTP API of the running node: a replayed transaction and another transaction with a
used nonce, a transaction for another chain, an event from an organisation whose role does not
allow it, a transaction signed with a member's *node* key (not an organisation key), and one
that claims another organisation's key are all refused, and none is ever committed. Separately:
the node refuses to start with a passphrase-protected node key (it has no passphrase), and the
test-only byzantine switch is refused outside test mode.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.node._devnet import Devnet, create_devnet, start_node
from ledger import ConsensusParams, SigningKey, Transaction, read_key_file, sha256, write_key_file
from tests.faults._harness import REPO, cleanup, get_status
from tests.node_helpers import commission_tx, wait_until

CONSENSUS = ConsensusParams(timeout_ms=1000, max_block_txs=500, block_interval_ms=50)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = tmp_path_factory.mktemp("security") / "net"
    net = create_devnet(d, nodes=1, observers=1, consensus=CONSENSUS)
    v = net.validators[0]
    net = net.with_pid(v.name, start_node(v.home))
    net.save()
    try:
        wait_until(lambda: (s := get_status(v.api)) is not None and s["height"] >= 1,
                   timeout_s=90, what="block 1")
        yield net
    finally:
        cleanup(d)


def _post(url: str, tx: Transaction) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/txs", json={"tx": tx.encode().hex()}, timeout=30)
    assert r.status_code in (202, 400), r.text
    doc: dict[str, Any] = r.json()
    return doc


def _final(url: str, tx: Transaction) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/txs/status", json={"tx_ids": [tx.tx_id.hex()], "wait_ms": 10_000},
                   timeout=30)
    doc: dict[str, Any] = r.json()["statuses"][0]
    return doc


def _refused(url: str, tx: Transaction) -> str:
    """Refused at admission, or accepted then rejected by the state machine; never committed."""
    first = _post(url, tx)
    if not first["accepted"]:
        return str(first["code"])
    st = _final(url, tx)
    assert st["status"] == "rejected", st
    return str(st["code"])


def test_api_refuses_replays_foreign_chains_wrong_roles_and_wrong_keys(net: Devnet) -> None:
    v, auditor = net.validators[0], next(n for n in net.nodes if n.observer)
    url = v.api
    org = read_key_file(v.org_key)
    nonce = httpx.get(f"{url}/v1/nonce/{org.public.hex()}", timeout=10).json()["next_nonce"]
    tx = commission_tx(org, net.chain_id, nonce, "sec-first")
    assert _post(url, tx)["accepted"]
    assert _final(url, tx)["status"] == "committed"
    codes: dict[str, str] = {}
    # the very same transaction again, and another one with the used nonce
    again = _post(url, tx)
    assert not again["accepted"], again
    codes["replayed transaction"] = again["code"]
    codes["used nonce"] = _refused(url, commission_tx(org, net.chain_id, nonce, "sec-same-nonce"))
    # a transaction for another chain, with an otherwise good signature and nonce
    codes["another chain"] = _refused(url, commission_tx(org, sha256(b"another chain"),
                                                         nonce + 1, "sec-foreign"))
    # an observer organisation may not record events
    obs = read_key_file(auditor.org_key)
    codes["observer records an event"] = _refused(url, commission_tx(obs, net.chain_id, 0,
                                                                     "sec-observer"))
    # the member's node key is not its organisation's key
    node_key = read_key_file(v.home / "keys" / "node.key")
    codes["node key signs as organisation"] = _refused(
        url, commission_tx(node_key, net.chain_id, 0, "sec-node-key"))
    # a transaction naming the validator's organisation, signed by someone else
    forged = commission_tx(SigningKey.generate(), net.chain_id, nonce + 1, "sec-forged")
    forged = dataclasses.replace(forged, signer=org.public, raw=b"")
    codes["another organisation's key"] = _refused(url, Transaction.decode(forged.encode()))
    print("\n" + "\n".join(f"{k}: {c}" for k, c in codes.items()))
    assert codes["another chain"] in ("wrong_chain", "chain_mismatch")
    assert codes["another organisation's key"] == "bad_signature"
    assert codes["observer records an event"] == "permission_denied"
    # the chain holds the first transaction only
    s = get_status(url)
    assert s is not None
    assert httpx.get(f"{url}/v1/nonce/{org.public.hex()}", timeout=10).json()[
        "next_nonce"] == nonce + 1


def test_node_refuses_passphrase_protected_node_key_without_passphrase(tmp_path: Path) -> None:
    net = create_devnet(tmp_path / "net", nodes=1, consensus=CONSENSUS)
    home = net.validators[0].home
    key = read_key_file(home / "keys" / "node.key")
    write_key_file(home / "keys" / "node.key", key, passphrase=b"secret", overwrite=True)
    assert (home / "keys" / "node.key").stat().st_mode & 0o777 == 0o600
    proc = subprocess.run([sys.executable, "-m", "cli.main", "node", "start", "--home",
                           str(home)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    print(f"\n{last}")
    assert "passphrase" in last and "Traceback" not in proc.stderr


def test_byzantine_switch_refused_outside_test_mode(tmp_path: Path) -> None:
    net = create_devnet(tmp_path / "net", nodes=1, consensus=CONSENSUS)
    home = net.validators[0].home
    env = {**os.environ, "PARTLEDGER_TEST_MODE": "0", "PARTLEDGER_TEST_BYZANTINE": "equivocate"}
    # in the foreground: a node that ignored the switch would run until the timeout kills it
    proc = subprocess.run([sys.executable, "-m", "cli.main", "node", "start", "--home",
                           str(home)], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env=env)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    print(f"\n{last}")
    assert "PARTLEDGER_TEST_MODE=1" in last and "Traceback" not in proc.stderr


def test_outsider_cannot_sync_from_a_real_node_but_a_member_can(net: Devnet) -> None:
    """Sync is a request protocol behind the same member handshake as consensus: a key that
    is not in the genesis gets no block, the (idle) observer member gets sealed blocks."""
    import trio

    from ledger import Block, Seal, decode, encode
    from p2p import Member, open_host

    v = net.validators[0]
    target = read_key_file(v.home / "keys" / "node.key").public
    roster = [Member(public_key=target, addrs=(v.p2p.split("/p2p/")[0],))]
    member = read_key_file(next(n for n in net.nodes if n.observer).home / "keys" / "node.key")
    ask = encode({"from": 1, "to": 3})
    got: dict[str, Any] = {}

    async def main() -> None:
        async with open_host(SigningKey.generate(), roster) as outsider:
            with trio.move_on_after(3):  # it never gets connected
                await outsider.wait_connected(target)
            assert not outsider.is_connected(target)
            with pytest.raises(ConnectionError):
                await outsider.request(target, "sync", ask, timeout_s=10)
        async with open_host(member, roster) as h:
            with trio.fail_after(30):
                await h.wait_connected(target)
            got["items"] = decode(await h.request(target, "sync", ask, timeout_s=30))

    trio.run(main)
    items = got["items"]
    assert isinstance(items, list) and len(items) >= 1
    block, seal = Block.decode(items[0][0]), Seal.decode(items[0][1])
    assert block.height == 1 and seal.block_hash == block.hash
