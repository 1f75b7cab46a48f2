"""Hand-built Ed25519 signatures for the edge cases of the strict rule (test helper only).

Plain integer arithmetic on the twisted Edwards curve (RFC 8032 §5.1), slow and obviously
correct, used to build the inputs that libsodium and the Rust extension must judge alike:
torsion components in R, mixed-order keys, small-order keys, S >= L. It judges nothing itself.
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)

IDENTITY: Point = (0, 1, 1, 0)


def add(p: Point, q: Point) -> Point:
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def neg(p: Point) -> Point:
    x, y, z, t = p
    return (-x % P, y, z, -t % P)


def mul(s: int, p: Point) -> Point:
    out = IDENTITY
    while s > 0:
        if s & 1:
            out = add(out, p)
        p = add(p, p)
        s >>= 1
    return out


def encode(p: Point) -> bytes:
    x, y, z, _ = p
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def decode(s: bytes) -> Point | None:
    """RFC 8032 §5.1.3 (y must be canonical here; crafting never needs more)."""
    n = int.from_bytes(s, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    elif v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


BASE = decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
assert BASE is not None
ORDER8 = decode(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"))
ORDER4 = decode(bytes(32))
ORDER2 = decode((P - 1).to_bytes(32, "little"))
assert ORDER8 is not None and ORDER4 is not None and ORDER2 is not None
TORSION = {8: ORDER8, 4: ORDER4, 2: ORDER2}

# libsodium's small-order blocklist (sign bit clear), plus each with the sign bit set.
SMALL_ORDER_BASE = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    (P - 1).to_bytes(32, "little"),
    P.to_bytes(32, "little"),
    (P + 1).to_bytes(32, "little"),
]
SMALL_ORDER_ENCODINGS = SMALL_ORDER_BASE + [
    e[:31] + bytes([e[31] | 0x80]) for e in SMALL_ORDER_BASE
]


def h_scalar(r: bytes, a: bytes, msg: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + msg).digest(), "little") % L


def secret_scalar(seed: bytes) -> int:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little")


def public_point(seed: bytes) -> Point:
    return mul(secret_scalar(seed), BASE)


def sign_raw(a: int, pk: bytes, msg: bytes, r: int, r_point: Point | None = None) -> bytes:
    """`R ‖ S` with R = `r_point` (default [r]B) and S = r + H(R‖pk‖M)·a mod L."""
    rb = encode(r_point if r_point is not None else mul(r, BASE))
    s = (r + h_scalar(rb, pk, msg) * a) % L
    return rb + s.to_bytes(32, "little")
