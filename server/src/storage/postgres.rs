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
//!
//! Several nodes may share the database. Every write to a document (appending,
//! replacing its snapshot, quarantining) checks its fence, the writer's lease, in
//! the same transaction, and locks the lease row until the commit: a takeover waits
//! for a write under way, and a write after a takeover (or after the lease expired)
//! writes nothing. What else the nodes need of the database is in `nodes.rs`.

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

use super::portable::portable_operations;
use super::{
    AuditEvent, AuditRow, ChairRow, ConferenceRow, DecisionRow, DocumentChangeRow, Fence,
    ForwardVerdict, Lease, OpenRefused, ParticipantRow, Removed, Result, ScaleRow, SessionSubject,
    StorageError, StoredDocument, VoteOutcome, VoteRow, now_ms,
};

/// Locks the rows a statement's condition read until the commit: a concurrent
/// change to them (closing the conference, say) waits for it, or, if it committed
/// first, the condition is checked again against what it wrote.
const ROW_LOCK: &str = "FOR SHARE";

/// One snapshot of the database for the whole transaction (READ COMMITTED takes one
/// per statement).
const CONSISTENT_READ: Option<&str> =
    Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");

/// The fence of a document's write, as a statement's first part (`$1` the conference,
/// `$2` the document, `$3` the node, `$4` the epoch): the lease row, if it is still
/// the writer's, unexpired by PostgreSQL's clock, locked until the commit so that a
/// takeover waits for it.
const FENCE: &str = "SELECT 1 FROM document_leases
     WHERE conference_id = $1 AND document = $2 AND node = $3 AND epoch = $4
       AND expires_at > now()
     FOR SHARE";

/// The lease a fenced write names; none (`Fence::Alone`) is refused, as every write on
/// a database nodes may share must be fenced.
fn lease(fence: Fence<'_>) -> Result<&Lease> {
    match fence {
        Fence::Lease(lease) => Ok(lease),
        Fence::Alone => Err(StorageError::NotOwner),
    }
}

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
    /// How to open a connection of its own (the nodes' listener keeps one). Shared:
    /// it is large, and every clone of the storage would carry it.
    options: std::sync::Arc<PgConnectOptions>,
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
                // A fenced write holds its lease row until it commits: a node paused
                // in the middle of a transaction must not hold up a takeover for
                // longer than this. (Each write is one statement; this is a second
                // guard.)
                ("idle_in_transaction_session_timeout", lock_timeout.as_str()),
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
            .connect_with(options.clone())
            .await?;
        Ok(Postgres {
            pool,
            options: std::sync::Arc::new(options),
        })
    }

    /// The operations several nodes need of each other.
    pub(super) fn nodes(&self) -> super::nodes::Nodes {
        super::nodes::Nodes::new(self.pool.clone(), (*self.options).clone())
    }

    /// Checks, in `tx`, that `fence` still holds, and keeps its lease row locked
    /// until `tx` ends.
    async fn check_fence(
        tx: &mut sqlx::PgConnection,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
    ) -> Result<()> {
        let lease = lease(fence)?;
        let held = sqlx::query(FENCE)
            .bind(conference.to_string())
            .bind(kind.as_str())
            .bind(&*lease.node)
            .bind(lease.epoch)
            .fetch_optional(&mut *tx)
            .await?;
        match held {
            Some(_) => Ok(()),
            None => Err(StorageError::NotOwner),
        }
    }

    /// Waits for the operations under way, then closes every connection.
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn append_updates(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
        updates: &[(i64, Option<ParticipantId>, &[u8])],
        claims: &[(u64, ParticipantId)],
        verdicts: &[(i64, ForwardVerdict)],
    ) -> Result<()> {
        let lease = lease(fence)?;
        // One statement, so one transaction, its fence first: the batch is stored
        // whole or not at all, with the client ids it claims and the verdicts on the
        // forwarded updates of the turn. A claim is made once: the gate refuses a
        // second owner, so one already stored (by an update stored before a reload)
        // stands. A verdict already given stands too. The other nodes hear of it at
        // the commit (NOTIFY is sent then, and only then).
        let seqs: Vec<i64> = updates.iter().map(|(seq, _, _)| *seq).collect();
        let senders: Vec<Option<String>> = updates
            .iter()
            .map(|(_, sender, _)| sender.map(|s| s.to_string()))
            .collect();
        let data: Vec<&[u8]> = updates.iter().map(|(_, _, data)| *data).collect();
        let clients: Vec<i64> = claims.iter().map(|(client, _)| *client as i64).collect();
        let owners: Vec<String> = claims.iter().map(|(_, owner)| owner.to_string()).collect();
        let forwarded: Vec<i64> = verdicts.iter().map(|(id, _)| *id).collect();
        let words: Vec<&str> = verdicts.iter().map(|(_, v)| v.word()).collect();
        let reasons: Vec<Option<&str>> = verdicts.iter().map(|(_, v)| v.reason()).collect();
        let stored_as: Vec<Option<i64>> = verdicts.iter().map(|(_, v)| v.seq()).collect();
        let statement = format!(
            "WITH lease AS ({FENCE}),
             claimed AS (
                 INSERT INTO document_clients (conference_id, document, client_id, participant_id)
                 SELECT $1, $2, c.client_id, c.participant_id
                 FROM UNNEST($8::BIGINT[], $9::TEXT[]) AS c (client_id, participant_id)
                 WHERE EXISTS (SELECT 1 FROM lease)
                 ON CONFLICT DO NOTHING
             ),
             stored AS (
                 INSERT INTO document_updates (conference_id, document, seq, participant_id, data, created_at)
                 SELECT $1, $2, u.seq, u.participant_id, u.data, $7
                 FROM UNNEST($5::BIGINT[], $6::TEXT[], $10::BYTEA[]) AS u (seq, participant_id, data)
                 WHERE EXISTS (SELECT 1 FROM lease)
                 RETURNING seq
             ),
             decided AS (
                 UPDATE forwarded_updates f
                 SET verdict = v.verdict, reason = v.reason, seq = v.seq
                 FROM UNNEST($11::BIGINT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[])
                     AS v (id, verdict, reason, seq)
                 WHERE f.id = v.id AND f.verdict IS NULL AND EXISTS (SELECT 1 FROM lease)
                 RETURNING f.id
             )
             SELECT
                 (SELECT COUNT(*) FROM lease) AS leased,
                 (SELECT COUNT(pg_notify('{channel}', 'u ' || $1 || ' ' || $2 || ' ' || last))
                  FROM (SELECT MAX(seq) AS last FROM stored) AS s WHERE last IS NOT NULL) AS relayed,
                 (SELECT COUNT(pg_notify('{channel}', 'v ' || $1 || ' ' || $2))
                  FROM (SELECT 1 FROM decided LIMIT 1) AS d) AS answered",
            channel = super::nodes::CHANNEL,
        );
        let leased: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
            .bind(conference.to_string())
            .bind(kind.as_str())
            .bind(&*lease.node)
            .bind(lease.epoch)
            .bind(seqs)
            .bind(senders)
            .bind(now_ms())
            .bind(clients)
            .bind(owners)
            .bind(data)
            .bind(forwarded)
            .bind(words)
            .bind(reasons)
            .bind(stored_as)
            .fetch_one(&self.pool)
            .await?;
        if leased == 0 {
            return Err(StorageError::NotOwner);
        }
        Ok(())
    }

    pub(super) async fn write_snapshot(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
        through_seq: i64,
        data: &[u8],
    ) -> Result<()> {
        let lease = lease(fence)?;
        let statement = format!(
            "WITH lease AS ({FENCE})
             INSERT INTO document_snapshots (conference_id, document, through_seq, data)
             SELECT $1, $2, $5, $6 WHERE EXISTS (SELECT 1 FROM lease)
             ON CONFLICT (conference_id, document)
                 DO UPDATE SET through_seq = excluded.through_seq, data = excluded.data
             RETURNING 1"
        );
        let written = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(conference.to_string())
            .bind(kind.as_str())
            .bind(&*lease.node)
            .bind(lease.epoch)
            .bind(through_seq)
            .bind(data)
            .fetch_optional(&self.pool)
            .await?;
        match written {
            Some(_) => Ok(()),
            None => Err(StorageError::NotOwner),
        }
    }
}
