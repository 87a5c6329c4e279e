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
use super::{Sqlite, parse_id, word};
use crate::storage::{
    AuditEvent, ConferenceRow, DecisionRow, DocumentChangeRow, Removed, Result, StorageError,
    now_ms,
};

/// Every table holding something of a conference, with the rows of it that belong to
/// the conference `?`. Deleted in this order, children first, so nothing depends on
/// the foreign keys' cascades being switched on.
const CONFERENCE_TABLES: [(&str, &str); 13] = [
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
    ("document_quarantine", "conference_id = ?"),
    ("document_clients", "conference_id = ?"),
    ("document_updates", "conference_id = ?"),
    ("document_snapshots", "conference_id = ?"),
    ("participants", "conference_id = ?"),
    // Not deleted: a review conference that named this one only forgets it.
    ("conferences", "previous_conference_id = ?"),
    ("conferences", "id = ?"),
];

/// A statement that changes a conference, to run with its audit event.
type Change<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

impl Sqlite {
    /// Runs `change` and records `event` in one transaction; false (nothing stored,
    /// nothing recorded) if the statement changed no row.
    async fn change_recorded(
        &self,
        change: Change<'_>,
        event: &AuditEvent,
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

    pub(in crate::storage) async fn put_decision(
        &self,
        conference: ConferenceId,
        child: ChildId,
        body: &serde_json::Value,
        recorded_by: ParticipantId,
        event: &AuditEvent,
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

    pub(in crate::storage) async fn decisions(
        &self,
        conference: ConferenceId,
    ) -> Result<Vec<DecisionRow>> {
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

    pub(in crate::storage) async fn put_attendance(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
        status: Attendance,
        event: &AuditEvent,
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

    pub(in crate::storage) async fn attendance(
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

    pub(in crate::storage) async fn set_next_meetings(
        &self,
        conference: ConferenceId,
        core_group_by: &str,
        review_by: &str,
        event: &AuditEvent,
    ) -> Result<bool> {
        let change = sqlx::query(
            "UPDATE conferences SET core_group_by = ?, review_by = ? WHERE id = ? AND closed_at IS NULL",
        )
        .bind(core_group_by)
        .bind(review_by)
        .bind(conference.to_string());
        self.change_recorded(change, event, now_ms()).await
    }

    pub(in crate::storage) async fn close_conference(
        &self,
        conference: ConferenceId,
        event: &AuditEvent,
    ) -> Result<Option<i64>> {
        let at = now_ms();
        let change = sqlx::query(
            "UPDATE conferences SET closed_at = ?, phase = 'closed' WHERE id = ? AND closed_at IS NULL",
        )
        .bind(at)
        .bind(conference.to_string());
        Ok(self.change_recorded(change, event, at).await?.then_some(at))
    }

    pub(in crate::storage) async fn reopen_conference(
        &self,
        conference: ConferenceId,
        event: &AuditEvent,
    ) -> Result<bool> {
        let change = sqlx::query(
            "UPDATE conferences SET closed_at = NULL, phase = 'decision' WHERE id = ? AND closed_at IS NOT NULL",
        )
        .bind(conference.to_string());
        self.change_recorded(change, event, now_ms()).await
    }

    pub(in crate::storage) async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        record(&mut tx, event, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::storage) async fn document_changes(
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

    pub(in crate::storage) async fn conferences_closed_before(
        &self,
        cutoff: i64,
    ) -> Result<Vec<ConferenceRow>> {
        Self::conferences_where("closed_at IS NOT NULL AND closed_at < ? ORDER BY closed_at, id")
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Self::conference_from_row)
            .collect()
    }

    pub(in crate::storage) async fn delete_closed_conference(
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

    pub(in crate::storage) async fn delete_closed_before(
        &self,
        cutoff: i64,
        dry_run: bool,
    ) -> Result<Vec<Removed>> {
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
