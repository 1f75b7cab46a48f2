"""`partledger epcis`: check, import and export GS1 EPCIS 2.0 JSON/JSON-LD documents."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_FAILURE, EXIT_USAGE, dump_json, emit, fail
from cli.cmd_query import home_option, json_option, open_reader
from ledger.errors import ConfigError, DecodeError, StoreError


@click.group()
def epcis() -> None:
    """GS1 EPCIS 2.0 documents: check, import, export.

    \b
    example:
      partledger epcis check events.jsonld
      partledger epcis import events.jsonld --key DIR/keys/org.key --home DIR
      partledger epcis export --home DIR --out all.jsonld
    """


def _read(path: Path, json_mode: bool) -> Any:
    from ledger.provenance._epcis import load_document

    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=EXIT_USAGE, json_mode=json_mode)
    try:
        return load_document(data)
    except DecodeError as exc:
        fail(f"{path}: {exc.message}", json_mode=json_mode, data={"code": exc.code})


@epcis.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def check(file: Path, json_mode: bool) -> None:
    """validate FILE against GS1's EPCIS 2.0 JSON schema and the ledger's rules, event by
    event, without writing anything.

    example: partledger epcis check Example_9.6.1-ObjectEvent.jsonld --json
    """
    from ledger.provenance._epcis import check_document

    report = check_document(_read(file, json_mode))
    d = {"file": str(file), **report.to_json()}

    def render(d: dict[str, Any]) -> None:
        if d["ok"]:
            click.echo(f"{d['file']}: ok ({d['events']} events)")
            return
        for e in d["document_errors"]:
            click.echo(f"document: {e['message']}")
        for ev in d["failed_events"]:
            for e in ev["errors"]:
                click.echo(f"event {ev['index']} ({ev['type']}, {ev['eventID']}): "
                           f"[{e['code']}] {e['message']}")
        click.echo(f"{d['file']}: {len(d['failed_events'])} of {d['events']} events fail")

    emit(d, json_mode, render)
    if not report.ok:
        raise SystemExit(EXIT_FAILURE)


def _import_through_node(file: Path, doc: Any, report: Any, key_file: Path,
                         node_url: str | None, batch: int, json_mode: bool) -> None:
    """Sign each event that passes `epcis check` as a transaction of the member, submit them
    through a running node, wait until each is committed or rejected, and report both."""
    import sys

    from rich.progress import Progress

    from cli._client import NodeClient
    from cli.cmd_remote import resolve_node
    from ledger._keyfile import read_key_file
    from ledger.provenance._epcis import event_list, event_to_tx

    if report.document_errors:
        fail(f"{file} is not an EPCIS document ({report.document_errors[0]['message']}); "
             "nothing was imported", json_mode=json_mode, data={"check": report.to_json()})
    key = read_key_file(key_file)
    events = event_list(doc)
    checked = {ev.index: ev for ev in report.events}
    results: list[dict[str, Any]] = []
    passing: list[tuple[int, tuple[str, dict[str, Any]]]] = []
    for i, e in enumerate(events):
        ev = checked.get(i)
        if ev is not None and not ev.ok:
            err = ev.errors[0] if ev.errors else {"code": "invalid", "message": "invalid"}
            results.append({"index": i, "status": "rejected", "code": err["code"],
                            "reason": err["message"], "tx_id": None})
        else:
            passing.append((i, event_to_tx(e)))
    url = resolve_node(node_url, json_mode)
    show = sys.stderr.isatty() and not json_mode
    with NodeClient(url) as client, Progress(disable=not show, transient=True,
                                             console=_stderr_console()) as progress:
        task = progress.add_task(f"importing {len(passing)} events", total=len(passing))
        for start in range(0, len(passing), batch):
            chunk = passing[start:start + batch]
            txs = client.sign(key, [spec for _, spec in chunk])
            for (i, _), tx, st in zip(chunk, txs, client.submit_and_wait(txs, timeout_s=120),
                                      strict=True):
                results.append({"index": i, "status": st["status"], "tx_id": tx.tx_id.hex(),
                                "height": st.get("height"), "code": st.get("code"),
                                "reason": st.get("reason")})
            progress.advance(task, len(chunk))
    results.sort(key=lambda r: r["index"])
    committed = sum(1 for r in results if r["status"] == "committed")
    d = {"ok": committed == len(results), "file": str(file), "node": url,
         "events": len(results), "committed": committed,
         "rejected": len(results) - committed, "results": results}

    def render(d: dict[str, Any]) -> None:
        for r in d["results"]:
            if r["status"] != "committed":
                click.echo(f"event {r['index']}: {r['status']}: {r['reason']} [{r['code']}]")
        click.echo(f"{d['file']}: {d['committed']} of {d['events']} events committed, "
                   f"{d['rejected']} rejected")
    emit(d, json_mode, render)
    if not d["ok"]:
        raise SystemExit(EXIT_FAILURE)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _validator_keys(home: Path, genesis: Any) -> list[Any]:
    """The dev consortium's validator node keys under HOME/consortium/*/node.key."""
    from ledger._keyfile import read_key_file

    vset = set(genesis.validators)
    keys = []
    d = home / "consortium"
    if d.is_dir():
        for sub in sorted(d.iterdir()):
            kf = sub / "node.key"
            if kf.is_file():
                k = read_key_file(kf)
                if k.public in vset:
                    keys.append(k)
    from ledger._block import quorum_size

    if len(keys) < quorum_size(len(genesis.validators)):
        raise ConfigError(f"offline import appends sealed blocks and needs a quorum of the "
                          f"validators' node keys under {d} (a dev chain); for a running node "
                          "use --node URL", code="no_validator_keys")
    return keys


@epcis.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="org key file of the importing member (signs every event)")
@home_option
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 20_000),
              help="events per block")
@json_option
def import_(file: Path, key_file: Path, home: Path | None, node_url: str | None, batch: int,
            json_mode: bool) -> None:
    """append every event of FILE to a dev chain as signed transactions of the member.

    The document is checked first (like `epcis check`); nothing is written unless every event
    passes.

    example: partledger epcis import events.jsonld --key /tmp/dev/keys/org.key --home /tmp/dev
    """
    from ledger._chain import ChainBuilder, default_application
    from ledger._codec import decode
    from ledger._genesis import Genesis
    from ledger._home import Home
    from ledger._keyfile import read_key_file
    from ledger._store import Store
    from ledger.provenance import _keys
    from ledger.provenance._epcis import check_document, event_list, event_to_tx

    doc = _read(file, json_mode)
    report = check_document(doc, stateful=home is not None)
    if home is None:
        _import_through_node(file, doc, report, key_file, node_url, batch, json_mode)
        return
    if not report.ok:
        first = next((e for e in report.events if not e.ok), None)
        why = (f"event {first.index}: {first.errors[0]['message']}" if first and first.errors
               else (report.document_errors or [{"message": "invalid"}])[0]["message"])
        fail(f"{file} does not pass epcis check ({why}); nothing was imported",
             json_mode=json_mode, data={"check": report.to_json()})
    key = read_key_file(key_file)
    h = Home.at(home)
    h.require()
    genesis = Genesis.load(h.genesis_path)
    vkeys = _validator_keys(home, genesis)
    app = default_application()
    specs = [(key, *event_to_tx(e)) for e in event_list(doc)]
    try:
        store = Store.open(h.ledger_dir, genesis=genesis)
    except StoreError as exc:
        fail(f"{exc.message} (is a node running on this home? use --node URL)",
             json_mode=json_mode, data={"code": exc.code})
    with store:
        b = ChainBuilder(store, genesis, app, vkeys)
        raw = store.get(_keys.nonce(key.public))
        last = None if raw is None else decode(raw)
        b.nonces[key.public] = 0 if last is None else last + 1
        heights = []
        for i in range(0, len(specs), batch):
            chunk = specs[i:i + batch]
            txs = []
            for k, kind, body in chunk:
                from ledger._tx import Transaction

                n = b.nonces[k.public]
                b.nonces[k.public] = n + 1
                txs.append(Transaction.create(k, chain=genesis.chain_id, kind=kind, body=body,
                                              nonce=n))
            blk = b.append(txs)
            heights.append(blk.header.height)
        head = store.head()
    d = {"ok": True, "file": str(file), "events": len(specs), "blocks": heights,
         "height": head.height, "state_root": head.state_root.hex()}
    emit(d, json_mode, lambda d: click.echo(
        f"imported {d['events']} events into blocks {d['blocks'][0] if d['blocks'] else '-'}"
        f"..{d['height']}"))


@epcis.command("export")
@home_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="file to write the EPCISDocument to")
@json_option
def export(home: Path | None, node_url: str | None, out: Path, json_mode: bool) -> None:
    """write every event on the ledger as one EPCISDocument (GS1 JSON schema valid).

    example: partledger epcis export --home /tmp/dev --out /tmp/dev-events.jsonld
    """
    from ledger.provenance._epcis import check_document, export_document

    if home is not None:
        with open_reader(home) as r:
            doc = export_document(r, creation_ms=int(time.time() * 1000))
    else:
        from cli.cmd_remote import resolve_node
        from cli.node._remote import RemoteReader

        with RemoteReader(resolve_node(node_url, json_mode)) as rr:
            doc = export_document(rr, creation_ms=int(time.time() * 1000))
    report = check_document(doc, stateful=False)
    if not report.ok:  # pragma: no cover - a bug: our export must validate
        fail("the exported document does not validate against the EPCIS schema: "
             f"{dump_json(report.to_json())[:300]}")
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    d = {"ok": True, "out": str(out), "events": len(doc["epcisBody"]["eventList"])}
    emit(d, json_mode, lambda d: click.echo(f"wrote {d['events']} events to {d['out']}"))
