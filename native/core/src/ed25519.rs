//! Ed25519 verification with exactly libsodium's strict rule (`crypto_sign_verify_detached` of
//! the released libsodium 1.0.18 – 1.0.22, the library inside PyNaCl).
//!
//! A signature `(R, S)` of message `M` by key `A` (all as bytes) is accepted when, in order:
//! 1. `S < ℓ` (the canonical scalar encoding; no bit tricks above 2^252);
//! 2. the 255 low bits of `R` are not one of libsodium's seven small-order encodings;
//! 3. `A` is a canonical encoding (its 255-bit y coordinate is below p);
//! 4. the 255 low bits of `A` are not one of the seven small-order encodings;
//! 5. `A` decodes to a curve point;
//! 6. with `k = SHA-512(R ‖ A ‖ M) mod ℓ`, the canonical encoding of `[S]B − [k]A`
//!    equals the 32 bytes of `R` (so a non-canonical or off-curve `R` never matches).
//!
//! The equation is cofactorless and every signature is checked on its own: no random linear
//! combination, which could accept a signature whose `R` carries a torsion component.
//! `docs/signatures.md` explains the choice.

use std::collections::HashMap;
use std::sync::Mutex;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

pub const PUBLIC_KEY_BYTES: usize = 32;
pub const SIGNATURE_BYTES: usize = 64;

/// Encodings (sign bit ignored) of the points of order 1, 2, 4 and 8, including the
/// non-canonical encodings `p` (y = 0) and `p + 1` (y = 1): libsodium's blocklist.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 7] = [
    // y = 0 (order 4)
    [0; 32],
    // y = 1 (order 1, the identity)
    [
        0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // y = p − 1 (order 2)
    P_MINUS_ONE,
    // y = p, a non-canonical 0 (order 4)
    P,
    // y = p + 1, a non-canonical 1 (order 1)
    P_PLUS_ONE,
];

const P_MINUS_ONE: [u8; 32] = field_prime_plus(-1);
const P: [u8; 32] = field_prime_plus(0);
const P_PLUS_ONE: [u8; 32] = field_prime_plus(1);

/// Little-endian bytes of 2^255 − 19 + delta, for small delta.
const fn field_prime_plus(delta: i32) -> [u8; 32] {
    let mut out = [0xffu8; 32];
    out[31] = 0x7f;
    out[0] = (0xed_i32 + delta) as u8;
    out
}

/// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// True when the little-endian integer `s` is below ℓ.
pub fn scalar_is_canonical(s: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if s[i] != GROUP_ORDER[i] {
            return s[i] < GROUP_ORDER[i];
        }
    }
    false // equal to ℓ
}

/// libsodium's `ge25519_has_small_order` on an encoding: compares bytes, ignoring the sign bit.
pub fn has_small_order_encoding(s: &[u8; 32]) -> bool {
    SMALL_ORDER_ENCODINGS
        .iter()
        .any(|bad| s[..31] == bad[..31] && (s[31] & 0x7f) == bad[31])
}

/// libsodium's `ge25519_is_canonical`: the 255-bit y coordinate is below p (sign bit ignored).
pub fn point_is_canonical(s: &[u8; 32]) -> bool {
    let y_at_least_p =
        (s[31] & 0x7f) == 0x7f && s[1..31].iter().all(|&b| b == 0xff) && s[0] >= 0xed;
    !y_at_least_p
}

/// Steps 1 to 4 of the rule (everything that needs no curve arithmetic): the 32-byte key and
/// the signature's `R` bytes and `S` scalar, or `None` when the signature is already invalid.
fn precheck<'a>(
    signature: &'a [u8],
    public_key: &'a [u8],
) -> Option<(&'a [u8; 32], &'a [u8; 32], Scalar)> {
    let sig = <&[u8; SIGNATURE_BYTES]>::try_from(signature).ok()?;
    let pk = <&[u8; PUBLIC_KEY_BYTES]>::try_from(public_key).ok()?;
    let r_bytes: &[u8; 32] = sig[..32].try_into().ok()?;
    let s_bytes: [u8; 32] = sig[32..].try_into().ok()?;
    if !scalar_is_canonical(&s_bytes) || has_small_order_encoding(r_bytes) {
        return None;
    }
    if !point_is_canonical(pk) || has_small_order_encoding(pk) {
        return None;
    }
    // from_canonical_bytes repeats the S < l test; both must agree, so None here is unreachable
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    Some((pk, r_bytes, s))
}

/// Step 5: the key as a point, negated for step 6 (`None` if it is not on the curve).
fn decode_key_negated(pk: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*pk).decompress().map(|a| -a)
}

/// Decoded keys of recent signers. A consortium has a handful of signing keys (members and
/// validators) whose signatures arrive one or a few at a time, and decoding a key costs about a
/// fifth of a verification. Decoding is a pure function of the 32 bytes and entries are matched
/// on all 32, so the cache can change no verdict. Direct-mapped: a collision just decodes again.
type CachedKey = Option<([u8; 32], EdwardsPoint)>;
static KEY_CACHE: Mutex<Vec<CachedKey>> = Mutex::new(Vec::new());
const KEY_CACHE_SLOTS: usize = 256;

fn decode_key_negated_cached(pk: &[u8; 32]) -> Option<EdwardsPoint> {
    let slot = usize::from(pk[0]) % KEY_CACHE_SLOTS;
    // never wait for the lock: a busy cache (or one locked at fork time) just means decoding
    if let Some(cache) = try_lock_cache() {
        if let Some(Some((key, point))) = cache.get(slot) {
            if key == pk {
                return Some(*point);
            }
        }
    }
    let point = decode_key_negated(pk)?;
    if let Some(mut cache) = try_lock_cache() {
        if cache.len() < KEY_CACHE_SLOTS {
            cache.resize(KEY_CACHE_SLOTS, None);
        }
        cache[slot] = Some((*pk, point));
    }
    Some(point)
}

fn try_lock_cache() -> Option<std::sync::MutexGuard<'static, Vec<CachedKey>>> {
    match KEY_CACHE.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Step 6 up to the encoding: `[S]B − [k]A` with `k = SHA-512(R ‖ A ‖ M) mod l`.
fn recompute_r(
    message: &[u8],
    pk: &[u8; 32],
    r_bytes: &[u8; 32],
    s: &Scalar,
    minus_a: &EdwardsPoint,
) -> EdwardsPoint {
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(pk);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, minus_a, s)
}

/// The strict verdict on one signature; wrong lengths are simply invalid.
pub fn verify(message: &[u8], signature: &[u8], public_key: &[u8]) -> bool {
    let Some((pk, r_bytes, s)) = precheck(signature, public_key) else {
        return false;
    };
    let Some(minus_a) = decode_key_negated_cached(pk) else {
        return false;
    };
    recompute_r(message, pk, r_bytes, &s, &minus_a)
        .compress()
        .as_bytes()
        == r_bytes
}

/// The verdicts of `verify` on every signature, computed with two shortcuts that cannot change
/// a verdict: each distinct key is decoded once (decoding is a pure function of its bytes, and
/// recent keys come from `KEY_CACHE`), and
/// the recomputed points are encoded together with one shared field inversion
/// (`compress_batch_alloc`, which yields the same canonical bytes as `compress`). Every
/// signature is still checked against its own equation; nothing is combined across signatures.
pub fn verify_each(
    messages: &[&[u8]],
    signatures: &[&[u8]],
    public_keys: &[&[u8]],
    out: &mut [bool],
) {
    assert!(
        messages.len() == out.len()
            && signatures.len() == out.len()
            && public_keys.len() == out.len()
    );
    let mut slots: HashMap<[u8; 32], usize> = HashMap::new();
    let mut keys: Vec<Option<EdwardsPoint>> = Vec::new();
    let mut points = Vec::with_capacity(out.len());
    let mut pending = Vec::with_capacity(out.len());
    for i in 0..out.len() {
        out[i] = false;
        let Some((pk, r_bytes, s)) = precheck(signatures[i], public_keys[i]) else {
            continue;
        };
        let slot = *slots.entry(*pk).or_insert_with(|| {
            keys.push(decode_key_negated_cached(pk));
            keys.len() - 1
        });
        let Some(minus_a) = keys[slot] else {
            continue;
        };
        points.push(recompute_r(messages[i], pk, r_bytes, &s, &minus_a));
        pending.push((i, r_bytes));
    }
    for (encoded, (i, r_bytes)) in EdwardsPoint::compress_batch_alloc(&points)
        .iter()
        .zip(pending)
    {
        out[i] = encoded.as_bytes() == r_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocklist_constants_match_the_field_prime() {
        assert_eq!(P[0], 0xed);
        assert_eq!(P_MINUS_ONE[0], 0xec);
        assert_eq!(P_PLUS_ONE[0], 0xee);
        assert_eq!(P[31], 0x7f);
    }

    #[test]
    fn scalar_canonical_boundary() {
        let mut l = GROUP_ORDER;
        assert!(!scalar_is_canonical(&l));
        l[0] -= 1;
        assert!(scalar_is_canonical(&l));
        assert!(!scalar_is_canonical(&[0xff; 32]));
        assert!(scalar_is_canonical(&[0; 32]));
    }

    #[test]
    fn small_order_ignores_sign_bit() {
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(has_small_order_encoding(&one));
        one[31] |= 0x80;
        assert!(has_small_order_encoding(&one));
        one[0] = 2;
        assert!(!has_small_order_encoding(&one));
    }

    #[test]
    fn point_canonical_boundary() {
        assert!(!point_is_canonical(&P));
        assert!(!point_is_canonical(&[0xff; 32]));
        assert!(point_is_canonical(&P_MINUS_ONE));
        let mut neg = P_MINUS_ONE;
        neg[31] |= 0x80;
        assert!(point_is_canonical(&neg));
    }

    #[test]
    fn verify_each_agrees_with_verify() {
        let pk = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig = hex(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
        let mut bad_s = sig.clone();
        bad_s[63] |= 0x10; // S >= l
        let mut bad_r = sig.clone();
        bad_r[0] ^= 1;
        let mut off_curve_key = pk.clone();
        off_curve_key[0] ^= 1;
        let msgs: Vec<&[u8]> = vec![
            &[0x72],
            &[0x73],
            &[0x72],
            &[0x72],
            &[0x72],
            &[0x72],
            &[0x72],
        ];
        let sigs: Vec<&[u8]> = vec![&sig, &sig, &bad_s, &bad_r, &sig, &sig[..63], &sig];
        let keys: Vec<&[u8]> = vec![&pk, &pk, &pk, &pk, &off_curve_key, &pk, &pk];
        let mut out = vec![true; msgs.len()];
        verify_each(&msgs, &sigs, &keys, &mut out);
        let one_by_one: Vec<bool> = (0..msgs.len())
            .map(|i| verify(msgs[i], sigs[i], keys[i]))
            .collect();
        assert_eq!(out, one_by_one);
        assert_eq!(out, vec![true, false, false, false, false, false, true]);
        let mut empty: Vec<bool> = vec![];
        verify_each(&[], &[], &[], &mut empty);
    }

    #[test]
    fn key_cache_never_confuses_keys() {
        // two keys in the same slot (same first byte), used alternately
        let pk1 = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig1 = hex(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
        let a2 = EdwardsPoint::mul_base(&Scalar::from(3u64)).compress();
        let mut found = None;
        for i in 1u64..5000 {
            let p = EdwardsPoint::mul_base(&Scalar::from(i)).compress();
            if p.as_bytes()[0] == pk1[0] {
                found = Some(p);
                break;
            }
        }
        let pk2 = found.unwrap_or(a2);
        assert_eq!(pk2.as_bytes()[0], pk1[0]);
        for _ in 0..3 {
            assert!(verify(&[0x72], &sig1, &pk1));
            assert!(!verify(&[0x72], &sig1, pk2.as_bytes()));
            assert_eq!(
                decode_key_negated_cached(pk2.as_bytes()),
                decode_key_negated(pk2.as_bytes())
            );
            assert_eq!(
                decode_key_negated_cached(&pk1.clone().try_into().unwrap()),
                decode_key_negated(&pk1.clone().try_into().unwrap())
            );
        }
    }

    #[test]
    fn wrong_lengths_are_invalid() {
        assert!(!verify(b"m", &[0; 63], &[0; 32]));
        assert!(!verify(b"m", &[0; 64], &[0; 31]));
        assert!(!verify(b"m", &[], &[]));
    }

    // RFC 8032 section 7.1, test 2.
    #[test]
    fn rfc8032_test_vector() {
        let pk = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig = hex(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
        assert!(verify(&[0x72], &sig, &pk));
        assert!(!verify(&[0x73], &sig, &pk));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
