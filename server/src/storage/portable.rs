//! The operations whose SQL is the same for SQLite and PostgreSQL, written once.
//!
//! Each macro here expands, inside an engine's `impl`, to methods that run on
//! `self.pool` with the engine's own types; `portable_operations!(sqlx::Sqlite)` in
//! `sqlite.rs` and `portable_operations!(sqlx::Postgres)` in `postgres.rs` give each
//! engine the lot. The SQL uses `$1`, `$2`, … for parameters, which both engines
//! read. Where the dialects or their locking differ, each engine supplies what
//! differs: `ROW_LOCK`, the clause that keeps the rows a statement's condition read
//! from changing before its transaction commits. What an engine does its own way
//! (opening, the document writes) is in the engine's module.

pub(super) mod documents;
pub(super) mod people;
pub(super) mod record;
pub(super) mod scales;

/// Every operation both engines share, for the engine whose database is `$db`.
macro_rules! portable_operations {
    ($db:ty) => {
        $crate::storage::portable::people::people_operations!($db);
        $crate::storage::portable::documents::document_reads!($db);
        $crate::storage::portable::scales::scale_operations!($db);
        $crate::storage::portable::record::record_operations!($db);
    };
}
pub(super) use portable_operations;

/// Whether `error` is the unique email of chairs' accounts, taken.
pub(super) fn email_taken(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            e.is_unique_violation()
                // PostgreSQL names the constraint; SQLite names the column.
                && (e.constraint() == Some("chairs_email_unique")
                    || e.message().contains("chairs.email"))
        }
        _ => false,
    }
}
