//! A conference document in memory, and the registry of open rooms.
//!
//! Invariants:
//! - An update is stored (committed) before it is applied or relayed; an update that
//!   cannot be stored is refused and nobody sees it.
//! - Every update is checked against the sender's role before anything else; a
//!   forbidden update is refused whole and only the sender hears of it. So is any
//!   change to the document of a closed conference (its phase, as the document held
//!   it before the update, is `closed`), and any change to the plan that leaves it
//!   holding a date that is not a real date.
//! - All changes to one room happen under its lock, so the stored order is the order
//!   every client receives.
//! - Nobody silently misses an update: a connection whose queue is full is dropped and
//!   resyncs when it reconnects.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roundtable_shared::doc::{Board, DocumentKind};
use roundtable_shared::guard::ChangeRecorder;
use roundtable_shared::permissions::check_update;
use roundtable_shared::protocol;
use roundtable_shared::{ConferenceId, ParticipantId, Phase, Role};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact, TransactionMut, Update};

use super::Limits;
use super::mailbox::{self, Receiver, Sender};
use crate::storage::{Storage, StorageError};

pub type RoomKey = (ConferenceId, DocumentKind);

/// Why an update to a closed conference's document is refused.
pub const CLOSED_REFUSAL: &str = "the conference is closed, so the record cannot be changed";
/// Why an update with garbage-collected ranges is refused (see
/// `roundtable_shared::doc::carries_collected_ranges`).
pub const COLLECTED_REFUSAL: &str = "changes with garbage-collected content are not accepted: make the Yjs document with gc turned off";

/// A message queued for a connection; encoded once, shared by every recipient. One
/// pointer, not a `Bytes` (four words), so a queue's storage is a quarter the size.
pub type Outgoing = Arc<axum::body::Bytes>;

/// Why the server closes a connection; sent in the WebSocket close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: String,
}

impl CloseReason {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        CloseReason {
            code,
            reason: reason.into(),
        }
    }
}

/// Who is on the other end of a connection, as the server knows them.
#[derive(Debug, Clone)]
pub struct Member {
    pub participant: ParticipantId,
    pub name: String,
    pub role: Role,
}

struct Connection {
    member: Member,
    mailbox: Sender,
}

struct Presence {
    clock: u32,
    json: Arc<str>,
    connection: u64,
}

/// A document as loaded from storage, with what the server keeps beside it.
struct Document {
    doc: Doc,
    /// Records what each transaction on `doc` changed.
    recorder: ChangeRecorder,
    /// The author of each board item, as of the last stored change.
    authors: HashMap<String, String>,
    next_seq: i64,
    since_snapshot: usize,
    stored_bytes: usize,
}

struct RoomState {
    document: Document,
    /// The document in memory may hold a change that is not stored: it must not be
    /// compacted or used again.
    poisoned: bool,
    connections: HashMap<u64, Connection>,
    presence: HashMap<ClientID, Presence>,
}

impl RoomState {
    /// Closes every connection; the room will be loaded afresh from storage.
    fn poison(&mut self, reason: CloseReason) {
        self.poisoned = true;
        for (_, c) in self.connections.drain() {
            c.mailbox.close(reason.clone());
        }
        self.presence.clear();
    }
}

async fn load_document(key: RoomKey, storage: &Storage) -> Result<Document, StorageError> {
    let stored = storage.load_document(key.0, key.1).await?;
    let doc = roundtable_shared::doc::new_document();
    let recorder = ChangeRecorder::attach(&doc);
    let next_seq = stored
        .updates
        .last()
        .or(stored.snapshot.as_ref())
        .map_or(1, |(seq, _)| seq + 1);
    let parts: Vec<&[u8]> = stored
        .snapshot
        .iter()
        .chain(&stored.updates)
        .map(|(_, data)| data.as_slice())
        .collect();
    let stored_bytes = parts.iter().map(|p| p.len()).sum();
    let corrupt = |what: &str| StorageError::Corrupt(format!("{what} in {}", key.0));
    {
        let mut txn = doc.transact_mut();
        for part in &parts {
            let update = Update::decode_v1(part).map_err(|_| corrupt("undecodable update"))?;
            txn.apply_update(update)
                .map_err(|_| corrupt("inapplicable update"))?;
        }
    }
    recorder.take();
    let board = Board::new(&doc);
    let authors = board.authors(&doc.transact()).into_iter().collect();
    Ok(Document {
        doc,
        recorder,
        authors,
        next_seq,
        since_snapshot: stored.updates.len(),
        stored_bytes,
    })
}

pub struct Room {
    key: RoomKey,
    state: Mutex<RoomState>,
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

/// An update checked and applied in memory, to be stored and relayed.
struct Accepted {
    connection: u64,
    sender: ParticipantId,
    update: Vec<u8>,
    answer: oneshot::Sender<Outcome>,
}

/// What checking an update came to.
enum Step {
    /// Applied in memory; the sender's.
    Accepted(ParticipantId),
    /// Answered: refused, malformed, or nothing new.
    Done(Outcome),
}

/// What happened to an update a client sent.
#[derive(Debug)]
pub enum Outcome {
    /// Stored and relayed (or already known).
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

fn encode(message: &Message) -> Outgoing {
    Arc::new(message.encode_v1().into())
}

impl Room {
    async fn load(key: RoomKey, storage: &Storage) -> Result<Room, StorageError> {
        Ok(Room {
            key,
            state: Mutex::new(RoomState {
                document: load_document(key, storage).await?,
                poisoned: false,
                connections: HashMap::new(),
                presence: HashMap::new(),
            }),
            queue: std::sync::Mutex::default(),
        })
    }

    async fn is_poisoned(&self) -> bool {
        self.state.lock().await.poisoned
    }

    pub fn key(&self) -> RoomKey {
        self.key
    }

    /// The messages a new connection starts with: the server's state vector (so the
    /// client sends what the server lacks), the whole document, and who is present.
    fn greeting(state: &RoomState) -> Vec<Outgoing> {
        let txn = state.document.doc.transact();
        let mut out = vec![
            encode(&Message::Sync(SyncMessage::SyncStep1(txn.state_vector()))),
            encode(&Message::Sync(SyncMessage::SyncStep2(
                txn.encode_state_as_update_v1(&StateVector::default()),
            ))),
        ];
        if !state.presence.is_empty() {
            out.push(encode(&Message::Awareness(presence_update(
                state
                    .presence
                    .iter()
                    .map(|(id, p)| (*id, p.clock, p.json.clone())),
            ))));
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
        // yrs panics on some input (in debug builds, on a client id wider than 53
        // bits): like a panic while applying an update, it makes the message malformed.
        let decoded = std::panic::catch_unwind(|| Message::decode_v1(frame));
        let Ok(Ok(message)) = decoded else {
            return Outcome::Malformed("the message is not a valid Yjs sync message");
        };
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let state = self.state.lock().await;
                let diff = state.document.doc.transact().encode_state_as_update_v1(&sv);
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
                let update = presence_update(
                    state
                        .presence
                        .iter()
                        .map(|(id, p)| (*id, p.clock, p.json.clone())),
                );
                if let Some(c) = state.connections.get(&connection) {
                    c.mailbox.post(encode(&Message::Awareness(update)));
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
            for Waiting {
                connection,
                update,
                answer,
            } in waiting
            {
                let step = self
                    .check_and_apply(state, &storage, &limits, connection, &update, &mut accepted)
                    .await;
                match step {
                    Step::Accepted(sender) => accepted.push(Accepted {
                        connection,
                        sender,
                        update,
                        answer,
                    }),
                    Step::Done(outcome) => {
                        let _ = answer.send(outcome);
                    }
                }
            }
            self.store_and_relay(state, &storage, &limits, accepted)
                .await;
            turn.finished = true;
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks one update and applies it to the document in memory. An accepted update
    /// is not stored yet: `accepted` holds those before it, which are stored (and
    /// relayed) first if this one has to be dropped by reloading the document.
    async fn check_and_apply(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        connection: u64,
        update: &[u8],
        accepted: &mut Vec<Accepted>,
    ) -> Step {
        let Some(member) = state.connections.get(&connection).map(|c| c.member.clone()) else {
            return Step::Done(Outcome::Applied);
        };
        let unstored: usize = accepted.iter().map(|a| a.update.len()).sum();
        if state.document.stored_bytes + unstored + update.len() > limits.max_document_bytes {
            return Step::Done(self.refuse(
                state,
                connection,
                "this conference's document is full".into(),
            ));
        }
        // Apply first, then look at what really changed: yrs decides where content
        // lands, so its own account is the one to check. Nothing is stored or relayed
        // until the check passes; a refused change is dropped by reloading the document.
        let (before, closed) = {
            let txn = state.document.doc.transact();
            (
                txn.state_vector(),
                roundtable_shared::doc::read_phase(&txn) == Some(Phase::Closed),
            )
        };
        // Hostile input must not take the server down: a panic inside yrs counts as an
        // update that could not be applied.
        let decoded = std::panic::catch_unwind(|| Update::decode_v1(update));
        let Ok(Ok(decoded)) = decoded else {
            return Step::Done(Outcome::Malformed("the update is not a valid Yjs update"));
        };
        if roundtable_shared::doc::carries_collected_ranges(&decoded) {
            return Step::Done(self.refuse(state, connection, COLLECTED_REFUSAL.into()));
        }
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.document.doc.transact_mut().apply_update(decoded)
        }));
        let changes = state.document.recorder.take();
        if !matches!(applied, Ok(Ok(()))) {
            // Part of it may have been applied before the failure: drop it.
            self.store_and_relay(state, storage, limits, std::mem::take(accepted))
                .await;
            self.restore(state, storage).await;
            return Step::Done(Outcome::Malformed("the update is not a valid Yjs update"));
        }
        if changes.is_empty() && state.document.doc.transact().state_vector() == before {
            return Step::Done(Outcome::Applied);
        }
        let verdict = {
            let board = Board::new(&state.document.doc);
            let txn = state.document.doc.transact();
            check_update(
                member.role,
                member.participant,
                &changes,
                |item| state.document.authors.get(item).cloned(),
                |item| board.entry_now(&txn, item),
            )
        };
        // A closed conference's record is frozen; the plan's dates must be real dates.
        let verdict = verdict
            .map_err(|refusal| refusal.to_string())
            .and_then(|()| {
                if closed {
                    return Err(CLOSED_REFUSAL.to_owned());
                }
                let plan_touched = changes
                    .changes
                    .iter()
                    .any(|c| c.place.root.as_ref() == roundtable_shared::doc::PLAN);
                if plan_touched {
                    roundtable_shared::plan::check(&state.document.doc.transact())?;
                }
                Ok(())
            });
        if let Err(refusal) = verdict {
            tracing::info!(conference = %self.key.0, participant = %member.participant, %refusal, "update refused");
            self.store_and_relay(state, storage, limits, std::mem::take(accepted))
                .await;
            self.restore(state, storage).await;
            return Step::Done(self.refuse(state, connection, refusal));
        }
        // Remember who wrote each item that was created, replaced or deleted (the
        // next update may touch it). If storing fails, the document is reloaded, and
        // this with it.
        let board = Board::new(&state.document.doc);
        let touched: Vec<String> = changes
            .changes
            .iter()
            .filter(|c| {
                c.place.root.as_ref() == roundtable_shared::doc::BOARD && c.place.field.is_none()
            })
            .filter_map(|c| c.place.entry.as_deref().map(str::to_owned))
            .collect();
        for item in touched {
            let author = board.author(&state.document.doc.transact(), &item);
            match author {
                Some(author) => state.document.authors.insert(item, author),
                None => state.document.authors.remove(&item),
            };
        }
        Step::Accepted(member.participant)
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
        if let Err(e) = storage.append_updates(self.key.0, self.key.1, &rows).await {
            tracing::error!(conference = %self.key.0, error = %e, updates = accepted.len(), "could not store updates");
            self.restore(state, storage).await;
            for a in accepted {
                self.refuse(
                    state,
                    a.connection,
                    roundtable_shared::protocol::NOT_SAVED.into(),
                );
                let _ = a.answer.send(Outcome::NotStored);
            }
            return;
        }
        for a in accepted {
            state.document.next_seq += 1;
            state.document.since_snapshot += 1;
            state.document.stored_bytes += a.update.len();
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

    fn refuse(&self, state: &RoomState, connection: u64, reason: String) -> Outcome {
        if let Some(c) = state.connections.get(&connection) {
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
        let mut state = self.state.lock().await;
        let Some(member) = state.connections.get(&connection).map(|c| c.member.clone()) else {
            return Outcome::Applied;
        };
        let mut relay = Vec::new();
        for (client_id, entry) in update.clients {
            match state.presence.get(&client_id) {
                Some(p) if p.connection != connection => continue,
                Some(p) if entry.clock < p.clock => continue,
                None => {
                    let held = state
                        .presence
                        .values()
                        .filter(|p| p.connection == connection)
                        .count();
                    if held >= limits.awareness_clients_per_connection {
                        continue;
                    }
                }
                _ => {}
            }
            if entry.json.as_ref() == "null" {
                if state.presence.remove(&client_id).is_some() {
                    relay.push((client_id, entry.clock, entry.json));
                }
                continue;
            }
            let json = with_server_identity(&entry.json, &member);
            state.presence.insert(
                client_id,
                Presence {
                    clock: entry.clock,
                    json: json.clone(),
                    connection,
                },
            );
            relay.push((client_id, entry.clock, json));
        }
        if !relay.is_empty() {
            let message = encode(&Message::Awareness(presence_update(relay.into_iter())));
            broadcast(&mut state, None, message);
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
        let update = {
            let mut txn = state.document.doc.transact_mut();
            change(&mut txn);
            txn.encode_update_v1()
        };
        let changes = state.document.recorder.take();
        if changes.is_empty() {
            return Ok(());
        }
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
        let txn = state.document.doc.transact();
        f(&txn, &state.document.doc)
    }

    /// Closes every connection of `participant`.
    pub async fn disconnect(&self, participant: ParticipantId, reason: &CloseReason) {
        let mut state = self.state.lock().await;
        let gone: Vec<u64> = state
            .connections
            .iter()
            .filter(|(_, c)| c.member.participant == participant)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(c) = state.connections.remove(&id) {
                c.mailbox.close(reason.clone());
            }
            drop_presence_of(&mut state, id);
        }
    }

    async fn leave(&self, connection: u64) -> bool {
        let mut state = self.state.lock().await;
        state.connections.remove(&connection);
        drop_presence_of(&mut state, connection);
        state.connections.is_empty()
    }

    pub async fn connection_count(&self) -> usize {
        self.state.lock().await.connections.len()
    }
}

fn drop_presence_of(state: &mut RoomState, connection: u64) {
    let gone: Vec<(ClientID, u32)> = state
        .presence
        .iter()
        .filter(|(_, p)| p.connection == connection)
        .map(|(id, p)| (*id, p.clock))
        .collect();
    if gone.is_empty() {
        return;
    }
    for (id, _) in &gone {
        state.presence.remove(id);
    }
    let message = encode(&Message::Awareness(presence_update(
        gone.into_iter()
            .map(|(id, clock)| (id, clock.saturating_add(1), Arc::from("null"))),
    )));
    broadcast(state, None, message);
}

fn presence_update(entries: impl Iterator<Item = (ClientID, u32, Arc<str>)>) -> AwarenessUpdate {
    AwarenessUpdate {
        clients: entries
            .map(|(id, clock, json)| (id, AwarenessUpdateEntry { clock, json }))
            .collect(),
    }
}

/// Replaces whatever identity the client claimed with the one the server knows.
fn with_server_identity(json: &str, member: &Member) -> Arc<str> {
    let mut value = match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    value.insert(
        "user".into(),
        serde_json::json!({
            "id": member.participant.to_string(),
            "name": member.name,
            "role": member.role.as_str(),
        }),
    );
    Arc::from(serde_json::Value::Object(value).to_string())
}

fn broadcast(state: &mut RoomState, except: Option<u64>, message: Outgoing) {
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
        state.connections.remove(&id);
        drop_presence_of(state, id);
    }
}

async fn compact(state: &mut RoomState, storage: &Storage, key: RoomKey) {
    if state.poisoned {
        return;
    }
    let data = state
        .document
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let through = state.document.next_seq - 1;
    match storage.write_snapshot(key.0, key.1, through, &data).await {
        Ok(()) => {
            state.document.since_snapshot = 0;
            state.document.stored_bytes = data.len();
        }
        Err(e) => tracing::warn!(conference = %key.0, error = %e, "could not compact the document"),
    }
}

/// A connection's handle on its room.
pub struct Joined {
    pub room: Arc<Room>,
    pub connection: u64,
    pub mailbox: Receiver,
}

/// Where one room lives in the registry. Its lock is held while the room is loaded,
/// joined, changed by the server or unloaded, so those happen one at a time for one
/// conference document, and never hold up another.
type Slot = Arc<Mutex<Option<Arc<Room>>>>;

/// The rooms open now. A room is loaded on first use and unloaded (after a final
/// compaction) when its last connection leaves.
pub struct Rooms {
    storage: Storage,
    limits: Limits,
    /// Held only to find or drop a slot, never across an `await`.
    open: std::sync::Mutex<HashMap<RoomKey, Slot>>,
    next_connection: AtomicU64,
}

impl Rooms {
    pub fn new(storage: Storage, limits: Limits) -> Rooms {
        Rooms {
            storage,
            limits,
            open: std::sync::Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<RoomKey, Slot>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the slot of `key`, creating it if needed.
    async fn slot(&self, key: RoomKey) -> OwnedMutexGuard<Option<Arc<Room>>> {
        loop {
            let slot = self.registry().entry(key).or_default().clone();
            let guard = slot.clone().lock_owned().await;
            // An empty slot is dropped from the registry by whoever held it last; a
            // waiter on the dropped slot starts again with the current one.
            if self
                .registry()
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, &slot))
            {
                return guard;
            }
        }
    }

    /// Lets go of a slot, dropping it from the registry if it holds no room.
    fn release(&self, key: RoomKey, guard: OwnedMutexGuard<Option<Arc<Room>>>) {
        if guard.is_none() {
            let mut registry = self.registry();
            let slot = OwnedMutexGuard::mutex(&guard);
            if registry
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, slot))
            {
                registry.remove(&key);
            }
        }
    }

    /// The slots open now, for visiting every room.
    fn slots(&self) -> Vec<Slot> {
        self.registry().values().cloned().collect()
    }

    async fn get_or_load(
        &self,
        slot: &mut Option<Arc<Room>>,
        key: RoomKey,
    ) -> Result<Arc<Room>, StorageError> {
        if let Some(room) = slot.as_ref()
            && !room.is_poisoned().await
        {
            return Ok(room.clone());
        }
        *slot = None;
        // Boxed: loading is a large future, and a connection's task would otherwise
        // carry its size for as long as the connection lasts.
        let room = Arc::new(Box::pin(Room::load(key, &self.storage)).await?);
        *slot = Some(room.clone());
        Ok(room)
    }

    /// Adds a connection to the room, loading it if needed.
    pub async fn join(&self, key: RoomKey, member: Member) -> Result<Joined, StorageError> {
        let mut slot = self.slot(key).await;
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mailbox::mailbox(self.limits.outgoing_queue);
        let room = loop {
            let room = match self.get_or_load(&mut slot, key).await {
                Ok(room) => room,
                Err(e) => {
                    self.release(key, slot);
                    return Err(e);
                }
            };
            // The greeting and joining happen under one lock, so no update can fall
            // between the state the connection is sent and the first update it relays.
            let mut state = room.state.lock().await;
            // A room may have been closed since it was found (it may hold changes that
            // were never stored): nobody is greeted from it, it is loaded afresh. One
            // just loaded cannot be, as nothing else uses it before the slot is let go.
            if !state.poisoned {
                let handle = Connection {
                    member,
                    mailbox: sender,
                };
                for message in Room::greeting(&state) {
                    handle.mailbox.post(message);
                }
                state.connections.insert(connection, handle);
                drop(state);
                break room;
            }
            drop(state);
            *slot = None;
        };
        self.release(key, slot);
        Ok(Joined {
            room,
            connection,
            mailbox: receiver,
        })
    }

    /// Removes a connection; unloads the room when it was the last.
    pub async fn leave(&self, room: &Arc<Room>, connection: u64) {
        let mut slot = self.slot(room.key).await;
        if room.leave(connection).await {
            let mut state = room.state.lock().await;
            if state.connections.is_empty() {
                if state.document.since_snapshot > 0 {
                    compact(&mut state, &self.storage, room.key).await;
                }
                if slot.as_ref().is_some_and(|r| Arc::ptr_eq(r, room)) {
                    *slot = None;
                }
            }
        }
        self.release(room.key, slot);
    }

    /// Runs a server change on a conference's document, loading it if needed.
    pub async fn server_change(
        &self,
        key: RoomKey,
        change: impl FnOnce(&mut TransactionMut),
    ) -> Result<(), StorageError> {
        let mut slot = self.slot(key).await;
        let result = match self.get_or_load(&mut slot, key).await {
            Ok(room) => {
                let result = room.server_change(&self.storage, change).await;
                // A change that could not be stored is still in memory: drop the room
                // so it is reloaded from storage without it.
                if result.is_err() || room.connection_count().await == 0 {
                    *slot = None;
                }
                result
            }
            Err(e) => Err(e),
        };
        self.release(key, slot);
        result
    }

    /// Closes every open connection of `participant` to `conference`.
    pub async fn disconnect(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
        reason: CloseReason,
    ) {
        let rooms: Vec<Slot> = self
            .registry()
            .iter()
            .filter(|(key, _)| key.0 == conference)
            .map(|(_, slot)| slot.clone())
            .collect();
        for slot in rooms {
            let room = slot.lock().await.clone();
            if let Some(room) = room {
                room.disconnect(participant, &reason).await;
            }
        }
    }

    /// How many documents are loaded in memory now.
    pub async fn open_count(&self) -> usize {
        let mut count = 0;
        for slot in self.slots() {
            if slot.lock().await.is_some() {
                count += 1;
            }
        }
        count
    }

    /// Closes every connection (at shutdown); clients reconnect by themselves.
    pub async fn close_all(&self) {
        let reason = CloseReason::new(1012, "the server is restarting");
        for slot in self.slots() {
            let room = slot.lock().await.clone();
            if let Some(room) = room {
                let mut state = room.state.lock().await;
                for (_, c) in state.connections.drain() {
                    c.mailbox.close(reason.clone());
                }
                state.presence.clear();
            }
        }
    }

    /// Compacts every open room (at shutdown).
    pub async fn flush(&self) {
        for slot in self.slots() {
            let room = slot.lock().await.clone();
            if let Some(room) = room {
                let mut state = room.state.lock().await;
                if state.document.since_snapshot > 0 {
                    compact(&mut state, &self.storage, room.key).await;
                }
            }
        }
    }

    /// A room's document, loaded for reading (used by tests and exports).
    pub async fn read<R>(
        &self,
        key: RoomKey,
        f: impl FnOnce(&yrs::Transaction, &Doc) -> R,
    ) -> Result<R, StorageError> {
        let mut slot = self.slot(key).await;
        let result = match self.get_or_load(&mut slot, key).await {
            Ok(room) => {
                let result = room.read(f).await;
                if room.connection_count().await == 0 {
                    *slot = None;
                }
                Ok(result)
            }
            Err(e) => Err(e),
        };
        self.release(key, slot);
        result
    }
}
