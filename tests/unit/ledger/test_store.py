"""The LevelDB store: one synced batch per block, tip checks on open, clear refusals."""

from __future__ import annotations

import dataclasses
import random
import shutil
import struct
from pathlib import Path

import plyvel
import pytest

from ledger import Block, Store, encode
from ledger._app import next_state_root
from ledger._block import tx_root
from ledger._chain import ChainBuilder, init_store, seal_block
from ledger._store import BODIES_DIR, STORE_FORMAT, StoreStats, parse_leveldb_stats
from ledger.errors import StoreError
from tests.unit.ledger.helpers import KVApp, build_kv_chain, kv_specs, make_consortium, raw_edit


def test_Store_commit_and_read_back(tmp_path: Path) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=5, txs=6) as s:
        tip = s.tip()
        assert tip is not None and tip.height == 5 and s.height == 5
        b3 = s.block(3)
        assert b3 is not None and b3.height == 3
        assert s.block_raw(3) == b3.encode()
        assert s.header(3) == b3.header
        assert s.header(6) is None and s.header(0) is None
        seal = s.seal(3)
        assert seal is not None and seal.block_hash == b3.hash
        assert s.state_root(3) == b3.header.state_root
        assert s.height_of(b3.hash) == 3
        for i, tx in enumerate(b3.txs):
            assert s.tx_location(tx.tx_id) == (3, i)
        assert s.tx_location(b"\0" * 32) is None
        assert s.block(6) is None and s.block(0) is None
        kv = dict(s.iter_prefix(b"kv/"))
        assert kv and all(k.startswith(b"kv/") for k in kv)
        assert s.get(next(iter(kv))) == kv[next(iter(kv))]
    # reopen: tip survives, chain matches
    with Store.open(tmp_path / "db", genesis=c.genesis) as s2:
        assert s2.tip() == tip


def test_Store_lists_headers_from_their_copies_and_without_them(tmp_path: Path) -> None:
    """Headers are read from their own entries (a body is megabytes at saturation); a store
    written before those existed answers from the bodies, the same headers."""
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=3, txs=2) as s:
        headers = [s.header(h) for h in (1, 2, 3)]
        assert [s.header_raw(h) for h in (1, 2, 3)] == [h.encode() for h in headers if h]
        assert s.header_raw(4) is None
    raw_edit(tmp_path / "db", {struct.pack(">2sQ", b"d/", h): None for h in (1, 2, 3)})
    with Store.open(tmp_path / "db", genesis=c.genesis) as s:
        assert s.header_raw(2) is None
        assert [s.header(h) for h in (1, 2, 3)] == headers
    raw_edit(tmp_path / "db", {struct.pack(">2sQ", b"d/", 2): b"\xc1"})
    with Store.open(tmp_path / "db", genesis=c.genesis) as s, \
            pytest.raises(StoreError, match="header 2 does not decode"):
        s.header(2)


def test_Store_head_before_block_one(tmp_path: Path) -> None:
    c = make_consortium()
    with init_store(tmp_path / "db", c.genesis, KVApp()) as s:
        assert s.tip() is None and s.height == 0
        head = s.head()
        assert head.height == 0 and head.block_hash == c.genesis.chain_id
        assert s.get(b"org/" + c.orgs[0].public) == b"m0"
    with Store.open(tmp_path / "db", genesis=c.genesis) as s:
        assert s.tip() is None


def test_Store_refuses_missing_uninitialised_and_other_chain(tmp_path: Path) -> None:
    c = make_consortium()
    with pytest.raises(StoreError) as e:
        Store.open(tmp_path / "none")
    assert e.value.code == "store_missing"
    Store.open(tmp_path / "empty", create=True).close()
    with pytest.raises(StoreError) as e:
        Store.open(tmp_path / "empty")
    assert e.value.code == "store_uninit"
    build_kv_chain(tmp_path / "db", c, blocks=1, txs=1).close()
    other = make_consortium(seed=99)
    with pytest.raises(StoreError) as e:
        Store.open(tmp_path / "db", genesis=other.genesis)
    assert e.value.code == "store_chain_mismatch"


def test_Store_refuses_a_second_opener(tmp_path: Path) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=1, txs=1), pytest.raises(StoreError) as e:
        Store.open(tmp_path / "db")
    assert e.value.code == "store_locked"


def test_Store_commit_block_refuses_bad_blocks(tmp_path: Path) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=2, txs=3) as s:
        b = ChainBuilder(s, c.genesis, KVApp(), c.nodes)
        good = b.append([])  # empty block 3
        tip = s.tip()
        blk3 = s.block(3)
        assert blk3 == good
        seal3 = s.seal(3)
        assert seal3 is not None
        # replaying block 3 again: not the next height
        with pytest.raises(StoreError) as e:
            s.commit_block(good, seal3, {})
        assert e.value.code == "store_not_next"
        # a block 4 with a wrong prev_hash, a wrong state root, a seal for another block
        hdr = dataclasses.replace(good.header, height=4, prev_hash=b"\1" * 32)
        blk = Block(header=hdr, txs=())
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal_block(c.genesis, blk, c.nodes), {})
        assert e.value.code == "store_bad_link"
        hdr = dataclasses.replace(good.header, height=4, prev_hash=good.hash)
        blk = Block(header=hdr, txs=())
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal_block(c.genesis, blk, c.nodes), {})
        assert e.value.code == "store_bad_state_root"
        # the caller's precomputed root of the writes is checked against the header too
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal_block(c.genesis, blk, c.nodes), {},
                           writes_root=b"\2" * 32)
        assert e.value.code == "store_bad_state_root"
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal3, {})
        assert e.value.code == "store_bad_seal"
        # a transaction block 2 already holds, in block 4 (the header otherwise right)
        old_tx = s.block(2).txs[1]  # type: ignore[union-attr]
        root = next_state_root(tip.state_root, {})
        hdr = dataclasses.replace(good.header, height=4, prev_hash=good.hash, state_root=root,
                                  tx_root=tx_root([old_tx]), tx_count=1)
        blk = Block(header=hdr, txs=(old_tx,))
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal_block(c.genesis, blk, c.nodes), {})
        assert e.value.code == "store_duplicate_tx" and old_tx.tx_id.hex() in e.value.message
        assert s.tip() == tip and s.block(4) is None


@pytest.mark.parametrize("writes", [
    {b"": b"v"}, {b"k" * 2000: b"v"}, {"k": b"v"}, {b"k": "v"}, {b"a": b"1", b"k": 7},
])
def test_Store_commit_block_refuses_a_bad_write_set(tmp_path: Path,
                                                   writes: dict[object, object]) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=1, txs=2) as s:
        tip = s.tip()
        assert tip is not None
        root = b"\3" * 32   # the header's root, vouched for by the caller: only the writes fail
        blk1 = s.block(1)
        assert blk1 is not None
        hdr = dataclasses.replace(blk1.header, height=2, prev_hash=tip.block_hash,
                                  state_root=root, tx_count=0, tx_root=tx_root([]))
        blk = Block(header=hdr, txs=())
        before = dict(s.iter_prefix(b""))
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal_block(c.genesis, blk, c.nodes), writes, writes_root=root)
        assert e.value.code == "store_bad_key"
        assert s.tip() == tip and s.block(2) is None and dict(s.iter_prefix(b"")) == before


def test_Store_read_only_refuses_writes(tmp_path: Path) -> None:
    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=1, txs=2).close()
    with Store.open(tmp_path / "db", read_only=True, paranoid=True) as s:
        blk = s.block(1)
        seal = s.seal(1)
        assert blk is not None and seal is not None
        with pytest.raises(StoreError) as e:
            s.commit_block(blk, seal, {})
        assert e.value.code == "store_read_only"
    with pytest.raises(StoreError):
        s.block(1)


@pytest.mark.parametrize("edit", ["no_seal", "no_block", "no_root", "bad_tip", "above_tip",
                                  "tip_hash", "no_chain", "format"])
def test_Store_open_refuses_inconsistent_tip(tmp_path: Path, edit: str) -> None:
    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=3, txs=2).close()
    h3 = struct.pack(">Q", 3)
    h4 = struct.pack(">Q", 4)
    with Store.open(tmp_path / "db") as s:
        blk3 = s.block_raw(3)
        tip = s.tip()
    assert blk3 is not None and tip is not None
    edits: dict[str, dict[bytes, bytes | None]] = {
        "no_seal": {b"c/" + h3: None},
        "no_block": {b"b/" + h3: None},
        "no_root": {b"r/" + h3: None},
        "bad_tip": {b"m/tip": b"\x01"},
        "above_tip": {b"c/" + h4: b"seal"},
        "tip_hash": {b"m/tip": encode({"v": 1, "height": 3, "hash": b"\0" * 32,
                                       "state_root": tip.state_root})},
        "no_chain": {b"m/chain": None},
        "format": {b"m/format": b"9"},
    }
    raw_edit(tmp_path / "db", edits[edit])
    with pytest.raises(StoreError) as e:
        Store.open(tmp_path / "db", genesis=c.genesis)
    assert e.value.code in ("store_inconsistent", "store_version")


def test_parse_leveldb_stats_sums_the_level_rows() -> None:
    text = ("                               Compactions\n"
            "Level  Files Size(MB) Time(sec) Read(MB) Write(MB)\n"
            "--------------------------------------------------\n"
            "  0        2        4         1        0         8\n"
            "  1        5       10         3       20        21\n")
    st = parse_leveldb_stats(text)
    assert (st.tables, st.compaction_seconds) == (7, 4)
    assert st.table_bytes == 14 << 20
    assert (st.compaction_read_bytes, st.compaction_written_bytes) == (20 << 20, 29 << 20)
    assert parse_leveldb_stats("") == StoreStats(0, 0, 0, 0, 0)


def test_Store_stats_count_the_tables_written(tmp_path: Path) -> None:
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=3, txs=4) as s:
        assert s.stats().tables == 0  # everything still in the write buffer
        s.compact()
        assert s.stats().tables >= 1


def test_Store_a_body_above_the_tip_is_a_crash_leftover(tmp_path: Path) -> None:
    """The body is written before the batch that commits its block: a crash in between leaves
    it above the tip, where it is not part of the chain."""
    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=3, txs=2).close()
    with Store.open(tmp_path / "db") as s:
        blk3 = s.block_raw(3)
    assert blk3 is not None
    raw_edit(tmp_path / "db", {b"b/" + struct.pack(">Q", 4): blk3})
    with Store.open(tmp_path / "db", read_only=True) as s:
        assert s.height == 3 and s.block_raw(4) is None
        assert s.key_counts()[b"b/"] == 3
    with Store.open(tmp_path / "db", genesis=c.genesis) as s:  # writable: removed
        assert s.height == 3
    db = plyvel.DB(str(tmp_path / "db" / BODIES_DIR))
    assert db.get(b"b/" + struct.pack(">Q", 4)) is None
    assert db.get(b"b/" + struct.pack(">Q", 3)) == blk3
    db.close()


def test_Store_format_1_is_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=3, txs=2).close()
    with Store.open(tmp_path / "db") as s:
        bodies = {h: s.block_raw(h) for h in (1, 2, 3)}
        tip = s.tip()
    # turn it into a format-1 store: bodies inside the main database, no bodies database
    db = plyvel.DB(str(tmp_path / "db"))
    for h, raw in bodies.items():
        assert raw is not None
        db.put(b"b/" + struct.pack(">Q", h), raw)
    db.put(b"m/format", b"1")
    db.close()
    shutil.rmtree(tmp_path / "db" / BODIES_DIR)
    with pytest.raises(StoreError) as e:
        Store.open(tmp_path / "db", read_only=True)
    assert e.value.code == "store_version" and "upgrade" in e.value.message
    assert not (tmp_path / "db" / BODIES_DIR).exists()  # a read-only open changes nothing
    with Store.open(tmp_path / "db", genesis=c.genesis) as s:
        assert s.tip() == tip
        assert {h: s.block_raw(h) for h in (1, 2, 3)} == bodies
        assert s.key_counts()[b"b/"] == 3
    db = plyvel.DB(str(tmp_path / "db"))
    assert db.get(b"m/format") == STORE_FORMAT
    assert not list(db.iterator(prefix=b"b/"))
    db.close()
    with Store.open(tmp_path / "db", read_only=True) as s:
        assert s.block(3) is not None


class _CountingDB:
    """Spy on the main database's point lookups (everything else passes through)."""

    def __init__(self, db: object) -> None:
        self._db, self.gets = db, 0

    def get(self, key: bytes, **kw: object) -> object:
        self.gets += 1
        return self._db.get(key, **kw)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_Store_writable_answers_absent_keys_without_leveldb(tmp_path: Path) -> None:
    """Each lookup of an absent key that LevelDB answers is charged to a table as a "seek",
    and LevelDB compacts tables for them (docs/performance.md, "Scale"); a writable store
    answers them from its key filter. Present keys, before and after a commit and after a
    reopen, are still found."""
    c = make_consortium()
    build_kv_chain(tmp_path / "db", c, blocks=4, txs=5).close()
    with Store.open(tmp_path / "db", genesis=c.genesis) as s:
        present = dict(s.iter_prefix(b""))
        committed = [tx for h in range(1, 5) for tx in s.block(h).txs]  # type: ignore[union-attr]
        spy = _CountingDB(s._db)
        s._db = spy
        for i in range(200):
            assert s.get(b"kv/absent-%d" % i) is None
            assert s.tx_location(struct.pack(">Q", i) * 4) is None
        assert spy.gets < 20  # a few false positives at most
        for k, v in present.items():
            assert s.get(k) == v
        assert all(s.tx_location(tx.tx_id) is not None for tx in committed)
        s._db = spy._db
    with Store.open(tmp_path / "db", read_only=True) as ro:  # no filter: LevelDB answers
        spy = _CountingDB(ro._db)
        ro._db = spy
        assert ro.get(b"kv/absent-0") is None and spy.gets == 1
        ro._db = spy._db


def test_Store_key_filter_follows_commits_and_reopens(tmp_path: Path, monkeypatch:
                                                      pytest.MonkeyPatch) -> None:
    """Keys written through the store are in its filter at once; a reopen rebuilds it from
    the database (here also closing and reopening LevelDB after the scan, as a large store
    does to unmap the tables it read)."""
    import ledger._store as store_mod

    monkeypatch.setattr(store_mod, "_REOPEN_AFTER_SCAN_KEYS", 0)
    c = make_consortium()
    with build_kv_chain(tmp_path / "db", c, blocks=3, txs=4) as s:
        for k, v in s.iter_prefix(b""):
            assert s.get(k) == v
        h = s.height
    with init_store(tmp_path / "db2", c.genesis, KVApp()) as s2:
        assert s2.get(b"org/" + c.orgs[0].public) == b"m0"  # genesis writes, same handle
    with Store.open(tmp_path / "db", genesis=c.genesis) as s:  # reopened after its scan
        assert s.height == h
        b = ChainBuilder(s, c.genesis, KVApp(), c.nodes[:3])
        before = dict(s.iter_prefix(b""))
        b.append_specs(kv_specs(random.Random(3), c, 4))
        assert s.height == h + 1
        after = dict(s.iter_prefix(b""))
        assert after != before
        for k, v in after.items():
            assert s.get(k) == v
        for tx in s.block(h + 1).txs:  # type: ignore[union-attr]
            assert s.tx_location(tx.tx_id) is not None
