//! A conference document in memory with its connections.
//!
//! Every update a client sends goes one way: it waits in the room's queue, the gate
//! decides on it ([`roundtable_shared::gate`], no IO), the accepted ones are stored in
//! one write, and only then relayed to the others and confirmed to their senders.
//!
//! Invariants:
//! - An update is stored (committed) before it is relayed or confirmed; one that cannot
//!   be stored is refused to its sender, and dropped from memory with the rest of that
//!   write.
//! - The gate decides before an update reaches the document: a refused update leaves the
//!   document as it was, and only its sender hears of it.
//! - An update that builds on changes the server does not have is refused before any
//!   of it is applied: nothing is stored that the document cannot take whole.
//! - All changes to one room happen under its lock, so the stored order is the order
//!   every client receives.
//! - Nobody silently misses an update: a connection whose mailbox is full is closed and
//!   resyncs when it reconnects.

use std::collections::HashMap;
use std::sync::Arc;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::gate::{Admitted, Gate, Owner, Sender, Verdict};
use roundtable_shared::permissions::Refusal;
use roundtable_shared::protocol;
use roundtable_shared::{ConferenceId, ParticipantId};
use tokio::sync::{Mutex, oneshot};
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, Transact, TransactionMut};

use super::Limits;
use super::mailbox::{self, CloseReason, Outgoing};
use super::peer::Peer;
use super::presence::{self, Presence};
use crate::storage::{Storage, StorageError, StoredDocument};

pub type RoomKey = (ConferenceId, DocumentKind);

/// Why an update is refused when the conference's document has no room left.
const FULL: &str = "this conference's document is full: the chair can still delete";
/// Why an update is refused when its sender has written as much as one person may.
const PERSON_FULL: &str =
    "you have written as much into this conference as one person may: ask the chair";

pub(super) struct Connection {
    pub(super) peer: Peer,
    pub(super) mailbox: mailbox::Sender,
}

impl Connection {
    pub(super) fn new(peer: Peer, mailbox: mailbox::Sender) -> Connection {
        Connection { peer, mailbox }
    }
}

/// A document as loaded from storage, with what the server keeps beside it.
pub(super) struct Document {
    pub(super) gate: Gate,
    next_seq: i64,
    pub(super) since_snapshot: usize,
    stored_bytes: usize,
    /// What each participant's stored updates take.
    bytes_by_sender: HashMap<ParticipantId, usize>,
}

pub(super) struct RoomState {
    pub(super) document: Document,
    /// The document in memory may hold a change that is not stored: it must not be
    /// compacted or used again.
    pub(super) poisoned: bool,
    pub(super) connections: HashMap<u64, Connection>,
    pub(super) presence: Presence,
}

impl RoomState {
    /// Closes every connection; the room will be loaded afresh from storage.
    fn poison(&mut self, reason: CloseReason) {
        self.poisoned = true;
        self.close_all(reason);
    }

    /// Closes every connection, with `reason`.
    pub(super) fn close_all(&mut self, reason: CloseReason) {
        for (_, c) in self.connections.drain() {
            c.mailbox.close(reason.clone());
        }
        self.presence.clear();
    }

    /// Removes a connection and its presence.
    pub(super) fn remove(&mut self, connection: u64) {
        self.connections.remove(&connection);
        let gone = self.presence.drop_connection(connection);
        if !gone.is_empty() {
            let message = encode(&Message::Awareness(presence::update(gone)));
            broadcast(self, None, message);
        }
    }
}

async fn load_document(key: RoomKey, storage: &Storage) -> Result<Document, StorageError> {
    let stored = storage.load_document(key.0, key.1).await?;
    let next_seq = stored.last_seq + 1;
    let parts: Vec<&[u8]> = stored
        .snapshot
        .iter()
        .chain(&stored.updates)
        .map(|(_, data)| data.as_slice())
        .collect();
    let stored_bytes = parts.iter().map(|p| p.len()).sum();
    let gate = match Gate::load(parts.iter().copied()) {
        Ok(gate) => gate,
        Err(e) => {
            tracing::error!(conference = %key.0, document = key.1.as_str(), error = %e,
                "a stored document does not load: loading what still applies");
            // Boxed: this is rare, and the future of every update's turn holds a
            // reload (`restore`), which would otherwise carry this one's size.
            Box::pin(recover(key, storage, &stored)).await?
        }
    }
    .with_owners(
        stored
            .clients
            .iter()
            .map(|(client, owner)| (ClientID::new(*client), *owner)),
    );
    let bytes_by_sender = storage
        .bytes_by_sender(key.0, key.1)
        .await?
        .into_iter()
        .collect();
    Ok(Document {
        gate,
        next_seq,
        since_snapshot: stored.updates.len(),
        stored_bytes,
        bytes_by_sender,
    })
}

/// Opens a stored document that does not load whole: from its snapshot and the
/// updates after it that still apply (from the whole log, if the snapshot itself does
/// not load). The updates left out are quarantined, with an audit event that tells the
/// chair; nothing is deleted. What was recovered is written as the new snapshot.
async fn recover(
    key: RoomKey,
    storage: &Storage,
    stored: &StoredDocument,
) -> Result<Gate, StorageError> {
    let mut rows: Vec<(Option<i64>, &[u8])> = stored
        .snapshot
        .iter()
        .map(|(_, data)| (None, data.as_slice()))
        .chain(
            stored
                .updates
                .iter()
                .map(|(seq, data)| (Some(*seq), data.as_slice())),
        )
        .collect();
    let parts: Vec<&[u8]> = rows.iter().map(|(_, data)| *data).collect();
    let (mut gate, mut left_out) = Gate::load_what_applies(&parts);
    let log;
    let snapshot_bad = stored.snapshot.is_some() && left_out.iter().any(|(i, _)| *i == 0);
    if snapshot_bad {
        // The snapshot holds nothing the log does not: start again from the log.
        let quarantined = storage.quarantined(key.0, key.1).await?;
        log = storage
            .document_log(key.0, key.1)
            .await?
            .into_iter()
            .filter(|(seq, _)| !quarantined.iter().any(|(q, _)| q == seq))
            .collect::<Vec<_>>();
        rows = log
            .iter()
            .map(|(seq, data)| (Some(*seq), data.as_slice()))
            .collect();
        let parts: Vec<&[u8]> = rows.iter().map(|(_, data)| *data).collect();
        (gate, left_out) = Gate::load_what_applies(&parts);
    }
    let quarantine: Vec<(i64, String)> = left_out
        .iter()
        .filter_map(|(index, why)| Some((rows[*index].0?, why.to_string())))
        .collect();
    let seqs: Vec<i64> = quarantine.iter().map(|(seq, _)| *seq).collect();
    tracing::error!(conference = %key.0, document = key.1.as_str(), updates = ?seqs,
        "stored updates quarantined: the document opens without them");
    let event = crate::storage::AuditEvent {
        conference: key.0,
        actor: None,
        action: "updates_quarantined",
        detail: serde_json::json!({
            "document": key.1.as_str(),
            "updates": seqs,
            "snapshot_rebuilt": snapshot_bad,
        }),
    };
    if !quarantine.is_empty() {
        storage
            .quarantine(key.0, key.1, &quarantine, &event)
            .await?;
    }
    // What was recovered becomes the snapshot, so the next load is whole again.
    storage
        .write_snapshot(key.0, key.1, stored.last_seq, &gate.encode())
        .await?;
    Ok(gate)
}

pub struct Room {
    key: RoomKey,
    pub(super) state: Mutex<RoomState>,
    /// Updates from clients waiting for the room, and whether a task is taking turns
    /// on the room for them.
    queue: std::sync::Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// At most one per connection: a connection reads its next message only once
    /// its update is answered.
    waiting: Vec<Waiting>,
    /// A task is handling what waits, and will until nothing does.
    combining: bool,
}

struct Waiting {
    connection: u64,
    update: Vec<u8>,
    answer: oneshot::Sender<Outcome>,
}

/// One turn on a room for the updates waiting. A turn cut short (a panic, or the
/// runtime shutting down) may leave changes in memory that are not stored, and would
/// leave the queue waiting for a task that is gone: the room is closed, to be loaded
/// afresh, and the updates still waiting are dropped unanswered, so their connections
/// close and the clients send them again.
struct Turn<'a> {
    room: &'a Room,
    state: tokio::sync::MutexGuard<'a, RoomState>,
    finished: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.state.poison(CloseReason::new(
            1011,
            "the server could not handle a change; reconnecting",
        ));
        let mut queue = self.room.queue();
        queue.combining = false;
        queue.waiting.clear();
    }
}

/// An update the gate accepted and applied in memory, to be stored and relayed.
struct Accepted {
    connection: u64,
    sender: ParticipantId,
    update: Vec<u8>,
    /// The client ids it is the first to write under, stored with it as its sender's.
    claims: Vec<ClientID>,
    answer: oneshot::Sender<Outcome>,
}

/// What the gate came to, as the room acts on it.
enum Step {
    /// Applied in memory; the sender's, and the update as the document took it.
    Accepted(ParticipantId, Admitted),
    /// Answered: refused, malformed, or nothing new.
    Done(Outcome),
    /// Applied, but it must not stay: the document is to be reloaded.
    Spoiled(Option<Refusal>),
}

/// What happened to an update a client sent.
#[derive(Debug)]
pub enum Outcome {
    /// Stored and relayed, or already known.
    Applied,
    /// Refused; the reason is sent to the sender only.
    Refused(String),
    /// Not stored because of trouble with the database: the sender was told, and the
    /// connection must end, so that nothing it sends later is taken as saved and the
    /// client sends its change again when it reconnects.
    NotStored,
    /// The message was not valid: close the connection.
    Malformed(&'static str),
}

pub(super) fn encode(message: &Message) -> Outgoing {
    Arc::new(message.encode_v1().into())
}

const NOT_AN_UPDATE: &str = "the update is not a valid Yjs update";

impl Room {
    pub(super) async fn load(key: RoomKey, storage: &Storage) -> Result<Room, StorageError> {
        Ok(Room {
            key,
            state: Mutex::new(RoomState {
                document: load_document(key, storage).await?,
                poisoned: false,
                connections: HashMap::new(),
                presence: Presence::default(),
            }),
            queue: std::sync::Mutex::default(),
        })
    }

    pub(super) async fn is_poisoned(&self) -> bool {
        self.state.lock().await.poisoned
    }

    pub fn key(&self) -> RoomKey {
        self.key
    }

    /// The messages a new connection starts with: the server's state vector (so the
    /// client sends what the server lacks), the whole document, and who is present.
    pub(super) fn greeting(state: &RoomState) -> Vec<Outgoing> {
        let doc = state.document.gate.doc();
        let mut out = vec![
            encode(&Message::Sync(SyncMessage::SyncStep1(
                doc.transact().state_vector(),
            ))),
            encode(&Message::Sync(SyncMessage::SyncStep2(
                state.document.gate.encode(),
            ))),
        ];
        if !state.presence.is_empty() {
            out.push(encode(&Message::Awareness(state.presence.everyone())));
        }
        out
    }

    /// Handles one binary frame from a connection.
    pub async fn receive(
        self: &Arc<Self>,
        storage: &Storage,
        limits: &Limits,
        connection: u64,
        frame: &[u8],
    ) -> Outcome {
        // yrs reserves memory by the counts a message declares, and reads nested values
        // recursively: check both against what the message holds before it reads any.
        if let Err(why) = roundtable_shared::wire::check_message(frame) {
            return Outcome::Malformed(why.0);
        }
        // yrs panics on some input (in debug builds, on a client id wider than 53
        // bits): like a panic while applying an update, it makes the message malformed.
        let decoded = std::panic::catch_unwind(|| Message::decode_v1(frame));
        let Ok(Ok(message)) = decoded else {
            return Outcome::Malformed("the message is not a valid Yjs sync message");
        };
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let state = self.state.lock().await;
                let diff = state
                    .document
                    .gate
                    .doc()
                    .transact()
                    .encode_state_as_update_v1(&sv);
                if let Some(c) = state.connections.get(&connection) {
                    c.mailbox
                        .post(encode(&Message::Sync(SyncMessage::SyncStep2(diff))));
                }
                Outcome::Applied
            }
            Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                self.client_update(storage, limits, connection, update)
                    .await
            }
            Message::Awareness(update) => self.client_presence(limits, connection, update).await,
            Message::AwarenessQuery => {
                let state = self.state.lock().await;
                if let Some(c) = state.connections.get(&connection) {
                    c.mailbox
                        .post(encode(&Message::Awareness(state.presence.everyone())));
                }
                Outcome::Applied
            }
            Message::Custom(protocol::SAVED, data) => {
                // Earlier messages from this connection have been handled (and their
                // updates stored) before this one is read: answering says so.
                if protocol::decode_saved(&data).is_none() {
                    return Outcome::Malformed("a saved question must carry a number");
                }
                let state = self.state.lock().await;
                if let Some(c) = state.connections.get(&connection) {
                    c.mailbox
                        .post(encode(&Message::Custom(protocol::SAVED, data)));
                }
                Outcome::Applied
            }
            Message::Auth(_) | Message::Custom(..) => {
                Outcome::Malformed("this kind of message is not accepted")
            }
        }
    }

    /// Handles an update from a client. Updates wait in the room's queue; one task
    /// at a time, started by whoever finds no task at it, takes turns on the room until
    /// the queue is empty. Each turn handles every update waiting by then and stores
    /// them in one write, so a busy room waits for one commit per turn, not one per
    /// update, and the senders wait for their answers without queueing for the room.
    async fn client_update(
        self: &Arc<Self>,
        storage: &Storage,
        limits: &Limits,
        connection: u64,
        update: Vec<u8>,
    ) -> Outcome {
        let (answer, outcome) = oneshot::channel();
        let first = {
            let mut queue = self.queue();
            queue.waiting.push(Waiting {
                connection,
                update,
                answer,
            });
            !std::mem::replace(&mut queue.combining, true)
        };
        if first {
            // A task of its own: no connection's loop is held up handling the others'
            // updates, and no connection that closes can cut a turn short.
            tokio::spawn(Arc::clone(self).combine(storage.clone(), limits.clone()));
        }
        // Dropped unanswered only if the turn was cut short (a panic, or the runtime
        // shutting down): the connection then closes, and the client sends it again.
        outcome.await.unwrap_or(Outcome::NotStored)
    }

    /// Takes turns on the room for the updates waiting until none is left. The room
    /// is let go between turns, so joins, presence and the server's own changes take
    /// theirs in between.
    async fn combine(self: Arc<Self>, storage: Storage, limits: Limits) {
        loop {
            let mut turn = Turn {
                room: &self,
                state: self.state.lock().await,
                finished: false,
            };
            let state = &mut *turn.state;
            let waiting = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    // Under the queue's lock: an update pushed after this sees no task
                    // at it and starts one.
                    queue.combining = false;
                    turn.finished = true;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let mut accepted = Vec::new();
            for waiting in waiting {
                self.take_turn(state, &storage, &limits, waiting, &mut accepted)
                    .await;
            }
            self.store_and_relay(state, &storage, &limits, accepted)
                .await;
            turn.finished = true;
        }
    }

    /// Puts one waiting update through the gate.
    async fn take_turn(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        waiting: Waiting,
        accepted: &mut Vec<Accepted>,
    ) {
        let Waiting {
            connection,
            update,
            answer,
        } = waiting;
        match self.admit(state, limits, connection, &update, accepted) {
            Step::Accepted(sender, taken) => accepted.push(Accepted {
                connection,
                sender,
                update: taken.update,
                claims: taken.claims,
                answer,
            }),
            Step::Done(outcome) => {
                let _ = answer.send(outcome);
            }
            Step::Spoiled(refusal) => {
                let outcome = self
                    .spoiled(state, storage, limits, connection, refusal, accepted)
                    .await;
                let _ = answer.send(outcome);
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the gate about one update. An accepted update is applied in memory, not
    /// stored yet: `accepted` holds those before it in this turn.
    fn admit(
        &self,
        state: &mut RoomState,
        limits: &Limits,
        connection: u64,
        update: &[u8],
        accepted: &[Accepted],
    ) -> Step {
        if state.poisoned {
            // The room could not reload its document: nothing more is taken.
            return Step::Done(Outcome::NotStored);
        }
        let Some(peer) = state.connections.get(&connection).map(|c| c.peer.clone()) else {
            return Step::Done(Outcome::Applied);
        };
        let unstored: usize = accepted.iter().map(|a| a.update.len()).sum();
        let over_document =
            state.document.stored_bytes + unstored + update.len() > limits.max_document_bytes;
        let mine: usize = accepted
            .iter()
            .filter(|a| a.sender == peer.participant)
            .map(|a| a.update.len())
            .sum();
        let stored = state.document.bytes_by_sender.get(&peer.participant);
        let over_person =
            stored.copied().unwrap_or(0) + mine + update.len() > limits.max_participant_bytes;
        // Room is kept for deleting: an update that only deletes is always taken.
        if (over_document || over_person) && !only_deletes(update) {
            let why = if over_document { FULL } else { PERSON_FULL };
            return Step::Done(self.refuse(state, connection, why.into()));
        }
        let sender = Sender {
            participant: peer.participant,
            role: peer.role,
        };
        // An id someone else's device goes by in who-is-here is theirs to write under.
        let presence = &state.presence;
        let held_by_another = |client| {
            presence
                .holder(client)
                .is_some_and(|p| p != peer.participant)
        };
        match state
            .document
            .gate
            .admit_holding(sender, update, held_by_another)
        {
            Verdict::Accepted(taken) => Step::Accepted(peer.participant, taken),
            Verdict::Known => Step::Done(Outcome::Applied),
            // It builds on changes the server does not have: nothing of it is taken,
            // and the client is told to send it with what it builds on.
            Verdict::Incomplete(_) => {
                Step::Done(self.refuse(state, connection, Refusal::Incomplete.to_string()))
            }
            Verdict::Refused(refusal) => {
                tracing::debug!(conference = %self.key.0, participant = %peer.participant, %refusal, "update refused");
                Step::Done(self.refuse(state, connection, refusal.to_string()))
            }
            Verdict::Malformed(why) => Step::Done(Outcome::Malformed(why)),
            Verdict::Spoiled(refusal) => Step::Spoiled(refusal),
        }
    }

    /// After the gate admitted an update that must not stay (yrs failed partway, or
    /// its own account of the change is refused): stores what was accepted before it,
    /// reloads the document without it, and says why.
    async fn spoiled(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        connection: u64,
        refusal: Option<Refusal>,
        accepted: &mut Vec<Accepted>,
    ) -> Outcome {
        self.store_and_relay(state, storage, limits, std::mem::take(accepted))
            .await;
        self.restore(state, storage).await;
        match refusal {
            Some(refusal) => {
                tracing::error!(conference = %self.key.0, %refusal, "an update the gate admitted was refused once applied");
                self.refuse(state, connection, refusal.to_string())
            }
            None => Outcome::Malformed(NOT_AN_UPDATE),
        }
    }

    /// Stores the accepted updates in one write, then relays each (in order) and
    /// answers its sender. If they cannot be stored, the document is reloaded without
    /// them and every sender is told.
    async fn store_and_relay(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        accepted: Vec<Accepted>,
    ) {
        if accepted.is_empty() {
            return;
        }
        let first = state.document.next_seq;
        let rows: Vec<(i64, Option<ParticipantId>, &[u8])> = accepted
            .iter()
            .zip(first..)
            .map(|(a, seq)| (seq, Some(a.sender), a.update.as_slice()))
            .collect();
        let claims: Vec<(u64, ParticipantId)> = accepted
            .iter()
            .flat_map(|a| a.claims.iter().map(|c| (c.get(), a.sender)))
            .collect();
        if let Err(e) = storage
            .append_updates(self.key.0, self.key.1, &rows, &claims)
            .await
        {
            tracing::error!(conference = %self.key.0, error = %e, updates = accepted.len(), "could not store updates");
            self.restore(state, storage).await;
            for a in accepted {
                self.refuse(state, a.connection, protocol::NOT_SAVED.into());
                let _ = a.answer.send(Outcome::NotStored);
            }
            return;
        }
        for a in accepted {
            state.document.next_seq += 1;
            state.document.since_snapshot += 1;
            state.document.stored_bytes += a.update.len();
            *state.document.bytes_by_sender.entry(a.sender).or_default() += a.update.len();
            let relay = encode(&Message::Sync(SyncMessage::Update(a.update)));
            broadcast(state, Some(a.connection), relay);
            let _ = a.answer.send(Outcome::Applied);
        }
        if state.document.since_snapshot >= limits.compact_every {
            compact(state, storage, self.key).await;
        }
    }

    /// Drops a change that was applied in memory but must not stay: reloads the
    /// document from storage, or, if that fails, closes the room.
    async fn restore(&self, state: &mut RoomState, storage: &Storage) {
        match load_document(self.key, storage).await {
            Ok(loaded) => state.document = loaded,
            Err(e) => {
                tracing::error!(conference = %self.key.0, error = %e, "could not reload the document");
                state.poison(CloseReason::new(
                    1011,
                    "the server could not reload the conference; reconnecting",
                ));
            }
        }
    }

    fn refuse(&self, state: &mut RoomState, connection: u64, reason: String) -> Outcome {
        if let Some(c) = state.connections.get_mut(&connection) {
            c.mailbox.post(encode(&Message::Auth(Some(reason.clone()))));
        }
        Outcome::Refused(reason)
    }

    async fn client_presence(
        &self,
        limits: &Limits,
        connection: u64,
        update: AwarenessUpdate,
    ) -> Outcome {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let Some(peer) = state.connections.get(&connection).map(|c| c.peer.clone()) else {
            return Outcome::Applied;
        };
        // Nobody goes by an id whose changes belong to someone else.
        let gate = &state.document.gate;
        let owned_by_another = |client| {
            gate.owner(client)
                .is_some_and(|owner| owner != Owner::Participant(peer.participant))
        };
        let changed = state.presence.receive(
            &peer,
            connection,
            update,
            limits.awareness_clients_per_connection,
            owned_by_another,
        );
        if !changed.is_empty() {
            let message = encode(&Message::Awareness(presence::update(changed)));
            broadcast(state, None, message);
        }
        Outcome::Applied
    }

    /// Applies a change made by the server itself (the outcome of a command): stored
    /// first, then relayed to everyone.
    pub async fn server_change(
        &self,
        storage: &Storage,
        change: impl FnOnce(&mut TransactionMut),
    ) -> Result<(), StorageError> {
        let mut state = self.state.lock().await;
        if state.poisoned {
            return Err(StorageError::Corrupt(
                "the conference is being reloaded".into(),
            ));
        }
        let Some(update) = state.document.gate.change(change) else {
            return Ok(());
        };
        let seq = state.document.next_seq;
        if let Err(e) = storage
            .append_update(self.key.0, self.key.1, seq, None, &update)
            .await
        {
            // The change is in memory but not stored, and nobody has seen it: close the
            // room so it is loaded again from storage, without it.
            state.poison(CloseReason::new(
                1011,
                "the server could not save a change; reconnecting",
            ));
            return Err(e);
        }
        state.document.next_seq += 1;
        state.document.since_snapshot += 1;
        state.document.stored_bytes += update.len();
        let relay = encode(&Message::Sync(SyncMessage::Update(update)));
        broadcast(&mut state, None, relay);
        Ok(())
    }

    /// Reads the document.
    pub async fn read<R>(&self, f: impl FnOnce(&yrs::Transaction, &Doc) -> R) -> R {
        let state = self.state.lock().await;
        let doc = state.document.gate.doc();
        let txn = doc.transact();
        f(&txn, doc)
    }

    /// Closes every connection of `participant`.
    pub async fn disconnect(&self, participant: ParticipantId, reason: &CloseReason) {
        let mut state = self.state.lock().await;
        let gone: Vec<u64> = state
            .connections
            .iter()
            .filter(|(_, c)| c.peer.participant == participant)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(c) = state.connections.get(&id) {
                c.mailbox.close(reason.clone());
            }
            state.remove(id);
        }
    }

    /// Drops the presence of clients that stopped renewing it, and tells everyone.
    pub async fn expire_presence(&self, timeout: std::time::Duration) {
        let mut state = self.state.lock().await;
        let gone = state.presence.expire(timeout);
        if !gone.is_empty() {
            let message = encode(&Message::Awareness(presence::update(gone)));
            broadcast(&mut state, None, message);
        }
    }

    /// Removes a connection; says whether it was the last.
    pub(super) async fn leave(&self, connection: u64) -> bool {
        let mut state = self.state.lock().await;
        state.remove(connection);
        state.connections.is_empty()
    }

    pub async fn connection_count(&self) -> usize {
        self.state.lock().await.connections.len()
    }
}

/// Whether an update carries no new content, only deletions (it may also carry what
/// the document has already, as a reconnecting client's does).
fn only_deletes(update: &[u8]) -> bool {
    use yrs::updates::decoder::Decode;
    std::panic::catch_unwind(|| yrs::Update::decode_v1(update))
        .ok()
        .and_then(Result::ok)
        .is_some_and(|u| u.blocks().next().is_none())
}

pub(super) fn broadcast(state: &mut RoomState, except: Option<u64>, message: Outgoing) {
    let mut dropped = Vec::new();
    for (id, c) in &state.connections {
        if Some(*id) == except {
            continue;
        }
        if !c.mailbox.post(message.clone()) {
            dropped.push(*id);
        }
    }
    for id in dropped {
        state.remove(id);
    }
}

/// Writes the document as a snapshot of everything stored so far.
pub(super) async fn compact(state: &mut RoomState, storage: &Storage, key: RoomKey) {
    if state.poisoned {
        return;
    }
    let data = state.document.gate.encode();
    let through = state.document.next_seq - 1;
    match storage.write_snapshot(key.0, key.1, through, &data).await {
        Ok(()) => {
            state.document.since_snapshot = 0;
            state.document.stored_bytes = data.len();
        }
        Err(e) => tracing::warn!(conference = %key.0, error = %e, "could not compact the document"),
    }
}
