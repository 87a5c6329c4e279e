//! The SQLite engine: the default, embedded, nothing else to run.
//!
//! Every command is one transaction, its audit event in it; the operations' SQL is
//! shared with PostgreSQL (`portable`). Document writes (the update log and
//! snapshots) go through one writer task with a connection of its own: it takes
//! everything queued from every room and commits it in one transaction, so many
//! updates share one `fsync`, and nobody waits in SQLite's busy handler behind
//! another writer. Each caller is answered once its write is committed, or with the
//! error if it was not.

use std::path::Path;
use std::time::Duration;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::record::Attendance;
use roundtable_shared::scale::ScaleStatus;
use roundtable_shared::{
    ChairId, ChildId, ConferenceId, ParticipantId, ParticipantStatus, Phase, Role, ScaleId,
};

use super::portable::portable_operations;
use super::{
    AuditEvent, AuditRow, ChairRow, ConferenceRow, DecisionRow, DocumentChangeRow, Fence,
    ForwardVerdict, OpenRefused, ParticipantRow, Removed, Result, ScaleRow, SessionSubject,
    StorageError, StoredDocument, VoteOutcome, VoteRow, now_ms,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteError, SqliteJournalMode, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Nothing: a transaction holds SQLite's one write lock from its first write to its
/// commit, so what a statement's condition read cannot change before the commit.
const ROW_LOCK: &str = "";

/// Replaces a document's snapshot.
const UPSERT_SNAPSHOT: &str = "INSERT INTO document_snapshots (conference_id, document, through_seq, data) VALUES ($1, $2, $3, $4)
     ON CONFLICT (conference_id, document) DO UPDATE SET through_seq = excluded.through_seq, data = excluded.data";

/// Nothing to ask: a SQLite transaction reads the database as of its first read.
const CONSISTENT_READ: Option<&str> = None;

/// A SQLite database: a pool of readers and one writer task for documents.
#[derive(Clone)]
pub(super) struct Sqlite {
    pool: SqlitePool,
    writer: mpsc::Sender<Job>,
}

/// SQLite's primary result codes for a database that cannot be written just now:
/// BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN.
const UNAVAILABLE_CODES: [i64; 7] = [5, 6, 7, 8, 10, 13, 14];

/// Whether a database error is SQLite's, saying it cannot be written just now.
pub(super) fn unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.try_downcast_ref::<SqliteError>().is_some()
        && error
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            // Extended codes carry the primary code in their low byte.
            .is_some_and(|code| UNAVAILABLE_CODES.contains(&(code & 0xff)))
}

impl Sqlite {
    portable_operations!(sqlx::Sqlite);

    /// Opens (creating if needed) the SQLite database at `path` and runs the migrations.
    pub(super) async fn open(path: &Path) -> Result<Sqlite> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we relay the update it holds.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // The pool looks up sessions, loads documents (read once) and runs the
        // commands. Each connection has a thread, a schema, statements and a page
        // cache of its own: four are plenty for two cores, and a small page cache
        // each (256 KiB; SQLite's default is 2 MiB) leaves the rest to the operating
        // system's cache, which they share.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().pragma("cache_size", "-256"))
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let connection = options.pragma("cache_size", "-512").connect().await?;
        let (writer, jobs) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(run_writer(connection, jobs));
        Ok(Sqlite { pool, writer })
    }

    /// Commits what the writer holds, then closes the database.
    pub(super) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.writer.send(Job::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
        self.pool.close().await;
    }

    /// One node, and no leases: SQLite's node owns every document.
    async fn check_fence(
        _tx: &mut SqliteConnection,
        _conference: ConferenceId,
        _kind: DocumentKind,
        _fence: Fence<'_>,
    ) -> Result<()> {
        Ok(())
    }

    /// Queues a write for the writer task; returns once it is committed.
    async fn write(&self, write: Write) -> Result<()> {
        let (done, committed) = oneshot::channel();
        self.writer
            .send(Job::Write { write, done })
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?;
        committed
            .await
            .map_err(|_| StorageError::Database(sqlx::Error::PoolClosed))?
    }

    pub(super) async fn append_updates(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        _fence: Fence<'_>,
        updates: &[(i64, Option<ParticipantId>, &[u8])],
        claims: &[(u64, ParticipantId)],
        verdicts: &[(i64, ForwardVerdict)],
    ) -> Result<()> {
        // Nothing is forwarded to the only node there is.
        debug_assert!(verdicts.is_empty());
        self.write(Write::Updates {
            conference: conference.to_string(),
            kind,
            rows: updates
                .iter()
                .map(|(seq, sender, data)| (*seq, sender.map(|s| s.to_string()), data.to_vec()))
                .collect(),
            claims: claims
                .iter()
                .map(|(client, owner)| (*client as i64, owner.to_string()))
                .collect(),
            at: now_ms(),
        })
        .await
    }

    pub(super) async fn write_snapshot(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        _fence: Fence<'_>,
        through_seq: i64,
        data: &[u8],
    ) -> Result<()> {
        self.write(Write::Snapshot {
            conference: conference.to_string(),
            kind,
            through_seq,
            data: data.to_vec(),
        })
        .await
    }
}

// --- the writer -------------------------------------------------------------

/// Writes that may wait in the writer's queue; a room waits for its own write, so
/// this is rarely reached.
const WRITER_QUEUE: usize = 4096;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 1024;

enum Job {
    Write {
        write: Write,
        done: oneshot::Sender<Result<()>>,
    },
    /// Commit what is queued, stop taking writes, close the connection.
    Close(oneshot::Sender<()>),
}

enum Write {
    /// Rows of one document's update log: (seq, sender, data). Written together, so
    /// a row that cannot be written fails them all.
    Updates {
        conference: String,
        kind: DocumentKind,
        rows: Vec<(i64, Option<String>, Vec<u8>)>,
        /// Client ids (their bits as signed) and the participants they now belong to.
        claims: Vec<(i64, String)>,
        at: i64,
    },
    Snapshot {
        conference: String,
        kind: DocumentKind,
        through_seq: i64,
        data: Vec<u8>,
    },
}

impl Write {
    async fn execute(&self, connection: &mut SqliteConnection) -> sqlx::Result<()> {
        match self {
            Write::Updates {
                conference,
                kind,
                rows,
                claims,
                at,
            } => {
                for (client, owner) in claims {
                    // A claim is made once: the gate refuses a second owner, so one
                    // already stored (by an update stored before a reload) stands.
                    sqlx::query(
                        "INSERT INTO document_clients (conference_id, document, client_id, participant_id)
                         VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(conference.as_str())
                    .bind(kind.as_str())
                    .bind(*client)
                    .bind(owner.as_str())
                    .execute(&mut *connection)
                    .await?;
                }
                for (seq, sender, data) in rows {
                    sqlx::query(
                        "INSERT INTO document_updates (conference_id, document, seq, participant_id, data, created_at)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(conference.as_str())
                    .bind(kind.as_str())
                    .bind(*seq)
                    .bind(sender.as_deref())
                    .bind(data.as_slice())
                    .bind(*at)
                    .execute(&mut *connection)
                    .await?;
                }
                Ok(())
            }
            Write::Snapshot {
                conference,
                kind,
                through_seq,
                data,
            } => sqlx::query(UPSERT_SNAPSHOT)
                .bind(conference.as_str())
                .bind(kind.as_str())
                .bind(*through_seq)
                .bind(data.as_slice())
                .execute(connection)
                .await
                .map(|_| ()),
        }
    }
}

type Pending = (Write, oneshot::Sender<Result<()>>);

/// The one task that writes documents: whatever is queued when it comes round is
/// committed in one transaction, and each waiter is answered after the commit.
async fn run_writer(mut connection: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut closing = Vec::new();
    while jobs.recv_many(&mut received, MAX_BATCH).await > 0 {
        for job in received.drain(..) {
            match job {
                Job::Write { write, done } => batch.push((write, done)),
                Job::Close(ack) => closing.push(ack),
            }
        }
        commit(&mut connection, &mut batch).await;
        if !closing.is_empty() {
            // Writes already queued are still committed; new ones are refused.
            jobs.close();
        }
    }
    let _ = connection.close().await;
    for ack in closing {
        let _ = ack.send(());
    }
}

/// Commits `batch` and answers every waiter. A write that fails on its own (say, a
/// sequence number already taken) is answered with its error and the rest are
/// committed without it; if the commit itself fails, every waiter hears so.
async fn commit(connection: &mut SqliteConnection, batch: &mut Vec<Pending>) {
    while !batch.is_empty() {
        match write_all(connection, batch).await {
            Ok(()) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err((Some(index), error)) => {
                let (_, done) = batch.remove(index);
                let _ = done.send(Err(error.into()));
            }
            Err((None, error)) => {
                tracing::error!(error = %error, writes = batch.len(), "could not commit document writes");
                let message = error.to_string();
                let unavailable = super::unavailable(&error);
                for (_, done) in batch.drain(..) {
                    let error = if unavailable {
                        StorageError::Unavailable(message.clone())
                    } else {
                        StorageError::Write(message.clone())
                    };
                    let _ = done.send(Err(error));
                }
            }
        }
    }
}

/// Writes the whole batch in one transaction. On error the transaction is rolled
/// back, and the error says which write failed (None: the transaction itself, or
/// trouble with the database that every write would meet in turn).
async fn write_all(
    connection: &mut SqliteConnection,
    batch: &[Pending],
) -> std::result::Result<(), (Option<usize>, sqlx::Error)> {
    let mut tx = connection.begin().await.map_err(|e| (None, e))?;
    for (index, (write, _)) in batch.iter().enumerate() {
        write.execute(&mut tx).await.map_err(|e| {
            // A full disk or a lock held elsewhere is not this write's fault: trying
            // the others one by one would only meet it again, each after a wait.
            let culprit = (!super::unavailable(&e)).then_some(index);
            (culprit, e)
        })?;
    }
    tx.commit().await.map_err(|e| (None, e))
}
