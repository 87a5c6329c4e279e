//! The y-protocols messages the generator sends and reads, with or without
//! Hocuspocus' framing.
//!
//! Reading is done by hand rather than with `yrs::sync::Message::decode_v1`: that
//! decodes awareness payloads as JSON and copies every update into a new vector,
//! work the generator would do tens of thousands of times a second for messages it
//! mostly ignores. Here a message is only split into its kind and a borrowed payload.

use yrs::encoding::write::Write;
use yrs::updates::encoder::{Encoder, EncoderV1};

const MSG_SYNC: u64 = 0;
const MSG_AUTH: u64 = 2;
const SYNC_STEP_1: u64 = 0;
const SYNC_STEP_2: u64 = 1;
const SYNC_UPDATE: u64 = 2;
const AUTH_PERMISSION_DENIED: u64 = 0;
/// Hocuspocus' auth sub-messages: the client's token, and the server's consent.
const HOCUSPOCUS_AUTH_TOKEN: u64 = 0;
const HOCUSPOCUS_AUTH_PERMISSION_DENIED: u64 = 1;
const HOCUSPOCUS_AUTHENTICATED: u64 = 2;

/// How messages are put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// One y-protocols message per WebSocket frame (y-websocket, y-sweet, Roundtable).
    Plain,
    /// Hocuspocus: every message starts with the document's name as a length-prefixed
    /// string, so that one socket can carry several documents; its auth sub-messages
    /// differ from y-protocols'.
    Hocuspocus { document: String },
}

/// What a message from the server means to a load client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The server's state vector (v1): it asks for what we have that it lacks.
    SyncStep1(&'a [u8]),
    /// A whole-document or missing-changes answer, as a v1 update.
    SyncStep2(&'a [u8]),
    /// An update relayed from another client, as a v1 update.
    Update(&'a [u8]),
    /// The server refused something, with its reason.
    Denied(String),
    /// Hocuspocus accepted our token.
    Authenticated,
    /// Awareness, sync status and anything else the workload does not need.
    Other,
}

/// The message could not be read as the framing says it should be.
#[derive(Debug, thiserror::Error)]
#[error("a message from the server could not be read: {0}")]
pub struct Malformed(&'static str);

/// A lib0 variable-length unsigned integer: seven bits a byte, low bits first.
fn read_var(input: &mut &[u8]) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(Malformed("truncated number"))?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed("number too long"))
}

/// A lib0 byte string: its length as a variable-length integer, then the bytes.
fn read_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], Malformed> {
    let len = usize::try_from(read_var(input)?).map_err(|_| Malformed("length too large"))?;
    if input.len() < len {
        return Err(Malformed("truncated bytes"));
    }
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    Ok(bytes)
}

fn read_string<'a>(input: &mut &'a [u8]) -> Result<&'a str, Malformed> {
    std::str::from_utf8(read_bytes(input)?).map_err(|_| Malformed("a string that is not UTF-8"))
}

impl Framing {
    fn start(&self) -> EncoderV1 {
        let mut encoder = EncoderV1::new();
        if let Framing::Hocuspocus { document } = self {
            encoder.write_string(document);
        }
        encoder
    }

    /// SyncStep1 with the state vector (already encoded, v1).
    pub fn sync_step_1(&self, state_vector: &[u8]) -> Vec<u8> {
        let mut encoder = self.start();
        encoder.write_var(MSG_SYNC);
        encoder.write_var(SYNC_STEP_1);
        encoder.write_buf(state_vector);
        encoder.to_vec()
    }

    /// SyncStep2 with a v1 update.
    pub fn sync_step_2(&self, update: &[u8]) -> Vec<u8> {
        let mut encoder = self.start();
        encoder.write_var(MSG_SYNC);
        encoder.write_var(SYNC_STEP_2);
        encoder.write_buf(update);
        encoder.to_vec()
    }

    /// An incremental v1 update.
    pub fn update(&self, update: &[u8]) -> Vec<u8> {
        let mut encoder = self.start();
        encoder.write_var(MSG_SYNC);
        encoder.write_var(SYNC_UPDATE);
        encoder.write_buf(update);
        encoder.to_vec()
    }

    /// The first message on a Hocuspocus connection: the token for the document.
    /// Other framings have no in-band authentication, so there is nothing to send.
    pub fn hello(&self, token: &str) -> Option<Vec<u8>> {
        match self {
            Framing::Plain => None,
            Framing::Hocuspocus { .. } => {
                let mut encoder = self.start();
                encoder.write_var(MSG_AUTH);
                encoder.write_var(HOCUSPOCUS_AUTH_TOKEN);
                encoder.write_string(token);
                Some(encoder.to_vec())
            }
        }
    }

    /// Reads a message from the server. A Hocuspocus message for another document
    /// is `Other`: the generator opens one document per socket, so it never
    /// expects one.
    pub fn read<'a>(&self, frame: &'a [u8]) -> Result<Incoming<'a>, Malformed> {
        let mut input = frame;
        if let Framing::Hocuspocus { document } = self
            && read_string(&mut input)? != document.as_str()
        {
            return Ok(Incoming::Other);
        }
        match read_var(&mut input)? {
            MSG_SYNC => match read_var(&mut input)? {
                SYNC_STEP_1 => Ok(Incoming::SyncStep1(read_bytes(&mut input)?)),
                SYNC_STEP_2 => Ok(Incoming::SyncStep2(read_bytes(&mut input)?)),
                SYNC_UPDATE => Ok(Incoming::Update(read_bytes(&mut input)?)),
                _ => Err(Malformed("unknown sync step")),
            },
            MSG_AUTH => self.read_auth(input),
            _ => Ok(Incoming::Other),
        }
    }

    fn read_auth<'a>(&self, mut input: &'a [u8]) -> Result<Incoming<'a>, Malformed> {
        let sub = read_var(&mut input)?;
        let denied = match self {
            Framing::Plain => AUTH_PERMISSION_DENIED,
            Framing::Hocuspocus { .. } => HOCUSPOCUS_AUTH_PERMISSION_DENIED,
        };
        if sub == denied {
            return Ok(Incoming::Denied(read_string(&mut input)?.to_owned()));
        }
        if matches!(self, Framing::Hocuspocus { .. }) && sub == HOCUSPOCUS_AUTHENTICATED {
            return Ok(Incoming::Authenticated);
        }
        Ok(Incoming::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hocuspocus() -> Framing {
        Framing::Hocuspocus {
            document: "room-7".into(),
        }
    }

    /// Bytes as Hocuspocus frames them for "room-7": the name as a varstring, then
    /// each part as it is.
    fn for_room_7(parts: &[&[u8]]) -> Vec<u8> {
        let mut bytes = vec![6];
        bytes.extend_from_slice(b"room-7");
        for part in parts {
            bytes.extend_from_slice(part);
        }
        bytes
    }

    #[test]
    fn a_hocuspocus_message_starts_with_the_document_name() {
        let update = [1, 2, 3];
        let message = hocuspocus().update(&update);
        // Sync (0), update (2), then the update as a buffer.
        assert_eq!(message, for_room_7(&[&[0, 2, 3, 1, 2, 3]]));
        assert_eq!(Framing::Plain.update(&update), vec![0, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn what_is_sent_reads_back() {
        for framing in [Framing::Plain, hocuspocus()] {
            assert_eq!(
                framing.read(&framing.update(&[9, 9])).unwrap(),
                Incoming::Update(&[9, 9])
            );
            assert_eq!(
                framing.read(&framing.sync_step_2(&[0, 0])).unwrap(),
                Incoming::SyncStep2(&[0, 0])
            );
            assert_eq!(
                framing.read(&framing.sync_step_1(&[0])).unwrap(),
                Incoming::SyncStep1(&[0])
            );
        }
    }

    #[test]
    fn the_hocuspocus_token_message_carries_the_token() {
        let hello = hocuspocus().hello("secret").unwrap();
        assert_eq!(hello, for_room_7(&[&[2, 0, 6], b"secret"]));
        assert_eq!(Framing::Plain.hello("secret"), None);
    }

    #[test]
    fn hocuspocus_consent_and_refusal_are_read() {
        let authenticated = for_room_7(&[&[2, 2, 10], b"read-write"]);
        assert_eq!(
            hocuspocus().read(&authenticated).unwrap(),
            Incoming::Authenticated
        );

        let denied = for_room_7(&[&[2, 1, 2], b"no"]);
        assert_eq!(
            hocuspocus().read(&denied).unwrap(),
            Incoming::Denied("no".into())
        );
    }

    #[test]
    fn a_plain_permission_denied_is_read() {
        let mut denied = vec![2, 0, 4];
        denied.extend_from_slice(b"nope");
        assert_eq!(
            Framing::Plain.read(&denied).unwrap(),
            Incoming::Denied("nope".into())
        );
    }

    #[test]
    fn a_message_for_another_document_is_ignored() {
        let other = Framing::Hocuspocus {
            document: "room-8".into(),
        };
        assert_eq!(
            hocuspocus().read(&other.update(&[1])).unwrap(),
            Incoming::Other
        );
    }

    #[test]
    fn awareness_and_unknown_kinds_are_other() {
        assert_eq!(Framing::Plain.read(&[1, 1, 0]).unwrap(), Incoming::Other);
        assert_eq!(Framing::Plain.read(&[8, 1]).unwrap(), Incoming::Other);
    }

    #[test]
    fn numbers_read_as_lib0_writes_them() {
        for n in [
            0u64,
            1,
            127,
            128,
            300,
            1 << 20,
            u64::from(u32::MAX),
            1 << 53,
        ] {
            let mut encoder = EncoderV1::new();
            encoder.write_var(n);
            let bytes = encoder.to_vec();
            let mut input = bytes.as_slice();
            assert_eq!(read_var(&mut input).unwrap(), n);
            assert!(input.is_empty());
        }
    }

    #[test]
    fn a_truncated_message_is_malformed() {
        assert!(Framing::Plain.read(&[0, 2, 5, 1]).is_err());
        assert!(Framing::Plain.read(&[]).is_err());
        assert!(hocuspocus().read(&[9, b'r']).is_err());
    }
}
