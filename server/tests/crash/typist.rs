//! Someone typing on the board through a connection that outlives the server, driving
//! the same client session as the browser's `client/src/live.rs`
//! (`roundtable_shared::session`): every change is kept until the server confirms it,
//! typing goes on into our own copy while the connection is down, and connecting again
//! (after a wait that doubles after every failed attempt) sends the server what it
//! lacks.
//!
//! Everything the server sends us is recorded, so the test can look for it in the
//! database after killing the server. With several servers (`Targets`), each
//! attempt to connect goes to the next, as through a load balancer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use roundtable_shared::ParticipantId;
use roundtable_shared::doc::{Board, NewItem};
use roundtable_shared::session::{Config, Output, Reconnect, Session};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, OffsetKind, Text};

/// The item every minute-taker types into at once.
pub const SHARED_ITEM: &str = "shared";

/// The browser waits 1 s before connecting again, doubling up to 30 s: the same
/// shape, shortened so that a cycle of the test takes a second or two. Text positions
/// count bytes, as in documents made with `doc::new_document`.
const SESSION: Config = Config {
    offset_kind: OffsetKind::Bytes,
    first_wait: Duration::from_millis(50),
    longest_wait: Duration::from_millis(800),
};
/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The addresses a typist connects to, one attempt after another, in turn; the test
/// may change them (take out a server it killed).
pub type Targets = Arc<Mutex<Vec<String>>>;

pub type Socket =
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

/// A typist's copy of the document and what happened to it, as the test reads it.
pub struct Replica {
    session: Session,
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
    /// The address of the last connection opened (read by the nodes test).
    #[allow(dead_code)]
    pub target: String,
}

/// What the session asked the connection to do.
#[derive(Default)]
struct Asked {
    send: Vec<Vec<u8>>,
    reconnect: bool,
    wait: Option<Duration>,
}

impl Replica {
    pub fn doc(&self) -> &Doc {
        self.session.doc()
    }

    pub fn connected(&self) -> bool {
        self.session.connected()
    }

    /// True once the server's whole document has arrived on this connection.
    pub fn in_step(&self) -> bool {
        self.session.in_step()
    }

    /// How many of our changes the server has not confirmed.
    pub fn unsaved(&self) -> usize {
        self.session.unconfirmed()
    }

    /// Takes what the session asks for, noting what the test reads.
    fn asked(&mut self) -> Asked {
        let mut asked = Asked::default();
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Send(frame) => asked.send.push(frame),
                Output::InStep { resent } => self.resent += resent,
                Output::Saved { updates, .. } => self.acknowledged.extend(updates),
                Output::Refused(reason) => self.refusals.push(reason),
                Output::Reconnect(why) => {
                    if why == Reconnect::Incomplete {
                        self.incomplete += 1;
                    }
                    asked.reconnect = true;
                }
                Output::ConnectAfter(wait) => asked.wait = Some(wait),
                Output::Stopped(why) => panic!("the server turned the typist away: {why:?}"),
                Output::Unreadable(what) => panic!("{what}"),
                Output::Changed
                | Output::Replaced
                | Output::Presence(_)
                | Output::UnconfirmedChanged => {}
            }
        }
        asked
    }
}

pub struct Typist {
    pub person: Person,
    replica: Arc<Mutex<Replica>>,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Typist {
    /// Starts typing, one change every `every`, into the conference at `targets`,
    /// connecting first to the one numbered `first`.
    pub fn start(
        targets: Targets,
        first: usize,
        person: Person,
        seed: u64,
        every: Duration,
    ) -> Typist {
        let replica = Arc::new(Mutex::new(Replica {
            session: Session::new(SESSION),
            received: Vec::new(),
            acknowledged: Vec::new(),
            typed: BTreeMap::new(),
            refusals: Vec::new(),
            incomplete: 0,
            connections: 0,
            edits: 0,
            erased: 0,
            resent: 0,
            target: String::new(),
        }));
        let (mode, mode_rx) = watch::channel(Mode::Typing);
        let worker = Worker {
            targets,
            attempts: first,
            person: person.clone(),
            replica: replica.clone(),
            mode: mode_rx,
            rng: StdRng::seed_from_u64(seed),
            words: 0,
            items: 0,
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
    targets: Targets,
    /// Attempts to connect so far (and where the first went): the next goes to the
    /// target after.
    attempts: usize,
    person: Person,
    replica: Arc<Mutex<Replica>>,
    mode: watch::Receiver<Mode>,
    rng: StdRng,
    /// Words typed so far; the next word's number.
    words: u32,
    /// Items added so far.
    items: u32,
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
            let url = {
                let targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
                targets[self.attempts % targets.len()].clone()
            };
            self.attempts += 1;
            let attempt = connect(url.clone(), self.person.token.clone(), retry_at);
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
            let (code, stopped) = match socket {
                Some(socket) => {
                    lock(&self.replica).target = url;
                    self.connection(socket, &mut tick).await
                }
                None => (CLOSE_ABNORMAL, false),
            };
            let wait = {
                let mut replica = lock(&self.replica);
                replica.session.connection_closed(code);
                replica.asked().wait
            };
            if stopped {
                return;
            }
            retry_at = Instant::now() + wait.expect("the session says when to connect again");
        }
    }

    /// Runs one connection until it ends: its close code, and whether the typist was
    /// stopped.
    async fn connection(
        &mut self,
        mut socket: Socket,
        tick: &mut tokio::time::Interval,
    ) -> (u16, bool) {
        let hello = {
            let mut replica = lock(&self.replica);
            replica.connections += 1;
            replica.session.connection_opened();
            let mut hello = replica.asked().send;
            let presence = AwarenessUpdate {
                clients: [(
                    replica.session.client_id(),
                    AwarenessUpdateEntry {
                        clock: replica.connections as u32,
                        json: "{}".into(),
                    },
                )]
                .into(),
            };
            hello.push(Message::Awareness(presence).encode_v1());
            hello
        };
        if !send_all(&mut socket, hello).await {
            return (CLOSE_ABNORMAL, false);
        }
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let asked = match frame {
                        Some(Ok(WsMessage::Binary(bytes))) => self.received(&bytes),
                        Some(Ok(WsMessage::Close(close))) => {
                            return (close.map_or(CLOSE_NO_CODE, |c| c.code.into()), false);
                        }
                        Some(Err(_)) | None => return (CLOSE_ABNORMAL, false),
                        Some(Ok(_)) => continue,
                    };
                    // Connect again (as the browser does when the server could not
                    // store a change, or lacks what one builds on).
                    if asked.reconnect {
                        return (CLOSE_NORMAL, false);
                    }
                    if !send_all(&mut socket, asked.send).await {
                        return (CLOSE_ABNORMAL, false);
                    }
                }
                _ = tick.tick(), if self.typing() => {
                    let frames = self.type_something();
                    if !send_all(&mut socket, frames).await {
                        return (CLOSE_ABNORMAL, false);
                    }
                }
                changed = self.mode.changed() => {
                    if changed.is_err() || self.stopped() {
                        let _ = socket.close(None).await;
                        return (CLOSE_NORMAL, true);
                    }
                }
            }
        }
    }

    /// Handles one message from the server, recording the updates it carries.
    fn received(&mut self, bytes: &[u8]) -> Asked {
        let message = Message::decode_v1(bytes).expect("the server sends valid messages");
        let mut replica = lock(&self.replica);
        if let Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) = message
        {
            replica.received.push(update);
        }
        replica.session.received(bytes);
        replica.asked()
    }

    /// Makes one change of our own, unless typing has stopped, and returns the
    /// messages that send it if we are in step with the server.
    fn type_something(&mut self) -> Vec<Vec<u8>> {
        let shared = self.replica.clone();
        let mut replica = lock(&shared);
        // The mode may have changed since the tick was chosen; it cannot change again
        // while we hold the lock (see `Typist::set_mode`).
        if !self.typing() {
            return Vec::new();
        }
        let replica = &mut *replica;
        let word = format!("{}{}", self.person.letter, self.words);
        self.words += 1;
        let own = format!("{}-own", self.person.letter);
        let author: ParticipantId = self.person.participant.parse().expect("a participant id");
        let choice = self.rng.random_range(0..100);
        let typed = &replica.typed;
        let (item, erased) = replica
            .session
            .edit(|txn| {
                let board = Board::in_txn(txn);
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
                let typed_here = |id: &str| typed.get(id).and_then(|w| w.last()).cloned();
                let spaced = format!("{word} ");
                if !has(txn, &own) {
                    new_item(txn, &own, &spaced);
                    (own, None)
                } else if self.person.creates_shared && !has(txn, SHARED_ITEM) {
                    new_item(txn, SHARED_ITEM, &spaced);
                    (SHARED_ITEM.to_owned(), None)
                } else if choice < 6 {
                    self.items += 1;
                    let id = format!("{}-item-{}", self.person.letter, self.items);
                    new_item(txn, &id, &spaced);
                    (id, None)
                } else if choice < 11
                    && let Some(last) = typed_here(&own)
                {
                    // Erase the last word we typed into our own item (nobody else types
                    // there, so it is where we left it).
                    let text = board.text(txn, &own).expect("our item has a text");
                    let content = text.get_string(txn);
                    let at = content.rfind(&format!("{last} ")).expect("our last word");
                    text.remove_range(txn, at as u32, last.len() as u32 + 1);
                    (own, Some(last))
                } else if self.person.writes_shared && choice < 55 && has(txn, SHARED_ITEM) {
                    board.insert_text(txn, SHARED_ITEM, u32::MAX, &spaced);
                    (SHARED_ITEM.to_owned(), None)
                } else {
                    board.insert_text(txn, &own, u32::MAX, &spaced);
                    (own, None)
                }
            })
            .expect("typing changes the document");
        match erased {
            Some(_) => {
                if let Some(words) = replica.typed.get_mut(&item) {
                    words.pop();
                }
                replica.erased += 1;
            }
            None => replica.typed.entry(item).or_default().push(word),
        }
        replica.edits += 1;
        replica.asked().send
    }
}

/// Close codes, as the session reads them: a normal close (ours), a close frame
/// without a code, and a connection that ended without one (or never opened).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_NO_CODE: u16 = 1005;
const CLOSE_ABNORMAL: u16 = 1006;

/// Connects at `at`, or gives up after [`CONNECT_TIMEOUT`].
pub async fn connect(url: String, token: String, at: Instant) -> Option<Socket> {
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

/// Sends frames in order; false if the connection is gone.
async fn send_all(socket: &mut Socket, frames: Vec<Vec<u8>>) -> bool {
    for frame in frames {
        if socket.send(WsMessage::Binary(frame.into())).await.is_err() {
            return false;
        }
    }
    true
}
