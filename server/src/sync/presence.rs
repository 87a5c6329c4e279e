//! Who is here, and what they are doing: the awareness states of a room's connections.
//!
//! A client names itself in its own state; the server replaces that with the identity
//! it knows ([`with_server_identity`]), so nobody can appear as someone else. A
//! connection holds at most a few states (one per tab or document it shows), and
//! cannot change or remove another connection's, nor take a client id whose changes
//! to the document belong to someone else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundtable_shared::ParticipantId;
use yrs::ClientID;
use yrs::sync::AwarenessUpdate;
use yrs::sync::awareness::AwarenessUpdateEntry;

use super::peer::Peer;

/// One awareness state.
struct State {
    clock: u32,
    json: Arc<str>,
    connection: u64,
    participant: ParticipantId,
    /// When it was last set or renewed.
    renewed: Instant,
}

/// The presence of everyone in a room.
#[derive(Default)]
pub struct Presence {
    states: HashMap<ClientID, State>,
}

/// States to relay: client, clock, JSON (`null` for one that is gone).
pub type Changed = Vec<(ClientID, u32, Arc<str>)>;

impl Presence {
    /// Takes an update from `connection`; returns what changed, to relay to everyone.
    /// A state under an id `owned_by_another` is left out.
    pub fn receive(
        &mut self,
        peer: &Peer,
        connection: u64,
        update: AwarenessUpdate,
        per_connection: usize,
        owned_by_another: impl Fn(ClientID) -> bool,
    ) -> Changed {
        let mut changed = Vec::new();
        for (client_id, entry) in update.clients {
            if owned_by_another(client_id) {
                continue;
            }
            match self.states.get(&client_id) {
                Some(p) if p.connection != connection => continue,
                Some(p) if entry.clock < p.clock => continue,
                None => {
                    let held = self
                        .states
                        .values()
                        .filter(|p| p.connection == connection)
                        .count();
                    if held >= per_connection {
                        continue;
                    }
                }
                _ => {}
            }
            if entry.json.as_ref() == "null" {
                if self.states.remove(&client_id).is_some() {
                    changed.push((client_id, entry.clock, entry.json));
                }
                continue;
            }
            let json = with_server_identity(&entry.json, peer);
            self.states.insert(
                client_id,
                State {
                    clock: entry.clock,
                    json: json.clone(),
                    connection,
                    participant: peer.participant,
                    renewed: Instant::now(),
                },
            );
            changed.push((client_id, entry.clock, json));
        }
        changed
    }

    /// Removes every state of `connection`; returns their removal, to relay.
    pub fn drop_connection(&mut self, connection: u64) -> Changed {
        self.remove_where(|p| p.connection == connection)
    }

    /// Removes every state not renewed within `timeout`, as a client that vanished
    /// leaves its state; returns their removal, to relay.
    pub fn expire(&mut self, timeout: Duration) -> Changed {
        let now = Instant::now();
        self.remove_where(|p| now.saturating_duration_since(p.renewed) > timeout)
    }

    /// Removes the states `gone` picks; returns their removal (a newer clock and
    /// `null`), to relay.
    fn remove_where(&mut self, gone: impl Fn(&State) -> bool) -> Changed {
        let ids: Vec<ClientID> = self
            .states
            .iter()
            .filter(|(_, p)| gone(p))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                let state = self.states.remove(&id)?;
                Some((id, state.clock.saturating_add(1), Arc::from("null")))
            })
            .collect()
    }

    /// Whose device goes by `client` here, if anyone's.
    pub fn holder(&self, client: ClientID) -> Option<ParticipantId> {
        self.states.get(&client).map(|p| p.participant)
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn clear(&mut self) {
        self.states.clear();
    }

    /// Everyone's state, as one update for a newcomer or a query.
    pub fn everyone(&self) -> AwarenessUpdate {
        update(
            self.states
                .iter()
                .map(|(id, p)| (*id, p.clock, p.json.clone()))
                .collect(),
        )
    }
}

/// An awareness update carrying `changed`.
pub fn update(changed: Changed) -> AwarenessUpdate {
    AwarenessUpdate {
        clients: changed
            .into_iter()
            .map(|(id, clock, json)| (id, AwarenessUpdateEntry { clock, json }))
            .collect(),
    }
}

/// Replaces whatever identity the client claimed with the one the server knows.
fn with_server_identity(json: &str, peer: &Peer) -> Arc<str> {
    let mut value = match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    value.insert(
        "user".into(),
        serde_json::json!({
            "id": peer.participant.to_string(),
            "name": peer.name,
            "role": peer.role.as_str(),
        }),
    );
    Arc::from(serde_json::Value::Object(value).to_string())
}
