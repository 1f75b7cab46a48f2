"""Fuzz targets: each takes arbitrary bytes and must either accept them or raise a clean
`PartledgerError`. Anything else — another exception, a hang, unbounded memory — is a bug.

Each target also names seed inputs (valid examples) that the fuzzers mutate, so that the
interesting paths past the first length check are reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ledger import (
    Block,
    BlockHeader,
    Seal,
    SigningKey,
    Transaction,
    decode,
    encode,
    sha256,
    sign_commit,
    tx_root,
    validators_hash,
)
from ledger._proof import build_bundle, verify_bundle
from ledger.errors import DecodeError, PartledgerError

CHAIN = sha256(b"fuzz chain")
_VALIDATORS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
_ORG = SigningKey(bytes([9]) * 32)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]


def _sample_block() -> tuple[Block, Seal]:
    txs = tuple(Transaction.create(_ORG, chain=CHAIN, kind="ObjectEvent",
                                   body={"action": "ADD", "epcList": [f"urn:epc:id:sgtin:1.2.{i}"]},
                                   nonce=i) for i in range(3))
    header = BlockHeader(chain=CHAIN, height=1, prev_hash=CHAIN, time_ms=1,
                         proposer=_VALIDATORS[0].public, tx_root=tx_root(txs), tx_count=3,
                         state_root=bytes(32),
                         validators_hash=validators_hash([v.public for v in _VALIDATORS]))
    block = Block(header=header, txs=txs)
    votes = [(v.public, sign_commit(v, CHAIN, 1, 0, block.hash)) for v in _VALIDATORS[:3]]
    return block, Seal.build(height=1, round_=0, block_hash=block.hash, votes=votes)


def _seeds_codec() -> list[bytes]:
    block, seal = _sample_block()
    return [block.encode(), seal.encode(), block.txs[0].encode()]


def _codec_twins(data: bytes) -> object:
    """`decode` on the native fast path and on the pure-Python path: the same value or the same
    refusal (the native `canonical_check` accepts exactly what the Python path accepts)."""
    from ledger import _accel, _native_py
    from ledger._codec import decode_python

    native = _accel.backend is not _native_py
    fast = native and _accel.backend.canonical_check(data)
    try:
        ref = decode_python(data)
    except DecodeError:
        assert not fast, f"native accepts what Python refuses: {data.hex()}"
        raise
    if native:
        assert fast, f"native refuses what Python accepts: {data.hex()}"
        assert repr(decode(data)) == repr(ref)  # repr tells True from 1, b"" from ""
    return ref


def _block_parts(data: bytes) -> object:
    """`Block.parts` refuses what `Block.decode` refuses outside the transactions' bytes, and
    where both answer they give the same header and transaction bytes."""
    try:
        whole: Block | None = Block.decode(data)
    except DecodeError:
        whole = None
    try:
        header, txs = Block.parts(data)
    except DecodeError:
        assert whole is None, "parts refuses a block that decode accepts"
        raise
    assert whole is None or (whole.header, [t.encode() for t in whole.txs]) == (header, txs), \
        "parts and decode disagree"
    return header  # (parts alone may accept a block whose transactions are bad)


def _proof_json(data: bytes) -> object:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None  # not JSON: the CLI refuses it before verification
    return verify_bundle(doc, chain_id=CHAIN, validators=[v.public for v in _VALIDATORS])


def _seeds_proof() -> list[bytes]:
    block, seal = _sample_block()
    return [json.dumps(build_bundle(*Block.parts(block.encode()), seal, i)).encode() for i in range(3)]


# -- network frames, consensus messages -----------------------------------------------------------

def _frames(data: bytes) -> object:
    """The stream reader never raises: bad frames are counted and skipped. Fed in two pieces
    (a split anywhere must not change the outcome)."""
    from p2p import FrameDecoder, decode_batch

    whole = FrameDecoder(max_frame_bytes=4096)
    got = whole.feed(data)
    split = FrameDecoder(max_frame_bytes=4096)
    cut = data[0] % (len(data) + 1) if data else 0
    assert split.feed(data[:cut]) + split.feed(data[cut:]) == got
    assert whole.stats.malformed == split.stats.malformed
    if len(data) > 4:
        try:  # the body decoder alone: a batch or a DecodeError
            decode_batch(data[4:])
        except DecodeError:
            pass
    return got


def _seeds_frames() -> list[bytes]:
    from p2p import encode_frame

    msgs = _seeds_consensus()
    return [encode_frame([("c", m) for m in msgs[:2]]), encode_frame([("tip", b"\x81\xa6height\x05")]),
            encode_frame([("txs", _seeds_codec()[2])]) * 2]


def _seeds_consensus() -> list[bytes]:
    from consensus._messages import CommitVote, Prepare, Proposal, RoundChange

    block, _seal = _sample_block()
    k = _VALIDATORS[1]
    prep = [Prepare.sign(v, chain=CHAIN, height=1, round_=0, block_hash=block.hash)
            for v in _VALIDATORS[:3]]
    rc = RoundChange.sign(k, chain=CHAIN, height=1, round_=1, prepared_round=0,
                          prepared_hash=block.hash, prepared_block=block.encode(), prepares=prep)
    return [prep[0].encode(),
            CommitVote.sign(k, chain=CHAIN, height=1, round_=0, block_hash=block.hash).encode(),
            rc.encode(),
            Proposal.sign(_VALIDATORS[2], chain=CHAIN, height=1, round_=1,
                          block_hash=block.hash, block=block.encode(), round_changes=[rc],
                          prepares=prep).encode()]


def _consensus_decode(data: bytes) -> object:
    from consensus._messages import decode_message

    return decode_message(data)


_CORE: list[object] = []


def _consensus_core(data: bytes) -> object:
    """A validator's core fed a hostile message: it may drop it, never raise. One core per
    process, kept across inputs (so sequences of messages are explored too)."""
    from consensus import Config, Core, MessageReceived, Start

    if not _CORE:
        def hash_block(b: bytes) -> bytes:
            return Block.decode(b).hash
        core = Core(Config(chain=CHAIN, validators=tuple(v.public for v in _VALIDATORS),
                           hash_block=hash_block), _VALIDATORS[3])
        core.step(Start())
        _CORE.append(core)
    live = _CORE[0]
    assert isinstance(live, Core)
    try:
        return live.step(MessageReceived(msg=data))
    except PartledgerError as exc:  # the core's contract: it drops bad messages itself
        raise AssertionError(f"Core.step raised {exc!r} on a peer message") from exc


# -- files: exports, genesis, key files, config -------------------------------------------------

def _export_file(data: bytes) -> object:
    """`audit replay --chain FILE`: read an export file to its end and replay it against the
    fuzz node's genesis."""
    import tempfile

    from ledger._chain import default_application
    from ledger._export import ExportReader
    from ledger._replay import replay_export

    with tempfile.NamedTemporaryFile(prefix="fuzz-export-") as f:
        f.write(data)
        f.flush()
        reader = ExportReader.open(f.name)
        try:
            return replay_export(reader, _node().node.genesis, default_application())
        finally:
            reader.close()


def _seeds_export() -> list[bytes]:
    import tempfile
    from pathlib import Path

    from ledger._export import export_chain

    n = _node()
    if n.node.store.height == 0:
        _sync_response(n.sync_seed())
    with tempfile.TemporaryDirectory(prefix="fuzz-seed-") as d:
        export_chain(n.node.store, Path(d) / "chain.plx")
        return [(Path(d) / "chain.plx").read_bytes()]


def _genesis(data: bytes) -> object:
    from ledger import Genesis

    return Genesis.loads(data)


def _seeds_genesis() -> list[bytes]:
    return [_node().node.genesis.to_json().encode()]


def _key_file(data: bytes) -> object:
    import tempfile

    from ledger import read_key_file

    with tempfile.NamedTemporaryFile(prefix="fuzz-key-") as f:
        f.write(data)
        f.flush()
        return read_key_file(f.name, passphrase=b"fuzz" if _cheap_kdf(data) else None)


def _cheap_kdf(data: bytes) -> bool:
    """Derive only with at most the parameters we write (a key file is the operator's own, and
    its KDF cost, up to 2 GiB by design, is not an input to fuzz for speed), and only for one
    input in 64 (an Argon2id derivation costs ~0.1 s; the parsing before it is what we fuzz)."""
    from ledger._keyfile import MEMLIMIT, OPSLIMIT

    if sha256(data)[0] >= 4 and data not in _KEY_SEEDS:
        return False
    try:
        kdf = json.loads(data).get("kdf")
        return bool(kdf["opslimit"] <= OPSLIMIT and kdf["memlimit"] <= MEMLIMIT)
    except Exception:  # anything odd: no passphrase (read_key_file judges)
        return False


def _seeds_key_file() -> list[bytes]:
    import tempfile
    from pathlib import Path

    from ledger import write_key_file

    out = []
    with tempfile.TemporaryDirectory(prefix="fuzz-seed-") as d:
        for i, pw in enumerate((None, b"fuzz")):
            p = Path(d) / f"k{i}.key"
            write_key_file(p, _ORG, passphrase=pw, label="org")
            out.append(p.read_bytes())
    _KEY_SEEDS.update(out)
    return out


_KEY_SEEDS: set[bytes] = set()


def _config(data: bytes) -> object:
    import tempfile

    from cli.node._config import NodeConfig

    with tempfile.NamedTemporaryFile(prefix="fuzz-config-", suffix=".toml") as f:
        f.write(data)
        f.flush()
        return NodeConfig.load(f.name)


def _seeds_config() -> list[bytes]:
    import tempfile
    from pathlib import Path

    from cli.node._config import NodeConfig

    with tempfile.TemporaryDirectory(prefix="fuzz-seed-") as d:
        NodeConfig.default().save(Path(d) / "config.toml")
        return [(Path(d) / "config.toml").read_bytes()]


# -- EPCIS documents ------------------------------------------------------------------------------

def _epcis(data: bytes) -> object:
    """`epcis check`: load the document, validate schema and rules, report; never raise past
    DecodeError for what is not JSON."""
    from ledger.provenance._epcis import check_document, load_document

    return check_document(load_document(data)).ok


def _seeds_epcis() -> list[bytes]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "unit" / "provenance" / "data" / "epcis"
    files = sorted(root.rglob("*.jsonld"))[:6] if root.is_dir() else []
    return [f.read_bytes() for f in files] or [json.dumps(_EVENT_DOC).encode()]


_EVENT_DOC = {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
              "type": "EPCISDocument", "schemaVersion": "2.0",
              "creationDate": "2025-03-01T10:00:00.000Z",
              "epcisBody": {"eventList": [{
                  "type": "ObjectEvent", "eventTime": "2025-03-01T10:00:00.000Z",
                  "eventTimeZoneOffset": "+00:00", "action": "ADD", "bizStep": "commissioning",
                  "epcList": ["urn:epc:id:sgtin:4012345.077889.1"]}]}}


# -- a node on a temporary directory: sync requests/responses, API request bodies ----------------

class _NodeUnderFuzz:
    """One single-process node (not running its network) whose sync handler, sync applier and
    HTTP app are driven directly. Built once per process, on a temporary directory."""

    def __init__(self) -> None:
        import tempfile
        from pathlib import Path

        from cli.node import Node, NodeConfig
        from cli.node._api import build_app
        from cli.node._devnet import MemberSpec, create_devnet
        from ledger import ConsensusParams, Home

        self._dir = tempfile.TemporaryDirectory(prefix="fuzz-node-")
        members = [MemberSpec(name=f"m{i}", roles=("validator", "member"),
                              org=SigningKey(bytes([0x40 + i]) * 32), node=v)
                   for i, v in enumerate(_VALIDATORS)]
        net = create_devnet(Path(self._dir.name) / "net", members=members,
                            consensus=ConsensusParams(timeout_ms=1000),
                            config=NodeConfig.for_testing())
        home = Home.at(net.nodes[0].home)
        self.node = Node.open(home, NodeConfig.load(home.config_path))
        self.app = build_app(self.node)
        self.org = members[0].org

    def sync_seed(self) -> bytes:
        from ledger._chain import seal_block

        built = self.node.executor.build(proposer=_VALIDATORS[0].public, candidates=[])
        seal = seal_block(self.node.genesis, built.block, _VALIDATORS[:3])
        return encode([[built.block.encode(), seal.encode()]])

    def request(self, method: str, path: str, body: bytes, ctype: str) -> tuple[int, bytes]:
        import httpx
        import trio
        import trio.testing

        async def go() -> tuple[int, bytes]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://n") as c:
                r = await c.request(method, path, content=body,
                                    headers={"content-type": ctype})
                return r.status_code, r.content

        # long polls (wait_ms) must not make a fuzz input slow: the clock jumps when idle
        return trio.run(go, clock=trio.testing.MockClock(autojump_threshold=0))


_NODE: list[_NodeUnderFuzz] = []


def _node() -> _NodeUnderFuzz:
    if not _NODE:
        _NODE.append(_NodeUnderFuzz())
    return _NODE[0]


def _sync_request(data: bytes) -> object:
    """What a node answers a peer's sync request: always a list (possibly empty)."""
    import trio

    n = _node()
    out = trio.run(n.node._serve_sync, _VALIDATORS[1].public, data)
    assert isinstance(decode(out), list)
    return out


def _sync_response(data: bytes) -> object:
    """A peer's sync answer: every item is checked (seal first) before anything is stored;
    anything that does not check out is refused with a PartledgerError."""
    n = _node()
    items = decode(data)
    if not isinstance(items, list):
        return None
    for item in items[:8]:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and isinstance(item[1], bytes)):
            return None
        n.node._apply_one(item[0], item[1])
    return items


_API_ROUTES = (("POST", "/v1/txs", "application/json"),
               ("POST", "/v1/txs", "application/msgpack"),
               ("POST", "/v1/txs/status", "application/json"),
               ("POST", "/v1/recall", "application/json"),
               ("GET", "/v1/blocks/", ""), ("GET", "/v1/txs/", ""), ("GET", "/v1/nonce/", ""),
               ("GET", "/v1/parts/", ""), ("GET", "/v1/trace/back/", ""),
               ("GET", "/v1/events?", ""), ("GET", "/v1/blocks?", ""))


_PATH_ROUTES = ("/v1/parts/", "/v1/trace/back/")  # {ident:path}: any characters


def _api(data: bytes) -> object:
    """The first byte picks a route; the rest is the body (POST) or the path/query (GET). The
    node answers every request with JSON and a 2xx/4xx status, never a 500 or an exception."""
    from urllib.parse import quote

    if not data:
        return None
    method, path, ctype = _API_ROUTES[data[0] % len(_API_ROUTES)]
    rest = data[1:]
    if method == "GET":
        text = rest.decode("utf-8", "replace")
        if not path.endswith("?") and path not in _PATH_ROUTES:
            # one path segment: a '/' (or nothing) would name another route
            text = text.replace("/", "") or "0"
        path = path + quote(text, safe="=&" if path.endswith("?") else "")
        rest = b""
    status, content = _node().request(method, path, rest, ctype)
    assert status < 500, (status, content[:300])
    if status == 404 and content == b"Not Found":
        return None  # no route matched (e.g. a newline in an {ident:path}): Starlette's own 404
    if status in (307, 308):
        return None  # `/v1/trace/back/.` is `/v1/trace/back`: Starlette redirects to the slash
    doc = json.loads(content)
    if status >= 400:  # one error with a code, or (a batch) a code per refused transaction
        assert isinstance(doc, dict), doc
        items = doc.get("results", [doc])
        assert all(isinstance(i.get("code"), str) and (i.get("error") or i.get("reason"))
                   for i in items if not i.get("accepted")), doc
    return doc


def _seeds_api() -> list[bytes]:
    txs = [Transaction.create(_node().org, chain=_node().node.genesis.chain_id,
                              kind="ObjectEvent", body=_EVENT_DOC["epcisBody"]["eventList"][0],  # type: ignore[index]
                              nonce=i) for i in range(2)]
    return [bytes([0]) + json.dumps({"txs": [t.encode().hex() for t in txs]}).encode(),
            bytes([1]) + encode([t.encode() for t in txs]),
            bytes([2]) + json.dumps({"tx_ids": [t.tx_id.hex() for t in txs],
                                     "wait_ms": 50}).encode(),
            bytes([3]) + b'{"ids": ["urn:epc:id:sgtin:4012345.077889.1"]}',
            bytes([4]) + b"1", bytes([5]) + txs[0].tx_id.hex().encode(),
            bytes([9]) + b"MATCH_anyEPC=urn:epc:id:sgtin:4012345.077889.1&limit=5"]


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("codec", decode, _seeds_codec),
    Target("codec_twins", _codec_twins, _seeds_codec),
    Target("transaction", Transaction.decode, lambda: [_seeds_codec()[2]]),
    Target("block", Block.decode, lambda: [_seeds_codec()[0]]),
    Target("block_parts", _block_parts, lambda: [_seeds_codec()[0]]),
    Target("seal", Seal.decode, lambda: [_seeds_codec()[1]]),
    Target("proof_bundle", _proof_json, _seeds_proof),
    Target("p2p_frames", _frames, _seeds_frames),
    Target("consensus_message", _consensus_decode, _seeds_consensus),
    Target("consensus_core", _consensus_core, _seeds_consensus),
    Target("export_file", _export_file, _seeds_export),
    Target("genesis", _genesis, _seeds_genesis),
    Target("key_file", _key_file, _seeds_key_file),
    Target("config", _config, _seeds_config),
    Target("epcis_document", _epcis, _seeds_epcis),
    Target("sync_request", _sync_request, lambda: [encode({"from": 1, "to": 5})]),
    Target("sync_response", _sync_response, lambda: [_node().sync_seed()]),
    Target("api_request", _api, _seeds_api),
]}
