//! A room on a node that does not own its document: it follows the stored log.
//!
//! The owner stores every update and relays it to its own connections; every other
//! node with people in the document keeps a copy built from what is stored (the
//! snapshot and the rows after it) and a cursor, the last sequence number it has,
//! and relays each newly committed row, in order, to its connections. It forwards
//! what its connections send to the owner (`forwarded_updates`), and answers each
//! sender with the owner's verdict: a connection reads its next message only once
//! its update has one, so "saved?" is answered only after every update before it
//! has been stored or refused, as on one node. A command handled here writes its
//! outcome the same way: made on a copy of this node's, forwarded, and stored by the
//! owner (`Room::server_change`).
//!
//! When nobody holds the document's lease (its owner gave it up, or died and the
//! lease ran out), a follower takes it over: it relays what the old owner stored,
//! loads the document afresh as its owner, and decides on the updates still waiting
//! for a verdict, its own included.
//!
//! Invariants:
//! - A follower's copy holds only committed rows, applied in the order of their
//!   sequence numbers; what its connections receive is exactly that.
//! - A follower writes nothing to the document: no update, snapshot or quarantine.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use yrs::sync::{Message, SyncMessage};

use super::cluster::{Cluster, Wake};
use super::mailbox::CloseReason;
use super::room::{
    From, Outcome, Part, Pending, Room, RoomState, broadcast, encode, load_document, resolve,
};
use crate::storage::{Fence, ForwardVerdict, Storage, StorageError};
use roundtable_shared::protocol;

/// Rows read from the log at a time.
const ROWS_AT_ONCE: i64 = 500;
/// Forwarded updates an owner takes for one turn at most.
const FORWARDED_AT_ONCE: i64 = 256;

impl Room {
    /// Forwards what this node's connections sent to the document's owner; each
    /// sender's answer waits for the verdict.
    pub(super) async fn forward(&self, state: &mut RoomState, waiting: Vec<super::room::Waiting>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let mut batch = Vec::new();
        for waiting in waiting {
            match waiting.from {
                From::Local { connection, answer } => match state.connections.get(&connection) {
                    Some(c) => {
                        let sender = Some((c.peer.participant, c.peer.role));
                        batch.push((connection, sender, waiting.update, answer));
                    }
                    None => {
                        let _ = answer.send(Outcome::Applied);
                    }
                },
                // Queued while this node owned the document: it waits for the owner.
                From::Forwarded(f) => {
                    state.in_flight.remove(&f.id);
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        let rows: Vec<_> = batch
            .iter()
            .map(|(connection, sender, update, _)| (*connection, *sender, update.as_slice()))
            .collect();
        match cluster
            .nodes()
            .forward(self.key(), cluster.node(), &rows)
            .await
        {
            Ok(ids) => {
                for (id, (connection, _, _, answer)) in ids.into_iter().zip(batch) {
                    state.pending.insert(id, Pending { connection, answer });
                }
            }
            Err(e) => {
                tracing::error!(conference = %self.key().0, error = %e, "could not forward updates to the document's owner");
                for (connection, _, _, answer) in batch {
                    self.refuse(state, connection, protocol::NOT_SAVED.into());
                    let _ = answer.send(Outcome::NotStored);
                }
            }
        }
    }

    /// Does what a wake-up asked for: the owner takes the updates forwarded to it;
    /// a follower reads its verdicts, relays what was stored, and takes the document
    /// over if nobody holds it.
    pub(super) async fn step(self: &Arc<Self>, cluster: &Arc<Cluster>, reasons: u8) {
        let storage = cluster.storage();
        let mut state = self.state.lock().await;
        if state.poisoned {
            return;
        }
        let result = match state.part {
            Part::Owner { .. } => {
                if reasons & Wake::FORWARDED != 0 {
                    self.drain(&mut state, cluster).await
                } else {
                    Ok(())
                }
            }
            Part::Follower => self.follow(&mut state, cluster, storage, reasons).await,
        };
        if let Err(e) = result {
            // Tried again at the next wake-up, or the timer's.
            tracing::warn!(conference = %self.key().0, document = self.key().1.as_str(), error = %e,
                "could not catch up with the document's other nodes");
        }
    }

    /// The owner's: queues the forwarded updates that wait for a verdict.
    async fn drain(
        self: &Arc<Self>,
        state: &mut RoomState,
        cluster: &Arc<Cluster>,
    ) -> Result<(), StorageError> {
        let waiting = cluster
            .nodes()
            .waiting(self.key(), 0, FORWARDED_AT_ONCE)
            .await?;
        let more = waiting.len() as i64 == FORWARDED_AT_ONCE;
        let new: Vec<_> = waiting
            .into_iter()
            .filter(|f| state.in_flight.insert(f.id))
            .collect();
        if more {
            self.wake.wake(Wake::FORWARDED);
        }
        self.enqueue_forwarded(cluster.storage(), cluster.limits(), new);
        Ok(())
    }

    async fn follow(
        self: &Arc<Self>,
        state: &mut RoomState,
        cluster: &Arc<Cluster>,
        storage: &Storage,
        reasons: u8,
    ) -> Result<(), StorageError> {
        // A sender that stopped waiting (it was told its update was not saved, and
        // sends it again) needs no verdict.
        state.pending.retain(|_, p| !p.answer.is_closed());
        if reasons & Wake::ANSWERED != 0 && !state.pending.is_empty() {
            // Verdicts first: an accepted one's row is then among those read next,
            // and is not relayed back to its sender.
            let ids: Vec<i64> = state.pending.keys().copied().collect();
            let verdicts = cluster
                .nodes()
                .take_verdicts(self.key(), cluster.node(), &ids)
                .await?;
            for (id, verdict) in verdicts {
                if let (ForwardVerdict::Accepted(seq), Some(p)) = (&verdict, state.pending.get(&id))
                    && *seq >= state.document.next_seq
                {
                    state.sent_by.insert(*seq, p.connection);
                }
                resolve(state, id, verdict);
            }
        }
        self.catch_up(state, cluster).await?;
        if reasons & Wake::LEASE != 0 && !state.connections.is_empty() {
            self.take_over(state, storage).await?;
        }
        Ok(())
    }

    /// Applies and relays, in order, the rows stored after the cursor.
    async fn catch_up(
        &self,
        state: &mut RoomState,
        cluster: &Arc<Cluster>,
    ) -> Result<(), StorageError> {
        loop {
            let after = state.document.next_seq - 1;
            let rows = cluster
                .nodes()
                .updates_after(self.key(), after, ROWS_AT_ONCE)
                .await?;
            let more = rows.len() as i64 == ROWS_AT_ONCE;
            for (seq, data) in rows {
                if let Err(e) = state.document.gate.apply_stored(&data) {
                    // The copy is no longer the stored document: start again.
                    tracing::error!(conference = %self.key().0, seq, error = %e, "a stored update does not apply on this node's copy");
                    state.poison(CloseReason::new(
                        1011,
                        "the server could not follow the conference; reconnecting",
                    ));
                    return Ok(());
                }
                state.document.next_seq = seq + 1;
                state.document.stored_bytes += data.len();
                let sender = state.sent_by.remove(&seq);
                broadcast(
                    state,
                    sender,
                    encode(&Message::Sync(SyncMessage::Update(data))),
                );
            }
            self.cursor
                .store(state.document.next_seq - 1, Ordering::Relaxed);
            if !more {
                return Ok(());
            }
        }
    }

    /// Takes the document over if nobody holds its lease. True if this node owns it
    /// now.
    pub(super) async fn take_over(
        &self,
        state: &mut RoomState,
        storage: &Storage,
    ) -> Result<bool, StorageError> {
        let Some(cluster) = self.cluster.clone() else {
            return Ok(matches!(state.part, Part::Owner { .. }));
        };
        if let Part::Owner { .. } = state.part {
            return Ok(true);
        }
        let Some(lease) = cluster.acquire(self.key()).await? else {
            return Ok(false);
        };
        // Everything the old owner committed is in the log now (the takeover waited
        // for any write of its that was under way): relay it, then load the document
        // afresh as its owner, with whose each client id is.
        let loaded = async {
            self.catch_up(state, &cluster).await?;
            load_document(self.key(), storage, Some(Fence::Lease(&lease))).await
        }
        .await;
        let document = match loaded {
            Ok(document) => document,
            Err(e) => {
                cluster.give_up(self.key(), &lease).await;
                return Err(e);
            }
        };
        tracing::info!(conference = %self.key().0, document = self.key().1.as_str(), epoch = lease.epoch,
            "this node owns the document now");
        state.document = document;
        state.part = Part::Owner { lease: Some(lease) };
        state.in_flight.clear();
        state.sent_by.clear();
        self.owner.store(true, Ordering::Relaxed);
        self.cursor
            .store(state.document.next_seq - 1, Ordering::Relaxed);
        // The updates waiting for a verdict (this node's among them) are the new
        // owner's to decide.
        self.wake.wake(Wake::FORWARDED);
        Ok(true)
    }

    /// The lease at `epoch` was lost (it could not be renewed in time): the room
    /// follows from now on. Its copy holds only what was stored, so its
    /// connections stay.
    pub(super) async fn lose_lease(&self, epoch: i64) {
        let mut state = self.state.lock().await;
        let Part::Owner { lease: Some(lease) } = &state.part else {
            return;
        };
        if lease.epoch != epoch {
            return;
        }
        tracing::warn!(conference = %self.key().0, document = self.key().1.as_str(), epoch,
            "the document's lease could not be renewed in time: this node follows it now");
        state.part = Part::Follower;
        state.in_flight.clear();
        self.owner.store(false, Ordering::Relaxed);
        self.wake.wake(Wake::ALL);
    }
}
