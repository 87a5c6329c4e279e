//! Safety scales, their scores, and the audit log.
//!
//! A score is stored here and nowhere else until its scale is revealed. Every change
//! to a scale or a score is written in the same transaction as its audit event, so
//! the log can never miss one.

use roundtable_shared::scale::ScaleStatus;
use roundtable_shared::{ConferenceId, ParticipantId, ScaleId};
use sqlx::Row;

use super::{Sqlite, json, parse_id, word};
use crate::storage::{
    AuditEvent, AuditRow, OpenRefused, Result, ScaleRow, StorageError, VoteOutcome, VoteRow, now_ms,
};

const SCALE_COLUMNS: &str = "id, conference_id, number, subject, about, wording, status";

fn scale_from_row(row: sqlx::sqlite::SqliteRow) -> Result<ScaleRow> {
    Ok(ScaleRow {
        id: parse_id(row.get::<&str, _>("id"))?,
        conference_id: parse_id(row.get::<&str, _>("conference_id"))?,
        number: u32::try_from(row.get::<i64, _>("number"))
            .map_err(|_| StorageError::Corrupt("scale number".into()))?,
        subject: json(&row, "subject")?,
        about: row.get("about"),
        wording: json(&row, "wording")?,
        status: word(&row, "status", ScaleStatus::parse)?,
    })
}

pub(in crate::storage) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    event: &AuditEvent,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (conference_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(event.conference.to_string())
    .bind(at)
    .bind(event.actor.map(|a| a.to_string()))
    .bind(event.action)
    .bind(event.detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Sqlite {
    pub(in crate::storage) async fn open_scale(
        &self,
        scale: &ScaleRow,
        event: &AuditEvent,
    ) -> Result<std::result::Result<ScaleRow, OpenRefused>> {
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO scales (id, conference_id, number, subject, about, wording, status, opened_at)
             SELECT ?, ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, 'open', ?
             FROM scales WHERE conference_id = ?",
        )
        .bind(scale.id.to_string())
        .bind(scale.conference_id.to_string())
        .bind(serde_json::to_string(&scale.subject).expect("a scale's subject is plain data"))
        .bind(&scale.about)
        .bind(serde_json::to_string(&scale.wording).expect("a scale's wording is plain data"))
        .bind(at)
        .bind(scale.conference_id.to_string())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Ok(Err(OpenRefused::AnotherIsOpen));
            }
            other => other?,
        };
        record(&mut tx, event, at).await?;
        let sql = format!("SELECT {SCALE_COLUMNS} FROM scales WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scale.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let stored = scale_from_row(row)?;
        tx.commit().await?;
        Ok(Ok(stored))
    }

    pub(in crate::storage) async fn scale(
        &self,
        conference: ConferenceId,
        id: ScaleId,
    ) -> Result<Option<ScaleRow>> {
        let sql = format!("SELECT {SCALE_COLUMNS} FROM scales WHERE id = ? AND conference_id = ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(conference.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(scale_from_row)
            .transpose()
    }

    pub(in crate::storage) async fn scales(
        &self,
        conference: ConferenceId,
    ) -> Result<Vec<ScaleRow>> {
        let sql =
            format!("SELECT {SCALE_COLUMNS} FROM scales WHERE conference_id = ? ORDER BY number");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(conference.to_string())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(scale_from_row)
            .collect()
    }

    pub(in crate::storage) async fn scored_counts(
        &self,
        conference: ConferenceId,
    ) -> Result<Vec<(ScaleId, u32)>> {
        let rows = sqlx::query(
            "SELECT s.id AS id, COUNT(v.participant_id) AS scored
             FROM scales s LEFT JOIN scale_votes v ON v.scale_id = s.id
             WHERE s.conference_id = ? GROUP BY s.id",
        )
        .bind(conference.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let scored: i64 = r.get("scored");
                Ok((
                    parse_id(r.get::<&str, _>("id"))?,
                    u32::try_from(scored).unwrap_or(0),
                ))
            })
            .collect()
    }

    pub(in crate::storage) async fn put_vote(
        &self,
        conference: ConferenceId,
        scale: ScaleId,
        participant: ParticipantId,
        vote: &VoteRow,
        event: &AuditEvent,
    ) -> Result<VoteOutcome> {
        let at = now_ms();
        let mut tx = self.pool.begin().await?;
        // Writing first takes SQLite's write lock, so the status seen here cannot change
        // before the commit.
        let stored = sqlx::query(
            "INSERT INTO scale_votes (scale_id, participant_id, score, reason, entered_by, updated_at)
             SELECT id, ?, ?, ?, ?, ? FROM scales
             WHERE id = ? AND conference_id = ? AND status = 'open'
               AND NOT EXISTS (SELECT 1 FROM conferences c
                               WHERE c.id = scales.conference_id AND c.closed_at IS NOT NULL)
             ON CONFLICT (scale_id, participant_id) DO UPDATE SET
                 score = excluded.score, reason = excluded.reason,
                 entered_by = excluded.entered_by, updated_at = excluded.updated_at",
        )
        .bind(participant.to_string())
        .bind(i64::from(vote.score))
        .bind(&vote.reason)
        .bind(vote.entered_by.map(|p| p.to_string()))
        .bind(at)
        .bind(scale.to_string())
        .bind(conference.to_string())
        .execute(&mut *tx)
        .await?;
        if stored.rows_affected() == 0 {
            return Ok(VoteOutcome::NotOpen);
        }
        record(&mut tx, event, at).await?;
        let scored: i64 = sqlx::query("SELECT COUNT(*) FROM scale_votes WHERE scale_id = ?")
            .bind(scale.to_string())
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        tx.commit().await?;
        Ok(VoteOutcome::Stored {
            scored: u32::try_from(scored).unwrap_or(0),
        })
    }

    pub(in crate::storage) async fn set_scale_status(
        &self,
        conference: ConferenceId,
        scale: ScaleId,
        from: ScaleStatus,
        to: ScaleStatus,
        event: &AuditEvent,
    ) -> Result<bool> {
        let at = now_ms();
        let column = match to {
            ScaleStatus::Closed => "closed_at",
            ScaleStatus::Revealed => "revealed_at",
            ScaleStatus::Open => {
                return Err(StorageError::Write("a scale cannot open again".into()));
            }
        };
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE scales SET status = ?, {column} = ? WHERE id = ? AND conference_id = ? AND status = ?"
        );
        let changed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(at)
            .bind(scale.to_string())
            .bind(conference.to_string())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?;
        if changed.rows_affected() == 0 {
            return Ok(false);
        }
        record(&mut tx, event, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(in crate::storage) async fn votes(&self, scale: ScaleId) -> Result<Vec<VoteRow>> {
        sqlx::query(
            "SELECT participant_id, score, reason, entered_by FROM scale_votes
             WHERE scale_id = ? ORDER BY rowid",
        )
        .bind(scale.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(vote_from_row)
        .collect()
    }

    pub(in crate::storage) async fn votes_of(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
    ) -> Result<Vec<(ScaleId, VoteRow)>> {
        sqlx::query(
            "SELECT v.scale_id AS scale_id, v.participant_id, v.score, v.reason, v.entered_by
             FROM scale_votes v JOIN scales s ON s.id = v.scale_id
             WHERE s.conference_id = ? AND v.participant_id = ?",
        )
        .bind(conference.to_string())
        .bind(participant.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            let scale = parse_id(row.get::<&str, _>("scale_id"))?;
            Ok((scale, vote_from_row(row)?))
        })
        .collect()
    }

    pub(in crate::storage) async fn previous_conference(
        &self,
        id: ConferenceId,
    ) -> Result<Option<ConferenceId>> {
        let row = sqlx::query("SELECT previous_conference_id FROM conferences WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row.and_then(|r| r.get::<Option<String>, _>("previous_conference_id")) {
            Some(previous) => Ok(Some(parse_id(&previous)?)),
            None => Ok(None),
        }
    }

    pub(in crate::storage) async fn set_previous_conference(
        &self,
        id: ConferenceId,
        previous: ConferenceId,
    ) -> Result<()> {
        sqlx::query("UPDATE conferences SET previous_conference_id = ? WHERE id = ?")
            .bind(previous.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(in crate::storage) async fn audit_events(
        &self,
        conference: ConferenceId,
    ) -> Result<Vec<AuditRow>> {
        sqlx::query(
            "SELECT at, actor, action, detail FROM audit_events WHERE conference_id = ? ORDER BY id",
        )
        .bind(conference.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok(AuditRow {
                at: row.get("at"),
                actor: row
                    .get::<Option<String>, _>("actor")
                    .map(|a| parse_id(&a))
                    .transpose()?,
                action: row.get("action"),
                detail: serde_json::from_str(row.get::<&str, _>("detail"))
                    .map_err(|_| StorageError::Corrupt("audit detail".into()))?,
            })
        })
        .collect()
    }
}

fn vote_from_row(row: sqlx::sqlite::SqliteRow) -> Result<VoteRow> {
    Ok(VoteRow {
        participant_id: parse_id(row.get::<&str, _>("participant_id"))?,
        score: u8::try_from(row.get::<i64, _>("score"))
            .map_err(|_| StorageError::Corrupt("score".into()))?,
        reason: row.get("reason"),
        entered_by: row
            .get::<Option<String>, _>("entered_by")
            .map(|p| parse_id(&p))
            .transpose()?,
    })
}
