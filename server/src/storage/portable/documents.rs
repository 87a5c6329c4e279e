//! Reading documents, and quarantining what of them does not load. Appending to a
//! document's log and replacing its snapshot are each engine's own (SQLite's go
//! through its one writer). Each engine says how a transaction reads as of one
//! moment (`CONSISTENT_READ`) and how it checks a write's fence (`check_fence`).

/// The document operations both engines share.
macro_rules! document_reads {
    ($db:ty) => {
        pub(in crate::storage) async fn load_document(
            &self,
            conference: ConferenceId,
            kind: DocumentKind,
        ) -> Result<StoredDocument> {
            use $crate::storage::rows::Columns;
            let id = conference.to_string();
            // One transaction, seeing the database as of one moment: on PostgreSQL the
            // owner may append while another node loads, and the updates read must end
            // where `last_seq` says they do.
            let mut tx = self.pool.begin().await?;
            if let Some(consistent) = CONSISTENT_READ {
                sqlx::query(consistent).execute(&mut *tx).await?;
            }
            let snapshot = sqlx::query(
                "SELECT through_seq, data FROM document_snapshots WHERE conference_id = $1 AND document = $2",
            )
            .bind(&id)
            .bind(kind.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| (row.int("through_seq"), sqlx::Row::get::<Vec<u8>, _>(&row, "data")));
            let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
            let updates = sqlx::query(
                "SELECT seq, data FROM document_updates u
                 WHERE conference_id = $1 AND document = $2 AND seq > $3
                   AND NOT EXISTS (SELECT 1 FROM document_quarantine q
                                   WHERE q.conference_id = u.conference_id
                                     AND q.document = u.document AND q.seq = u.seq)
                 ORDER BY seq",
            )
            .bind(&id)
            .bind(kind.as_str())
            .bind(after)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(Self::log_row)
            .collect();
            let last_seq: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(seq) FROM document_updates WHERE conference_id = $1 AND document = $2",
            )
            .bind(&id)
            .bind(kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let clients = sqlx::query(
                "SELECT client_id, participant_id FROM document_clients
                 WHERE conference_id = $1 AND document = $2",
            )
            .bind(&id)
            .bind(kind.as_str())
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                let owner: String = sqlx::Row::get(row, "participant_id");
                let owner = owner.parse().map_err(|_| {
                    StorageError::Corrupt(format!("a client's owner is not an id: {owner}"))
                })?;
                // The client id's 64 bits, stored as a signed integer.
                Ok((row.int("client_id") as u64, owner))
            })
            .collect::<Result<_>>()?;
            tx.commit().await?;
            Ok(StoredDocument {
                last_seq: last_seq.unwrap_or(0).max(after),
                snapshot,
                updates,
                clients,
            })
        }

        /// A row of a document's log: its `seq` and `data`.
        fn log_row(row: &<$db as sqlx::Database>::Row) -> (i64, Vec<u8>) {
            use $crate::storage::rows::Columns;
            (row.int("seq"), sqlx::Row::get(row, "data"))
        }

        pub(in crate::storage) async fn quarantine(
            &self,
            conference: ConferenceId,
            kind: DocumentKind,
            fence: Fence<'_>,
            updates: &[(i64, String)],
            event: &AuditEvent,
        ) -> Result<()> {
            let at = now_ms();
            let mut tx = self.pool.begin().await?;
            Self::check_fence(&mut tx, conference, kind, fence).await?;
            for (seq, why) in updates {
                sqlx::query(
                    "INSERT INTO document_quarantine (conference_id, document, seq, reason, at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(conference.to_string())
                .bind(kind.as_str())
                .bind(*seq)
                .bind(why)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            Self::record(&mut tx, event, at).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(in crate::storage) async fn quarantined(
            &self,
            conference: ConferenceId,
            kind: DocumentKind,
        ) -> Result<Vec<(i64, String)>> {
            use $crate::storage::rows::Columns;
            let rows = sqlx::query(
                "SELECT seq, reason FROM document_quarantine
                 WHERE conference_id = $1 AND document = $2 ORDER BY seq",
            )
            .bind(conference.to_string())
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(|row| (row.int("seq"), row.text("reason").to_owned()))
                .collect())
        }

        pub(in crate::storage) async fn stored_documents(&self) -> Result<Vec<(ConferenceId, DocumentKind)>> {
            sqlx::query(
                "SELECT conference_id, document FROM document_updates
                 UNION SELECT conference_id, document FROM document_snapshots
                 ORDER BY conference_id, document",
            )
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map($crate::storage::rows::document)
            .collect()
        }

        pub(in crate::storage) async fn bytes_by_sender(
            &self,
            conference: ConferenceId,
            kind: DocumentKind,
        ) -> Result<Vec<(ParticipantId, usize)>> {
            use $crate::storage::rows::Columns;
            sqlx::query(
                "SELECT participant_id, SUM(LENGTH(data)) AS bytes FROM document_updates
                 WHERE conference_id = $1 AND document = $2 AND participant_id IS NOT NULL
                 GROUP BY participant_id",
            )
            .bind(conference.to_string())
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let participant = $crate::storage::rows::id(row, "participant_id")?;
                Ok((participant, usize::try_from(row.int("bytes")).unwrap_or(usize::MAX)))
            })
            .collect()
        }

        pub(in crate::storage) async fn document_log(
            &self,
            conference: ConferenceId,
            kind: DocumentKind,
        ) -> Result<Vec<(i64, Vec<u8>)>> {
            Ok(sqlx::query(
                "SELECT seq, data FROM document_updates
                 WHERE conference_id = $1 AND document = $2 ORDER BY seq",
            )
            .bind(conference.to_string())
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::log_row)
            .collect())
        }
    };
}
pub(in crate::storage) use document_reads;
