"""`make demo`: the whole system doing real work, step by step.

A 5-member consortium (a recycler-smelter, a component maker, a battery maker and an e-bike
assembler as validators; a certification lab as a non-voting member) runs as 5 node processes on
127.0.0.1. The members drive the e-bike scenario through the nodes' API, each signing its own
events; then the demo shows what integrators and auditors do with the ledger: an e-bike's
genealogy (tree and SVG), a recall, a passport as the public and as an entitled recycler see it,
an inclusion proof checked offline, and an audit replay of one node's data directory.

    python -m cli.demo [--out DIR] [--keep-running]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
SEED = 1


def say(step: int, text: str) -> None:
    console.print(f"\n[bold cyan]── step {step}: {text}[/]")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `partledger ARGS` as a user would, echoing the command and its output."""
    console.print(f"[dim]$ partledger {' '.join(shlex.quote(a) for a in args)}[/]")
    env = {**os.environ, "COLUMNS": str(max(140, shutil.get_terminal_size().columns))}
    proc = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=300, env=env)
    if proc.stdout:
        console.print(proc.stdout.rstrip(), markup=False)
    if proc.returncode != 0:
        console.print(proc.stderr.rstrip(), markup=False, style="red")
        if check:
            raise SystemExit(f"demo step failed: partledger {' '.join(args)}")
    return proc


def _consortium() -> list[Any]:
    from cli.node._devnet import MemberSpec
    from ledger.provenance import _scenario as sc

    return [MemberSpec(name=name, roles=roles, org=sc.org_key(name, SEED),
                       node=sc.node_key(name, SEED)) for name, roles, _ in sc.MEMBERS]


def _drive_scenario(api: dict[str, str]) -> list[tuple[str, str]]:
    """Each step is signed by its member and sent to that member's own node; runs of steps
    by one member go as one batch, and a run is committed before the next (later steps of the
    scenario depend on earlier ones, e.g. a custody answer on its proposal)."""
    from cli._client import NodeClient
    from ledger.provenance import _scenario as sc

    keys = sc.signing_keys(SEED)
    phases = sc.phases(SEED)
    committed_txs: list[tuple[str, str]] = []  # (kind, tx id)
    clients = {name: NodeClient(url) for name, url in api.items()}
    try:
        for i, phase in enumerate(phases, 1):
            runs: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []
            for member, kind, body in phase:
                if runs and runs[-1][0] == member:
                    runs[-1][1].append((kind, body))
                else:
                    runs.append((member, [(kind, body)]))
            t0 = time.monotonic()
            committed = 0
            for member, items in runs:
                client = clients.get(member, clients[next(iter(clients))])
                txs = client.sign(keys[member], items)
                for tx, st in zip(txs, client.submit_and_wait(txs, timeout_s=60), strict=True):
                    if st["status"] != "committed":
                        raise SystemExit(f"a scenario step of {member} was not committed: {st}")
                    committed_txs.append((tx.kind, tx.tx_id.hex()))
                    committed += 1
            kinds = sorted({k for _, k, _ in phase})
            console.print(f"  phase {i}/{len(phases)}: {committed} transactions committed in "
                          f"{time.monotonic() - t0:.1f} s ({', '.join(kinds)})")
    finally:
        for c in clients.values():
            c.close()
    return committed_txs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("demo-output"),
                    help="where the devnet, the SVG and the proof are written")
    ap.add_argument("--keep-running", action="store_true", help="leave the devnet running")
    a = ap.parse_args()

    from cli.node._devnet import Devnet, create_devnet, launch_devnet, stop_devnet, wait_agreement
    from ledger.errors import ConfigError
    from ledger.provenance import _scenario as sc

    started = time.monotonic()
    out = a.out.resolve()
    devnet_dir = out / "devnet"
    if devnet_dir.exists():
        try:
            stop_devnet(Devnet.load(devnet_dir))
        except ConfigError:
            pass
        shutil.rmtree(devnet_dir)
    out.mkdir(parents=True, exist_ok=True)

    say(1, "a consortium of 5 members, one node process each, on 127.0.0.1")
    net = launch_devnet(create_devnet(devnet_dir, members=_consortium(), chain_name="ebike-demo"))
    try:
        ok, why = wait_agreement(net, timeout_s=60)
        if not ok:
            raise SystemExit(f"the nodes did not agree on a first block: {why}")
        for n in net.nodes:
            role = "observer (no vote)" if n.observer else "validator"
            console.print(f"  {n.name:<13} {role:<19} api {n.api}")
        run("devnet", "status", "--dir", str(devnet_dir))
        api = {n.name: n.api for n in net.nodes}
        first = net.nodes[0].api

        say(2, "the members record the e-bike supply chain, each signing its own events")
        committed = _drive_scenario(api)
        console.print(f"  {len(committed)} transactions committed by BFT consensus")
        run("status", "--node", first)

        x = sc.summary(SEED)
        bike = x["affected_ebikes"][0]
        say(3, f"integrator: where does e-bike {bike} come from?")
        svg = out / "ebike-genealogy.svg"
        run("trace", "back", bike, "--node", first, "--svg", str(svg))
        console.print(f"  genealogy picture written to {svg}")

        say(4, f"integrator: recall of the defective cell lot {x['defective_cell_lot']}")
        run("recall", x["defective_cell_lot"], "--node", first)

        say(5, "the circular loop: the new frame's trace back reaches the recycled aluminium")
        run("trace", "back", x["new_frame"], "--node", first, "--depth", "12")

        say(6, "a material passport, as the public sees it and as an entitled recycler sees it")
        run("passport", "show", bike, "--node", first)
        recycler_key = devnet_dir / sc.SMELTER / "keys" / "org.key"
        run("passport", "show", bike, "--node", first, "--as", sc.SMELTER, "--key",
            str(recycler_key))

        say(7, "an inclusion proof, verified offline with nothing but the genesis file")
        tx_id = next(t for kind, t in committed if kind == "QualityNotice")
        console.print(f"  the recall notice was transaction {tx_id}")
        proof = out / "tx-proof.json"
        run("proof", "tx", tx_id, "--node", first, "--out", str(proof))
        genesis = net.nodes[0].home / "genesis.json"
        run("proof", "verify", str(proof), "--genesis", str(genesis))

        say(8, "auditor: stop the consortium and replay one node's data directory from genesis")
        stop_devnet(net)
        run("audit", "replay", "--home", str(net.nodes[1].home), "--genesis", str(genesis))
    finally:
        if not a.keep_running:
            stop_devnet(net)
    console.print(f"\n[bold green]demo finished in {time.monotonic() - started:.0f} s[/]; "
                  f"files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
