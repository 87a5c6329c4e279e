//! Chairs, sessions, conferences and participants.

/// The operations on chairs, sessions, conferences and participants. Every command
/// is one transaction with its audit event.
macro_rules! people_operations {
    ($db:ty) => {
        // --- chairs ---------------------------------------------------------

        pub(in crate::storage) async fn insert_chair(&self, chair: &ChairRow) -> Result<()> {
            let result = sqlx::query(
                "INSERT INTO chairs (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(chair.id.to_string())
            .bind(&chair.email)
            .bind(&chair.name)
            .bind(&chair.password_hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await;
            match result {
                Err(e) if $crate::storage::portable::email_taken(&e) => Err(StorageError::EmailTaken),
                other => other.map(|_| ()).map_err(Into::into),
            }
        }

        pub(in crate::storage) async fn chair_by_email(&self, email: &str) -> Result<Option<ChairRow>> {
            self.chair_where("email = $1", email).await
        }

        pub(in crate::storage) async fn chair(&self, id: ChairId) -> Result<Option<ChairRow>> {
            self.chair_where("id = $1", &id.to_string()).await
        }

        async fn chair_where(&self, condition: &str, value: &str) -> Result<Option<ChairRow>> {
            Self::select($crate::storage::rows::CHAIR_COLUMNS, "chairs", condition)
                .bind(value)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::chair(&row))
                .transpose()
        }

        pub(in crate::storage) async fn record_account_event(
            &self,
            chair: ChairId,
            action: &str,
            detail: &serde_json::Value,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO account_events (chair_id, at, action, detail) VALUES ($1, $2, $3, $4)",
            )
            .bind(chair.to_string())
            .bind(now_ms())
            .bind(action)
            .bind(detail.to_string())
            .execute(&mut *tx)
            .await?;
            // The oldest go once there are more than are kept.
            sqlx::query(
                "DELETE FROM account_events WHERE chair_id = $1 AND id <= (
                     SELECT id FROM account_events WHERE chair_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(chair.to_string())
            .bind($crate::storage::ACCOUNT_EVENTS_KEPT)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        pub(in crate::storage) async fn account_events(&self, chair: ChairId) -> Result<Vec<$crate::storage::AccountEventRow>> {
            sqlx::query(
                "SELECT at, action, detail FROM account_events WHERE chair_id = $1 ORDER BY id DESC",
            )
            .bind(chair.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map($crate::storage::rows::account_event)
            .collect()
        }

        // --- sessions -------------------------------------------------------

        pub(in crate::storage) async fn insert_session(
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
                "INSERT INTO sessions (token_hash, chair_id, participant_id, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(chair)
            .bind(participant)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        pub(in crate::storage) async fn session(
            &self,
            token_hash: &[u8],
        ) -> Result<Option<(SessionSubject, i64)>> {
            use $crate::storage::rows::{Columns, optional_id};
            let row = sqlx::query(
                "SELECT chair_id, participant_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let expires_at = row.int("expires_at");
            Ok(
                match (optional_id(&row, "chair_id")?, optional_id(&row, "participant_id")?) {
                    (Some(chair), _) => Some((SessionSubject::Chair(chair), expires_at)),
                    (None, Some(p)) => Some((SessionSubject::Participant(p), expires_at)),
                    (None, None) => None,
                },
            )
        }

        pub(in crate::storage) async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        // --- conferences ----------------------------------------------------

        pub(in crate::storage) async fn insert_conference(
            &self,
            conference: &ConferenceRow,
            participants: &[(ParticipantRow, Option<Vec<u8>>)],
            event: &AuditEvent,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO conferences (id, chair_id, title, kind, scheduled_start, headings, children, phase, room_code, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(in crate::storage) async fn room_code_taken(&self, code: &str) -> Result<bool> {
            Ok(sqlx::query("SELECT 1 FROM conferences WHERE room_code = $1")
                .bind(code)
                .fetch_optional(&self.pool)
                .await?
                .is_some())
        }

        /// The query for `columns` of the rows of `table` meeting `condition` (what
        /// follows `WHERE`), to bind.
        fn select(
            columns: &str,
            table: &str,
            condition: &str,
        ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM {table} WHERE {condition}"
            )))
        }

        /// The query for conferences meeting `condition`, to bind.
        fn conferences_where(
            condition: &str,
        ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            Self::select($crate::storage::rows::CONFERENCE_COLUMNS, "conferences", condition)
        }

        pub(in crate::storage) async fn conference(&self, id: ConferenceId) -> Result<Option<ConferenceRow>> {
            Self::conferences_where("id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::conference(&row))
                .transpose()
        }

        pub(in crate::storage) async fn conference_by_room_code(
            &self,
            code: &str,
        ) -> Result<Option<ConferenceRow>> {
            Self::conferences_where("room_code = $1")
                .bind(code)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::conference(&row))
                .transpose()
        }

        pub(in crate::storage) async fn conferences_of_chair(&self, chair: ChairId) -> Result<Vec<ConferenceRow>> {
            Self::conferences_where("chair_id = $1 ORDER BY scheduled_start DESC")
                .bind(chair.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map($crate::storage::rows::conference)
                .collect()
        }

        pub(in crate::storage) async fn set_phase(
            &self,
            id: ConferenceId,
            phase: Phase,
            event: &AuditEvent,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE conferences SET phase = $1 WHERE id = $2")
                .bind(phase.as_str())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }

        // --- participants ---------------------------------------------------

        async fn insert_participant_in(
            tx: &mut <$db as sqlx::Database>::Connection,
            p: &ParticipantRow,
            link_hash: Option<&[u8]>,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO participants (id, conference_id, name, role, agency, status, link_hash, link_expires_at, chair_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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

        pub(in crate::storage) async fn insert_participant(
            &self,
            p: &ParticipantRow,
            link_hash: Option<&[u8]>,
            event: &AuditEvent,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            Self::insert_participant_in(&mut tx, p, link_hash).await?;
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }

        /// The query for participants meeting `condition`, to bind.
        fn participants_where(
            condition: &str,
        ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            Self::select($crate::storage::rows::PARTICIPANT_COLUMNS, "participants", condition)
        }

        pub(in crate::storage) async fn participant(&self, id: ParticipantId) -> Result<Option<ParticipantRow>> {
            Self::participants_where("id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::participant(&row))
                .transpose()
        }

        pub(in crate::storage) async fn participant_by_link(
            &self,
            link_hash: &[u8],
        ) -> Result<Option<ParticipantRow>> {
            Self::participants_where("link_hash = $1")
                .bind(link_hash)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::participant(&row))
                .transpose()
        }

        pub(in crate::storage) async fn chair_participant(
            &self,
            conference: ConferenceId,
            chair: ChairId,
        ) -> Result<Option<ParticipantRow>> {
            Self::participants_where("conference_id = $1 AND chair_id = $2")
                .bind(conference.to_string())
                .bind(chair.to_string())
                .fetch_optional(&self.pool)
                .await?
                .map(|row| $crate::storage::rows::participant(&row))
                .transpose()
        }

        pub(in crate::storage) async fn participants(
            &self,
            conference: ConferenceId,
        ) -> Result<Vec<ParticipantRow>> {
            Self::participants_where("conference_id = $1 ORDER BY created_at, id")
                .bind(conference.to_string())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map($crate::storage::rows::participant)
                .collect()
        }

        pub(in crate::storage) async fn admit_participant(
            &self,
            id: ParticipantId,
            role: Role,
            agency: Option<&str>,
            event: &AuditEvent,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE participants SET status = $1, role = $2, agency = $3 WHERE id = $4")
                .bind(ParticipantStatus::Admitted.as_str())
                .bind(role.as_str())
                .bind(agency)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(in crate::storage) async fn set_participant_status(
            &self,
            id: ParticipantId,
            status: ParticipantStatus,
            role: Option<Role>,
            event: &AuditEvent,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE participants SET status = $1, role = COALESCE($2, role) WHERE id = $3")
                .bind(status.as_str())
                .bind(role.map(Role::as_str))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            if status.shut_out() {
                sqlx::query("UPDATE participants SET link_hash = NULL WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE participant_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(in crate::storage) async fn replace_link(
            &self,
            id: ParticipantId,
            link_hash: &[u8],
            expires_at: i64,
            event: &AuditEvent,
        ) -> Result<()> {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE participants SET link_hash = $1, link_expires_at = $2 WHERE id = $3")
                .bind(link_hash)
                .bind(expires_at)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            Self::record(&mut tx, event, now_ms()).await?;
            tx.commit().await?;
            Ok(())
        }
    };
}
pub(in crate::storage) use people_operations;
