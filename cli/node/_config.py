"""The node's configuration file, `HOME/config.toml`.

Each section is a frozen dataclass with `default()`, `for_testing()` and `validate()` (the
CometBFT pattern): code never reads a raw TOML table, and a bad value is refused when the node
starts, with the file, section and key named, never half-way through a run. The file is rendered
from a commented template so operators see what every key means.

What lives here is local to one node (ports, limits, tokens, logging). What the consortium must
agree on (validators, block size, timeouts) lives in the genesis file.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from ledger.errors import ConfigError

CONFIG_FORMAT = 1
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "text")


def _bad(section: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"config [{section}] {key}: {msg}", code="config_invalid")


def _positive(section: str, key: str, value: int, *, maximum: int = 2**40) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        raise _bad(section, key, f"must be an integer between 1 and {maximum}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSection:
    name: str = ""
    log_level: str = "info"
    log_format: str = "json"
    libp2p_log_level: str = "critical"
    # threads of the native extension's pool (batch signature checks, Merkle roots): 0 = one
    # per core. Nodes that share a machine (a devnet) do better dividing its cores than each
    # spreading over all of them: the threads only contend, and idle ones spin before sleeping
    native_threads: int = 0

    @classmethod
    def default(cls) -> NodeSection:
        return cls()

    @classmethod
    def for_testing(cls) -> NodeSection:
        return cls(log_level="warning")

    def validate(self) -> None:
        if self.log_level not in LOG_LEVELS:
            raise _bad("node", "log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        if self.libp2p_log_level not in LOG_LEVELS:
            raise _bad("node", "libp2p_log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise _bad("node", "log_format", f"must be one of {', '.join(LOG_FORMATS)}")
        if (not isinstance(self.native_threads, int) or isinstance(self.native_threads, bool)
                or not 0 <= self.native_threads <= 1024):
            raise _bad("node", "native_threads", "must be an integer between 0 (one per core) "
                       "and 1024")


@dataclass(frozen=True, slots=True, kw_only=True)
class P2PSection:
    listen: str = "/ip4/127.0.0.1/tcp/7001"
    max_frame_bytes: int = 48 * 1024 * 1024
    inbox_capacity: int = 8192
    outbox_capacity: int = 8192
    tx_batch_max: int = 1000
    tx_flush_ms: int = 2
    reconnect_max_ms: int = 5000

    @classmethod
    def default(cls) -> P2PSection:
        return cls()

    @classmethod
    def for_testing(cls) -> P2PSection:
        return cls(listen="/ip4/127.0.0.1/tcp/0", reconnect_max_ms=1000)

    def validate(self) -> None:
        if not self.listen.startswith("/ip4/") and not self.listen.startswith("/ip6/"):
            raise _bad("p2p", "listen", "must be a multiaddr such as /ip4/127.0.0.1/tcp/7001")
        if "/tcp/" not in self.listen:
            raise _bad("p2p", "listen", "must be a TCP multiaddr (/tcp/PORT)")
        _positive("p2p", "max_frame_bytes", self.max_frame_bytes, maximum=256 * 2**20)
        _positive("p2p", "inbox_capacity", self.inbox_capacity, maximum=10**6)
        _positive("p2p", "outbox_capacity", self.outbox_capacity, maximum=10**6)
        _positive("p2p", "tx_batch_max", self.tx_batch_max, maximum=100_000)
        _positive("p2p", "tx_flush_ms", self.tx_flush_ms, maximum=10_000)
        _positive("p2p", "reconnect_max_ms", self.reconnect_max_ms, maximum=600_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSection:
    listen: str = "127.0.0.1:8001"
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_txs: int = 2000
    # organisation name -> API token; required for write endpoints when `listen` is not loopback
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls) -> ApiSection:
        return cls()

    @classmethod
    def for_testing(cls) -> ApiSection:
        return cls(listen="127.0.0.1:0")

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def validate(self) -> None:
        if ":" not in self.listen:
            raise _bad("api", "listen", "must be HOST:PORT, e.g. 127.0.0.1:8001")
        try:
            port = self.port
        except ValueError as exc:
            raise _bad("api", "listen", "the port must be a number") from exc
        if not 0 <= port < 65536:
            raise _bad("api", "listen", "the port must be between 0 and 65535")
        _positive("api", "max_body_bytes", self.max_body_bytes, maximum=256 * 2**20)
        _positive("api", "max_batch_txs", self.max_batch_txs, maximum=100_000)
        for org, token in self.tokens.items():
            if not isinstance(token, str) or len(token) < 16:
                raise _bad("api", f"tokens.{org}", "must be a string of at least 16 characters")
        if not self.is_loopback and not self.tokens:
            raise _bad("api", "tokens", f"the API listens on {self.host}, beyond loopback: "
                       "give each organisation a token ([api.tokens] name = \"...\")")


@dataclass(frozen=True, slots=True, kw_only=True)
class MempoolSection:
    max_txs: int = 100_000
    max_bytes: int = 128 * 1024 * 1024
    max_tx_bytes: int = 256 * 1024
    max_nonce_gap: int = 1000
    recent_rejections: int = 100_000

    @classmethod
    def default(cls) -> MempoolSection:
        return cls()

    @classmethod
    def for_testing(cls) -> MempoolSection:
        return cls(max_txs=20_000, max_bytes=32 * 1024 * 1024)

    def validate(self) -> None:
        _positive("mempool", "max_txs", self.max_txs, maximum=10**7)
        _positive("mempool", "max_bytes", self.max_bytes, maximum=2**36)
        _positive("mempool", "max_tx_bytes", self.max_tx_bytes, maximum=256 * 1024)
        _positive("mempool", "max_nonce_gap", self.max_nonce_gap, maximum=10**6)
        _positive("mempool", "recent_rejections", self.recent_rejections, maximum=10**7)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncSection:
    batch_blocks: int = 64
    batch_bytes: int = 16 * 1024 * 1024
    lag_before_sync_ms: int = 1500
    announce_interval_ms: int = 1000

    @classmethod
    def default(cls) -> SyncSection:
        return cls()

    @classmethod
    def for_testing(cls) -> SyncSection:
        return cls(lag_before_sync_ms=500, announce_interval_ms=300)

    def validate(self) -> None:
        _positive("sync", "batch_blocks", self.batch_blocks, maximum=10_000)
        _positive("sync", "batch_bytes", self.batch_bytes, maximum=256 * 2**20)
        _positive("sync", "lag_before_sync_ms", self.lag_before_sync_ms, maximum=600_000)
        _positive("sync", "announce_interval_ms", self.announce_interval_ms, maximum=600_000)


_SECTIONS: dict[str, type[Any]] = {
    "node": NodeSection, "p2p": P2PSection, "api": ApiSection, "mempool": MempoolSection,
    "sync": SyncSection,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    p2p: P2PSection = field(default_factory=P2PSection)
    api: ApiSection = field(default_factory=ApiSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    sync: SyncSection = field(default_factory=SyncSection)

    @classmethod
    def default(cls) -> NodeConfig:
        return cls()

    @classmethod
    def for_testing(cls) -> NodeConfig:
        return cls(node=NodeSection.for_testing(), p2p=P2PSection.for_testing(),
                   api=ApiSection.for_testing(), mempool=MempoolSection.for_testing(),
                   sync=SyncSection.for_testing())

    def validate(self) -> None:
        self.node.validate()
        self.p2p.validate()
        self.api.validate()
        self.mempool.validate()
        self.sync.validate()

    def with_(self, **sections: Any) -> NodeConfig:
        return replace(self, **sections)

    # -- files --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        """Read and validate a config file; missing keys take their defaults.

        Raises:
            ConfigError: unreadable, not TOML, unknown sections or keys, or invalid values.
        """
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {p} does not exist (run `partledger node init`)",
                              code="config_missing") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {p}: {exc}",
                              code="config_unreadable") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}",
                              code="config_invalid") from exc
        return cls.from_document(doc, source=str(p))

    @classmethod
    def from_document(cls, doc: dict[str, Any], *, source: str = "config") -> NodeConfig:
        fmt = doc.pop("format", CONFIG_FORMAT)
        if fmt != CONFIG_FORMAT:
            raise ConfigError(f"{source}: format {fmt!r} is not supported (expected "
                              f"{CONFIG_FORMAT})", code="config_version")
        unknown = set(doc) - set(_SECTIONS)
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}",
                              code="config_invalid")
        parts: dict[str, Any] = {}
        for name, typ in _SECTIONS.items():
            table = doc.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: [{name}] must be a table", code="config_invalid")
            known = {f.name: f for f in fields(typ)}
            for key, value in table.items():
                if key not in known:
                    raise ConfigError(f"{source}: [{name}] has no key {key!r}",
                                      code="config_invalid")
                want = type(getattr(typ(), key))
                if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                    raise ConfigError(f"{source}: [{name}] {key} must be of type "
                                      f"{want.__name__}", code="config_invalid")
            parts[name] = typ(**table)
        cfg = cls(**parts)
        cfg.validate()
        return cfg

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": CONFIG_FORMAT}
        for name in _SECTIONS:
            section = getattr(self, name)
            doc[name] = {f.name: getattr(section, f.name) for f in fields(section)}
        return doc

    def render(self) -> str:
        """The file's text: a commented template filled with this configuration's values."""
        doc = self.to_document()
        out = [_HEADER, f"format = {CONFIG_FORMAT}\n"]
        for name in _SECTIONS:
            out.append(f"\n{_COMMENTS[name]}")
            out.append(tomli_w.dumps({name: doc[name]}))
        return "".join(out)

    def save(self, path: str | Path) -> None:
        p = Path(path)
        tmp = p.with_suffix(".toml.tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(p)


_HEADER = """\
# partledger node configuration (written by `partledger node init`).
# Everything the consortium must agree on is in genesis.json; this file is this node's own.
"""

_COMMENTS = {
    "node": "# name: this node's member name in genesis.json (informational)\n"
            "# log_level: debug | info | warning | error | critical; log_format: json | text\n"
            "# libp2p_log_level: how much of py-libp2p's own logging to keep (it is noisy)\n"
            "# native_threads: threads for batch signature checks and Merkle roots (0: one\n"
            "#                 per core; nodes sharing a machine should divide its cores)\n",
    "p2p": "# listen: libp2p TCP multiaddr (Noise + yamux; only genesis members may connect)\n"
           "# max_frame_bytes: larger frames from peers are dropped and counted\n"
           "# inbox/outbox_capacity: messages queued per channel (full: dropped and counted)\n"
           "# tx_batch_max / tx_flush_ms: transaction fan-out batching\n",
    "api": "# listen: HOST:PORT of the HTTP API (loopback by default)\n"
           "# max_body_bytes: larger request bodies get 413; max_batch_txs per submission\n"
           "# tokens: organisation name -> API token; beyond loopback, write endpoints need\n"
           "#         'Authorization: Bearer <token>'\n",
    "mempool": "# bounds on pending transactions (count, total bytes, one tx's bytes)\n"
               "# max_nonce_gap: how far ahead of a signer's next nonce a tx may be queued\n",
    "sync": "# block sync: blocks and bytes per request; how long a peer must be ahead\n"
            "# before a validator fetches blocks; how often tips are announced\n",
}
