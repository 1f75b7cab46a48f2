"""Provenance queries from the command line: trace, recall, part, bom, passport, events.

Each command is a thin shell over a function of `ledger.provenance._query`, which takes a
reader (`get`, `iter_prefix`). `run_query` picks where it runs: on a stopped node's data
directory (`--home DIR`, opened read-only) or on a running node, through its API (`--node URL`,
where the node runs the same function), so both give the same document.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_USAGE, emit, fail
from ledger.errors import ConfigError

HOME_HELP = "home of a stopped node (or a copy), opened read-only"


@contextmanager
def open_reader(home: Path) -> Iterator[Any]:
    """A read-only reader of the ledger state in `home`.

    Raises:
        ConfigError: not a node home.  StoreError: the store is missing, locked or damaged.
    """
    from ledger._genesis import Genesis
    from ledger._home import Home
    from ledger._store import Store

    h = Home.at(home)
    h.require()
    genesis = Genesis.load(h.genesis_path)
    store = Store.open(h.ledger_dir, genesis=genesis, read_only=True)
    try:
        yield store
    finally:
        store.close()


def home_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--home DIR` (a stopped node's data, read directly) or `--node URL` (a running node)."""
    f = click.option("--node", "node_url", default=None,
                     help="API URL of a running node (default: $PARTLEDGER_NODE, else the "
                     "first node of the last `devnet up`); ignored with --home")(f)
    return click.option("--home", "home", default=None,
                        type=click.Path(file_okay=False, path_type=Path), help=HOME_HELP)(f)


def run_query(home: Path | None, node_url: str | None, json_mode: bool,
              local: Callable[[Any], Any], path: str, **http: Any) -> Any:
    """Answer a query from `home`'s store with `local(reader)`, or from a running node's API
    at `path` (the node runs the same query function, so both give the same document)."""
    if home is not None:
        with open_reader(home) as r:
            return local(r)
    from cli.cmd_remote import call, resolve_node

    url = resolve_node(node_url, json_mode)
    return call(http.pop("method", "GET"), f"{url}{path}", json_mode, **http)


def _quote(ident: str) -> str:
    from urllib.parse import quote

    return quote(ident, safe="")


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "json_mode", is_flag=True, help="print one JSON document")(f)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


# -- trace ----------------------------------------------------------------------------------

def _render_trace(d: dict[str, Any]) -> None:
    from rich.tree import Tree

    nodes = {n["id"]: n for n in d["nodes"]}
    children: dict[str, list[dict[str, Any]]] = {}
    for e in d["edges"]:
        children.setdefault(e["from"], []).append(e)

    def label(n: dict[str, Any], rel: str | None) -> str:
        holders = ", ".join(n.get("holders") or []) or "?"
        extra = f" [dim]({rel})[/dim]" if rel else ""
        certs = n.get("attestations") or []
        cert = "".join(f" [green]✓ {a['standard']}[/green]" if not a["revoked"]
                       else f" [red]✗ {a['standard']} (revoked)[/red]" for a in certs)
        status = "" if n.get("status", "active") == "active" else f" [red]{n['status']}[/red]"
        return f"[bold]{n['id']}[/bold]{extra} — held by {holders}{status}{cert}"

    tree = Tree(label(nodes[d["root"]], None))
    seen = {d["root"]}

    def add(t: Any, nid: str) -> None:
        for e in children.get(nid, []):
            n = nodes.get(e["to"])
            if n is None:
                continue
            sub = t.add(label(n, e["rel"]) + (" [dim](see above)[/dim]" if e["to"] in seen
                                               else ""))
            if e["to"] not in seen:
                seen.add(e["to"])
                add(sub, e["to"])

    add(tree, d["root"])
    c = _console()
    c.print(tree)
    if d["direction"] == "back":
        c.print(f"raw materials: {', '.join(d['rawMaterials']) or '(none)'}")
        if d.get("partsWithoutOrigin"):
            c.print(f"parts with no recorded origin: {', '.join(d['partsWithoutOrigin'])}")
    else:
        c.print("end items: " + (", ".join(f"{i['id']} ({', '.join(i['holders'] or [])})"
                                          for i in d["endItems"]) or "(none)"))


def to_dot(d: dict[str, Any]) -> str:
    """Graphviz DOT of a trace (nodes: identifiers with holders; edges: relations)."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph genealogy {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica",'
             ' fontsize=10];']
    for n in d["nodes"]:
        holders = ", ".join(n.get("holders") or [])
        color = "lightblue" if n["id"] == d["root"] else (
            "lightgrey" if n.get("level") == "class" else "white")
        lines.append(f"  {q(n['id'])} [label={q(n['id'] + chr(10) + holders)}, style=filled, "
                     f"fillcolor={color}];")
    for e in d["edges"]:
        lines.append(f"  {q(e['from'])} -> {q(e['to'])} [label={q(e['rel'])}, fontsize=8];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_svg(d: dict[str, Any], path: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise ConfigError("Graphviz is not installed (the 'dot' program is missing); install "
                          "the Debian package graphviz (make system-deps)", code="no_graphviz")
    proc = subprocess.run([dot, "-Tsvg", "-o", str(path)], input=to_dot(d).encode(),
                          capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise ConfigError(f"dot failed: {proc.stderr.decode(errors='replace').strip()[:200]}",
                          code="graphviz_failed")


@click.group()
def trace() -> None:
    """trace a part back to its raw materials, or forward to every product using it.

    \b
    example:
      partledger trace back urn:epc:id:sgtin:4000002.000011.FR1 --home /tmp/ebike
      partledger trace forward urn:epc:class:lgtin:4000003.000020.CELL-B --home /tmp/ebike --svg f.svg
    """


def _trace_cmd(direction: str) -> Callable[..., None]:
    @home_option
    @json_option
    @click.argument("ident")
    @click.option("--depth", default=64, show_default=True, type=click.IntRange(1, 1000),
                  help="levels to follow")
    @click.option("--svg", "svg", type=click.Path(dir_okay=False, path_type=Path),
                  help="also draw the genealogy as SVG (needs Graphviz)")
    def cmd(ident: str, home: Path | None, node_url: str | None, json_mode: bool, depth: int,
            svg: Path | None) -> None:
        from ledger.provenance import _query

        fn = _query.trace_back if direction == "back" else _query.trace_forward
        d = run_query(home, node_url, json_mode, lambda r: fn(r, ident, max_depth=depth),
                      f"/v1/trace/{direction}/{_quote(ident)}", params={"depth": depth})
        if svg is not None:
            write_svg(d, svg)
            d["svg"] = str(svg)
        emit(d, json_mode, _render_trace)
    return cmd


trace.command("back", help="everything IDENT was made from, down to raw-material lots "
              "(with events and attestations).\n\nexample: partledger trace back ID --home DIR"
              )(_trace_cmd("back"))
trace.command("forward", help="every product that contains or was made from IDENT, with "
              "its current holder (where-used).\n\nexample: partledger trace forward ID "
              "--home DIR")(_trace_cmd("forward"))


# -- recall -------------------------------------------------------------------------------------

@click.command()
@click.argument("idents", nargs=-1, required=True)
@home_option
@json_option
def recall(idents: tuple[str, ...], home: Path | None, node_url: str | None,
           json_mode: bool) -> None:
    """recall scope: affected items, their last possessing party and open transactions.

    example: partledger recall urn:epc:class:lgtin:4000003.000020.CELL-B --home /tmp/ebike
    """
    from ledger.provenance import _query

    d = run_query(home, node_url, json_mode, lambda r: _query.recall(r, list(idents)),
                  "/v1/recall", method="POST", json={"ids": list(idents)})

    def render(d: dict[str, Any]) -> None:
        from rich.table import Table

        t = Table(title=f"recall of {', '.join(d['recalled'])}")
        for col in ("item", "end item", "status", "last possessing party", "owner",
                    "open transactions"):
            t.add_column(col)
        for i in d["affected"]:
            t.add_row(i["id"], "yes" if i["endItem"] else "", i["status"],
                      ", ".join(i["lastPossessingParty"]), i["owner"] or "",
                      ", ".join(x["bizTransaction"] for x in i["openTransactions"]))
        c = _console()
        c.print(t)
        c.print(f"holders of end items: {', '.join(d['holders']) or '(none)'}")
    emit(d, json_mode, render)


# -- part / bom / passport / events ----------------------------------------------------------

def _kv(d: dict[str, Any], title: str) -> None:
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for k, v in d.items():
        if isinstance(v, list | dict):
            from cli._output import dump_json

            v = dump_json(v) if v else ""
        t.add_row(k, "" if v is None else str(v))
    _console().print(t)


@click.group()
def part() -> None:
    """current state of a part: owner, custodian, location, disposition, container.

    example: partledger part show urn:epc:id:sgtin:4000003.000021.PK2 --home /tmp/ebike
    """


@part.command("show")
@click.argument("ident")
@home_option
@json_option
def part_show(ident: str, home: Path | None, node_url: str | None, json_mode: bool) -> None:
    """show the current state of IDENT.

    example: partledger part show ID --home DIR --json
    """
    from ledger.provenance import _query

    d = run_query(home, node_url, json_mode, lambda r: _query.part_show(r, ident),
                  f"/v1/parts/{_quote(ident)}")
    emit(d, json_mode, lambda d: _kv(d, d["id"]))


@click.command()
@click.argument("ident")
@home_option
@json_option
@click.option("--depth", default=16, show_default=True, type=click.IntRange(1, 100))
def bom(ident: str, home: Path | None, node_url: str | None, json_mode: bool,
        depth: int) -> None:
    """bill of materials as built.

    example: partledger bom https://id.gs1.org/01/04000004000309/21/EB2 --home /tmp/ebike
    """
    from ledger.provenance import _query

    d = run_query(home, node_url, json_mode, lambda r: _query.bom(r, ident, max_depth=depth),
                  f"/v1/bom/{_quote(ident)}", params={"depth": depth})

    def render(d: dict[str, Any]) -> None:
        from rich.tree import Tree

        def build(t: Any, n: dict[str, Any]) -> None:
            for m in n["materials"]:
                t.add(f"material {m['id']}")
            for comp in n["components"]:
                state = "" if comp.get("current") else " [dim](removed)[/dim]"
                build(t.add(f"[bold]{comp['id']}[/bold]{state}"), comp)
        tree = Tree(f"[bold]{d['id']}[/bold]")
        build(tree, d)
        _console().print(tree)
    emit(d, json_mode, render)


@click.group()
def passport() -> None:
    """material passports: tier-filtered attributes, history and lineage.

    example: partledger passport show pp-ebike-2 --home /tmp/ebike --as circular-alu
    """


@passport.command("show")
@click.argument("ident")
@home_option
@json_option
@click.option("--as", "as_org", help="view as this organisation (restricted tiers it is "
              "entitled to)")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="that organisation's org key file, to decrypt and verify its entries")
def passport_show(ident: str, home: Path | None, node_url: str | None, json_mode: bool,
                  as_org: str | None, key_file: Path | None) -> None:
    """show passport IDENT (a passport id or an identifier that has one).

    example: partledger passport show https://id.gs1.org/01/04000004000309/21/EB2 --home DIR
    """
    from ledger.provenance import _query

    key = None
    if key_file is not None:
        if as_org is None:
            fail("--key needs --as ORG", code=EXIT_USAGE, json_mode=json_mode)
        from ledger._keyfile import read_key_file

        key = read_key_file(key_file)
    d = run_query(home, node_url, json_mode,
                  lambda r: _query.passport_show(r, ident, as_org=as_org),
                  f"/v1/passports/{_quote(ident)}", params={"as": as_org} if as_org else {})
    if key is not None and as_org is not None:  # decrypt here: the key never leaves this machine
        for item in d["attributes"]:
            if item.get("sealed"):
                _query.open_sealed_item(item, as_org, key)

    def render(d: dict[str, Any]) -> None:
        from rich.table import Table

        c = _console()
        c.print(f"[bold]passport {d['passportId']}[/bold] of {d['subject']} — status "
                f"{d['status']}, version {d['version']}, responsible {d['responsible']}")
        t = Table()
        for col in ("attribute", "tier", "value"):
            t.add_column(col)
        for a in d["attributes"]:
            if "value" in a:
                v = str(a["value"]) + (" (verified)" if a.get("verified") else "")
            elif a.get("entitled"):
                v = f"entitled; sealed (commitment {a['commitment'][:16]}…), pass --key"
            else:
                v = f"restricted (commitment {a['commitment'][:16]}…)"
            t.add_row(a["path"], a["tier"], v)
        c.print(t)
        if d["predecessors"] or d["successors"]:
            c.print(f"predecessors: {', '.join(d['predecessors']) or '-'}; successors: "
                    f"{', '.join(d['successors']) or '-'}")
        c.print("history: " + "; ".join(f"v{i + 1} {h['change']} by {h['by']} ({h['status']})"
                                        for i, h in enumerate(d["history"])))
    emit(d, json_mode, render)


@passport.command("verify")
@click.argument("ident")
@click.argument("path")
@click.option("--value", "value_json", required=True, help="the disclosed value, as JSON")
@click.option("--salt", "salt_hex", required=True, help="the disclosed salt, hex")
@home_option
@json_option
def passport_verify(ident: str, path: str, value_json: str, salt_hex: str, home: Path | None,
                    node_url: str | None, json_mode: bool) -> None:
    """check a disclosed restricted attribute against the commitment on the ledger.

    Anyone can run it: the entitled organisation shows (value, salt), from `passport show --as
    ORG --key ORG.key --json`; the ledger holds only the commitment.

    example: partledger passport verify pp-ebike-2 dismantling.instructions --value '{"uri":
    "https://…"}' --salt 0a1b… --home DIR
    """
    import json

    from ledger.provenance import _query
    from ledger.provenance._epcis import from_json
    from ledger.provenance._passport import commitment

    try:
        value = from_json(json.loads(value_json))
        salt = bytes.fromhex(salt_hex)
    except ValueError as exc:
        fail(f"--value must be JSON and --salt hex ({exc})", code=EXIT_USAGE,
             json_mode=json_mode)
    d = run_query(home, node_url, json_mode, lambda r: _query.passport_show(r, ident),
                  f"/v1/passports/{_quote(ident)}")
    item = next((a for a in d["attributes"] if a["path"] == path), None)
    if item is None or "commitment" not in item:
        fail(f"passport {d['passportId']} has no restricted attribute {path}",
             json_mode=json_mode)
    ok = commitment(value, salt).hex() == item["commitment"]
    out = {"ok": ok, "passportId": d["passportId"], "path": path,
           "commitment": item["commitment"]}
    emit(out, json_mode, lambda o: click.echo(
        f"{path} of {o['passportId']}: the disclosed value "
        f"{'matches' if o['ok'] else 'does NOT match'} the commitment on the ledger"))
    if not ok:
        raise SystemExit(1)


@click.command()
@home_option
@json_option
@click.option("--MATCH_anyEPC", "--match-any-epc", "match_any_epc", multiple=True,
              help="events naming this identifier in any role (repeatable)")
@click.option("--EQ_bizStep", "--biz-step", "biz_step", multiple=True, help="bizStep")
@click.option("--GE_eventTime", "--since", "ge_time", help="eventTime >= (ISO 8601)")
@click.option("--LT_eventTime", "--until", "lt_time", help="eventTime < (ISO 8601)")
@click.option("--EQ_bizLocation", "--biz-location", "biz_location", multiple=True,
              help="bizLocation id")
@click.option("--eventType", "--type", "event_type", multiple=True, help="event type")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 10**7))
def events(home: Path | None, node_url: str | None, json_mode: bool,
           match_any_epc: tuple[str, ...],
           biz_step: tuple[str, ...], ge_time: str | None, lt_time: str | None,
           biz_location: tuple[str, ...], event_type: tuple[str, ...], limit: int) -> None:
    """events matching EPCIS query filters, in ledger order (error declarations attached).

    example: partledger events --home DIR --MATCH_anyEPC urn:epc:id:sgtin:4000003.000021.PK2
    """
    from ledger.provenance import _query

    params: dict[str, Any] = {"MATCH_anyEPC": list(match_any_epc), "EQ_bizStep": list(biz_step),
                              "EQ_bizLocation": list(biz_location),
                              "eventType": list(event_type), "limit": limit}
    params.update({k: v for k, v in (("GE_eventTime", ge_time), ("LT_eventTime", lt_time)) if v})
    d = run_query(home, node_url, json_mode, lambda r: _query.events(
        r, match_any_epc=match_any_epc, eq_biz_step=biz_step, ge_event_time=ge_time,
        lt_event_time=lt_time, eq_biz_location=biz_location, event_type=event_type,
        limit=limit), "/v1/events", params=params)

    def render(d: list[dict[str, Any]]) -> None:
        from rich.table import Table

        t = Table()
        for col in ("eventTime", "type", "action", "bizStep", "disposition", "by", "eventID"):
            t.add_column(col)
        for e in d:
            flag = " [red](declared erroneous)[/red]" if "errorDeclaration" in e else ""
            t.add_row(e["eventTime"], e["type"], e["action"] or "", e["bizStep"] or "",
                      e["disposition"] or "", e["recordedBy"], e["eventID"] + flag)
        _console().print(t)
    emit(d, json_mode, render)
