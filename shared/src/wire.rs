//! A check of a sync message's shape before yrs reads it.
//!
//! yrs reserves memory by the counts a message declares: a seven-byte sync step 1 that
//! declares 2^28 state-vector entries makes it reserve half a gigabyte, and an update
//! declares its clients, each client's blocks, its deleted ranges and each item's values
//! the same way. It also reads nested values recursively, so a value nested deeply
//! enough would overflow the stack. [`check_message`] walks the message in the same
//! encoding (lib0 v1, as y-protocols sends it), reserving nothing, and refuses one that
//! declares more than its bytes can hold or nests values deeper than [`MAX_DEPTH`]:
//! every element takes at least one byte, so what yrs reserves is then bounded by the
//! size of the message. The walk is linear in the message's length.

use std::fmt;

/// How deeply values may nest inside one another (arrays and maps in an item's
/// content, the options of a subdocument). Roundtable's own values are one level deep.
pub const MAX_DEPTH: usize = 32;

/// Why a message is not accepted, in words for the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const CUT_SHORT: Malformed = Malformed("the message is cut short");
const TOO_MANY: Malformed = Malformed("the message declares more than it holds");
const TOO_DEEP: Malformed = Malformed("the message nests values too deeply");
const UNKNOWN: Malformed = Malformed("the message holds something a Yjs message cannot");

/// Checks one message as y-protocols frames it (sync, awareness, auth, awareness query,
/// or another type carrying a byte string).
pub fn check_message(frame: &[u8]) -> Result<(), Malformed> {
    let mut r = Reader::new(frame);
    match r.var()? {
        // Sync: a step 1 carries a state vector, a step 2 or an update an update.
        0 => {
            let kind = r.var()?;
            let body = r.buf()?;
            match kind {
                0 => check_state_vector(body)?,
                1 | 2 => check_update(body)?,
                _ => return Err(UNKNOWN),
            }
        }
        1 => check_awareness(r.buf()?)?,
        // Auth: a kind, then a reason for a refusal.
        2 => {
            if r.var()? == 0 {
                r.buf()?;
            }
        }
        3 => {}
        _ => {
            r.buf()?;
        }
    }
    Ok(())
}

/// Checks a state vector: a count, then that many (client, clock) pairs.
pub fn check_state_vector(data: &[u8]) -> Result<(), Malformed> {
    let mut r = Reader::new(data);
    let entries = r.count(2)?;
    for _ in 0..entries {
        r.var()?;
        r.var()?;
    }
    Ok(())
}

/// Checks an awareness update: a count, then that many (client, clock, JSON) entries.
pub fn check_awareness(data: &[u8]) -> Result<(), Malformed> {
    let mut r = Reader::new(data);
    let entries = r.count(3)?;
    for _ in 0..entries {
        r.var()?;
        r.var()?;
        r.buf()?;
    }
    Ok(())
}

/// Checks an update (v1): its clients and their blocks, then its deleted ranges.
pub fn check_update(data: &[u8]) -> Result<(), Malformed> {
    let mut r = Reader::new(data);
    let clients = r.count(3)?;
    for _ in 0..clients {
        // Each block takes an info byte and at least one more.
        let blocks = r.count(2)?;
        r.var()?; // client
        r.var()?; // first clock
        for _ in 0..blocks {
            check_block(&mut r)?;
        }
    }
    let clients = r.count(2)?;
    for _ in 0..clients {
        r.var()?; // client
        let ranges = r.count(2)?;
        for _ in 0..ranges {
            r.var()?;
            r.var()?;
        }
    }
    Ok(())
}

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

fn check_block(r: &mut Reader<'_>) -> Result<(), Malformed> {
    let info = r.byte()?;
    match info {
        // A garbage-collected range, or a skipped one: its length.
        0 | 10 => {
            r.var()?;
            return Ok(());
        }
        _ => {}
    }
    if info & HAS_ORIGIN != 0 {
        r.var()?;
        r.var()?;
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        r.var()?;
        r.var()?;
    }
    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
        // The parent: a root by name, or a nested type by ID.
        if r.var()? == 1 {
            r.buf()?;
        } else {
            r.var()?;
            r.var()?;
        }
        if info & HAS_PARENT_SUB != 0 {
            r.buf()?;
        }
    }
    match info & 0b1111 {
        // Deleted content: its length.
        1 => {
            r.var()?;
        }
        // JSON values: a count, then one more string than it says (as Yjs writes it).
        2 => {
            let count = r.count(1)?;
            for _ in 0..=count {
                r.buf()?;
            }
        }
        // Binary, a string, an embed (JSON).
        3..=5 => {
            r.buf()?;
        }
        // A format: key and value (JSON).
        6 => {
            r.buf()?;
            r.buf()?;
        }
        // A type: its kind, and the name of an XML element.
        7 => match r.byte()? {
            3 => {
                r.buf()?;
            }
            0..=6 | 9 | 15 => {}
            _ => return Err(UNKNOWN),
        },
        // Values: a count, then each.
        8 => {
            let count = r.count(1)?;
            for _ in 0..count {
                check_any(r)?;
            }
        }
        // A subdocument: its id, then its options.
        9 => {
            r.buf()?;
            check_any(r)?;
        }
        _ => return Err(UNKNOWN),
    }
    Ok(())
}

/// Checks one value (lib0's encoding of JSON-like data), without recursion: each open
/// array or map keeps how many values it still holds.
fn check_any(r: &mut Reader<'_>) -> Result<(), Malformed> {
    // (values still to read, whether each comes after a key) at each open level.
    let mut open: Vec<(u64, bool)> = vec![(1, false)];
    while let Some((left, keyed)) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        if *keyed {
            r.buf()?;
        }
        match r.byte()? {
            // undefined, null, false, true
            127 | 126 | 121 | 120 => {}
            // an integer
            125 => r.signed_var()?,
            // float32; float64 and bigint
            124 => r.skip(4)?,
            123 | 122 => r.skip(8)?,
            // a string, a byte array
            119 | 116 => {
                r.buf()?;
            }
            // a map of (key, value) entries, an array of values
            tag @ (118 | 117) => {
                let keyed = tag == 118;
                let count = r.count(if keyed { 2 } else { 1 })?;
                if open.len() >= MAX_DEPTH {
                    return Err(TOO_DEEP);
                }
                open.push((count, keyed));
            }
            _ => return Err(UNKNOWN),
        }
    }
    Ok(())
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, at: 0 }
    }

    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let byte = *self.data.get(self.at).ok_or(CUT_SHORT)?;
        self.at += 1;
        Ok(byte)
    }

    fn skip(&mut self, n: usize) -> Result<(), Malformed> {
        if self.left() < n {
            return Err(CUT_SHORT);
        }
        self.at += n;
        Ok(())
    }

    /// An unsigned variable-length integer (seven bits a byte, at most ten bytes).
    fn var(&mut self) -> Result<u64, Malformed> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(UNKNOWN)
    }

    /// lib0's signed variable-length integer (a sign bit in the first byte).
    fn signed_var(&mut self) -> Result<(), Malformed> {
        // Only its length matters here.
        let first = self.byte()?;
        if first & 0x80 == 0 {
            return Ok(());
        }
        for _ in 0..9 {
            if self.byte()? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(UNKNOWN)
    }

    /// A length-prefixed byte string.
    fn buf(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.var()?;
        if len > self.left() as u64 {
            return Err(TOO_MANY);
        }
        let start = self.at;
        self.at += len as usize;
        Ok(&self.data[start..self.at])
    }

    /// A count of elements each taking at least `each` bytes: no more than the rest of
    /// the message can hold.
    fn count(&mut self, each: usize) -> Result<u64, Malformed> {
        let count = self.var()?;
        if count > (self.left() / each) as u64 {
            return Err(TOO_MANY);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, Map, Text, Transact, WriteTxn};

    #[test]
    fn messages_a_client_sends_pass() {
        use std::collections::HashMap;
        use std::sync::Arc;
        use yrs::Any;
        let doc = Doc::new();
        let update = {
            let mut txn = doc.transact_mut();
            let board = txn.get_or_insert_map("board");
            let nested = Any::Map(Arc::new(HashMap::from([(
                "k".to_owned(),
                Any::Array(
                    vec![
                        Any::from(1.5),
                        Any::Null,
                        Any::from(i64::MIN),
                        Any::from("x"),
                    ]
                    .into(),
                ),
            )])));
            board.insert(&mut txn, "a", nested);
            board.insert(&mut txn, "n", -300i64);
            let text = txn.get_or_insert_text("t");
            text.insert(&mut txn, 0, "hello");
            txn.encode_update_v1()
        };
        use yrs::sync::{Message, SyncMessage};
        for message in [
            Message::Sync(SyncMessage::Update(update.clone())),
            Message::Sync(SyncMessage::SyncStep2(update)),
            Message::Sync(SyncMessage::SyncStep1(yrs::ReadTxn::state_vector(
                &doc.transact(),
            ))),
            Message::AwarenessQuery,
        ] {
            assert_eq!(check_message(&message.encode_v1()), Ok(()), "{message:?}");
        }
    }

    #[test]
    fn a_state_vector_declaring_millions_of_entries_in_seven_bytes_is_refused() {
        // Sync, step 1, a 4-byte state vector declaring 2^28 - 1 entries.
        let frame = [0, 0, 4, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(check_message(&frame), Err(TOO_MANY));
    }

    #[test]
    fn an_update_declaring_more_blocks_than_it_holds_is_refused() {
        // One client with 2^21 blocks, then nothing.
        let update = [1, 0x80, 0x80, 0x80, 0x01, 5, 0];
        assert_eq!(check_update(&update), Err(TOO_MANY));
        // In root "root", one value: an array declaring a million values.
        let any = [
            1, 1, 5, 0, 8, 1, 4, b'r', b'o', b'o', b't', 1, 117, 0xc0, 0x84, 0x3d,
        ];
        assert_eq!(check_update(&any), Err(TOO_MANY));
    }

    #[test]
    fn values_nested_too_deeply_are_refused() {
        // One item of content "values" (8) in root "r", holding arrays in arrays.
        let mut update = vec![1, 1, 5, 0, 8, 1, 1, b'r', 1];
        update.extend(std::iter::repeat_n([117u8, 1], MAX_DEPTH + 1).flatten());
        update.push(126);
        update.push(0);
        assert_eq!(check_update(&update), Err(TOO_DEEP));
        // Maps in maps too.
        let mut update = vec![1, 1, 5, 0, 8, 1, 1, b'r', 1];
        update.extend(std::iter::repeat_n([118u8, 1, 1, b'k'], MAX_DEPTH + 1).flatten());
        update.push(126);
        update.push(0);
        assert_eq!(check_update(&update), Err(TOO_DEEP));
    }

    #[test]
    fn awareness_declaring_more_than_it_holds_is_refused() {
        let frame = [1, 3, 0xff, 0xff, 0x03];
        assert_eq!(check_message(&frame), Err(TOO_MANY));
    }
}
