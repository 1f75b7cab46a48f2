//! Values of the canonical msgpack profile as plain Rust data: what the native state machine
//! (`events`) reads from the state and from transactions, changes, and writes back.
//!
//! `decode` takes any msgpack of the profile's types (it does not insist on the shortest forms:
//! state records are this node's own output, transactions were checked at admission);
//! `encode` writes the canonical form, byte for byte what `ledger._codec.encode` writes for the
//! equal Python value. Maps are ordered by their keys' UTF-8 bytes, which is `String`'s order,
//! so a `BTreeMap` encodes in canonical order as it stands.

use std::collections::BTreeMap;

use crate::codec::{Reader, Writer, MAX_DEPTH};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A value already in its canonical encoding (these bytes, checked or written as such),
    /// written out as it stands: a record built straight into bytes, or a part of a
    /// transaction copied into a record without being taken apart and put together again.
    Raw(Vec<u8>),
}

impl Value {
    /// Python's truth value of the equal Python object.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Str(s) => !s.is_empty(),
            Value::Bin(b) => !b.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Raw(b) => decode(b).is_some_and(|v| v.truthy()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

/// The value `data` holds, or None: not msgpack, a float, an extension type, a map key that is
/// not a string, a repeated key, an integer beyond int64, nesting beyond `MAX_DEPTH`, or bytes
/// after the value.
pub fn decode(data: &[u8]) -> Option<Value> {
    let mut r = Reader { data, pos: 0 };
    let v = r.decoded(0)?;
    (r.pos == data.len()).then_some(v)
}

/// The canonical encoding of `v` (None if it nests deeper than `MAX_DEPTH`), built in `w`
/// (cleared first) and copied out: encoding many values through one writer grows its buffer
/// once, instead of each value's buffer growing (and being copied) several times.
pub fn encode_with(v: &Value, w: &mut Writer) -> Option<Vec<u8>> {
    w.out.clear();
    write(v, 0, w).then(|| w.out.as_slice().to_vec())
}

fn write(v: &Value, depth: usize, w: &mut Writer) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match v {
        Value::Nil => w.nil(),
        Value::Bool(b) => w.bool(*b),
        Value::Int(i) => w.int(*i),
        Value::Str(s) => return w.str(s.as_bytes()),
        Value::Bin(b) => return w.bin(b),
        Value::Array(a) => {
            return w.array(a.len()) && a.iter().all(|x| write(x, depth + 1, w));
        }
        Value::Map(m) => {
            return w.map(m.len())
                && m.iter()
                    .all(|(k, x)| w.str(k.as_bytes()) && write(x, depth + 1, w));
        }
        Value::Raw(b) => w.out.extend_from_slice(b),
    }
    true
}

impl Reader<'_> {
    fn decoded_text(&mut self, n: usize) -> Option<String> {
        let s = self.take(n)?;
        std::str::from_utf8(s).ok().map(str::to_owned)
    }

    fn decoded(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let b = self.byte()?;
        Some(match b {
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => Value::Int(self.int_after(b)?),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0x80..=0x8f => return self.decoded_map((b & 0x0f) as usize, depth),
            0x90..=0x9f => return self.decoded_array((b & 0x0f) as usize, depth),
            0xa0..=0xbf => Value::Str(self.decoded_text((b & 0x1f) as usize)?),
            0xd9 => {
                let n = self.byte()? as usize;
                Value::Str(self.decoded_text(n)?)
            }
            0xda => {
                let n = self.u16()?;
                Value::Str(self.decoded_text(n)?)
            }
            0xdb => {
                let n = self.u32()?;
                Value::Str(self.decoded_text(n)?)
            }
            0xc4 => {
                let n = self.byte()? as usize;
                Value::Bin(self.take(n)?.to_vec())
            }
            0xc5 => {
                let n = self.u16()?;
                Value::Bin(self.take(n)?.to_vec())
            }
            0xc6 => {
                let n = self.u32()?;
                Value::Bin(self.take(n)?.to_vec())
            }
            0xdc => {
                let n = self.u16()?;
                return self.decoded_array(n, depth);
            }
            0xdd => {
                let n = self.u32()?;
                return self.decoded_array(n, depth);
            }
            0xde => {
                let n = self.u16()?;
                return self.decoded_map(n, depth);
            }
            0xdf => {
                let n = self.u32()?;
                return self.decoded_map(n, depth);
            }
            _ => return None, // 0xc1, floats, extension types
        })
    }

    fn decoded_array(&mut self, n: usize, depth: usize) -> Option<Value> {
        // capacity bounded by the input: each element takes at least one byte
        let mut out = Vec::with_capacity(n.min(self.data.len() - self.pos));
        for _ in 0..n {
            out.push(self.decoded(depth + 1)?);
        }
        Some(Value::Array(out))
    }

    fn decoded_map(&mut self, n: usize, depth: usize) -> Option<Value> {
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let Value::Str(k) = self.decoded(depth + 1)? else {
                return None;
            };
            let v = self.decoded(depth + 1)?;
            if out.insert(k, v).is_some() {
                return None;
            }
        }
        Some(Value::Map(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn round_trips_in_canonical_form() {
        let v = map(&[
            ("zeta", Value::Int(-33)),
            (
                "a",
                Value::Array(vec![Value::Int(300), Value::Nil, Value::Bool(true)]),
            ),
            ("bin", Value::Bin(vec![1, 2, 3])),
            ("s", Value::str("héllo")),
            ("big", Value::Int(i64::MAX)),
            ("neg", Value::Int(i64::MIN)),
        ]);
        let bytes = encode_with(&v, &mut Writer::with_capacity(16)).unwrap();
        assert!(
            crate::codec::check(&bytes),
            "encode must give canonical bytes"
        );
        assert_eq!(decode(&bytes), Some(v));
    }

    #[test]
    fn refuses_what_the_profile_refuses() {
        assert_eq!(decode(&[0xca, 0, 0, 0, 0]), None); // float
        assert_eq!(decode(&[0xd4, 1, 0]), None); // extension
        assert_eq!(decode(&[0x81, 0x01, 0x01]), None); // int key
        assert_eq!(decode(&[0x82, 0xa1, b'a', 1, 0xa1, b'a', 2]), None); // repeated key
        assert_eq!(decode(&[0x01, 0x02]), None); // trailing byte
        assert_eq!(decode(&[0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0]), None); // beyond int64
        assert_eq!(decode(&[0x92, 0x01]), None); // short array
    }

    #[test]
    fn truthiness_follows_python() {
        assert!(!Value::Int(0).truthy());
        assert!(!Value::str("").truthy());
        assert!(!Value::Array(vec![]).truthy());
        assert!(Value::Array(vec![Value::Nil]).truthy());
        assert!(!Value::Nil.truthy());
        assert!(Value::Bool(true).truthy());
    }
}
