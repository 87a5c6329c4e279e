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
//!
//! On a database several nodes share, one node owns the document at a time (it holds
//! its lease, [`Part::Owner`]) and does all of the above, also for the updates other
//! nodes forward to it; every other node with people in the document follows it
//! (`follower.rs`): it relays what the owner stored and forwards what its own
//! connections send.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

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
use super::cluster::{Cluster, Wake};
use super::mailbox::{self, CloseReason, Outgoing};
use super::peer::Peer;
use super::presence::{self, Presence, Sharing};
use crate::storage::nodes::{Forwarded, PresenceStates};
use crate::storage::{Fence, ForwardVerdict, Lease, Storage, StorageError, StoredDocument};

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
    pub(super) next_seq: i64,
    pub(super) since_snapshot: usize,
    pub(super) stored_bytes: usize,
    /// What each participant's stored updates take.
    bytes_by_sender: HashMap<ParticipantId, usize>,
}

/// Whether this node checks and stores the document's updates, or follows the node
/// that does.
pub(super) enum Part {
    /// This node owns the document, by its `lease` on a database nodes share (none
    /// on SQLite, whose one node owns every document).
    Owner { lease: Option<Lease> },
    /// Another node owns the document (or nobody, for the moment): this one relays
    /// what is stored and forwards its connections' updates (`follower.rs`).
    Follower,
}

impl Part {
    /// What the owner's writes are fenced by; `None` for a follower, which writes
    /// nothing to the document.
    pub(super) fn fence(&self) -> Option<Fence<'_>> {
        match self {
            Part::Owner { lease: None } => Some(Fence::Alone),
            Part::Owner { lease: Some(lease) } => Some(Fence::Lease(lease)),
            Part::Follower => None,
        }
    }
}

/// An update this node forwarded to the document's owner, waiting for its verdict.
pub(super) struct Pending {
    pub(super) connection: u64,
    pub(super) answer: oneshot::Sender<Outcome>,
}

pub(super) struct RoomState {
    pub(super) document: Document,
    /// The document in memory may hold a change that is not stored: it must not be
    /// compacted or used again.
    pub(super) poisoned: bool,
    pub(super) connections: HashMap<u64, Connection>,
    pub(super) presence: Presence,
    pub(super) part: Part,
    /// Updates of this node's connections forwarded to the owner, by their
    /// forwarded row's id, until the verdict comes.
    pub(super) pending: HashMap<i64, Pending>,
    /// The owner's: forwarded updates queued for a turn, not decided yet.
    pub(super) in_flight: HashSet<i64>,
    /// A follower's: forwarded updates of its connections that were stored, by
    /// sequence number, until relayed (not to their sender, who has them).
    pub(super) sent_by: HashMap<i64, u64>,
}

impl RoomState {
    /// Closes every connection; the room will be loaded afresh from storage.
    pub(super) fn poison(&mut self, reason: CloseReason) {
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

/// Loads a document; `fence` is the owner's, `None` for a follower, which writes
/// nothing (a document that does not load whole is quarantined by its owner).
pub(super) async fn load_document(
    key: RoomKey,
    storage: &Storage,
    fence: Option<Fence<'_>>,
) -> Result<Document, StorageError> {
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
            Box::pin(recover(key, storage, fence, &stored)).await?
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
/// chair; nothing is deleted. What was recovered is written as the new snapshot. A
/// follower (no `fence`) only opens what applies: the owner does the writing.
async fn recover(
    key: RoomKey,
    storage: &Storage,
    fence: Option<Fence<'_>>,
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
    let Some(fence) = fence else {
        return Ok(gate);
    };
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
            .quarantine(key.0, key.1, fence, &quarantine, &event)
            .await?;
    }
    // What was recovered becomes the snapshot, so the next load is whole again.
    storage
        .write_snapshot(key.0, key.1, fence, stored.last_seq, &gate.encode())
        .await?;
    Ok(gate)
}

pub struct Room {
    key: RoomKey,
    pub(super) state: Mutex<RoomState>,
    /// Updates from clients waiting for the room, and whether a task is taking turns
    /// on the room for them.
    queue: std::sync::Mutex<Queue>,
    /// The nodes sharing the database, when there may be others.
    pub(super) cluster: Option<Arc<Cluster>>,
    /// Read without the room's lock, by whoever decides whether to wake it: the last
    /// sequence number the room has, and whether it owns the document.
    pub(super) cursor: AtomicI64,
    pub(super) owner: AtomicBool,
    /// What the room is to look at next (`Wake`), and its task's wake-up.
    pub(super) wake: Wake,
    /// Unloaded (or dropped for a fresh load): its task ends.
    closed: AtomicBool,
}

#[derive(Default)]
struct Queue {
    /// At most one per connection: a connection reads its next message only once
    /// its update is answered.
    waiting: Vec<Waiting>,
    /// A task is handling what waits, and will until nothing does.
    combining: bool,
}

pub(super) struct Waiting {
    pub(super) from: From,
    pub(super) update: Vec<u8>,
}

/// Where an update came from, and who waits for what became of it.
pub(super) enum From {
    /// A connection to this node, waiting for its answer.
    Local {
        connection: u64,
        answer: oneshot::Sender<Outcome>,
    },
    /// Forwarded to this node, the owner, by another (or by this one, before it
    /// owned the document): its verdict is stored.
    Forwarded(Forwarded),
}

/// A verdict on a forwarded update, with the update's row.
struct Decided {
    forwarded: Forwarded,
    verdict: ForwardVerdict,
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
    from: From,
    /// `None` for the server's own change, forwarded by another node.
    sender: Option<ParticipantId>,
    update: Vec<u8>,
    /// The client ids it is the first to write under, stored with it as its sender's.
    claims: Vec<ClientID>,
}

/// What the gate came to, as the room acts on it.
enum Step {
    /// Applied in memory; the sender's (none: the server's), and the update as the
    /// document took it.
    Accepted(Option<ParticipantId>, Admitted),
    /// Answered: refused, malformed, or nothing new.
    Done(Outcome),
    /// Applied, but it must not stay: the document is to be reloaded.
    Spoiled(Option<Refusal>),
}

/// What became of a change of the server's own.
pub(super) enum ServerChange {
    /// Stored and relayed (or there was nothing to change).
    Done,
    /// Forwarded to the document's owner, as the forwarded row with this id.
    Forwarded(i64),
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

pub(super) const NOT_AN_UPDATE: &str = "the update is not a valid Yjs update";

/// Why connections close when another node has taken the document over while this
/// one still held changes it could not store.
const TAKEN_OVER: &str = "another server took this conference over; reconnecting";

impl Room {
    /// Loads a document: as its owner where there is no other node, or where this
    /// one takes the lease; as a follower where another node holds it.
    pub(super) async fn load(
        key: RoomKey,
        storage: &Storage,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<Room, StorageError> {
        let part = match &cluster {
            None => Part::Owner { lease: None },
            Some(cluster) => match cluster.acquire(key).await? {
                Some(lease) => Part::Owner { lease: Some(lease) },
                None => Part::Follower,
            },
        };
        let document = match load_document(key, storage, part.fence()).await {
            Ok(document) => document,
            Err(e) => {
                if let (Some(cluster), Part::Owner { lease: Some(lease) }) = (&cluster, &part) {
                    cluster.give_up(key, lease).await;
                }
                return Err(e);
            }
        };
        let owner = matches!(part, Part::Owner { .. });
        Ok(Room {
            key,
            cursor: AtomicI64::new(document.next_seq - 1),
            owner: AtomicBool::new(owner),
            state: Mutex::new(RoomState {
                document,
                poisoned: false,
                connections: HashMap::new(),
                presence: match &cluster {
                    Some(cluster) => Presence::shared(Sharing::new(cluster.clone(), key)),
                    None => Presence::default(),
                },
                part,
                pending: HashMap::new(),
                in_flight: HashSet::new(),
                sent_by: HashMap::new(),
            }),
            queue: std::sync::Mutex::default(),
            cluster,
            wake: Wake::default(),
            closed: AtomicBool::new(false),
        })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Lets the document go as the room is unloaded (or dropped for a fresh load):
    /// an owner gives its lease up, so that another node with people in the
    /// document takes it over at once, and the room's task ends.
    pub(super) async fn release(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let Some(cluster) = &self.cluster else {
            return;
        };
        let mut state = self.state.lock().await;
        if let Part::Owner { lease: Some(lease) } = &state.part {
            cluster.give_up(self.key, lease).await;
        }
        state.part = Part::Follower;
        self.owner.store(false, Ordering::Relaxed);
        drop(state);
        cluster.close(self);
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
            // Earlier messages from this connection have been handled before this one
            // is read, forwarded ones too: their verdicts have come back.
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
        self.enqueue(
            storage,
            limits,
            [Waiting {
                from: From::Local { connection, answer },
                update,
            }],
        );
        // Dropped unanswered only if the turn was cut short (a panic, or the runtime
        // shutting down): the connection then closes, and the client sends it again.
        let Some(cluster) = &self.cluster else {
            return outcome.await.unwrap_or(Outcome::NotStored);
        };
        // A forwarded update waits for the owner's verdict, and the owner may be
        // gone: after a while the client is told it was not saved (it keeps it, and
        // sends it again when it reconnects, to whichever node owns it by then).
        match tokio::time::timeout(cluster.config().forward_timeout, outcome).await {
            Ok(outcome) => outcome.unwrap_or(Outcome::NotStored),
            Err(_) => {
                let mut state = self.state.lock().await;
                self.refuse(&mut state, connection, protocol::NOT_SAVED.into());
                Outcome::NotStored
            }
        }
    }

    /// Queues updates for the room's turns, and starts a task taking them if none is.
    fn enqueue(
        self: &Arc<Self>,
        storage: &Storage,
        limits: &Limits,
        waiting: impl IntoIterator<Item = Waiting>,
    ) {
        let first = {
            let mut queue = self.queue();
            queue.waiting.extend(waiting);
            !queue.waiting.is_empty() && !std::mem::replace(&mut queue.combining, true)
        };
        if first {
            // A task of its own: no connection's loop is held up handling the others'
            // updates, and no connection that closes can cut a turn short.
            tokio::spawn(Arc::clone(self).combine(storage.clone(), limits.clone()));
        }
    }

    /// Queues updates forwarded to this node, the owner, for its turns.
    pub(super) fn enqueue_forwarded(
        self: &Arc<Self>,
        storage: &Storage,
        limits: &Limits,
        forwarded: Vec<Forwarded>,
    ) {
        let waiting = forwarded.into_iter().map(|f| Waiting {
            update: f.data.clone(),
            from: From::Forwarded(f),
        });
        self.enqueue(storage, limits, waiting);
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
            if matches!(state.part, Part::Follower) {
                self.forward(state, waiting).await;
                turn.finished = true;
                continue;
            }
            let mut accepted = Vec::new();
            let mut decided = Vec::new();
            for waiting in waiting {
                self.take_turn(
                    state,
                    &storage,
                    &limits,
                    waiting,
                    &mut accepted,
                    &mut decided,
                )
                .await;
            }
            self.store_and_relay(state, &storage, &limits, accepted, &mut decided)
                .await;
            turn.finished = true;
        }
    }

    /// Puts one waiting update through the gate. What becomes of a forwarded one is
    /// a verdict, stored with the turn's updates (`decided`).
    async fn take_turn(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        waiting: Waiting,
        accepted: &mut Vec<Accepted>,
        decided: &mut Vec<Decided>,
    ) {
        let Waiting { from, update } = waiting;
        let outcome = match self.admit(state, limits, &from, &update, accepted) {
            Step::Accepted(sender, taken) => {
                accepted.push(Accepted {
                    from,
                    sender,
                    update: taken.update,
                    claims: taken.claims,
                });
                return;
            }
            Step::Done(outcome) => outcome,
            Step::Spoiled(refusal) => {
                self.spoiled(state, storage, limits, &from, refusal, accepted, decided)
                    .await
            }
        };
        match from {
            From::Local { answer, .. } => {
                let _ = answer.send(outcome);
            }
            From::Forwarded(forwarded) => {
                let verdict = match outcome {
                    Outcome::Applied => ForwardVerdict::Known,
                    Outcome::Refused(reason) => ForwardVerdict::Refused(reason),
                    Outcome::Malformed(_) => ForwardVerdict::Malformed,
                    // Nothing decided: it waits, and a later turn takes it again.
                    Outcome::NotStored => {
                        state.in_flight.remove(&forwarded.id);
                        return;
                    }
                };
                decided.push(Decided { forwarded, verdict });
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
        from: &From,
        update: &[u8],
        accepted: &[Accepted],
    ) -> Step {
        if state.poisoned {
            // The room could not reload its document: nothing more is taken.
            return Step::Done(Outcome::NotStored);
        }
        // Who sends it: as this node knows them, or as the node it reached did.
        let (sender, connection) = match from {
            From::Local { connection, .. } => match state.connections.get(connection) {
                Some(c) => (
                    Sender {
                        participant: c.peer.participant,
                        role: c.peer.role,
                    },
                    Some(*connection),
                ),
                None => return Step::Done(Outcome::Applied),
            },
            From::Forwarded(f) => match f.sender {
                Some((participant, role)) => (Sender { participant, role }, None),
                // The server's own change, made where the command was handled.
                None => return self.admit_server(state, update),
            },
        };
        let peer = sender;
        let unstored: usize = accepted.iter().map(|a| a.update.len()).sum();
        let over_document =
            state.document.stored_bytes + unstored + update.len() > limits.max_document_bytes;
        let mine: usize = accepted
            .iter()
            .filter(|a| a.sender == Some(peer.participant))
            .map(|a| a.update.len())
            .sum();
        let stored = state.document.bytes_by_sender.get(&peer.participant);
        let over_person =
            stored.copied().unwrap_or(0) + mine + update.len() > limits.max_participant_bytes;
        // Room is kept for deleting: an update that only deletes is always taken.
        if (over_document || over_person) && !only_deletes(update) {
            let why = if over_document { FULL } else { PERSON_FULL };
            return Step::Done(self.refuse_from(state, connection, why.into()));
        }
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
            Verdict::Accepted(taken) => Step::Accepted(Some(peer.participant), taken),
            Verdict::Known => Step::Done(Outcome::Applied),
            // It builds on changes the server does not have: nothing of it is taken,
            // and the client is told to send it with what it builds on.
            Verdict::Incomplete(_) => {
                Step::Done(self.refuse_from(state, connection, Refusal::Incomplete.to_string()))
            }
            Verdict::Refused(refusal) => {
                tracing::debug!(conference = %self.key.0, participant = %peer.participant, %refusal, "update refused");
                Step::Done(self.refuse_from(state, connection, refusal.to_string()))
            }
            Verdict::Malformed(why) => Step::Done(Outcome::Malformed(why)),
            Verdict::Spoiled(refusal) => Step::Spoiled(refusal),
        }
    }

    /// Asks the gate about a change the server made on another node (the outcome of
    /// a command handled there), forwarded to this one, the owner.
    fn admit_server(&self, state: &mut RoomState, update: &[u8]) -> Step {
        match state.document.gate.admit_server(update) {
            Verdict::Accepted(taken) => Step::Accepted(None, taken),
            Verdict::Known => Step::Done(Outcome::Applied),
            Verdict::Incomplete(_) => Step::Done(Outcome::Refused(Refusal::Incomplete.to_string())),
            Verdict::Refused(refusal) => Step::Done(Outcome::Refused(refusal.to_string())),
            Verdict::Malformed(why) => Step::Done(Outcome::Malformed(why)),
            Verdict::Spoiled(refusal) => Step::Spoiled(refusal),
        }
    }

    /// After the gate admitted an update that must not stay (yrs failed partway, or
    /// its own account of the change is refused): stores what was accepted before it,
    /// reloads the document without it, and says why.
    #[allow(clippy::too_many_arguments)]
    async fn spoiled(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        from: &From,
        refusal: Option<Refusal>,
        accepted: &mut Vec<Accepted>,
        decided: &mut Vec<Decided>,
    ) -> Outcome {
        self.store_and_relay(state, storage, limits, std::mem::take(accepted), decided)
            .await;
        self.restore(state, storage).await;
        let connection = match from {
            From::Local { connection, .. } => Some(*connection),
            From::Forwarded(_) => None,
        };
        match refusal {
            Some(refusal) => {
                tracing::error!(conference = %self.key.0, %refusal, "an update the gate admitted was refused once applied");
                self.refuse_from(state, connection, refusal.to_string())
            }
            None => Outcome::Malformed(NOT_AN_UPDATE),
        }
    }

    /// Stores the accepted updates in one write, with the verdicts on forwarded
    /// updates the turn came to, then relays each (in order) and answers its sender.
    /// If they cannot be stored, the document is reloaded without them and every
    /// sender is told; forwarded ones wait for a later turn. If another node has
    /// taken the document over, nothing was stored, and the room closes.
    async fn store_and_relay(
        &self,
        state: &mut RoomState,
        storage: &Storage,
        limits: &Limits,
        accepted: Vec<Accepted>,
        decided: &mut Vec<Decided>,
    ) {
        if accepted.is_empty() && decided.is_empty() {
            return;
        }
        let first = state.document.next_seq;
        let rows: Vec<(i64, Option<ParticipantId>, &[u8])> = accepted
            .iter()
            .zip(first..)
            .map(|(a, seq)| (seq, a.sender, a.update.as_slice()))
            .collect();
        let claims: Vec<(u64, ParticipantId)> = accepted
            .iter()
            .flat_map(|a| {
                a.claims
                    .iter()
                    .filter_map(move |c| Some((c.get(), a.sender?)))
            })
            .collect();
        let verdicts: Vec<(i64, ForwardVerdict)> = accepted
            .iter()
            .zip(first..)
            .filter_map(|(a, seq)| match &a.from {
                From::Forwarded(f) => Some((f.id, ForwardVerdict::Accepted(seq))),
                From::Local { .. } => None,
            })
            .chain(decided.iter().map(|d| (d.forwarded.id, d.verdict.clone())))
            .collect();
        let stored = match state.part.fence() {
            Some(fence) => {
                storage
                    .append_updates(self.key.0, self.key.1, fence, &rows, &claims, &verdicts)
                    .await
            }
            None => Err(StorageError::NotOwner),
        };
        let decided = std::mem::take(decided);
        if let Err(e) = stored {
            for d in &decided {
                state.in_flight.remove(&d.forwarded.id);
            }
            if matches!(e, StorageError::NotOwner) {
                tracing::warn!(conference = %self.key.0, document = self.key.1.as_str(), updates = accepted.len(),
                    "the document's lease is lost: nothing stored, and its connections close");
                self.taken_over(state).await;
                for a in accepted {
                    if let From::Local { answer, .. } = a.from {
                        let _ = answer.send(Outcome::NotStored);
                    }
                }
                return;
            }
            tracing::error!(conference = %self.key.0, error = %e, updates = accepted.len(), "could not store updates");
            self.restore(state, storage).await;
            for a in accepted {
                match a.from {
                    From::Local { connection, answer } => {
                        self.refuse(state, connection, protocol::NOT_SAVED.into());
                        let _ = answer.send(Outcome::NotStored);
                    }
                    From::Forwarded(f) => {
                        state.in_flight.remove(&f.id);
                    }
                }
            }
            return;
        }
        for (a, seq) in accepted.into_iter().zip(first..) {
            state.document.next_seq += 1;
            state.document.since_snapshot += 1;
            state.document.stored_bytes += a.update.len();
            if let Some(sender) = a.sender {
                *state.document.bytes_by_sender.entry(sender).or_default() += a.update.len();
            }
            let relay = encode(&Message::Sync(SyncMessage::Update(a.update)));
            match a.from {
                From::Local { connection, answer } => {
                    broadcast(state, Some(connection), relay);
                    let _ = answer.send(Outcome::Applied);
                }
                From::Forwarded(f) => {
                    // Forwarded by this node before it owned the document: its sender
                    // is here, and waits.
                    let mine = self.is_mine(&f);
                    broadcast(state, mine.then_some(f.connection), relay);
                    state.in_flight.remove(&f.id);
                    if mine {
                        resolve(state, f.id, ForwardVerdict::Accepted(seq));
                    }
                }
            }
        }
        for d in decided {
            state.in_flight.remove(&d.forwarded.id);
            if self.is_mine(&d.forwarded) {
                resolve(state, d.forwarded.id, d.verdict);
            }
        }
        self.cursor
            .store(state.document.next_seq - 1, Ordering::Relaxed);
        if state.document.since_snapshot >= limits.compact_every {
            compact(state, storage, self.key).await;
        }
    }

    /// Whether a forwarded update reached this node.
    fn is_mine(&self, forwarded: &Forwarded) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| **c.node() == *forwarded.node)
    }

    /// After a write was fenced off: another node owns the document now, and this
    /// one's copy holds changes that were never stored. Its connections close (their
    /// clients keep what was not confirmed, and reconnect), and the room is loaded
    /// afresh by whoever comes next.
    pub(super) async fn taken_over(&self, state: &mut RoomState) {
        if let (Some(cluster), Part::Owner { lease: Some(lease) }) = (&self.cluster, &state.part) {
            cluster.forget(self.key, lease);
        }
        state.part = Part::Follower;
        self.owner.store(false, Ordering::Relaxed);
        state.poison(CloseReason::new(1013, TAKEN_OVER));
        state.in_flight.clear();
    }

    /// Drops a change that was applied in memory but must not stay: reloads the
    /// document from storage, or, if that fails, closes the room.
    async fn restore(&self, state: &mut RoomState, storage: &Storage) {
        match load_document(self.key, storage, state.part.fence()).await {
            Ok(loaded) => {
                state.document = loaded;
                // Forwarded updates drained before are taken again, against it.
                state.in_flight.clear();
            }
            Err(e) => {
                tracing::error!(conference = %self.key.0, error = %e, "could not reload the document");
                state.poison(CloseReason::new(
                    1011,
                    "the server could not reload the conference; reconnecting",
                ));
            }
        }
    }

    pub(super) fn refuse(&self, state: &mut RoomState, connection: u64, reason: String) -> Outcome {
        self.refuse_from(state, Some(connection), reason)
    }

    /// Refuses an update: its sender hears why, if it is connected here.
    fn refuse_from(
        &self,
        state: &mut RoomState,
        connection: Option<u64>,
        reason: String,
    ) -> Outcome {
        if let Some(c) = connection.and_then(|c| state.connections.get_mut(&c)) {
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
    /// first, then relayed to everyone. On a node that does not own the document
    /// (and cannot take it over), the change is made on a copy of this node's and
    /// forwarded to the owner: the caller waits for its verdict, with the room let
    /// go (`ServerChange::Forwarded`).
    pub(super) async fn server_change(
        &self,
        storage: &Storage,
        change: impl FnOnce(&mut TransactionMut),
    ) -> Result<ServerChange, StorageError> {
        let mut state = self.state.lock().await;
        if state.poisoned {
            return Err(StorageError::Corrupt(
                "the conference is being reloaded".into(),
            ));
        }
        // Only the owner writes: a follower takes the document over if nobody holds it.
        if matches!(state.part, Part::Follower) && !self.take_over(&mut state, storage).await? {
            return self.forward_server_change(&state, change).await;
        }
        let Some(update) = state.document.gate.change(change) else {
            return Ok(ServerChange::Done);
        };
        let seq = state.document.next_seq;
        let Some(fence) = state.part.fence() else {
            return Err(StorageError::NotOwner);
        };
        if let Err(e) = storage
            .append_update(self.key.0, self.key.1, fence, seq, None, &update)
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
        self.cursor.store(seq, Ordering::Relaxed);
        let relay = encode(&Message::Sync(SyncMessage::Update(update)));
        broadcast(&mut state, None, relay);
        Ok(ServerChange::Done)
    }

    /// Makes the server's change on a copy of this follower's document, under a
    /// client id of its own (this node's copy only ever holds what is stored), and
    /// forwards it to the owner.
    async fn forward_server_change(
        &self,
        state: &RoomState,
        change: impl FnOnce(&mut TransactionMut),
    ) -> Result<ServerChange, StorageError> {
        let Some(cluster) = &self.cluster else {
            return Err(StorageError::NotOwner);
        };
        let copy = roundtable_shared::doc::new_document();
        let whole = yrs::Update::decode_v1(&state.document.gate.encode())
            .map_err(|e| StorageError::Corrupt(format!("this node's copy: {e}")))?;
        copy.transact_mut()
            .apply_update(whole)
            .map_err(|e| StorageError::Corrupt(format!("this node's copy: {e}")))?;
        let update = {
            let mut txn = copy.transact_mut();
            change(&mut txn);
            txn.encode_update_v1()
        };
        let changed = yrs::Update::decode_v1(&update).is_ok_and(|u| !u.is_empty());
        if !changed {
            return Ok(ServerChange::Done);
        }
        let ids = cluster
            .nodes()
            .forward(self.key, cluster.node(), &[(0, None, &update)])
            .await?;
        let id = ids.first().copied().ok_or(StorageError::NotOwner)?;
        Ok(ServerChange::Forwarded(id))
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

    /// Takes the presence states another node shares, and relays what changed.
    pub(super) async fn presence_from(&self, node: &str, states: PresenceStates) {
        let mut state = self.state.lock().await;
        let states = states
            .into_iter()
            .map(|(client, clock, json)| (ClientID::new(client), clock, json))
            .collect();
        let changed = state.presence.receive_from(node, states);
        if !changed.is_empty() {
            let message = encode(&Message::Awareness(presence::update(changed)));
            broadcast(&mut state, None, message);
        }
    }

    /// Sends this node's presence states to the others (one opened the document).
    pub(super) async fn share_presence(&self) {
        self.state.lock().await.presence.share_all();
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
    // Only the owner compacts.
    let Some(fence) = state.part.fence() else {
        return;
    };
    let data = state.document.gate.encode();
    let through = state.document.next_seq - 1;
    match storage
        .write_snapshot(key.0, key.1, fence, through, &data)
        .await
    {
        Ok(()) => {
            state.document.since_snapshot = 0;
            state.document.stored_bytes = data.len();
        }
        Err(e) => tracing::warn!(conference = %key.0, error = %e, "could not compact the document"),
    }
}

/// Answers the sender of an update this node forwarded, with the owner's verdict.
pub(super) fn resolve(state: &mut RoomState, id: i64, verdict: ForwardVerdict) {
    let Some(pending) = state.pending.remove(&id) else {
        return;
    };
    let outcome = match verdict {
        ForwardVerdict::Accepted(_) | ForwardVerdict::Known => Outcome::Applied,
        ForwardVerdict::Refused(reason) => {
            // As on one node: only its sender hears why.
            if let Some(c) = state.connections.get(&pending.connection) {
                c.mailbox.post(encode(&Message::Auth(Some(reason.clone()))));
            }
            Outcome::Refused(reason)
        }
        ForwardVerdict::Malformed => Outcome::Malformed(NOT_AN_UPDATE),
    };
    let _ = pending.answer.send(outcome);
}
