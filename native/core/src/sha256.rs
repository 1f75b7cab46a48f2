//! SHA-256 of many short messages at once.
//!
//! On x86-64 CPUs with the SHA extensions, one SHA-256 stream is bound by the latency of
//! `sha256rnds2`, so two independent messages hashed in one instruction stream run almost twice
//! as fast as one after the other. `hash_many` pairs messages up that way; everything else (and
//! every other CPU) goes through the `sha2` crate. The results are plain SHA-256 either way,
//! checked against `sha2` by the tests below and against `hashlib` by the Python tests.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Messages hashed together in one instruction stream.
const LANES: usize = 4;

/// A message given as up to three pieces, concatenated (e.g. `0x01 ‖ left ‖ right`).
pub type Parts<'a> = [&'a [u8]; 3];

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

pub fn digest_parts(parts: &Parts<'_>) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Which code computes SHA-256 (the result is the same; only tests and benchmarks choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SHA-NI, four messages interleaved, where the CPU has it; otherwise `Portable`.
    Auto = 0,
    /// The `sha2` crate, one message at a time.
    Portable = 1,
}

static ENGINE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Choose the SHA-256 engine for the whole process (tests and benchmarks).
pub fn set_engine(engine: Engine) {
    ENGINE.store(engine as u8, std::sync::atomic::Ordering::Relaxed);
}

fn engine() -> Engine {
    match ENGINE.load(std::sync::atomic::Ordering::Relaxed) {
        1 => Engine::Portable,
        _ => Engine::Auto,
    }
}

/// SHA-256 of message `first + i` into `out[i]`, for every `i < out.len()`.
pub fn hash_many<'a, F>(first: usize, out: &mut [Hash], message: F)
where
    F: Fn(usize) -> Parts<'a>,
{
    #[cfg(target_arch = "x86_64")]
    {
        if engine() == Engine::Auto && shani::available() {
            let mut i = first;
            let mut rest = out;
            while !rest.is_empty() {
                if rest.len() >= LANES {
                    let msgs: [Parts<'a>; LANES] = core::array::from_fn(|s| message(i + s));
                    let (head, tail) = core::mem::take(&mut rest).split_at_mut(LANES);
                    // SAFETY: the CPU supports the SHA extensions (checked above).
                    unsafe { shani::digest_xn::<LANES>(msgs, head) };
                    i += LANES;
                    rest = tail;
                    continue;
                }
                let (head, tail) = core::mem::take(&mut rest).split_at_mut(1);
                head[0] = digest_parts(&message(i));
                i += 1;
                rest = tail;
            }
            return;
        }
    }
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = digest_parts(&message(first + k));
    }
}

/// Writes the padded SHA-256 message `parts ‖ 0x80 ‖ 0… ‖ bit length` into `buf`.
fn pad_into(parts: &Parts<'_>, buf: &mut Vec<u8>) {
    buf.clear();
    let mut len = 0usize;
    for p in parts {
        buf.extend_from_slice(p);
        len += p.len();
    }
    buf.push(0x80);
    let padded = (len + 9).div_ceil(64) * 64;
    buf.resize(padded - 8, 0);
    buf.extend_from_slice(&((len as u64) * 8).to_be_bytes());
}

fn state_to_hash(state: &[u32; 8]) -> Hash {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use core::arch::x86_64::*;
    use std::cell::RefCell;

    use super::{pad_into, state_to_hash, Parts, IV, K};
    use crate::Hash;

    pub fn available() -> bool {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3")
    }

    thread_local! {
        static BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// State words `A..H` as the two registers the SHA instructions use: `ABEF` and `CDGH`.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load_state(s: &[u32; 8]) -> (__m128i, __m128i) {
        let abcd = _mm_loadu_si128(s.as_ptr() as *const __m128i);
        let efgh = _mm_loadu_si128(s.as_ptr().add(4) as *const __m128i);
        let cdab = _mm_shuffle_epi32(abcd, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store_state(abef: __m128i, cdgh: __m128i, s: &mut [u32; 8]) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let abcd = _mm_blend_epi16(feba, dchg, 0xF0);
        let efgh = _mm_alignr_epi8(dchg, feba, 8);
        _mm_storeu_si128(s.as_mut_ptr() as *mut __m128i, abcd);
        _mm_storeu_si128(s.as_mut_ptr().add(4) as *mut __m128i, efgh);
    }

    /// The 16 four-word groups of the message schedule of one 64-byte block.
    #[inline(always)]
    unsafe fn schedule(block: *const u8) -> [__m128i; 16] {
        let bswap = _mm_set_epi64x(0x0c0d0e0f08090a0b, 0x0405060700010203);
        let mut w = [_mm_setzero_si128(); 16];
        for (j, wj) in w.iter_mut().enumerate().take(4) {
            *wj = _mm_shuffle_epi8(_mm_loadu_si128(block.add(16 * j) as *const __m128i), bswap);
        }
        for j in 4..16 {
            let t = _mm_add_epi32(
                _mm_sha256msg1_epu32(w[j - 4], w[j - 3]),
                _mm_alignr_epi8(w[j - 1], w[j - 2], 4),
            );
            w[j] = _mm_sha256msg2_epu32(t, w[j - 1]);
        }
        w
    }

    #[inline(always)]
    unsafe fn rounds(abef: &mut __m128i, cdgh: &mut __m128i, w: &[__m128i; 16]) {
        let (abef0, cdgh0) = (*abef, *cdgh);
        for (j, wj) in w.iter().enumerate() {
            let msg = _mm_add_epi32(
                *wj,
                _mm_loadu_si128(K.as_ptr().add(4 * j) as *const __m128i),
            );
            *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, msg);
            *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, _mm_shuffle_epi32(msg, 0x0E));
        }
        *abef = _mm_add_epi32(*abef, abef0);
        *cdgh = _mm_add_epi32(*cdgh, cdgh0);
    }

    /// `N` independent streams, block by block, interleaved for the out-of-order core.
    #[inline(always)]
    unsafe fn compress_xn<const N: usize>(
        states: &mut [[u32; 8]; N],
        bufs: [&[u8]; N],
        blocks: usize,
    ) {
        let mut abef = [_mm_setzero_si128(); N];
        let mut cdgh = [_mm_setzero_si128(); N];
        for s in 0..N {
            (abef[s], cdgh[s]) = load_state(&states[s]);
        }
        let bswap = _mm_set_epi64x(0x0c0d0e0f08090a0b, 0x0405060700010203);
        for blk in 0..blocks {
            // the message schedule, four words at a time, in a ring of four groups per stream
            let mut w = [[_mm_setzero_si128(); 4]; N];
            let (abef0, cdgh0) = (abef, cdgh);
            for j in 0..16 {
                let k = _mm_loadu_si128(K.as_ptr().add(4 * j) as *const __m128i);
                let mut m = [_mm_setzero_si128(); N];
                for s in 0..N {
                    let wj = if j < 4 {
                        let p = bufs[s].as_ptr().add(64 * blk + 16 * j) as *const __m128i;
                        _mm_shuffle_epi8(_mm_loadu_si128(p), bswap)
                    } else {
                        let t = _mm_add_epi32(
                            _mm_sha256msg1_epu32(w[s][j % 4], w[s][(j + 1) % 4]),
                            _mm_alignr_epi8(w[s][(j + 3) % 4], w[s][(j + 2) % 4], 4),
                        );
                        _mm_sha256msg2_epu32(t, w[s][(j + 3) % 4])
                    };
                    w[s][j % 4] = wj;
                    m[s] = _mm_add_epi32(wj, k);
                    cdgh[s] = _mm_sha256rnds2_epu32(cdgh[s], abef[s], m[s]);
                }
                for s in 0..N {
                    abef[s] =
                        _mm_sha256rnds2_epu32(abef[s], cdgh[s], _mm_shuffle_epi32(m[s], 0x0E));
                }
            }
            for s in 0..N {
                abef[s] = _mm_add_epi32(abef[s], abef0[s]);
                cdgh[s] = _mm_add_epi32(cdgh[s], cdgh0[s]);
            }
        }
        for s in 0..N {
            store_state(abef[s], cdgh[s], &mut states[s]);
        }
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress(s: &mut [u32; 8], blocks: &[u8]) {
        let (mut abef, mut cdgh) = load_state(s);
        for block in blocks.chunks_exact(64) {
            rounds(&mut abef, &mut cdgh, &schedule(block.as_ptr()));
        }
        store_state(abef, cdgh, s);
    }

    /// SHA-256 of `N` messages at once.
    ///
    /// # Safety
    /// The CPU must support SHA, SSSE3 and SSE4.1 (`available()`).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn digest_xn<const N: usize>(msgs: [Parts<'_>; N], out: &mut [Hash]) {
        BUFFERS.with(|bufs| {
            let bufs = &mut *bufs.borrow_mut();
            if bufs.len() < N {
                bufs.resize_with(N, Vec::new);
            }
            let mut common = usize::MAX;
            for s in 0..N {
                pad_into(&msgs[s], &mut bufs[s]);
                common = common.min(bufs[s].len());
            }
            let mut states = [IV; N];
            let views: [&[u8]; N] = core::array::from_fn(|s| bufs[s].as_slice());
            compress_xn::<N>(&mut states, views, common / 64);
            for s in 0..N {
                compress(&mut states[s], &bufs[s][common..]);
                out[s] = state_to_hash(&states[s]);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_many_matches_sha2_for_all_lengths_and_pairings() {
        for_each_engine(pairings_case);
    }

    fn pairings_case() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        // lengths around every block boundary, paired with every other length
        let lens: Vec<usize> = (0..140)
            .chain([183, 191, 192, 200, 247, 255, 256, 319, 400])
            .collect();
        for &la in &lens {
            let msgs: Vec<&[u8]> = lens.iter().map(|&lb| &data[..lb]).collect();
            let mut out = vec![[0u8; 32]; msgs.len() * 2];
            hash_many(0, &mut out, |i| {
                if i % 2 == 0 {
                    [&data[..la], &[], &[]]
                } else {
                    [
                        &[0x01],
                        &msgs[i / 2][..msgs[i / 2].len().min(7)],
                        msgs[i / 2],
                    ]
                }
            });
            for (i, h) in out.iter().enumerate() {
                let expected: Hash = if i % 2 == 0 {
                    Sha256::digest(&data[..la]).into()
                } else {
                    let m = msgs[i / 2];
                    let mut v = vec![0x01];
                    v.extend_from_slice(&m[..m.len().min(7)]);
                    v.extend_from_slice(m);
                    Sha256::digest(&v).into()
                };
                assert_eq!(*h, expected, "la={la} i={i}");
            }
        }
    }

    /// The engine is process-wide: tests that switch it take this lock.
    static ENGINE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn for_each_engine(f: impl Fn()) {
        let _guard = ENGINE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for e in [Engine::Portable, Engine::Auto] {
            set_engine(e);
            f();
        }
        set_engine(Engine::Auto);
    }

    #[test]
    fn hash_many_uniform_lengths_match_sha2() {
        for_each_engine(uniform_lengths_case);
    }

    fn uniform_lengths_case() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in (0..140).chain([183, 200, 201, 255, 256, 1000, 4000]) {
            let n = 37;
            let mut out = vec![[0u8; 32]; n];
            hash_many(0, &mut out, |i| {
                [&data[i..i + len.min(1)], &data[i + 1..i + len.max(1)], &[]]
            });
            for (i, h) in out.iter().enumerate() {
                let expected: Hash = Sha256::digest(&data[i..i + len.max(1)]).into();
                if len == 0 {
                    continue;
                }
                assert_eq!(*h, expected, "len={len} i={i}");
            }
        }
        let mut out = vec![[0u8; 32]; 20];
        hash_many(0, &mut out, |_| [&[], &[], &[]]);
        assert!(out
            .iter()
            .all(|h| *h == <[u8; 32]>::from(Sha256::digest(b""))));
    }

    #[test]
    fn hash_many_odd_count_and_offset() {
        let items: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; i as usize * 30]).collect();
        let mut out = vec![[0u8; 32]; 7];
        hash_many(2, &mut out, |i| [&items[i], &[], &[]]);
        for (k, h) in out.iter().enumerate() {
            assert_eq!(*h, <[u8; 32]>::from(Sha256::digest(&items[k + 2])));
        }
    }

    #[test]
    fn pad_into_matches_the_standard() {
        let mut buf = Vec::new();
        pad_into(&[b"abc", &[], &[]], &mut buf);
        assert_eq!(buf.len(), 64);
        assert_eq!(buf[3], 0x80);
        assert_eq!(&buf[56..], &24u64.to_be_bytes());
        pad_into(&[&[0u8; 55], &[], &[]], &mut buf);
        assert_eq!(buf.len(), 64);
        pad_into(&[&[0u8; 56], &[], &[]], &mut buf);
        assert_eq!(buf.len(), 128);
    }
}
