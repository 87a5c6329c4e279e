//! Safety scales and their scores.
//!
//! A score is stored here and nowhere else until its scale is revealed. Every change
//! to a scale or a score is written in the same transaction as its audit event, so
//! the log can never miss one.

/// The operations on scales and scores.
macro_rules! scale_operations {
    ($db:ty) => {
        pub(in crate::storage) async fn open_scale(
            &self,
            scale: &ScaleRow,
            event: &AuditEvent,
        ) -> Result<std::result::Result<ScaleRow, OpenRefused>> {
            let at = now_ms();
            let mut tx = self.pool.begin().await?;
            // Two scales opened at once are numbered alike, or are both open: the
            // unique constraints refuse the second either way.
            let inserted = sqlx::query(
                "INSERT INTO scales (id, conference_id, number, subject, about, wording, status, opened_at)
                 SELECT $1, $2, COALESCE(MAX(number), 0) + 1, $3, $4, $5, 'open', $6
                 FROM scales WHERE conference_id = $2",
            )
            .bind(scale.id.to_string())
            .bind(scale.conference_id.to_string())
            .bind(serde_json::to_string(&scale.subject).expect("a scale's subject is plain data"))
            .bind(&scale.about)
            .bind(serde_json::to_string(&scale.wording).expect("a scale's wording is plain data"))
            .bind(at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Ok(Err(OpenRefused::AnotherIsOpen));
                }
                other => other?,
            };
            Self::record(&mut tx, event, at).await?;
            let stored = Self::scales_where("id = $1")
                .bind(scale.id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            let stored = $crate::storage::rows::scale(&stored)?;
            tx.commit().await?;
            Ok(Ok(stored))
        }

        /// The query for scales meeting `condition`, to bind.
        fn scales_where(
            condition: &str,
        ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            Self::select($crate::storage::rows::SCALE_COLUMNS, "scales", condition)
        }

        pub(in crate::storage) async fn scale(
            &self,
            conference: ConferenceId,
            id: ScaleId,
        ) -> Result<Option<ScaleRow>> {
            Self::scales_where("id = $1 AND conference_id = $2")
                .bind(id.to_string())
                .bind(conference.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::scale(&row))
                .transpose()
        }

        pub(in crate::storage) async fn scales(&self, conference: ConferenceId) -> Result<Vec<ScaleRow>> {
            Self::scales_where("conference_id = $1 ORDER BY number")
                .bind(conference.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map($crate::storage::rows::scale)
                .collect()
        }

        pub(in crate::storage) async fn scored_counts(
            &self,
            conference: ConferenceId,
        ) -> Result<Vec<(ScaleId, u32)>> {
            sqlx::query(
                "SELECT s.id AS id, COUNT(v.participant_id) AS scored
                 FROM scales s LEFT JOIN scale_votes v ON v.scale_id = s.id
                 WHERE s.conference_id = $1 GROUP BY s.id",
            )
            .bind(conference.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    $crate::storage::rows::id(row, "id")?,
                    $crate::storage::rows::count(row, "scored"),
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
            // The scale must be open and its conference not closed until the commit:
            // ROW_LOCK keeps both rows as the condition read them.
            let sql = format!(
                "INSERT INTO scale_votes (scale_id, participant_id, score, reason, entered_by, updated_at)
                 SELECT s.id, $1, $2, $3, $4, $5 FROM scales s JOIN conferences c ON c.id = s.conference_id
                 WHERE s.id = $6 AND s.conference_id = $7 AND s.status = 'open' AND c.closed_at IS NULL
                 {ROW_LOCK}
                 ON CONFLICT (scale_id, participant_id) DO UPDATE SET
                     score = excluded.score, reason = excluded.reason,
                     entered_by = excluded.entered_by, updated_at = excluded.updated_at"
            );
            let stored = sqlx::query(sqlx::AssertSqlSafe(sql))
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
            Self::record(&mut tx, event, at).await?;
            let scored = sqlx::query("SELECT COUNT(*) AS scored FROM scale_votes WHERE scale_id = $1")
                .bind(scale.to_string())
                .fetch_one(&mut *tx)
                .await?;
            let scored = $crate::storage::rows::count(&scored, "scored");
            tx.commit().await?;
            Ok(VoteOutcome::Stored { scored })
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
            let sql = format!(
                "UPDATE scales SET status = $1, {column} = $2 WHERE id = $3 AND conference_id = $4 AND status = $5"
            );
            let change = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(to.as_str())
                .bind(at)
                .bind(scale.to_string())
                .bind(conference.to_string())
                .bind(from.as_str());
            self.change_recorded(change, event, at).await
        }

        pub(in crate::storage) async fn votes(&self, scale: ScaleId) -> Result<Vec<VoteRow>> {
            // `rowid` is the order people first scored in: SQLite's own, a column
            // of that name in PostgreSQL.
            sqlx::query(
                "SELECT participant_id, score, reason, entered_by FROM scale_votes
                 WHERE scale_id = $1 ORDER BY rowid",
            )
            .bind(scale.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map($crate::storage::rows::vote)
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
                 WHERE s.conference_id = $1 AND v.participant_id = $2",
            )
            .bind(conference.to_string())
            .bind(participant.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    $crate::storage::rows::id(row, "scale_id")?,
                    $crate::storage::rows::vote(row)?,
                ))
            })
            .collect()
        }

        pub(in crate::storage) async fn previous_conference(
            &self,
            id: ConferenceId,
        ) -> Result<Option<ConferenceId>> {
            let row = sqlx::query("SELECT previous_conference_id FROM conferences WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            match row {
                Some(row) => $crate::storage::rows::optional_id(&row, "previous_conference_id"),
                None => Ok(None),
            }
        }

        pub(in crate::storage) async fn set_previous_conference(
            &self,
            id: ConferenceId,
            previous: ConferenceId,
        ) -> Result<()> {
            sqlx::query("UPDATE conferences SET previous_conference_id = $1 WHERE id = $2")
                .bind(previous.to_string())
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
            Ok(())
        }
    };
}
pub(in crate::storage) use scale_operations;
