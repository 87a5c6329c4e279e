//! The rooms open now: loaded on first use, unloaded (after a final compaction) when
//! the last connection leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use roundtable_shared::ParticipantId;
use tokio::sync::{Mutex, OwnedMutexGuard};
use yrs::{Doc, TransactionMut};

use super::cluster::{Cluster, ClusterConfig};
use super::mailbox::{self, CloseReason, Receiver};
use super::peer::Peer;
use super::room::{Connection, Room, RoomKey, ServerChange, compact};
use super::{Limits, allowance};
use crate::storage::{Storage, StorageError};
use roundtable_shared::ConferenceId;

/// A connection's handle on its room.
pub struct Joined {
    pub room: Arc<Room>,
    pub connection: u64,
    pub mailbox: Receiver,
    /// How much presence this participant may still send, on all their connections.
    pub presence: allowance::Shared,
}

/// Where one room lives in the registry. Its lock is held while the room is loaded,
/// joined, changed by the server or unloaded, so those happen one at a time for one
/// conference document, and never hold up another.
type Slot = Arc<Mutex<Option<Arc<Room>>>>;

/// The rooms open now. A room is loaded on first use and unloaded (after a final
/// compaction) when its last connection leaves.
pub struct Rooms {
    storage: Storage,
    limits: Limits,
    /// Held only to find or drop a slot, never across an `await`.
    open: std::sync::Mutex<HashMap<RoomKey, Slot>>,
    next_connection: AtomicU64,
    /// Each participant's presence allowance, kept while one of their connections
    /// holds it or until it is full again.
    presence: std::sync::Mutex<Allowances>,
    /// The other nodes, on a database several may share (PostgreSQL).
    cluster: Option<Arc<Cluster>>,
}

/// The presence allowances, and how many were left when they were last pruned.
#[derive(Default)]
struct Allowances {
    by_participant: HashMap<ParticipantId, allowance::Shared>,
    after_pruning: usize,
}

impl Rooms {
    /// The rooms of a node: the only one on SQLite; on PostgreSQL, one among those
    /// sharing the database, named by `node` (a name of its own when `None`). Its
    /// tasks among the other nodes start with [`Rooms::start`].
    pub fn new(storage: Storage, limits: Limits) -> Rooms {
        Self::with_node(storage, limits, None)
    }

    /// As [`Rooms::new`], for a node configured so.
    pub fn with_node(storage: Storage, limits: Limits, node: Option<ClusterConfig>) -> Rooms {
        let cluster = storage.nodes().map(|nodes| {
            let config =
                node.unwrap_or_else(|| ClusterConfig::new(&ClusterConfig::default_node_name()));
            Arc::new(Cluster::new(nodes, storage.clone(), limits.clone(), config))
        });
        Rooms {
            storage,
            limits,
            open: std::sync::Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            presence: std::sync::Mutex::default(),
            cluster,
        }
    }

    /// Starts the node's tasks among the others sharing the database, if any.
    pub fn start(&self) {
        if let Some(cluster) = &self.cluster {
            tracing::info!(node = %cluster.node(), "this node shares the database with any others");
            cluster.start();
        }
    }

    /// This node among those sharing the database; `None` on SQLite.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// This node's name among those sharing the database; `None` on SQLite.
    pub fn node(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| &**c.node())
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<RoomKey, Slot>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the slot of `key`, creating it if needed.
    async fn slot(&self, key: RoomKey) -> OwnedMutexGuard<Option<Arc<Room>>> {
        loop {
            let slot = self.registry().entry(key).or_default().clone();
            let guard = slot.clone().lock_owned().await;
            // An empty slot is dropped from the registry by whoever held it last; a
            // waiter on the dropped slot starts again with the current one.
            if self
                .registry()
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, &slot))
            {
                return guard;
            }
        }
    }

    /// Lets go of a slot, dropping it from the registry if it holds no room.
    fn release(&self, key: RoomKey, guard: OwnedMutexGuard<Option<Arc<Room>>>) {
        if guard.is_none() {
            let mut registry = self.registry();
            let slot = OwnedMutexGuard::mutex(&guard);
            if registry
                .get(&key)
                .is_some_and(|current| Arc::ptr_eq(current, slot))
            {
                registry.remove(&key);
            }
        }
    }

    /// The slots open now, for visiting every room.
    fn slots(&self) -> Vec<Slot> {
        self.registry().values().cloned().collect()
    }

    async fn get_or_load(
        &self,
        slot: &mut Option<Arc<Room>>,
        key: RoomKey,
    ) -> Result<Arc<Room>, StorageError> {
        if let Some(room) = slot.as_ref() {
            if !room.is_poisoned().await {
                return Ok(room.clone());
            }
            room.release().await;
        }
        *slot = None;
        // Boxed: loading is a large future, and a connection's task would otherwise
        // carry its size for as long as the connection lasts.
        let room = Arc::new(Box::pin(Room::load(key, &self.storage, self.cluster.clone())).await?);
        if let Some(cluster) = &self.cluster {
            cluster.open(&room);
        }
        *slot = Some(room.clone());
        Ok(room)
    }

    /// The presence allowance `participant`'s connections share.
    fn presence_allowance(&self, participant: ParticipantId) -> allowance::Shared {
        let now = std::time::Instant::now();
        let mut all = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        // Pruned only once the map has doubled since it last was, so that joining
        // costs the same however many people are connected.
        if all.by_participant.len() >= 2 * all.after_pruning.max(64) {
            all.by_participant.retain(|_, shared| !shared.unused(now));
            all.after_pruning = all.by_participant.len();
        }
        all.by_participant
            .entry(participant)
            .or_insert_with(|| {
                allowance::Shared::new(allowance::Allowance::new(
                    self.limits.presence_bytes_per_second,
                    self.limits.presence_burst_bytes,
                ))
            })
            .clone()
    }

    /// Adds a connection to the room, loading it if needed.
    pub async fn join(&self, key: RoomKey, peer: Peer) -> Result<Joined, StorageError> {
        let presence = self.presence_allowance(peer.participant);
        let mut slot = self.slot(key).await;
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mailbox::mailbox(self.limits.outgoing_queue);
        let room = loop {
            let room = match self.get_or_load(&mut slot, key).await {
                Ok(room) => room,
                Err(e) => {
                    self.release(key, slot);
                    return Err(e);
                }
            };
            // The greeting and joining happen under one lock, so no update can fall
            // between the state the connection is sent and the first update it relays.
            let mut state = room.state.lock().await;
            // A room may have been closed since it was found (it may hold changes that
            // were never stored): nobody is greeted from it, it is loaded afresh. One
            // just loaded cannot be, as nothing else uses it before the slot is let go.
            if !state.poisoned {
                let handle = Connection::new(peer, sender);
                // Nobody is greeted with someone who has vanished.
                let gone = state.presence.expire(self.limits.presence_timeout);
                if !gone.is_empty() {
                    let message = super::room::encode(&yrs::sync::Message::Awareness(
                        super::presence::update(gone),
                    ));
                    super::room::broadcast(&mut state, None, message);
                }
                for message in Room::greeting(&state) {
                    handle.mailbox.post(message);
                }
                state.connections.insert(connection, handle);
                drop(state);
                break room;
            }
            drop(state);
            room.release().await;
            *slot = None;
        };
        self.release(key, slot);
        Ok(Joined {
            room,
            connection,
            mailbox: receiver,
            presence,
        })
    }

    /// Removes a connection; unloads the room when it was the last.
    pub async fn leave(&self, room: &Arc<Room>, connection: u64) {
        let mut slot = self.slot(room.key()).await;
        if room.leave(connection).await {
            let mut state = room.state.lock().await;
            if state.connections.is_empty() {
                if state.document.since_snapshot > 0 {
                    compact(&mut state, &self.storage, room.key()).await;
                }
                drop(state);
                if slot.as_ref().is_some_and(|r| Arc::ptr_eq(r, room)) {
                    *slot = None;
                    room.release().await;
                }
            }
        }
        self.release(room.key(), slot);
    }

    /// Runs a server change on a conference's document, loading it if needed. On a
    /// node that does not own the document, it is forwarded to the node that does,
    /// and this returns once the owner has stored it (or refused it).
    pub async fn server_change(
        &self,
        key: RoomKey,
        change: impl FnOnce(&mut TransactionMut),
    ) -> Result<(), StorageError> {
        let mut slot = self.slot(key).await;
        let (result, room) = match self.get_or_load(&mut slot, key).await {
            Ok(room) => {
                let result = room.server_change(&self.storage, change).await;
                // A change that could not be stored is still in memory: drop the room
                // so it is reloaded from storage without it.
                if result.is_err() {
                    *slot = None;
                    room.release().await;
                }
                (result, Some(room))
            }
            Err(e) => (Err(e), None),
        };
        self.release(key, slot);
        let outcome = match (result, &self.cluster) {
            (Err(e), _) => Err(e),
            (Ok(ServerChange::Done), _) => Ok(()),
            (Ok(ServerChange::Forwarded(id)), Some(cluster)) => cluster.verdict(key, id).await,
            (Ok(ServerChange::Forwarded(_)), None) => Err(StorageError::NotOwner),
        };
        // A room loaded for the change alone is unloaded once it is decided. Until
        // then a follower's stays open: if the owner lets the document go meanwhile
        // (its own room was loaded for a change alone too), this node takes it over
        // and decides the change itself.
        if let Some(room) = room {
            self.unload_if_unused(&room).await;
        }
        outcome
    }

    /// Unloads `room` if nobody is connected to it.
    async fn unload_if_unused(&self, room: &Arc<Room>) {
        let mut slot = self.slot(room.key()).await;
        if slot.as_ref().is_some_and(|r| Arc::ptr_eq(r, room)) && room.connection_count().await == 0
        {
            *slot = None;
            room.release().await;
        }
        self.release(room.key(), slot);
    }

    /// Closes every open connection of `participant` to `conference`, on every node.
    pub async fn disconnect(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
        reason: CloseReason,
    ) {
        if let Some(cluster) = &self.cluster {
            let told = cluster
                .nodes()
                .disconnect(conference, participant, reason.code, &reason.reason)
                .await;
            if let Err(e) = told {
                // Their link and sessions have ended: they cannot connect again.
                tracing::warn!(conference = %conference, error = %e,
                    "could not tell the other nodes to close a participant's connections");
            }
        }
        let rooms: Vec<Slot> = self
            .registry()
            .iter()
            .filter(|(key, _)| key.0 == conference)
            .map(|(_, slot)| slot.clone())
            .collect();
        for slot in rooms {
            let room = slot.lock().await.clone();
            if let Some(room) = room {
                room.disconnect(participant, &reason).await;
            }
        }
    }

    /// How many documents are loaded in memory now.
    pub async fn open_count(&self) -> usize {
        let mut count = 0;
        for slot in self.slots() {
            if slot.lock().await.is_some() {
                count += 1;
            }
        }
        count
    }

    /// Closes every connection (at shutdown); clients reconnect by themselves.
    pub async fn close_all(&self) {
        let reason = CloseReason::new(1012, "the server is restarting");
        for slot in self.slots() {
            let room = slot.lock().await.clone();
            if let Some(room) = room {
                room.state.lock().await.close_all(reason.clone());
            }
        }
    }

    /// Compacts every open room, and gives every lease up (at shutdown).
    pub async fn flush(&self) {
        for slot in self.slots() {
            let room = slot.lock().await.clone();
            if let Some(room) = room {
                let mut state = room.state.lock().await;
                if state.document.since_snapshot > 0 {
                    compact(&mut state, &self.storage, room.key()).await;
                }
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.stop();
            cluster.give_up_all().await;
        }
    }

    /// A room's document, loaded for reading (used by tests and exports).
    pub async fn read<R>(
        &self,
        key: RoomKey,
        f: impl FnOnce(&yrs::Transaction, &Doc) -> R,
    ) -> Result<R, StorageError> {
        let mut slot = self.slot(key).await;
        let result = match self.get_or_load(&mut slot, key).await {
            Ok(room) => {
                let result = room.read(f).await;
                if room.connection_count().await == 0 {
                    *slot = None;
                    room.release().await;
                }
                Ok(result)
            }
            Err(e) => Err(e),
        };
        self.release(key, slot);
        result
    }
}
