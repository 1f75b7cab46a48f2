"""`partledger genesis`: write the consortium's founding document from a description file.

The description is TOML, written by people: each member names its key files (or gives public
keys in hex), its node's addresses and its roles. The genesis file is the JSON document every
node and auditor trusts; its chain id is the hash of its canonical encoding.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

import click

from cli._output import EXIT_USAGE, emit, fail
from ledger.errors import ConfigError

EXAMPLE = """\
chain_name = "bike-consortium"
# genesis_time_ms = 1767225600000      # optional; default: now

[consensus]                            # optional; defaults shown
timeout_ms = 2000
max_block_txs = 2000
block_interval_ms = 500

[[members]]
name = "circular-alu"
org_key = "circular-alu/org.key"       # a key file (path relative to this file) or 64 hex chars
node_key = "circular-alu/node.key"
addresses = ["/ip4/192.0.2.10/tcp/7000"]
roles = ["validator", "member", "recycler"]
"""


def _public_key(value: Any, base: Path, where: str) -> bytes:
    from ledger._keyfile import key_file_info

    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: give a key file path or 64 hex characters",
                          code="consortium_invalid")
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return key_file_info(base / value).public_key


def genesis_from_description(path: Path) -> Any:
    """Build a `Genesis` from a TOML consortium description.

    Raises:
        ConfigError: naming the member and field that cannot be used.
    """
    from ledger._genesis import ConsensusParams, Genesis, Member

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})",
                          code="consortium_invalid") from exc
    members_doc = doc.get("members")
    if not isinstance(members_doc, list) or not members_doc:
        raise ConfigError(f"{path}: needs at least one [[members]] table",
                          code="consortium_invalid")
    members = []
    for i, m in enumerate(members_doc):
        where = f"{path}: member {i + 1} ({m.get('name', '?') if isinstance(m, dict) else '?'})"
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: must be a table", code="consortium_invalid")
        unknown = set(m) - {"name", "org_key", "node_key", "addresses", "roles"}
        if unknown:
            raise ConfigError(f"{where}: unknown fields {sorted(unknown)}",
                              code="consortium_invalid")
        members.append(Member(
            name=str(m.get("name", "")),
            org_key=_public_key(m.get("org_key"), path.parent, f"{where} org_key"),
            node_key=_public_key(m.get("node_key"), path.parent, f"{where} node_key"),
            addresses=tuple(m.get("addresses", ())), roles=tuple(m.get("roles", ()))))
    cons = doc.get("consensus", {})
    if not isinstance(cons, dict):
        raise ConfigError(f"{path}: [consensus] must be a table", code="consortium_invalid")
    try:
        params = ConsensusParams(**cons)
    except TypeError as exc:
        raise ConfigError(f"{path}: [consensus] has unknown fields ({exc})",
                          code="consortium_invalid") from exc
    return Genesis.create(chain_name=str(doc.get("chain_name", "")),
                          genesis_time_ms=int(doc.get("genesis_time_ms", time.time() * 1000)),
                          members=members, consensus=params)


def _summary(g: Any, out: Path | None) -> dict[str, Any]:
    return {"chain_id": g.chain_id.hex(), "chain_name": g.chain_name,
            "out": str(out) if out else None,
            "validators": len(g.validators),
            "members": [{"name": m.name, "roles": list(m.roles), "org_key": m.org_key.hex(),
                         "node_key": m.node_key.hex(), "addresses": list(m.addresses)}
                        for m in g.members]}


def _render(d: dict[str, Any]) -> None:
    if d.get("out"):
        click.echo(f"wrote {d['out']}")
    click.echo(f"chain {d['chain_name']}  id {d['chain_id']}  ({d['validators']} validators)")
    for m in d["members"]:
        click.echo(f"  {m['name']:<16} {','.join(m['roles']):<28} org {m['org_key'][:16]}…  "
                   f"node {m['node_key'][:16]}…")


@click.group()
def genesis() -> None:
    """create and inspect genesis files.

    \b
    example:
      partledger genesis new --from consortium.toml --out genesis.json
      partledger genesis show genesis.json --json
    """


@genesis.command("new")
@click.option("--from", "source", type=click.Path(dir_okay=False, path_type=Path),
              help="consortium description (TOML); see --example")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="where to write genesis.json")
@click.option("--example", is_flag=True, help="print an example description and exit")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def genesis_new(source: Path | None, out: Path | None, example: bool, force: bool,
                json_mode: bool) -> None:
    """write a genesis file from a consortium description.

    \b
    example:
      partledger genesis new --example > consortium.toml
      partledger genesis new --from consortium.toml --out genesis.json
    """
    if example:
        click.echo(EXAMPLE, nl=False)
        return
    if source is None or out is None:
        fail("give --from FILE and --out FILE (or --example)", code=EXIT_USAGE,
             json_mode=json_mode)
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it", code=EXIT_USAGE, json_mode=json_mode)
    g = genesis_from_description(source)
    g.save(out)
    emit(_summary(g, out), json_mode, _render)


@genesis.command("show")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def genesis_show(path: Path, json_mode: bool) -> None:
    """validate a genesis file and show its chain id and members.

    \b
    example:
      partledger genesis show genesis.json
    """
    from ledger._genesis import Genesis

    emit(_summary(Genesis.load(path), None), json_mode, _render)
