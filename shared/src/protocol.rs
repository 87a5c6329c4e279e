//! Roundtable's two additions to the y-protocols messages, both on the protocol's
//! own extension point (a message type of its own) and both optional: a stock Yjs
//! client never sends them and never receives them.

/// The message type of a "saved?" question and its answer.
///
/// A client sends `SAVED` followed by a byte string (a varint length, then the
/// bytes) holding a number `n` of its choosing as four little-endian bytes, after
/// the updates it wants confirmed. The
/// server handles a connection's messages in order and stores an accepted update
/// before it reads the next message, so when it answers with the same
/// message, every update the client sent before the question has been
/// stored, or refused with an auth message that arrived first.
pub const SAVED: u8 = 100;

/// The reason the server gives, in a y-protocols auth message, when it could not
/// store an update (a full disk, a locked database). Unlike a refusal for
/// permission, the change is not wrong: the client should keep it and send it
/// again once the server can store it.
pub const NOT_SAVED: &str =
    "the server could not save this change; it is kept on your device and will be sent again";

/// The reason the server gives, in a y-protocols auth message, when an update builds
/// on changes it does not have (an edit to an item it never received, or a change
/// that follows a gap in its client's earlier changes, as when an edit is sent the
/// moment a connection opens, before the sync has delivered what it builds on).
/// Nothing of it was applied, stored or relayed, but it is not wrong either: the
/// client should keep it and connect again, and the sync (the server's SyncStep1,
/// answered with everything the server lacks) sends it with what it builds on.
pub const INCOMPLETE: &str = "the change depends on changes the server does not have; \
     keep it and connect again: the sync sends what it builds on";

/// The close code for a connection whose session or join link has ended: sign in or
/// open the link again before connecting.
pub const CLOSE_SESSION_ENDED: u16 = 4401;
/// The close code for the connections of someone the chair removed from the
/// conference: they are not to connect again.
pub const CLOSE_REMOVED: u16 = 4403;
/// The reason sent with [`CLOSE_REMOVED`].
pub const REMOVED: &str = "you have been removed from this conference";

/// Encodes the number carried by a [`SAVED`] message.
pub fn encode_saved(n: u32) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// Reads the number carried by a [`SAVED`] message.
pub fn decode_saved(data: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(data.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_number_reads_back() {
        for n in [0, 1, 255, 256, u32::MAX] {
            assert_eq!(decode_saved(&encode_saved(n)), Some(n));
        }
        assert_eq!(decode_saved(&[1, 2]), None);
    }
}
