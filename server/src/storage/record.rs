//! The end of the meeting: decisions, attendance, the next meetings, closing and
//! reopening; the document's change log for the audit view; and deleting conferences
//! closed long ago.
//!
//! Every command that changes a conference checks, in the statement that makes the
//! change, that the conference is not closed, and writes its audit event in the same
//! transaction.

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::record::Attendance;
use roundtable_shared::{ChildId, ConferenceId, ParticipantId};
use sqlx::Row;

use super::scales::record;
use super::{ConferenceRow, Result, Storage, StorageError, now_ms, parse_id, word};

/// A child's decision as stored.
#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub child_id: ChildId,
    /// JSON: `{decision, agency_views, dissent, lead_social_worker}`.
    pub body: serde_json::Value,
    pub recorded_by: Option<ParticipantId>,
    pub recorded_at: i64,
}

/// One stored change to a conference's document, as the audit view shows it.
#[derive(Debug, Clone)]
pub struct DocumentChangeRow {
    pub at: i64,
    /// `None` for the server's own changes.
    pub participant: Option<ParticipantId>,
    pub document: DocumentKind,
}

/// What deleting one conference removed (or, in a dry run, would remove).
#[derive(Debug, Clone)]
pub struct Removed {
    pub conference: ConferenceId,
    pub title: String,
    pub closed_at: i64,
    /// Rows by table, in the order they are deleted.
    pub rows: Vec<(&'static str, u64)>,
}

/// Every table holding something of a conference, with the rows of it that belong to
/// the conference `?`. Deleted in this order, children first, so nothing depends on
/// the foreign keys' cascades being switched on.
const CONFERENCE_TABLES: [(&str, &str); 11] = [
    (
        "sessions",
        "participant_id IN (SELECT id FROM participants WHERE conference_id = ?)",
    ),
    (
        "scale_votes",
        "scale_id IN (SELECT id FROM scales WHERE conference_id = ?)",
    ),
    ("scales", "conference_id = ?"),
    ("decisions", "conference_id = ?"),
    ("attendance", "conference_id = ?"),
    ("audit_events", "conference_id = ?"),
    ("document_updates", "conference_id = ?"),
    ("document_snapshots", "conference_id = ?"),
    ("participants", "conference_id = ?"),
    // Not deleted: a review conference that named this one only forgets it.
    ("conferences", "previous_conference_id = ?"),
    ("conferences", "id = ?"),
];

/// A statement that changes a conference, to run with its audit event.
type Change<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

impl Storage {
    /// Runs `change` and records `event` in one transaction; false (nothing stored,
    /// nothing recorded) if the statement changed no row.
    async fn change_recorded(
        &self,
        change: Change<'_>,
        event: &super::AuditEvent,
        at: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if change.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        record(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores the decision for one child, replacing an earlier one, with its audit
    /// event. Nothing is stored if the conference is closed (false).
    pub async fn put_decision(
        &self,
        conference: ConferenceId,
        child: ChildId,
        body: &serde_json::Value,
        recorded_by: ParticipantId,
        event: &super::AuditEvent,
    ) -> Result<bool> {
        let at = now_ms();
        let change = sqlx::query(
            "INSERT INTO decisions (conference_id, child_id, body, recorded_by, recorded_at)
             SELECT id, ?, ?, ?, ? FROM conferences WHERE id = ? AND closed_at IS NULL
             ON CONFLICT (conference_id, child_id) DO UPDATE SET
                 body = excluded.body, recorded_by = excluded.recorded_by,
                 recorded_at = excluded.recorded_at",
        )
        .bind(child.to_string())
        .bind(body.to_string())
        .bind(recorded_by.to_string())
        .bind(at)
        .bind(conference.to_string());
        self.change_recorded(change, event, at).await
    }

    /// The conference's decisions, by child id.
    pub async fn decisions(&self, conference: ConferenceId) -> Result<Vec<DecisionRow>> {
        sqlx::query(
            "SELECT child_id, body, recorded_by, recorded_at FROM decisions
             WHERE conference_id = ? ORDER BY child_id",
        )
        .bind(conference.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok(DecisionRow {
                child_id: parse_id(row.get::<&str, _>("child_id"))?,
                body: serde_json::from_str(row.get::<&str, _>("body"))
                    .map_err(|_| StorageError::Corrupt("decision".into()))?,
                recorded_by: row
                    .get::<Option<String>, _>("recorded_by")
                    .map(|p| parse_id(&p))
                    .transpose()?,
                recorded_at: row.get("recorded_at"),
            })
        })
        .collect()
    }

    /// Records whether a participant attended, with its audit event; false (nothing
    /// stored) if the conference is closed.
    pub async fn put_attendance(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
        status: Attendance,
        event: &super::AuditEvent,
    ) -> Result<bool> {
        let change = sqlx::query(
            "INSERT INTO attendance (conference_id, participant_id, status)
             SELECT id, ?, ? FROM conferences WHERE id = ? AND closed_at IS NULL
             ON CONFLICT (conference_id, participant_id) DO UPDATE SET status = excluded.status",
        )
        .bind(participant.to_string())
        .bind(status.as_str())
        .bind(conference.to_string());
        self.change_recorded(change, event, now_ms()).await
    }

    /// Who attended, as recorded: (participant, status).
    pub async fn attendance(
        &self,
        conference: ConferenceId,
    ) -> Result<Vec<(ParticipantId, Attendance)>> {
        sqlx::query("SELECT participant_id, status FROM attendance WHERE conference_id = ?")
            .bind(conference.to_string())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| {
                Ok((
                    parse_id(row.get::<&str, _>("participant_id"))?,
                    word(&row, "status", Attendance::parse)?,
                ))
            })
            .collect()
    }

    /// Sets the dates the chair chose for the next meetings, with its audit event;
    /// false (nothing stored) if the conference is closed.
    pub async fn set_next_meetings(
        &self,
        conference: ConferenceId,
        core_group_by: &str,
        review_by: &str,
        event: &super::AuditEvent,
    ) -> Result<bool> {
        let change = sqlx::query(
            "UPDATE conferences SET core_group_by = ?, review_by = ? WHERE id = ? AND closed_at IS NULL",
        )
        .bind(core_group_by)
        .bind(review_by)
        .bind(conference.to_string());
        self.change_recorded(change, event, now_ms()).await
    }

    /// Closes the conference (phase `closed`) with its audit event. Returns when it
    /// was closed, or `None` if it was closed already.
    pub async fn close_conference(
        &self,
        conference: ConferenceId,
        event: &super::AuditEvent,
    ) -> Result<Option<i64>> {
        let at = now_ms();
        let change = sqlx::query(
            "UPDATE conferences SET closed_at = ?, phase = 'closed' WHERE id = ? AND closed_at IS NULL",
        )
        .bind(at)
        .bind(conference.to_string());
        Ok(self.change_recorded(change, event, at).await?.then_some(at))
    }

    /// Opens a closed conference again, at the decision phase, with its audit event;
    /// false if it was not closed.
    pub async fn reopen_conference(
        &self,
        conference: ConferenceId,
        event: &super::AuditEvent,
    ) -> Result<bool> {
        let change = sqlx::query(
            "UPDATE conferences SET closed_at = NULL, phase = 'decision' WHERE id = ? AND closed_at IS NOT NULL",
        )
        .bind(conference.to_string());
        self.change_recorded(change, event, now_ms()).await
    }

    /// Records an event that changes nothing else (an export, say).
    pub async fn record_event(&self, event: &super::AuditEvent) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest `most` stored changes to the conference's documents, oldest first,
    /// and whether there were more.
    pub async fn document_changes(
        &self,
        conference: ConferenceId,
        most: u32,
    ) -> Result<(Vec<DocumentChangeRow>, bool)> {
        let mut rows = sqlx::query(
            "SELECT created_at, participant_id, document FROM document_updates
             WHERE conference_id = ? ORDER BY created_at DESC, document DESC, seq DESC LIMIT ?",
        )
        .bind(conference.to_string())
        .bind(i64::from(most) + 1)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok(DocumentChangeRow {
                at: row.get("created_at"),
                participant: row
                    .get::<Option<String>, _>("participant_id")
                    .map(|p| parse_id(&p))
                    .transpose()?,
                document: word(&row, "document", DocumentKind::parse)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let truncated = rows.len() > most as usize;
        rows.truncate(most as usize);
        rows.reverse();
        Ok((rows, truncated))
    }

    /// Conferences closed before `cutoff` (Unix ms), longest closed first.
    pub async fn conferences_closed_before(&self, cutoff: i64) -> Result<Vec<ConferenceRow>> {
        let sql = format!(
            "SELECT {} FROM conferences WHERE closed_at IS NOT NULL AND closed_at < ? ORDER BY closed_at, id",
            Self::CONFERENCE_COLUMNS
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Self::conference_from_row)
            .collect()
    }

    /// Deletes a conference closed before `cutoff` with everything about it, in one
    /// transaction, and says what went. `None` if it is not (or no longer) closed
    /// before `cutoff`: reopened meanwhile, say. A dry run counts and deletes nothing.
    pub async fn delete_closed_conference(
        &self,
        conference: ConferenceId,
        cutoff: i64,
        dry_run: bool,
    ) -> Result<Option<Removed>> {
        let id = conference.to_string();
        let mut tx = self.pool.begin().await?;
        // Writing first takes the write lock, so nobody reopens it before the commit.
        let row = sqlx::query(
            "UPDATE conferences SET closed_at = closed_at
             WHERE id = ? AND closed_at IS NOT NULL AND closed_at < ?
             RETURNING title, closed_at",
        )
        .bind(&id)
        .bind(cutoff)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut removed = Removed {
            conference,
            title: row.get("title"),
            closed_at: row.get("closed_at"),
            rows: Vec::new(),
        };
        for (table, which) in CONFERENCE_TABLES {
            let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} WHERE {which}"
            )))
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
            if which.starts_with("previous_conference_id") {
                if !dry_run {
                    sqlx::query(
                        "UPDATE conferences SET previous_conference_id = NULL WHERE previous_conference_id = ?",
                    )
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                }
                continue;
            }
            if !dry_run {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE {which}"
                )))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            }
            removed
                .rows
                .push((table, u64::try_from(count).unwrap_or(0)));
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(Some(removed))
    }

    /// Deletes every conference closed before `cutoff`, one transaction each (see
    /// [`Storage::delete_closed_conference`]).
    pub async fn delete_closed_before(&self, cutoff: i64, dry_run: bool) -> Result<Vec<Removed>> {
        let mut removed = Vec::new();
        for row in self.conferences_closed_before(cutoff).await? {
            if let Some(gone) = self
                .delete_closed_conference(row.id, cutoff, dry_run)
                .await?
            {
                removed.push(gone);
            }
        }
        Ok(removed)
    }
}
