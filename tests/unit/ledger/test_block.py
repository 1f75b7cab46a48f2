"""Transactions, blocks and seals: encoding round trips and every way a seal can be wrong."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import (
    Block,
    BlockHeader,
    Seal,
    SigningKey,
    Transaction,
    commit_vote_message,
    decode,
    encode,
    quorum_size,
    sha256,
    sign_commit,
    tx_root,
    validators_hash,
    verify_seal,
    verify_transactions,
)
from ledger._tx import TX_SIGN_DOMAIN
from ledger.errors import DecodeError, UnknownVersionError, VerificationError

CHAIN = sha256(b"chain")
VALS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
VPUB = [v.public for v in VALS]


def _tx(n: int = 0, key: SigningKey | None = None) -> Transaction:
    return Transaction.create(key or VALS[0], chain=CHAIN, kind="put",
                              body={"key": f"k{n}", "value": n}, nonce=n)


def _block(n_txs: int = 3, height: int = 1) -> Block:
    txs = tuple(_tx(i) for i in range(n_txs))
    h = BlockHeader(chain=CHAIN, height=height, prev_hash=CHAIN, time_ms=5, proposer=VPUB[0],
                    tx_root=tx_root(txs), tx_count=n_txs, state_root=bytes(32),
                    validators_hash=validators_hash(VPUB))
    return Block(header=h, txs=txs)


def _seal(block: Block, signers: list[SigningKey], round_: int = 0) -> Seal:
    return Seal.build(height=block.height, round_=round_, block_hash=block.hash,
                      votes=[(k.public, sign_commit(k, CHAIN, block.height, round_, block.hash))
                             for k in signers])


def test_Transaction_id_signature_and_roundtrip() -> None:
    tx = _tx(1)
    unsigned = {k: v for k, v in tx.to_map().items() if k != "sig"}
    assert tx.tx_id == sha256(encode(unsigned))
    assert tx.signing_message() == TX_SIGN_DOMAIN + tx.tx_id
    again = Transaction.decode(tx.encode())
    assert again == tx and again.tx_id == tx.tx_id
    forged = Transaction.from_obj({**tx.to_map(), "nonce": 2})
    assert verify_transactions([tx, forged]) == [True, False]


@pytest.mark.usefixtures("accel_backend")
def test_Transaction_decode_body_reads_like_the_dict_it_was() -> None:
    body = {"key": "k", "value": [1, {"nested": b"\x00"}], "flag": True}
    tx = Transaction.create(VALS[0], chain=CHAIN, kind="put", body=body, nonce=3)
    again = Transaction.decode(tx.encode())
    assert again == tx and tx == again  # either side of the comparison
    assert again.body == body and dict(again.body) == body and again.body["value"][1] == {
        "nested": b"\x00"}
    assert list(again.body) == sorted(body) and len(again.body) == 3 and "flag" in again.body
    assert repr(again.body) == repr(dict(sorted(body.items())))
    assert again.to_map()["body"] == body and again.encode() == tx.encode()
    assert Transaction.decode(tx.encode()).body != {**body, "flag": False}


@pytest.mark.parametrize(("field", "value"), [
    ("chain", b"short"), ("signer", b"x" * 31), ("sig", b"x" * 63), ("kind", ""),
    ("body", []), ("nonce", -1), ("nonce", True), ("extra", 1),
])
def test_Transaction_decode_rejects_bad_fields(field: str, value: object) -> None:
    m = {**_tx().to_map(), field: value}
    with pytest.raises(DecodeError):
        Transaction.decode(encode(m))


def test_Transaction_unknown_version_refused() -> None:
    with pytest.raises(UnknownVersionError):
        Transaction.decode(encode({**_tx().to_map(), "v": 2}))


def test_Block_roundtrip_and_body_checks() -> None:
    b = _block()
    assert Block.decode(b.encode()) == b
    b.check_body()
    wrong_count = Block(header=dataclasses.replace(b.header, tx_count=2), txs=b.txs)
    with pytest.raises(VerificationError) as e:
        wrong_count.check_body()
    assert e.value.code == "tx_count"
    swapped = Block(header=b.header, txs=(b.txs[1], b.txs[0], b.txs[2]))
    with pytest.raises(VerificationError) as e:
        swapped.check_body()
    assert e.value.code == "tx_root"
    other = Transaction.create(VALS[0], chain=sha256(b"other"), kind="put", body={}, nonce=0)
    txs = (*b.txs, other)
    foreign = Block(header=dataclasses.replace(b.header, tx_root=tx_root(txs), tx_count=4),
                    txs=txs)
    with pytest.raises(VerificationError) as e:
        foreign.check_body()
    assert e.value.code == "wrong_chain"
    with pytest.raises(UnknownVersionError):
        Block.decode(encode({**b.to_map(), "v": 9}))
    with pytest.raises(DecodeError):
        Block.decode(b.encode() + b"\x00")


def test_Block_encoding_and_root_are_computed_once_and_never_carried_over() -> None:
    """`encode` and `body_root` are remembered per object (a block's bytes are a megabyte at
    saturation), a decoded block remembers its own bytes, and a block made from another one
    (`dataclasses.replace`) computes its own."""
    b = _block()
    data = b.encode()
    assert b.encode() is data and b.body_root() is b.body_root()
    decoded = Block.decode(bytes(bytearray(data)))  # equal bytes, another object
    assert decoded.encode() is not data and decoded.encode() == data
    again = Block.decode(data)
    assert again.encode() is data
    other = dataclasses.replace(b, header=dataclasses.replace(b.header, height=b.height + 1))
    assert other.encode() != data and Block.decode(other.encode()) == other
    fewer = dataclasses.replace(b, txs=b.txs[:2])
    assert fewer.body_root() == tx_root(b.txs[:2]) != b.body_root()


def test_Block_parts_leave_the_transactions_undecoded() -> None:
    b = _block()
    assert Block.parts(b.encode()) == (b.header, [t.encode() for t in b.txs])
    # bytes that are no transaction do not matter to it
    garbled = encode({**b.to_map(), "txs": [b"not a transaction"]})
    with pytest.raises(DecodeError):
        Block.decode(garbled)
    assert Block.parts(garbled) == (b.header, [b"not a transaction"])
    # but the block's own shape and its header are checked as `decode` checks them
    for bad in ({"v": 1, "header": b.header.to_map()}, {**b.to_map(), "txs": ["text"]},
                {**b.to_map(), "txs": b"bytes"}):
        with pytest.raises(DecodeError) as e:
            Block.parts(encode(bad))
        assert e.value.code == "block_shape"
    with pytest.raises(DecodeError) as e:
        Block.parts(encode({**b.to_map(), "header": {**b.header.to_map(), "height": -1}}))
    assert e.value.code == "header_shape"
    with pytest.raises(UnknownVersionError):
        Block.parts(encode({**b.to_map(), "v": 9}))
    with pytest.raises(DecodeError):
        Block.parts(b.encode() + b"\x00")


def test_quorum_size() -> None:
    assert [quorum_size(n) for n in (1, 2, 3, 4, 5, 6, 7, 10)] == [1, 2, 3, 3, 4, 5, 5, 7]


def test_Seal_verifies_with_quorum_and_roundtrips() -> None:
    b = _block()
    for signers in (VALS[:3], VALS):
        s = _seal(b, signers)
        verify_seal(s, chain=CHAIN, block_hash=b.hash, height=1, validators=VPUB)
        assert Seal.decode(s.encode()) == s


def _fails(seal: Seal, code: str, *, block: Block | None = None, chain: bytes = CHAIN,
           height: int = 1, validators: list[bytes] = VPUB) -> None:
    b = block or _block()
    with pytest.raises(VerificationError) as e:
        verify_seal(seal, chain=chain, block_hash=b.hash, height=height, validators=validators)
    assert e.value.code == code


def test_Seal_refusals() -> None:
    b = _block()
    good = _seal(b, VALS[:3])
    # short: 2 of 4
    _fails(_seal(b, VALS[:2]), "seal_short")
    # forged: a signature over another block
    forged_votes = (*good.votes[:2], (good.votes[2][0],
                                      sign_commit(VALS[3], CHAIN, 1, 0, b.hash)))
    _fails(dataclasses.replace(good, votes=forged_votes), "seal_bad_signature")
    # a signature byte changed
    pk, sig = good.votes[0]
    _fails(dataclasses.replace(good, votes=((pk, bytes([sig[0] ^ 1]) + sig[1:]),
                                            *good.votes[1:])), "seal_bad_signature")
    # duplicate signer padding the count
    _fails(dataclasses.replace(good, votes=(*good.votes[:2], good.votes[0])), "seal_duplicate")
    # a non-validator signer
    outsider = SigningKey(b"\x99" * 32)
    _fails(_seal(b, [*VALS[:2], outsider]), "seal_unknown_signer")
    # wrong chain: the same votes do not verify for another chain id
    _fails(good, "seal_bad_signature", chain=sha256(b"other"))
    # another height or block
    _fails(good, "seal_mismatch", height=2)
    _fails(good, "seal_mismatch", block=_block(2))
    # round is bound by the signatures
    _fails(dataclasses.replace(good, round=1), "seal_bad_signature")


def test_commit_vote_message_binds_every_field() -> None:
    base = commit_vote_message(CHAIN, 1, 0, b"\1" * 32)
    assert base != commit_vote_message(sha256(b"x"), 1, 0, b"\1" * 32)
    assert base != commit_vote_message(CHAIN, 2, 0, b"\1" * 32)
    assert base != commit_vote_message(CHAIN, 1, 1, b"\1" * 32)
    assert base != commit_vote_message(CHAIN, 1, 0, b"\2" * 32)


@pytest.mark.parametrize("mutate", [
    lambda m: {**m, "votes": [[b"x" * 32, b"y" * 63]]},
    lambda m: {**m, "height": -1},
    lambda m: {**m, "block_hash": b"x"},
    lambda m: {k: v for k, v in m.items() if k != "round"},
])
def test_Seal_decode_rejects_malformed(mutate: object) -> None:
    m = decode(_seal(_block(), VALS[:3]).encode())
    assert callable(mutate)
    with pytest.raises(DecodeError):
        Seal.decode(encode(mutate(m)))


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=50) | st.integers(-2**63, 2**63 - 1)
                       | st.binary(max_size=50), max_size=6),
       st.text(min_size=1, max_size=64), st.integers(0, 2**63 - 1))
@settings(max_examples=150, deadline=None)
def test_Transaction_decode_fast_tx_id_equals_definition(body: dict[str, object], kind: str,
                                                         nonce: int) -> None:
    tx = Transaction.create(VALS[1], chain=CHAIN, kind=kind, body=body, nonce=nonce)
    again = Transaction.decode(tx.encode())
    unsigned = {k: v for k, v in tx.to_map().items() if k != "sig"}
    assert again.tx_id == sha256(encode(unsigned)) == tx.tx_id
    assert again.encode() == tx.encode()
