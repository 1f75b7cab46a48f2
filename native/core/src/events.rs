//! The provenance state machine's hot path, natively: blocks of plain EPCIS ObjectEvents.
//!
//! `ledger/provenance/_app.py` is the reference and stays the only judge of a transaction. This
//! module executes a block only when it can prove the reference would accept every transaction
//! of it, and then returns exactly the write set the reference computes; for anything else (a
//! transaction the reference would reject, a kind or a field or an identifier form not handled
//! here, a record of an unexpected shape) it *declines* and the caller runs the reference on the
//! whole block. Declining is always safe; accepting is the only thing that must be right. So
//! every rule below is the reference's accept condition, or a stricter one.
//!
//! Handled: kind `ObjectEvent`, the envelope (chain, active agent of an active organisation
//! whose roles grant `event.write`, next nonce), body fields `type`, `eventID`, `eventTime`,
//! `eventTimeZoneOffset`, `action`, `bizStep`, `disposition`, `epcList`, `bizLocation`,
//! `readPoint`; identifiers that are SGTIN EPC URNs or private URIs; the genealogy indexes on.
//! The reference's record layout is described in `_app.py` and `_keys.py`.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use ahash::AHashMap;

use crate::codec::{self, Writer};
use crate::value::{self, Value};

/// Why execution stopped: the block is declined, or the state reader failed (passed through).
pub enum Stop<E> {
    Decline,
    Read(E),
}

type Res<T, E> = Result<T, Stop<E>>;
/// The state before the block: the value at a key, or None.
pub type Reader<'a, E> = dyn FnMut(&[u8]) -> Result<Option<Vec<u8>>, E> + 'a;
/// A write set: keys and their encoded values.
pub type Writes = Vec<(Vec<u8>, Vec<u8>)>;

/// What the reference takes from `_vocab.py` and `_app.py`, handed over by the caller so there
/// is one source of truth.
pub struct Rules {
    pub biz_steps: HashSet<String>,
    pub dispositions: HashSet<String>,
    pub cbv_prefixes: Vec<String>,
    /// roles whose permissions include `event.write`
    pub write_roles: HashSet<String>,
    /// events kept inside an object's record before they spill to `xe/` keys (`CAP_EVENTS`)
    pub cap_events: usize,
    /// write the genealogy and lookup indexes (`ProvenanceApp(index=...)`)
    pub index: bool,
}

pub struct BlockInfo<'a> {
    pub chain: &'a [u8],
    pub height: i64,
    pub time_ms: i64,
}

/// Longest identifier (`_rules.MAX_ID_LEN`) and list (`_rules.MAX_IDS`).
const MAX_ID_LEN: usize = 512;
const MAX_IDS: usize = 10_000;
/// Application identifiers whose keys `_ids.company_digits` reads a company prefix from.
const GS1_AIS: [&str; 10] = [
    "01", "00", "8003", "414", "417", "8004", "253", "8010", "8017", "8018",
];

/// A key's value in the block's view: None for absent; `dirty` once this block wrote it.
struct Slot {
    value: Option<Rc<Value>>,
    dirty: bool,
}

/// The block's view of the state: base reads decoded once, then this block's writes on top.
/// Values are shared (`Rc`): records are read far more often than written.
struct State<'a, E> {
    read: &'a mut Reader<'a, E>,
    slots: AHashMap<Vec<u8>, Slot>,
    /// the buffer records are encoded in (`put`)
    writer: Writer,
}

impl<E> State<'_, E> {
    /// The value at `key` (None: absent, or a stored nil, which the reference cannot tell apart).
    fn get(&mut self, key: &[u8]) -> Res<Option<Rc<Value>>, E> {
        if let Some(slot) = self.slots.get_mut(key) {
            if let Some(Value::Raw(raw)) = slot.value.as_deref() {
                // a record this block wrote as bytes, read again: take it apart once
                let v = value::decode(raw).ok_or(Stop::Decline)?;
                slot.value = Some(Rc::new(v));
            }
            return Ok(slot.value.clone());
        }
        let raw = (self.read)(key).map_err(Stop::Read)?;
        let value = match raw {
            None => None,
            Some(raw) => match value::decode(&raw).ok_or(Stop::Decline)? {
                Value::Nil => None,
                v => Some(Rc::new(v)),
            },
        };
        self.slots.insert(
            key.to_vec(),
            Slot {
                value: value.clone(),
                dirty: false,
            },
        );
        Ok(value)
    }

    fn put(&mut self, key: Vec<u8>, v: Value) -> Res<(), E> {
        // a record is encoded now, while its parts are in the cache: encoded at the end of the
        // block, walking thousands of records scattered over the heap, encoding was a third
        // of the executor's time (cache misses); a later read in the same block (rare)
        // decodes it again
        let v = match v {
            Value::Map(_) | Value::Array(_) => {
                Value::Raw(value::encode_with(&v, &mut self.writer).ok_or(Stop::Decline)?)
            }
            v => v,
        };
        self.slots.insert(
            key,
            Slot {
                value: Some(Rc::new(v)),
                dirty: true,
            },
        );
        Ok(())
    }

    /// The written keys and their encoded values, in key order (the store puts a batch in
    /// key order, and sorting what is already sorted costs it next to nothing).
    fn into_writes(self) -> Option<Writes> {
        let State {
            slots, mut writer, ..
        } = self;
        let w = &mut writer;
        let mut out = Vec::with_capacity(slots.len());
        for (k, slot) in slots {
            if !slot.dirty {
                continue;
            }
            let v = match slot.value.map(Rc::try_unwrap)? {
                Ok(Value::Raw(bytes)) => bytes, // already the encoding: no copy
                Ok(v) => value::encode_with(&v, w)?,
                Err(shared) => value::encode_with(&shared, w)?,
            };
            out.push((k, v));
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
}

/// One transaction's fields, read in place from its canonical bytes.
struct Tx<'a> {
    chain: &'a [u8],
    kind: &'a str,
    body: Body<'a>,
    /// the body's canonical encoding, as it stands in the transaction
    body_raw: &'a [u8],
    signer: &'a [u8],
    nonce: i64,
}

/// The body fields this executor handles, read in place; each is None when absent.
/// A field of an unexpected type, or any other field, has already declined.
#[derive(Default)]
struct Body<'a> {
    typ: Option<&'a str>,
    event_id: Option<&'a str>,
    event_time: Option<&'a str>,
    tz: Option<&'a str>,
    action: Option<&'a str>,
    biz_step: Option<&'a str>,
    disposition: Option<&'a str>,
    epcs: Option<Vec<&'a str>>,
    /// the `id` of `bizLocation` and of `readPoint` (a location map without a string `id`
    /// declines, as `_rules._loc` rejects it)
    biz_location: Option<&'a str>,
    read_point: Option<&'a str>,
}

/// The transaction map (`Transaction.encode`): exactly its seven fields, each of its type,
/// in canonical form; the body is read field by field as it goes (`read_body`), so that every
/// byte of `body_raw` has been checked to be canonical before a record copies it.
fn parse_tx(raw: &[u8]) -> Option<Tx<'_>> {
    let mut r = codec::Reader { data: raw, pos: 0 };
    if r.map_len()? != 7 {
        return None;
    }
    let mut prev = None;
    let (mut chain, mut kind, mut body, mut signer, mut nonce) = (None, None, None, None, None);
    let mut version_ok = false;
    for _ in 0..7 {
        match r.next_key(&mut prev)? {
            "body" => {
                let start = r.pos;
                let b = read_body(&mut r)?;
                body = Some((b, &raw[start..r.pos]));
            }
            "chain" => chain = Some(r.bin_value()?),
            "kind" => kind = Some(r.str_value()?),
            "nonce" => nonce = Some(r.int_value()?),
            "sig" => r.value(1)?,
            "signer" => signer = Some(r.bin_value()?),
            "v" => version_ok = r.int_value()? == 1,
            _ => return None,
        }
    }
    let ((body, body_raw), nonce) = (body?, nonce?);
    (version_ok && r.pos == raw.len() && nonce >= 0).then_some(Tx {
        chain: chain?,
        kind: kind?,
        body,
        body_raw,
        signer: signer?,
        nonce,
    })
}

/// An ObjectEvent body (depth 1 in the transaction): the handled fields, each of the type
/// `check_object_event` needs; None (decline) for any other field or type.
fn read_body<'a>(r: &mut codec::Reader<'a>) -> Option<Body<'a>> {
    let n = r.map_len()?;
    let mut b = Body::default();
    let mut prev = None;
    for _ in 0..n {
        match r.next_key(&mut prev)? {
            "type" => b.typ = Some(r.str_value()?),
            "eventID" => b.event_id = Some(r.str_value()?),
            "eventTime" => b.event_time = Some(r.str_value()?),
            "eventTimeZoneOffset" => b.tz = Some(r.str_value()?),
            "action" => b.action = Some(r.str_value()?),
            "bizStep" => b.biz_step = Some(r.str_value()?),
            "disposition" => b.disposition = Some(r.str_value()?),
            "epcList" => {
                let count = r.array_len()?;
                // capacity bounded by the input (each element takes a byte at least); the
                // list's length rule is `check_object_event`'s
                let mut epcs = Vec::with_capacity(count.min(r.data.len() - r.pos));
                for _ in 0..count {
                    epcs.push(r.str_value()?);
                }
                b.epcs = Some(epcs);
            }
            "bizLocation" => b.biz_location = Some(read_location(r)?),
            "readPoint" => b.read_point = Some(read_location(r)?),
            _ => return None,
        }
    }
    Some(b)
}

/// A location map (depth 2): its string `id`; the other entries are free but must be
/// canonical (they are copied into the event record).
fn read_location<'a>(r: &mut codec::Reader<'a>) -> Option<&'a str> {
    let n = r.map_len()?;
    let mut prev = None;
    let mut id = None;
    for _ in 0..n {
        if r.next_key(&mut prev)? == "id" {
            id = Some(r.str_value()?);
        } else {
            r.value(3)?;
        }
    }
    id
}

/// The write set of a block of transactions (canonical bytes, as `Transaction.encode` gives
/// them, with their ids), or `Stop::Decline`. `read(key)` is the state before the block.
pub fn execute<E>(
    rules: &Rules,
    block: &BlockInfo<'_>,
    txs: &[(&[u8], &[u8])],
    read: &mut Reader<'_, E>,
) -> Res<Writes, E> {
    let mut st = State {
        read,
        // an ObjectEvent touches about six keys: no rehashing (and moving) mid-block
        slots: AHashMap::with_capacity(txs.len() * 8),
        writer: Writer::with_capacity(4096),
    };
    for &(raw, tx_id) in txs {
        let tx = parse_tx(raw).ok_or(Stop::Decline)?;
        apply(rules, block, &mut st, tx, tx_id)?;
    }
    st.into_writes().ok_or(Stop::Decline)
}

fn decline<T, E>() -> Res<T, E> {
    Err(Stop::Decline)
}

fn ensure<E>(cond: bool) -> Res<(), E> {
    if cond {
        Ok(())
    } else {
        Err(Stop::Decline)
    }
}

fn key(prefix: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + tail.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(tail);
    k
}

fn seq_key(prefix: &[u8], n: i64) -> Vec<u8> {
    key(prefix, &(n as u64).to_be_bytes())
}

/// `ProvenanceApp._apply` (the envelope) and `_event` for an ObjectEvent.
fn apply<E>(
    rules: &Rules,
    block: &BlockInfo<'_>,
    st: &mut State<'_, E>,
    tx: Tx,
    tx_id: &[u8],
) -> Res<(), E> {
    ensure(tx.chain == block.chain)?;
    let agent = st.get(&key(b"agent/", tx.signer))?.ok_or(Stop::Decline)?;
    let agent = agent.as_map().ok_or(Stop::Decline)?;
    ensure(agent.get("active").ok_or(Stop::Decline)?.truthy())?;
    let org_name = agent
        .get("org")
        .and_then(Value::as_str)
        .ok_or(Stop::Decline)?
        .to_owned();
    let org = st
        .get(&key(b"org/", org_name.as_bytes()))?
        .ok_or(Stop::Decline)?;
    let org = org.as_map().ok_or(Stop::Decline)?;
    ensure(org.get("active").ok_or(Stop::Decline)?.truthy())?;
    let expected = match st.get(&key(b"nonce/", tx.signer))?.as_deref() {
        None => 0,
        Some(Value::Int(last)) => last.checked_add(1).ok_or(Stop::Decline)?,
        Some(_) => return decline(),
    };
    ensure(tx.nonce == expected)?;
    ensure(tx.kind == "ObjectEvent")?;
    let Some(Value::Array(roles)) = org.get("roles") else {
        return decline();
    };
    let mut may_write = false;
    for r in roles {
        let r = r.as_str().ok_or(Stop::Decline)?;
        may_write |= rules.write_roles.contains(r);
    }
    ensure(may_write)?;
    st.put(key(b"nonce/", tx.signer), Value::Int(tx.nonce))?;
    object_event(rules, block, st, tx, tx_id, &org_name)?;
    Ok(())
}

/// What `_rules.check_event` returns for the fields handled here.
struct View<'b> {
    event_id: &'b str,
    action: &'b str,
    epcs: &'b [&'b str],
    time_ms: i64,
    biz_step: Option<&'b str>,
    disposition: Option<&'b str>,
    biz_location: Option<&'b str>,
}

/// `_rules._id`: a string of 1 to `MAX_ID_LEN` characters holding a colon.
fn is_id(s: &str) -> bool {
    s.contains(':') && !s.is_empty() && s.chars().count() <= MAX_ID_LEN
}

/// `_vocab.vocab_ok` for a string.
fn vocab_ok(s: &str, words: &HashSet<String>, cbv_prefixes: &[String]) -> bool {
    !s.is_empty()
        && (words.contains(s)
            || (s.contains(':') && !cbv_prefixes.iter().any(|p| s.starts_with(p.as_str()))))
}

/// An optional vocabulary field: absent, or a string `vocab_ok` accepts (another type, an
/// explicit nil included, has declined in `read_body`).
fn vocab_field<'b, E>(
    value: Option<&'b str>,
    words: &HashSet<String>,
    rules: &Rules,
) -> Res<Option<&'b str>, E> {
    match value {
        None => Ok(None),
        Some(s) if vocab_ok(s, words, &rules.cbv_prefixes) => Ok(Some(s)),
        Some(_) => decline(),
    }
}

/// `_rules._loc`: absent, or a map whose `id` is an identifier (other entries are free; a
/// map without a string `id` has declined in `read_body`).
fn location<E>(id: Option<&str>) -> Res<Option<&str>, E> {
    match id {
        None => Ok(None),
        Some(s) if is_id(s) => Ok(Some(s)),
        Some(_) => decline(),
    }
}

/// `_rules.check_event` for an ObjectEvent made only of the handled fields (`read_body` has
/// declined any other field and any value of another type).
fn check_object_event<'b, E>(rules: &Rules, body: &'b Body<'b>) -> Res<View<'b>, E> {
    if let Some(t) = body.typ {
        ensure(t == "ObjectEvent")?;
    }
    let event_id = match body.event_id {
        Some(s) if is_id(s) => s,
        _ => return decline(),
    };
    let time_ms = parse_time_ms(body.event_time.ok_or(Stop::Decline)?).ok_or(Stop::Decline)?;
    ensure(body.tz.is_some_and(tz_ok))?;
    let action = match body.action {
        Some(s @ ("ADD" | "OBSERVE" | "DELETE")) => s,
        _ => return decline(),
    };
    let biz_step = vocab_field(body.biz_step, &rules.biz_steps, rules)?;
    let disposition = vocab_field(body.disposition, &rules.dispositions, rules)?;
    let biz_location = location(body.biz_location)?;
    location(body.read_point)?;
    let epcs = body.epcs.as_deref().ok_or(Stop::Decline)?;
    ensure(epcs.len() <= MAX_IDS && epcs.iter().all(|e| is_id(e)))?;
    let mut distinct = HashSet::with_capacity(epcs.len());
    ensure(epcs.iter().all(|e| distinct.insert(*e)))?;
    Ok(View {
        event_id,
        action,
        epcs,
        time_ms,
        biz_step,
        disposition,
        biz_location,
    })
}

/// `_rules.TZ_RE`: `[+-]hh:mm` from -14:00 to +14:00.
fn tz_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return false;
    }
    let digits = [b[1], b[2], b[4], b[5]];
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let h = (b[1] - b'0') * 10 + (b[2] - b'0');
    let m = (b[4] - b'0') * 10 + (b[5] - b'0');
    (h <= 13 && m <= 59) || (h == 14 && m == 0)
}

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `_rules.parse_time_ms` for `YYYY-MM-DDThh:mm:ss[.fff|.ffffff](Z|±hh:mm)`, the forms
/// `datetime.fromisoformat` reads the same way on every Python this project supports; the
/// milliseconds come out as `int(dt.timestamp() * 1000)` does: microseconds since the epoch
/// divided by 10^6 in binary floating point (exact input, one rounding), times 1000 (one
/// rounding), truncated.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 64 {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (h, mi, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    // years whose microseconds since the epoch are below 2^53, so that converting them to a
    // float is exact and the one rounding is the division's, as in Python's int / int
    if !(1900..=2200).contains(&y) || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if rest.first() == Some(&b'.') {
        let frac = rest.get(1..).unwrap_or(&[]);
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        micros = match n {
            3 => num(&frac[..3])? * 1000,
            6 => num(&frac[..6])?,
            _ => return None,
        };
        rest = &frac[n..];
    }
    let offset_s = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = num(&[*h1, *h2])?;
            let om = num(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    let total_us = secs * 1_000_000 + micros;
    let ts = total_us as f64 / 1e6;
    Some((ts * 1000.0) as i64)
}

/// `_ids.id_key` for the identifiers handled: an SGTIN EPC URN becomes its Digital Link path
/// `01/<GTIN>/21/<serial>`; a private URI (neither `urn:epc:` nor `http(s)://`) is its own key,
/// unless it reads like a converted key (`01/...`, which `is_class_key` would look into).
fn id_key(uri: &str) -> Option<String> {
    if uri.starts_with("urn:epc:") {
        return sgtin_key(uri);
    }
    if uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("01/") {
        return None;
    }
    Some(uri.to_owned())
}

fn sgtin_key(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("urn:epc:id:sgtin:")?;
    if rest.contains(':') {
        return None;
    }
    let mut fields = rest.split('.');
    let (cp, iir, serial) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || iir.is_empty() || serial.contains('%') {
        return None;
    }
    let digits = cp.len() + iir.len();
    if digits != 13 || !cp.bytes().chain(iir.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut body = String::with_capacity(14);
    body.push_str(&iir[..1]);
    body.push_str(cp);
    body.push_str(&iir[1..]);
    let check = check_digit(body.as_bytes());
    Some(format!("01/{body}{check}/21/{serial}"))
}

/// `_ids.gs1_check_digit`: mod 10, weights 3, 1, 3, ... from the right.
fn check_digit(digits: &[u8]) -> u32 {
    let s: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| (d - b'0') as u32 * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - s % 10) % 10
}

/// `_ids.company_digits` of a handled key: the digits after the indicator of an SGTIN key;
/// None for a private URI; a private URI that reads like another GS1 key declines.
fn company_digits<E>(key: &str) -> Res<Option<&str>, E> {
    if let Some(rest) = key.strip_prefix("01/") {
        let gtin = rest.split('/').next().unwrap_or("");
        return Ok(gtin.get(1..));
    }
    let ai = key.split('/').next().unwrap_or(key);
    if key.contains('/') && GS1_AIS.contains(&ai) {
        return decline();
    }
    Ok(None)
}

/// `ProvenanceApp._check_prefix`: a new identifier under a GS1 company prefix claimed by
/// another organisation declines (the reference rejects it).
fn check_prefix<E>(st: &mut State<'_, E>, key: &str, org: &str) -> Res<(), E> {
    let Some(claims) = st.get(b"meta/prefixes")? else {
        return Ok(());
    };
    if !claims.truthy() {
        return Ok(());
    }
    let claims = claims.as_map().ok_or(Stop::Decline)?;
    let Some(d) = company_digits(key)? else {
        return Ok(());
    };
    ensure(d.is_ascii())?;
    let mut lengths: Vec<usize> = claims
        .keys()
        .map(|p| p.chars().count())
        .filter(|n| (4..=12).contains(n))
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    for n in lengths {
        if n > d.len() {
            break;
        }
        match claims.get(&d[..n]) {
            None | Some(Value::Nil) => {}
            Some(owner) => ensure(owner.as_str() == Some(org))?,
        }
    }
    Ok(())
}

fn field<'m, E>(m: &'m BTreeMap<String, Value>, name: &str) -> Res<&'m Value, E> {
    m.get(name).ok_or(Stop::Decline)
}

/// `_app._possesses`.
fn possesses<E>(rec: &BTreeMap<String, Value>, org: &str) -> Res<bool, E> {
    if field(rec, "c")?.truthy() {
        return match rec.get("hold") {
            None => Ok(false),
            Some(Value::Array(h)) => Ok(h.iter().any(|x| x.as_str() == Some(org))),
            Some(_) => decline(),
        };
    }
    Ok(field(rec, "cus")?.as_str() == Some(org) || field(rec, "own")?.as_str() == Some(org))
}

/// `ProvenanceApp._event` with `_object_event` and `_Touched` (`use`, `finish`).
fn object_event<E>(
    rules: &Rules,
    block: &BlockInfo<'_>,
    st: &mut State<'_, E>,
    tx: Tx,
    tx_id: &[u8],
    org: &str,
) -> Res<(), E> {
    let v = check_object_event(rules, &tx.body)?;
    let eid = v.event_id;
    let ekey = key(b"ev/", eid.as_bytes());
    ensure(st.get(&ekey)?.is_none())?;
    let n = match st.get(b"meta/seq")?.as_deref() {
        None => 0,
        Some(&Value::Int(n)) if n >= 0 => n,
        Some(_) => return decline(),
    };
    st.put(b"meta/seq".to_vec(), Value::Int(n + 1))?;
    st.put(seq_key(b"es/", n), Value::str(eid))?;

    // _Touched.use for each EPC, in order; a repeated key (two spellings of one object) is
    // the record already loaded
    let add = v.action == "ADD";
    let mut objs: Vec<(String, BTreeMap<String, Value>)> = Vec::new();
    for &uri in v.epcs {
        let k = id_key(uri).ok_or(Stop::Decline)?;
        let at = match objs.iter().position(|(x, _)| *x == k) {
            Some(i) => i,
            None => {
                let o = match st.get(&key(b"obj/", k.as_bytes()))? {
                    None => {
                        check_prefix(st, &k, org)?;
                        // an SGTIN key has a serial and a private URI is no class key, and
                        // the field is epcList: never class-level (`is_class_key`)
                        let mut o = BTreeMap::new();
                        o.insert("id".to_owned(), Value::str(uri));
                        o.insert("c".to_owned(), Value::Bool(false));
                        o.insert("s".to_owned(), Value::str("active"));
                        o.insert("by".to_owned(), Value::str(org));
                        o.insert("own".to_owned(), Value::str(org));
                        o.insert("cus".to_owned(), Value::str(org));
                        o.insert("ev".to_owned(), Value::str(eid));
                        o.insert("t".to_owned(), Value::Int(v.time_ms));
                        o
                    }
                    Some(rec) => {
                        let Value::Map(rec) = Rc::unwrap_or_clone(rec) else {
                            return decline();
                        };
                        ensure(field(&rec, "s")?.as_str() == Some("active"))?;
                        ensure(!add || field(&rec, "c")?.truthy())?;
                        ensure(possesses(&rec, org)?)?;
                        rec
                    }
                };
                objs.push((k, o));
                objs.len() - 1
            }
        };
        if v.action == "DELETE" {
            objs[at]
                .1
                .insert("s".to_owned(), Value::str("decommissioned"));
        }
    }

    // _Touched.finish
    let destroyed = v.biz_step == Some("destroying") || v.disposition == Some("destroyed");
    for (k, mut o) in objs {
        if let Some(loc) = v.biz_location {
            o.insert("loc".to_owned(), Value::str(loc));
        }
        if let Some(d) = v.disposition {
            o.insert("disp".to_owned(), Value::str(d));
        }
        if destroyed && !field(&o, "c")?.truthy() {
            o.insert("s".to_owned(), Value::str("destroyed"));
        }
        o.insert("lev".to_owned(), Value::str(eid));
        if rules.index {
            let entry = Value::Array(vec![Value::Int(n), Value::str(eid)]);
            match o.get_mut("x") {
                None if rules.cap_events > 0 => {
                    o.insert("x".to_owned(), Value::Array(vec![entry]));
                }
                Some(Value::Array(x)) if x.len() < rules.cap_events => x.push(entry),
                None | Some(Value::Array(_)) => {
                    o.insert("xs".to_owned(), Value::Bool(true));
                    let mut xe = key(b"xe/", k.as_bytes());
                    xe.push(0);
                    st.put(seq_key(&xe, n), Value::str(eid))?;
                }
                Some(_) => return decline(),
            }
        }
        st.put(key(b"obj/", k.as_bytes()), Value::Map(o))?;
    }

    // the event itself, last: written straight into its encoding, the body copied from the
    // transaction's bytes (canonical, as `read_body` checked), keys in canonical order
    let mut w = Writer::with_capacity(tx.body_raw.len() + 128);
    w.map(8);
    w.str(b"b");
    w.out.extend_from_slice(tx.body_raw);
    w.str(b"h");
    w.int(block.height);
    w.str(b"k");
    ensure(w.str(tx.kind.as_bytes()))?;
    w.str(b"org");
    ensure(w.str(org.as_bytes()))?;
    w.str(b"seq");
    w.int(n);
    w.str(b"t");
    w.int(block.time_ms);
    w.str(b"tm");
    w.int(v.time_ms);
    w.str(b"tx");
    ensure(w.bin(tx_id))?;
    st.put(ekey, Value::Raw(w.out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_python_reads_them() {
        // values from Python 3.11: int(datetime.fromisoformat(s.replace("Z", "+00:00"))
        // .timestamp() * 1000)
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time_ms("2025-03-01T10:00:00.000Z"),
            Some(1_740_823_200_000)
        );
        assert_eq!(
            parse_time_ms("2025-03-01T10:00:00.000+02:00"),
            Some(1_740_816_000_000)
        );
        assert_eq!(
            parse_time_ms("2024-02-29T23:59:59.999-05:30"),
            Some(1_709_270_999_999)
        );
        assert_eq!(parse_time_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(
            parse_time_ms("2025-03-01T10:00:00.123456+14:00"),
            Some(1_740_772_800_123)
        );
        assert_eq!(parse_time_ms("2025-02-29T10:00:00Z"), None);
        assert_eq!(parse_time_ms("2025-03-01T10:00:00"), None);
        assert_eq!(parse_time_ms("2025-03-01T10:00:00.5Z"), None);
        assert_eq!(parse_time_ms("2025-03-01T24:00:00Z"), None);
    }

    #[test]
    fn sgtin_keys_match_the_reference() {
        // _ids.id_key("urn:epc:id:sgtin:4012345.011111.987") == "01/04012345111118/21/987"
        assert_eq!(
            id_key("urn:epc:id:sgtin:4012345.011111.987").as_deref(),
            Some("01/04012345111118/21/987")
        );
        assert_eq!(id_key("urn:epc:id:sgtin:4012345.011111.9%2F7"), None);
        assert_eq!(id_key("urn:epc:id:sgtin:4012345.01111.987"), None);
        assert_eq!(id_key("urn:epc:id:sscc:4012345.0000000001"), None);
        assert_eq!(id_key("https://id.gs1.org/01/04012345111118/21/987"), None);
        assert_eq!(id_key("ex:part/1").as_deref(), Some("ex:part/1"));
    }

    #[test]
    fn offsets_follow_the_pattern() {
        assert!(tz_ok("+14:00") && tz_ok("-13:59") && tz_ok("+00:00"));
        assert!(!tz_ok("+14:01") && !tz_ok("+1:00") && !tz_ok("+01:00\n"));
    }
}
