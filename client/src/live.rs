//! The live connection to a conference's shared document.
//!
//! [`Live`] keeps a local `yrs` copy of the document in step with the server over
//! the standard Yjs sync protocol (y-protocols) on a WebSocket, and tells the page
//! what it needs to show: whether we are connected, whether our own changes are
//! saved, who is here and what they are editing.
//!
//! Our own changes are kept until the server confirms it has stored them
//! (Roundtable's "saved?" message, see `roundtable_shared::protocol`): in memory,
//! and in the browser's local storage so that a reload or a closed laptop does
//! not lose them. Only changes not yet confirmed are kept there, and they are
//! removed as soon as the server has them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use leptos::prelude::*;
use roundtable_shared::protocol;
use wasm_bindgen::{JsCast, prelude::*};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, OffsetKind, Options, ReadTxn, Transact, TransactionMut, Update};

/// The close code the server uses when someone has been removed from the
/// conference.
const CLOSE_REMOVED: u16 = 4403;
/// The close code the server uses when the session or link a connection was opened
/// with has ended.
const CLOSE_SESSION_ENDED: u16 = 4401;
/// The first wait before connecting again, in milliseconds; it doubles after
/// every failed attempt, up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: u32 = 1_000;
const MAX_RETRY_MS: u32 = 30_000;
/// How many times in a row a refusal of a change because the server lacks what it
/// builds on is answered by connecting again (which sends the server everything of
/// ours it lacks) before we conclude that our own copy lacks it.
const MAX_INCOMPLETE_RESYNCS: u32 = 3;

/// The state of the connection to the server, as the page tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected,
    Reconnecting,
    Offline,
    Removed,
    SessionEnded,
}

impl Connection {
    pub fn words(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Connected => "Connected",
            Self::Reconnecting => "Reconnecting…",
            Self::Offline => "Offline",
            Self::Removed => "You have been removed from this conference",
            Self::SessionEnded => "Your session has ended: please sign in again",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Self::Connected => "connection connected",
            Self::Removed | Self::SessionEnded => "connection removed",
            _ => "connection waiting",
        }
    }
}

/// Whether our own changes are stored on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saving {
    /// Nothing of ours is waiting: everything we changed is stored.
    AllSaved,
    /// Sent, and waiting for the server to confirm.
    Sending,
    /// Not connected: kept on this device until we are.
    NotYet,
    /// The server could not store a change; it is kept here and sent again.
    Retrying,
}

impl Saving {
    pub fn words(self) -> &'static str {
        match self {
            Self::AllSaved => "All changes saved",
            Self::Sending => "Saving…",
            Self::NotYet => {
                "Not saved yet: your changes are kept on this device and will be sent when you are connected again"
            }
            Self::Retrying => {
                "The server could not save your last change. It is kept on this device and will be sent again."
            }
        }
    }
}

/// How long to wait before the next attempt, after `failures` failed ones.
pub fn retry_delay_ms(failures: u32) -> u32 {
    FIRST_RETRY_MS
        .saturating_mul(1u32 << failures.min(15))
        .min(MAX_RETRY_MS)
}

/// Someone present, from their awareness state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub role: String,
    /// The board item they are editing, if any.
    pub editing: Option<String>,
}

impl Person {
    /// Reads the `user` the server puts on an awareness state. `null` (or a
    /// state without a user) means nobody.
    pub fn from_state(json: &str) -> Option<Person> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        let user = value.get("user")?;
        let text = |key: &str| user.get(key)?.as_str().map(str::to_owned);
        Some(Person {
            id: text("id")?,
            name: text("name")?,
            role: text("role").unwrap_or_default(),
            editing: value
                .get("editing")
                .and_then(|e| e.as_str())
                .map(str::to_owned),
        })
    }

    pub fn role_words(&self) -> &str {
        roundtable_shared::Role::parse(&self.role).map_or("", roundtable_shared::Role::label)
    }
}

/// Everyone present, once each, in name order. Someone with two tabs open is
/// editing what either tab is editing.
pub fn people(states: impl Iterator<Item = Person>) -> Vec<Person> {
    let mut by_id: BTreeMap<String, Person> = BTreeMap::new();
    for person in states {
        match by_id.get_mut(&person.id) {
            Some(known) => {
                if known.editing.is_none() {
                    known.editing = person.editing;
                }
            }
            None => {
                by_id.insert(person.id.clone(), person);
            }
        }
    }
    let mut people: Vec<Person> = by_id.into_values().collect();
    people.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    people
}

/// The signals a page reads to draw itself.
#[derive(Clone, Copy)]
pub struct LiveSignals {
    pub connection: ReadSignal<Connection>,
    pub saving: ReadSignal<Saving>,
    /// Goes up by one every time the document changes.
    pub version: ReadSignal<u64>,
    pub people: ReadSignal<Vec<Person>>,
    /// Why the server last refused one of our changes, until the next change.
    pub refused: ReadSignal<Option<String>>,
}

struct Setters {
    connection: WriteSignal<Connection>,
    saving: WriteSignal<Saving>,
    version: WriteSignal<u64>,
    people: WriteSignal<Vec<Person>>,
    refused: WriteSignal<Option<String>>,
}

/// A change of ours the server has not confirmed yet.
struct Unsaved {
    /// Our own count of changes, which the "saved?" question carries.
    number: u32,
    update: Vec<u8>,
}

struct State {
    url: String,
    /// Where unsaved changes are kept across reloads; `None` for people who
    /// cannot change the document.
    storage_key: Option<String>,
    doc: Doc,
    /// After a refusal: a new copy being filled with the server's whole document. The
    /// board goes on showing `doc` until it has arrived, then shows this instead.
    fresh: Option<Doc>,
    socket: Option<WebSocket>,
    /// Keeps the socket's event handlers alive while the socket is in use.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    /// True once the server's whole document has arrived on this connection.
    in_step: bool,
    failures: u32,
    /// Connections made again, since the server last confirmed a change, because it
    /// refused one that builds on changes it did not have.
    incomplete_resyncs: u32,
    /// True once, on this connection, our copy was replaced by the server's after a
    /// refusal: changes sent before that were made on the old copy, and a refusal of
    /// one of them for building on what the server lacks is about a change already
    /// dropped.
    replaced_here: bool,
    retry_timer: Option<i32>,
    /// No more connecting: removed, or the session ended.
    stopped: bool,
    unsaved: Vec<Unsaved>,
    /// Unsaved changes read back after a reload, sent once we are in step.
    restored: Option<Vec<u8>>,
    next_number: u32,
    /// How many times the document has changed, for [`LiveSignals::version`].
    version: u64,
    /// What [`LiveSignals::saving`] says now.
    saving_now: Saving,
    /// Our own awareness clock and state.
    awareness_clock: u32,
    editing: Option<String>,
    /// Everyone's awareness state: client id → (clock, person if present).
    present: HashMap<u64, (u32, Option<Person>)>,
    set: Setters,
}

/// A handle on the live document of one conference. Cloning it is cheap and
/// every clone is the same connection.
#[derive(Clone)]
pub struct Live {
    state: Rc<RefCell<State>>,
    signals: LiveSignals,
}

fn online() -> bool {
    window().navigator().on_line()
}

fn sync_url(conference_id: &str) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/api/conferences/{conference_id}/sync")
}

/// A document whose text positions count UTF-16 units, as the browser's text
/// fields do.
pub fn new_doc() -> Doc {
    Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..roundtable_shared::doc::document_options()
    })
}

fn send(socket: &WebSocket, message: &Message) {
    if socket.send_with_u8_array(&message.encode_v1()).is_err() {
        web_sys::console::warn_1(&"Roundtable: could not send a message".into());
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// Bytes as a string the browser's local storage can hold.
fn to_base64(bytes: &[u8]) -> Option<String> {
    let binary: String = bytes.iter().map(|&b| char::from(b)).collect();
    window().btoa(&binary).ok()
}

fn from_base64(text: &str) -> Option<Vec<u8>> {
    let binary = window().atob(text).ok()?;
    binary
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

impl Live {
    /// Connects to the conference `conference_id` as `participant_id`. When
    /// `writes` is true the person's own changes are kept on this device until
    /// the server confirms them.
    pub fn connect(conference_id: &str, participant_id: &str, writes: bool) -> Live {
        let (connection, set_connection) = signal(if online() {
            Connection::Connecting
        } else {
            Connection::Offline
        });
        let (saving, set_saving) = signal(Saving::AllSaved);
        let (version, set_version) = signal(0u64);
        let (people, set_people) = signal(Vec::<Person>::new());
        let (refused, set_refused) = signal(None::<String>);
        let storage_key =
            writes.then(|| format!("roundtable.unsaved.{conference_id}.{participant_id}"));
        let restored = storage_key.as_deref().and_then(|key| {
            let text = local_storage()?.get_item(key).ok().flatten()?;
            from_base64(&text)
        });
        let state = State {
            url: sync_url(conference_id),
            storage_key,
            doc: new_doc(),
            socket: None,
            handlers: Vec::new(),
            in_step: false,
            fresh: None,
            failures: 0,
            incomplete_resyncs: 0,
            replaced_here: false,
            retry_timer: None,
            stopped: false,
            unsaved: Vec::new(),
            restored,
            next_number: 1,
            version: 0,
            saving_now: Saving::AllSaved,
            awareness_clock: 0,
            editing: None,
            present: HashMap::new(),
            set: Setters {
                connection: set_connection,
                saving: set_saving,
                version: set_version,
                people: set_people,
                refused: set_refused,
            },
        };
        let mut state = state;
        if state.restored.is_some() {
            state.set_saving(Saving::NotYet);
        }
        let live = Live {
            state: Rc::new(RefCell::new(state)),
            signals: LiveSignals {
                connection,
                saving,
                version,
                people,
                refused,
            },
        };
        live.watch_network();
        live.open();
        live
    }

    pub fn signals(&self) -> LiveSignals {
        self.signals
    }

    /// Reads the local copy of the document.
    pub fn read<R>(&self, f: impl FnOnce(&yrs::Transaction) -> R) -> R {
        let state = self.state.borrow();
        let txn = state.doc.transact();
        f(&txn)
    }

    /// Makes a change of our own: applies it to the local copy, keeps it until
    /// the server confirms it, and sends it if we are connected.
    pub fn edit(&self, f: impl FnOnce(&mut TransactionMut)) {
        {
            let mut state = self.state.borrow_mut();
            let update = {
                let mut txn = state.doc.transact_mut();
                f(&mut txn);
                txn.encode_update_v1()
            };
            // An empty transaction encodes to two zero bytes: nothing to send.
            if update.len() <= 2 {
                return;
            }
            state.set.refused.set(None);
            let number = state.next_number;
            state.next_number = state.next_number.wrapping_add(1);
            state.unsaved.push(Unsaved { number, update });
            state.keep_unsaved();
            if state.in_step {
                if let Some(socket) = state.socket.clone() {
                    let update = state.unsaved.last().map(|u| u.update.clone());
                    if let Some(update) = update {
                        send(&socket, &Message::Sync(SyncMessage::Update(update)));
                    }
                    ask_saved(&state, &socket);
                }
                state.set_saving(Saving::Sending);
            } else {
                state.set_saving(Saving::NotYet);
            }
        }
        self.changed();
    }

    /// Tells everyone which item we are editing (or that we stopped).
    pub fn set_editing(&self, item: Option<String>) {
        let mut state = self.state.borrow_mut();
        if state.editing == item {
            return;
        }
        state.editing = item;
        announce(&mut state);
    }

    fn changed(&self) {
        let mut state = self.state.borrow_mut();
        state.version += 1;
        state.set.version.set(state.version);
    }

    fn open(&self) {
        let mut state = self.state.borrow_mut();
        if state.stopped || state.socket.is_some() {
            return;
        }
        if let Some(timer) = state.retry_timer.take() {
            window().clear_timeout_with_handle(timer);
        }
        let Ok(socket) = WebSocket::new(&state.url) else {
            drop(state);
            self.retry_later();
            return;
        };
        socket.set_binary_type(BinaryType::Arraybuffer);
        let on_open = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| live.opened())
        };
        let on_message = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let Ok(event) = event.dyn_into::<MessageEvent>() else {
                    return;
                };
                let bytes = js_sys::Uint8Array::new(&event.data()).to_vec();
                live.received(&bytes);
            })
        };
        let on_close = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let code = event.dyn_into::<CloseEvent>().map_or(1006, |e| e.code());
                live.closed(code);
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        state.handlers = vec![on_open, on_message, on_close];
        state.socket = Some(socket);
    }

    fn opened(&self) {
        let mut state = self.state.borrow_mut();
        let Some(socket) = state.socket.clone() else {
            return;
        };
        let state_vector = state.doc.transact().state_vector();
        send(
            &socket,
            &Message::Sync(SyncMessage::SyncStep1(state_vector)),
        );
        announce(&mut state);
    }

    fn received(&self, bytes: &[u8]) {
        let Ok(message) = Message::decode_v1(bytes) else {
            web_sys::console::warn_1(
                &"Roundtable: a message from the server was not understood".into(),
            );
            return;
        };
        match message {
            Message::Sync(SyncMessage::SyncStep1(their_state)) => {
                // The server asks for what it lacks: our unsaved changes among them.
                // (After a refusal, nothing of our old copy is to be sent again.)
                let state = self.state.borrow();
                let ours = state.fresh.as_ref().unwrap_or(&state.doc);
                let update = ours.transact().encode_state_as_update_v1(&their_state);
                if let Some(socket) = &state.socket {
                    send(socket, &Message::Sync(SyncMessage::SyncStep2(update)));
                }
            }
            Message::Sync(SyncMessage::SyncStep2(update)) => {
                let fresh = self.state.borrow_mut().fresh.take();
                if let Some(fresh) = fresh {
                    // The whole document, asked for after a refusal: it takes the place
                    // of our copy, which holds the refused change.
                    let applied = Update::decode_v1(&update)
                        .map_err(|_| ())
                        .and_then(|u| fresh.transact_mut().apply_update(u).map_err(|_| ()));
                    if applied.is_err() {
                        web_sys::console::warn_1(
                            &"Roundtable: the server's document could not be applied".into(),
                        );
                    }
                    {
                        let mut state = self.state.borrow_mut();
                        state.doc = fresh;
                        // Changes made on the old copy while this was on its way go
                        // with it: sent again they would only be refused, as built on
                        // what the server refused.
                        state.unsaved.clear();
                        state.keep_unsaved();
                        state.set_saving(Saving::AllSaved);
                        state.replaced_here = true;
                    }
                    self.changed();
                    return;
                }
                self.apply(&update);
                // The server's SyncStep2 holds the whole document: we are in step.
                self.in_step();
            }
            Message::Sync(SyncMessage::Update(update)) => self.apply(&update),
            Message::Awareness(update) => {
                let mut state = self.state.borrow_mut();
                for (client, entry) in update.clients {
                    let client = client.get();
                    let newer = state
                        .present
                        .get(&client)
                        .is_none_or(|(clock, _)| entry.clock >= *clock);
                    if newer {
                        state
                            .present
                            .insert(client, (entry.clock, Person::from_state(&entry.json)));
                    }
                }
                let everyone = people(state.present.values().filter_map(|(_, p)| p.clone()));
                state.set.people.set(everyone);
            }
            Message::Auth(reason) => self.refused(reason.unwrap_or_default()),
            Message::Custom(protocol::SAVED, data) => {
                if let Some(number) = protocol::decode_saved(&data) {
                    self.saved(number);
                }
            }
            _ => {}
        }
    }

    fn apply(&self, update: &[u8]) {
        {
            let state = self.state.borrow();
            let applied = Update::decode_v1(update)
                .map_err(|_| ())
                .and_then(|u| state.doc.transact_mut().apply_update(u).map_err(|_| ()));
            if applied.is_err() {
                web_sys::console::warn_1(&"Roundtable: an update could not be applied".into());
            }
        }
        self.changed();
    }

    fn in_step(&self) {
        let restored = {
            let mut state = self.state.borrow_mut();
            state.in_step = true;
            state.set.connection.set(Connection::Connected);
            state.restored.take()
        };
        // Changes kept from before a reload go on top of the server's document.
        if let Some(update) = restored {
            let applied = Update::decode_v1(&update).map_err(|_| ()).and_then(|u| {
                let state = self.state.borrow();
                let mut txn = state.doc.transact_mut();
                txn.apply_update(u).map_err(|_| ())
            });
            let mut state = self.state.borrow_mut();
            if applied.is_ok() {
                let number = state.next_number;
                state.next_number = state.next_number.wrapping_add(1);
                state.unsaved.push(Unsaved { number, update });
            } else {
                state.unsaved.clear();
                state.keep_unsaved();
            }
            drop(state);
            self.changed();
        }
        let mut state = self.state.borrow_mut();
        if state.unsaved.is_empty() {
            state.failures = 0;
            state.set_saving(Saving::AllSaved);
        } else if let Some(socket) = state.socket.clone() {
            // Send everything not yet confirmed, whatever our SyncStep2 carried: the
            // server ignores what it already has.
            let updates: Vec<&[u8]> = state.unsaved.iter().map(|u| u.update.as_slice()).collect();
            match yrs::merge_updates_v1(&updates) {
                Ok(merged) => send(&socket, &Message::Sync(SyncMessage::Update(merged))),
                // Updates that will not merge are still sent, one by one.
                Err(_) => {
                    for update in updates {
                        send(
                            &socket,
                            &Message::Sync(SyncMessage::Update(update.to_vec())),
                        );
                    }
                }
            }
            ask_saved(&state, &socket);
            state.set_saving(Saving::Sending);
        }
    }

    fn saved(&self, number: u32) {
        let mut state = self.state.borrow_mut();
        state.failures = 0;
        state.incomplete_resyncs = 0;
        // Numbers only go up (wrapping after four thousand million changes).
        state
            .unsaved
            .retain(|u| u.number.wrapping_sub(number) as i32 > 0);
        state.keep_unsaved();
        if state.unsaved.is_empty() {
            state.set_saving(Saving::AllSaved);
        }
    }

    fn refused(&self, reason: String) {
        if reason == protocol::NOT_SAVED {
            // Not wrong, just not stored: keep it, and send it again by connecting
            // again a little later (the server asks for what it lacks). Nothing more
            // is read from this connection: later refusals on it would only be of
            // changes that built on this one.
            self.state.borrow_mut().set_saving(Saving::Retrying);
            self.drop_connection();
            return;
        }
        let incomplete = reason == protocol::INCOMPLETE;
        {
            let mut state = self.state.borrow_mut();
            if incomplete && state.replaced_here {
                // Of a change made on the copy we replaced: it went with that copy.
                // Changes made on the server's copy build only on what it has.
                return;
            }
            if incomplete
                && state.fresh.is_none()
                && state.incomplete_resyncs < MAX_INCOMPLETE_RESYNCS
            {
                // The server lacks what our change builds on (an edit sent as a
                // connection opened, before the sync delivered what it builds on). The
                // change is not wrong: keep our copy and everything unsaved, and
                // connect again. The new connection's greeting carries the server's
                // state vector, and our answer to it, made from our whole copy, holds
                // everything of ours it lacks in one complete update, which the server
                // reads before anything else we send; then the unsaved changes are
                // sent and confirmed as after any reconnect. Sending on this
                // connection instead would mean sending the whole document (only the
                // greeting says what the server has), which may be larger than a
                // message may be, and every change we sent after this one builds on
                // it and is being refused too: nothing more is read from it.
                state.incomplete_resyncs += 1;
                state.set_saving(Saving::NotYet);
                drop(state);
                self.drop_connection();
                return;
            }
        }
        web_sys::console::warn_1(
            &format!("Roundtable: the server refused a change: {reason}").into(),
        );
        // A refused change stays in our copy and every later change would build on
        // it: start again from the server's copy. The server's document was not
        // changed by the refusal, so it is asked for on this connection, and the board
        // shows what it showed until it is here. (A "depends" refusal gets here only
        // when connecting again did not help, so our copy itself lacks what the change
        // builds on, or while we are already starting again after a refusal, when it
        // is of a change that built on the refused one.)
        let mut state = self.state.borrow_mut();
        state.unsaved.clear();
        state.restored = None;
        state.incomplete_resyncs = 0;
        state.keep_unsaved();
        if !(incomplete && state.fresh.is_some()) {
            state.set.refused.set(Some(reason));
        }
        state.set_saving(Saving::AllSaved);
        match state.socket.clone() {
            Some(socket) if state.in_step => {
                if state.fresh.is_none() {
                    state.fresh = Some(new_doc());
                    let everything = yrs::StateVector::default();
                    send(&socket, &Message::Sync(SyncMessage::SyncStep1(everything)));
                }
            }
            _ => {
                state.doc = new_doc();
                drop(state);
                self.changed();
                self.drop_connection();
            }
        }
    }

    /// Closes the connection from our side, reading nothing more from it, and
    /// connects again.
    fn drop_connection(&self) {
        let socket = self.state.borrow_mut().socket.take();
        if let Some(socket) = socket {
            socket.set_onopen(None);
            socket.set_onmessage(None);
            socket.set_onclose(None);
            let _ = socket.close();
        }
        self.closed(1000);
    }

    fn closed(&self, code: u16) {
        {
            let mut state = self.state.borrow_mut();
            if let Some(socket) = state.socket.take() {
                socket.set_onopen(None);
                socket.set_onmessage(None);
                socket.set_onclose(None);
            }
            state.in_step = false;
            state.replaced_here = false;
            // A copy asked for after a refusal is filled by the next connection's
            // greeting instead: our copy holds the refused change.
            if let Some(fresh) = state.fresh.take() {
                state.doc = fresh;
            }
            // Who was here is no longer known.
            state.present.clear();
            state.set.people.set(Vec::new());
            if !state.unsaved.is_empty() && state.saving_now == Saving::Sending {
                state.set_saving(Saving::NotYet);
            }
            if code == CLOSE_SESSION_ENDED {
                // What is not saved yet stays on this device, and is sent once this
                // person has signed in (or opened their link) again.
                state.stopped = true;
                state.set.connection.set(Connection::SessionEnded);
                return;
            }
            if code == CLOSE_REMOVED {
                state.stopped = true;
                // Someone removed must not keep seeing the board, nor keep it here.
                state.doc = new_doc();
                state.unsaved.clear();
                state.restored = None;
                state.keep_unsaved();
                state.set.connection.set(Connection::Removed);
                drop(state);
                self.changed();
                return;
            }
        }
        self.retry_later();
    }

    fn retry_later(&self) {
        let mut state = self.state.borrow_mut();
        if state.stopped || state.retry_timer.is_some() {
            return;
        }
        let delay = retry_delay_ms(state.failures);
        state.failures = state.failures.saturating_add(1);
        state.set.connection.set(if online() {
            Connection::Reconnecting
        } else {
            Connection::Offline
        });
        let again = {
            let live = self.clone();
            Closure::once_into_js(move || {
                live.state.borrow_mut().retry_timer = None;
                live.open();
            })
        };
        state.retry_timer = window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                again.unchecked_ref(),
                delay as i32,
            )
            .ok();
    }

    /// Follows the browser going offline and coming back.
    fn watch_network(&self) {
        let on_offline = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let state = live.state.borrow();
                if !state.stopped {
                    state.set.connection.set(Connection::Offline);
                }
            })
        };
        let on_online = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let open = {
                    let mut state = live.state.borrow_mut();
                    if state.stopped {
                        return;
                    }
                    state.failures = 0;
                    let open = state
                        .socket
                        .as_ref()
                        .is_some_and(|s| s.ready_state() == WebSocket::OPEN);
                    state.set.connection.set(if open {
                        Connection::Connected
                    } else {
                        Connection::Reconnecting
                    });
                    open
                };
                if !open {
                    live.open();
                }
            })
        };
        let window = window();
        let _ =
            window.add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
        let _ =
            window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
        // The page lives as long as the tab: so do its listeners.
        on_offline.forget();
        on_online.forget();
    }
}

impl State {
    fn set_saving(&mut self, saving: Saving) {
        self.saving_now = saving;
        self.set.saving.set(saving);
    }

    /// Mirrors the unsaved changes into local storage, or clears it.
    fn keep_unsaved(&self) {
        let Some(key) = &self.storage_key else {
            return;
        };
        let Some(storage) = local_storage() else {
            return;
        };
        let updates: Vec<&[u8]> = self.unsaved.iter().map(|u| u.update.as_slice()).collect();
        let merged = match updates.as_slice() {
            [] => None,
            [one] => Some(one.to_vec()),
            many => yrs::merge_updates_v1(many).ok(),
        };
        let kept = match merged.as_deref().and_then(to_base64) {
            Some(text) => storage.set_item(key, &text),
            None => storage.remove_item(key),
        };
        if kept.is_err() {
            web_sys::console::warn_1(
                &"Roundtable: could not keep unsaved changes on this device".into(),
            );
        }
    }
}

/// Asks the server to confirm everything we have sent so far.
fn ask_saved(state: &State, socket: &WebSocket) {
    if let Some(last) = state.unsaved.last() {
        send(
            socket,
            &Message::Custom(protocol::SAVED, protocol::encode_saved(last.number)),
        );
    }
}

/// Sends our awareness state: the server adds our name and role.
fn announce(state: &mut State) {
    let Some(socket) = state.socket.clone() else {
        return;
    };
    if socket.ready_state() != WebSocket::OPEN {
        return;
    }
    state.awareness_clock += 1;
    let json = match &state.editing {
        Some(item) => serde_json::json!({ "editing": item }).to_string(),
        None => "{}".to_owned(),
    };
    let entry = AwarenessUpdateEntry {
        clock: state.awareness_clock,
        json: json.into(),
    };
    let update = AwarenessUpdate {
        clients: HashMap::from([(state.doc.client_id(), entry)]),
    };
    send(&socket, &Message::Awareness(update));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_one_second_then_double_up_to_thirty() {
        let waits: Vec<u32> = (0..8).map(retry_delay_ms).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(retry_delay_ms(u32::MAX), 30_000);
    }

    #[test]
    fn a_state_without_a_user_is_nobody() {
        assert_eq!(Person::from_state("null"), None);
        assert_eq!(Person::from_state("{}"), None);
        let jo = Person::from_state(
            r#"{"user":{"id":"p1","name":"Jo","role":"parent"},"editing":"item-1"}"#,
        )
        .unwrap();
        assert_eq!(jo.role_words(), "Parent");
        assert_eq!(jo.editing.as_deref(), Some("item-1"));
    }

    #[test]
    fn someone_in_two_tabs_is_listed_once_with_what_they_edit() {
        let person = |id: &str, name: &str, editing: Option<&str>| Person {
            id: id.into(),
            name: name.into(),
            role: "professional".into(),
            editing: editing.map(str::to_owned),
        };
        let listed = people(
            [
                person("p2", "Sam", None),
                person("p1", "Priya", None),
                person("p1", "Priya", Some("item-7")),
            ]
            .into_iter(),
        );
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "Priya");
        assert_eq!(listed[0].editing.as_deref(), Some("item-7"));
    }
}
