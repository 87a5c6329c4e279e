//! Integration tests: the real server on port 0 with a fresh SQLite database, driven
//! over real HTTP and WebSocket connections.

mod access;
mod doctor;
mod helpers;
mod http;
mod limits;
mod offline;
mod order;
mod quarantine;
mod record;
mod scales;
mod sync;
mod trouble;
mod writer;
