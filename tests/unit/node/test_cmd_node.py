"""`partledger node init` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import app
from cli.node import NodeConfig
from cli.node._devnet import create_devnet
from ledger import read_key_file


def test_node_init_generates_keys_and_config(tmp_path: Path) -> None:
    home = tmp_path / "h"
    r = CliRunner().invoke(app, ["node", "init", "--home", str(home), "--name", "acme",
                                 "--p2p-listen", "/ip4/127.0.0.1/tcp/7555",
                                 "--api-listen", "127.0.0.1:8555", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["genesis"] is None and doc["peer_id"].startswith("12D3KooW")
    assert read_key_file(home / "keys" / "node.key").public.hex() == doc["node_key"]
    cfg = NodeConfig.load(home / "config.toml")
    assert cfg.p2p.listen == "/ip4/127.0.0.1/tcp/7555" and cfg.api.listen == "127.0.0.1:8555"
    assert (home / "keys" / "org.key").stat().st_mode & 0o777 == 0o600
    # again with the consortium's genesis: keys are kept, the genesis is copied in
    net = create_devnet(tmp_path / "net", nodes=1)
    r = CliRunner().invoke(app, ["node", "init", "--home", str(home), "--genesis",
                                 str(net.nodes[0].home / "genesis.json"), "--json"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.output)
    assert again["node_key"] == doc["node_key"] and again["genesis"]
    r = CliRunner().invoke(app, ["node", "init", "--home", str(home), "--name", "x"])
    assert r.exit_code == 2 and "exists" in r.output


def test_node_init_refuses_a_bad_genesis(tmp_path: Path) -> None:
    bad = tmp_path / "genesis.json"
    bad.write_text("{\"format\": 1}")
    r = CliRunner().invoke(app, ["node", "init", "--home", str(tmp_path / "h"), "--genesis",
                                 str(bad)])
    assert r.exit_code != 0 and not (tmp_path / "h" / "genesis.json").exists()


def test_node_start_with_a_sealed_node_key_needs_its_passphrase(tmp_path: Path) -> None:
    from cli.node import Node
    from ledger import Home, write_key_file

    net = create_devnet(tmp_path / "net", nodes=1)
    home = Home.at(net.nodes[0].home)
    key = read_key_file(home.node_key_path)
    home.node_key_path.unlink()
    write_key_file(home.node_key_path, key, passphrase=b"correct horse", label="node")

    r = CliRunner().invoke(app, ["node", "start", "--home", str(home.root)])
    assert r.exit_code != 0 and "passphrase" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["node", "start", "--home", str(home.root),
                                 "--passphrase-env", "PL_TEST_UNSET_VAR"])
    assert r.exit_code != 0 and "PL_TEST_UNSET_VAR is not set" in r.output
    r = CliRunner().invoke(app, ["node", "start", "--home", str(home.root),
                                 "--passphrase-env", "PL_PASS"], env={"PL_PASS": "wrong"})
    assert r.exit_code != 0 and "passphrase" in r.output and "Traceback" not in r.output

    node = Node.open(home, NodeConfig.load(home.config_path), passphrase=b"correct horse")
    try:
        assert node.node_key.public == key.public
    finally:
        node.close()
