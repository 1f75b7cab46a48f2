//! A scalable Bloom filter over 64-bit key hashes: the store's "which keys may I hold" filter.
//!
//! Bit-for-bit the layout of the pure-Python twin (`ledger/_keyfilter.py`): given the same
//! hashes in the same order, both set the same bits in parts of the same sizes, so they give
//! the same answers, false positives included (tests/unit/native/ checks this). The hash comes
//! from the caller (the Python binding uses Python's own `hash`, as the twin does).
//!
//! Blocked: a key's four positions lie in one 512-bit block (one cache line), so a lookup
//! costs one cache miss a part instead of up to four; the filters are megabytes, and a busy
//! node asks them about every key it reads and writes (in the consortium benchmark the
//! unblocked probes were 2% of the machine). The block is the low 32 bits of the hash, `h1`,
//! modulo the part's blocks; the positions in it, by double hashing on the high 32 bits `h2`:
//! `(h2 + i * step) mod 512` for i in 0..4, with `step = (h2 >> 16) | 1` (odd, so the four
//! differ). A full part is kept and a new one, twice as large as all earlier parts together,
//! takes the new keys.

/// At least this many bits per key of a part's capacity (rounded up to a power of two).
pub const BITS_PER_KEY: u64 = 10;
/// The smallest part: 2^16 bits.
const MIN_BITS_LOG2: u32 = 16;
/// A block: 2^9 bits, one 64-byte cache line.
const BLOCK_BITS_LOG2: u32 = 9;

/// A block's bytes, aligned to the cache line it is meant to fill.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

struct Part {
    bits: Vec<Line>,
    mask: u64,
    capacity: u64,
    count: u64,
}

fn bit_length(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

impl Part {
    fn new(capacity: u64) -> Part {
        let log2 = MIN_BITS_LOG2.max(bit_length((capacity * BITS_PER_KEY).saturating_sub(1)));
        let nbits = 1u64 << log2;
        Part {
            bits: vec![Line([0u8; 64]); (nbits >> BLOCK_BITS_LOG2) as usize],
            mask: nbits - 1,
            capacity,
            count: 0,
        }
    }

    #[inline]
    fn positions(&self, hash: u64) -> [u64; 4] {
        let block = (hash & 0xFFFF_FFFF) & (self.mask >> BLOCK_BITS_LOG2);
        let base = block << BLOCK_BITS_LOG2;
        let h2 = hash >> 32;
        let step = (h2 >> 16) | 1;
        let m = (1 << BLOCK_BITS_LOG2) - 1;
        [
            base | (h2 & m),
            base | ((h2 + step) & m),
            base | ((h2 + 2 * step) & m),
            base | ((h2 + 3 * step) & m),
        ]
    }

    #[inline]
    fn has(&self, b: u64) -> bool {
        self.bits[(b >> BLOCK_BITS_LOG2) as usize].0[((b >> 3) & 63) as usize] & (1 << (b & 7)) != 0
    }

    #[inline]
    fn contains(&self, hash: u64) -> bool {
        self.positions(hash).iter().all(|&b| self.has(b))
    }

    /// Set the key's positions; false if all were set already (the key is not counted).
    #[inline]
    fn insert(&mut self, hash: u64) -> bool {
        let pos = self.positions(hash);
        if pos.iter().all(|&b| self.has(b)) {
            return false;
        }
        for b in pos {
            self.bits[(b >> BLOCK_BITS_LOG2) as usize].0[((b >> 3) & 63) as usize] |= 1 << (b & 7);
        }
        true
    }
}

pub struct KeyFilter {
    parts: Vec<Part>,
}

impl KeyFilter {
    pub fn new(capacity: u64) -> KeyFilter {
        KeyFilter {
            parts: vec![Part::new(capacity)],
        }
    }

    /// The part that takes new keys, adding one when the newest is full.
    fn room(&mut self) -> &mut Part {
        let full = {
            let last = self.parts.last().expect("a filter always has a part");
            last.count >= last.capacity
        };
        if full {
            let total: u64 = self.parts.iter().map(|p| p.capacity).sum();
            self.parts.push(Part::new(2 * total));
        }
        self.parts.last_mut().expect("a filter always has a part")
    }

    /// Add one key's hash. A key the newest part already holds is not counted again.
    pub fn insert(&mut self, hash: u64) {
        let part = self.room();
        if part.insert(hash) {
            part.count += 1;
        }
    }

    /// False only for a hash never inserted.
    pub fn contains(&self, hash: u64) -> bool {
        self.parts.iter().any(|p| p.contains(hash))
    }

    /// Keys counted (a new key whose positions were all set already is not).
    pub fn count(&self) -> u64 {
        self.parts.iter().map(|p| p.count).sum()
    }

    pub fn nbytes(&self) -> u64 {
        self.parts.iter().map(|p| 64 * p.bits.len() as u64).sum()
    }

    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(i: u64) -> u64 {
        // splitmix64: well-spread test hashes
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn no_false_negatives_across_parts() {
        let mut f = KeyFilter::new(1000);
        for i in 0..20_000 {
            f.insert(mix(i));
        }
        assert!(f.parts() > 1);
        assert!((0..20_000).all(|i| f.contains(mix(i))));
    }

    #[test]
    fn false_positives_are_rare() {
        let mut f = KeyFilter::new(10_000);
        for i in 0..10_000 {
            f.insert(mix(i));
        }
        let fp = (1_000_000..1_100_000)
            .filter(|&i| f.contains(mix(i)))
            .count();
        assert!(fp < 2_000, "{fp} false positives in 100,000");
    }

    #[test]
    fn a_keys_positions_are_distinct_and_in_one_cache_line() {
        let part = Part::new(1 << 20);
        for i in 0..10_000 {
            let pos = part.positions(mix(i));
            let line = pos[0] >> BLOCK_BITS_LOG2;
            assert!(pos
                .iter()
                .all(|&p| p >> BLOCK_BITS_LOG2 == line && p <= part.mask));
            let mut sorted = pos;
            sorted.sort_unstable();
            assert!(sorted.windows(2).all(|w| w[0] != w[1]), "{pos:?}");
        }
    }

    #[test]
    fn repeated_keys_are_counted_once() {
        let mut f = KeyFilter::new(100);
        for _ in 0..1000 {
            f.insert(mix(7));
        }
        assert_eq!(f.count(), 1);
        assert_eq!(f.parts(), 1);
    }

    #[test]
    fn part_sizes_follow_the_rule() {
        let f = KeyFilter::new(1 << 20);
        // 10 bits a key rounded up to a power of two: 2^24 bits = 2 MiB
        assert_eq!(f.nbytes(), 1 << 21);
        assert_eq!(KeyFilter::new(1).nbytes(), 1 << 13);
    }
}
