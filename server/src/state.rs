//! The state every request handler shares.

use std::sync::Arc;

use crate::config::Config;
use crate::storage::Storage;
use crate::sync::room::Rooms;

#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    pub rooms: Arc<Rooms>,
    pub config: Arc<Config>,
}
