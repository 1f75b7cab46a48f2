"""`partledger node`: set up a node home and run the node."""

from __future__ import annotations

import logging
import shutil
import signal
from pathlib import Path

import click

from cli._output import EXIT_USAGE, emit, fail
from ledger.errors import PartledgerError


@click.group()
def node() -> None:
    """set up and run a consortium node.

    \b
    example:
      partledger node init --home ~/.partledger --genesis genesis.json \\
          --node-key node.key --org-key org.key --p2p-listen /ip4/0.0.0.0/tcp/7001
      partledger node start --home ~/.partledger
    """


@node.command("init")
@click.option("--home", required=True, envvar="PARTLEDGER_HOME",
              type=click.Path(file_okay=False, path_type=Path),
              help="node home directory to create or complete (or $PARTLEDGER_HOME)")
@click.option("--genesis", "genesis_path", type=click.Path(dir_okay=False, path_type=Path),
              help="the consortium's genesis file (copied into the home)")
@click.option("--node-key", type=click.Path(dir_okay=False, path_type=Path),
              help="node key file to copy in (default: generate one)")
@click.option("--org-key", type=click.Path(dir_okay=False, path_type=Path),
              help="organisation key file to copy in (default: generate one)")
@click.option("--name", default="", help="this node's member name (informational)")
@click.option("--p2p-listen", default=None, help="libp2p listen multiaddr "
              "(default /ip4/127.0.0.1/tcp/7001)")
@click.option("--api-listen", default=None, help="HTTP API HOST:PORT (default 127.0.0.1:8001)")
@click.option("--force", is_flag=True, help="overwrite an existing config.toml")
@click.option("--json", "json_mode", is_flag=True, help="print one JSON document")
def init(home: Path, genesis_path: Path | None, node_key: Path | None, org_key: Path | None,
         name: str, p2p_listen: str | None, api_listen: str | None, force: bool,
         json_mode: bool) -> None:
    """create a node home: keys, genesis, config.toml.

    Keys that are not given and not already in the home are generated; their public keys are
    printed so they can be listed in the genesis file.

    \b
    example:
      partledger node init --home /srv/acme --genesis genesis.json --json
    """
    from cli.node._config import ApiSection, NodeConfig, NodeSection, P2PSection
    from ledger import Genesis, Home, SigningKey, read_key_file, write_key_file
    from p2p import peer_id_for

    h = Home.at(home)
    h.create_dirs()
    if genesis_path is not None:
        Genesis.load(genesis_path)  # refuse a bad file before copying it
        shutil.copyfile(genesis_path, h.genesis_path)
    for path, given, label in ((h.node_key_path, node_key, "node"),
                               (h.org_key_path, org_key, "org")):
        if given is not None:
            key = read_key_file(given)
            write_key_file(path, key, label=label, overwrite=True)
        elif not path.exists():
            write_key_file(path, SigningKey.generate(), label=label)
    if h.config_path.exists() and not force:
        if p2p_listen or api_listen or name:
            fail(f"{h.config_path} exists; pass --force to overwrite it", code=EXIT_USAGE,
                 json_mode=json_mode)
        cfg = NodeConfig.load(h.config_path)
    else:
        base = NodeConfig.default()
        cfg = base.with_(
            node=NodeSection(name=name, log_level=base.node.log_level,
                             log_format=base.node.log_format,
                             libp2p_log_level=base.node.libp2p_log_level),
            p2p=P2PSection(listen=p2p_listen or base.p2p.listen),
            api=ApiSection(listen=api_listen or base.api.listen))
        cfg.validate()
        cfg.save(h.config_path)
    nk, ok = read_key_file(h.node_key_path), read_key_file(h.org_key_path)
    data = {"home": str(h.root), "config": str(h.config_path),
            "genesis": str(h.genesis_path) if h.genesis_path.exists() else None,
            "node_key": nk.public.hex(), "org_key": ok.public.hex(),
            "peer_id": str(peer_id_for(nk.public)), "p2p_listen": cfg.p2p.listen,
            "api_listen": cfg.api.listen}

    def render(d: dict[str, object]) -> None:
        click.echo(f"node home {d['home']} ready")
        click.echo(f"  node key  {d['node_key']}  (peer id {d['peer_id']})")
        click.echo(f"  org key   {d['org_key']}")
        if d["genesis"] is None:
            click.echo("  no genesis yet: list these keys in the consortium's genesis file, then "
                       "run `partledger node init --home ... --genesis FILE`")
    emit(data, json_mode, render)


@node.command("start")
@click.option("--home", required=True, envvar="PARTLEDGER_HOME",
              type=click.Path(file_okay=False, path_type=Path),
              help="node home directory, see `node init` (or $PARTLEDGER_HOME)")
@click.option("--passphrase-env", "passphrase_env", metavar="VAR",
              help="the node key is sealed: read its passphrase from environment variable VAR")
def start(home: Path, passphrase_env: str | None) -> None:
    """run the node until SIGINT or SIGTERM.

    Logs are JSON lines on stderr (level and format in config.toml).

    \b
    example:
      partledger node start --home /srv/acme
      NODE_PASS=... partledger node start --home /srv/acme --passphrase-env NODE_PASS
    """
    import trio

    from cli.cmd_keys import passphrase_from_env
    from cli.node._config import NodeConfig
    from cli.node._logs import setup_logging
    from cli.node._node import Node, apply_native_threads, tune_collector
    from ledger import Home

    h = Home.at(home)
    h.require()
    cfg = NodeConfig.load(h.config_path)
    setup_logging(level=cfg.node.log_level, fmt=cfg.node.log_format,
                  libp2p_level=cfg.node.libp2p_log_level)
    n = Node.open(h, cfg, passphrase=passphrase_from_env(passphrase_env))
    tune_collector()
    apply_native_threads(cfg)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(n.run)

            async def on_signal() -> None:
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        n.stop()
                        return
            nursery.start_soon(on_signal)

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        # A deliberate error in one of the node's tasks (the disk is full, the store refuses a
        # write) ends the run with its one sentence, like any command's, not a task-group
        # traceback. Anything else in the group is a bug and keeps its traceback.
        mine, rest = group.split(PartledgerError)
        if mine is None or rest is not None:
            raise
        first = _first_leaf(mine)
        logging.getLogger("partledger.node").critical("node stopped: %s", first.message)
        raise first from None
    finally:
        n.close()


def _first_leaf(group: BaseExceptionGroup[PartledgerError]) -> PartledgerError:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        return exc
    raise AssertionError("an empty exception group")  # pragma: no cover
