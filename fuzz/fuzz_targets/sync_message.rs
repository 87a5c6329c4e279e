//! Sync messages through the server's real handling of one binary WebSocket frame,
//! `Room::receive`, from a connection of every role, on both documents of a
//! conference created through the real command, with SQLite storage.
//!
//! The first byte picks who sends (and, for roles that may read it, the restricted
//! document when it is 128 or more); the second picks the mode:
//! - even: the rest is one frame, as it came off the socket. The ids
//!   `00000000-0000-4000-8000-000000000001` and `…-000000000002` in it are replaced
//!   by the sender's participant id and another professional's (same length, so the
//!   encoding stays valid), so seeds can hold items that the sender really authors.
//! - 1 modulo 4: the rest drives replicas (yrs documents synced from the server's,
//!   like the browser's) through edits of the board and the plan, writes to parts
//!   only the server writes, sends in different shapes (one update per transaction,
//!   merged, as SyncStep2, with a gap, corrupted, cut short), sync step 1, "saved?"
//!   questions and the server changing the phase, so the fuzzer reaches past
//!   decoding into the permission checks.
//! - 3 modulo 4: the rest drives browsers: the client's own session
//!   (`shared::session`, as `client/src/live.rs` drives it) for each person, through
//!   the same edits, connections that end and open again, and the server changing the
//!   phase. Once nothing more is in flight, a browser with every change confirmed
//!   holds exactly what the server holds.
//!
//! After every message it checks what a user would notice: nobody changes the parts
//! only the server writes; a role that writes nothing, or anyone in a closed
//! conference, changes nothing at all; an update is never refused because it could
//! not be stored; no connection is closed. The conference is replaced (and deleted)
//! once it has taken in enough, so memory and the database stay bounded.

#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use roundtable_fuzz::connections::{Connections, Seat};
use roundtable_fuzz::{Conference, Input, Server, panics, replace_all};
use roundtable_server::sync::room::{Outcome, Room};
use roundtable_shared::doc::{self, Board, DocumentKind, NewItem, SaidBy};
use roundtable_shared::session::{self, Output, Session};
use roundtable_shared::{ChildId, ParticipantId, Phase, Role, permissions, plan, protocol};
use uuid::Uuid;
use yrs::sync::{Message, SyncMessage};
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, ClientID, Doc, Map, MapPrelim, MapRef, OffsetKind, Options, Out, ReadTxn, StateVector,
    Text, TextPrelim, Transact, TransactionMut, Update, WriteTxn,
};

/// Who is invited to the fixture conference, after the chair.
const INVITED: [Role; 9] = [
    Role::MinuteTaker,
    Role::Professional,
    Role::Professional,
    Role::Parent,
    Role::Carer,
    Role::Supporter,
    Role::Child,
    Role::Advocate,
    Role::RoomDisplay,
];
/// Index in `Conference::people` of a professional who is not the sender, for items
/// written by someone else.
const OTHER_PROFESSIONAL: usize = 3;

const ME: &[u8] = b"00000000-0000-4000-8000-000000000001";
const OTHER: &[u8] = b"00000000-0000-4000-8000-000000000002";

/// A conference is replaced once it has accepted this many bytes of updates, or
/// handled this many messages.
const MOST_ACCEPTED_BYTES: usize = 64 * 1024;
const MOST_MESSAGES: usize = 2000;
/// Bounds on one structured input.
const MOST_OPS: usize = 64;
const MOST_SENDS: usize = 16;

const FROM_SERVER: &str = "server";

struct Fixture {
    conference: Conference,
    connections: Connections,
    accepted_bytes: usize,
    messages: usize,
}

struct Harness {
    server: Server,
    fixture: Fixture,
}

static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| {
        let server = Server::start();
        let fixture = server.block_on(Fixture::new(&server));
        Mutex::new(Harness { server, fixture })
    });
    let mut harness = harness.lock().unwrap_or_else(|e| e.into_inner());
    roundtable_fuzz::history::record(data);
    let Harness { server, fixture } = &mut *harness;
    panics::run(|| server.block_on(fixture.run(server, data)));
});

/// What matters of a document, before and after a message.
struct Look {
    state: StateVector,
    server_only: Vec<Option<Any>>,
    closed: bool,
}

async fn look(room: &Room) -> Look {
    room.read(|txn, _| Look {
        state: txn.state_vector(),
        server_only: [doc::META, doc::ROSTER, doc::SCALES, doc::DECISIONS]
            .iter()
            .map(|root| txn.get_map(*root).map(|m| m.to_json(txn)))
            .collect(),
        closed: doc::read_phase(txn) == Some(Phase::Closed),
    })
    .await
}

impl Fixture {
    async fn new(server: &Server) -> Fixture {
        Fixture {
            conference: server.conference(server.chair_session(), &INVITED).await,
            connections: Connections::default(),
            accepted_bytes: 0,
            messages: 0,
        }
    }

    async fn run(&mut self, server: &Server, data: &[u8]) {
        let mut input = Input::new(data);
        let who = input.byte();
        let mode = input.byte();
        let person = usize::from(who) % self.conference.people.len();
        let role = self.conference.people[person].role;
        let kind = if who >= 128 && DocumentKind::Restricted.readable_by(role) {
            DocumentKind::Restricted
        } else {
            DocumentKind::Shared
        };
        if mode.is_multiple_of(2) {
            let me = self.conference.people[person].id.to_string();
            let other = self.conference.people[OTHER_PROFESSIONAL].id.to_string();
            let frame = replace_all(input.rest(), ME, me.as_bytes());
            let frame = replace_all(&frame, OTHER, other.as_bytes());
            self.deliver(server, (person, kind), &frame).await;
            self.connections.take_all();
        } else if mode % 4 == 3 {
            Browsers::new(person, kind)
                .run(self, server, &mut input)
                .await;
        } else {
            Edits::new(self, server, person, kind, &mut input)
                .await
                .run(self, server, &mut input)
                .await;
        }
        if self.accepted_bytes > MOST_ACCEPTED_BYTES || self.messages > MOST_MESSAGES {
            self.connections.leave_all(server).await;
            server
                .delete_conference(server.chair_session(), self.conference.id)
                .await;
            *self = Fixture::new(server).await;
            roundtable_fuzz::history::restart();
        }
    }

    /// Hands one frame to the room as the connection of `seat` would, and checks
    /// what it did.
    async fn deliver(&mut self, server: &Server, seat: Seat, frame: &[u8]) -> Outcome {
        let role = self.conference.people[seat.0].role;
        let joined = self.connections.get(server, &self.conference, seat).await;
        let (room, connection) = (Arc::clone(&joined.room), joined.connection);
        let before = look(&room).await;
        let outcome = room
            .receive(server.storage(), server.limits(), connection, frame)
            .await;
        // The server catches a panic in yrs while it reads or applies an update, and
        // answers that the message is malformed.
        panics::settle(matches!(outcome, Outcome::Malformed(_)), "a sync message");
        let after = look(&room).await;
        if after.server_only != before.server_only {
            panics::fail(&format!(
                "a {} changed a part of the document only the server writes ({outcome:?})",
                role.as_str()
            ));
        }
        if (before.closed || !permissions::adds_items(role)) && after.state != before.state {
            panics::fail(&format!(
                "a {} changed the document (closed: {}; {outcome:?})",
                role.as_str(),
                before.closed
            ));
        }
        if matches!(&outcome, Outcome::NotStored) {
            panics::fail("an update could not be stored");
        }
        if let Some((seat, reason)) = self.connections.closed() {
            panics::fail(&format!(
                "the server closed the connection of {seat:?}: {reason:?}"
            ));
        }
        self.messages += 1;
        if matches!(outcome, Outcome::Applied) && frame.first() == Some(&0) {
            self.accepted_bytes += frame.len();
        }
        outcome
    }

    /// The server's whole document of `kind`, as an update.
    async fn server_state(&mut self, server: &Server, seat: Seat) -> Vec<u8> {
        let joined = self.connections.get(server, &self.conference, seat).await;
        joined
            .room
            .read(|txn, _| txn.encode_state_as_update_v1(&StateVector::default()))
            .await
    }
}

/// A replica of the document on one person's device.
struct Replica {
    seat: Seat,
    doc: Doc,
    /// Updates made on this replica and not sent yet, one per transaction.
    unsent: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The server refused something: the replica is thrown away and synced afresh,
    /// as the browser does.
    refused: bool,
}

impl Replica {
    fn new(seat: Seat, client_id: u64, gc: bool, state: &[u8]) -> Replica {
        let doc = Doc::with_options(Options {
            client_id: ClientID::new(client_id),
            skip_gc: !gc,
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        });
        let unsent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let sink = Arc::clone(&unsent);
        doc.observe_update_v1("unsent", move |txn, event| {
            if txn.origin() != Some(&FROM_SERVER.into()) {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(event.update.clone());
            }
        })
        .expect("observe a new document");
        let mut replica = Replica {
            seat,
            doc,
            unsent,
            refused: false,
        };
        replica.apply(state);
        replica
    }

    /// Applies what the server sent.
    ///
    /// It may fail only where someone else's change was made under this replica's own
    /// client id (the input gives two people's replicas one id): the server keeps the
    /// first to write under an id, and a replica that made changes of its own under it
    /// before hearing of that cannot take what builds on the first's. Yjs takes a new
    /// client id then; here the replica is made afresh, as a browser reloads. Any other
    /// failure is replicas disagreeing.
    fn apply(&mut self, update: &[u8]) {
        let Ok(decoded) = Update::decode_v1(update) else {
            return;
        };
        let own = self.doc.client_id();
        let carries_own = decoded.blocks().any(|block| match block {
            yrs::block::BlockView::Item(item) => item.id().client == own,
            yrs::block::BlockView::GC(range) | yrs::block::BlockView::Skip(range) => {
                range.client == own
            }
        });
        let mut txn = self.doc.transact_mut_with(FROM_SERVER);
        if let Err(e) = txn.apply_update(decoded) {
            if carries_own {
                self.refused = true;
            } else {
                panics::fail(&format!(
                    "a replica could not apply the server's update: {e}"
                ));
            }
        }
    }

    fn take_unsent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.unsent.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

const HEADINGS: [&str; 10] = [
    "worries",
    "complicating",
    "working_well",
    "next_steps",
    "grey_areas",
    "danger_harm",
    "strengths",
    "safety",
    "",
    "nonsense",
];
const NEW_IDS: [&str; 4] = [
    "item-1",
    "item-2",
    "0f8fad5b-d9cb-469f-a165-70867728950e",
    "",
];
const ROOTS: [&str; 7] = [
    doc::META,
    doc::ROSTER,
    doc::SCALES,
    doc::DECISIONS,
    doc::BOARD,
    doc::PLAN,
    "notes",
];
const FIELDS: [&str; 7] = [
    doc::item::AUTHOR,
    doc::item::HEADING,
    doc::item::POSITION,
    doc::item::TEXT,
    doc::item::CHILDREN,
    doc::item::SAID_BY,
    "colour",
];
const DATES: [&str; 6] = [
    "2030-04-01",
    "",
    "2030-02-30",
    "tomorrow",
    " 2031-01-15 ",
    "99999-01-01",
];
const PHASES: [Phase; 4] = [
    Phase::Closed,
    Phase::Decision,
    Phase::Planning,
    Phase::InformationSharing,
];

/// One structured input: replicas of the people who take part, edited and sent.
struct Edits {
    kind: DocumentKind,
    /// The person who sends first; others join in when an op names them.
    first: usize,
    replicas: Vec<Replica>,
    sends: usize,
}

impl Edits {
    async fn new(
        fixture: &mut Fixture,
        server: &Server,
        person: usize,
        kind: DocumentKind,
        input: &mut Input<'_>,
    ) -> Edits {
        let mut edits = Edits {
            kind,
            first: person,
            replicas: Vec::new(),
            sends: 0,
        };
        edits.replica(fixture, server, person, input).await;
        edits
    }

    /// The replica of `person` (on this input's document), made if needed.
    async fn replica(
        &mut self,
        fixture: &mut Fixture,
        server: &Server,
        person: usize,
        input: &mut Input<'_>,
    ) -> usize {
        let seat = seat_of(fixture, person, self.kind);
        if let Some(i) = self.replicas.iter().position(|r| r.seat == seat) {
            return i;
        }
        // Client ids: mostly one of a few per person, so ids are reused across
        // inputs (as a browser's are across reloads); sometimes one of another
        // person's, or any 32 bits the input gives. Whoever writes under an id second
        // is refused, so a shared id must not break anyone's replica.
        let choice = input.byte();
        let people = fixture.conference.people.len() as u64;
        let client_id = match choice % 8 {
            7 => u64::from(input.u32()),
            6 => 1000 + (u64::from(input.byte()) % people) * 8 + u64::from(input.byte() % 6),
            _ => 1000 + (person as u64) * 8 + u64::from(choice % 8),
        };
        let state = fixture.server_state(server, seat).await;
        self.replicas
            .push(Replica::new(seat, client_id, choice >= 128, &state));
        self.replicas.len() - 1
    }

    async fn run(mut self, fixture: &mut Fixture, server: &Server, input: &mut Input<'_>) {
        let mut ops = 0;
        while !input.is_empty() && ops < MOST_OPS {
            ops += 1;
            let op = input.byte();
            let person = who_acts(op, self.first, fixture, input);
            let r = self.replica(fixture, server, person, input).await;
            match op % 16 {
                0..=9 => self.edit(r, op % 16, fixture, input),
                10..=12 if self.sends < MOST_SENDS => {
                    self.sends += 1;
                    let how = input.byte();
                    self.send(fixture, server, r, how, input).await;
                }
                13 if self.sends < MOST_SENDS => {
                    self.sends += 1;
                    let state = self.replicas[r].doc.transact().state_vector();
                    let frame = Message::Sync(SyncMessage::SyncStep1(state)).encode_v1();
                    self.deliver(fixture, server, r, &frame).await;
                }
                14 if self.sends < MOST_SENDS => {
                    self.sends += 1;
                    let n = input.u32();
                    let frame =
                        Message::Custom(protocol::SAVED, protocol::encode_saved(n)).encode_v1();
                    self.deliver(fixture, server, r, &frame).await;
                }
                15 => {
                    change_phase(fixture, server, input).await;
                    self.receive_queued(fixture, server).await;
                }
                _ => {}
            }
        }
        // Whatever is left is sent the way a browser sends it: one update per
        // transaction.
        for r in 0..self.replicas.len() {
            self.send(fixture, server, r, 0, input).await;
        }
    }

    /// One edit on replica `r`, in its own transaction. A panic here is in yrs on
    /// the device, not in the server: the replica is dropped and made afresh.
    fn edit(&mut self, r: usize, op: u8, fixture: &Fixture, input: &mut Input<'_>) {
        let people = &fixture.conference.people;
        let me = people[self.replicas[r].seat.0].id;
        let children = &fixture.conference.children;
        let doc = self.replicas[r].doc.clone();
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            edit(&mut txn, op, me, people, children, input);
        }));
        if done.is_err() {
            panics::settle(true, "an edit on a replica");
            self.replicas[r].refused = true;
        }
    }

    /// Sends what replica `r` has not sent yet, shaped by `how`.
    async fn send(
        &mut self,
        fixture: &mut Fixture,
        server: &Server,
        r: usize,
        how: u8,
        input: &mut Input<'_>,
    ) {
        let unsent = self.replicas[r].take_unsent();
        if unsent.is_empty() {
            return;
        }
        let update = |u: Vec<u8>| Message::Sync(SyncMessage::Update(u)).encode_v1();
        let merged = || yrs::merge_updates_v1(unsent.iter().map(Vec::as_slice)).ok();
        let frames: Vec<Vec<u8>> = match how % 6 {
            0 => unsent.iter().cloned().map(update).collect(),
            1 => merged().into_iter().map(update).collect(),
            2 => merged()
                .map(|u| Message::Sync(SyncMessage::SyncStep2(u)).encode_v1())
                .into_iter()
                .collect(),
            // A gap: the first is lost, so the rest depend on what the server lacks.
            3 => unsent.iter().skip(1).cloned().map(update).collect(),
            4 => {
                let (at, xor) = (usize::from(input.u16()), input.byte().max(1));
                let mut frame = update(merged().unwrap_or_default());
                let at = at % frame.len();
                frame[at] ^= xor;
                vec![frame]
            }
            _ => {
                let mut frame = update(merged().unwrap_or_default());
                frame.truncate(usize::from(input.u16()) % frame.len());
                vec![frame]
            }
        };
        for frame in frames {
            self.deliver(fixture, server, r, &frame).await;
        }
    }

    async fn deliver(&mut self, fixture: &mut Fixture, server: &Server, r: usize, frame: &[u8]) {
        let seat = self.replicas[r].seat;
        if let Outcome::Refused(_) | Outcome::Malformed(_) =
            fixture.deliver(server, seat, frame).await
        {
            self.replicas[r].refused = true;
        }
        self.receive_queued(fixture, server).await;
    }

    /// Every replica takes what the server sent its connection, as a live client
    /// does; one that was refused is made afresh from the server's document.
    async fn receive_queued(&mut self, fixture: &mut Fixture, server: &Server) {
        for (seat, message) in fixture.connections.take_all() {
            let Some(replica) = self.replicas.iter_mut().find(|r| r.seat == seat) else {
                continue;
            };
            match Message::decode_v1(&message) {
                Ok(Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u))) => {
                    if !replica.refused {
                        replica.apply(&u);
                    }
                }
                Ok(Message::Auth(_)) => replica.refused = true,
                Ok(_) => {}
                Err(e) => panics::fail(&format!("the server sent an unreadable message: {e}")),
            }
        }
        for r in 0..self.replicas.len() {
            if self.replicas[r].refused {
                let seat = self.replicas[r].seat;
                // A new client id, as the browser takes for its new copy: the old one's
                // changes the server never took are gone with the old copy, and a
                // client id must not stand for two different changes at one clock.
                let old = self.replicas[r].doc.client_id().get();
                let client_id = (old + (1 << 32)) % (1 << 50);
                let state = fixture.server_state(server, seat).await;
                self.replicas[r] = Replica::new(seat, client_id, false, &state);
            }
        }
    }
}

/// Most times a browser connects again in one input: a session asks to after a
/// refusal for changes the server lacks, at most a few times in a row.
const MOST_RECONNECTS: usize = 32;

/// One person's browser: the client's session over a connection of their seat.
struct Browser {
    seat: Seat,
    session: Session,
}

/// One structured input of browsers.
struct Browsers {
    kind: DocumentKind,
    first: usize,
    browsers: Vec<Browser>,
    reconnects: usize,
}

impl Browsers {
    fn new(first: usize, kind: DocumentKind) -> Browsers {
        Browsers {
            kind,
            first,
            browsers: Vec::new(),
            reconnects: 0,
        }
    }

    /// The browser of `person` (on this input's document), opened if needed.
    async fn browser(&mut self, fixture: &mut Fixture, server: &Server, person: usize) -> usize {
        let seat = seat_of(fixture, person, self.kind);
        if let Some(b) = self.browsers.iter().position(|b| b.seat == seat) {
            return b;
        }
        // A connection of its own: what an earlier input left on the seat's is not
        // this browser's.
        fixture.connections.leave(server, seat).await;
        let mut session = Session::new(session::Config {
            offset_kind: OffsetKind::Utf16,
            first_wait: std::time::Duration::from_secs(1),
            longest_wait: std::time::Duration::from_secs(30),
        });
        fixture
            .connections
            .get(server, &fixture.conference, seat)
            .await;
        session.connection_opened();
        self.browsers.push(Browser { seat, session });
        self.browsers.len() - 1
    }

    async fn run(mut self, fixture: &mut Fixture, server: &Server, input: &mut Input<'_>) {
        let mut ops = 0;
        while !input.is_empty() && ops < MOST_OPS {
            ops += 1;
            let op = input.byte();
            let person = who_acts(op, self.first, fixture, input);
            let b = self.browser(fixture, server, person).await;
            match op % 16 {
                0..=9 => self.edit(b, op % 16, fixture, input),
                10 | 11 => self.reconnect(b, fixture, server).await,
                12 => change_phase(fixture, server, input).await,
                // Nothing new: what is in flight goes on.
                _ => {}
            }
            self.pump(fixture, server).await;
        }
        self.pump(fixture, server).await;
        for browser in &self.browsers {
            let session = &browser.session;
            if !session.in_step() || session.unconfirmed() > 0 {
                continue;
            }
            let joined = fixture
                .connections
                .get(server, &fixture.conference, browser.seat)
                .await;
            let theirs = joined.room.read(|txn, _| roots(txn)).await;
            let ours = roots(&session.doc().transact());
            let differ: Vec<String> = ours
                .iter()
                .zip(&theirs)
                .filter(|(a, b)| a != b)
                .map(|((root, a), (_, b))| format!("{root}: the browser {a:?}, the server {b:?}"))
                .collect();
            if !differ.is_empty() {
                panics::fail(&format!(
                    "a browser of {:?} with every change confirmed differs from the server: {}",
                    browser.seat,
                    differ.join("; ")
                ));
            }
        }
    }

    /// One edit, made through the browser's session. A panic here is in yrs on the
    /// device: the browser is closed, as a page that crashed.
    fn edit(&mut self, b: usize, op: u8, fixture: &Fixture, input: &mut Input<'_>) {
        let people = &fixture.conference.people;
        let me = people[self.browsers[b].seat.0].id;
        let children = &fixture.conference.children;
        let session = &mut self.browsers[b].session;
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session.edit(|txn| edit(txn, op, me, people, children, input));
        }));
        if done.is_err() {
            panics::settle(true, "an edit in a browser");
            self.browsers.remove(b);
        }
    }

    /// The browser's connection ends and another opens, as after a network cut.
    async fn reconnect(&mut self, b: usize, fixture: &mut Fixture, server: &Server) {
        if self.reconnects >= MOST_RECONNECTS {
            return;
        }
        self.reconnects += 1;
        let seat = self.browsers[b].seat;
        fixture.connections.leave(server, seat).await;
        let session = &mut self.browsers[b].session;
        session.connection_closed(1006);
        fixture
            .connections
            .get(server, &fixture.conference, seat)
            .await;
        session.connection_opened();
    }

    /// Hands each browser's messages to the server and the server's to each browser,
    /// until neither has more (a bounded number of rounds).
    async fn pump(&mut self, fixture: &mut Fixture, server: &Server) {
        for _ in 0..64 {
            let mut moved = false;
            for b in 0..self.browsers.len() {
                while let Some(output) = self.browsers[b].session.poll_output() {
                    match output {
                        Output::Send(frame) => {
                            moved = true;
                            let seat = self.browsers[b].seat;
                            fixture.deliver(server, seat, &frame).await;
                        }
                        // Connecting again at once: the wait is the browser's timer.
                        Output::Reconnect(_) | Output::ConnectAfter(_) => {
                            moved = true;
                            self.reconnect(b, fixture, server).await;
                        }
                        Output::Unreadable(what) => panics::fail(&format!(
                            "a browser could not read what the server sent: {what:?}"
                        )),
                        Output::Stopped(why) => {
                            panics::fail(&format!("a browser's session ended: {why:?}"))
                        }
                        _ => {}
                    }
                }
            }
            for (seat, message) in fixture.connections.take_all() {
                if let Some(browser) = self.browsers.iter_mut().find(|b| b.seat == seat) {
                    moved = true;
                    browser.session.received(&message);
                }
            }
            if !moved {
                return;
            }
        }
    }
}

/// The seat of `person` on the input's document: the shared one if they may not read
/// `kind`.
fn seat_of(fixture: &Fixture, person: usize, kind: DocumentKind) -> Seat {
    let role = fixture.conference.people[person].role;
    if kind.readable_by(role) {
        (person, kind)
    } else {
        (person, DocumentKind::Shared)
    }
}

/// Who makes an input's next op: the one who sent first, or whoever the input names.
fn who_acts(op: u8, first: usize, fixture: &Fixture, input: &mut Input<'_>) -> usize {
    match op >> 5 {
        0..=4 => first,
        _ => usize::from(input.byte()) % fixture.conference.people.len(),
    }
}

/// The server writes the phase, as a command does.
async fn change_phase(fixture: &Fixture, server: &Server, input: &mut Input<'_>) {
    let phase = *input.pick(&PHASES);
    let key = (fixture.conference.key(), DocumentKind::Shared);
    if let Err(e) = server
        .rooms()
        .server_change(key, |txn| doc::write_phase(txn, phase))
        .await
    {
        panics::fail(&format!("the server could not write the phase: {e}"));
    }
}

/// What every root of a document holds. A root nothing was written to is an empty
/// map: a replica that made one without writing to it has nothing to send for it.
fn roots<T: ReadTxn>(txn: &T) -> Vec<(&'static str, Any)> {
    doc::ROOTS
        .iter()
        .map(|root| {
            let held = txn.get_map(*root).map(|m| m.to_json(txn));
            (
                *root,
                held.unwrap_or_else(|| Any::from(std::collections::HashMap::<String, Any>::new())),
            )
        })
        .collect()
}

fn board_ids(txn: &TransactionMut) -> Vec<String> {
    let mut ids: Vec<String> = txn
        .get_map(doc::BOARD)
        .map(|b| b.keys(txn).map(str::to_owned).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// An existing item's id, or a new one.
fn item_id(txn: &TransactionMut, input: &mut Input<'_>) -> String {
    let ids = board_ids(txn);
    let choice = usize::from(input.byte());
    match ids.get(choice) {
        Some(id) => id.clone(),
        None => NEW_IDS[choice % NEW_IDS.len()].to_owned(),
    }
}

fn item_map(txn: &TransactionMut, id: &str) -> Option<MapRef> {
    match txn.get_map(doc::BOARD)?.get(txn, id) {
        Some(Out::YMap(map)) => Some(map),
        _ => None,
    }
}

fn plan_ids(txn: &TransactionMut, list: &str) -> Vec<String> {
    let Some(Out::YMap(map)) = txn.get_map(doc::PLAN).and_then(|p| p.get(txn, list)) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = map.keys(txn).map(str::to_owned).collect();
    ids.sort();
    ids
}

fn plan_id(txn: &TransactionMut, list: &str, input: &mut Input<'_>) -> String {
    let ids = plan_ids(txn, list);
    let choice = usize::from(input.byte());
    ids.get(choice)
        .cloned()
        .unwrap_or_else(|| format!("{list}-{}", choice % 4))
}

/// A value to write somewhere it may or may not belong.
fn value(input: &mut Input<'_>) -> yrs::In {
    match input.byte() % 5 {
        0 => yrs::In::Any(Any::from(input.text())),
        1 => yrs::In::Any(Any::from(f64::from(input.u32()))),
        2 => yrs::In::Map(MapPrelim::default()),
        3 => yrs::In::Text(TextPrelim::new(input.text()).into()),
        _ => yrs::In::Any(Any::Null),
    }
}

fn edit(
    txn: &mut TransactionMut,
    op: u8,
    me: Uuid,
    people: &[roundtable_fuzz::Person],
    children: &[Uuid],
    input: &mut Input<'_>,
) {
    let board = Board::in_txn(txn);
    match op {
        // Add an item, with the sender, someone else, nobody or nonsense as author.
        0 => {
            let id = item_id(txn, input);
            let heading = *input.pick(&HEADINGS);
            let text = input.text();
            let author = match input.byte() % 6 {
                0..=1 => Some(ParticipantId(me)),
                2 => Some(ParticipantId(people[0].id)),
                3 => Some(ParticipantId(people[OTHER_PROFESSIONAL].id)),
                4 => None,
                _ => {
                    let fields: MapPrelim = [
                        (doc::item::HEADING, yrs::In::Any(Any::from(heading))),
                        (doc::item::AUTHOR, yrs::In::Any(Any::from("not an id"))),
                    ]
                    .into_iter()
                    .collect();
                    board_root(txn).insert(txn, id, fields);
                    return;
                }
            };
            match author {
                Some(author) => {
                    let child = children.first().map(|c| ChildId(*c));
                    board.add_item(
                        txn,
                        NewItem {
                            id: &id,
                            heading,
                            text: &text,
                            author,
                            said_by: None,
                            children: child.as_slice(),
                        },
                    );
                }
                None => {
                    let fields: MapPrelim =
                        [(doc::item::HEADING, yrs::In::Any(Any::from(heading)))]
                            .into_iter()
                            .collect();
                    board_root(txn).insert(txn, id, fields);
                }
            }
        }
        // Type into an item's text.
        1 => {
            let id = item_id(txn, input);
            let at = u32::from(input.byte());
            let chunk = input.text();
            board.insert_text(txn, &id, at, &chunk);
        }
        // Delete some of an item's text.
        2 => {
            let id = item_id(txn, input);
            let (at, len) = (u32::from(input.byte()), u32::from(input.byte()));
            if let Some(text) = board.text(txn, &id) {
                let total = text.len(txn);
                let at = at.min(total);
                text.remove_range(txn, at, len.min(total - at));
            }
        }
        // Move an item.
        3 => {
            let id = item_id(txn, input);
            let heading = *input.pick(&HEADINGS);
            let before = item_id(txn, input);
            let after = item_id(txn, input);
            board.move_item(txn, &id, heading, Some(&before), Some(&after));
        }
        // Delete an item.
        4 => {
            let id = item_id(txn, input);
            board.delete_item(txn, &id);
        }
        // Who said it; which children it concerns.
        5 => {
            let id = item_id(txn, input);
            let said_by = match input.byte() % 3 {
                0 => Some(SaidBy::Participant(ParticipantId(input.pick(people).id))),
                1 => Some(SaidBy::Agency(input.text())),
                _ => None,
            };
            board.set_said_by(txn, &id, said_by.as_ref());
            let child = match input.byte() {
                b if usize::from(b) < children.len() => ChildId(children[usize::from(b)]),
                _ => ChildId(Uuid::from_u128(u128::from(input.u32()))),
            };
            board.set_child(txn, &id, child, input.byte().is_multiple_of(2));
        }
        // Overwrite one field of an item (the author among them).
        6 => {
            let id = item_id(txn, input);
            let field = *input.pick(&FIELDS);
            let value = value(input);
            if let Some(map) = item_map(txn, &id) {
                map.insert(txn, field, value);
            }
        }
        // Write straight into a root, or put something that is not an item on the
        // board.
        7 => {
            let root = *input.pick(&ROOTS);
            let key = input.text();
            let value = value(input);
            txn.get_or_insert_map(root).insert(txn, key, value);
        }
        // The plan: a danger, an action, an action's field, a text.
        8 => {
            let id = input.text();
            match input.byte() % 4 {
                0 => {
                    let (statement, goal) = (input.text(), input.text());
                    plan::add_danger(txn, &id, &statement, &goal);
                }
                1 => {
                    let what = input.text();
                    plan::add_action(txn, &id, &what);
                }
                2 => {
                    let id = plan_id(txn, plan::ACTIONS, input);
                    let field =
                        *input.pick(&[plan::action::BY, plan::action::WHO, plan::action::CHILD]);
                    let value = if field == plan::action::BY {
                        (*input.pick(&DATES)).to_owned()
                    } else {
                        input.text()
                    };
                    plan::set_action_field(txn, &id, field, &value);
                }
                _ => {
                    let name = *input.pick(&[plan::CONTINGENCY, plan::BOTTOM_LINES]);
                    let at = u32::from(input.byte());
                    let chunk = input.text();
                    if let Some(text) = plan::text(txn, name) {
                        plan::insert(txn, &text, at, &chunk);
                    }
                }
            }
        }
        // Remove from the plan.
        _ => {
            let list = *input.pick(&[plan::DANGERS, plan::ACTIONS]);
            let id = plan_id(txn, list, input);
            plan::remove(txn, list, &id);
        }
    }
}

fn board_root(txn: &mut TransactionMut) -> MapRef {
    txn.get_or_insert_map(doc::BOARD)
}
