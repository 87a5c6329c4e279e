//! The state every request handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use roundtable_shared::ConferenceId;
use tokio::sync::watch;

use crate::config::Config;
use crate::storage::Storage;
use crate::sync::rooms::Rooms;

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    pub rooms: Arc<Rooms>,
    pub config: Arc<Config>,
    pub notices: Arc<Notices>,
    /// The front door's limits: signing in, room codes, the lobby.
    pub door: Arc<crate::door::Door>,
}

impl AppState {
    /// Tells the phones' voting pages, here and on every other node, that a
    /// conference's safety scales changed (or someone was removed from it).
    pub async fn scales_changed(&self, conference: ConferenceId) {
        self.notices.notify(conference);
        if let Some(cluster) = self.rooms.cluster() {
            cluster.scales_changed(conference).await;
        }
    }
}

/// Tells open event streams (the phones' voting pages) that a conference's safety
/// scales changed, so they send the new state. Votes themselves are not announced:
/// only opening, closing, revealing and removals are.
pub struct Notices {
    /// `None` once the server is shutting down: streams end and no new ones start.
    senders: Mutex<Option<HashMap<ConferenceId, watch::Sender<()>>>>,
}

impl Default for Notices {
    fn default() -> Notices {
        Notices {
            senders: Mutex::new(Some(HashMap::new())),
        }
    }
}

impl Notices {
    /// A receiver that wakes after each notice for `conference`; `None` while shutting down.
    pub fn subscribe(&self, conference: ConferenceId) -> Option<watch::Receiver<()>> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let senders = senders.as_mut()?;
        Some(
            senders
                .entry(conference)
                .or_insert_with(|| watch::channel(()).0)
                .subscribe(),
        )
    }

    pub fn notify(&self, conference: ConferenceId) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let Some(senders) = senders.as_mut() else {
            return;
        };
        if let Some(sender) = senders.get(&conference) {
            if sender.receiver_count() == 0 {
                senders.remove(&conference);
            } else {
                sender.send_replace(());
            }
        }
    }

    /// Ends every stream, for shutdown.
    pub fn close_all(&self) {
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}
