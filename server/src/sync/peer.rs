//! Who is on the other end of a connection.

use roundtable_shared::{ParticipantId, Role};

/// Who is on the other end of a connection, as the server knows them: what the room
/// checks their updates against, and what their presence is stamped with.
#[derive(Debug, Clone)]
pub struct Peer {
    pub participant: ParticipantId,
    pub name: String,
    pub role: Role,
}
