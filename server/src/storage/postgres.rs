//! The PostgreSQL engine: a database server of its own, for a deployment that
//! outgrows a file (and, later, for several server nodes).
//!
//! Every operation is one transaction, its audit event in it; the SQL is mostly
//! SQLite's, written once (`portable`). Transactions run at PostgreSQL's default
//! isolation, READ COMMITTED: a statement whose condition must still hold at the
//! commit (a scale still open, a conference not closed) locks the rows it read
//! (`ROW_LOCK`), and one change per row is serialised by the row's own lock. There
//! is no writer task: every room's append is its own transaction, on a connection of
//! the pool, and PostgreSQL's group commit lets concurrent commits share a flush.
//!
//! Every connection asks for `synchronous_commit = on`, so a commit is on disk (the
//! server's WAL) before the update it holds is relayed, whatever the server's
//! default; and for a `lock_timeout`, so that a table another program has locked
//! refuses writes after a while, as SQLite's busy timeout does, instead of holding
//! the room for ever.

use std::str::FromStr;
use std::time::Duration;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::record::Attendance;
use roundtable_shared::scale::ScaleStatus;
use roundtable_shared::{
    ChairId, ChildId, ConferenceId, ParticipantId, ParticipantStatus, Phase, Role, ScaleId,
};
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use super::portable::{UPSERT_SNAPSHOT, portable_operations};
use super::{
    AuditEvent, AuditRow, ChairRow, ConferenceRow, DecisionRow, DocumentChangeRow, OpenRefused,
    ParticipantRow, Removed, Result, ScaleRow, SessionSubject, StorageError, StoredDocument,
    VoteOutcome, VoteRow, now_ms,
};

/// Locks the rows a statement's condition read until the commit: a concurrent
/// change to them (closing the conference, say) waits for it, or, if it committed
/// first, the condition is checked again against what it wrote.
const ROW_LOCK: &str = "FOR SHARE";

/// Connections to the database server. Each is a process there; rooms, commands and
/// sign-ins share them, and each holds one only for one operation.
const MAX_CONNECTIONS: u32 = 16;

/// How long an operation waits for a connection, and a statement for a lock, before
/// it is refused as the database being unavailable (SQLite's busy timeout is the same).
const WAIT: Duration = Duration::from_secs(5);

/// SQLSTATEs, and classes of them (two characters), for a database that cannot take
/// writes just now while what was asked is sound: connection exceptions (08),
/// insufficient resources such as a full disk (53), the server shutting down or
/// starting (57P01–57P03), system and I/O errors (58), a lock not granted in time
/// (55P03), a read-only transaction (25006: a standby, during a failover), and a
/// serialisation failure or deadlock (40001, 40P01), after which nothing was changed.
const UNAVAILABLE_STATES: [&str; 10] = [
    "08", "53", "57P01", "57P02", "57P03", "58", "55P03", "25006", "40001", "40P01",
];

/// Whether a database error is PostgreSQL's, saying it cannot take writes just now.
pub(super) fn unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    error
        .try_downcast_ref::<PgDatabaseError>()
        .is_some_and(|e| {
            let code = e.code();
            UNAVAILABLE_STATES.iter().any(|state| match state.len() {
                2 => code.starts_with(state),
                _ => code == *state,
            })
        })
}

/// A PostgreSQL database: a pool of connections.
#[derive(Clone)]
pub(super) struct Postgres {
    pool: PgPool,
}

impl Postgres {
    portable_operations!(sqlx::Postgres);

    /// Connects to the database at `url` and runs the migrations (one node at a time:
    /// sqlx holds an advisory lock while it migrates).
    pub(super) async fn open(url: &str) -> Result<Postgres> {
        let lock_timeout = format!("{}ms", WAIT.as_millis());
        let options = PgConnectOptions::from_str(url)?
            .application_name("roundtable")
            .options([
                ("synchronous_commit", "on"),
                ("lock_timeout", lock_timeout.as_str()),
            ]);
        // One connection first, for the migrations: if the server cannot be
        // reached, this says why (the pool would only say it timed out).
        let mut first = options.connect().await?;
        sqlx::migrate!("../migrations/postgres")
            .run(&mut first)
            .await?;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(WAIT)
            .connect_with(options)
            .await?;
        Ok(Postgres { pool })
    }

    /// Waits for the operations under way, then closes every connection.
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn append_updates(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        updates: &[(i64, Option<ParticipantId>, &[u8])],
        claims: &[(u64, ParticipantId)],
    ) -> Result<()> {
        // One statement, so one transaction: the batch is stored whole or not at all,
        // with the client ids it claims. A claim is made once: the gate refuses a
        // second owner, so one already stored (by an update stored before a reload)
        // stands.
        let seqs: Vec<i64> = updates.iter().map(|(seq, _, _)| *seq).collect();
        let senders: Vec<Option<String>> = updates
            .iter()
            .map(|(_, sender, _)| sender.map(|s| s.to_string()))
            .collect();
        let data: Vec<&[u8]> = updates.iter().map(|(_, _, data)| *data).collect();
        let clients: Vec<i64> = claims.iter().map(|(client, _)| *client as i64).collect();
        let owners: Vec<String> = claims.iter().map(|(_, owner)| owner.to_string()).collect();
        sqlx::query(
            "WITH claimed AS (
                 INSERT INTO document_clients (conference_id, document, client_id, participant_id)
                 SELECT $1, $2, c.client_id, c.participant_id
                 FROM UNNEST($7::BIGINT[], $8::TEXT[]) AS c (client_id, participant_id)
                 ON CONFLICT DO NOTHING
             )
             INSERT INTO document_updates (conference_id, document, seq, participant_id, data, created_at)
             SELECT $1, $2, u.seq, u.participant_id, u.data, $6
             FROM UNNEST($3::BIGINT[], $4::TEXT[], $5::BYTEA[]) AS u (seq, participant_id, data)",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .bind(seqs)
        .bind(senders)
        .bind(data)
        .bind(now_ms())
        .bind(clients)
        .bind(owners)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn write_snapshot(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        through_seq: i64,
        data: &[u8],
    ) -> Result<()> {
        sqlx::query(UPSERT_SNAPSHOT)
            .bind(conference.to_string())
            .bind(kind.as_str())
            .bind(through_seq)
            .bind(data)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
