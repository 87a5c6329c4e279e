//! Knowing when every other client of a room has an edit.
//!
//! An edit is identified by its sender's client id and the clock just past its last
//! change: after typing one character, a client's own clock has moved from `n` to
//! `n + 1`, and any update that carries that client's changes up to clock `n + 1`
//! carries the edit. So a receiver does not need to apply anything: it reads, from
//! each update it is sent, how far each client's changes reach, and every edit of
//! that client ending at or before that point has arrived. This holds even if a
//! server merges several edits into one update, and costs one decode per message.
//!
//! Servers relay one sender's changes in the order they were made (they apply them
//! in order, and each socket is ordered), so a receiver's progress through one
//! sender's edits only moves forward: a cursor per (receiver, sender) suffices.

use std::time::Instant;

use yrs::Update;
use yrs::updates::decoder::Decode;

/// For each client whose changes an update carries: its client id and the clock just
/// past its last change there.
pub fn reach(update: &[u8]) -> Result<Vec<(u64, u32)>, yrs::encoding::read::Error> {
    let update = Update::decode_v1(update)?;
    // Deleted items count too: a character typed and then deleted by someone else
    // before it was relayed still took its clock.
    let insertions = update.insertions(true);
    Ok(insertions
        .iter()
        .filter_map(|(client, ranges)| Some((client.get(), ranges.iter().map(|r| r.end).max()?)))
        .collect())
}

#[derive(Debug)]
struct Edit {
    /// The sender's clock just past this edit.
    end: u32,
    sent: Instant,
    /// How many other clients have yet to receive it.
    waiting: u32,
}

/// The edits of one room and who has received them.
#[derive(Debug)]
pub struct RoomTracker {
    clients: usize,
    /// Client ids of this room's clients are `first_client_id + index`.
    first_client_id: u64,
    edits: Vec<Vec<Edit>>,
    /// `seen[receiver * clients + sender]`: how many of `sender`'s edits `receiver` has.
    seen: Vec<usize>,
    /// Edit-to-every-peer latencies of delivered edits, in microseconds.
    latencies_us: Vec<u32>,
    outstanding: usize,
}

impl RoomTracker {
    pub fn new(clients: usize, first_client_id: u64) -> RoomTracker {
        RoomTracker {
            clients,
            first_client_id,
            edits: (0..clients).map(|_| Vec::new()).collect(),
            seen: vec![0; clients * clients],
            latencies_us: Vec::new(),
            outstanding: 0,
        }
    }

    /// Records that client `sender` is about to send an edit ending at clock `end`.
    /// Call it before the edit is sent, so no receiver can see it first.
    pub fn sent(&mut self, sender: usize, end: u32, at: Instant) {
        let waiting = u32::try_from(self.clients.saturating_sub(1)).unwrap_or(u32::MAX);
        self.edits[sender].push(Edit {
            end,
            sent: at,
            waiting,
        });
        self.outstanding += 1;
    }

    /// Records that `receiver` was sent changes of `client_id` up to clock `reach`.
    /// Changes of clients outside the room (a server's own writes) are ignored.
    pub fn received(&mut self, receiver: usize, client_id: u64, reach: u32, at: Instant) {
        let Some(sender) = client_id
            .checked_sub(self.first_client_id)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.clients && i != receiver)
        else {
            return;
        };
        let cursor = &mut self.seen[receiver * self.clients + sender];
        let edits = &mut self.edits[sender];
        while let Some(edit) = edits.get_mut(*cursor) {
            if edit.end > reach {
                break;
            }
            edit.waiting -= 1;
            if edit.waiting == 0 {
                let micros = at.saturating_duration_since(edit.sent).as_micros();
                self.latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                self.outstanding -= 1;
            }
            *cursor += 1;
        }
    }

    /// Edits sent that some other client has not received yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    pub fn sent_count(&self) -> usize {
        self.edits.iter().map(Vec::len).sum()
    }

    pub fn latencies_us(&self) -> &[u32] {
        &self.latencies_us
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use roundtable_shared::ParticipantId;
    use roundtable_shared::doc::{Board, NewItem};
    use yrs::{Doc, ReadTxn, Transact};

    use super::*;

    fn typed(doc: &Doc, board: &Board, chars: &str) -> Vec<u8> {
        let mut txn = doc.transact_mut();
        board.insert_text(&mut txn, "item", u32::MAX, chars);
        txn.encode_update_v1()
    }

    #[test]
    fn an_update_reaches_just_past_the_edit_it_carries() {
        let doc = Doc::with_client_id(42);
        let board = Board::new(&doc);
        let created = {
            let mut txn = doc.transact_mut();
            board.add_item(
                &mut txn,
                NewItem {
                    id: "item",
                    heading: "worries",
                    text: "",
                    author: ParticipantId(uuid::Uuid::nil()),
                    said_by: None,
                    children: &[],
                },
            );
            txn.encode_update_v1()
        };
        let clock_after_creation = doc.transact().state_vector().get(&yrs::ClientID::new(42));
        assert_eq!(reach(&created).unwrap(), vec![(42, clock_after_creation)]);

        let first = typed(&doc, &board, "a");
        assert_eq!(reach(&first).unwrap(), vec![(42, clock_after_creation + 1)]);
        let two = typed(&doc, &board, "bc");
        assert_eq!(reach(&two).unwrap(), vec![(42, clock_after_creation + 3)]);
    }

    #[test]
    fn a_merged_update_reaches_its_last_edit() {
        let doc = Doc::with_client_id(7);
        let text = doc.get_or_insert_text("t");
        let mut updates = Vec::new();
        for ch in ["x", "y", "z"] {
            let mut txn = doc.transact_mut();
            yrs::Text::push(&text, &mut txn, ch);
            updates.push(txn.encode_update_v1());
        }
        let merged = yrs::merge_updates_v1(updates.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(reach(&merged).unwrap(), vec![(7, 3)]);
    }

    #[test]
    fn an_empty_update_reaches_nothing() {
        assert_eq!(reach(Update::EMPTY_V1).unwrap(), vec![]);
        assert!(reach(&[5]).is_err());
    }

    fn ms(start: Instant, n: u64) -> Instant {
        start + Duration::from_millis(n)
    }

    #[test]
    fn an_edit_counts_when_the_last_other_client_has_it() {
        let start = Instant::now();
        let mut room = RoomTracker::new(3, 100);
        room.sent(0, 5, start);
        room.received(1, 100, 5, ms(start, 2));
        assert_eq!(room.outstanding(), 1);
        assert!(room.latencies_us().is_empty());
        room.received(2, 100, 5, ms(start, 7));
        assert_eq!(room.outstanding(), 0);
        assert_eq!(room.latencies_us(), &[7000]);
    }

    #[test]
    fn one_update_can_deliver_several_edits() {
        let start = Instant::now();
        let mut room = RoomTracker::new(2, 100);
        room.sent(1, 1, start);
        room.sent(1, 2, ms(start, 1));
        room.sent(1, 3, ms(start, 2));
        room.received(0, 101, 2, ms(start, 4));
        assert_eq!(room.latencies_us(), &[4000, 3000]);
        assert_eq!(room.outstanding(), 1);
        room.received(0, 101, 3, ms(start, 5));
        assert_eq!(room.latencies_us(), &[4000, 3000, 3000]);
        assert_eq!(room.sent_count(), 3);
    }

    #[test]
    fn strangers_echoes_and_repeats_change_nothing() {
        let start = Instant::now();
        let mut room = RoomTracker::new(2, 100);
        room.sent(0, 1, start);
        room.received(1, 99, 10, start);
        room.received(1, 102, 10, start);
        room.received(0, 100, 10, start);
        assert_eq!(room.outstanding(), 1);
        room.received(1, 100, 1, ms(start, 1));
        room.received(1, 100, 1, ms(start, 2));
        assert_eq!(room.latencies_us(), &[1000]);
        assert_eq!(room.outstanding(), 0);
    }
}
