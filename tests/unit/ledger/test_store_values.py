"""Large state values kept in the bodies database behind references (ledger/_store.py): every
reader sees the values, a rewritten key's value stays inline, crashes leave a store that opens
and checks clean, and older formats are read and upgraded."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

import plyvel
import pytest

from ledger import Store
from ledger._chain import ChainBuilder, init_store
from ledger._store import BODIES_DIR, P_BLOCK, STORE_FORMAT, VALUE_MIN_BYTES, _value_refs
from ledger.errors import StoreError
from tests.unit.ledger.helpers import Consortium, KVApp, make_consortium, raw_edit

BIG = "B" * VALUE_MIN_BYTES


def _builder(path: Path, c: Consortium) -> tuple[Store, ChainBuilder]:
    store = init_store(path, c.genesis, KVApp())
    return store, ChainBuilder(store, c.genesis, KVApp(), c.nodes[:3])


def _block(b: ChainBuilder, c: Consortium, puts: Mapping[str, str | None]) -> None:
    specs = [(c.orgs[0], "put", {"key": k, "value": v}) if v is not None
             else (c.orgs[0], "del", {"key": k}) for k, v in puts.items()]
    res = b.append_specs(specs)
    assert not res.rejected


def _raw(path: Path) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """(main, bodies) databases of a closed store, every entry."""
    out = []
    for p in (path, path / BODIES_DIR):
        db = plyvel.DB(str(p))
        out.append(dict(db.iterator()))
        db.close()
    return out[0], out[1]


def _values(bodies: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {k: v for k, v in bodies.items() if k.startswith(P_BLOCK) and len(k) == 14}


def test_value_refs_moves_long_values_and_those_starting_with_the_reference_byte(
        accel_backend: object) -> None:
    values = [b"short", b"x" * VALUE_MIN_BYTES, b"\xc1odd", b"y" * (VALUE_MIN_BYTES - 1), b""]
    out, moved_keys, moved = _value_refs(values, 7)
    at = struct.pack(">Q", 7)
    assert moved_keys == [P_BLOCK + at + struct.pack(">I", 1), P_BLOCK + at + struct.pack(">I", 2)]
    assert moved == [b"x" * VALUE_MIN_BYTES, b"\xc1odd"]
    assert out == [b"short", b"\xc1" + at + struct.pack(">I", 1),
                   b"\xc1" + at + struct.pack(">I", 2), b"y" * (VALUE_MIN_BYTES - 1), b""]


def test_Store_keeps_long_values_beside_the_bodies_and_reads_them_back(tmp_path: Path) -> None:
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    big = BIG + "1"
    with s:
        _block(b, c, {"a": big, "b": "small"})
        assert s.get(b"kv/a") == big.encode() and s.get(b"kv/b") == b"small"
        assert dict(s.iter_prefix(b"kv/")) == {b"kv/a": big.encode(), b"kv/b": b"small"}
        s.key_counts()  # consistent: raises otherwise
    main, bodies = _raw(tmp_path / "db")
    ref = main[b"s/kv/a"]
    assert len(ref) == 13 and ref[0] == 0xC1 and ref[1:9] == struct.pack(">Q", 1)
    assert bodies[P_BLOCK + ref[1:]] == big.encode()
    assert main[b"s/kv/b"] == b"small"
    with Store.open(tmp_path / "db", read_only=True) as ro:
        assert ro.get(b"kv/a") == big.encode()
        assert ro.key_counts()[b"b/"] == 1  # blocks only: values are not counted as bodies


def test_Store_writes_a_rewritten_value_inline_and_keeps_the_first(tmp_path: Path) -> None:
    """A key's first long value goes beside the bodies; a rewrite goes inline, and the first
    value stays where it is (removing it would make LevelDB merge the bodies' tables)."""
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    with s:
        _block(b, c, {"a": BIG + "1", "d": BIG + "2"})
        _block(b, c, {"a": BIG + "3", "d": None})
        assert s.get(b"kv/a") == (BIG + "3").encode() and s.get(b"kv/d") is None
        _block(b, c, {"d": BIG + "4"})  # a deleted key written again: it exists no more
        assert s.get(b"kv/d") == (BIG + "4").encode()
        s.key_counts()
    main, bodies = _raw(tmp_path / "db")
    assert main[b"s/kv/a"] == (BIG + "3").encode()
    assert main[b"s/kv/d"][0] == 0xC1
    assert sorted(_values(bodies).values()) == [(BIG + v).encode() for v in "124"]
    with Store.open(tmp_path / "db", genesis=c.genesis) as s2:
        assert s2.get(b"kv/a") == (BIG + "3").encode()
        s2.key_counts()


def test_Store_a_crash_between_the_two_batches_leaves_a_clean_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bodies batch of block 3 (its body and its values) is written, the main one is not:
    the store opens at block 2 with every value its state refers to, checks clean, and block 3
    can be committed again."""
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    _block(b, c, {"a": BIG + "1", "b": BIG + "b"})
    _block(b, c, {"a": BIG + "2"})
    real_batch = Store._batch

    def failing_batch(self: Store, db: object = None) -> object:
        if db is None:
            raise StoreError("simulated crash", code="store_io")
        return real_batch(self, db)

    monkeypatch.setattr(Store, "_batch", failing_batch)
    with pytest.raises(StoreError, match="simulated"):
        _block(b, c, {"e": BIG + "3"})
    monkeypatch.undo()
    s.close()
    _, bodies = _raw(tmp_path / "db")
    assert (BIG + "3").encode() in _values(bodies).values()  # above the tip
    with Store.open(tmp_path / "db", read_only=True) as ro:
        assert ro.height == 2 and ro.get(b"kv/a") == (BIG + "2").encode()
        assert ro.get(b"kv/b") == (BIG + "b").encode()
        ro.key_counts()
    with Store.open(tmp_path / "db", genesis=c.genesis) as s2:
        assert s2.height == 2
        s2.key_counts()
        b2 = ChainBuilder(s2, c.genesis, KVApp(), c.nodes[:3])
        b2.nonces = dict(b.nonces)
        _block(b2, c, {"e": BIG + "4"})
        assert s2.get(b"kv/e") == (BIG + "4").encode()
        s2.key_counts()
    _, bodies = _raw(tmp_path / "db")
    assert sorted(_values(bodies).values()) == [(BIG + v).encode() for v in "14b"]


def test_Store_a_missing_value_is_corruption(tmp_path: Path) -> None:
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    with s:
        _block(b, c, {"a": BIG})
    main, _ = _raw(tmp_path / "db")
    raw_edit(tmp_path / "db", {P_BLOCK + main[b"s/kv/a"][1:]: None})
    with Store.open(tmp_path / "db", read_only=True) as ro:
        for read in (lambda: ro.get(b"kv/a"), lambda: dict(ro.iter_prefix(b"kv/"))):
            with pytest.raises(StoreError) as e:
                read()
            assert e.value.code == "store_corrupt" and "kv/a" in e.value.message
        with pytest.raises(StoreError) as e:
            ro.key_counts()
        assert e.value.code == "store_inconsistent"


def test_Store_format_2_is_read_and_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    """Format 2 kept every value in the main database, which format 3 reads as it is, except a
    value starting with the reference byte: the upgrade moves those."""
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    with s:
        _block(b, c, {"a": "small"})
    raw_edit(tmp_path / "db", {b"m/format": b"2", b"s/kv/odd": b"\xc1odd",
                               b"s/kv/long": BIG.encode()})
    with Store.open(tmp_path / "db", read_only=True) as ro:
        assert ro.get(b"kv/long") == BIG.encode() and ro.get(b"kv/a") == b"small"
    main, _ = _raw(tmp_path / "db")
    assert main[b"m/format"] == b"2"  # a read-only open changes nothing
    with Store.open(tmp_path / "db", genesis=c.genesis) as s2:
        assert s2.get(b"kv/odd") == b"\xc1odd" and s2.get(b"kv/long") == BIG.encode()
    main, bodies = _raw(tmp_path / "db")
    assert main[b"m/format"] == STORE_FORMAT
    assert main[b"s/kv/long"] == BIG.encode()  # kept where it was
    assert bodies[P_BLOCK + main[b"s/kv/odd"][1:]] == b"\xc1odd"


def test_Store_iter_prefix_reads_values_in_chunks_and_keeps_key_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger._store as store_mod

    monkeypatch.setattr(store_mod, "_RESOLVE_FIRST", 2)
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    with s:
        # later blocks overwrite some keys: key order and the values' order differ
        expected: dict[bytes, bytes] = {}
        for h in range(4):
            puts = {f"k{(h * 7 + i) % 11:02d}": (BIG + f"{h}.{i}" if i % 3 else f"s{h}.{i}")
                    for i in range(6)}
            _block(b, c, puts)
            expected.update({b"kv/" + k.encode(): v.encode() for k, v in puts.items()})
        got = list(s.iter_prefix(b"kv/"))
        assert got == sorted(expected.items())
        assert list(s.iter_prefix(b"kv/k0")) == [kv for kv in got if kv[0].startswith(b"kv/k0")]
        s.key_counts()


def test_Store_commit_reads_only_the_keys_it_cannot_tell_are_new_or_known(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Which long writes replace a value: the key filter rules out new keys, a key `get` found
    since the last commit (the executor's read of a record it rewrites) is known without a
    second read, and the commit forgets those (its block may have deleted them)."""
    c = make_consortium()
    s, b = _builder(tmp_path / "db", c)
    with s:
        _block(b, c, {"a": BIG + "1", "b": BIG + "2", "c": "small"})
        assert s.get(b"kv/a") == (BIG + "1").encode()
        real_get = s._get
        reads: list[bytes] = []

        def counting_get(key: bytes, *, db: object = None) -> bytes | None:
            reads.append(key)
            return real_get(key, db=db)

        monkeypatch.setattr(s, "_get", counting_get)
        keys = [b"s/kv/a", b"s/kv/b", b"s/kv/c", b"s/kv/new"]
        values = [BIG.encode(), BIG.encode(), BIG.encode()[:5], BIG.encode()]
        assert s._existing_keys(keys, values) == [0, 1]  # c's value is short: stays inline
        assert b"s/kv/a" not in reads and b"s/kv/b" in reads and b"s/kv/c" not in reads
        _block(b, c, {"d": "small"})
        reads.clear()
        assert s._existing_keys(keys, values) == [0, 1]
        assert b"s/kv/a" in reads
