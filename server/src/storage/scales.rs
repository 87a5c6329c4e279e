//! Safety scales, their scores, and the audit log.
//!
//! A score is stored here and nowhere else until its scale is revealed. Every change
//! to a scale or a score is written in the same transaction as its audit event, so
//! the log can never miss one.

use roundtable_shared::scale::{ScaleStatus, ScaleSubject, ScaleWording};
use roundtable_shared::{ConferenceId, ParticipantId, ScaleId};
use sqlx::Row;

use super::{Result, Storage, StorageError, json, now_ms, parse_id, word};

#[derive(Debug, Clone)]
pub struct ScaleRow {
    pub id: ScaleId,
    pub conference_id: ConferenceId,
    pub number: u32,
    pub subject: ScaleSubject,
    pub about: String,
    pub wording: ScaleWording,
    pub status: ScaleStatus,
}

#[derive(Debug, Clone)]
pub struct VoteRow {
    pub participant_id: ParticipantId,
    pub score: u8,
    pub reason: Option<String>,
    /// The chair's participant id, when the chair entered the score.
    pub entered_by: Option<ParticipantId>,
}

/// Something done in a conference, for the audit log.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub conference: ConferenceId,
    pub actor: Option<ParticipantId>,
    pub action: &'static str,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: i64,
    pub actor: Option<ParticipantId>,
    pub action: String,
    pub detail: serde_json::Value,
}

/// Why a new scale could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenRefused {
    AnotherIsOpen,
}

/// What became of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Stored; this many people have now scored.
    Stored { scored: u32 },
    /// The scale is not open (closed, revealed, or not of this conference), or the
    /// conference is closed.
    NotOpen,
}

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

pub(super) async fn record(
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

impl Storage {
    /// Opens a new scale, numbered after the conference's last one. `scale.number` is
    /// ignored; the stored scale is returned.
    pub async fn open_scale(
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

    pub async fn scale(&self, conference: ConferenceId, id: ScaleId) -> Result<Option<ScaleRow>> {
        let sql = format!("SELECT {SCALE_COLUMNS} FROM scales WHERE id = ? AND conference_id = ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .bind(conference.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(scale_from_row)
            .transpose()
    }

    /// The conference's scales, first opened first.
    pub async fn scales(&self, conference: ConferenceId) -> Result<Vec<ScaleRow>> {
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

    /// How many people have scored each of the conference's scales.
    pub async fn scored_counts(&self, conference: ConferenceId) -> Result<Vec<(ScaleId, u32)>> {
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

    /// Stores `participant`'s score on an open scale, replacing any earlier score of
    /// theirs, with its audit event. Nothing is stored unless the scale is open and
    /// its conference is not closed.
    pub async fn put_vote(
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

    /// Moves a scale from `from` to `to` (and records it); false if it was not at `from`.
    pub async fn set_scale_status(
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

    /// Every score given on a scale, in the order people first scored.
    pub async fn votes(&self, scale: ScaleId) -> Result<Vec<VoteRow>> {
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

    /// One participant's score on each scale they scored, by scale id.
    pub async fn votes_of(
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

    /// The conference a review conference follows, if the chair named one.
    pub async fn previous_conference(&self, id: ConferenceId) -> Result<Option<ConferenceId>> {
        let row = sqlx::query("SELECT previous_conference_id FROM conferences WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row.and_then(|r| r.get::<Option<String>, _>("previous_conference_id")) {
            Some(previous) => Ok(Some(parse_id(&previous)?)),
            None => Ok(None),
        }
    }

    pub async fn set_previous_conference(
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

    /// The conference's audit log, oldest first.
    pub async fn audit_events(&self, conference: ConferenceId) -> Result<Vec<AuditRow>> {
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
