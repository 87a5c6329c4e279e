//! Who is here, and what they are doing: the awareness states of a room's connections.
//!
//! A client names itself in its own state; the server replaces that with the identity
//! it knows ([`with_server_identity`]), so nobody can appear as someone else. A
//! connection holds at most a few states (one per tab or document it shows), and
//! cannot change or remove another connection's, nor take a client id whose changes
//! to the document belong to someone else.
//!
//! Where several nodes share a database, each node tells the others what changed
//! among its own connections' states (`Sharing`: a few at a time, a moment after
//! they change), and holds theirs beside its own, each under the node it came from.
//! The states a node relays were checked by that node, as its own are here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roundtable_shared::ParticipantId;
use yrs::ClientID;
use yrs::sync::AwarenessUpdate;
use yrs::sync::awareness::AwarenessUpdateEntry;

use super::cluster::Cluster;
use super::peer::Peer;
use super::room::RoomKey;

/// How long a change of presence waits for others to go with it to the other nodes.
const SHARE_AFTER: Duration = Duration::from_millis(40);

/// Whose a state is: a connection to this node's, or one on another node.
#[derive(Clone, PartialEq, Eq)]
enum Holder {
    Connection(u64),
    Node(Arc<str>),
}

/// One awareness state.
struct State {
    clock: u32,
    json: Arc<str>,
    holder: Holder,
    participant: ParticipantId,
    /// When it was last set or renewed.
    renewed: Instant,
}

/// The presence of everyone in a room.
#[derive(Default)]
pub struct Presence {
    states: HashMap<ClientID, State>,
    /// How this node's changes reach the other nodes; `None` where there are none.
    sharing: Option<Sharing>,
}

/// Sends the changes of this node's states to the other nodes.
pub struct Sharing {
    cluster: Arc<Cluster>,
    key: RoomKey,
    outbox: Arc<Mutex<Outbox>>,
}

/// Changes waiting to be sent, the latest per client, and whether a send is due.
#[derive(Default)]
struct Outbox {
    waiting: HashMap<ClientID, (u32, Arc<str>)>,
    due: bool,
}

/// States to relay: client, clock, JSON (`null` for one that is gone).
pub type Changed = Vec<(ClientID, u32, Arc<str>)>;

impl Sharing {
    pub fn new(cluster: Arc<Cluster>, key: RoomKey) -> Sharing {
        Sharing {
            cluster,
            key,
            outbox: Arc::default(),
        }
    }

    /// Queues changes for the other nodes; they go a moment later, with any that
    /// follow meanwhile.
    fn send(&self, changed: impl IntoIterator<Item = (ClientID, u32, Arc<str>)>) {
        let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        for (client, clock, json) in changed {
            outbox.waiting.insert(client, (clock, json));
        }
        if outbox.due || outbox.waiting.is_empty() {
            return;
        }
        outbox.due = true;
        let (cluster, key, waiting) = (self.cluster.clone(), self.key, self.outbox.clone());
        tokio::spawn(async move {
            tokio::time::sleep(SHARE_AFTER).await;
            let states: Vec<(u64, u32, Arc<str>)> = {
                let mut outbox = waiting.lock().unwrap_or_else(|e| e.into_inner());
                outbox.due = false;
                outbox
                    .waiting
                    .drain()
                    .map(|(client, (clock, json))| (client.get(), clock, json))
                    .collect()
            };
            if let Err(e) = cluster
                .nodes()
                .share_presence(key, cluster.node(), &states)
                .await
            {
                // Presence is renewed, or expires: nothing is lost for good.
                tracing::debug!(error = %e, "could not tell the other nodes of a change of presence");
            }
        });
    }
}

impl Presence {
    /// The presence of a room whose changes are shared with other nodes.
    pub fn shared(sharing: Sharing) -> Presence {
        Presence {
            states: HashMap::new(),
            sharing: Some(sharing),
        }
    }

    /// Tells the other nodes, if any, of changes to this node's states.
    fn share(&self, changed: &Changed) {
        if let Some(sharing) = &self.sharing
            && !changed.is_empty()
        {
            sharing.send(changed.iter().cloned());
        }
    }

    /// Sends every state of this node's to the other nodes (one asked for them).
    pub fn share_all(&self) {
        if let Some(sharing) = &self.sharing {
            sharing.send(
                self.states
                    .iter()
                    .filter(|(_, p)| matches!(p.holder, Holder::Connection(_)))
                    .map(|(id, p)| (*id, p.clock, p.json.clone())),
            );
        }
    }

    /// Takes states another node shares; returns what changed, to relay to this
    /// node's connections. A state a connection here holds stays as it is here.
    pub fn receive_from(&mut self, node: &str, states: Vec<(ClientID, u32, Arc<str>)>) -> Changed {
        let mut changed = Vec::new();
        for (client_id, clock, json) in states {
            match self.states.get(&client_id) {
                Some(p) if matches!(p.holder, Holder::Connection(_)) => continue,
                Some(p) if clock < p.clock => continue,
                _ => {}
            }
            if json.as_ref() == "null" {
                if self.states.remove(&client_id).is_some() {
                    changed.push((client_id, clock, json));
                }
                continue;
            }
            // The node that sent it put who it is on it, as `with_server_identity` does.
            let Some(participant) = identity(&json) else {
                continue;
            };
            self.states.insert(
                client_id,
                State {
                    clock,
                    json: json.clone(),
                    holder: Holder::Node(node.into()),
                    participant,
                    renewed: Instant::now(),
                },
            );
            changed.push((client_id, clock, json));
        }
        changed
    }

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
                // A device that moved here from another node keeps its id; nobody
                // else takes it.
                Some(p)
                    if matches!(p.holder, Holder::Node(_)) && p.participant == peer.participant => {
                }
                Some(p) if p.holder != Holder::Connection(connection) => continue,
                Some(p) if entry.clock < p.clock => continue,
                None => {
                    let held = self
                        .states
                        .values()
                        .filter(|p| p.holder == Holder::Connection(connection))
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
                    holder: Holder::Connection(connection),
                    participant: peer.participant,
                    renewed: Instant::now(),
                },
            );
            changed.push((client_id, entry.clock, json));
        }
        self.share(&changed);
        changed
    }

    /// Removes every state of `connection`; returns their removal, to relay.
    pub fn drop_connection(&mut self, connection: u64) -> Changed {
        let gone = self.remove_where(|p| p.holder == Holder::Connection(connection));
        self.share(&gone);
        gone
    }

    /// Removes every state not renewed within `timeout`, as a client that vanished
    /// leaves its state (another node's too: one that died says nothing); returns
    /// their removal, to relay.
    pub fn expire(&mut self, timeout: Duration) -> Changed {
        let now = Instant::now();
        let ours = self.remove_where(|p| {
            matches!(p.holder, Holder::Connection(_))
                && now.saturating_duration_since(p.renewed) > timeout
        });
        self.share(&ours);
        let mut gone = self.remove_where(|p| now.saturating_duration_since(p.renewed) > timeout);
        gone.extend(ours);
        gone
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

    /// Forgets every state (every connection was closed): the other nodes are told
    /// this node's are gone.
    pub fn clear(&mut self) {
        let ours = self.remove_where(|p| matches!(p.holder, Holder::Connection(_)));
        self.share(&ours);
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

/// Who a state says it is, as the server that took it wrote (`with_server_identity`).
fn identity(json: &str) -> Option<ParticipantId> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get("user")?.get("id")?.as_str()?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use roundtable_shared::Role;

    fn peer(n: u128, name: &str) -> Peer {
        Peer {
            participant: ParticipantId(uuid::Uuid::from_u128(n)),
            name: name.into(),
            role: Role::Professional,
        }
    }

    fn announce(client: u64, clock: u32, json: &str) -> AwarenessUpdate {
        update(vec![(ClientID::new(client), clock, Arc::from(json))])
    }

    #[test]
    fn another_node_s_states_sit_beside_ours_and_nobody_takes_an_id_of_someone_else_s() {
        let (pat, kim) = (peer(1, "Pat"), peer(2, "Kim"));
        // Pat's state, as the other node stamped it.
        let mut elsewhere = Presence::default();
        elsewhere.receive(&pat, 9, announce(7, 1, "{}"), 4, |_| false);
        let shared: Vec<_> = elsewhere
            .everyone()
            .clients
            .into_iter()
            .map(|(id, e)| (id, e.clock, e.json))
            .collect();

        let mut here = Presence::default();
        assert_eq!(here.receive_from("node-b", shared.clone()).len(), 1);
        assert_eq!(here.holder(ClientID::new(7)), Some(pat.participant));
        // Kim, connected here, cannot take Pat's id.
        assert!(
            here.receive(&kim, 1, announce(7, 5, "{}"), 4, |_| false)
                .is_empty()
        );
        assert_eq!(here.holder(ClientID::new(7)), Some(pat.participant));
        // Pat's device, moved to this node, keeps it; the other node's late word no
        // longer changes it, nor does its expiry here.
        assert_eq!(
            here.receive(&pat, 2, announce(7, 2, r#"{"editing":"x"}"#), 4, |_| false)
                .len(),
            1
        );
        assert!(
            here.receive_from("node-b", vec![(ClientID::new(7), 3, Arc::from("null"))])
                .is_empty()
        );
        assert_eq!(here.holder(ClientID::new(7)), Some(pat.participant));
        // An older state from another node does not replace a newer one; `null` removes.
        here.receive_from("node-c", vec![(ClientID::new(8), 4, shared[0].2.clone())]);
        assert!(
            here.receive_from("node-c", vec![(ClientID::new(8), 3, Arc::from("null"))])
                .is_empty()
        );
        assert_eq!(
            here.receive_from("node-c", vec![(ClientID::new(8), 5, Arc::from("null"))])
                .len(),
            1
        );
        assert_eq!(here.holder(ClientID::new(8)), None);
        // A state that does not say whose it is is left out.
        assert!(
            here.receive_from("node-c", vec![(ClientID::new(9), 1, Arc::from("{}"))])
                .is_empty()
        );
    }
}
