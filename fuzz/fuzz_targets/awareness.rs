//! Awareness (presence) messages through `Room::receive`, from connections of several
//! people on both documents of a conference created through the real command.
//!
//! The first byte picks who sends first; then each op is one of: a raw awareness
//! message (the rest of its bytes after the message type); an awareness update built
//! from entries with client ids shared between connections or not, clocks old and
//! new, and states that are null, claim another identity, are big, deeply nested,
//! have many keys, or are not JSON objects at all; an awareness query; leaving and
//! joining again; or switching to another person.
//!
//! After every message it checks what the other screens would see: every state the
//! server relays carries the sender's identity as the server knows it (or is null),
//! every state it answers a query with carries someone's, a connection never holds
//! more states than the limit, and no connection is closed.

#![no_main]

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use roundtable_fuzz::connections::{Connections, Seat};
use roundtable_fuzz::{Conference, Input, Server, panics};
use roundtable_server::sync::room::Outcome;
use roundtable_shared::Role;
use roundtable_shared::doc::DocumentKind;
use serde::Deserialize;
use serde_json::{Value, json};
use yrs::ClientID;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

const INVITED: [Role; 4] = [
    Role::MinuteTaker,
    Role::Professional,
    Role::Parent,
    Role::RoomDisplay,
];
const MOST_OPS: usize = 32;
/// The message type of awareness in y-protocols.
const AWARENESS: u8 = 1;

struct Fixture {
    conference: Conference,
    connections: Connections,
    /// The user each person's states must carry.
    identities: Vec<Value>,
}

struct Harness {
    server: Server,
    fixture: Fixture,
}

static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| {
        let server = Server::start();
        let conference = server.block_on(server.conference(server.chair_session(), &INVITED));
        let identities = conference
            .people
            .iter()
            .map(|p| json!({ "id": p.id.to_string(), "name": p.name, "role": p.role.as_str() }))
            .collect();
        Mutex::new(Harness {
            server,
            fixture: Fixture {
                conference,
                connections: Connections::default(),
                identities,
            },
        })
    });
    let mut harness = harness.lock().unwrap_or_else(|e| e.into_inner());
    roundtable_fuzz::history::record(data);
    let Harness { server, fixture } = &mut *harness;
    panics::run(|| server.block_on(fixture.run(server, data)));
});

/// What a message was, for checking what came back.
enum Sent {
    /// Presence from this person: every relayed state must carry their identity.
    Presence(usize),
    /// A query: the answer's states carry someone's identity.
    Query,
}

impl Fixture {
    fn seat(&self, choice: u8) -> Seat {
        let person = usize::from(choice) % self.conference.people.len();
        let role = self.conference.people[person].role;
        let kind = if choice >= 128 && DocumentKind::Restricted.readable_by(role) {
            DocumentKind::Restricted
        } else {
            DocumentKind::Shared
        };
        (person, kind)
    }

    async fn run(&mut self, server: &Server, data: &[u8]) {
        let mut input = Input::new(data);
        let mut seat = self.seat(input.byte());
        let mut own_ids: Vec<u64> = Vec::new();
        let mut ops = 0;
        while !input.is_empty() && ops < MOST_OPS {
            ops += 1;
            match input.byte() % 6 {
                0 => {
                    let n = usize::from(input.u16());
                    let mut frame = vec![AWARENESS];
                    frame.extend_from_slice(input.bytes(n));
                    self.deliver(server, seat, &frame, Sent::Presence(seat.0))
                        .await;
                }
                1 | 2 => {
                    let frame = presence(&mut input, &mut own_ids, &self.identities);
                    self.deliver(server, seat, &frame, Sent::Presence(seat.0))
                        .await;
                }
                3 => {
                    let frame = Message::AwarenessQuery.encode_v1();
                    self.deliver(server, seat, &frame, Sent::Query).await;
                }
                4 => {
                    self.connections.leave(server, seat).await;
                    self.connections.get(server, &self.conference, seat).await;
                    // Removals of the old connection's states, and the greeting.
                    self.check_relayed(Sent::Query);
                }
                _ => seat = self.seat(input.byte()),
            }
        }
        self.check_held(server, seat).await;
    }

    async fn deliver(&mut self, server: &Server, seat: Seat, frame: &[u8], sent: Sent) {
        let joined = self.connections.get(server, &self.conference, seat).await;
        let (room, connection) = (Arc::clone(&joined.room), joined.connection);
        // A new connection's greeting holds everyone's presence.
        self.check_relayed(Sent::Query);
        let outcome = room
            .receive(server.storage(), server.limits(), connection, frame)
            .await;
        panics::settle(
            matches!(outcome, Outcome::Malformed(_)),
            "an awareness message",
        );
        self.check_relayed(sent);
        if let Some((seat, reason)) = self.connections.closed() {
            panics::fail(&format!(
                "the server closed the connection of {seat:?}: {reason:?}"
            ));
        }
    }

    /// Checks every presence state the server sent since the last message. A message
    /// relayed to several connections is one allocation, checked once.
    fn check_relayed(&mut self, sent: Sent) {
        let mut seen = HashSet::new();
        for (_, message) in self.connections.take_all() {
            if !seen.insert(Arc::as_ptr(&message)) {
                continue;
            }
            let Ok(Message::Awareness(update)) = Message::decode_v1(&message) else {
                continue;
            };
            for (client, entry) in update.clients {
                let Some(user) = user_of(&entry) else {
                    continue;
                };
                let fine = match sent {
                    Sent::Presence(person) => user == self.identities[person],
                    Sent::Query => self.identities.contains(&user),
                };
                if !fine {
                    panics::fail(&format!(
                        "the server sent client {client:?}'s state with user {user}"
                    ));
                }
            }
        }
    }

    /// Asks the room for everyone's presence: nobody holds more states than a
    /// connection may.
    async fn check_held(&mut self, server: &Server, seat: Seat) {
        let joined = self.connections.get(server, &self.conference, seat).await;
        let (room, connection) = (Arc::clone(&joined.room), joined.connection);
        self.connections.take_all();
        let frame = Message::AwarenessQuery.encode_v1();
        room.receive(server.storage(), server.limits(), connection, &frame)
            .await;
        panics::settle(false, "an awareness query");
        let mut held = vec![0usize; self.identities.len()];
        for message in self.connections.take(seat) {
            let Ok(Message::Awareness(update)) = Message::decode_v1(&message) else {
                continue;
            };
            for entry in update.clients.values() {
                let Some(user) = user_of(entry) else {
                    continue;
                };
                match self.identities.iter().position(|i| *i == user) {
                    Some(person) => held[person] += 1,
                    None => panics::fail(&format!("a state with user {user} is held")),
                }
            }
        }
        let most = server.limits().awareness_clients_per_connection;
        if held.iter().any(|&n| n > most) {
            panics::fail(&format!(
                "someone holds more than {most} presence states: {held:?}"
            ));
        }
        self.connections.take_all();
    }
}

/// A relayed state, as far as the checks look: it is a JSON object, and its user.
#[derive(Deserialize)]
struct State {
    #[serde(default)]
    user: Value,
}

/// The `user` of a relayed state; `None` for a state that was removed (null).
fn user_of(entry: &AwarenessUpdateEntry) -> Option<Value> {
    if entry.json.as_ref() == "null" {
        return None;
    }
    match serde_json::from_str::<State>(&entry.json) {
        Ok(state) => Some(state.user),
        Err(_) => panics::fail(&format!(
            "the server relayed a state that is not a JSON object: {:?}",
            &entry.json[..entry.json.len().min(200)]
        )),
    }
}

/// An awareness update built from the input's choices.
fn presence(input: &mut Input<'_>, own_ids: &mut Vec<u64>, identities: &[Value]) -> Vec<u8> {
    let count = input.byte() % 9;
    let mut clients = std::collections::HashMap::new();
    for _ in 0..count {
        let id = match input.byte() % 8 {
            0..=3 => u64::from(input.byte() % 4) + 1,
            4 => (1 << 53) - 1,
            5 => own_ids.last().copied().unwrap_or(1),
            6 => input.u64() & ((1 << 53) - 1),
            _ => u64::from(input.u32()),
        };
        if !own_ids.contains(&id) && own_ids.len() < 16 {
            own_ids.push(id);
        }
        let clock = match input.byte() % 4 {
            0 => 0,
            1 => 1,
            2 => u32::MAX,
            _ => input.u32(),
        };
        let json = state(input, identities);
        clients.insert(
            ClientID::new(id),
            AwarenessUpdateEntry {
                clock,
                json: Arc::from(json),
            },
        );
    }
    Message::Awareness(AwarenessUpdate { clients }).encode_v1()
}

/// A presence state, as text.
fn state(input: &mut Input<'_>, identities: &[Value]) -> String {
    match input.byte() % 9 {
        0 => "null".to_owned(),
        // Someone else's identity, or the chair's, claimed.
        1 => json!({
            "user": input.pick(identities),
            "cursor": { "item": input.text(), "index": input.u32() },
        })
        .to_string(),
        // Big.
        2 => {
            let size = usize::from(input.u16()).min(48 * 1024);
            json!({ "note": "x".repeat(size), "user": "me" }).to_string()
        }
        // Deeply nested.
        3 => {
            let depth = usize::from(input.u16() % 2048);
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        }
        4 => input.text(),
        5 => (*input.pick(&["[1,2,3]", "\"text\"", "1e999", "true", "{", "{}", ""])).to_owned(),
        // Many keys.
        6 => {
            let n = usize::from(input.u16() % 4096);
            let map: serde_json::Map<String, Value> =
                (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
            Value::Object(map).to_string()
        }
        7 => r#"{"user": {"id": "x"}, "user": {"role": "chair"}}"#.to_owned(),
        _ => json!({ "cursor": null, "typing": input.byte().is_multiple_of(2) }).to_string(),
    }
}
