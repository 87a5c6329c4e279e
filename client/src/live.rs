//! The live connection to a conference's shared document.
//!
//! [`Live`] keeps a local `yrs` copy of the document in step with the server over
//! the standard Yjs sync protocol (y-protocols) on a WebSocket, and tells the page
//! what it needs to show: whether we are connected, whether our own changes are
//! saved, who is here and what they are editing.
//!
//! The protocol itself is `roundtable_shared::session`: the copy, our changes kept
//! until the server confirms it has stored them (Roundtable's "saved?" message),
//! what a refusal does and when to connect again. This module gives it a WebSocket
//! and timers, and turns what it says into the page's signals. It also keeps the
//! changes not yet confirmed in the browser's local storage, so that a reload or a
//! closed laptop does not lose them, and removes them as soon as the server has
//! them; and it publishes and follows presence.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
pub use roundtable_shared::session::Saving;
use roundtable_shared::session::{Config, Output, Session, Stop};
use wasm_bindgen::{JsCast, prelude::*};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};
use yrs::sync::Message;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::encoder::Encode;
use yrs::{OffsetKind, Transact, TransactionMut};

/// How the session makes its copies and how long it waits: text positions count
/// UTF-16 units, as the browser's text fields do; the first wait before connecting
/// again is a second, doubling after every failed attempt up to thirty.
const SESSION: Config = Config {
    offset_kind: OffsetKind::Utf16,
    first_wait: Duration::from_secs(1),
    longest_wait: Duration::from_secs(30),
};

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

/// What the page says of whether our own changes are stored on the server.
pub fn saving_words(saving: Saving) -> &'static str {
    match saving {
        Saving::AllSaved => "All changes saved",
        Saving::Sending => "Saving…",
        Saving::NotYet => {
            "Not saved yet: your changes are kept on this device and will be sent when you are connected again"
        }
        Saving::Retrying => {
            "The server could not save your last change. It is kept on this device and will be sent again."
        }
    }
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

struct State {
    url: String,
    /// Where unsaved changes are kept across reloads; `None` for people who
    /// cannot change the document.
    storage_key: Option<String>,
    /// The local copy, our unconfirmed changes and what the protocol does next.
    session: Session,
    socket: Option<WebSocket>,
    /// Keeps the socket's event handlers alive while the socket is in use.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    retry_timer: Option<i32>,
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

fn send(socket: &WebSocket, frame: &[u8]) {
    if socket.send_with_u8_array(frame).is_err() {
        web_sys::console::warn_1(&"Roundtable: could not send a message".into());
    }
}

fn warn(what: &str) {
    web_sys::console::warn_1(&format!("Roundtable: {what}").into());
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
        let mut session = Session::new(SESSION);
        let storage_key =
            writes.then(|| format!("roundtable.unsaved.{conference_id}.{participant_id}"));
        let restored = storage_key.as_deref().and_then(|key| {
            let text = local_storage()?.get_item(key).ok().flatten()?;
            from_base64(&text)
        });
        if let Some(update) = restored {
            session.restore(update);
        }
        let (saving, set_saving) = signal(session.saving());
        let (version, set_version) = signal(0u64);
        let (people, set_people) = signal(Vec::<Person>::new());
        let (refused, set_refused) = signal(None::<String>);
        let state = State {
            url: sync_url(conference_id),
            storage_key,
            saving_now: session.saving(),
            session,
            socket: None,
            handlers: Vec::new(),
            retry_timer: None,
            version: 0,
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
        let txn = state.session.doc().transact();
        f(&txn)
    }

    /// Makes a change of our own: applies it to the local copy, keeps it until
    /// the server confirms it, and sends it if we are connected.
    pub fn edit(&self, f: impl FnOnce(&mut TransactionMut)) {
        {
            let mut state = self.state.borrow_mut();
            if state.session.edit(f).is_none() {
                return;
            }
            state.set.refused.set(None);
        }
        self.drive();
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

    /// Does what the session asks, until it asks nothing more.
    fn drive(&self) {
        loop {
            let Some(output) = self.state.borrow_mut().session.poll_output() else {
                break;
            };
            match output {
                Output::Send(frame) => {
                    if let Some(socket) = &self.state.borrow().socket {
                        send(socket, &frame);
                    }
                }
                Output::InStep { .. } => {
                    let state = self.state.borrow();
                    state.set.connection.set(Connection::Connected);
                }
                Output::Changed | Output::Replaced => self.changed(),
                Output::Refused(reason) => {
                    warn(&format!("the server refused a change: {reason}"));
                    self.state.borrow().set.refused.set(Some(reason));
                }
                Output::Saved { .. } => {}
                Output::Reconnect(_) => self.drop_connection(),
                Output::ConnectAfter(wait) => self.retry_later(wait),
                Output::Stopped(why) => {
                    let state = self.state.borrow();
                    state.set.connection.set(match why {
                        // What is not saved yet stays on this device, and is sent once
                        // this person has signed in (or opened their link) again.
                        Stop::SessionEnded => Connection::SessionEnded,
                        Stop::Removed => Connection::Removed,
                    });
                }
                Output::Presence(update) => self.presence(update),
                Output::UnconfirmedChanged => self.state.borrow().keep_unsaved(),
                Output::Unreadable(what) => warn(&what.to_string()),
            }
        }
        let mut state = self.state.borrow_mut();
        let saving = state.session.saving();
        if saving != state.saving_now {
            state.saving_now = saving;
            state.set.saving.set(saving);
        }
    }

    fn open(&self) {
        let mut state = self.state.borrow_mut();
        if state.session.stopped().is_some() || state.socket.is_some() {
            return;
        }
        if let Some(timer) = state.retry_timer.take() {
            window().clear_timeout_with_handle(timer);
        }
        let Ok(socket) = WebSocket::new(&state.url) else {
            state.session.connection_closed(1006);
            drop(state);
            self.drive();
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
        {
            let mut state = self.state.borrow_mut();
            if state.socket.is_none() {
                return;
            }
            state.session.connection_opened();
        }
        self.drive();
        announce(&mut self.state.borrow_mut());
    }

    fn received(&self, bytes: &[u8]) {
        self.state.borrow_mut().session.received(bytes);
        self.drive();
    }

    fn presence(&self, update: AwarenessUpdate) {
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
            // Who was here is no longer known.
            state.present.clear();
            state.set.people.set(Vec::new());
            state.session.connection_closed(code);
        }
        self.drive();
    }

    fn retry_later(&self, wait: Duration) {
        let mut state = self.state.borrow_mut();
        if state.retry_timer.is_some() {
            return;
        }
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
        let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        state.retry_timer = window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(again.unchecked_ref(), wait_ms)
            .ok();
    }

    /// Follows the browser going offline and coming back.
    fn watch_network(&self) {
        let on_offline = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let state = live.state.borrow();
                if state.session.stopped().is_none() {
                    state.set.connection.set(Connection::Offline);
                }
            })
        };
        let on_online = {
            let live = self.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let open = {
                    let mut state = live.state.borrow_mut();
                    if state.session.stopped().is_some() {
                        return;
                    }
                    state.session.network_returned();
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
    /// Mirrors the unsaved changes into local storage, or clears it.
    fn keep_unsaved(&self) {
        let Some(key) = &self.storage_key else {
            return;
        };
        let Some(storage) = local_storage() else {
            return;
        };
        let kept = match self
            .session
            .unconfirmed_update()
            .as_deref()
            .and_then(to_base64)
        {
            Some(text) => storage.set_item(key, &text),
            None => storage.remove_item(key),
        };
        if kept.is_err() {
            warn("could not keep unsaved changes on this device");
        }
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
        clients: HashMap::from([(state.session.client_id(), entry)]),
    };
    send(&socket, &Message::Awareness(update).encode_v1());
}

#[cfg(test)]
mod tests {
    use super::*;

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
