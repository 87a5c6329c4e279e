//! What several server nodes sharing one PostgreSQL database need of it: each
//! document's lease (which node owns it), the updates a node forwards to a
//! document's owner and the owner's verdicts on them, the committed updates every
//! node relays, and the wake-ups (`NOTIFY` on [`CHANNEL`]) that say when to look.
//!
//! The tables are the truth; a notification only says "look now", and may be lost
//! (while a node's listening connection is down): nodes also look on a timer.
//! PostgreSQL's clock (`now()`) is the only one a lease is measured by.

use std::sync::Arc;
use std::time::Duration;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::{ConferenceId, ParticipantId, Role};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::rows::{self, Columns};
use super::{ForwardVerdict, Lease, Result, StorageError};

/// The channel every wake-up is sent on. Its payloads are words separated by
/// spaces, a kind and the document (`<conference> <document>`):
/// - `u <document> <seq>`: the owner committed updates, the last numbered `seq`;
/// - `f <document>`: an update was forwarded to the document's owner;
/// - `v <document>`: the owner gave verdicts on forwarded updates;
/// - `l <document>`: the owner gave the lease up;
/// - `x <conference> <participant> <code> <reason…>`: close that participant's
///   connections to the conference, with that code and reason (they were removed);
/// - `p <document> <node> <states>`: presence changed on that node, the states a JSON
///   array of `[client, clock, state]` (the state `null` for one that is gone);
/// - `q <document> <node>`: that node opened the document, and asks for everyone's
///   presence in it;
/// - `s <conference> <node>`: that node opened, closed or revealed a safety scale, or
///   removed someone (the phones' pages look again).
///
/// Presence and scale notices are the only messages: losing one does no harm (a
/// state is renewed, or expires; a phone looks again when it next loads the page).
pub const CHANNEL: &str = "roundtable";

/// The longest payload `NOTIFY` takes is 8,000 bytes; presence is sent in pieces
/// under this.
const MOST_NOTICE_BYTES: usize = 7_800;

/// Presence states between nodes: client id, clock, the state's JSON (`null` for
/// one that is gone).
pub type PresenceStates = Vec<(u64, u32, Arc<str>)>;

/// A conference's document.
pub type DocumentKey = (ConferenceId, DocumentKind);

/// A wake-up, as a node reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Updates(DocumentKey, i64),
    Forwarded(DocumentKey),
    Answered(DocumentKey),
    Released(DocumentKey),
    Disconnect {
        conference: ConferenceId,
        participant: ParticipantId,
        code: u16,
        reason: String,
    },
    Presence {
        key: DocumentKey,
        node: String,
        states: PresenceStates,
    },
    PresenceAsked {
        key: DocumentKey,
        node: String,
    },
    Scales {
        conference: ConferenceId,
        node: String,
    },
}

impl Notice {
    /// Reads a payload sent on [`CHANNEL`]; `None` for anything else.
    pub fn parse(payload: &str) -> Option<Notice> {
        if let Some(rest) = payload.strip_prefix("x ") {
            let mut words = rest.splitn(4, ' ');
            return Some(Notice::Disconnect {
                conference: words.next()?.parse().ok()?,
                participant: words.next()?.parse().ok()?,
                code: words.next()?.parse().ok()?,
                reason: words.next()?.to_owned(),
            });
        }
        if let Some(rest) = payload.strip_prefix("p ") {
            let mut words = rest.splitn(4, ' ');
            let conference = words.next()?.parse().ok()?;
            let document = DocumentKind::parse(words.next()?)?;
            let node = words.next()?.to_owned();
            let states: Vec<(u64, u32, String)> = serde_json::from_str(words.next()?).ok()?;
            return Some(Notice::Presence {
                key: (conference, document),
                node,
                states: states
                    .into_iter()
                    .map(|(client, clock, json)| (client, clock, Arc::from(json)))
                    .collect(),
            });
        }
        let mut words = payload.split(' ');
        let kind = words.next()?;
        if kind == "s" {
            let notice = Notice::Scales {
                conference: words.next()?.parse().ok()?,
                node: words.next()?.to_owned(),
            };
            return words.next().is_none().then_some(notice);
        }
        let conference = words.next()?.parse().ok()?;
        let document = DocumentKind::parse(words.next()?)?;
        let key = (conference, document);
        let notice = match kind {
            "u" => Notice::Updates(key, words.next()?.parse().ok()?),
            "f" => Notice::Forwarded(key),
            "v" => Notice::Answered(key),
            "l" => Notice::Released(key),
            "q" => Notice::PresenceAsked {
                key,
                node: words.next()?.to_owned(),
            },
            _ => return None,
        };
        words.next().is_none().then_some(notice)
    }

    /// The document it is about, if it is about one.
    pub fn key(&self) -> Option<DocumentKey> {
        match self {
            Notice::Updates(key, _)
            | Notice::Forwarded(key)
            | Notice::Answered(key)
            | Notice::Released(key)
            | Notice::Presence { key, .. }
            | Notice::PresenceAsked { key, .. } => Some(*key),
            Notice::Disconnect { .. } | Notice::Scales { .. } => None,
        }
    }
}

/// An update another node forwarded, as the owner reads it.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub id: i64,
    /// The node it reached, and its connection there.
    pub node: String,
    pub connection: u64,
    /// Who sent it, as the node it reached knows them; `None` for the server's own
    /// change (the outcome of a command that node handled).
    pub sender: Option<(ParticipantId, Role)>,
    pub data: Vec<u8>,
}

/// An update to forward: the connection it came on, who sent it (none: the
/// server's own change), and its bytes.
pub type ToForward<'a> = (u64, Option<(ParticipantId, Role)>, &'a [u8]);

/// Where one document stands, for a node that has it open.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub key: DocumentKey,
    /// The highest sequence number in its log (0 for none).
    pub last_seq: i64,
    /// Whether some node holds an unexpired lease on it.
    pub leased: bool,
    /// Whether forwarded updates wait for its owner's verdict.
    pub waiting: bool,
    /// Whether verdicts wait for the asking node to read them.
    pub answered: bool,
}

impl ForwardVerdict {
    /// The verdict as the `verdict` column spells it.
    pub(super) fn word(&self) -> &'static str {
        match self {
            ForwardVerdict::Accepted(_) => "accepted",
            ForwardVerdict::Known => "known",
            ForwardVerdict::Refused(_) => "refused",
            ForwardVerdict::Malformed => "malformed",
        }
    }

    pub(super) fn reason(&self) -> Option<&str> {
        match self {
            ForwardVerdict::Refused(reason) => Some(reason),
            _ => None,
        }
    }

    pub(super) fn seq(&self) -> Option<i64> {
        match self {
            ForwardVerdict::Accepted(seq) => Some(*seq),
            _ => None,
        }
    }

    fn read(row: &sqlx::postgres::PgRow) -> Result<ForwardVerdict> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("a forwarded update's {what}"));
        Ok(match row.text("verdict") {
            "accepted" => ForwardVerdict::Accepted(
                row.optional_int("seq")
                    .ok_or_else(|| corrupt("sequence number"))?,
            ),
            "known" => ForwardVerdict::Known,
            "refused" => ForwardVerdict::Refused(row.optional_text("reason").unwrap_or("").into()),
            "malformed" => ForwardVerdict::Malformed,
            _ => return Err(corrupt("verdict")),
        })
    }
}

/// The documents' keys as two arrays, for `UNNEST`.
fn unzip(keys: impl IntoIterator<Item = DocumentKey>) -> (Vec<String>, Vec<&'static str>) {
    keys.into_iter()
        .map(|(conference, kind)| (conference.to_string(), kind.as_str()))
        .unzip()
}

/// The nodes' operations on a PostgreSQL database.
#[derive(Clone)]
pub struct Nodes {
    pool: PgPool,
    options: PgConnectOptions,
}

impl Nodes {
    pub(super) fn new(pool: PgPool, options: PgConnectOptions) -> Nodes {
        Nodes { pool, options }
    }

    /// Takes the document's lease for `node`, for `lifetime`, if nobody holds it
    /// (there is no lease yet, or it has expired): the epoch goes up by one. `None`
    /// if another node holds it.
    pub async fn acquire(
        &self,
        (conference, kind): DocumentKey,
        node: &Arc<str>,
        lifetime: Duration,
    ) -> Result<Option<Lease>> {
        // A takeover waits for the lease row's lock: a write of the old owner that is
        // under way commits first (and is in the log the new owner loads), or not at
        // all.
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO document_leases (conference_id, document, node, epoch, expires_at)
             VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4))
             ON CONFLICT (conference_id, document) DO UPDATE
                 SET node = excluded.node, epoch = document_leases.epoch + 1,
                     expires_at = excluded.expires_at
                 WHERE document_leases.expires_at <= now()
             RETURNING epoch",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .bind(&**node)
        .bind(lifetime.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(epoch.map(|epoch| Lease {
            node: node.clone(),
            epoch,
        }))
    }

    /// Extends, by `lifetime` from now, the leases `node` holds unexpired at the
    /// epochs given. Returns the documents whose lease was extended: the others are
    /// lost.
    pub async fn renew(
        &self,
        node: &str,
        held: &[(DocumentKey, i64)],
        lifetime: Duration,
    ) -> Result<Vec<DocumentKey>> {
        let (conferences, documents) = unzip(held.iter().map(|(key, _)| *key));
        let epochs: Vec<i64> = held.iter().map(|(_, epoch)| *epoch).collect();
        sqlx::query(
            "UPDATE document_leases l SET expires_at = now() + make_interval(secs => $5)
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) AS h (conference_id, document, epoch)
             WHERE l.conference_id = h.conference_id AND l.document = h.document
               AND l.epoch = h.epoch AND l.node = $4 AND l.expires_at > now()
             RETURNING l.conference_id, l.document",
        )
        .bind(conferences)
        .bind(documents)
        .bind(epochs)
        .bind(node)
        .bind(lifetime.as_secs_f64())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(rows::document)
        .collect()
    }

    /// Gives leases up: each expires now, if it is still `node`'s at that epoch, and
    /// the other nodes are told, so that one with people in the document takes it
    /// over at once.
    pub async fn give_up(&self, node: &str, leases: &[(DocumentKey, i64)]) -> Result<()> {
        let (conferences, documents) = unzip(leases.iter().map(|(key, _)| *key));
        let epochs: Vec<i64> = leases.iter().map(|(_, epoch)| *epoch).collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH given AS (
                 UPDATE document_leases l SET expires_at = now()
                 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) AS h (conference_id, document, epoch)
                 WHERE l.conference_id = h.conference_id AND l.document = h.document
                   AND l.epoch = h.epoch AND l.node = $4 AND l.expires_at > now()
                 RETURNING l.conference_id, l.document
             )
             SELECT COUNT(pg_notify('{CHANNEL}', 'l ' || conference_id || ' ' || document)) FROM given"
        )))
        .bind(conferences)
        .bind(documents)
        .bind(epochs)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The committed updates of a document after `after`, in order, at most `most`
    /// of them (quarantined ones left out).
    pub async fn updates_after(
        &self,
        (conference, kind): DocumentKey,
        after: i64,
        most: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        Ok(sqlx::query(
            "SELECT seq, data FROM document_updates u
             WHERE conference_id = $1 AND document = $2 AND seq > $3
               AND NOT EXISTS (SELECT 1 FROM document_quarantine q
                               WHERE q.conference_id = u.conference_id
                                 AND q.document = u.document AND q.seq = u.seq)
             ORDER BY seq LIMIT $4",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .bind(after)
        .bind(most)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| (row.int("seq"), row.get("data")))
        .collect())
    }

    /// Forwards updates that reached `node` to the document's owner, with who sent
    /// each (`(connection, sender, update)`; no sender for the server's own), and
    /// wakes the owner. Returns their ids, in order.
    pub async fn forward(
        &self,
        (conference, kind): DocumentKey,
        node: &str,
        updates: &[ToForward<'_>],
    ) -> Result<Vec<i64>> {
        let connections: Vec<i64> = updates.iter().map(|u| u.0 as i64).collect();
        let participants: Vec<Option<String>> = updates
            .iter()
            .map(|u| u.1.map(|(p, _)| p.to_string()))
            .collect();
        let roles: Vec<Option<&str>> = updates
            .iter()
            .map(|u| u.1.map(|(_, r)| r.as_str()))
            .collect();
        let data: Vec<&[u8]> = updates.iter().map(|u| u.2).collect();
        let mut ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "WITH forwarded AS (
                 INSERT INTO forwarded_updates
                     (conference_id, document, node, connection, participant_id, role, data)
                 SELECT $1, $2, $3, f.connection, f.participant_id, f.role, f.data
                 FROM UNNEST($4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::BYTEA[])
                     WITH ORDINALITY AS f (connection, participant_id, role, data, n)
                 ORDER BY f.n
                 RETURNING id
             ), woken AS (
                 SELECT pg_notify('{CHANNEL}', 'f ' || $1 || ' ' || $2)
             )
             SELECT id FROM forwarded, woken"
        )))
        .bind(conference.to_string())
        .bind(kind.as_str())
        .bind(node)
        .bind(connections)
        .bind(participants)
        .bind(roles)
        .bind(data)
        .fetch_all(&self.pool)
        .await?;
        // Identity values follow the order rows were inserted in, which is the order
        // given.
        ids.sort_unstable();
        Ok(ids)
    }

    /// Updates forwarded to a document's owner that have no verdict yet, after the id
    /// `after`, oldest first, at most `most`.
    pub async fn waiting(
        &self,
        (conference, kind): DocumentKey,
        after: i64,
        most: i64,
    ) -> Result<Vec<Forwarded>> {
        sqlx::query(
            "SELECT id, node, connection, participant_id, role, data FROM forwarded_updates
             WHERE conference_id = $1 AND document = $2 AND verdict IS NULL AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .bind(after)
        .bind(most)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let participant = rows::optional_id(row, "participant_id")?;
            let role = rows::optional_word(row, "role", Role::parse)?;
            Ok(Forwarded {
                id: row.int("id"),
                node: row.text("node").to_owned(),
                connection: row.int("connection") as u64,
                sender: participant.zip(role),
                data: row.get("data"),
            })
        })
        .collect()
    }

    /// Takes the verdicts given on updates `node` forwarded to a document's owner,
    /// of those with these ids: each is read once, and its row goes.
    pub async fn take_verdicts(
        &self,
        (conference, kind): DocumentKey,
        node: &str,
        ids: &[i64],
    ) -> Result<Vec<(i64, ForwardVerdict)>> {
        sqlx::query(
            "DELETE FROM forwarded_updates
             WHERE conference_id = $1 AND document = $2 AND node = $3 AND id = ANY($4)
               AND verdict IS NOT NULL
             RETURNING id, verdict, reason, seq",
        )
        .bind(conference.to_string())
        .bind(kind.as_str())
        .bind(node)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.int("id"), ForwardVerdict::read(row)?)))
        .collect()
    }

    /// Where each of these documents stands, for `node`: one statement for every
    /// document a node has open, on a timer, in case a wake-up was lost.
    pub async fn status(&self, node: &str, keys: &[DocumentKey]) -> Result<Vec<Status>> {
        let (conferences, documents) = unzip(keys.iter().copied());
        sqlx::query(
            "SELECT d.conference_id, d.document,
                 COALESCE((SELECT MAX(seq) FROM document_updates u
                           WHERE u.conference_id = d.conference_id AND u.document = d.document), 0)
                     AS last_seq,
                 EXISTS (SELECT 1 FROM document_leases l
                         WHERE l.conference_id = d.conference_id AND l.document = d.document
                           AND l.expires_at > now()) AS leased,
                 EXISTS (SELECT 1 FROM forwarded_updates f
                         WHERE f.conference_id = d.conference_id AND f.document = d.document
                           AND f.verdict IS NULL) AS waiting,
                 EXISTS (SELECT 1 FROM forwarded_updates f
                         WHERE f.conference_id = d.conference_id AND f.document = d.document
                           AND f.verdict IS NOT NULL AND f.node = $3) AS answered
             FROM UNNEST($1::TEXT[], $2::TEXT[]) AS d (conference_id, document)",
        )
        .bind(conferences)
        .bind(documents)
        .bind(node)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(Status {
                key: rows::document(row)?,
                last_seq: row.int("last_seq"),
                leased: row.get("leased"),
                waiting: row.get("waiting"),
                answered: row.get("answered"),
            })
        })
        .collect()
    }

    /// Tells every node to close `participant`'s connections to `conference`.
    pub async fn disconnect(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
        code: u16,
        reason: &str,
    ) -> Result<()> {
        self.notify(&format!("x {conference} {participant} {code} {reason}"))
            .await
    }

    /// Tells the other nodes of presence changed on `node`: in as many notices as it
    /// takes, each under `NOTIFY`'s limit. A state too large for one is left out (the
    /// server's own clients' states are a few hundred bytes).
    pub async fn share_presence(
        &self,
        key: DocumentKey,
        node: &str,
        states: &PresenceStates,
    ) -> Result<()> {
        let head = format!("p {} {} {node} ", key.0, key.1.as_str());
        let mut payloads = Vec::new();
        let mut piece = String::new();
        for (client, clock, json) in states {
            let entry = serde_json::to_string(&(client, clock, json.as_ref()))
                .map_err(|e| StorageError::Write(e.to_string()))?;
            if head.len() + entry.len() + 2 > MOST_NOTICE_BYTES {
                tracing::debug!(
                    client,
                    bytes = entry.len(),
                    "a presence state too large to share with the other nodes"
                );
                continue;
            }
            if head.len() + piece.len() + entry.len() + 2 > MOST_NOTICE_BYTES {
                payloads.push(format!("{head}[{piece}]"));
                piece.clear();
            }
            if !piece.is_empty() {
                piece.push(',');
            }
            piece.push_str(&entry);
        }
        if !piece.is_empty() {
            payloads.push(format!("{head}[{piece}]"));
        }
        for payload in payloads {
            self.notify(&payload).await?;
        }
        Ok(())
    }

    /// Asks the other nodes for everyone's presence in a document `node` opened.
    pub async fn ask_presence(&self, key: DocumentKey, node: &str) -> Result<()> {
        self.notify(&format!("q {} {} {node}", key.0, key.1.as_str()))
            .await
    }

    /// Tells the other nodes that `node` changed a conference's safety scales (or
    /// removed someone from it).
    pub async fn scales_changed(&self, conference: ConferenceId, node: &str) -> Result<()> {
        self.notify(&format!("s {conference} {node}")).await
    }

    async fn notify(&self, payload: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes forwarded updates older than `age`, decided or not: their sender was
    /// told long ago that they were not saved (and sends them again), or its node has
    /// gone.
    pub async fn forget_forwards_older_than(&self, age: Duration) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM forwarded_updates WHERE created_at < now() - make_interval(secs => $1)",
        )
        .bind(age.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// A connection of its own, listening on [`CHANNEL`]. It reconnects by itself
    /// when the connection is lost, and says so (`try_recv` gives `None`).
    pub async fn listener(&self) -> Result<PgListener> {
        // A pool of one, kept for ever: the listener takes its connection from it,
        // and a new one from it after losing one.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(self.options.clone());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_back_and_anything_else_is_left_alone() {
        let conference = ConferenceId(uuid::Uuid::from_u128(7));
        let key = (conference, DocumentKind::Restricted);
        let check = |payload: String, expected| assert_eq!(Notice::parse(&payload), expected);
        check(
            format!("u {conference} restricted 12"),
            Some(Notice::Updates(key, 12)),
        );
        check(
            format!("f {conference} restricted"),
            Some(Notice::Forwarded(key)),
        );
        check(
            format!("v {conference} restricted"),
            Some(Notice::Answered(key)),
        );
        check(
            format!("l {conference} restricted"),
            Some(Notice::Released(key)),
        );
        check(format!("u {conference} restricted"), None);
        check(format!("x {conference} shared"), None);
        check(format!("f {conference} shared extra"), None);
        check("f not-an-id shared".into(), None);
        let participant = ParticipantId(uuid::Uuid::from_u128(9));
        check(
            format!("x {conference} {participant} 4403 you have been removed"),
            Some(Notice::Disconnect {
                conference,
                participant,
                code: 4403,
                reason: "you have been removed".into(),
            }),
        );
        check(format!("x {conference} {participant} not-a-code why"), None);
        check(
            format!(r#"p {conference} shared node-b [[7,2,"{{\"a\":1}}"],[8,3,"null"]]"#),
            Some(Notice::Presence {
                key: (conference, DocumentKind::Shared),
                node: "node-b".into(),
                states: vec![(7, 2, Arc::from(r#"{"a":1}"#)), (8, 3, Arc::from("null"))],
            }),
        );
        check(format!("p {conference} shared node-b [[7,"), None);
        check(
            format!("q {conference} shared node-b"),
            Some(Notice::PresenceAsked {
                key: (conference, DocumentKind::Shared),
                node: "node-b".into(),
            }),
        );
        check(
            format!("s {conference} node-b"),
            Some(Notice::Scales {
                conference,
                node: "node-b".into(),
            }),
        );
        check(format!("s {conference}"), None);
    }
}
