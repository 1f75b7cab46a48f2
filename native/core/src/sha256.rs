//! SHA-256 of many short messages at once.
//!
//! On x86-64 CPUs with the SHA extensions, one SHA-256 stream is bound by the latency of
//! `sha256rnds2`, so independent messages hashed in one instruction stream run faster than one
//! after the other: four streams reach the throughput of the SHA unit (about 2.2× one stream on
//! AMD Zen 4). `hash_prefixed` interleaves messages that way, reading 64-byte blocks straight from
//! the caller's memory (only the last one or two padded blocks of each message are assembled in a
//! small buffer); everything else (and every other CPU) goes through the `sha2` crate. The results
//! are plain SHA-256 either way, checked against `sha2` by the tests below and against `hashlib`
//! by the Python tests.
//!
//! Every message may start with one extra byte (`prefix`): RFC 9162 hashes `0x00 ‖ leaf` and
//! `0x01 ‖ left ‖ right`, and taking that byte apart means no copy of the data is needed.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Messages hashed together in one instruction stream: four keep the SHA unit busy; more
/// only spill registers.
const LANES: usize = 4;

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

/// SHA-256 of `prefix ‖ data`, one message at a time (the portable engine).
pub fn digest_prefixed(prefix: Option<u8>, data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    if let Some(p) = prefix {
        h.update([p]);
    }
    h.update(data);
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

/// SHA-256 of `prefix ‖ data(first + i)` into `out[i]`, for every `i < out.len()`.
pub fn hash_prefixed<'a, F>(prefix: Option<u8>, first: usize, out: &mut [Hash], data: F)
where
    F: Fn(usize) -> &'a [u8],
{
    #[cfg(target_arch = "x86_64")]
    {
        if engine() == Engine::Auto && shani::available() {
            // SAFETY: the CPU supports the SHA extensions (checked above).
            unsafe { shani::hash_prefixed(prefix, first, out, data) };
            return;
        }
    }
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = digest_prefixed(prefix, data(first + k));
    }
}

/// RFC 9162 interior nodes: `out[i] = SHA-256(0x01 ‖ level[2i] ‖ level[2i + 1])`.
pub fn node_hashes(level: &[Hash], out: &mut [Hash]) {
    assert!(level.len() >= 2 * out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if engine() == Engine::Auto && shani::available() {
            // SAFETY: the CPU supports the SHA extensions (checked above).
            unsafe { shani::node_hashes(level, out) };
            return;
        }
    }
    hash_prefixed(Some(1), 0, out, |i| level[2 * i..2 * i + 2].as_flattened());
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use core::arch::x86_64::*;

    use super::{Hash, IV, K, LANES};

    pub fn available() -> bool {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3")
    }

    /// The byte-swap that turns 16 message bytes into four schedule words.
    #[inline(always)]
    unsafe fn bswap_mask() -> __m128i {
        _mm_set_epi64x(0x0c0d0e0f08090a0b, 0x0405060700010203)
    }

    // Where one 64-byte block of one stream comes from. Each kind loads its four 16-byte groups
    // without a branch, so that `compress_block` is one straight run of instructions. (No
    // closures in this module: they would not inherit the caller's target features, and the
    // intrinsics in them would become calls.)
    trait Block {
        /// Group `j` (0..4), byte-swapped into the schedule's word order.
        unsafe fn group(&self, j: usize) -> __m128i;
    }

    /// 64 bytes in memory.
    struct Plain(*const u8);

    impl Block for Plain {
        #[inline(always)]
        unsafe fn group(&self, j: usize) -> __m128i {
            let p = self.0 as *const __m128i;
            _mm_shuffle_epi8(_mm_loadu_si128(p.add(j)), bswap_mask())
        }
    }

    /// One prefix byte (in byte 15 of `prefix`), then the first 63 bytes at `data`.
    struct Prefixed {
        data: *const u8,
        prefix: __m128i,
    }

    impl Block for Prefixed {
        #[inline(always)]
        unsafe fn group(&self, j: usize) -> __m128i {
            let v = if j == 0 {
                _mm_alignr_epi8(
                    _mm_loadu_si128(self.data as *const __m128i),
                    self.prefix,
                    15,
                )
            } else {
                _mm_loadu_si128(self.data.add(16 * j - 1) as *const __m128i)
            };
            _mm_shuffle_epi8(v, bswap_mask())
        }
    }

    /// The second block of an RFC 9162 interior node `0x01 ‖ left ‖ right` (the 64 bytes at
    /// `pair`): the last byte of `right`, `0x80`, zeros, the bit length 520.
    struct NodeTail(*const u8);

    impl Block for NodeTail {
        #[inline(always)]
        unsafe fn group(&self, j: usize) -> __m128i {
            match j {
                0 => {
                    let last = _mm_loadu_si128(self.0.add(48) as *const __m128i);
                    let v = _mm_alignr_epi8(_mm_cvtsi32_si128(0x80), last, 15);
                    _mm_shuffle_epi8(v, bswap_mask())
                }
                3 => _mm_set_epi32(65 * 8, 0, 0, 0), // the bit length
                _ => _mm_setzero_si128(),
            }
        }
    }

    fn prefix_vector(prefix: u8) -> __m128i {
        // SAFETY: SSE2 is part of x86-64.
        unsafe { _mm_slli_si128(_mm_cvtsi32_si128(i32::from(prefix)), 15) }
    }

    /// One message `prefix ‖ data` and its padding: its first `direct` blocks lie entirely
    /// inside `prefix ‖ data` and are read from `data` itself; the last one or two (the end of
    /// the data, `0x80`, zeros, the bit length) are built in `tail[64..]`.
    struct Message {
        data: *const u8,
        prefix: Option<u8>,
        direct: usize,
        blocks: usize,
        tail: [u8; 192],
    }

    impl Message {
        const EMPTY: Message = Message {
            data: core::ptr::null(),
            prefix: None,
            direct: 0,
            blocks: 0,
            tail: [0; 192],
        };

        /// Makes this the message `prefix ‖ data` (in place: a `Message` is too large to move
        /// around once per hash).
        #[inline(always)]
        fn set(&mut self, prefix: Option<u8>, data: &[u8]) {
            let shift = usize::from(prefix.is_some());
            let len = data.len() + shift; // message length in bytes
            let direct = len / 64;
            // the tail's bytes are `tail[64..]`; the 64 before give room for one fixed-size
            // copy of the data's last 64 bytes, which ends where the tail's data ends
            let tail = &mut self.tail;
            tail[64..].fill(0);
            let rest = len - 64 * direct; // message bytes in the tail, < 64
            if data.len() >= 64 {
                tail[rest..rest + 64].copy_from_slice(&data[data.len() - 64..]);
            } else if direct == 0 && shift == 1 {
                tail[64] = prefix.unwrap_or(0);
                tail[65..64 + rest].copy_from_slice(data);
            } else {
                tail[64..64 + rest].copy_from_slice(&data[64 * direct - shift..]);
            }
            tail[64 + rest] = 0x80;
            let tail_blocks = if rest + 9 <= 64 { 1 } else { 2 };
            tail[64 * tail_blocks + 56..64 * tail_blocks + 64]
                .copy_from_slice(&((len as u64) * 8).to_be_bytes());
            self.data = data.as_ptr();
            self.prefix = prefix;
            self.direct = direct;
            self.blocks = direct + tail_blocks;
        }

        /// The first block, when the message has a prefix and `direct > 0` (so that `data` has
        /// at least 63 bytes).
        #[inline(always)]
        fn prefixed(&self) -> Prefixed {
            Prefixed {
                data: self.data,
                prefix: prefix_vector(self.prefix.unwrap_or(0)),
            }
        }

        /// Block `blk < blocks`, unless it is the one `prefixed` gives: a direct block lies
        /// entirely inside `data` (`64 (blk + 1) <= len`), the others in `tail`.
        #[inline(always)]
        fn plain(&self, blk: usize) -> Plain {
            if blk < self.direct {
                let shift = usize::from(self.prefix.is_some());
                Plain(self.data.wrapping_add(64 * blk).wrapping_sub(shift))
            } else {
                Plain(
                    self.tail
                        .as_ptr()
                        .wrapping_add(64 * (blk - self.direct + 1)),
                )
            }
        }
    }

    /// State words `A..H` as the two registers the SHA instructions use: `ABEF` and `CDGH`.
    #[inline(always)]
    unsafe fn initial_state() -> (__m128i, __m128i) {
        let abcd = _mm_loadu_si128(IV.as_ptr() as *const __m128i);
        let efgh = _mm_loadu_si128(IV.as_ptr().add(4) as *const __m128i);
        let cdab = _mm_shuffle_epi32(abcd, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    /// The digest (big-endian words `A..H`) from the `ABEF`/`CDGH` registers.
    #[inline(always)]
    unsafe fn store_digest(abef: __m128i, cdgh: __m128i, out: &mut Hash) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let abcd = _mm_blend_epi16(feba, dchg, 0xF0);
        let efgh = _mm_alignr_epi8(dchg, feba, 8);
        let bswap = bswap_mask();
        _mm_storeu_si128(
            out.as_mut_ptr() as *mut __m128i,
            _mm_shuffle_epi8(abcd, bswap),
        );
        _mm_storeu_si128(
            out.as_mut_ptr().add(16) as *mut __m128i,
            _mm_shuffle_epi8(efgh, bswap),
        );
    }

    /// One block of each of `N` streams, interleaved for the out-of-order core.
    #[inline(always)]
    unsafe fn compress_block<const N: usize, B: Block>(
        abef: &mut [__m128i; N],
        cdgh: &mut [__m128i; N],
        blocks: &[B; N],
    ) {
        // the message schedule, four words at a time, in a ring of four groups per stream
        let mut w = [[_mm_setzero_si128(); 4]; N];
        let (abef0, cdgh0) = (*abef, *cdgh);
        macro_rules! step {
            ($j:expr) => {{
                let j: usize = $j;
                let k = _mm_loadu_si128(K.as_ptr().add(4 * j) as *const __m128i);
                let mut m = [_mm_setzero_si128(); N];
                for s in 0..N {
                    let wj = if j < 4 {
                        blocks[s].group(j)
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
            }};
        }
        step!(0);
        step!(1);
        step!(2);
        step!(3);
        step!(4);
        step!(5);
        step!(6);
        step!(7);
        step!(8);
        step!(9);
        step!(10);
        step!(11);
        step!(12);
        step!(13);
        step!(14);
        step!(15);
        for s in 0..N {
            abef[s] = _mm_add_epi32(abef[s], abef0[s]);
            cdgh[s] = _mm_add_epi32(cdgh[s], cdgh0[s]);
        }
    }

    /// Blocks `from..to` of `N` messages of the same shape (prefix and block counts), as
    /// streams of one instruction stream.
    #[inline(always)]
    unsafe fn compress_messages<const N: usize>(
        abef: &mut [__m128i; N],
        cdgh: &mut [__m128i; N],
        msgs: &[Message; N],
        from: usize,
        to: usize,
    ) {
        let mut blk = from;
        if blk == 0 && blk < to && msgs[0].prefix.is_some() && msgs[0].direct > 0 {
            let mut blocks = [const { None }; N];
            for s in 0..N {
                blocks[s] = Some(msgs[s].prefixed());
            }
            compress_block::<N, Prefixed>(abef, cdgh, &blocks.map(Option::unwrap));
            blk = 1;
        }
        while blk < to {
            let mut blocks = [const { Plain(core::ptr::null()) }; N];
            for s in 0..N {
                blocks[s] = msgs[s].plain(blk);
            }
            compress_block::<N, Plain>(abef, cdgh, &blocks);
            blk += 1;
        }
    }

    /// SHA-256 of `N` messages.
    #[inline(always)]
    unsafe fn digest_xn<const N: usize>(msgs: &[Message; N], out: &mut [Hash]) {
        let (a0, c0) = initial_state();
        let (shape, blocks) = (msgs[0].direct, msgs[0].blocks);
        let mut same = true;
        for m in msgs {
            same &= m.direct == shape && m.blocks == blocks;
        }
        if same {
            let mut abef = [a0; N];
            let mut cdgh = [c0; N];
            compress_messages::<N>(&mut abef, &mut cdgh, msgs, 0, blocks);
            for s in 0..N {
                store_digest(abef[s], cdgh[s], &mut out[s]);
            }
        } else {
            for s in 0..N {
                let (mut abef, mut cdgh) = ([a0], [c0]);
                let msg = core::slice::from_ref(&msgs[s])
                    .try_into()
                    .expect("one message");
                compress_messages::<1>(&mut abef, &mut cdgh, msg, 0, msgs[s].blocks);
                store_digest(abef[0], cdgh[0], &mut out[s]);
            }
        }
    }

    /// `N` interior nodes over the `2 N` hashes at `pairs`: both blocks interleaved.
    #[inline(always)]
    unsafe fn nodes_xn<const N: usize>(pairs: &[Hash], out: &mut [Hash]) {
        assert!(pairs.len() >= 2 * N && out.len() >= N);
        let at = pairs.as_flattened().as_ptr();
        let one = prefix_vector(1);
        let mut first = [const { None }; N];
        let mut second = [const { NodeTail(core::ptr::null()) }; N];
        for s in 0..N {
            first[s] = Some(Prefixed {
                data: at.add(64 * s),
                prefix: one,
            });
            second[s] = NodeTail(at.add(64 * s));
        }
        let (a0, c0) = initial_state();
        let mut abef = [a0; N];
        let mut cdgh = [c0; N];
        compress_block::<N, Prefixed>(&mut abef, &mut cdgh, &first.map(Option::unwrap));
        compress_block::<N, NodeTail>(&mut abef, &mut cdgh, &second);
        for s in 0..N {
            store_digest(abef[s], cdgh[s], &mut out[s]);
        }
    }

    /// SHA-256 of `prefix ‖ data(first + i)` into `out[i]`.
    ///
    /// # Safety
    /// The CPU must support SHA, SSSE3 and SSE4.1 (`available()`).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn hash_prefixed<'a, F>(prefix: Option<u8>, first: usize, out: &mut [Hash], data: F)
    where
        F: Fn(usize) -> &'a [u8],
    {
        let mut msgs = [Message::EMPTY; LANES];
        let mut i = 0;
        while out.len() - i >= LANES {
            for (s, msg) in msgs.iter_mut().enumerate() {
                msg.set(prefix, data(first + i + s));
            }
            digest_xn::<LANES>(&msgs, &mut out[i..i + LANES]);
            i += LANES;
        }
        if out.len() - i >= 2 {
            msgs[0].set(prefix, data(first + i));
            msgs[1].set(prefix, data(first + i + 1));
            let pair: &[Message; 2] = msgs[..2].try_into().expect("two messages");
            digest_xn::<2>(pair, &mut out[i..i + 2]);
            i += 2;
        }
        if i < out.len() {
            msgs[0].set(prefix, data(first + i));
            let one: &[Message; 1] = msgs[..1].try_into().expect("one message");
            digest_xn::<1>(one, &mut out[i..]);
        }
    }

    /// RFC 9162 interior nodes over consecutive pairs of `level` into `out`.
    ///
    /// # Safety
    /// The CPU must support SHA, SSSE3 and SSE4.1 (`available()`).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn node_hashes(level: &[Hash], out: &mut [Hash]) {
        assert!(level.len() >= 2 * out.len());
        let mut i = 0;
        while out.len() - i >= LANES {
            nodes_xn::<LANES>(&level[2 * i..], &mut out[i..i + LANES]);
            i += LANES;
        }
        if out.len() - i >= 2 {
            nodes_xn::<2>(&level[2 * i..], &mut out[i..i + 2]);
            i += 2;
        }
        if i < out.len() {
            nodes_xn::<1>(&level[2 * i..], &mut out[i..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn expected(prefix: Option<u8>, data: &[u8]) -> Hash {
        let mut v: Vec<u8> = prefix.into_iter().collect();
        v.extend_from_slice(data);
        Sha256::digest(&v).into()
    }

    #[test]
    fn mixed_lengths_match_sha2_for_every_pairing() {
        for_each_engine(|| {
            let data: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
            // lengths around every block boundary (with and without the prefix byte), each
            // hashed in a group with every other length
            let lens: Vec<usize> = (0..140)
                .chain([183, 190, 191, 192, 200, 247, 254, 255, 256, 319, 400])
                .collect();
            for prefix in [None, Some(0u8), Some(1u8), Some(0xffu8)] {
                for &la in &lens {
                    let msgs: Vec<&[u8]> = lens
                        .iter()
                        .flat_map(|&lb| [&data[..la], &data[400 - lb..]])
                        .collect();
                    for first in [0, 1, 3] {
                        let mut out = vec![[0u8; 32]; msgs.len() - first];
                        hash_prefixed(prefix, first, &mut out, |i| msgs[i]);
                        for (k, h) in out.iter().enumerate() {
                            let m = msgs[first + k];
                            assert_eq!(*h, expected(prefix, m), "{prefix:?} la={la} k={k}");
                        }
                    }
                }
            }
        });
    }

    #[test]
    fn uniform_lengths_and_every_group_size() {
        for_each_engine(|| {
            let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
            for len in (0..140).chain([183, 200, 201, 255, 256, 1000, 4000]) {
                for n in 0..11 {
                    for prefix in [None, Some(0u8)] {
                        let mut out = vec![[0u8; 32]; n];
                        hash_prefixed(prefix, 0, &mut out, |i| &data[i..i + len]);
                        for (i, h) in out.iter().enumerate() {
                            assert_eq!(*h, expected(prefix, &data[i..i + len]), "len={len}");
                        }
                    }
                }
            }
        });
    }

    #[test]
    fn node_hashes_match_rfc_9162() {
        for_each_engine(|| {
            let level: Vec<Hash> = (0..23u8).map(|i| [i.wrapping_mul(37); 32]).collect();
            for pairs in 0..=11 {
                let mut out = vec![[0u8; 32]; pairs];
                node_hashes(&level[..2 * pairs + 1], &mut out);
                for (i, h) in out.iter().enumerate() {
                    let mut v = vec![1u8];
                    v.extend_from_slice(&level[2 * i]);
                    v.extend_from_slice(&level[2 * i + 1]);
                    assert_eq!(h, &<Hash>::from(Sha256::digest(&v)));
                }
            }
        });
    }

    #[test]
    fn known_answers() {
        for_each_engine(|| {
            let mut out = [[0u8; 32]; 5];
            hash_prefixed(None, 0, &mut out, |i| {
                [&b""[..], b"abc", b"", b"abc", b"abc"][i]
            });
            assert_eq!(
                out[1][..4],
                [0xba, 0x78, 0x16, 0xbf],
                "SHA-256(\"abc\") starts ba7816bf"
            );
            assert_eq!(
                out[0][..4],
                [0xe3, 0xb0, 0xc4, 0x42],
                "SHA-256(\"\") starts e3b0c442"
            );
            assert_eq!(out[3], out[1]);
        });
    }
}
