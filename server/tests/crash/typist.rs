//! Someone typing on the board through a connection that outlives the server, made
//! as the browser's `client/src/live.rs` makes it:
//!
//! - every change of ours is kept until the server answers a "saved?" message sent
//!   after it;
//! - when the connection ends, we go on typing into our own copy and connect again
//!   after a wait that doubles after every failed attempt;
//! - on connecting we send our state vector (SyncStep1), answer the server's with what
//!   it lacks (SyncStep2), and once the server's whole document has arrived, send
//!   again, merged, every change it has not confirmed, and ask "saved?".
//!
//! Everything the server sends us is recorded, so the test can look for it in the
//! database after killing the server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use roundtable_shared::ParticipantId;
use roundtable_shared::doc::{Board, NewItem};
use roundtable_shared::protocol;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

/// The item every minute-taker types into at once.
pub const SHARED_ITEM: &str = "shared";

/// The first wait before connecting again; it doubles after every failed attempt, up
/// to [`MAX_RETRY`]. The browser waits 1 s, doubling up to 30 s: the same shape,
/// shortened so that a cycle of the test takes a second or two.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_millis(800);
/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Typing,
    /// Connected as before, but typing nothing, so that everyone can converge.
    Paused,
    Stopped,
}

/// Who types, and where they may.
#[derive(Debug, Clone)]
pub struct Person {
    /// Starts every word they type, so their words can be told apart.
    pub letter: char,
    pub participant: String,
    pub token: String,
    /// Whether their role may write on the board at all.
    pub writes: bool,
    /// Whether they type into [`SHARED_ITEM`] (chair and minute-takers may).
    pub writes_shared: bool,
    /// Whether they create [`SHARED_ITEM`].
    pub creates_shared: bool,
}

/// A change of ours the server has not confirmed yet.
struct Unsaved {
    number: u32,
    update: Vec<u8>,
}

/// A typist's copy of the document and what happened to it, as the test reads it.
pub struct Replica {
    pub doc: Doc,
    pub connected: bool,
    /// True once the server's whole document has arrived on this connection.
    pub in_step: bool,
    unsaved: Vec<Unsaved>,
    next_number: u32,
    /// Updates received from the server (relayed ones, and its whole document on each
    /// connection), since the test last took them.
    pub received: Vec<Vec<u8>>,
    /// Our own updates the server has confirmed, since the test last took them.
    pub acknowledged: Vec<Vec<u8>>,
    /// The words typed into each item, in order, less those erased.
    pub typed: BTreeMap<String, Vec<String>>,
    /// Refusals from the server. None is expected.
    pub refusals: Vec<String>,
    /// Changes refused because the server lacked what they build on (sent as the
    /// connection opened, before the sync delivered it): kept, and sent again by
    /// connecting again, as the browser's client does.
    pub incomplete: usize,
    pub connections: usize,
    pub edits: usize,
    pub erased: usize,
    /// Changes sent on reconnecting because the server had not confirmed them (sent
    /// before the connection ended, or made while it was down), counted once a
    /// connection.
    pub resent: usize,
}

impl Replica {
    /// How many of our changes the server has not confirmed.
    pub fn unsaved(&self) -> usize {
        self.unsaved.len()
    }
}

pub struct Typist {
    pub person: Person,
    replica: Arc<Mutex<Replica>>,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Typist {
    /// Starts typing, one change every `every`, into the conference at `url`.
    pub fn start(url: String, person: Person, seed: u64, every: Duration) -> Typist {
        let replica = Arc::new(Mutex::new(Replica {
            doc: roundtable_shared::doc::new_document(),
            connected: false,
            in_step: false,
            unsaved: Vec::new(),
            next_number: 1,
            received: Vec::new(),
            acknowledged: Vec::new(),
            typed: BTreeMap::new(),
            refusals: Vec::new(),
            incomplete: 0,
            connections: 0,
            edits: 0,
            erased: 0,
            resent: 0,
        }));
        let (mode, mode_rx) = watch::channel(Mode::Typing);
        let worker = Worker {
            url,
            person: person.clone(),
            replica: replica.clone(),
            mode: mode_rx,
            rng: StdRng::seed_from_u64(seed),
            words: 0,
            items: 0,
            failures: 0,
        };
        let task = tokio::spawn(worker.run(every));
        Typist {
            person,
            replica,
            mode,
            task,
        }
    }

    pub fn replica(&self) -> MutexGuard<'_, Replica> {
        lock(&self.replica)
    }

    /// Changes the mode. Once this returns, no change is typed until typing resumes:
    /// the worker looks at the mode again, under the replica's lock, before each
    /// change. (A tick already due when the pause came would otherwise type one more
    /// change after the test had seen every change confirmed, and the test would read
    /// the store before that change reached it.)
    pub fn set_mode(&self, mode: Mode) {
        let _replica = self.replica();
        self.mode.send_replace(mode);
    }

    /// Whether the typist's task has ended on its own (it panicked).
    pub fn failed(&self) -> bool {
        self.task.is_finished() && *self.mode.borrow() != Mode::Stopped
    }

    pub async fn stop(self) {
        self.set_mode(Mode::Stopped);
        self.task.await.expect("the typist ends cleanly");
    }
}

struct Worker {
    url: String,
    person: Person,
    replica: Arc<Mutex<Replica>>,
    mode: watch::Receiver<Mode>,
    rng: StdRng,
    /// Words typed so far; the next word's number.
    words: u32,
    /// Items added so far.
    items: u32,
    /// Failed attempts to connect since we were last in step.
    failures: u32,
}

/// What to do after a message from the server.
enum Reply {
    Send(Vec<Message>),
    /// Connect again (as the browser does when the server could not store a change).
    Reconnect,
}

fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.min(8))
        .min(MAX_RETRY)
}

fn saved_question(number: u32) -> Message {
    Message::Custom(protocol::SAVED, protocol::encode_saved(number))
}

fn lock(replica: &Mutex<Replica>) -> MutexGuard<'_, Replica> {
    replica.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    fn typing(&self) -> bool {
        self.person.writes && *self.mode.borrow() == Mode::Typing
    }

    fn stopped(&self) -> bool {
        *self.mode.borrow() == Mode::Stopped
    }

    async fn run(mut self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut retry_at = Instant::now();
        loop {
            // Not connected: go on typing while waiting to try again, and while trying.
            let attempt = connect(self.url.clone(), self.person.token.clone(), retry_at);
            tokio::pin!(attempt);
            let socket = loop {
                tokio::select! {
                    socket = &mut attempt => break socket,
                    _ = tick.tick(), if self.typing() => {
                        self.type_something();
                    }
                    changed = self.mode.changed() => {
                        if changed.is_err() || self.stopped() {
                            return;
                        }
                    }
                }
            };
            if let Some(socket) = socket
                && self.connection(socket, &mut tick).await
            {
                return;
            }
            retry_at = Instant::now() + retry_delay(self.failures);
            self.failures = self.failures.saturating_add(1);
        }
    }

    /// Runs one connection until it ends; true if the typist was stopped.
    async fn connection(&mut self, mut socket: Socket, tick: &mut tokio::time::Interval) -> bool {
        let hello = {
            let mut replica = lock(&self.replica);
            replica.connected = true;
            replica.connections += 1;
            let state_vector = replica.doc.transact().state_vector();
            let presence = AwarenessUpdate {
                clients: [(
                    replica.doc.client_id(),
                    AwarenessUpdateEntry {
                        clock: replica.connections as u32,
                        json: "{}".into(),
                    },
                )]
                .into(),
            };
            vec![
                Message::Sync(SyncMessage::SyncStep1(state_vector)),
                Message::Awareness(presence),
            ]
        };
        let mut stopped = false;
        let open = send_all(&mut socket, hello).await;
        while open && !stopped {
            tokio::select! {
                frame = socket.next() => {
                    let reply = match frame {
                        Some(Ok(WsMessage::Binary(bytes))) => self.received(&bytes),
                        Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
                        Some(Ok(_)) => continue,
                    };
                    match reply {
                        Reply::Send(messages) => {
                            if !send_all(&mut socket, messages).await {
                                break;
                            }
                        }
                        Reply::Reconnect => break,
                    }
                }
                _ = tick.tick(), if self.typing() => {
                    let messages = self.type_something();
                    if !send_all(&mut socket, messages).await {
                        break;
                    }
                }
                changed = self.mode.changed() => {
                    if changed.is_err() || self.stopped() {
                        let _ = socket.close(None).await;
                        stopped = true;
                    }
                }
            }
        }
        let mut replica = lock(&self.replica);
        replica.connected = false;
        replica.in_step = false;
        stopped
    }

    /// Handles one message from the server.
    fn received(&mut self, bytes: &[u8]) -> Reply {
        let message = Message::decode_v1(bytes).expect("the server sends valid messages");
        let shared = self.replica.clone();
        let mut replica = lock(&shared);
        match message {
            Message::Sync(SyncMessage::SyncStep1(theirs)) => {
                // The server asks for what it lacks: our unconfirmed changes among them.
                let diff = replica.doc.transact().encode_state_as_update_v1(&theirs);
                Reply::Send(vec![Message::Sync(SyncMessage::SyncStep2(diff))])
            }
            Message::Sync(SyncMessage::SyncStep2(update)) => {
                apply(&replica.doc, &update);
                replica.received.push(update);
                // The server's greeting and its answer to our state vector are both
                // SyncStep2s: the browser sends its unconfirmed changes after each; the
                // figures count them once a connection.
                let first = !replica.in_step;
                replica.in_step = true;
                self.failures = 0;
                // Send everything not yet confirmed, whatever our SyncStep2 carried: the
                // server ignores what it already has.
                let Some(last) = replica.unsaved.last().map(|u| u.number) else {
                    return Reply::Send(Vec::new());
                };
                let updates: Vec<&[u8]> = replica
                    .unsaved
                    .iter()
                    .map(|u| u.update.as_slice())
                    .collect();
                let merged = yrs::merge_updates_v1(&updates).expect("our changes merge");
                if first {
                    replica.resent += replica.unsaved.len();
                }
                Reply::Send(vec![
                    Message::Sync(SyncMessage::Update(merged)),
                    saved_question(last),
                ])
            }
            Message::Sync(SyncMessage::Update(update)) => {
                apply(&replica.doc, &update);
                replica.received.push(update);
                Reply::Send(Vec::new())
            }
            Message::Auth(reason) => {
                let reason = reason.unwrap_or_default();
                if reason == protocol::NOT_SAVED {
                    // Kept, and sent again by connecting again.
                    return Reply::Reconnect;
                }
                if reason == protocol::INCOMPLETE {
                    replica.incomplete += 1;
                    return Reply::Reconnect;
                }
                replica.refusals.push(reason);
                Reply::Send(Vec::new())
            }
            Message::Custom(protocol::SAVED, data) => {
                let number = protocol::decode_saved(&data).expect("a saved answer has a number");
                // Numbers only go up (wrapping, as the browser's do).
                let (confirmed, kept): (Vec<Unsaved>, Vec<Unsaved>) = replica
                    .unsaved
                    .drain(..)
                    .partition(|u| u.number.wrapping_sub(number) as i32 <= 0);
                replica.unsaved = kept;
                replica
                    .acknowledged
                    .extend(confirmed.into_iter().map(|u| u.update));
                Reply::Send(Vec::new())
            }
            _ => Reply::Send(Vec::new()),
        }
    }

    /// Makes one change of our own, unless typing has stopped: adds it to what is kept
    /// until confirmed, and returns the messages that send it if we are in step with
    /// the server.
    fn type_something(&mut self) -> Vec<Message> {
        let shared = self.replica.clone();
        let mut replica = lock(&shared);
        // The mode may have changed since the tick was chosen; it cannot change again
        // while we hold the lock (see `Typist::set_mode`).
        if !self.typing() {
            return Vec::new();
        }
        let word = format!("{}{}", self.person.letter, self.words);
        self.words += 1;
        let own = format!("{}-own", self.person.letter);
        let author: ParticipantId = self.person.participant.parse().expect("a participant id");
        let choice = self.rng.random_range(0..100);
        let (item, erased, update) = {
            let mut txn = replica.doc.transact_mut();
            let board = Board::in_txn(&mut txn);
            let has = |txn: &yrs::TransactionMut, id: &str| board.text(txn, id).is_some();
            let new_item = |txn: &mut yrs::TransactionMut, id: &str, text: &str| {
                board.add_item(
                    txn,
                    NewItem {
                        id,
                        heading: "worries",
                        text,
                        author,
                        said_by: None,
                        children: &[],
                    },
                )
            };
            let typed_here = |id: &str| replica.typed.get(id).and_then(|w| w.last()).cloned();
            let spaced = format!("{word} ");
            let (item, erased) = if !has(&txn, &own) {
                new_item(&mut txn, &own, &spaced);
                (own, None)
            } else if self.person.creates_shared && !has(&txn, SHARED_ITEM) {
                new_item(&mut txn, SHARED_ITEM, &spaced);
                (SHARED_ITEM.to_owned(), None)
            } else if choice < 6 {
                self.items += 1;
                let id = format!("{}-item-{}", self.person.letter, self.items);
                new_item(&mut txn, &id, &spaced);
                (id, None)
            } else if choice < 11
                && let Some(last) = typed_here(&own)
            {
                // Erase the last word we typed into our own item (nobody else types
                // there, so it is where we left it).
                let text = board.text(&txn, &own).expect("our item has a text");
                let content = text.get_string(&txn);
                let at = content.rfind(&format!("{last} ")).expect("our last word");
                text.remove_range(&mut txn, at as u32, last.len() as u32 + 1);
                (own, Some(last))
            } else if self.person.writes_shared && choice < 55 && has(&txn, SHARED_ITEM) {
                board.insert_text(&mut txn, SHARED_ITEM, u32::MAX, &spaced);
                (SHARED_ITEM.to_owned(), None)
            } else {
                board.insert_text(&mut txn, &own, u32::MAX, &spaced);
                (own, None)
            };
            (item, erased, txn.encode_update_v1())
        };
        match erased {
            Some(_) => {
                if let Some(words) = replica.typed.get_mut(&item) {
                    words.pop();
                }
                replica.erased += 1;
            }
            None => replica.typed.entry(item).or_default().push(word),
        }
        let number = replica.next_number;
        replica.next_number = replica.next_number.wrapping_add(1);
        replica.unsaved.push(Unsaved {
            number,
            update: update.clone(),
        });
        replica.edits += 1;
        if replica.in_step {
            vec![
                Message::Sync(SyncMessage::Update(update)),
                saved_question(number),
            ]
        } else {
            Vec::new()
        }
    }
}

/// Connects at `at`, or gives up after [`CONNECT_TIMEOUT`].
async fn connect(url: String, token: String, at: Instant) -> Option<Socket> {
    tokio::time::sleep_until(at).await;
    let mut request = url.into_client_request().expect("a valid address");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a valid header"),
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((socket, _))) => Some(socket),
        _ => None,
    }
}

/// Sends messages in order; false if the connection is gone.
async fn send_all(socket: &mut Socket, messages: Vec<Message>) -> bool {
    for message in messages {
        let frame = WsMessage::Binary(message.encode_v1().into());
        if socket.send(frame).await.is_err() {
            return false;
        }
    }
    true
}

fn apply(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("the server sends valid updates");
    doc.transact_mut()
        .apply_update(update)
        .expect("a server update applies");
}
