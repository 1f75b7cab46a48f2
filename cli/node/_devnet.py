"""A local consortium on 127.0.0.1: homes, genesis, processes, and their bookkeeping.

`create_devnet` writes one node home per member under DIR (keys, shared genesis, config with
free ports) and `DIR/devnet.json`; `start_node` runs `partledger node start --home H` as its own
OS process (its own session, so a signal to the CLI does not reach it, and `devnet down` can stop
it by process group); `stop_node` sends SIGTERM, then SIGKILL after a grace period. `devnet.json`
records the process ids; `devnet down` stops each recorded process that is still this devnet's
node (its command line names the home), also when others have died.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.node._config import ApiSection, NodeConfig, NodeSection, P2PSection
from ledger import ConsensusParams, Genesis, Home, SigningKey, write_key_file
from ledger import Member as GenesisMember
from ledger.errors import ConfigError

DEVNET_FILE = "devnet.json"
DEFAULT_DEVNET_DIR = Path("~/.partledger/devnet")
CURRENT_POINTER = Path("~/.partledger/current-devnet")
MEMBER_NAMES = ("acme", "bolt", "cogs", "dyna", "elco", "ferro", "gear", "hydra", "ionic",
                "joule", "kilo", "lumen", "metra", "nexus", "omega", "pivot")
VALIDATOR_ROLES = ("validator", "member")
OBSERVER_ROLES = ("observer",)


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetNode:
    name: str
    home: Path
    api: str
    p2p: str  # full multiaddr ending in /p2p/<peer id>
    org_key: Path
    observer: bool
    pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "home": str(self.home), "api": self.api, "p2p": self.p2p,
                "org_key": str(self.org_key), "observer": self.observer, "pid": self.pid}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DevnetNode:
        return cls(name=d["name"], home=Path(d["home"]), api=d["api"], p2p=d["p2p"],
                   org_key=Path(d["org_key"]), observer=bool(d.get("observer")),
                   pid=d.get("pid"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Devnet:
    dir: Path
    chain_id: bytes
    nodes: tuple[DevnetNode, ...]

    def to_json(self) -> dict[str, Any]:
        return {"dir": str(self.dir), "chain_id": self.chain_id.hex(),
                "nodes": [n.to_json() for n in self.nodes]}

    def save(self) -> None:
        tmp = self.dir / (DEVNET_FILE + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.dir / DEVNET_FILE)

    @classmethod
    def load(cls, directory: Path) -> Devnet:
        p = directory / DEVNET_FILE
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{directory} is not a devnet ({DEVNET_FILE} is missing)",
                              code="devnet_missing") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {p}: {exc}", code="devnet_invalid") from exc
        return cls(dir=Path(d["dir"]), chain_id=bytes.fromhex(d["chain_id"]),
                   nodes=tuple(DevnetNode.from_json(n) for n in d["nodes"]))

    def with_pid(self, name: str, pid: int | None) -> Devnet:
        nodes = tuple(DevnetNode(**{**_fields(n), "pid": pid}) if n.name == name else n
                      for n in self.nodes)
        return Devnet(dir=self.dir, chain_id=self.chain_id, nodes=nodes)

    def node(self, name: str) -> DevnetNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"no node {name!r} in this devnet", code="devnet_node")

    @property
    def validators(self) -> list[DevnetNode]:
        return [n for n in self.nodes if not n.observer]


def _fields(n: DevnetNode) -> dict[str, Any]:
    return {"name": n.name, "home": n.home, "api": n.api, "p2p": n.p2p, "org_key": n.org_key,
            "observer": n.observer, "pid": n.pid}


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports that are free on 127.0.0.1 right now (kept bound until all are
    chosen, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSpec:
    """One member of a devnet whose keys and roles the caller chooses (e.g. a scenario's)."""

    name: str
    roles: tuple[str, ...]
    org: SigningKey
    node: SigningKey

    @property
    def observer(self) -> bool:
        return "validator" not in self.roles


def create_devnet(directory: Path, *, nodes: int = 4, observers: int = 0,
                  chain_name: str = "devnet", consensus: ConsensusParams | None = None,
                  config: NodeConfig | None = None,
                  members: Sequence[MemberSpec] | None = None) -> Devnet:
    """Write the homes, keys, genesis and configs of a new devnet under `directory`.

    `members`, when given, replaces the generated `nodes` validators and `observers`: each
    member gets a node (an observer when it lacks the validator role).

    Raises:
        ConfigError: `directory` holds something already, or the sizes are out of range.
    """
    if members is None:
        if not 1 <= nodes <= len(MEMBER_NAMES) or not 0 <= observers <= 4:
            raise ConfigError(f"a devnet has 1 to {len(MEMBER_NAMES)} validators and 0 to 4 "
                              "observers", code="devnet_size")
        members = [MemberSpec(name=MEMBER_NAMES[i] if i < nodes else f"auditor{i - nodes + 1}",
                              roles=VALIDATOR_ROLES if i < nodes else OBSERVER_ROLES,
                              org=SigningKey.generate(), node=SigningKey.generate())
                   for i in range(nodes + observers)]
    if not any(not m.observer for m in members):
        raise ConfigError("a devnet needs at least one validator", code="devnet_size")
    directory = directory.expanduser().resolve()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} exists and is not empty; choose a new directory or run "
                          "`partledger devnet down` and remove it", code="devnet_exists")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ports = free_ports(2 * len(members))
    genesis_members: list[GenesisMember] = []
    keys: list[tuple[str, SigningKey, SigningKey, int, int, bool]] = []
    for i, spec in enumerate(members):
        p2p_port, api_port = ports[2 * i], ports[2 * i + 1]
        genesis_members.append(GenesisMember(
            name=spec.name, org_key=spec.org.public, node_key=spec.node.public,
            addresses=(f"/ip4/127.0.0.1/tcp/{p2p_port}",), roles=spec.roles))
        keys.append((spec.name, spec.org, spec.node, p2p_port, api_port, spec.observer))
    genesis = Genesis.create(chain_name=chain_name, genesis_time_ms=int(time.time() * 1000),
                             members=genesis_members, consensus=consensus or ConsensusParams())
    from p2p import peer_id_for  # imports py-libp2p: only when creating

    base = config or NodeConfig.default()
    if base.node.native_threads == 0:  # the nodes share this machine: divide its cores
        base = base.with_(node=NodeSection(**{**_section(base.node),
                                              "native_threads": devnet_native_threads(
                                                  len(members))}))
    out: list[DevnetNode] = []
    for name, org, node, p2p_port, api_port, observer in keys:
        home = Home.at(directory / name)
        home.create_dirs()
        genesis.save(home.genesis_path)
        write_key_file(home.org_key_path, org, label="org")
        write_key_file(home.node_key_path, node, label="node")
        cfg = base.with_(
            node=NodeSection(**{**_section(base.node), "name": name}),
            p2p=P2PSection(**{**_section(base.p2p), "listen": f"/ip4/127.0.0.1/tcp/{p2p_port}"}),
            api=ApiSection(**{**_section(base.api), "listen": f"127.0.0.1:{api_port}"}))
        cfg.save(home.config_path)
        out.append(DevnetNode(
            name=name, home=home.root, api=f"http://127.0.0.1:{api_port}",
            p2p=f"/ip4/127.0.0.1/tcp/{p2p_port}/p2p/{peer_id_for(node.public)}",
            org_key=home.org_key_path, observer=observer))
    net = Devnet(dir=directory, chain_id=genesis.chain_id, nodes=tuple(out))
    net.save()
    return net


def devnet_native_threads(nodes: int) -> int:
    """Native threads per node when `nodes` nodes share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // nodes)


def _section(section: Any) -> dict[str, Any]:
    return {k: getattr(section, k) for k in section.__dataclass_fields__}


# -- processes ----------------------------------------------------------------------------------

def node_command(home: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)]


def start_node(home: Path, *, env: dict[str, str] | None = None) -> int:
    """Start `partledger node start --home HOME` as its own process; returns its pid.
    Its output goes to HOME/node.log."""
    log = open(home / "node.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(node_command(home), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True,
                                env={**os.environ, **(env or {})},
                                cwd=str(Path(__file__).resolve().parents[2]))
    finally:
        log.close()
    return proc.pid


def is_node_process(pid: int | None, home: Path) -> bool:
    """True while `pid` runs and is the node of `home` (a recycled pid is someone else)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        _reap(pid)
        return False
    return str(home).encode() in cmdline and b"start" in cmdline


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_node(pid: int | None, home: Path, *, grace_s: float = 10.0) -> bool:
    """SIGTERM, wait up to `grace_s`, then SIGKILL. Returns True if it was running."""
    if not is_node_process(pid, home):
        return False
    assert pid is not None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_node_process(pid, home):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and is_node_process(pid, home):
        _reap(pid)
        time.sleep(0.05)
    return True


def kill_node(pid: int) -> None:
    """SIGKILL, no grace (crash tests)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)


def stop_devnet(net: Devnet, names: Sequence[str] | None = None, *,
                grace_s: float = 10.0) -> list[str]:
    """Stop the devnet's running nodes (all, or `names`) in parallel: SIGTERM to each, then
    SIGKILL to those still running after `grace_s`. Returns the names that were running."""
    running = [n for n in net.nodes
               if (names is None or n.name in names) and is_node_process(n.pid, n.home)]
    for n in running:
        assert n.pid is not None
        try:
            os.kill(n.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    left = list(running)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        for n in list(left):
            assert n.pid is not None
            _reap(n.pid)
            if not is_node_process(n.pid, n.home):
                left.remove(n)
    for n in left:
        stop_node(n.pid, n.home, grace_s=0)
    return [n.name for n in running]


def write_current_pointer(directory: Path) -> None:
    """Remember the last devnet brought up, so reading commands can default to its first
    node (`PARTLEDGER_NODE` overrides)."""
    p = CURRENT_POINTER.expanduser()
    try:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        p.write_text(str(directory) + "\n", encoding="utf-8")
    except OSError:
        pass


def launch_devnet(net: Devnet) -> Devnet:
    """Start every node of `net` as its own process, record the pids, make it the current
    devnet (the default `--node` of reading commands). Returns the devnet with its pids."""
    for n in net.nodes:
        net = net.with_pid(n.name, start_node(n.home))
        net.save()
    write_current_pointer(net.dir)
    return net


def default_node_url() -> str | None:
    """`PARTLEDGER_NODE`, else the first node of the current devnet, else None."""
    env = os.environ.get("PARTLEDGER_NODE")
    if env:
        return env.rstrip("/")
    candidates = []
    try:
        candidates.append(Path(CURRENT_POINTER.expanduser().read_text().strip()))
    except OSError:
        pass
    candidates.append(DEFAULT_DEVNET_DIR.expanduser())
    for d in candidates:
        try:
            net = Devnet.load(d)
        except ConfigError:
            continue
        if net.nodes:
            return net.nodes[0].api
    return None


def wait_agreement(net: Devnet, *, timeout_s: float, height: int = 1,
                   names: Sequence[str] | None = None) -> tuple[bool, str]:
    """Poll the nodes' APIs until each (or each of `names`) has committed `height` and they
    all hold the same block there. Returns (ok, what was missing)."""
    import httpx

    targets = [n for n in net.nodes if names is None or n.name in names]
    deadline = time.monotonic() + timeout_s
    why = "no answer yet"
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            hashes = set()
            try:
                for n in targets:
                    if n.pid is not None and not is_node_process(n.pid, n.home):
                        return False, f"node {n.name} exited (see {n.home}/node.log)"
                    r = client.get(f"{n.api}/v1/blocks/{height}")
                    if r.status_code != 200:
                        why = f"{n.name} has not committed block {height}"
                        raise LookupError(why)
                    hashes.add(r.json()["hash"])
            except (httpx.HTTPError, LookupError) as exc:
                why = str(exc) or why
                time.sleep(0.2)
                continue
            if len(hashes) == 1:
                return True, ""
            return False, f"the nodes hold different blocks at height {height}"
    return False, why
