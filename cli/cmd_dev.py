"""`partledger dev`: developer tools — generate a sealed chain and its consortium.

`build_dev_chain` (in `ledger._chain`) does the work; this module only picks the workload and
prints. Scenarios plug in through `WORKLOADS`: a function `(rng, consortium, n_txs)` that
yields `(signing key, kind, body)` tuples; nonces and signatures are added by the builder.
"""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from cli._output import emit
from ledger._chain import (
    DevConsortium,
    TxSpec,
    build_dev_chain,
    default_application,
)
from ledger.errors import ConfigError

Workload = Callable[[random.Random, DevConsortium, int], Iterable[TxSpec]]


def synthetic_workload() -> Workload:
    """The provenance helper's realistic synthetic workload."""
    try:
        wl = getattr(importlib.import_module("ledger.provenance"), "synthetic_workload", None)
    except ImportError as exc:
        raise ConfigError(f"the provenance workload is not available ({exc})",
                          code="no_workload") from exc
    if wl is None:
        raise ConfigError("the provenance workload (ledger.provenance.synthetic_workload) is not "
                          "available", code="no_workload")
    workload: Workload = wl
    return workload


def chunks(items: Iterable[TxSpec], size: int, count: int) -> Iterator[Sequence[TxSpec]]:
    """`count` lists of up to `size` items each (the last ones may be short or empty)."""
    it = iter(items)
    for _ in range(count):
        batch = []
        for _ in range(size):
            nxt = next(it, None)
            if nxt is None:
                break
            batch.append(nxt)
        yield batch


def _progress(total: int, enabled: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    if not enabled:
        return (lambda h, n: None), (lambda: None)
    from rich.console import Console
    from rich.progress import Progress

    prog = Progress(console=Console(file=sys.stderr), transient=True)
    task = prog.add_task("building blocks", total=total)
    prog.start()
    return (lambda h, n: prog.update(task, completed=h)), prog.stop


@click.group()
def dev() -> None:
    """developer tools: generate chains for tests, benchmarks and demos.

    \b
    example:
      partledger dev generate --out /tmp/devchain --blocks 20 --txs-per-block 50
    """


@dev.command("generate")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="node home to create (must not exist or be empty)")
@click.option("--blocks", default=10, show_default=True, type=click.IntRange(0, 1_000_000),
              help="number of blocks")
@click.option("--txs-per-block", "txs_per_block", default=20, show_default=True,
              type=click.IntRange(0, 20_000), help="transactions offered per block")
@click.option("--seed", default=1, show_default=True, type=int,
              help="seed for keys and workload (same seed, same chain)")
@click.option("--scenario", type=click.Choice(["synthetic", "ebike"]), default="synthetic",
              show_default=True, help="ebike: the circular e-bike supply chain (ignores "
              "--blocks/--txs-per-block)")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def generate(out: Path, blocks: int, txs_per_block: int, seed: int, scenario: str,
             json_mode: bool) -> None:
    """write a valid chain sealed by a generated 4-member consortium.

    DIR becomes member 0's node home (genesis.json, keys/, data/ledger/); every member's keys
    are under DIR/consortium/<name>/.

    example: partledger dev generate --out /tmp/dev --blocks 5 --txs-per-block 10 --json
    """
    if scenario == "ebike":
        from ledger.provenance._scenario import build as build_ebike

        result = build_ebike(out, seed)
        emit({"ok": True, **result}, json_mode, lambda d: click.echo(
            f"wrote the e-bike scenario ({d['height']} blocks, {d['txs']} transactions) to "
            f"{d['home']}\ne-bikes: {', '.join(d['ebikes'])}\n"
            f"defective cell lot: {d['defective_cell_lot']}"))
        return
    rng = random.Random(seed)
    consortium = DevConsortium.generate(rng)
    app = default_application()
    workload = synthetic_workload()
    batches = chunks(workload(rng, consortium, blocks * txs_per_block), txs_per_block, blocks)
    on_block, stop = _progress(blocks, sys.stderr.isatty() and not json_mode)
    try:
        summary = build_dev_chain(out, consortium, app, batches, progress=on_block)
    finally:
        stop()
    data: dict[str, Any] = {
        "ok": True, "home": str(summary.home), "genesis": str(Path(summary.home) / "genesis.json"),
        "chain_id": summary.chain_id.hex(), "height": summary.height, "txs": summary.txs,
        "rejected": summary.rejected, "state_root": summary.state_root.hex(),
        "members": [m.name for m in consortium.members],
    }
    emit(data, json_mode, lambda d: click.echo(
        f"wrote {d['height']} blocks with {d['txs']} transactions to {d['home']}\n"
        f"chain id {d['chain_id']}"))
