//! The layout of a canonical transaction (`ledger/_tx.py`): where its fields sit and its id,
//! read in one pass without building the map. `Transaction.decode` uses it when it answers
//! and takes its own path (which names any error) when it does not.
//!
//! A transaction's canonical map has exactly the keys `body`, `chain`, `kind`, `nonce`, `sig`,
//! `signer`, `v`, in that order (canonical maps sort their keys), so each field is at a fixed
//! place in the sequence; the id is the SHA-256 of the map without `sig`: the same bytes with
//! the map header one smaller and the 70-byte `sig` entry cut out.

use std::ops::Range;

use crate::codec::{self, Reader};

/// `ledger._tx.MAX_TX_BYTES`
pub const MAX_TX_BYTES: usize = 256 * 1024;
const MAX_KIND_CHARS: usize = 64;

pub struct TxFields {
    pub body: Range<usize>,
    pub chain: Range<usize>,
    pub kind: Range<usize>,
    pub nonce: i64,
    pub sig: Range<usize>,
    pub signer: Range<usize>,
    pub tx_id: crate::Hash,
}

impl Reader<'_> {
    /// Exactly these bytes next.
    fn expect(&mut self, bytes: &[u8]) -> Option<()> {
        (self.take(bytes.len())? == bytes).then_some(())
    }

    /// A `bin` field of `n` bytes after its `header` (key and bin header); where it sits.
    fn bin_field(&mut self, header: &[u8], n: usize) -> Option<Range<usize>> {
        self.expect(header)?;
        let start = self.pos;
        self.take(n)?;
        Some(start..self.pos)
    }
}

/// The fields of `raw` when it is a canonical transaction of version 1 (the integer) whose
/// fields have the types and sizes `Transaction.from_obj` requires; None otherwise.
pub fn tx_fields(raw: &[u8]) -> Option<TxFields> {
    if raw.len() > MAX_TX_BYTES || !codec::check(raw) {
        return None;
    }
    let mut c = Reader { data: raw, pos: 0 };
    c.expect(&[0x87])?;
    c.expect(b"\xa4body")?;
    if !matches!(raw.get(c.pos)?, 0x80..=0x8f | 0xde | 0xdf) {
        return None;
    }
    let body_start = c.pos;
    c.value(1)?;
    let body = body_start..c.pos;
    let chain = c.bin_field(b"\xa5chain\xc4\x20", 32)?;
    c.expect(b"\xa4kind")?;
    let kind_len = match c.byte()? {
        b @ 0xa0..=0xbf => (b & 0x1f) as usize,
        0xd9 => c.byte()? as usize,
        _ => return None, // str16 and beyond hold more than 64 characters
    };
    let kind = c.pos..c.pos.checked_add(kind_len)?;
    let text = std::str::from_utf8(c.take(kind_len)?).ok()?;
    if !(1..=MAX_KIND_CHARS).contains(&text.chars().count()) {
        return None;
    }
    c.expect(b"\xa5nonce")?;
    let nonce = match c.byte()? {
        b @ 0x00..=0x7f => b as i64,
        b @ 0xcc..=0xcf => {
            let bytes = c.take(1usize << (b - 0xcc))?;
            let v = bytes.iter().fold(0u64, |v, &x| (v << 8) | x as u64);
            i64::try_from(v).ok()?
        }
        _ => return None, // negative
    };
    let sig_entry = c.pos;
    let sig = c.bin_field(b"\xa3sig\xc4\x40", 64)?;
    let signer = c.bin_field(b"\xa6signer\xc4\x20", 32)?;
    c.expect(b"\xa1v\x01")?;
    if c.pos != raw.len() {
        return None;
    }
    let mut unsigned = Vec::with_capacity(raw.len() - 70);
    unsigned.push(0x86);
    unsigned.extend_from_slice(&raw[1..sig_entry]);
    unsigned.extend_from_slice(&raw[sig_entry + 70..]);
    Some(TxFields {
        body,
        chain,
        kind,
        nonce,
        sig,
        signer,
        tx_id: crate::sha256(&unsigned),
    })
}
