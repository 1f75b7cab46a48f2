"""`partledger devnet`: a local consortium of node processes on 127.0.0.1."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_FAILURE, emit, fail

DIR_HELP = "devnet directory (default ~/.partledger/devnet)"


def _dir(d: Path | None) -> Path:
    from cli.node._devnet import DEFAULT_DEVNET_DIR

    return (d or DEFAULT_DEVNET_DIR).expanduser().resolve()


@click.group()
def devnet() -> None:
    """run a local consortium: one node process per member on 127.0.0.1.

    \b
    example:
      partledger devnet up --nodes 4 --dir /tmp/dn --json
      partledger devnet status --dir /tmp/dn
      partledger devnet down --dir /tmp/dn
    """


def _status_of(net: Any) -> dict[str, Any]:
    import httpx

    from cli.node._devnet import is_node_process

    nodes = []
    for n in net.nodes:
        d = n.to_json()
        d["running"] = is_node_process(n.pid, n.home)
        try:
            st = httpx.get(f"{n.api}/v1/status", timeout=2).json()
            d.update(height=st["height"], tip_hash=st["tip_hash"], peers=st["peers"])
        except Exception:  # a node that is down or starting
            d.update(height=None, tip_hash=None, peers=None)
        nodes.append(d)
    return {"dir": str(net.dir), "chain_id": net.chain_id.hex(), "nodes": nodes}


def _render(doc: dict[str, Any]) -> None:
    click.echo(f"devnet {doc['dir']}  chain {doc['chain_id'][:16]}…")
    for n in doc["nodes"]:
        state = "running" if n.get("running", True) else "stopped"
        h = n.get("height")
        click.echo(f"  {n['name']:<10} {state:<8} pid {n['pid'] or '-':<8} height "
                   f"{'-' if h is None else h:<6} api {n['api']}")
        click.echo(f"  {'':<10} p2p {n['p2p']}")
        click.echo(f"  {'':<10} home {n['home']}  org key {n['org_key']}")
    if doc["nodes"]:
        click.echo(f"\nreach it: export PARTLEDGER_NODE={doc['nodes'][0]['api']}; "
                   "partledger status")


@devnet.command("up")
@click.option("--nodes", default=4, show_default=True, type=click.IntRange(1, 16),
              help="number of validator nodes")
@click.option("--observers", default=0, show_default=True, type=click.IntRange(0, 4),
              help="extra members without a vote (started too, unless --no-observers-start)")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help=DIR_HELP)
@click.option("--timeout", "timeout_s", default=60.0, show_default=True,
              help="seconds to wait for the nodes to agree on a block")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def up(nodes: int, observers: int, directory: Path | None, timeout_s: float,
       json_mode: bool) -> None:
    """create a devnet and start its nodes; wait until they agree on a block.

    \b
    example:
      partledger devnet up --nodes 4 --dir /tmp/dn --json
    """
    from cli.node._devnet import create_devnet, launch_devnet, stop_devnet, wait_agreement

    net = launch_devnet(create_devnet(_dir(directory), nodes=nodes, observers=observers))
    click.echo(f"started {len(net.nodes)} nodes under {net.dir}; waiting for the first "
               "block...", err=True)
    t0 = time.monotonic()
    ok, why = wait_agreement(net, timeout_s=timeout_s)
    if not ok:
        stop_devnet(net)
        fail(f"the nodes did not agree on a block within {timeout_s:.0f} s ({why}); logs are in "
             f"{net.dir}/*/node.log", code=EXIT_FAILURE, json_mode=json_mode)
    click.echo(f"agreed on block 1 after {time.monotonic() - t0:.1f} s", err=True)
    doc = net.to_json()
    emit(doc, json_mode, lambda _d: _render(_status_of(net)))


@devnet.command("status")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help=DIR_HELP)
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def status(directory: Path | None, json_mode: bool) -> None:
    """show the devnet's nodes: process, height, addresses.

    \b
    example:
      partledger devnet status --dir /tmp/dn --json
    """
    from cli.node._devnet import Devnet

    net = Devnet.load(_dir(directory))
    emit(_status_of(net), json_mode, _render)


@devnet.command("down")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help=DIR_HELP)
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def down(directory: Path | None, json_mode: bool) -> None:
    """stop every node of the devnet (also when some have died already).

    \b
    example:
      partledger devnet down --dir /tmp/dn
    """
    from cli.node._devnet import Devnet, stop_devnet

    net = Devnet.load(_dir(directory))
    stopped = stop_devnet(net)
    for n in net.nodes:
        net = net.with_pid(n.name, None)
    net.save()
    doc = {"dir": str(net.dir), "stopped": stopped,
           "not_running": [n.name for n in net.nodes if n.name not in stopped]}
    emit(doc, json_mode, lambda d: click.echo(
        f"stopped {len(d['stopped'])} node(s) of {d['dir']}", file=sys.stdout))
