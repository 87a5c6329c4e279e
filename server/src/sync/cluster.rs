//! This node among the others sharing a PostgreSQL database: its name, the leases
//! its rooms hold, and the three tasks that keep it in step with the others.
//!
//! - *Renewing*: every `renew_every`, every lease the node holds is extended in one
//!   statement; a room whose lease could not be extended follows from then on.
//! - *Listening*: a connection of its own `LISTEN`s for wake-ups ([`Notice`]) and
//!   wakes the room they name. Notifications may be lost while that connection is
//!   down, so when it comes back every room is woken.
//! - *Polling*: every `poll_every`, one statement says where every open document
//!   stands (its last sequence number, whether it is leased, whether forwarded
//!   updates or verdicts wait), and each room that is behind is woken.
//!
//! Each room has a task of its own that does what it was woken for
//! (`Room::step`, in `follower.rs`), one thing at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use roundtable_shared::ConferenceId;
use tokio::sync::{Notify, broadcast, watch};

use super::Limits;
use super::room::{Room, RoomKey};
use crate::storage::nodes::{Nodes, Notice};
use crate::storage::{ForwardVerdict, Lease, Result, Storage, StorageError};

/// How often a command waits looking for the owner's verdict on its change.
const VERDICT_POLL: Duration = Duration::from_millis(10);

/// How a node takes part among the others.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The node's name, as the leases it holds say (unique among the nodes).
    pub node: Arc<str>,
    /// How long a lease lasts unless renewed.
    pub lease: Duration,
    /// How often the leases held are renewed: well inside their lifetime.
    pub renew_every: Duration,
    /// How often every open document is looked at, in case a wake-up was lost.
    pub poll_every: Duration,
    /// How long a forwarded update may wait for the owner's verdict before its
    /// sender is told it was not saved (and sends it again when it reconnects).
    pub forward_timeout: Duration,
}

impl ClusterConfig {
    /// The defaults, for a node of this name.
    pub fn new(node: &str) -> ClusterConfig {
        ClusterConfig {
            node: node.into(),
            lease: Duration::from_secs(5),
            renew_every: Duration::from_millis(1200),
            poll_every: Duration::from_millis(500),
            forward_timeout: Duration::from_secs(10),
        }
    }

    /// A name for this node when none is given: the host's, the process's id, and a
    /// few random characters (two processes of one test share a pid).
    pub fn default_node_name() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".to_owned());
        let random: u16 = rand::random();
        format!("{host}-{}-{random:04x}", std::process::id())
    }
}

/// What a room is to look at when its task next runs; set by whoever wakes it.
#[derive(Default)]
pub struct Wake {
    reasons: AtomicU8,
    notify: Arc<Notify>,
}

impl Wake {
    /// Rows were stored after the room's cursor.
    pub const UPDATES: u8 = 1;
    /// Updates were forwarded to the owner.
    pub const FORWARDED: u8 = 2;
    /// The owner gave verdicts on this node's forwarded updates.
    pub const ANSWERED: u8 = 4;
    /// The lease may be free.
    pub const LEASE: u8 = 8;
    pub const ALL: u8 = 15;

    pub fn wake(&self, reasons: u8) {
        self.reasons.fetch_or(reasons, Ordering::AcqRel);
        // A wake-up given while the task is busy is kept for when it next waits.
        self.notify.notify_one();
    }

    fn take(&self) -> u8 {
        self.reasons.swap(0, Ordering::AcqRel)
    }
}

pub struct Cluster {
    nodes: Nodes,
    storage: Storage,
    limits: Limits,
    config: ClusterConfig,
    /// The rooms open on this node, to wake by their document.
    rooms: Mutex<HashMap<RoomKey, Weak<Room>>>,
    /// Conferences whose safety scales another node changed (`Notice::Scales`).
    scales: broadcast::Sender<ConferenceId>,
    /// The leases this node's rooms hold, at their epochs, to renew.
    held: Mutex<HashMap<RoomKey, i64>>,
    stopping: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    pub fn new(nodes: Nodes, storage: Storage, limits: Limits, config: ClusterConfig) -> Cluster {
        Cluster {
            nodes,
            storage,
            limits,
            config,
            rooms: Mutex::default(),
            scales: broadcast::channel(64).0,
            held: Mutex::default(),
            stopping: watch::channel(false).0,
        }
    }

    pub fn node(&self) -> &Arc<str> {
        &self.config.node
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Conferences whose safety scales another node opened, closed or revealed (or
    /// removed someone from), for the phones' pages connected here.
    pub fn scales_elsewhere(&self) -> broadcast::Receiver<ConferenceId> {
        self.scales.subscribe()
    }

    /// Tells the other nodes that this one changed a conference's safety scales.
    pub async fn scales_changed(&self, conference: ConferenceId) {
        if let Err(e) = self
            .nodes
            .scales_changed(conference, &self.config.node)
            .await
        {
            // The phones on other nodes see it when they next load the page.
            tracing::warn!(%conference, error = %e, "could not tell the other nodes of a change to the scales");
        }
    }

    /// Takes a document's lease if nobody holds it, and keeps it renewed.
    pub async fn acquire(&self, key: RoomKey) -> Result<Option<Lease>> {
        let lease = self
            .nodes
            .acquire(key, &self.config.node, self.config.lease)
            .await?;
        if let Some(lease) = &lease {
            lock(&self.held).insert(key, lease.epoch);
        }
        Ok(lease)
    }

    /// Stops renewing a lease (it was lost, or is being given up).
    pub fn forget(&self, key: RoomKey, lease: &Lease) {
        let mut held = lock(&self.held);
        if held.get(&key) == Some(&lease.epoch) {
            held.remove(&key);
        }
    }

    /// Gives a lease up, so that another node may take the document over at once.
    pub async fn give_up(&self, key: RoomKey, lease: &Lease) {
        self.forget(key, lease);
        if let Err(e) = self
            .nodes
            .give_up(&self.config.node, &[(key, lease.epoch)])
            .await
        {
            // It expires by itself in a few seconds.
            tracing::warn!(conference = %key.0, error = %e, "could not give the document's lease up");
        }
    }

    /// Gives up every lease held (at shutdown).
    pub async fn give_up_all(&self) {
        let held: Vec<(RoomKey, i64)> = lock(&self.held).drain().collect();
        if held.is_empty() {
            return;
        }
        if let Err(e) = self.nodes.give_up(&self.config.node, &held).await {
            tracing::warn!(error = %e, "could not give the leases up");
        }
    }

    /// Waits for the owner's verdict on the server's own change, forwarded by this
    /// node as the row `id`: `Ok` once it is stored (or was nothing new).
    pub async fn verdict(&self, key: RoomKey, id: i64) -> Result<()> {
        let until = tokio::time::Instant::now() + self.config.forward_timeout;
        loop {
            let verdicts = self
                .nodes
                .take_verdicts(key, &self.config.node, &[id])
                .await?;
            match verdicts.into_iter().next() {
                Some((_, ForwardVerdict::Accepted(_) | ForwardVerdict::Known)) => return Ok(()),
                Some((_, ForwardVerdict::Refused(reason))) => {
                    return Err(StorageError::Write(reason));
                }
                Some((_, ForwardVerdict::Malformed)) => {
                    return Err(StorageError::Write(
                        "the owner could not read the change".into(),
                    ));
                }
                None if tokio::time::Instant::now() >= until => {
                    return Err(StorageError::Unavailable(
                        "the document's owner did not answer in time".into(),
                    ));
                }
                // Commands are few: looking every few milliseconds costs little, and
                // needs no room open here to be told.
                None => tokio::time::sleep(VERDICT_POLL).await,
            }
        }
    }

    /// Starts a room's task: it does what the room is woken for until the room is
    /// unloaded.
    pub fn open(self: &Arc<Self>, room: &Arc<Room>) {
        lock(&self.rooms).insert(room.key(), Arc::downgrade(room));
        let weak = Arc::downgrade(room);
        let notify = room.wake.notify.clone();
        let cluster = Arc::downgrade(self);
        // Whatever happened before it was open (a wake-up lost, the lease freed).
        room.wake.wake(Wake::ALL);
        // Who is here through the other nodes.
        let (nodes, key, node) = (self.nodes.clone(), room.key(), self.config.node.clone());
        tokio::spawn(async move {
            if let Err(e) = nodes.ask_presence(key, &node).await {
                tracing::debug!(error = %e, "could not ask the other nodes for their presence");
            }
        });
        tokio::spawn(async move {
            loop {
                notify.notified().await;
                let (Some(room), Some(cluster)) = (weak.upgrade(), cluster.upgrade()) else {
                    return;
                };
                if room.is_closed() {
                    return;
                }
                let reasons = room.wake.take();
                if reasons != 0 {
                    room.step(&cluster, reasons).await;
                }
            }
        });
    }

    /// Forgets a room that is unloaded, and ends its task.
    pub fn close(&self, room: &Room) {
        let mut rooms = lock(&self.rooms);
        if rooms
            .get(&room.key())
            .is_some_and(|r| std::ptr::eq(r.as_ptr(), room))
        {
            rooms.remove(&room.key());
        }
        drop(rooms);
        room.wake.notify.notify_one();
    }

    fn room(&self, key: RoomKey) -> Option<Arc<Room>> {
        lock(&self.rooms).get(&key).and_then(Weak::upgrade)
    }

    fn open_rooms(&self) -> Vec<Arc<Room>> {
        lock(&self.rooms)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    fn wake_all(&self) {
        for room in self.open_rooms() {
            room.wake.wake(Wake::ALL);
        }
    }

    /// Starts the node's tasks: renewing, listening, polling. They end at `stop`.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(renewing(Arc::downgrade(self), self.stopping.subscribe()));
        tokio::spawn(listening(Arc::downgrade(self), self.stopping.subscribe()));
        tokio::spawn(polling(Arc::downgrade(self), self.stopping.subscribe()));
    }

    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Wakes the room a notification names, for what it says.
    fn notice(&self, notice: Notice) {
        match notice {
            Notice::Presence { node, .. }
            | Notice::PresenceAsked { node, .. }
            | Notice::Scales { node, .. }
                if *node == *self.config.node => {}
            Notice::Presence { key, node, states } => {
                if let Some(room) = self.room(key) {
                    tokio::spawn(async move { room.presence_from(&node, states).await });
                }
            }
            Notice::PresenceAsked { key, .. } => {
                if let Some(room) = self.room(key) {
                    tokio::spawn(async move { room.share_presence().await });
                }
            }
            Notice::Scales { conference, .. } => {
                // Nobody listening is no error.
                let _ = self.scales.send(conference);
            }
            notice => self.wake_for(notice),
        }
    }

    /// Wakes the room a notification names, for what it says about its document.
    fn wake_for(&self, notice: Notice) {
        if let Notice::Disconnect {
            conference,
            participant,
            code,
            reason,
        } = notice
        {
            let reason = super::mailbox::CloseReason::new(code, reason);
            for room in self.open_rooms() {
                if room.key().0 == conference {
                    let reason = reason.clone();
                    tokio::spawn(async move { room.disconnect(participant, &reason).await });
                }
            }
            return;
        }
        let Some(room) = notice.key().and_then(|key| self.room(key)) else {
            return;
        };
        let owner = room.owner.load(Ordering::Relaxed);
        let reasons = match notice {
            Notice::Updates(_, seq) if !owner && seq > room.cursor.load(Ordering::Relaxed) => {
                Wake::UPDATES
            }
            Notice::Forwarded(_) if owner => Wake::FORWARDED,
            Notice::Answered(_) if !owner => Wake::ANSWERED,
            Notice::Released(_) if !owner => Wake::LEASE,
            _ => return,
        };
        room.wake.wake(reasons);
    }
}

/// Waits `period`, or until the node stops (false).
async fn tick(stopping: &mut watch::Receiver<bool>, period: Duration) -> bool {
    if *stopping.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(period) => !*stopping.borrow(),
        _ = stopping.changed() => false,
    }
}

async fn renewing(cluster: Weak<Cluster>, mut stopping: watch::Receiver<bool>) {
    let period = match cluster.upgrade() {
        Some(c) => c.config.renew_every,
        None => return,
    };
    while tick(&mut stopping, period).await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let held: Vec<(RoomKey, i64)> = lock(&cluster.held)
            .iter()
            .map(|(key, epoch)| (*key, *epoch))
            .collect();
        if held.is_empty() {
            continue;
        }
        let renewed: std::collections::HashSet<RoomKey> = match cluster
            .nodes
            .renew(&cluster.config.node, &held, cluster.config.lease)
            .await
        {
            Ok(renewed) => renewed.into_iter().collect(),
            Err(e) => {
                // Tried again at the next tick; the fence keeps a lease that ran out
                // meanwhile from being written under.
                tracing::warn!(error = %e, "could not renew the leases");
                continue;
            }
        };
        for (key, epoch) in held {
            if renewed.contains(&key) {
                continue;
            }
            {
                let mut held = lock(&cluster.held);
                if held.get(&key) == Some(&epoch) {
                    held.remove(&key);
                }
            }
            if let Some(room) = cluster.room(key) {
                // Its own task: the room may be busy, and the other leases are not
                // to wait for it.
                tokio::spawn(async move { room.lose_lease(epoch).await });
            }
        }
    }
}

async fn listening(cluster: Weak<Cluster>, mut stopping: watch::Receiver<bool>) {
    let Some(poll_every) = cluster.upgrade().map(|c| c.config.poll_every) else {
        return;
    };
    let mut listener = None;
    loop {
        if *stopping.borrow() {
            return;
        }
        let Some(current) = listener.as_mut() else {
            let Some(nodes) = cluster.upgrade().map(|c| c.nodes.clone()) else {
                return;
            };
            match nodes.listener().await {
                Ok(l) => {
                    listener = Some(l);
                    // What was said while nobody listened is lost: look at everything.
                    if let Some(cluster) = cluster.upgrade() {
                        cluster.wake_all();
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not listen for the other nodes");
                    if !tick(&mut stopping, poll_every).await {
                        return;
                    }
                }
            }
            continue;
        };
        let received = tokio::select! {
            received = current.try_recv() => received,
            _ = stopping.changed() => return,
        };
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match received {
            Ok(Some(notification)) => {
                if let Some(notice) = Notice::parse(notification.payload()) {
                    cluster.notice(notice);
                }
            }
            // The connection was lost, and is back: notifications sent meanwhile
            // are lost.
            Ok(None) => cluster.wake_all(),
            Err(e) => {
                tracing::warn!(error = %e, "lost the connection listening for the other nodes");
                listener = None;
                drop(cluster);
                if !tick(&mut stopping, poll_every).await {
                    return;
                }
            }
        }
    }
}

/// How often, in polls, forwarded updates long past are deleted.
const FORGET_EVERY: u32 = 120;
/// How old a forwarded update is when it is deleted, decided or not.
const FORWARDS_KEPT: Duration = Duration::from_secs(600);

async fn polling(cluster: Weak<Cluster>, mut stopping: watch::Receiver<bool>) {
    let Some(period) = cluster.upgrade().map(|c| c.config.poll_every) else {
        return;
    };
    let mut polls = 0u32;
    while tick(&mut stopping, period).await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(FORGET_EVERY)
            && let Err(e) = cluster
                .nodes
                .forget_forwards_older_than(FORWARDS_KEPT)
                .await
        {
            tracing::warn!(error = %e, "could not delete old forwarded updates");
        }
        let rooms = cluster.open_rooms();
        if rooms.is_empty() {
            continue;
        }
        let keys: Vec<RoomKey> = rooms.iter().map(|r| r.key()).collect();
        let statuses = match cluster.nodes.status(&cluster.config.node, &keys).await {
            Ok(statuses) => statuses,
            Err(e) => {
                tracing::warn!(error = %e, "could not look at the open documents");
                continue;
            }
        };
        let rooms: HashMap<RoomKey, &Arc<Room>> = rooms.iter().map(|r| (r.key(), r)).collect();
        for status in statuses {
            let Some(room) = rooms.get(&status.key) else {
                continue;
            };
            let mut reasons = 0;
            if room.owner.load(Ordering::Relaxed) {
                if status.waiting {
                    reasons |= Wake::FORWARDED;
                }
            } else {
                if status.last_seq > room.cursor.load(Ordering::Relaxed) {
                    reasons |= Wake::UPDATES;
                }
                if status.answered {
                    reasons |= Wake::ANSWERED;
                }
                if !status.leased {
                    reasons |= Wake::LEASE;
                }
            }
            if reasons != 0 {
                room.wake.wake(reasons);
            }
        }
    }
}
