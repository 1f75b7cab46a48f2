"""`partledger audit`: replay a chain from its genesis file, export it to one portable file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from cli._output import EXIT_FAILURE, EXIT_USAGE, dump_json, emit, fail
from ledger import Genesis, Home, Store
from ledger._app import Application
from ledger._chain import default_application
from ledger._export import ExportReader, export_chain
from ledger._replay import ReplayError, ReplayReport, replay_export, replay_records, replay_store
from ledger.errors import PartledgerError, StoreError


def load_application() -> Application:
    """The state machine replay re-executes with (a seam for tests)."""
    return default_application()


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    if not enabled or total == 0:
        yield lambda h, n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(file=sys.stderr),
                  transient=True) as prog:
        task = prog.add_task("replaying blocks", total=total)
        yield lambda h, n: prog.update(task, completed=h)


@click.group()
def audit() -> None:
    """verify a chain with nothing but its genesis file; export it for auditors.

    \b
    example:
      partledger audit replay --home /tmp/dev --genesis /tmp/dev/genesis.json
      partledger audit export --home /tmp/dev --out chain.plx
      partledger audit replay --chain chain.plx --genesis genesis.json --json
    """


@audit.command("replay")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="node home whose store to replay (the node must be stopped)")
@click.option("--chain", "chain_file", type=click.Path(dir_okay=False, path_type=Path),
              help="export file to replay (from `audit export`)")
@click.option("--node", "node_url", default=None,
              help="API URL of a running node to fetch the blocks from (trusting only --genesis)")
@click.option("--genesis", "genesis_path", type=click.Path(dir_okay=False, path_type=Path),
              help="the genesis file you trust (default with --home: HOME/genesis.json)")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def replay(home: Path | None, chain_file: Path | None, node_url: str | None,
           genesis_path: Path | None, json_mode: bool) -> None:
    """re-verify every block from genesis: links, tx roots, signatures, seals, state roots.

    Exit code 0 when the whole chain verifies; 1 at the first problem, naming its height, the
    transaction if any, and the reason.

    \b
    example:
      partledger audit replay --chain chain.plx --genesis genesis.json --json
      partledger audit replay --node http://127.0.0.1:8701 --genesis genesis.json
    """
    if sum(x is not None for x in (home, chain_file, node_url)) != 1:
        fail("give exactly one of --home DIR, --chain FILE or --node URL", code=EXIT_USAGE,
             json_mode=json_mode)
    if genesis_path is None:
        if home is None:
            fail("--genesis FILE is required with --chain and --node: it is the only thing an "
                 "audit trusts", code=EXIT_USAGE, json_mode=json_mode)
        genesis_path = Home.at(home).genesis_path
    genesis = Genesis.load(genesis_path)
    app = load_application()
    show = sys.stderr.isatty() and not json_mode
    try:
        report = _replay(home, chain_file, node_url, genesis, app, show)
    except ReplayError as exc:
        _report_failure(exc, json_mode)
    except PartledgerError as exc:
        _report_failure(ReplayError(exc.message, height=0, code=exc.code), json_mode)
    emit(report.to_json(), json_mode, lambda d: click.echo(
        f"ok: {d['blocks']} blocks, {d['txs']} transactions verified up to height "
        f"{d['height']} in {d['seconds']:.2f}s"))


def _node_records(url: str, tip: int) -> Iterator[tuple[int, bytes, bytes]]:
    """Every block with its seal from a running node, fetched in pages; nothing it sends is
    trusted (replay verifies each record as if it came from a file)."""
    from cli._client import NodeClient
    from ledger import decode

    with NodeClient(url, timeout_s=120) as client:
        h = 1
        while h <= tip:
            r = client.request_raw("GET", "/v1/chain/records", params={"from": h, "limit": 500})
            page = decode(r)
            if not isinstance(page, list) or not page:
                raise ReplayError(f"the node sent no block at height {h}", height=h,
                                  code="node_missing_block")
            for rec in page:
                if not (isinstance(rec, list) and len(rec) == 3 and isinstance(rec[0], int)
                        and isinstance(rec[1], bytes) and isinstance(rec[2], bytes)):
                    raise ReplayError(f"the node sent a malformed record near height {h}",
                                      height=h, code="node_malformed")
                yield rec[0], rec[1], rec[2]
                h = rec[0] + 1


def _replay(home: Path | None, chain_file: Path | None, node_url: str | None, genesis: Genesis,
            app: Application, show: bool) -> ReplayReport:
    if node_url is not None:
        from cli._client import NodeClient

        with NodeClient(node_url) as client:
            tip = int(client.status()["height"])
        with _progress(tip, show) as cb:
            return replay_records(_node_records(node_url, tip), genesis, app, progress=cb)
    if home is not None:
        try:
            store = Store.open(Home.at(home).ledger_dir, read_only=True, paranoid=True)
        except StoreError as exc:
            raise ReplayError(exc.message, height=0, code=exc.code) from exc
        with store, _progress(store.height, show) as cb:
            return replay_store(store, genesis, app, progress=cb)
    assert chain_file is not None
    reader = ExportReader.open(chain_file)
    with _progress(reader.count, show) as cb:
        return replay_export(reader, genesis, app, progress=cb)


def _report_failure(exc: ReplayError, json_mode: bool) -> NoReturn:
    if json_mode:
        click.echo(dump_json(exc.to_json()))
    where = f"height {exc.height}" + (f", transaction {exc.tx.hex()}" if exc.tx else "")
    click.echo(f"error: replay failed at {where}: {exc.message} [{exc.code}]", err=True)
    sys.exit(EXIT_FAILURE)


@audit.command("export")
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="node home whose chain to export (the node must be stopped)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="export file to write (replaced atomically)")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def export(home: Path, out: Path, json_mode: bool) -> None:
    """write the whole chain (blocks and seals) into one portable file.

    example: partledger audit export --home /tmp/dev --out chain.plx
    """
    h = Home.at(home)
    with Store.open(h.ledger_dir, read_only=True, paranoid=True) as store:
        summary = export_chain(store, out)
    emit({"ok": True, "path": str(summary.path), "chain_id": summary.chain_id.hex(),
          "blocks": summary.blocks, "bytes": summary.size, "sha256": summary.sha256.hex()},
         json_mode, lambda d: click.echo(f"wrote {d['blocks']} blocks ({d['bytes']} bytes) to "
                                         f"{d['path']}"))
