//! The canonical msgpack profile of `ledger/_codec.py`, natively: a one-pass check that bytes are
//! the one canonical encoding of their value, and a writer of the shortest forms.
//!
//! The Python module stays the reference: `check(data)` is true exactly when
//! `ledger._codec.decode(data)` (without its size limit, which the caller applies) accepts
//! `data`, and `Writer` emits what msgpack-python's `Packer(use_bin_type=True)` emits for the
//! canonical value. The rules, as that code enforces them:
//! - nil, false, true; integers within int64 in their shortest form (msgpack-python packs a
//!   non-negative value as positive fixint or uint8/16/32/64, a negative one as negative fixint or
//!   int8/16/32/64, each the smallest that holds it);
//! - `str` (valid UTF-8, as Python's strict decoder) and `bin`, with the shortest length header
//!   (fixstr / str8 / str16 / str32; bin8 / bin16 / bin32);
//! - arrays and maps with the shortest length header; map keys are `str`, strictly increasing by
//!   their UTF-8 bytes (so no duplicates);
//! - no floats, no extension types (the timestamp extension included), no 0xc1;
//! - every value at most `MAX_DEPTH` levels below the top (the top is level 0; map keys do not
//!   count as levels, they are checked as keys);
//! - exactly one value, with no bytes after it.

/// Deepest level a value may sit at (`ledger._codec.MAX_DEPTH`).
pub const MAX_DEPTH: usize = 32;
/// Largest document `ledger._codec.encode` produces (`ledger._codec.MAX_DOCUMENT_BYTES`).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// True iff `data` is the canonical encoding of one value (see the module documentation).
pub fn check(data: &[u8]) -> bool {
    let mut r = Reader { data, pos: 0 };
    r.value(0).is_some() && r.pos == data.len()
}

/// A cursor over msgpack bytes: the profile's checks (here) and `value::decode` share it.
pub(crate) struct Reader<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub(crate) fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u16(&mut self) -> Option<usize> {
        Some(u16::from_be_bytes(self.be()?) as usize)
    }

    pub(crate) fn u32(&mut self) -> Option<usize> {
        usize::try_from(u32::from_be_bytes(self.be()?)).ok()
    }

    /// A length read by `read`, refused unless it needed that header (at least `min`).
    fn len_at_least(&mut self, read: fn(&mut Self) -> Option<usize>, min: usize) -> Option<usize> {
        let n = read(self)?;
        (n >= min).then_some(n)
    }

    pub(crate) fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let b = self.byte()?;
        match b {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some(()),
            0x80..=0x8f | 0xde | 0xdf => {
                let n = self.map_len_after(b)?;
                self.map(n, depth)
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = self.array_len_after(b)?;
                self.array(n, depth)
            }
            0xa0..=0xbf | 0xd9..=0xdb => self.str_after(b).map(drop),
            0xc4..=0xc6 => self.bin_after(b).map(drop),
            0xcc => (self.byte()? >= 0x80).then_some(()),
            0xcd => (u16::from_be_bytes(self.be()?) >= 1 << 8).then_some(()),
            0xce => (u32::from_be_bytes(self.be()?) >= 1 << 16).then_some(()),
            0xcf => {
                let v = u64::from_be_bytes(self.be()?);
                (v >= 1 << 32 && v <= i64::MAX as u64).then_some(())
            }
            0xd0 => (i8::from_be_bytes(self.be()?) < -32).then_some(()),
            0xd1 => (i16::from_be_bytes(self.be()?) < -(1 << 7)).then_some(()),
            0xd2 => (i32::from_be_bytes(self.be()?) < -(1 << 15)).then_some(()),
            0xd3 => (i64::from_be_bytes(self.be()?) < -(1 << 31)).then_some(()),
            // 0xc1 (never used), 0xc7..=0xc9 and 0xd4..=0xd8 (extensions), 0xca/0xcb (floats)
            _ => None,
        }
    }

    /// The length after a str8/str16/str32 header `b`, refused unless that header was needed.
    fn str_len(&mut self, b: u8) -> Option<usize> {
        match b {
            0xd9 => {
                let n = self.byte()? as usize;
                (n >= 32).then_some(n)
            }
            0xda => self.len_at_least(Self::u16, 1 << 8),
            0xdb => self.len_at_least(Self::u32, 1 << 16),
            _ => None,
        }
    }

    /// The count after a container header `b` (a fixed form from `fix`, then 16 and 32 bits),
    /// refused unless that header was needed.
    fn count_after(&mut self, b: u8, fix: u8, h16: u8, h32: u8) -> Option<usize> {
        if b & 0xf0 == fix {
            Some((b & 0x0f) as usize)
        } else if b == h16 {
            self.len_at_least(Self::u16, 16)
        } else if b == h32 {
            self.len_at_least(Self::u32, 1 << 16)
        } else {
            None
        }
    }

    fn map_len_after(&mut self, b: u8) -> Option<usize> {
        self.count_after(b, 0x80, 0xde, 0xdf)
    }

    fn array_len_after(&mut self, b: u8) -> Option<usize> {
        self.count_after(b, 0x90, 0xdc, 0xdd)
    }

    /// The text after a str header `b`: valid UTF-8, with the shortest header.
    fn str_after(&mut self, b: u8) -> Option<&'a str> {
        let n = match b {
            0xa0..=0xbf => (b & 0x1f) as usize,
            _ => self.str_len(b)?,
        };
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// The bytes after a bin header `b`, with the shortest header.
    fn bin_after(&mut self, b: u8) -> Option<&'a [u8]> {
        let n = match b {
            0xc4 => self.byte()? as usize,
            0xc5 => self.len_at_least(Self::u16, 1 << 8)?,
            0xc6 => self.len_at_least(Self::u32, 1 << 16)?,
            _ => return None,
        };
        self.take(n)
    }

    // -- typed reads: one canonical value of the expected type, None for anything else --------

    /// A `str` with the shortest length header (what a map key must be).
    pub(crate) fn str_value(&mut self) -> Option<&'a str> {
        let b = self.byte()?;
        self.str_after(b)
    }

    /// A `bin` with the shortest length header.
    pub(crate) fn bin_value(&mut self) -> Option<&'a [u8]> {
        let b = self.byte()?;
        self.bin_after(b)
    }

    /// An integer in its shortest form.
    pub(crate) fn int_value(&mut self) -> Option<i64> {
        let mut shortest = Reader {
            data: self.data,
            pos: self.pos,
        };
        shortest.value(MAX_DEPTH)?; // the shortest-form checks (a scalar: no depth used)
        let b = self.byte()?;
        self.int_after(b)
    }

    /// The integer after the header byte `b`, in any of msgpack's forms (`value::decode` does
    /// not insist on the shortest), None for another type or beyond int64.
    pub(crate) fn int_after(&mut self, b: u8) -> Option<i64> {
        Some(match b {
            0x00..=0x7f => b as i64,
            0xe0..=0xff => b as i8 as i64,
            0xcc => self.byte()? as i64,
            0xcd => u16::from_be_bytes(self.be()?) as i64,
            0xce => u32::from_be_bytes(self.be()?) as i64,
            0xcf => i64::try_from(u64::from_be_bytes(self.be()?)).ok()?,
            0xd0 => i8::from_be_bytes(self.be()?) as i64,
            0xd1 => i16::from_be_bytes(self.be()?) as i64,
            0xd2 => i32::from_be_bytes(self.be()?) as i64,
            0xd3 => i64::from_be_bytes(self.be()?),
            _ => return None,
        })
    }

    /// The entry count of a map with the shortest header (its entries follow).
    pub(crate) fn map_len(&mut self) -> Option<usize> {
        let b = self.byte()?;
        self.map_len_after(b)
    }

    /// The element count of an array with the shortest header (its elements follow).
    pub(crate) fn array_len(&mut self) -> Option<usize> {
        let b = self.byte()?;
        self.array_len_after(b)
    }

    /// The keys of a map whose header has just been read: each a canonical `str`, strictly
    /// increasing by its UTF-8 bytes (`prev` carries the last one between calls).
    pub(crate) fn next_key(&mut self, prev: &mut Option<&'a str>) -> Option<&'a str> {
        let key = self.str_value()?;
        if prev.is_some_and(|p| key <= p) {
            return None;
        }
        *prev = Some(key);
        Some(key)
    }

    fn array(&mut self, n: usize, depth: usize) -> Option<()> {
        // no allocation by `n`: each element takes at least one byte, so a lying length runs
        // out of input after at most `data.len()` rounds
        for _ in 0..n {
            self.value(depth + 1)?;
        }
        Some(())
    }

    fn map(&mut self, n: usize, depth: usize) -> Option<()> {
        let mut prev = None;
        for _ in 0..n {
            self.next_key(&mut prev)?;
            self.value(depth + 1)?;
        }
        Some(())
    }
}

/// Appends msgpack in the shortest forms, as msgpack-python's `Packer(use_bin_type=True)`.
/// The caller walks the value (sorting map keys by their UTF-8 bytes) and bounds the depth.
#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            out: Vec::with_capacity(n),
        }
    }

    pub fn nil(&mut self) {
        self.out.push(0xc0);
    }

    pub fn bool(&mut self, v: bool) {
        self.out.push(if v { 0xc3 } else { 0xc2 });
    }

    pub fn int(&mut self, v: i64) {
        let o = &mut self.out;
        if v >= 0 {
            let u = v as u64;
            if u < 0x80 {
                o.push(u as u8);
            } else if u < 1 << 8 {
                o.extend_from_slice(&[0xcc, u as u8]);
            } else if u < 1 << 16 {
                o.push(0xcd);
                o.extend_from_slice(&(u as u16).to_be_bytes());
            } else if u < 1 << 32 {
                o.push(0xce);
                o.extend_from_slice(&(u as u32).to_be_bytes());
            } else {
                o.push(0xcf);
                o.extend_from_slice(&u.to_be_bytes());
            }
        } else if v >= -32 {
            o.push(v as i8 as u8);
        } else if v >= -(1 << 7) {
            o.extend_from_slice(&[0xd0, v as i8 as u8]);
        } else if v >= -(1 << 15) {
            o.push(0xd1);
            o.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= -(1 << 31) {
            o.push(0xd2);
            o.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            o.push(0xd3);
            o.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// A header with a fixed form for lengths below `fix_limit`, then an 8-bit (if `h8` is
    /// given), 16-bit and 32-bit length. `false` for a length beyond 32 bits.
    fn header(
        &mut self,
        n: usize,
        fix: u8,
        fix_limit: usize,
        h8: Option<u8>,
        h16: u8,
        h32: u8,
    ) -> bool {
        let o = &mut self.out;
        if n < fix_limit {
            o.push(fix | n as u8);
        } else if let (Some(h), true) = (h8, n < 1 << 8) {
            o.extend_from_slice(&[h, n as u8]);
        } else if n < 1 << 16 {
            o.push(h16);
            o.extend_from_slice(&(n as u16).to_be_bytes());
        } else if let Ok(n) = u32::try_from(n) {
            o.push(h32);
            o.extend_from_slice(&n.to_be_bytes());
        } else {
            return false;
        }
        true
    }

    /// A `str` of these UTF-8 bytes; `false` if longer than msgpack allows.
    pub fn str(&mut self, utf8: &[u8]) -> bool {
        let ok = self.header(utf8.len(), 0xa0, 32, Some(0xd9), 0xda, 0xdb);
        self.out.extend_from_slice(utf8);
        ok
    }

    /// A `bin`; `false` if longer than msgpack allows.
    pub fn bin(&mut self, data: &[u8]) -> bool {
        // bin has no fixed form: bin8 from length 0
        let ok = self.header(data.len(), 0, 0, Some(0xc4), 0xc5, 0xc6);
        self.out.extend_from_slice(data);
        ok
    }

    /// An array header for `n` elements; `false` if `n` does not fit in 32 bits.
    pub fn array(&mut self, n: usize) -> bool {
        self.header(n, 0x90, 16, None, 0xdc, 0xdd)
    }

    /// A map header for `n` entries; `false` if `n` does not fit in 32 bits.
    pub fn map(&mut self, n: usize) -> bool {
        self.header(n, 0x80, 16, None, 0xde, 0xdf)
    }
}

/// Sorts `items` by the bytes `key` gives, unless they are in that order already: the native
/// executor's write sets are, and checking is one linear pass.
pub fn sort_by_key_bytes<T>(items: &mut [T], key: impl Fn(&T) -> &[u8]) {
    if !items.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        items.sort_unstable_by(|a, b| key(a).cmp(key(b)));
    }
}

/// SHA-256 of the canonical encoding of a write set as `ledger._app.next_state_root` defines
/// it: the list of `[key, value]` pairs (`bin` key, `bin` value or nil) sorted by key. None if
/// that document would exceed `MAX_DOCUMENT_BYTES` (the Python encoder refuses it). Keys must
/// be distinct. The document is hashed as it is encoded, through a small buffer, instead of
/// being built whole (a block's is megabytes); pairs already in key order (the native
/// executor's) are not sorted again.
pub fn write_set_digest(pairs: &mut [(&[u8], Option<&[u8]>)]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    const CHUNK: usize = 64 * 1024;
    sort_by_key_bytes(pairs, |p| p.0);
    let mut hasher = Sha256::new();
    let mut w = Writer::with_capacity(CHUNK + 1024);
    let mut total = 0usize;
    // what is encoded so far goes into the hash; false once the document is too large
    let mut flush = |w: &mut Writer| {
        total += w.out.len();
        hasher.update(&w.out);
        w.out.clear();
        total <= MAX_DOCUMENT_BYTES
    };
    if !w.array(pairs.len()) {
        return None;
    }
    for (k, v) in pairs.iter() {
        w.array(2);
        if !w.bin(k) {
            return None;
        }
        match v {
            Some(v) => {
                if !w.bin(v) {
                    return None;
                }
            }
            None => w.nil(),
        }
        if w.out.len() >= CHUNK && !flush(&mut w) {
            return None;
        }
    }
    if !flush(&mut w) {
        return None;
    }
    Some(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of the profile, for tests: encode canonically, then mutate.
    #[derive(Clone, Debug)]
    enum V {
        Nil,
        Bool(bool),
        Int(i64),
        Str(String),
        Bin(Vec<u8>),
        Arr(Vec<V>),
        Map(Vec<(String, V)>),
    }

    fn enc(v: &V, w: &mut Writer) {
        match v {
            V::Nil => w.nil(),
            V::Bool(b) => w.bool(*b),
            V::Int(i) => w.int(*i),
            V::Str(s) => assert!(w.str(s.as_bytes())),
            V::Bin(b) => assert!(w.bin(b)),
            V::Arr(items) => {
                assert!(w.array(items.len()));
                items.iter().for_each(|i| enc(i, w));
            }
            V::Map(entries) => {
                let mut e: Vec<_> = entries.iter().collect();
                e.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                assert!(w.map(e.len()));
                for (k, v) in e {
                    assert!(w.str(k.as_bytes()));
                    enc(v, w);
                }
            }
        }
    }

    fn bytes_of(v: &V) -> Vec<u8> {
        let mut w = Writer::default();
        enc(v, &mut w);
        w.out
    }

    #[test]
    fn int_forms_are_msgpack_python_ones() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (255, &[0xcc, 0xff]),
            (256, &[0xcd, 0x01, 0x00]),
            (65535, &[0xcd, 0xff, 0xff]),
            (65536, &[0xce, 0, 1, 0, 0]),
            (u32::MAX as i64, &[0xce, 0xff, 0xff, 0xff, 0xff]),
            (1 << 32, &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            (
                i64::MAX,
                &[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-128, &[0xd0, 0x80]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (-32768, &[0xd1, 0x80, 0x00]),
            (-32769, &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
            (i32::MIN as i64, &[0xd2, 0x80, 0, 0, 0]),
            (
                i32::MIN as i64 - 1,
                &[0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff],
            ),
            (i64::MIN, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for (v, want) in cases {
            let got = bytes_of(&V::Int(*v));
            assert_eq!(&got, want, "{v}");
            assert!(check(&got), "{v}");
        }
    }

    #[test]
    fn length_headers_switch_at_the_msgpack_limits() {
        for (n, head) in [
            (0, vec![0xa0]),
            (31, vec![0xbf]),
            (32, vec![0xd9, 32]),
            (255, vec![0xd9, 255]),
            (256, vec![0xda, 1, 0]),
            (65536, vec![0xdb, 0, 1, 0, 0]),
        ] {
            let got = bytes_of(&V::Str("x".repeat(n)));
            assert_eq!(got[..head.len()], head[..], "str {n}");
            assert!(check(&got));
        }
        for (n, head) in [
            (0, vec![0xc4, 0]),
            (255, vec![0xc4, 255]),
            (256, vec![0xc5, 1, 0]),
            (65536, vec![0xc6, 0, 1, 0, 0]),
        ] {
            let got = bytes_of(&V::Bin(vec![7; n]));
            assert_eq!(got[..head.len()], head[..], "bin {n}");
            assert!(check(&got));
        }
        for (n, head) in [
            (0, vec![0x90]),
            (15, vec![0x9f]),
            (16, vec![0xdc, 0, 16]),
            (65536, vec![0xdd, 0, 1, 0, 0]),
        ] {
            let got = bytes_of(&V::Arr(vec![V::Nil; n]));
            assert_eq!(got[..head.len()], head[..], "array {n}");
            assert!(check(&got));
        }
        for (n, head) in [(0, vec![0x80]), (15, vec![0x8f]), (16, vec![0xde, 0, 16])] {
            let got = bytes_of(&V::Map(
                (0..n).map(|i| (format!("{i:03}"), V::Nil)).collect(),
            ));
            assert_eq!(got[..head.len()], head[..], "map {n}");
            assert!(check(&got));
        }
    }

    #[test]
    fn non_shortest_forms_are_refused() {
        let bad: &[&[u8]] = &[
            &[0xcc, 0x05],                   // 5 as uint8
            &[0xcd, 0x00, 0xff],             // 255 as uint16
            &[0xce, 0x00, 0x00, 0xff, 0xff], // 65535 as uint32
            &[0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            &[0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0], // 2**63: outside int64
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0xd0, 0x05],       // positive as int8
            &[0xd0, 0xe0],       // -32 as int8
            &[0xd1, 0xff, 0x80], // -128 as int16
            &[0xd2, 0xff, 0xff, 0x80, 0x00],
            &[0xd3, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0],
            &[0xd3, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0xd9, 0x01, b'a'], // short string as str8
            &[0xda, 0x00, 0x01, b'a'],
            &[0xdb, 0x00, 0x00, 0x00, 0x01, b'a'],
            &[0xc5, 0x00, 0x01, 0x00],
            &[0xc6, 0x00, 0x00, 0x00, 0x01, 0x00],
            &[0xdc, 0x00, 0x01, 0xc0], // small array as array16
            &[0xdd, 0x00, 0x00, 0x00, 0x00],
            &[0xde, 0x00, 0x00], // empty map as map16
            &[0xdf, 0x00, 0x00, 0x00, 0x00],
            &[0x81, 0xd9, 0x01, b'a', 0xc0], // key as str8
        ];
        for b in bad {
            assert!(!check(b), "{b:02x?}");
        }
    }

    #[test]
    fn floats_extensions_and_unused_bytes_are_refused() {
        let bad: &[&[u8]] = &[
            &[0xca, 0, 0, 0, 0],
            &[0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0xc1],
            &[0xd4, 0x01, 0x00],
            &[0xd6, 0xff, 0, 0, 0, 1], // timestamp 32
            &[0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0xc7, 0x00, 0x01],
            &[0xc8, 0x00, 0x00, 0x01],
            &[0xc9, 0x00, 0x00, 0x00, 0x00, 0x01],
            &[0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ];
        for b in bad {
            assert!(!check(b), "{b:02x?}");
        }
    }

    #[test]
    fn keys_must_be_strings_strictly_increasing_by_utf8_bytes() {
        assert!(check(b"\x82\xa1a\x01\xa1b\x02"));
        assert!(!check(b"\x82\xa1b\x01\xa1a\x02"));
        assert!(!check(b"\x82\xa1a\x01\xa1a\x02"));
        assert!(check(b"\x82\xa0\x01\xa1a\x02")); // "" sorts first
        assert!(check(b"\x82\xa1a\x01\xa2aa\x02")); // prefix first
        assert!(!check(b"\x82\xa2aa\x01\xa1a\x02"));
        // U+FFFF (ef bf bf) before U+10000 (f0 90 80 80): code-point order = UTF-8 byte order
        assert!(check(b"\x82\xa3\xef\xbf\xbf\x01\xa4\xf0\x90\x80\x80\x02"));
        assert!(!check(b"\x81\x01\x02")); // int key
        assert!(!check(b"\x81\xc4\x01a\x02")); // bin key
        assert!(!check(b"\x81\xc0\x02")); // nil key
    }

    #[test]
    fn strings_must_be_valid_utf8() {
        assert!(check(b"\xa2\xc3\xa9"));
        for bad in [
            &b"\xa1\xff"[..],
            b"\xa2\xc0\xaf",
            b"\xa3\xed\xa0\x80",
            b"\xa4\xf4\x90\x80\x80",
            b"\xa1\xc3",
            b"\x81\xa1\xff\x01",
        ] {
            assert!(!check(bad), "{bad:02x?}");
        }
        assert!(check(b"\xc4\x01\xff")); // bin holds any bytes
    }

    fn nest(levels: usize, leaf: V) -> V {
        (0..levels).fold(leaf, |v, i| {
            if i % 2 == 0 {
                V::Arr(vec![v])
            } else {
                V::Map(vec![("k".into(), v)])
            }
        })
    }

    #[test]
    fn depth_is_counted_as_ledger_codec_counts_it() {
        // a leaf under 32 containers sits at level 32: allowed; under 33: refused
        assert!(check(&bytes_of(&nest(MAX_DEPTH, V::Int(1)))));
        assert!(!check(&bytes_of(&nest(MAX_DEPTH + 1, V::Int(1)))));
        // an empty container at level 32 is allowed, one at level 33 is not
        assert!(check(&bytes_of(&nest(MAX_DEPTH, V::Arr(vec![])))));
        assert!(!check(&bytes_of(&nest(MAX_DEPTH + 1, V::Map(vec![])))));
        assert!(!check(&[0x91; 1000]));
    }

    #[test]
    fn truncation_and_trailing_bytes_are_refused() {
        let v = V::Map(vec![
            (
                "body".into(),
                V::Map(vec![(
                    "epc".into(),
                    V::Arr(vec![V::Str("urn:x".into()); 3]),
                )]),
            ),
            ("n".into(), V::Int(-70000)),
            ("sig".into(), V::Bin(vec![1; 64])),
            ("ok".into(), V::Bool(true)),
        ]);
        let good = bytes_of(&v);
        assert!(check(&good));
        for cut in 0..good.len() {
            assert!(!check(&good[..cut]), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0xc0);
        assert!(!check(&long));
        assert!(!check(&[]));
        assert!(!check(&[0xdb, 0xff, 0xff, 0xff, 0xff])); // lying length
        assert!(!check(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]));
        assert!(!check(&[0xdf, 0xff, 0xff, 0xff, 0xff]));
    }
}
