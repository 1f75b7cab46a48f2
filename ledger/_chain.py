"""Building a chain without a network: execute, seal with validator keys, commit.

This is the single-process path used by `dev generate`, tests, benchmarks and the crash test.
The node uses the same pieces (`execute_block`, `make_header`) with consensus supplying the seal.

Rules the builder follows (and audit replay checks):
- block h has `prev_hash` = hash of block h-1 (block 1: the chain id), `time_ms` not below the
  previous block's nor the genesis time, a proposer that is a validator node key, and
  `validators_hash` of the genesis validator set;
- only transactions the application accepts go into a block (`build_block` drops the others and
  reports them); `state_root` is `next_state_root(previous root, write set)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger._app import Application, BlockContext, Execution, StateReader, TxResult
from ledger._app import next_state_root as _next_root
from ledger._block import Block, BlockHeader, Seal, sign_commit, tx_root
from ledger._crypto import SigningKey
from ledger._genesis import Genesis
from ledger._store import Store, Tip
from ledger._tx import Transaction
from ledger.errors import ConfigError, ValidationError

TxSpec = tuple[SigningKey, str, Mapping[str, Any]]  # (signing org key, kind, body)


def make_header(genesis: Genesis, *, prev: Tip, time_ms: int, proposer: bytes,
                txs: Sequence[Transaction], writes: Mapping[bytes, bytes | None]) -> BlockHeader:
    """The header of the block after `prev` holding `txs` that produced `writes`."""
    return BlockHeader(chain=genesis.chain_id, height=prev.height + 1, prev_hash=prev.block_hash,
                       time_ms=time_ms, proposer=proposer, tx_root=tx_root(txs),
                       tx_count=len(txs), state_root=_next_root(prev.state_root, writes),
                       validators_hash=genesis.validators_hash)


def execute_block(app: Application, state: StateReader, genesis: Genesis, *, height: int,
                  time_ms: int, proposer: bytes, txs: Sequence[Transaction]) -> Execution:
    ctx = BlockContext(chain=genesis.chain_id, height=height, time_ms=time_ms, proposer=proposer)
    return app.execute(state, ctx, list(txs))


def seal_block(genesis: Genesis, block: Block, keys: Sequence[SigningKey], *,
               round_: int = 0) -> Seal:
    """A seal from the validator `keys` given (callers pass at least a quorum)."""
    vset = set(genesis.validators)
    votes = []
    for k in keys:
        if k.public not in vset:
            raise ConfigError(f"key {k.public.hex()[:16]} is not a validator of this genesis",
                              code="not_validator")
        votes.append((k.public, sign_commit(k, genesis.chain_id, block.height, round_,
                                            block.hash)))
    return Seal.build(height=block.height, round_=round_, block_hash=block.hash, votes=votes)


def proposer_for(genesis: Genesis, height: int, round_: int = 0) -> bytes:
    """Round-robin proposer (what dev chains use; consensus has its own rule)."""
    v = genesis.validators
    return v[(height + round_) % len(v)]


def init_store(path: Any, genesis: Genesis, app: Application, *,
               paranoid: bool = False) -> Store:
    """Create and initialise a store for `genesis` (height-0 state from the application).

    `paranoid` (see `Store.open`): a node passes True, so that a damaged data file is refused
    instead of being read as if it were good data."""
    store = Store.open(path, genesis=genesis, create=True, paranoid=paranoid)
    try:
        if not store.initialised:
            store.init(app.genesis_writes(genesis))
    except BaseException:
        store.close()
        raise
    return store


@dataclass
class BuildResult:
    block: Block
    execution: Execution
    rejected: list[TxResult] = field(default_factory=list)


class ChainBuilder:
    """Appends blocks to a store: executes with `app`, seals with `validator_keys`, commits.

    `nonces` tracks each signer's next nonce for `append_specs`, starting from `first_nonce`.
    """

    def __init__(self, store: Store, genesis: Genesis, app: Application,
                 validator_keys: Sequence[SigningKey], *, first_nonce: int = 0) -> None:
        self.store, self.genesis, self.app = store, genesis, app
        self.validator_keys = list(validator_keys)
        self.first_nonce = first_nonce
        self.nonces: dict[bytes, int] = {}
        self._last_time = genesis.genesis_time_ms

    def next_time_ms(self) -> int:
        head = self.store.head()
        if head.height:
            header = self.store.header(head.height)
            assert header is not None
            self._last_time = max(self._last_time, header.time_ms)
        return self._last_time + self.genesis.consensus.block_interval_ms

    def append(self, txs: Sequence[Transaction], *, time_ms: int | None = None) -> Block:
        """Commit a block of `txs`; every one must be accepted by the application.

        Raises:
            ValidationError: naming the first transaction the application rejects.
        """
        head = self.store.head()
        t = self.next_time_ms() if time_ms is None else time_ms
        proposer = proposer_for(self.genesis, head.height + 1)
        ex = execute_block(self.app, self.store, self.genesis, height=head.height + 1, time_ms=t,
                           proposer=proposer, txs=txs)
        for r in ex.results:
            if not r.ok:
                raise ValidationError(f"transaction {r.tx_id.hex()} rejected: {r.reason}",
                                      code=r.code)
        header = make_header(self.genesis, prev=head, time_ms=t, proposer=proposer, txs=txs,
                             writes=ex.writes)
        block = Block(header=header, txs=tuple(txs))
        seal = seal_block(self.genesis, block, self.validator_keys)
        self.store.commit_block(block, seal, ex.writes)
        self._last_time = t
        return block

    def append_specs(self, specs: Sequence[TxSpec], *, time_ms: int | None = None
                     ) -> BuildResult:
        """Sign `specs` with consecutive per-signer nonces, drop what the application rejects
        (one at a time, re-signing the rest so nonces stay gap-free) and commit the block.
        """
        head = self.store.head()
        t = self.next_time_ms() if time_ms is None else time_ms
        proposer = proposer_for(self.genesis, head.height + 1)
        pending = list(specs)
        rejected: list[TxResult] = []
        while True:
            nonces = dict(self.nonces)
            txs = []
            for key, kind, body in pending:
                n = nonces.get(key.public, self.first_nonce)
                nonces[key.public] = n + 1
                txs.append(Transaction.create(key, chain=self.genesis.chain_id, kind=kind,
                                              body=body, nonce=n))
            ex = execute_block(self.app, self.store, self.genesis, height=head.height + 1,
                               time_ms=t, proposer=proposer, txs=txs)
            bad = next((i for i, r in enumerate(ex.results) if not r.ok), None)
            if bad is None:
                break
            # drop only the first rejected one: later rejections may follow from it (a nonce
            # gap, a missing predecessor) and pass once it is gone and the rest re-signed
            rejected.append(ex.results[bad])
            del pending[bad]
        header = make_header(self.genesis, prev=head, time_ms=t, proposer=proposer, txs=txs,
                             writes=ex.writes)
        block = Block(header=header, txs=tuple(txs))
        seal = seal_block(self.genesis, block, self.validator_keys)
        self.store.commit_block(block, seal, ex.writes)
        self.nonces = nonces
        self._last_time = t
        return BuildResult(block, ex, rejected)


def build_chain(store: Store, genesis: Genesis, app: Application,
                validator_keys: Sequence[SigningKey], tx_batches: Iterable[Sequence[TxSpec]],
                *, first_nonce: int = 0) -> list[BuildResult]:
    """Append one block per batch of transaction specs (see `ChainBuilder.append_specs`)."""
    b = ChainBuilder(store, genesis, app, validator_keys, first_nonce=first_nonce)
    return [b.append_specs(batch) for batch in tx_batches]


# -- dev consortia -----------------------------------------------------------------------------

DEV_MEMBER_NAMES = ("acme-motors", "bolt-components", "cellworks", "circular-metals")
DEV_ROLES = (("validator", "member", "authority"), ("validator", "member", "certifier"),
             ("validator", "member"), ("validator", "member", "recycler"))
DEV_GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so a seed fixes a chain


@dataclass(frozen=True, slots=True)
class DevMember:
    name: str
    org: SigningKey
    node: SigningKey
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DevConsortium:
    """A generated consortium: its genesis and every member's private keys (dev and tests)."""

    genesis: Genesis
    members: tuple[DevMember, ...]

    @property
    def validator_keys(self) -> list[SigningKey]:
        vset = set(self.genesis.validators)
        return [m.node for m in self.members if m.node.public in vset]

    @classmethod
    def generate(cls, rng: Any, *, n: int = 4, chain_name: str = "dev-chain",
                 base_port: int = 7100, genesis_time_ms: int = DEV_GENESIS_TIME_MS,
                 consensus: Any = None) -> DevConsortium:
        """`n` members (names and roles from DEV_MEMBER_NAMES/DEV_ROLES, cycling), keys drawn
        from `rng` (a `random.Random`), all validators."""
        from ledger._genesis import ConsensusParams, Member

        members = []
        for i in range(n):
            name = DEV_MEMBER_NAMES[i % len(DEV_MEMBER_NAMES)]
            if i >= len(DEV_MEMBER_NAMES):
                name = f"{name}-{i}"
            members.append(DevMember(name, SigningKey(rng.randbytes(32)),
                                     SigningKey(rng.randbytes(32)), DEV_ROLES[i % len(DEV_ROLES)]))
        genesis = Genesis.create(
            chain_name=chain_name, genesis_time_ms=genesis_time_ms,
            members=[Member(name=m.name, org_key=m.org.public, node_key=m.node.public,
                            addresses=(f"/ip4/127.0.0.1/tcp/{base_port + i}",), roles=m.roles)
                     for i, m in enumerate(members)],
            consensus=consensus or ConsensusParams())
        return cls(genesis, tuple(members))


@dataclass
class DevChainSummary:
    home: Any
    chain_id: bytes
    height: int
    txs: int
    rejected: int
    state_root: bytes


def build_dev_chain(out: Any, consortium: DevConsortium, app: Application,
                    tx_batches: Iterable[Sequence[TxSpec]], *, first_nonce: int = 0,
                    progress: Any = None) -> DevChainSummary:
    """Write a node home at `out` holding a sealed chain of one block per batch.

    Layout: `out/genesis.json`, `out/keys/{org,node}.key` (member 0's keys, so `out` is member
    0's home), `out/consortium/<name>/{org,node}.key` for every member, `out/data/ledger/`.
    Every block is sealed by all the consortium's validators.

    Raises:
        ConfigError: `out` exists and is not an empty directory.
    """
    from pathlib import Path

    from ledger._home import Home, make_private_dir
    from ledger._keyfile import write_key_file

    home = Home.at(Path(out))
    if home.root.exists() and (not home.root.is_dir() or any(home.root.iterdir())):
        raise ConfigError(f"{home.root} exists and is not empty; choose a new directory",
                          code="home_exists")
    home.create_dirs()
    consortium.genesis.save(home.genesis_path)
    first = consortium.members[0]
    write_key_file(home.org_key_path, first.org, label="org")
    write_key_file(home.node_key_path, first.node, label="node")
    for m in consortium.members:
        d = home.root / "consortium" / m.name
        make_private_dir(d)
        write_key_file(d / "org.key", m.org, label="org")
        write_key_file(d / "node.key", m.node, label="node")
    # paranoid as a node opens it, so the store's tables carry the Bloom filters a node's own
    # store has (a benchmark that starts nodes on a generated chain measures a node's store)
    with init_store(home.ledger_dir, consortium.genesis, app, paranoid=True) as store:
        b = ChainBuilder(store, consortium.genesis, app, consortium.validator_keys,
                         first_nonce=first_nonce)
        txs = rejected = 0
        for batch in tx_batches:
            r = b.append_specs(batch)
            txs += len(r.block.txs)
            rejected += len(r.rejected)
            if progress is not None:
                progress(r.block.height, txs)
        head = store.head()
    return DevChainSummary(home.root, consortium.genesis.chain_id, head.height, txs, rejected,
                           head.state_root)


def default_application() -> Application:
    """The consortium's state machine (`ledger.provenance.ProvenanceApp`).

    Raises:
        ConfigError: the provenance package is not available in this installation.
    """
    try:
        from ledger.provenance import ProvenanceApp
    except ImportError as exc:
        raise ConfigError(f"the provenance state machine is not available ({exc})",
                          code="no_application") from exc
    app: Application = ProvenanceApp()
    return app
