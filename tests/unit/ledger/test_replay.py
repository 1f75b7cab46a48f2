"""Audit replay and the export file: honest chains pass, every kind of damage is named."""

from __future__ import annotations

import dataclasses
import random
import struct
from pathlib import Path

import plyvel
import pytest

from ledger import Block, Seal, Store, Transaction
from ledger._chain import ChainBuilder, make_header, proposer_for, seal_block
from ledger._export import ExportReader, export_chain
from ledger._replay import ReplayError, replay_export, replay_store
from ledger.errors import PartledgerError
from tests.unit.ledger.helpers import KVApp, build_kv_chain, make_consortium, raw_edit


def test_replay_store_and_export_of_honest_chain(tmp_path: Path) -> None:
    c = make_consortium()
    seen: list[int] = []
    with build_kv_chain(tmp_path / "db", c, blocks=6, txs=5) as s:
        tip = s.tip()
        rep = replay_store(s, c.genesis, KVApp(), progress=lambda h, n: seen.append(h))
        summary = export_chain(s, tmp_path / "chain.plx")
    assert tip is not None
    assert rep.height == 6 and rep.blocks == 6 and rep.state_root == tip.state_root
    assert rep.txs > 0 and seen[-1] == 6
    assert summary.blocks == 6
    rep2 = replay_export(ExportReader.open(tmp_path / "chain.plx"), c.genesis, KVApp())
    assert (rep2.height, rep2.txs, rep2.state_root) == (rep.height, rep.txs, rep.state_root)


def _h(prefix: bytes, h: int) -> bytes:
    return prefix + struct.pack(">Q", h)


def test_replay_names_a_bad_transaction_signature(tmp_path: Path) -> None:
    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=4, txs=3).close()
    with Store.open(tmp_path / "db") as s:
        blk = s.block(2)
    assert blk is not None
    tx = blk.txs[1]
    forged = Transaction.from_obj({**tx.to_map(), "sig": bytes(64)})
    # keep the header consistent so only the signature is wrong
    txs = (blk.txs[0], forged, *blk.txs[2:])
    raw_edit(tmp_path / "db", {_h(b"b/", 2): Block(header=blk.header, txs=txs).encode()})
    with Store.open(tmp_path / "db") as s, pytest.raises(ReplayError) as e:
        replay_store(s, c.genesis, KVApp())
    # the tx_root no longer matches, which is caught first (the header binds the tx bytes)
    assert e.value.height == 2 and e.value.code == "tx_root"


def _append_raw(s: Store, block: Block, seal: Seal, writes: dict[bytes, bytes | None]) -> None:
    s.commit_block(block, seal, writes)


@pytest.mark.parametrize("fault", ["bad_tx_sig", "wrong_state", "short_seal", "rejected_tx", "bad_proposer",
                                   "time_back", "foreign_seal"])
def test_replay_names_the_failing_height(tmp_path: Path, fault: str) -> None:
    c = make_consortium()
    app = KVApp()
    with build_kv_chain(tmp_path / "db", c, blocks=3, txs=3) as s:
        head = s.head()
        prev_block = s.block(3)
        assert prev_block is not None
        b = ChainBuilder(s, c.genesis, app, c.nodes)
        t = prev_block.header.time_ms + 10
        proposer = proposer_for(c.genesis, 4)
        key = c.orgs[0]
        nonce = int(s.get(b"nonce/" + key.public) or b"0")
        tx = Transaction.create(key, chain=c.genesis.chain_id, kind="put",
                                body={"key": "x", "value": "y"}, nonce=nonce)
        if fault == "rejected_tx":
            tx = Transaction.create(key, chain=c.genesis.chain_id, kind="del",
                                    body={"key": "never-set"}, nonce=nonce)
        if fault == "bad_tx_sig":
            tx = Transaction.from_obj({**tx.to_map(), "sig": bytes(64)})
        writes: dict[bytes, bytes | None] = {b"kv/x": b"y", b"nonce/" + key.public: b"9"}
        if fault == "bad_proposer":
            proposer = c.orgs[1].public
        if fault == "time_back":
            t = prev_block.header.time_ms - 1
        header = make_header(c.genesis, prev=head, time_ms=t, proposer=proposer, txs=[tx],
                             writes=writes)
        block = Block(header=header, txs=(tx,))
        keys = c.nodes[:2] if fault == "short_seal" else c.nodes[:3]
        seal = seal_block(c.genesis, block, keys)
        if fault == "foreign_seal":
            other = make_consortium(seed=5)
            vote = seal.votes[0]
            seal = dataclasses.replace(seal, votes=(*seal.votes[1:], (other.nodes[0].public,
                                                                      vote[1])))
        _append_raw(s, block, seal, writes)
        del b
        with pytest.raises(ReplayError) as e:
            replay_store(s, c.genesis, app)
    expected = {"bad_tx_sig": "bad_tx_signature", "wrong_state": "state_root", "short_seal": "seal_short",
                "rejected_tx": "tx_rejected:no_such_key", "bad_proposer": "bad_proposer",
                "time_back": "time", "foreign_seal": "seal_unknown_signer"}[fault]
    assert e.value.height == 4
    assert e.value.code == expected
    if fault in ("rejected_tx", "bad_tx_sig"):
        assert e.value.tx == tx.tx_id


@pytest.mark.parametrize("first", ["bad_tx_sig", "wrong_state"])
def test_replay_pipeline_reports_the_earlier_height_first(tmp_path: Path, first: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """One block per window: block 5 (broken link in time) is decoded and checked while block
    4 (whose signature or execution fails) waits to execute; block 4's failure wins."""
    import ledger._replay

    monkeypatch.setattr(ledger._replay, "SIG_BATCH_TXS", 1)
    c = make_consortium()
    app = KVApp()
    with build_kv_chain(tmp_path / "db", c, blocks=3, txs=2) as s:
        key = c.orgs[0]
        nonce = int(s.get(b"nonce/" + key.public) or b"0")
        for height, fault in ((4, first), (5, "time_back")):
            head = s.head()
            prev = s.block(head.height)
            assert prev is not None
            tx = Transaction.create(key, chain=c.genesis.chain_id, kind="put",
                                    body={"key": f"k{height}", "value": "v"}, nonce=nonce)
            nonce += 1
            if fault == "bad_tx_sig":
                tx = Transaction.from_obj({**tx.to_map(), "sig": bytes(64)})
            writes: dict[bytes, bytes | None] = {f"kv/k{height}".encode(): b"v",
                                                 b"nonce/" + key.public: str(nonce - 1).encode()}
            if fault == "wrong_state":
                writes[b"kv/extra"] = b"1"
            t = prev.header.time_ms + (-1 if fault == "time_back" else 10)
            header = make_header(c.genesis, prev=head, time_ms=t,
                                 proposer=proposer_for(c.genesis, height), txs=[tx],
                                 writes=writes)
            block = Block(header=header, txs=(tx,))
            _append_raw(s, block, seal_block(c.genesis, block, c.nodes[:3]), writes)
        with pytest.raises(ReplayError) as e:
            replay_store(s, c.genesis, app)
    assert (e.value.height, e.value.code) == (4, {"bad_tx_sig": "bad_tx_signature",
                                                  "wrong_state": "state_root"}[first])


def test_replay_refuses_another_genesis(tmp_path: Path) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=1, txs=1) as s:
        with pytest.raises(ReplayError) as e:
            replay_store(s, make_consortium(seed=3).genesis, KVApp())
        assert e.value.height == 0
        export_chain(s, tmp_path / "x.plx")
    with pytest.raises(ReplayError):
        replay_export(ExportReader.open(tmp_path / "x.plx"), make_consortium(seed=3).genesis,
                      KVApp())


def _replay_file(path: Path, c: object) -> None:
    from tests.unit.ledger.helpers import Consortium
    assert isinstance(c, Consortium)
    replay_export(ExportReader.open(path), c.genesis, KVApp())


def test_export_any_changed_byte_fails_cleanly(tmp_path: Path) -> None:
    """Flip a bit at every byte position: never a false ok, never a crash."""
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=2, txs=2) as s:
        export_chain(s, tmp_path / "chain.plx")
    data = (tmp_path / "chain.plx").read_bytes()
    rng = random.Random(1234)
    positions = range(len(data))
    bad = tmp_path / "bad.plx"
    for pos in positions:
        mutated = bytearray(data)
        mutated[pos] ^= 1 << rng.randrange(8)
        bad.write_bytes(bytes(mutated))
        with pytest.raises(PartledgerError):
            _replay_file(bad, c)
    # truncation at any record boundary or inside, and appended bytes
    for cut in (0, 7, 8, 20, len(data) // 2, len(data) - 1):
        bad.write_bytes(data[:cut])
        with pytest.raises(PartledgerError):
            _replay_file(bad, c)
    bad.write_bytes(data + b"\0")
    with pytest.raises(PartledgerError):
        _replay_file(bad, c)


def _replay_dir(path: Path, c: object) -> None:
    from tests.unit.ledger.helpers import Consortium
    assert isinstance(c, Consortium)
    with Store.open(path, read_only=True, paranoid=True) as s:
        replay_store(s, c.genesis, KVApp())


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7


BLOOM_FILTER_NAME = b"filter.leveldb.BuiltinBloomFilter2"


def _read_regions(data: bytes) -> list[int]:
    """Byte positions of a table file that hold data: the data blocks and the index block.

    Left out, because changing them changes no data: the footer's padding; the metaindex
    block and the Bloom filter block (a paranoid store, as replay opens, verifies the filter
    block's checksum and simply reads without a filter when it is damaged or missing — a filter
    only saves reads)."""
    footer = len(data) - 48
    meta_off, pos = _varint(data, footer)
    meta_size, pos = _varint(data, pos)
    idx_off, pos = _varint(data, pos)
    idx_size, pos = _varint(data, pos)
    meta = data[meta_off:meta_off + meta_size]
    skip = range(0)
    at = meta.find(BLOOM_FILTER_NAME)
    if at >= 0:  # the metaindex entry's value, right after its key, is the filter's handle
        f_off, p = _varint(meta, at + len(BLOOM_FILTER_NAME))
        f_size, _ = _varint(meta, p)
        skip = range(f_off, f_off + f_size + 5)
    return [*(i for i in range(meta_off) if i not in skip),
            *range(idx_off, idx_off + idx_size + 5)]


def test_replay_store_single_byte_flips_in_table_file_fail_cleanly(tmp_path: Path) -> None:
    import shutil

    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=5, txs=6, compact=True, paranoid=True).close()
    _replay_dir(tmp_path / "db", c)  # the pristine copy verifies
    (table,) = sorted((tmp_path / "db").glob("*.ldb"))
    data = table.read_bytes()
    assert BLOOM_FILTER_NAME in data  # written as a node writes it
    rng = random.Random(99)
    for pos in sorted(rng.sample(_read_regions(data), 40)):
        work = tmp_path / f"w{pos}"
        shutil.copytree(tmp_path / "db", work)
        mutated = bytearray(data)
        mutated[pos] ^= 1 << rng.randrange(8)
        (work / table.name).write_bytes(bytes(mutated))
        with pytest.raises(PartledgerError):
            _replay_dir(work, c)
        shutil.rmtree(work)


@pytest.mark.parametrize("edit", ["drop_index", "wrong_index", "stray_index", "extra_state",
                                  "changed_state", "extra_key", "wrong_root", "changed_header",
                                  "stray_header"])
def test_replay_store_checks_indexes_and_stray_entries(tmp_path: Path, edit: str) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=3, txs=4) as s:
        b2 = s.block(2)
    assert b2 is not None and b2.txs
    tx_id = b2.txs[1].tx_id
    db = plyvel.DB(str(tmp_path / "db"))
    if edit == "drop_index":
        db.delete(b"x/" + tx_id)
    elif edit == "wrong_index":
        db.put(b"x/" + tx_id, struct.pack(">QI", 2, 0))
    elif edit == "stray_index":
        db.put(b"x/" + bytes(32), struct.pack(">QI", 3, 0))
    elif edit == "extra_state":
        db.put(b"s/kv/intruder", b"1")
    elif edit == "changed_state":
        key, value = next(iter(db.iterator(prefix=b"s/")))
        db.put(key, value + b"!")
    elif edit == "extra_key":
        db.put(b"z/whatever", b"1")
    elif edit == "changed_header":  # the copy listings read says another time
        db.put(_h(b"d/", 2), dataclasses.replace(b2.header, time_ms=1).encode())
    elif edit == "stray_header":
        db.put(_h(b"d/", 4), b2.header.encode())
    else:
        db.put(_h(b"r/", 1), b"\0" * 32)
    db.close()
    with pytest.raises(ReplayError) as e:
        _replay_dir(tmp_path / "db", c)
    assert e.value.code == {"drop_index": "store_index", "wrong_index": "store_index",
                            "stray_index": "store_index",
                            "extra_state": "store_extra_entries",
                            "changed_state": "stored_state",
                            "extra_key": "store_extra_entries",
                            "wrong_root": "stored_state_root",
                            "changed_header": "store_header",
                            "stray_header": "store_extra_entries"}[edit]
    if edit in ("drop_index", "wrong_index"):  # names the transaction and its block
        assert (e.value.height, e.value.tx) == (2, tx_id)
    if edit == "stray_index":
        assert e.value.tx == bytes(32)
    if edit == "changed_state":
        assert "at 2 entries" in e.value.message  # the store's value and the replayed one
