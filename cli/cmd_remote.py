"""Commands that talk to a running node over its HTTP API: status, block show, tx submit/show.

`--node URL` defaults to `PARTLEDGER_NODE`, else the first node of the devnet last brought up
with `partledger devnet up` (remembered in ~/.partledger/current-devnet).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_FAILURE, EXIT_USAGE, emit, fail

NODE_HELP = ("node API URL (default: $PARTLEDGER_NODE, else the first node of the last "
             "`devnet up`)")


def node_option(f: Any) -> Any:
    return click.option("--node", "node_url", default=None, help=NODE_HELP)(f)


def json_option(f: Any) -> Any:
    return click.option("--json", "json_mode", is_flag=True, help="print one JSON document")(f)


def resolve_node(url: str | None, json_mode: bool) -> str:
    from cli.node._devnet import default_node_url

    u = url or default_node_url()
    if not u:
        fail("no node given: pass --node URL or set PARTLEDGER_NODE (or run `partledger devnet "
             "up`)", code=EXIT_USAGE, json_mode=json_mode)
    return u.rstrip("/")


def call(method: str, url: str, json_mode: bool, **kw: Any) -> Any:
    import httpx

    try:
        r = httpx.request(method, url, timeout=kw.pop("timeout", 30), **kw)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the node at {url}: {exc}", code=EXIT_FAILURE, json_mode=json_mode)
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if r.status_code >= 400:
        msg = doc.get("error") if isinstance(doc, dict) else r.text[:200]
        code = doc.get("code") if isinstance(doc, dict) else "http_error"
        fail(f"the node answered {r.status_code}: {msg}", code=EXIT_FAILURE,
             json_mode=json_mode, data={"code": code, "status": r.status_code})
    return doc


@click.command("status")
@node_option
@json_option
def status(node_url: str | None, json_mode: bool) -> None:
    """show a running node's status: height, tip, state root, peers, round, sync.

    \b
    example:
      partledger status --node http://127.0.0.1:8001 --json
    """
    url = resolve_node(node_url, json_mode)
    doc = call("GET", f"{url}/v1/status", json_mode)

    def render(d: dict[str, Any]) -> None:
        click.echo(f"{d['node']} ({d['role']}) on chain {d['chain_name']} "
                   f"{d['chain_id'][:16]}…")
        click.echo(f"  height {d['height']}  tip {d['tip_hash']}")
        click.echo(f"  state root {d['state_root']}")
        click.echo(f"  round {d['round']}  peers {d['peers']}  mempool {d['mempool']}  "
                   f"syncing {d['sync']['syncing']}")
    emit(doc, json_mode, render)


@click.group("block")
def block() -> None:
    """read blocks from a running node.

    \b
    example:
      partledger block show 12 --node http://127.0.0.1:8001 --json
    """


@block.command("show")
@click.argument("height")
@node_option
@json_option
def block_show(height: str, node_url: str | None, json_mode: bool) -> None:
    """show block HEIGHT (or 'latest'): hash, header, transactions, seal.

    \b
    example:
      partledger block show latest --json
    """
    url = resolve_node(node_url, json_mode)
    doc = call("GET", f"{url}/v1/blocks/{height}", json_mode)

    def render(d: dict[str, Any]) -> None:
        h = d["header"]
        click.echo(f"block {d['height']}  {d['hash']}")
        click.echo(f"  prev {h['prev_hash']}  time_ms {h['time_ms']}")
        click.echo(f"  proposer {h['proposer'][:16]}…  txs {h['tx_count']}  "
                   f"state root {h['state_root'][:16]}…")
        for tx in d["txs"]:
            click.echo(f"  {tx['tx_id']}  {tx['kind']}  signer {tx['signer'][:16]}…  "
                       f"nonce {tx['nonce']}")
    emit(doc, json_mode, render)


@click.group("tx")
def tx() -> None:
    """submit transactions to a running node and follow them.

    \b
    example:
      partledger tx submit --key org.key --kind ObjectEvent --body event.json --wait
      partledger tx show 3f2a...e9 --json
    """


@tx.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="organisation key file")
@click.option("--kind", default=None,
              help="transaction kind; then FILE is just the body (e.g. --kind ObjectEvent)")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="wait until every transaction is committed or rejected")
@node_option
@json_option
def tx_submit(file: Path, key_path: Path, kind: str | None, wait: bool, node_url: str | None,
              json_mode: bool) -> None:
    """sign the transaction(s) in FILE with KEY and submit them through a node.

    FILE ('-' for stdin) holds {"kind": ..., "body": {...}} or a list of them (a batch, signed
    with consecutive nonces), or only a body when --kind is given. Exit code 1 if any is
    rejected.

    \b
    example:
      partledger tx submit batch.json --key org.key --json
      partledger tx submit event.json --kind ObjectEvent --key org.key
    """
    import sys

    from cli._client import NodeClient
    from ledger import read_key_file

    raw = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    try:
        doc = json.loads(raw)
    except ValueError:
        fail(f"{file} is not JSON", code=EXIT_USAGE, json_mode=json_mode)
    items = [{"kind": kind, "body": doc}] if kind is not None else (
        doc if isinstance(doc, list) else [doc])
    for i, it in enumerate(items):
        if not (isinstance(it, dict) and isinstance(it.get("kind"), str)
                and isinstance(it.get("body"), dict)):
            fail(f"item {i} of {file} must be {{\"kind\": str, \"body\": object}}",
                 code=EXIT_USAGE, json_mode=json_mode)
    key = read_key_file(key_path)
    with NodeClient(resolve_node(node_url, json_mode)) as client:
        txs = client.sign(key, [(it["kind"], it["body"]) for it in items])
        results = client.submit_and_wait(txs) if wait else client.submit(txs)
    failed = any(r["status"] == "rejected" for r in results)
    out: dict[str, Any] = results[0] if len(results) == 1 else {
        "ok": not failed, "results": results}
    def render(d: dict[str, Any]) -> None:
        for r in d.get("results", [d]):
            _render_tx(r)
    emit(out, json_mode, render)
    if failed:
        raise SystemExit(EXIT_FAILURE)


@tx.command("show")
@click.argument("tx_id")
@click.option("--wait", "wait_s", type=float, default=0.0,
              help="seconds to wait while it is pending")
@node_option
@json_option
def tx_show(tx_id: str, wait_s: float, node_url: str | None, json_mode: bool) -> None:
    """show a transaction's status: pending, committed at height H, or rejected with a reason.

    \b
    example:
      partledger tx show 3f2a...e9 --wait 10 --json
    """
    url = resolve_node(node_url, json_mode)
    doc = call("GET", f"{url}/v1/txs/{tx_id}", json_mode,
               params={"wait_ms": int(wait_s * 1000)}, timeout=wait_s + 10)
    emit(doc, json_mode, _render_tx)


def _render_tx(d: dict[str, Any]) -> None:
    s = d.get("status")
    line = f"{d['tx_id']}  {s}"
    if s == "committed":
        line += f" at height {d['height']} (index {d['index']})"
    elif s == "rejected":
        line += f": {d.get('reason')} ({d.get('code')})"
    click.echo(line)
