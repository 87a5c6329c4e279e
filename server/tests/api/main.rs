//! Integration tests: the real server on port 0 with a fresh database, driven over
//! real HTTP and WebSocket connections. The suite runs on SQLite, or on PostgreSQL
//! with `ROUNDTABLE_TEST_ENGINE=postgres` (see `database.rs`).

mod access;
mod database;
mod doctor;
mod door;
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
