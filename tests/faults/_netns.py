"""A devnet whose nodes live in their own Linux network namespaces (root only).

Each node gets a namespace with two veth links: a *data* link (10.250.S.i, the address in the
genesis file, carrying p2p) on one of two bridges, and a *control* link (10.251.S.i, the API)
on a third bridge that faults never touch, so the test can watch a node it has cut off. The
root namespace holds 10.250.S.254 and 10.251.S.254 on the bridges; nothing is routed anywhere
else (these are the test's own addresses, S chosen per run).

Faults, all on the host side of a node's data link:
- partition: move links to bridge B (nodes on A and on B cannot reach each other, each side
  stays connected internally); heal moves them back;
- cut / flap: link down (and up again);
- slow: a token-bucket rate limit (`tc tbf`) on both ends of the link. (`netem` delay would be
  the textbook tool, but this kernel has no sch_netem; a small bucket adds queueing delay and
  caps bandwidth instead.)
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.node._config import ApiSection, NodeConfig, NodeSection, P2PSection
from cli.node._devnet import Devnet, DevnetNode
from ledger import ConsensusParams, Genesis, Home, SigningKey, write_key_file
from ledger import Member as GenesisMember
from p2p import peer_id_for

P2P_PORT = 7001
API_PORT = 8001
TOKEN = "faults-test-token"


def require_root() -> None:
    """Namespaces need root; the fault tests say so plainly instead of skipping."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
        raise AssertionError("the partition tests need root and iproute2 (ip, tc) to build "
                             "network namespaces: run them as root (CI does), after "
                             "`make system-deps`")


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


@dataclass
class NetnsDevnet:
    """The namespaces, links and bridges of one run (`teardown` removes them all)."""

    tag: str  # short random prefix of every interface and namespace name
    subnet: int
    size: int
    bridges: dict[str, str] = field(default_factory=dict)
    where: dict[int, str] = field(default_factory=dict)  # node index -> "a" | "b"

    def ns(self, i: int) -> str:
        return f"{self.tag}n{i}"

    def data_host(self, i: int) -> str:
        return f"{self.tag}d{i}"

    def data_addr(self, i: int) -> str:
        return f"10.250.{self.subnet}.{i + 1}"

    def api_addr(self, i: int) -> str:
        return f"10.251.{self.subnet}.{i + 1}"

    def prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.ns(i)]

    # -- build / tear down --------------------------------------------------------------------
    def build(self) -> None:
        for b, net in (("a", 250), ("b", 250), ("c", 251)):
            name = f"{self.tag}br{b}"
            ip("ip", "link", "add", name, "type", "bridge")
            ip("ip", "link", "set", name, "up")
            self.bridges[b] = name
            if b != "b":
                ip("ip", "addr", "add", f"10.{net}.{self.subnet}.254/24", "dev", name)
        for i in range(self.size):
            ns = self.ns(i)
            ip("ip", "netns", "add", ns)
            ip("ip", "link", "set", "lo", "up", ns=ns)
            for kind, net, bridge in (("d", 250, "a"), ("c", 251, "c")):
                host, inner = f"{self.tag}{kind}{i}", f"{self.tag}{kind}{i}i"
                ip("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
                ip("ip", "link", "set", inner, "netns", ns)
                ip("ip", "link", "set", host, "master", self.bridges[bridge])
                ip("ip", "link", "set", host, "up")
                ip("ip", "addr", "add", f"10.{net}.{self.subnet}.{i + 1}/24", "dev", inner,
                   ns=ns)
                ip("ip", "link", "set", inner, "up", ns=ns)
            self.where[i] = "a"

    def teardown(self) -> None:
        for i in range(self.size):
            ip("ip", "netns", "del", self.ns(i), check=False)  # takes its veth ends along
        for i in range(self.size):
            for kind in ("d", "c"):
                ip("ip", "link", "del", f"{self.tag}{kind}{i}", check=False)
        for name in self.bridges.values():
            ip("ip", "link", "del", name, check=False)

    # -- faults -------------------------------------------------------------------------------
    def partition(self, side_b: set[int]) -> None:
        """Nodes in `side_b` can talk among themselves, the others among themselves."""
        for i in range(self.size):
            want = "b" if i in side_b else "a"
            if self.where[i] != want:
                ip("ip", "link", "set", self.data_host(i), "master", self.bridges[want])
                self.where[i] = want

    def heal(self) -> None:
        self.partition(set())
        for i in range(self.size):
            self.link(i, up=True)

    def link(self, i: int, *, up: bool) -> None:
        ip("ip", "link", "set", self.data_host(i), "up" if up else "down")

    def slow(self, i: int, *, rate_kbit: int, latency_ms: int) -> None:
        """Rate-limit both directions of node i's data link."""
        spec = ["tbf", "rate", f"{rate_kbit}kbit", "burst", "4kb", "latency", f"{latency_ms}ms"]
        ip("tc", "qdisc", "replace", "dev", self.data_host(i), "root", *spec)
        ip("tc", "qdisc", "replace", "dev", f"{self.data_host(i)}i", "root", *spec,
           ns=self.ns(i))

    def unslow(self, i: int) -> None:
        ip("tc", "qdisc", "del", "dev", self.data_host(i), "root", check=False)
        ip("tc", "qdisc", "del", "dev", f"{self.data_host(i)}i", "root", ns=self.ns(i),
           check=False)


def new_netns(size: int) -> NetnsDevnet:
    rng = random.Random()
    return NetnsDevnet(tag=f"pf{rng.randrange(16**3):03x}", subnet=rng.randrange(1, 250),
                       size=size)


def create_netns_devnet(directory: Path, nets: NetnsDevnet, *,
                        consensus: ConsensusParams) -> Devnet:
    """Homes, keys, genesis (with the namespace addresses) and configs, as `create_devnet`
    writes them for loopback; the API listens on the control link and wants a token."""
    from cli.node._devnet import MEMBER_NAMES, _section

    directory = directory.resolve()
    directory.mkdir(parents=True, mode=0o700)
    specs = []
    for i in range(nets.size):
        org, node = SigningKey.generate(), SigningKey.generate()
        specs.append((MEMBER_NAMES[i], org, node))
    members = [GenesisMember(name=name, org_key=org.public, node_key=node.public,
                             addresses=(f"/ip4/{nets.data_addr(i)}/tcp/{P2P_PORT}",),
                             roles=("validator", "member"))
               for i, (name, org, node) in enumerate(specs)]
    genesis = Genesis.create(chain_name="netns", genesis_time_ms=int(time.time() * 1000),
                             members=members, consensus=consensus)
    base = NodeConfig.default()
    out = []
    for i, (name, org, node) in enumerate(specs):
        home = Home.at(directory / name)
        home.create_dirs()
        genesis.save(home.genesis_path)
        write_key_file(home.org_key_path, org, label="org")
        write_key_file(home.node_key_path, node, label="node")
        cfg = base.with_(
            node=NodeSection(**{**_section(base.node), "name": name}),
            p2p=P2PSection(**{**_section(base.p2p),
                              "listen": f"/ip4/{nets.data_addr(i)}/tcp/{P2P_PORT}",
                              "reconnect_max_ms": 1000}),
            api=ApiSection(**{**_section(base.api),
                              "listen": f"{nets.api_addr(i)}:{API_PORT}",
                              "tokens": {name: TOKEN}}))
        cfg.save(home.config_path)
        out.append(DevnetNode(
            name=name, home=home.root, api=f"http://{nets.api_addr(i)}:{API_PORT}",
            p2p=f"/ip4/{nets.data_addr(i)}/tcp/{P2P_PORT}/p2p/{peer_id_for(node.public)}",
            org_key=home.org_key_path, observer=False))
    net = Devnet(dir=directory, chain_id=genesis.chain_id, nodes=tuple(out))
    net.save()
    return net
