//! Connections to a conference's rooms, one per person and document, joined with
//! `Rooms::join` exactly as the WebSocket endpoint joins them once it has checked who
//! is calling, but without a socket: the fuzz targets hand frames to `Room::receive`
//! and read the connection's queue themselves.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use roundtable_server::sync::mailbox::{CloseReason, Outgoing};
use roundtable_server::sync::peer::Peer;
use roundtable_server::sync::rooms::Joined;
use roundtable_shared::ParticipantId;
use roundtable_shared::doc::DocumentKind;

use crate::{Conference, Server, panics};

/// Where a connection is: which person (index into [`Conference::people`]) on which
/// document.
pub type Seat = (usize, DocumentKind);

#[derive(Default)]
pub struct Connections {
    open: BTreeMap<Seat, Joined>,
}

impl Connections {
    /// The connection of `seat`, joining the room first if needed.
    pub async fn get(&mut self, server: &Server, conference: &Conference, seat: Seat) -> &Joined {
        if let Entry::Vacant(vacant) = self.open.entry(seat) {
            let person = &conference.people[seat.0];
            let peer = Peer {
                participant: ParticipantId(person.id),
                name: person.name.clone(),
                role: person.role,
            };
            let joined = match server.rooms().join((conference.key(), seat.1), peer).await {
                Ok(joined) => joined,
                Err(e) => panics::fail(&format!("joining a room failed: {e}")),
            };
            vacant.insert(joined);
        }
        &self.open[&seat]
    }

    /// Takes every message queued for `seat`.
    pub fn take(&mut self, seat: Seat) -> Vec<Outgoing> {
        let mut taken = Vec::new();
        if let Some(joined) = self.open.get(&seat) {
            while let Some(message) = joined.mailbox.try_take() {
                taken.push(message);
            }
        }
        taken
    }

    /// Takes every message queued for every connection.
    pub fn take_all(&mut self) -> Vec<(Seat, Outgoing)> {
        let seats: Vec<Seat> = self.open.keys().copied().collect();
        seats
            .into_iter()
            .flat_map(|seat| self.take(seat).into_iter().map(move |m| (seat, m)))
            .collect()
    }

    /// A connection the server has closed, and why. Nothing the fuzz targets send
    /// should make the server close one: a full queue (they read every queue after
    /// each message) or a room that could not store or reload its document are both
    /// failures.
    pub fn closed(&self) -> Option<(Seat, CloseReason)> {
        self.open.iter().find_map(|(seat, joined)| {
            let reason = joined.mailbox.closed().flatten()?;
            Some((*seat, reason))
        })
    }

    /// Leaves the room of `seat`, as a connection does when its socket ends.
    pub async fn leave(&mut self, server: &Server, seat: Seat) {
        if let Some(joined) = self.open.remove(&seat) {
            server.rooms().leave(&joined.room, joined.connection).await;
        }
    }

    /// Leaves every room; the last to leave unloads it.
    pub async fn leave_all(&mut self, server: &Server) {
        let seats: Vec<Seat> = self.open.keys().copied().collect();
        for seat in seats {
            self.leave(server, seat).await;
        }
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The seats with an open connection.
    pub fn seats(&self) -> impl Iterator<Item = Seat> + '_ {
        self.open.keys().copied()
    }
}
