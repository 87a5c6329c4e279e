//! The audit log; the end of the meeting: decisions, attendance, the next meetings,
//! closing and reopening; the document's change log for the audit view; and deleting
//! conferences closed long ago.
//!
//! Every command that changes a conference checks, in the statement that makes the
//! change, that the conference is not closed, and writes its audit event in the same
//! transaction.

/// Every table holding something of a conference, with the rows of it that belong to
/// the conference `$1`. Deleted in this order, children first, so nothing depends on
/// the foreign keys' cascades.
pub(in crate::storage) const CONFERENCE_TABLES: [(&str, &str); 13] = [
    (
        "sessions",
        "participant_id IN (SELECT id FROM participants WHERE conference_id = $1)",
    ),
    (
        "scale_votes",
        "scale_id IN (SELECT id FROM scales WHERE conference_id = $1)",
    ),
    ("scales", "conference_id = $1"),
    ("decisions", "conference_id = $1"),
    ("attendance", "conference_id = $1"),
    ("audit_events", "conference_id = $1"),
    ("document_quarantine", "conference_id = $1"),
    ("document_clients", "conference_id = $1"),
    ("document_updates", "conference_id = $1"),
    ("document_snapshots", "conference_id = $1"),
    ("participants", "conference_id = $1"),
    // Not deleted: a review conference that named this one only forgets it.
    ("conferences", "previous_conference_id = $1"),
    ("conferences", "id = $1"),
];

/// The audit log and the operations at the end of the meeting.
macro_rules! record_operations {
    ($db:ty) => {
        /// Writes `event` to the audit log, in the transaction of what it records.
        async fn record(
            tx: &mut <$db as sqlx::Database>::Connection,
            event: &AuditEvent,
            at: i64,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO audit_events (conference_id, at, actor, action, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(event.conference.to_string())
            .bind(at)
            .bind(event.actor.map(|a| a.to_string()))
            .bind(event.action)
            .bind(event.detail.to_string())
            .execute(tx)
            .await?;
            Ok(())
        }

        /// Runs `change` and records `event` in one transaction; false (nothing stored,
        /// nothing recorded) if the statement changed no row.
        async fn change_recorded(
            &self,
            change: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>,
            event: &AuditEvent,
            at: i64,
        ) -> Result<bool> {
            let mut tx = self.pool.begin().await?;
            if change.execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            Self::record(&mut tx, event, at).await?;
            tx.commit().await?;
            Ok(true)
        }

        pub(in crate::storage) async fn record_event(&self, event: &AuditEvent) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(in crate::storage) async fn audit_events(&self, conference: ConferenceId) -> Result<Vec<AuditRow>> {
            sqlx::query(
                "SELECT at, actor, action, detail FROM audit_events WHERE conference_id = $1 ORDER BY id",
            )
            .bind(conference.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map($crate::storage::rows::audit)
            .collect()
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
            let sql = format!(
                "INSERT INTO decisions (conference_id, child_id, body, recorded_by, recorded_at)
                 SELECT id, $1, $2, $3, $4 FROM conferences WHERE id = $5 AND closed_at IS NULL {ROW_LOCK}
                 ON CONFLICT (conference_id, child_id) DO UPDATE SET
                     body = excluded.body, recorded_by = excluded.recorded_by,
                     recorded_at = excluded.recorded_at"
            );
            let change = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(child.to_string())
                .bind(body.to_string())
                .bind(recorded_by.to_string())
                .bind(at)
                .bind(conference.to_string());
            self.change_recorded(change, event, at).await
        }

        pub(in crate::storage) async fn decisions(&self, conference: ConferenceId) -> Result<Vec<DecisionRow>> {
            sqlx::query(
                "SELECT child_id, body, recorded_by, recorded_at FROM decisions
                 WHERE conference_id = $1 ORDER BY child_id",
            )
            .bind(conference.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map($crate::storage::rows::decision)
            .collect()
        }

        pub(in crate::storage) async fn put_attendance(
            &self,
            conference: ConferenceId,
            participant: ParticipantId,
            status: Attendance,
            event: &AuditEvent,
        ) -> Result<bool> {
            let sql = format!(
                "INSERT INTO attendance (conference_id, participant_id, status)
                 SELECT id, $1, $2 FROM conferences WHERE id = $3 AND closed_at IS NULL {ROW_LOCK}
                 ON CONFLICT (conference_id, participant_id) DO UPDATE SET status = excluded.status"
            );
            let change = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(participant.to_string())
                .bind(status.as_str())
                .bind(conference.to_string());
            self.change_recorded(change, event, now_ms()).await
        }

        pub(in crate::storage) async fn attendance(
            &self,
            conference: ConferenceId,
        ) -> Result<Vec<(ParticipantId, Attendance)>> {
            sqlx::query("SELECT participant_id, status FROM attendance WHERE conference_id = $1")
                .bind(conference.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        $crate::storage::rows::id(row, "participant_id")?,
                        $crate::storage::rows::word(row, "status", Attendance::parse)?,
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
                "UPDATE conferences SET core_group_by = $1, review_by = $2 WHERE id = $3 AND closed_at IS NULL",
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
                "UPDATE conferences SET closed_at = $1, phase = 'closed' WHERE id = $2 AND closed_at IS NULL",
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
                "UPDATE conferences SET closed_at = NULL, phase = 'decision' WHERE id = $1 AND closed_at IS NOT NULL",
            )
            .bind(conference.to_string());
            self.change_recorded(change, event, now_ms()).await
        }

        pub(in crate::storage) async fn document_changes(
            &self,
            conference: ConferenceId,
            most: u32,
        ) -> Result<(Vec<DocumentChangeRow>, bool)> {
            let mut rows = sqlx::query(
                "SELECT created_at, participant_id, document FROM document_updates
                 WHERE conference_id = $1 ORDER BY created_at DESC, document DESC, seq DESC LIMIT $2",
            )
            .bind(conference.to_string())
            .bind(i64::from(most) + 1)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map($crate::storage::rows::document_change)
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
            Self::conferences_where("closed_at IS NOT NULL AND closed_at < $1 ORDER BY closed_at, id")
                .bind(cutoff)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map($crate::storage::rows::conference)
                .collect()
        }

        pub(in crate::storage) async fn delete_closed_conference(
            &self,
            conference: ConferenceId,
            cutoff: i64,
            dry_run: bool,
        ) -> Result<Option<Removed>> {
            use $crate::storage::rows::Columns;
            let id = conference.to_string();
            let mut tx = self.pool.begin().await?;
            // Writing first locks the conference (SQLite: the database), so nobody
            // reopens it before the commit.
            let row = sqlx::query(
                "UPDATE conferences SET closed_at = closed_at
                 WHERE id = $1 AND closed_at IS NOT NULL AND closed_at < $2
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
                title: row.text("title").to_owned(),
                closed_at: row.int("closed_at"),
                rows: Vec::new(),
            };
            for (table, which) in $crate::storage::portable::record::CONFERENCE_TABLES {
                let count = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE {which}"
                )))
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
                let count = u64::try_from(count.int("n")).unwrap_or(0);
                if which.starts_with("previous_conference_id") {
                    if !dry_run {
                        sqlx::query(
                            "UPDATE conferences SET previous_conference_id = NULL WHERE previous_conference_id = $1",
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
                removed.rows.push((table, count));
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
    };
}
pub(in crate::storage) use record_operations;
