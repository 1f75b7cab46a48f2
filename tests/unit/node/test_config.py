"""config.toml: render, load, validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.node._config import ApiSection, NodeConfig, P2PSection
from ledger.errors import ConfigError


def test_NodeConfig_render_load_roundtrip(tmp_path: Path) -> None:
    cfg = NodeConfig.default().with_(api=ApiSection(listen="127.0.0.1:9000",
                                                    tokens={"acme": "s" * 20}))
    p = tmp_path / "config.toml"
    cfg.save(p)
    text = p.read_text()
    assert "# listen: HOST:PORT of the HTTP API" in text
    assert NodeConfig.load(p) == cfg


def test_NodeConfig_missing_keys_take_defaults(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text('[p2p]\nlisten = "/ip4/127.0.0.1/tcp/7100"\n')
    cfg = NodeConfig.load(p)
    assert cfg.p2p.listen == "/ip4/127.0.0.1/tcp/7100"
    assert cfg.mempool == NodeConfig.default().mempool


@pytest.mark.parametrize("text, fragment", [
    ("[p2p]\nlisten = 7001\n", "must be of type str"),
    ("[p2p]\nlisten = \"tcp://x\"\n", "multiaddr"),
    ("[nope]\n", "unknown section"),
    ("[mempool]\nmax_txs = 0\n", "[mempool] max_txs"),
    ("[api]\nbogus = 1\n", "has no key 'bogus'"),
    ("[api]\nlisten = \"0.0.0.0:8001\"\n", "beyond loopback"),
    ("[api.tokens]\nacme = \"short\"\n", "at least 16"),
    ("[node]\nlog_level = \"loud\"\n", "log_level"),
    ("[node]\nnative_threads = -1\n", "native_threads"),
    ("[node]\nnative_threads = 5000\n", "native_threads"),
    ("format = 2\n", "format 2"),
    ("[p2p\n", "not valid TOML"),
])
def test_NodeConfig_refuses_bad_files(tmp_path: Path, text: str, fragment: str) -> None:
    p = tmp_path / "config.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        NodeConfig.load(p)
    assert fragment in ei.value.message


def test_NodeConfig_beyond_loopback_with_tokens_is_valid() -> None:
    api = ApiSection(listen="10.1.2.3:8001", tokens={"acme": "x" * 32})
    api.validate()
    assert not api.is_loopback
    assert ApiSection(listen="localhost:1").is_loopback
    P2PSection().validate()


def test_NodeConfig_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        NodeConfig.load(tmp_path / "absent.toml")
    assert ei.value.code == "config_missing"


def test_devnet_nodes_divide_the_machines_cores_unless_told_otherwise(tmp_path: Path) -> None:
    import os

    from cli.node._config import NodeSection
    from cli.node._devnet import create_devnet
    from ledger import Home

    net = create_devnet(tmp_path / "a", nodes=2, config=NodeConfig.for_testing())
    want = max(1, (os.cpu_count() or 1) // 2)
    assert {NodeConfig.load(Home.at(n.home).config_path).node.native_threads
            for n in net.nodes} == {want}
    told = NodeConfig.for_testing().with_(node=NodeSection(native_threads=3))
    net = create_devnet(tmp_path / "b", nodes=2, config=told)
    assert {NodeConfig.load(Home.at(n.home).config_path).node.native_threads
            for n in net.nodes} == {3}


def test_apply_native_threads_sizes_the_extensions_pool() -> None:
    from cli.node._config import NodeSection
    from cli.node._node import apply_native_threads
    from ledger import _accel

    before = _accel.backend.get_threads()
    try:
        apply_native_threads(NodeConfig.default().with_(node=NodeSection(native_threads=1)))
        assert _accel.backend.get_threads() == 1
        apply_native_threads(NodeConfig.default())  # 0: left as it is
        assert _accel.backend.get_threads() == 1
    finally:
        _accel.backend.set_threads(0)
    assert _accel.backend.get_threads() == before
