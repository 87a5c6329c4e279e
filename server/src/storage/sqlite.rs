//! The SQLite engine: the default, embedded, nothing else to run.
//!
//! Every command is one transaction, its audit event in it. Document writes (the update log and snapshots) go through one writer task with a
//! connection of its own: it takes everything queued from every room and commits it
//! in one transaction, so many updates share one `fsync`, and nobody waits in
//! SQLite's busy handler behind another writer. Each caller is answered once its
//! write is committed, or with the error if it was not.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::{
    ChairId, ConferenceId, ConferenceKind, ParticipantId, ParticipantStatus, Phase, Role,
};

use super::{
    AuditEvent, ChairRow, ConferenceRow, ParticipantRow, Result, SessionSubject, StorageError,
    StoredDocument, now_ms,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

mod record;
mod scales;

/// A SQLite database: a pool of readers and one writer task for documents.
#[derive(Clone)]
pub(super) struct Sqlite {
    pool: SqlitePool,
    writer: mpsc::Sender<Job>,
}

/// SQLite's primary result codes for a database that cannot be written just now:
/// BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN.
const UNAVAILABLE_CODES: [i64; 7] = [5, 6, 7, 8, 10, 13, 14];

pub(super) fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(e) => e
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            // Extended codes carry the primary code in their low byte.
            .is_some_and(|code| UNAVAILABLE_CODES.contains(&(code & 0xff))),
        _ => false,
    }
}

fn parse_id<T: FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StorageError::Corrupt(format!("bad id {s:?}")))
}

/// Reads a column that holds one of a set of words (a role, a phase, a status),
/// spelled as the type's `parse` takes it.
fn word<T>(row: &sqlx::sqlite::SqliteRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let stored: &str = row.get(column);
    parse(stored).ok_or_else(|| StorageError::Corrupt(format!("{column} {stored:?}")))
}

/// Reads a column that holds JSON of `T`.
fn json<T: serde::de::DeserializeOwned>(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<T> {
    serde_json::from_str(row.get::<&str, _>(column))
        .map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

/// Reads a column that may hold one of a set of words, or NULL.
fn optional_word<T>(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    match row.get::<Option<&str>, _>(column) {
        None => Ok(None),
        Some(_) => word(row, column, parse).map(Some),
    }
}

impl Sqlite {
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
        sqlx::migrate!("../migrations").run(&pool).await?;
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

    // --- chairs -------------------------------------------------------------

    pub(super) async fn insert_chair(&self, chair: &ChairRow) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO chairs (id, email, name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(chair.id.to_string())
        .bind(&chair.email)
        .bind(&chair.name)
        .bind(&chair.password_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.message().contains("chairs.email") => {
                Err(StorageError::EmailTaken)
            }
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    fn chair_from_row(row: sqlx::sqlite::SqliteRow) -> Result<ChairRow> {
        Ok(ChairRow {
            id: parse_id(row.get::<&str, _>("id"))?,
            email: row.get("email"),
            name: row.get("name"),
            password_hash: row.get("password_hash"),
        })
    }

    pub(super) async fn chair_by_email(&self, email: &str) -> Result<Option<ChairRow>> {
        sqlx::query("SELECT id, email, name, password_hash FROM chairs WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?
            .map(Self::chair_from_row)
            .transpose()
    }

    pub(super) async fn chair(&self, id: ChairId) -> Result<Option<ChairRow>> {
        sqlx::query("SELECT id, email, name, password_hash FROM chairs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(Self::chair_from_row)
            .transpose()
    }

    // --- sessions -----------------------------------------------------------

    pub(super) async fn insert_session(
        &self,
        token_hash: &[u8],
        subject: SessionSubject,
        expires_at: i64,
    ) -> Result<()> {
        let (chair, participant) = match subject {
            SessionSubject::Chair(id) => (Some(id.to_string()), None),
            SessionSubject::Participant(id) => (None, Some(id.to_string())),
        };
        sqlx::query(
            "INSERT INTO sessions (token_hash, chair_id, participant_id, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(chair)
        .bind(participant)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn session(&self, token_hash: &[u8]) -> Result<Option<(SessionSubject, i64)>> {
        let row = sqlx::query(
            "SELECT chair_id, participant_id, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let chair: Option<String> = row.get("chair_id");
        let participant: Option<String> = row.get("participant_id");
        let expires_at: i64 = row.get("expires_at");
        Ok(match (chair, participant) {
            (Some(c), _) => Some((SessionSubject::Chair(parse_id(&c)?), expires_at)),
            (None, Some(p)) => Some((SessionSubject::Participant(parse_id(&p)?), expires_at)),
            (None, None) => None,
        })
    }

    pub(super) async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // --- conferences --------------------------------------------------------

    pub(super) async fn insert_conference(
        &self,
        conference: &ConferenceRow,
        participants: &[(ParticipantRow, Option<Vec<u8>>)],
        event: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO conferences (id, chair_id, title, kind, scheduled_start, headings, children, phase, room_code, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(conference.id.to_string())
        .bind(conference.chair_id.to_string())
        .bind(&conference.title)
        .bind(conference.kind.as_str())
        .bind(&conference.scheduled_start)
        .bind(&conference.headings)
        .bind(&conference.children_json)
        .bind(conference.phase.as_str())
        .bind(&conference.room_code)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        for (participant, link_hash) in participants {
            Self::insert_participant_in(&mut tx, participant, link_hash.as_deref()).await?;
        }
        scales::record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn room_code_taken(&self, code: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM conferences WHERE room_code = ?")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    fn conference_from_row(row: sqlx::sqlite::SqliteRow) -> Result<ConferenceRow> {
        Ok(ConferenceRow {
            id: parse_id(row.get::<&str, _>("id"))?,
            chair_id: parse_id(row.get::<&str, _>("chair_id"))?,
            title: row.get("title"),
            kind: word(&row, "kind", ConferenceKind::parse)?,
            scheduled_start: row.get("scheduled_start"),
            headings: row.get("headings"),
            children_json: row.get("children"),
            phase: word(&row, "phase", Phase::parse)?,
            room_code: row.get("room_code"),
            closed_at: row.get("closed_at"),
            core_group_by: row.get("core_group_by"),
            review_by: row.get("review_by"),
        })
    }

    const CONFERENCE_COLUMNS: &str = "id, chair_id, title, kind, scheduled_start, headings, children, phase, room_code, closed_at, core_group_by, review_by";

    /// The query for conferences meeting `condition` (what follows `WHERE`), to bind.
    pub(super) fn conferences_where(
        condition: &str,
    ) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM conferences WHERE {condition}",
            Self::CONFERENCE_COLUMNS
        )))
    }

    pub(super) async fn conference(&self, id: ConferenceId) -> Result<Option<ConferenceRow>> {
        Self::conferences_where("id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(Self::conference_from_row)
            .transpose()
    }

    pub(super) async fn conference_by_room_code(
        &self,
        code: &str,
    ) -> Result<Option<ConferenceRow>> {
        Self::conferences_where("room_code = ?")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?
            .map(Self::conference_from_row)
            .transpose()
    }

    pub(super) async fn conferences_of_chair(&self, chair: ChairId) -> Result<Vec<ConferenceRow>> {
        Self::conferences_where("chair_id = ? ORDER BY scheduled_start DESC")
            .bind(chair.to_string())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Self::conference_from_row)
            .collect()
    }

    pub(super) async fn set_phase(
        &self,
        id: ConferenceId,
        phase: Phase,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE conferences SET phase = ? WHERE id = ?")
            .bind(phase.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        scales::record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- participants -------------------------------------------------------

    async fn insert_participant_in(
        tx: &mut sqlx::SqliteConnection,
        p: &ParticipantRow,
        link_hash: Option<&[u8]>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO participants (id, conference_id, name, role, agency, status, link_hash, link_expires_at, chair_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.id.to_string())
        .bind(p.conference_id.to_string())
        .bind(&p.name)
        .bind(p.role.map(Role::as_str))
        .bind(&p.agency)
        .bind(p.status.as_str())
        .bind(link_hash)
        .bind(p.link_expires_at)
        .bind(p.chair_id.map(|c| c.to_string()))
        .bind(now_ms())
        .execute(tx)
        .await?;
        Ok(())
    }

    pub(super) async fn insert_participant(
        &self,
        p: &ParticipantRow,
        link_hash: Option<&[u8]>,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        Self::insert_participant_in(&mut tx, p, link_hash).await?;
        scales::record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    fn participant_from_row(row: sqlx::sqlite::SqliteRow) -> Result<ParticipantRow> {
        let chair: Option<String> = row.get("chair_id");
        Ok(ParticipantRow {
            id: parse_id(row.get::<&str, _>("id"))?,
            conference_id: parse_id(row.get::<&str, _>("conference_id"))?,
            name: row.get("name"),
            role: optional_word(&row, "role", Role::parse)?,
            agency: row.get("agency"),
            status: word(&row, "status", ParticipantStatus::parse)?,
            link_expires_at: row.get("link_expires_at"),
            chair_id: chair.as_deref().map(parse_id).transpose()?,
        })
    }

    const PARTICIPANT_COLUMNS: &str =
        "id, conference_id, name, role, agency, status, link_expires_at, chair_id";

    /// The query for participants meeting `condition` (what follows `WHERE`), to bind.
    fn participants_where(
        condition: &str,
    ) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM participants WHERE {condition}",
            Self::PARTICIPANT_COLUMNS
        )))
    }

    pub(super) async fn participant(&self, id: ParticipantId) -> Result<Option<ParticipantRow>> {
        Self::participants_where("id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(Self::participant_from_row)
            .transpose()
    }

    pub(super) async fn participant_by_link(
        &self,
        link_hash: &[u8],
    ) -> Result<Option<ParticipantRow>> {
        Self::participants_where("link_hash = ?")
            .bind(link_hash)
            .fetch_optional(&self.pool)
            .await?
            .map(Self::participant_from_row)
            .transpose()
    }

    pub(super) async fn chair_participant(
        &self,
        conference: ConferenceId,
        chair: ChairId,
    ) -> Result<Option<ParticipantRow>> {
        Self::participants_where("conference_id = ? AND chair_id = ?")
            .bind(conference.to_string())
            .bind(chair.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(Self::participant_from_row)
            .transpose()
    }

    pub(super) async fn participants(
        &self,
        conference: ConferenceId,
    ) -> Result<Vec<ParticipantRow>> {
        Self::participants_where("conference_id = ? ORDER BY created_at, id")
            .bind(conference.to_string())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Self::participant_from_row)
            .collect()
    }

    pub(super) async fn admit_participant(
        &self,
        id: ParticipantId,
        role: Role,
        agency: Option<&str>,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE participants SET status = ?, role = ?, agency = ? WHERE id = ?")
            .bind(ParticipantStatus::Admitted.as_str())
            .bind(role.as_str())
            .bind(agency)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        scales::record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn set_participant_status(
        &self,
        id: ParticipantId,
        status: ParticipantStatus,
        role: Option<Role>,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE participants SET status = ?, role = COALESCE(?, role) WHERE id = ?")
            .bind(status.as_str())
            .bind(role.map(Role::as_str))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if status.shut_out() {
            sqlx::query("UPDATE participants SET link_hash = NULL WHERE id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE participant_id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        scales::record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn replace_link(
        &self,
        id: ParticipantId,
        link_hash: &[u8],
        expires_at: i64,
        event: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE participants SET link_hash = ?, link_expires_at = ? WHERE id = ?")
            .bind(link_hash)
            .bind(expires_at)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        scales::record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- documents ----------------------------------------------------------

    pub(super) async fn load_document(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<StoredDocument> {
        let id = conference.to_string();
        let snapshot = sqlx::query(
            "SELECT through_seq, data FROM document_snapshots WHERE conference_id = ? AND document = ?",
        )
        .bind(&id)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| (row.get::<i64, _>("through_seq"), row.get::<Vec<u8>, _>("data")));
        let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        let updates = sqlx::query(
            "SELECT seq, data FROM document_updates u
             WHERE conference_id = ? AND document = ? AND seq > ?
               AND NOT EXISTS (SELECT 1 FROM document_quarantine q
                               WHERE q.conference_id = u.conference_id
                                 AND q.document = u.document AND q.seq = u.seq)
             ORDER BY seq",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(after)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| (row.get::<i64, _>("seq"), row.get::<Vec<u8>, _>("data")))
        .collect();
        let last_seq: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM document_updates WHERE conference_id = ? AND document = ?",
        )
        .bind(&id)
        .bind(kind.as_str())
        .fetch_one(&self.pool)
        .await?;
        let clients = sqlx::query(
            "SELECT client_id, participant_id FROM document_clients
             WHERE conference_id = ? AND document = ?",
        )
        .bind(&id)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            let owner: String = row.get("participant_id");
            let owner = owner.parse().map_err(|_| {
                StorageError::Corrupt(format!("a client's owner is not an id: {owner}"))
            })?;
            Ok((row.get::<i64, _>("client_id") as u64, owner))
        })
        .collect::<Result<_>>()?;
        Ok(StoredDocument {
            last_seq: last_seq.unwrap_or(0).max(after),
            snapshot,
            updates,
            clients,
        })
    }

    pub(super) async fn quarantine(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        updates: &[(i64, String)],
        event: &AuditEvent,
    ) -> Result<()> {
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        for (seq, why) in updates {
            sqlx::query(
                "INSERT INTO document_quarantine (conference_id, document, seq, reason, at)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(conference.to_string())
            .bind(kind.as_str())
            .bind(*seq)
            .bind(why)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        scales::record(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn quarantined(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT seq, reason FROM document_quarantine
             WHERE conference_id = ? AND document = ? ORDER BY seq",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get("seq"), row.get("reason")))
            .collect())
    }

    pub(super) async fn stored_documents(&self) -> Result<Vec<(ConferenceId, DocumentKind)>> {
        let rows = sqlx::query(
            "SELECT conference_id, document FROM document_updates
             UNION SELECT conference_id, document FROM document_snapshots
             ORDER BY conference_id, document",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get("conference_id");
                let kind: String = row.get("document");
                let conference = id
                    .parse()
                    .map(ConferenceId)
                    .map_err(|_| StorageError::Corrupt(format!("conference id {id:?}")))?;
                let kind = DocumentKind::parse(&kind)
                    .ok_or_else(|| StorageError::Corrupt(format!("document kind {kind:?}")))?;
                Ok((conference, kind))
            })
            .collect()
    }

    pub(super) async fn bytes_by_sender(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<Vec<(ParticipantId, usize)>> {
        let rows = sqlx::query(
            "SELECT participant_id, SUM(LENGTH(data)) AS bytes FROM document_updates
             WHERE conference_id = ? AND document = ? AND participant_id IS NOT NULL
             GROUP BY participant_id",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.get("participant_id");
                let bytes: i64 = row.get("bytes");
                let participant = id
                    .parse()
                    .map_err(|_| StorageError::Corrupt(format!("participant id {id:?}")))?;
                Ok((participant, usize::try_from(bytes).unwrap_or(usize::MAX)))
            })
            .collect()
    }

    pub(super) async fn document_log(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT seq, data FROM document_updates
             WHERE conference_id = ? AND document = ? ORDER BY seq",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get::<i64, _>("seq"), row.get::<Vec<u8>, _>("data")))
            .collect())
    }

    pub(super) async fn append_updates(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        updates: &[(i64, Option<ParticipantId>, &[u8])],
        claims: &[(u64, ParticipantId)],
    ) -> Result<()> {
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
            } => sqlx::query(
                "INSERT INTO document_snapshots (conference_id, document, through_seq, data) VALUES (?, ?, ?, ?)
                 ON CONFLICT (conference_id, document) DO UPDATE SET through_seq = excluded.through_seq, data = excluded.data",
            )
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
                let unavailable = unavailable(&error);
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
            let culprit = (!unavailable(&e)).then_some(index);
            (culprit, e)
        })?;
    }
    tx.commit().await.map_err(|e| (None, e))
}
