//! The live board of one conference (`/conference/{id}`), read-only for now.
//!
//! The page keeps a local copy of the conference's shared document in sync
//! with the server over the standard Yjs sync protocol (y-protocols) on a
//! WebSocket, and draws the board from that copy after every change. Who is
//! here comes from the awareness protocol: the server puts each person's
//! name and role on their awareness state.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use roundtable_shared::doc::{self, Board};
use roundtable_shared::model::{Phase, Role};
use wasm_bindgen::{JsCast, prelude::*};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, Map, Out, ReadTxn, Transact, Update};

use crate::set_page_title;

/// The close code the server uses when someone has been removed from the
/// conference.
const CLOSE_REMOVED: u16 = 4403;
/// The first wait before connecting again, in milliseconds; it doubles after
/// every failed attempt, up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: u32 = 1_000;
const MAX_RETRY_MS: u32 = 30_000;

/// The state of the connection to the server, as the page tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connection {
    Connecting,
    Connected,
    Reconnecting,
    Offline,
    Removed,
}

impl Connection {
    pub(crate) fn words(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Connected => "Connected",
            Self::Reconnecting => "Reconnecting…",
            Self::Offline => "Offline",
            Self::Removed => "You have been removed from this conference",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Self::Connected => "connection connected",
            Self::Removed => "connection removed",
            _ => "connection waiting",
        }
    }
}

/// How long to wait before the next attempt, after `failures` failed ones.
pub(crate) fn retry_delay_ms(failures: u32) -> u32 {
    FIRST_RETRY_MS
        .saturating_mul(1u32 << failures.min(15))
        .min(MAX_RETRY_MS)
}

/// What the board shows, read from the document.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    title: Option<String>,
    phase: Option<Phase>,
    headings: Vec<HeadingView>,
}

#[derive(Debug, Clone, PartialEq)]
struct HeadingView {
    key: String,
    title: String,
    items: Vec<ItemView>,
}

#[derive(Debug, Clone, PartialEq)]
struct ItemView {
    id: String,
    text: String,
}

/// Someone present, from their awareness state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    id: String,
    name: String,
    role: String,
}

impl Person {
    /// Reads the `user` the server puts on an awareness state. `null` (or a
    /// state without a user) means nobody.
    fn from_state(json: &str) -> Option<Person> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        let user = value.get("user")?;
        let text = |key: &str| user.get(key)?.as_str().map(str::to_owned);
        Some(Person {
            id: text("id")?,
            name: text("name")?,
            role: text("role").unwrap_or_default(),
        })
    }

    fn role_words(&self) -> &str {
        Role::parse(&self.role).map_or("", Role::label)
    }
}

/// Reads everything the board shows from the document.
pub(crate) fn snapshot(doc: &Doc) -> Snapshot {
    let txn = doc.transact();
    let mut headings = read_headings(&txn);
    if let Some(board) = Board::get(&txn) {
        for item in board.items(&txn) {
            if let Some(heading) = headings.iter_mut().find(|h| h.key == item.heading) {
                heading.items.push(ItemView {
                    id: item.id,
                    text: item.text,
                });
            }
        }
    }
    Snapshot {
        title: doc::read_title(&txn),
        phase: doc::read_phase(&txn),
        headings,
    }
}

fn read_headings<T: ReadTxn>(txn: &T) -> Vec<HeadingView> {
    let Some(meta) = txn.get_map(doc::META) else {
        return Vec::new();
    };
    let Some(Out::Any(Any::Array(list))) = meta.get(txn, doc::meta::HEADINGS) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|heading| {
            let Any::Map(fields) = heading else {
                return None;
            };
            let text = |key: &str| match fields.get(key) {
                Some(Any::String(s)) => Some(s.to_string()),
                _ => None,
            };
            Some(HeadingView {
                key: text("key")?,
                title: text("title")?,
                items: Vec::new(),
            })
        })
        .collect()
}

/// The connection to the server and the local copy of the document.
struct Sync {
    url: String,
    doc: Doc,
    socket: Option<WebSocket>,
    /// Keeps the socket's event handlers alive while the socket is in use.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    failures: u32,
    retry_timer: Option<i32>,
    removed: bool,
    /// Our own awareness clock: it goes up every time we announce ourselves.
    awareness_clock: u32,
    /// Everyone's awareness state: client id → (clock, person if present).
    present: HashMap<u64, (u32, Option<Person>)>,
    set_connection: WriteSignal<Connection>,
    set_board: WriteSignal<Snapshot>,
    set_people: WriteSignal<Vec<Person>>,
}

type Shared = Rc<RefCell<Sync>>;

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

fn send(socket: &WebSocket, message: Message) {
    let bytes = message.encode_v1();
    if socket.send_with_u8_array(&bytes).is_err() {
        web_sys::console::warn_1(&"Roundtable: could not send a message".into());
    }
}

fn connect(shared: &Shared) {
    let mut sync = shared.borrow_mut();
    if sync.removed || sync.socket.is_some() {
        return;
    }
    if let Some(timer) = sync.retry_timer.take() {
        window().clear_timeout_with_handle(timer);
    }
    let socket = match WebSocket::new(&sync.url) {
        Ok(socket) => socket,
        Err(_) => {
            drop(sync);
            retry_later(shared);
            return;
        }
    };
    socket.set_binary_type(BinaryType::Arraybuffer);

    let on_open = {
        let shared = shared.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_| opened(&shared))
    };
    let on_message = {
        let shared = shared.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let Ok(event) = event.dyn_into::<MessageEvent>() else {
                return;
            };
            let bytes = js_sys::Uint8Array::new(&event.data()).to_vec();
            received(&shared, &bytes);
        })
    };
    let on_close = {
        let shared = shared.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let code = event.dyn_into::<CloseEvent>().map_or(1006, |e| e.code());
            closed(&shared, code);
        })
    };
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    sync.handlers = vec![on_open, on_message, on_close];
    sync.socket = Some(socket);
}

fn opened(shared: &Shared) {
    let mut sync = shared.borrow_mut();
    let Some(socket) = sync.socket.clone() else {
        return;
    };
    let state_vector = sync.doc.transact().state_vector();
    send(&socket, Message::Sync(SyncMessage::SyncStep1(state_vector)));
    // Announce ourselves; the server adds our name and role.
    sync.awareness_clock += 1;
    let entry = AwarenessUpdateEntry {
        clock: sync.awareness_clock,
        json: "{}".into(),
    };
    let update = AwarenessUpdate {
        clients: HashMap::from([(sync.doc.client_id(), entry)]),
    };
    send(&socket, Message::Awareness(update));
}

fn received(shared: &Shared, bytes: &[u8]) {
    let mut sync = shared.borrow_mut();
    let Ok(message) = Message::decode_v1(bytes) else {
        web_sys::console::warn_1(
            &"Roundtable: a message from the server was not understood".into(),
        );
        return;
    };
    match message {
        Message::Sync(SyncMessage::SyncStep1(their_state)) => {
            let update = sync.doc.transact().encode_state_as_update_v1(&their_state);
            if let Some(socket) = &sync.socket {
                send(socket, Message::Sync(SyncMessage::SyncStep2(update)));
            }
        }
        Message::Sync(SyncMessage::SyncStep2(update)) => {
            apply(&sync, &update);
            // The server's SyncStep2 holds the whole document: we are in step.
            sync.failures = 0;
            sync.set_connection.set(Connection::Connected);
        }
        Message::Sync(SyncMessage::Update(update)) => apply(&sync, &update),
        Message::Awareness(update) => {
            for (client, entry) in update.clients {
                let client = client.get();
                let newer = sync
                    .present
                    .get(&client)
                    .is_none_or(|(clock, _)| entry.clock >= *clock);
                if newer {
                    sync.present
                        .insert(client, (entry.clock, Person::from_state(&entry.json)));
                }
            }
            let people = people(&sync.present);
            sync.set_people.set(people);
        }
        Message::Auth(Some(reason)) => {
            web_sys::console::warn_1(
                &format!("Roundtable: the server refused a change: {reason}").into(),
            );
        }
        _ => {}
    }
}

/// Applies an update from the server to the local copy, and redraws the board.
fn apply(sync: &Sync, update: &[u8]) {
    let applied = Update::decode_v1(update)
        .map_err(|_| ())
        .and_then(|update| sync.doc.transact_mut().apply_update(update).map_err(|_| ()));
    if applied.is_err() {
        web_sys::console::warn_1(&"Roundtable: an update could not be applied".into());
    }
    let board = snapshot(&sync.doc);
    if let Some(title) = &board.title {
        set_page_title(title);
    }
    sync.set_board.set(board);
}

/// Everyone present, once each, in name order.
fn people(present: &HashMap<u64, (u32, Option<Person>)>) -> Vec<Person> {
    let mut people: Vec<Person> = present
        .values()
        .filter_map(|(_, person)| person.clone())
        .collect();
    people.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    people.dedup_by(|a, b| a.id == b.id);
    people
}

fn closed(shared: &Shared, code: u16) {
    {
        let mut sync = shared.borrow_mut();
        if let Some(socket) = sync.socket.take() {
            socket.set_onopen(None);
            socket.set_onmessage(None);
            socket.set_onclose(None);
        }
        // Who was here is no longer known.
        sync.present.clear();
        sync.set_people.set(Vec::new());
        if code == CLOSE_REMOVED {
            sync.removed = true;
            // Someone removed must not keep seeing the board.
            sync.doc = Doc::new();
            sync.set_board.set(Snapshot::default());
            sync.set_connection.set(Connection::Removed);
            return;
        }
    }
    retry_later(shared);
}

fn retry_later(shared: &Shared) {
    let mut sync = shared.borrow_mut();
    if sync.removed || sync.retry_timer.is_some() {
        return;
    }
    let delay = retry_delay_ms(sync.failures);
    sync.failures = sync.failures.saturating_add(1);
    sync.set_connection.set(if online() {
        Connection::Reconnecting
    } else {
        Connection::Offline
    });
    let again = {
        let shared = shared.clone();
        Closure::once_into_js(move || {
            shared.borrow_mut().retry_timer = None;
            connect(&shared);
        })
    };
    sync.retry_timer = window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(again.unchecked_ref(), delay as i32)
        .ok();
}

/// Follows the browser going offline and coming back.
fn watch_network(shared: &Shared) {
    let on_offline = {
        let shared = shared.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let sync = shared.borrow();
            if !sync.removed {
                sync.set_connection.set(Connection::Offline);
            }
        })
    };
    let on_online = {
        let shared = shared.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let open = {
                let mut sync = shared.borrow_mut();
                if sync.removed {
                    return;
                }
                sync.failures = 0;
                let open = sync
                    .socket
                    .as_ref()
                    .is_some_and(|s| s.ready_state() == WebSocket::OPEN);
                sync.set_connection.set(if open {
                    Connection::Connected
                } else {
                    Connection::Reconnecting
                });
                open
            };
            if !open {
                connect(&shared);
            }
        })
    };
    let window = window();
    let _ = window.add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
    let _ = window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    // The page lives as long as the tab: so do its listeners.
    on_offline.forget();
    on_online.forget();
}

/// The live board of the conference `conference_id`.
#[component]
pub fn BoardPage(conference_id: String) -> impl IntoView {
    set_page_title("Your conference");
    let (connection, set_connection) = signal(if online() {
        Connection::Connecting
    } else {
        Connection::Offline
    });
    let (board, set_board) = signal(Snapshot::default());
    let (people, set_people) = signal(Vec::<Person>::new());

    let shared: Shared = Rc::new(RefCell::new(Sync {
        url: sync_url(&conference_id),
        doc: Doc::new(),
        socket: None,
        handlers: Vec::new(),
        failures: 0,
        retry_timer: None,
        removed: false,
        awareness_clock: 0,
        present: HashMap::new(),
        set_connection,
        set_board,
        set_people,
    }));
    watch_network(&shared);
    connect(&shared);

    let title = move || {
        board
            .with(|b| b.title.clone())
            .unwrap_or_else(|| "Your conference".to_owned())
    };
    let phase = move || {
        board.with(|b| b.phase).map(|phase| {
            view! { <p class="phase">"Now: " <strong>{phase.label()}</strong></p> }
        })
    };
    let headings = move || {
        board
            .get()
            .headings
            .into_iter()
            .map(|heading| {
                let id = format!("heading-{}", heading.key);
                let items = if heading.items.is_empty() {
                    view! { <p class="empty">"Nothing here yet."</p> }.into_any()
                } else {
                    view! {
                        <ul class="items">
                            {heading
                                .items
                                .into_iter()
                                .map(|item| {
                                    view! { <li class="item" data-item=item.id>{item.text}</li> }
                                })
                                .collect_view()}
                        </ul>
                    }
                    .into_any()
                };
                let labelled_by = id.clone();
                view! {
                    <section class="heading" aria-labelledby=labelled_by>
                        <h2 id=id>{heading.title}</h2>
                        {items}
                    </section>
                }
            })
            .collect_view()
    };
    let present = move || {
        let people = people.get();
        if people.is_empty() {
            view! { <p class="empty">"Nobody else is connected yet."</p> }.into_any()
        } else {
            view! {
                <ul class="present">
                    {people
                        .into_iter()
                        .map(|person| {
                            let role = person.role_words().to_owned();
                            view! {
                                <li>
                                    {person.name}
                                    {(!role.is_empty()).then(|| format!(" ({role})"))}
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any()
        }
    };

    view! {
        <main id="main" class="board-page">
            <h1>{title}</h1>
            <p role="status" aria-live="polite" class=move || connection.get().class()>
                {move || connection.get().words()}
            </p>
            {move || {
                (connection.get() == Connection::Removed)
                    .then(|| {
                        view! {
                            <p>
                                "If you think this is a mistake, speak to the chair of the conference "
                                "or your social worker."
                            </p>
                        }
                    })
            }}
            {phase}
            <div class="headings">{headings}</div>
            <section class="who" aria-labelledby="who-heading">
                <h2 id="who-heading">"Who is here"</h2>
                {present}
            </section>
        </main>
    }
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
        let jo = Person::from_state(r#"{"user":{"id":"p1","name":"Jo","role":"parent"}}"#);
        assert_eq!(
            jo.map(|p| p.role_words().to_owned()),
            Some("Parent".to_owned())
        );
    }

    #[test]
    fn the_board_reads_headings_and_items_in_order() {
        use roundtable_shared::doc::NewItem;
        use yrs::WriteTxn;
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            let meta = txn.get_or_insert_map(doc::META);
            meta.insert(&mut txn, doc::meta::TITLE, "Alex");
            let headings: Vec<Any> = [
                ("worries", "What are we worried about?"),
                ("working_well", "What is working well?"),
            ]
            .into_iter()
            .map(|(key, title)| {
                Any::from(HashMap::from([
                    ("key".to_owned(), Any::from(key)),
                    ("title".to_owned(), Any::from(title)),
                ]))
            })
            .collect();
            meta.insert(&mut txn, doc::meta::HEADINGS, Any::from(headings));
            let board = Board::in_txn(&mut txn);
            let author = "00000000-0000-0000-0000-000000000001".parse().unwrap();
            for (id, text) in [("a", "first"), ("b", "second")] {
                board.add_item(
                    &mut txn,
                    NewItem {
                        id,
                        heading: "worries",
                        text,
                        author,
                        said_by: None,
                        children: &[],
                    },
                );
            }
        }
        let board = snapshot(&doc);
        assert_eq!(board.title.as_deref(), Some("Alex"));
        assert_eq!(board.headings.len(), 2);
        let texts: Vec<&str> = board.headings[0]
            .items
            .iter()
            .map(|i| i.text.as_str())
            .collect();
        assert_eq!(texts, ["first", "second"]);
        assert!(board.headings[1].items.is_empty());
    }
}
