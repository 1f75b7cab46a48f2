"""`partledger proof`: inclusion proofs that an auditor checks offline with the genesis file.

`proof tx TXID` writes the bundle (from a running node or a stopped node's home); `proof verify`
needs nothing but the bundle and the genesis file (see `ledger._proof` for what it checks).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_FAILURE, EXIT_USAGE, emit, fail
from cli.cmd_query import open_reader
from cli.cmd_remote import call, json_option, resolve_node
from ledger.errors import PartledgerError


@click.group("proof")
def proof() -> None:
    """inclusion proofs: write one for a transaction, verify one offline.

    \b
    example:
      partledger proof tx 3f2a...e1 --home node0 --out tx.proof.json
      partledger proof verify tx.proof.json --genesis genesis.json
    """


def _bundle_from_home(home: Path, tx_id: bytes) -> dict[str, Any]:
    from ledger._proof import build_bundle

    with open_reader(home) as store:
        loc = store.tx_location(tx_id)
        if loc is None:
            raise click.ClickException(f"transaction {tx_id.hex()} is not in this ledger")
        parts, seal = store.block_parts(loc[0]), store.seal(loc[0])
        if parts is None or seal is None:
            raise click.ClickException(f"block {loc[0]} is missing from this ledger")
        header, txs = parts
        return build_bundle(header, txs, seal, loc[1])


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@proof.command("tx")
@click.argument("tx_id")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="home of a stopped node (or a copy)")
@click.option("--node", "node_url", default=None, help="API URL of a running node")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the proof bundle (JSON)")
@json_option
def proof_tx(tx_id: str, home: Path | None, node_url: str | None, out: Path,
             json_mode: bool) -> None:
    """write the inclusion proof bundle of a committed transaction.

    \b
    example:
      partledger proof tx 3f2a...e1 --node http://127.0.0.1:8701 --out tx.proof.json
    """
    try:
        txid = bytes.fromhex(tx_id)
        if len(txid) != 32:
            raise ValueError
    except ValueError:
        fail("TXID must be 64 hex characters", code=EXIT_USAGE, json_mode=json_mode)
    if home is not None and node_url is not None:
        fail("give either --home or --node, not both", code=EXIT_USAGE, json_mode=json_mode)
    if home is not None:
        try:
            bundle = _bundle_from_home(home, txid)
        except click.ClickException as exc:
            fail(exc.message, code=EXIT_FAILURE, json_mode=json_mode)
    else:
        url = resolve_node(node_url, json_mode)
        bundle = call("GET", f"{url}/v1/txs/{txid.hex()}/proof", json_mode)
    _write_atomically(out, json.dumps(bundle, indent=1, sort_keys=True) + "\n")
    emit({"ok": True, "out": str(out), "tx_id": txid.hex(), "height": bundle.get("height")},
         json_mode, lambda d: click.echo(f"wrote the proof of {d['tx_id']} (block {d['height']}) "
                                         f"to {d['out']}"))


@proof.command("verify")
@click.argument("bundle_path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--genesis", "genesis_path", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the consortium's genesis file: the only thing trusted")
@json_option
def proof_verify(bundle_path: Path, genesis_path: Path, json_mode: bool) -> None:
    """check a proof bundle offline: signature, Merkle path, chain and commit seal.

    exit code 0 when the transaction is proven final, 1 when anything does not check out.

    \b
    example:
      partledger proof verify tx.proof.json --genesis genesis.json --json
    """
    from ledger._genesis import Genesis
    from ledger._proof import verify_bundle

    genesis = Genesis.load(genesis_path)
    try:
        doc = json.loads(bundle_path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        fail(f"{bundle_path} is not a JSON proof bundle ({exc})", code=EXIT_FAILURE,
             json_mode=json_mode, data={"code": "proof_shape"})
    try:
        tx = verify_bundle(doc, chain_id=genesis.chain_id, validators=genesis.validators)
    except PartledgerError as exc:
        fail(f"proof does not verify: {exc.message}", code=EXIT_FAILURE, json_mode=json_mode,
             data={"code": exc.code})
    member = genesis.member_by_org_key(tx.signer)
    emit({"ok": True, "tx_id": tx.tx_id.hex(), "height": doc["height"], "kind": tx.kind,
          "signer": tx.signer.hex(), "signer_member": member.name if member else None},
         json_mode,
         lambda d: click.echo(f"ok: transaction {d['tx_id']} ({d['kind']}, signed by "
                              f"{d['signer_member'] or d['signer'][:16]}) is final in block "
                              f"{d['height']} of this chain"))
