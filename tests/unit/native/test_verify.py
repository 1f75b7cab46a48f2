"""Both backends give libsodium's strict verdict on every edge case of Ed25519.

`accel_backend` (tests/conftest.py) runs each test on the pure-Python twin and on the Rust
extension; each case is also checked against PyNaCl called directly and against the verdict
the case was built to have, so a test fails if either backend drifts from libsodium or if the
case stops testing what it says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import nacl.signing
import pytest
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

import ledger
from tests.unit.native import craft

SPECCHECK = Path(__file__).resolve().parents[4] / "shared/conformance/ed25519/speccheck-cases.json"
if not SPECCHECK.exists():  # CI lays shared/ beside the clone
    SPECCHECK = Path("/work/shared/conformance/ed25519/speccheck-cases.json")

pytestmark = pytest.mark.usefixtures("accel_backend")


def pynacl(msg: bytes, sig: bytes, pk: bytes) -> bool:
    try:
        crypto_sign_open(sig + msg, pk)
    except BadSignatureError:
        return False
    return True


def judge(msg: bytes, sig: bytes, pk: bytes) -> bool:
    """The project's verdict through both public entry points, which must agree."""
    one = ledger.verify(msg, sig, pk)
    assert ledger.verify_batch([msg], [sig], [pk]) == [one]
    return one


def check(msg: bytes, sig: bytes, pk: bytes, expected: bool) -> None:
    assert pynacl(msg, sig, pk) is expected, "the case no longer tests what it claims"
    assert judge(msg, sig, pk) is expected


SEED = bytes(range(32))
A_SCALAR = craft.secret_scalar(SEED)
A_POINT = craft.public_point(SEED)
PK = craft.encode(A_POINT)


def test_verify_uses_the_selected_backend(accel_backend: ModuleType) -> None:
    from ledger import _accel

    assert _accel.backend is accel_backend


def test_verify_speccheck_cases_match_libsodium() -> None:
    cases = json.loads(SPECCHECK.read_text())
    assert len(cases) == 11
    verdicts = []
    for case in cases:
        msg, pk, sig = (bytes.fromhex(case[k]) for k in ("message", "pub_key", "signature"))
        assert judge(msg, sig, pk) is pynacl(msg, sig, pk)
        verdicts.append(judge(msg, sig, pk))
    assert verdicts == [i == 7 for i in range(11)]  # README: libsodium accepts only case 7


@pytest.mark.parametrize(("sk", "pk", "msg", "sig"), [
    # RFC 8032 §7.1 tests 1-3
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
])
def test_verify_rfc8032_vectors(sk: str, pk: str, msg: str, sig: str) -> None:
    assert bytes(nacl.signing.SigningKey(bytes.fromhex(sk)).verify_key).hex() == pk
    m, s, k = bytes.fromhex(msg), bytes.fromhex(sig), bytes.fromhex(pk)
    check(m, s, k, True)
    check(m + b"\x00", s, k, False)


def test_verify_batch_valid_signatures_from_many_keys() -> None:
    keys = [ledger.SigningKey(os.urandom(32)) for _ in range(200)]
    msgs = [os.urandom(i % 300) for i in range(len(keys))]
    sigs = [k.sign(m) for k, m in zip(keys, msgs, strict=True)]
    pks = [k.public for k in keys]
    assert ledger.verify_batch(msgs, sigs, pks) == [True] * len(keys)
    # a key signs for no one else
    assert ledger.verify_batch(msgs, sigs, pks[1:] + pks[:1]) == [False] * len(keys)


def test_verify_batch_keeps_order_across_threads(accel_backend: ModuleType) -> None:
    """Enough signatures for the parallel path; a scattered set of them broken."""
    keys = [ledger.SigningKey(os.urandom(32)) for _ in range(16)]
    n = 3000
    msgs = [i.to_bytes(4, "big") for i in range(n)]
    sigs = [keys[i % 16].sign(m) for i, m in enumerate(msgs)]
    pks = [keys[i % 16].public for i in range(n)]
    bad = {i for i in range(n) if i % 7 == 3 or i % 101 == 0}
    for i in bad:
        sigs[i] = sigs[i][:63] + bytes([sigs[i][63] ^ 0x01])
    expected = [i not in bad for i in range(n)]
    try:
        for threads in (1, 2, 0):
            accel_backend.set_threads(threads)
            assert ledger.verify_batch(msgs, sigs, pks) == expected
    finally:
        accel_backend.set_threads(0)


@pytest.mark.parametrize("order", [2, 4, 8])
def test_verify_rejects_torsion_component_in_R(order: int) -> None:
    """R = [r]B + T with S = r + k·a: a cofactored or batch check accepts it, strict does not."""
    msg = b"torsion in R"
    r = 0x1234567890
    r_point = craft.add(craft.mul(r, craft.BASE), craft.TORSION[order])
    sig = craft.sign_raw(A_SCALAR, PK, msg, r, r_point)
    check(msg, sig, PK, False)
    # the same construction without the torsion point is a valid signature
    check(msg, craft.sign_raw(A_SCALAR, PK, msg, r), PK, True)


@pytest.mark.parametrize("order", [2, 8])
def test_verify_mixed_order_key_is_cofactorless(order: int) -> None:
    """Key A + T: [S]B - [k](A + T) = R - [k]T, so it verifies exactly when order(T) | k."""
    pk = craft.encode(craft.add(A_POINT, craft.TORSION[order]))
    msg = b"mixed-order key"
    seen = set()
    for r in range(1, 200):
        sig = craft.sign_raw(A_SCALAR, pk, msg, r)
        divisible = craft.h_scalar(sig[:32], pk, msg) % order == 0
        check(msg, sig, pk, divisible)
        seen.add(divisible)
        if seen == {True, False}:
            break
    assert seen == {True, False}


@pytest.mark.parametrize("pk", craft.SMALL_ORDER_ENCODINGS, ids=lambda b: b.hex()[:6] + b.hex()[-2:])
def test_verify_rejects_small_order_keys(pk: bytes) -> None:
    """Even when [S]B - [k]A = R holds, as it does for A = identity and R = [S]B."""
    msg = b"small-order key"
    s = 0xABCDEF
    r_bytes = craft.encode(craft.mul(s, craft.BASE))
    sig = r_bytes + s.to_bytes(32, "little")
    point = craft.decode(pk)
    if point is not None and craft.encode(point) == craft.encode(craft.IDENTITY) == pk:
        # the equation holds: only the blocklist rejects this
        assert craft.encode(craft.add(craft.mul(s, craft.BASE),
                                      craft.neg(craft.mul(craft.h_scalar(r_bytes, pk, msg),
                                                          point)))) == r_bytes
    check(msg, sig, pk, False)


@pytest.mark.parametrize("r_bytes", craft.SMALL_ORDER_ENCODINGS,
                         ids=lambda b: b.hex()[:6] + b.hex()[-2:])
def test_verify_rejects_small_order_R(r_bytes: bytes) -> None:
    msg = b"small-order R"
    for s in (0, 1, 8, craft.L - 1):
        check(msg, r_bytes + s.to_bytes(32, "little"), PK, False)


def test_verify_rejects_non_canonical_S() -> None:
    msg = b"S plus l"
    sig = craft.sign_raw(A_SCALAR, PK, msg, 987654321)
    check(msg, sig, PK, True)
    s = int.from_bytes(sig[32:], "little")
    for bad in (s + craft.L, s + 2 * craft.L, craft.L, 2**256 - 1):
        if bad < 2**256:
            check(msg, sig[:32] + bad.to_bytes(32, "little"), PK, False)


def test_verify_rejects_non_canonical_key_encodings() -> None:
    """y ≥ p (only y - p ∈ 0..18 exist); dalek alone would reduce them, libsodium refuses."""
    msg = b"non-canonical key"
    sig = craft.sign_raw(A_SCALAR, PK, msg, 42)
    for y in range(craft.P, 2**255):
        for sign in (0, 1):
            check(msg, sig, (y | sign << 255).to_bytes(32, "little"), False)


def test_verify_rejects_off_curve_R_and_key() -> None:
    msg = b"off curve"
    sig = craft.sign_raw(A_SCALAR, PK, msg, 77)
    off = next(y for y in range(2, 100) if craft.decode(y.to_bytes(32, "little")) is None)
    check(msg, off.to_bytes(32, "little") + sig[32:], PK, False)
    check(msg, sig, off.to_bytes(32, "little"), False)


@pytest.mark.parametrize(("sig_len", "pk_len"), [(63, 32), (65, 32), (0, 32), (64, 31),
                                                 (64, 33), (64, 0), (128, 64)])
def test_verify_wrong_lengths_are_false(sig_len: int, pk_len: int) -> None:
    msg = b"lengths"
    good = craft.sign_raw(A_SCALAR, PK, msg, 5)
    sig = (good * 2)[:sig_len]
    pk = (PK * 2)[:pk_len]
    assert ledger.verify(msg, sig, pk) is False
    assert ledger.verify_batch([msg, msg], [sig, good], [pk, PK]) == [False, True]


def test_verify_rejects_non_bytes_arguments() -> None:
    sig = craft.sign_raw(A_SCALAR, PK, b"m", 5)
    with pytest.raises(TypeError):
        ledger.verify("m", sig, PK)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ledger.verify_batch([b"m"], [sig], ["k" * 32])  # type: ignore[list-item]


def test_verify_batch_length_mismatch_is_value_error(accel_backend: ModuleType) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        ledger.verify_batch([b"a", b"b"], [bytes(64)], [bytes(32)])
    with pytest.raises(ValueError, match="differ in length"):
        accel_backend.verify_batch([b"a", b"b"], [bytes(64)], [bytes(32)])
    assert ledger.verify_batch([], [], []) == []
