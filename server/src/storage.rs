//! Everything the server keeps, behind one seam: [`Storage`], whose operations are
//! the ones the product needs (store a conference with its people, append a batch of
//! updates to a document's log, record a score with its audit event, …), each one
//! transaction, each change written with its audit event.
//!
//! An engine implements every operation: SQLite ([`sqlite`]), the default, embedded,
//! and PostgreSQL ([`postgres`]). Most of their SQL is the same and written once
//! ([`portable`]); rows are read into typed values (roles, phases, statuses, ids)
//! once, the same for both ([`rows`]). Another engine is one more variant of
//! `Engine` and one more arm in `operations!`: the rooms and the API do not change.
//! Timestamps are Unix milliseconds.
//!
//! On PostgreSQL several server nodes may share the database: each document's
//! writes are fenced by its lease ([`Fence`]), and what nodes need of each other
//! (leases, forwarded updates, wake-ups) is in [`nodes`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::record::Attendance;
use roundtable_shared::scale::{ScaleStatus, ScaleSubject, ScaleWording};
use roundtable_shared::{
    ChairId, ChildId, ConferenceId, ConferenceKind, ParticipantId, ParticipantStatus, Phase, Role,
    ScaleId,
};

pub mod nodes;
mod portable;
mod postgres;
mod rows;
mod sqlite;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a chair with this email already exists")]
    EmailTaken,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("could not write: {0}")]
    Write(String),
    /// The database cannot take writes just now (disk full, locked by another
    /// program, an I/O error, the database server out of reach): nothing was
    /// written, and the same write may succeed once the trouble passes.
    #[error("the database cannot take writes just now: {0}")]
    Unavailable(String),
    /// The write was fenced off: this node does not hold the document's lease (it
    /// expired, or another node took it over). Nothing was written.
    #[error("this node no longer owns the document: another node has taken it over")]
    NotOwner,
}

impl StorageError {
    /// Whether this is trouble with the database itself rather than with what was
    /// asked of it: worth trying again later, and nothing was changed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // Another node owns the document now: asking again (of it) may succeed.
            StorageError::Unavailable(_) | StorageError::NotOwner => true,
            StorageError::Database(e) => unavailable(e),
            _ => false,
        }
    }
}

/// Whether `error` is trouble with the database itself (out of reach, full, locked):
/// nothing was changed, and trying again later may succeed.
fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => {
            sqlite::unavailable(e.as_ref()) || postgres::unavailable(e.as_ref())
        }
        _ => false,
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

#[derive(Debug, Clone)]
pub struct ChairRow {
    pub id: ChairId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct ConferenceRow {
    pub id: ConferenceId,
    pub chair_id: ChairId,
    pub title: String,
    pub kind: ConferenceKind,
    pub scheduled_start: String,
    pub headings: String,
    pub children_json: String,
    pub phase: Phase,
    pub room_code: String,
    /// When the chair closed it (Unix ms); `None` while open.
    pub closed_at: Option<i64>,
    /// The dates the chair chose for the next meetings (`YYYY-MM-DD`), if any.
    pub core_group_by: Option<String>,
    pub review_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ParticipantRow {
    pub id: ParticipantId,
    pub conference_id: ConferenceId,
    pub name: String,
    /// `None` while someone who came in with the room code waits to be given one.
    pub role: Option<Role>,
    pub agency: Option<String>,
    pub status: ParticipantStatus,
    pub link_expires_at: Option<i64>,
    pub chair_id: Option<ChairId>,
}

impl ConferenceRow {
    /// The conference as the model has it, its stored JSON and times read.
    pub fn model(&self) -> Result<roundtable_shared::Conference> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("conference {}: {what}", self.id));
        Ok(roundtable_shared::Conference {
            id: self.id,
            title: self.title.clone(),
            kind: self.kind,
            scheduled_start: time::OffsetDateTime::parse(
                &self.scheduled_start,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| corrupt("start"))?,
            children: serde_json::from_str(&self.children_json).map_err(|_| corrupt("children"))?,
            headings: serde_json::from_value(serde_json::Value::String(self.headings.clone()))
                .map_err(|_| corrupt("headings"))?,
            phase: self.phase,
        })
    }

    /// The conference as the API describes it.
    pub fn view(&self) -> Result<roundtable_shared::api::ConferenceView> {
        let model = self.model()?;
        Ok(roundtable_shared::api::ConferenceView {
            id: self.id,
            title: self.title.clone(),
            kind: self.kind,
            scheduled_start: self.scheduled_start.clone(),
            headings: model.headings,
            children: model.children,
            phase: self.phase,
            room_code: self.room_code.clone(),
        })
    }

    /// The children the conference is about.
    pub fn children(&self) -> Result<Vec<roundtable_shared::Child>> {
        Ok(self.model()?.children)
    }
}

impl ParticipantRow {
    /// The participant as the API describes them.
    pub fn view(&self) -> roundtable_shared::api::ParticipantView {
        roundtable_shared::api::ParticipantView {
            id: self.id,
            name: self.name.clone(),
            role: self.role,
            agency: self.agency.clone(),
            status: self.status,
        }
    }
}

/// Who a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSubject {
    Chair(ChairId),
    Participant(ParticipantId),
}

/// A document as stored: the latest snapshot and the updates after it, in order.
#[derive(Debug, Default)]
pub struct StoredDocument {
    pub snapshot: Option<(i64, Vec<u8>)>,
    /// The updates after the snapshot, quarantined ones left out.
    pub updates: Vec<(i64, Vec<u8>)>,
    /// The highest sequence number the log holds, quarantined updates included (0 for
    /// none): the next update is numbered after it.
    pub last_seq: i64,
    /// Whose changes each client id carries, as claimed by stored updates.
    pub clients: Vec<(u64, ParticipantId)>,
}

pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

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

/// Something that happened to a chair's account, for its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountEventRow {
    pub at: i64,
    pub action: String,
    pub detail: serde_json::Value,
}

/// How many of an account's events are kept: each is written at most once per
/// sign-in or per doubling of a run of wrong passwords, so these cover weeks.
pub const ACCOUNT_EVENTS_KEPT: i64 = 200;

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

/// A document's lease as its owner node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The owner's node name.
    pub node: Arc<str>,
    /// How many times the document has changed owner, this takeover included.
    pub epoch: i64,
}

/// Who writes to a document, and so what its write checks in its own transaction.
#[derive(Debug, Clone, Copy)]
pub enum Fence<'a> {
    /// The only writer there is: SQLite's one node, or a test or tool that writes
    /// while no node owns the document. Checks nothing.
    Alone,
    /// The document's owner node, by its lease: on PostgreSQL the write commits only
    /// if the lease is still this one, unexpired (`StorageError::NotOwner` if not).
    Lease(&'a Lease),
}

/// What the owner decided about an update another node forwarded to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardVerdict {
    /// Stored, numbered `seq`.
    Accepted(i64),
    /// Nothing in it was new.
    Known,
    /// Refused, for this reason (told to its sender only).
    Refused(String),
    /// Not a valid update.
    Malformed,
}

/// The server's storage: one engine behind the product's operations.
#[derive(Clone)]
pub struct Storage {
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its URL (`postgres://user@host/database`).
    Postgres(String),
}

impl Location {
    /// The database a URL names: `postgres://` or `postgresql://` (`None` for any
    /// other kind).
    pub fn from_url(url: &str) -> Option<Location> {
        (url.starts_with("postgres://") || url.starts_with("postgresql://"))
            .then(|| Location::Postgres(url.to_owned()))
    }
}

impl Storage {
    /// Opens the database (creating a SQLite file if needed) and runs the migrations.
    pub async fn open(location: &Location) -> Result<Storage> {
        let engine = match location {
            Location::Sqlite(path) => Engine::Sqlite(sqlite::Sqlite::open(path).await?),
            Location::Postgres(url) => Engine::Postgres(postgres::Postgres::open(url).await?),
        };
        Ok(Storage { engine })
    }

    /// Opens (creating if needed) the SQLite database at `path` and runs the migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Storage> {
        Self::open(&Location::Sqlite(path.to_owned())).await
    }

    /// Commits what is queued, then closes the database.
    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(db) => db.close().await,
            Engine::Postgres(db) => db.close().await,
        }
    }

    /// Appends one update to a document's log. Returns once it is committed.
    pub async fn append_update(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
        seq: i64,
        sender: Option<ParticipantId>,
        data: &[u8],
    ) -> Result<()> {
        self.append_updates(conference, kind, fence, &[(seq, sender, data)], &[], &[])
            .await
    }

    /// What several nodes sharing this database need of it (leases, forwarded
    /// updates, wake-ups): PostgreSQL's alone. `None` on SQLite, whose one node owns
    /// every document.
    pub fn nodes(&self) -> Option<nodes::Nodes> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(db) => Some(db.nodes()),
        }
    }
}

/// Declares the operations every engine implements, each forwarded to the engine.
macro_rules! operations {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)*) => {
        impl Storage {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.engine {
                        Engine::Sqlite(db) => db.$name($($arg),*).await,
                        Engine::Postgres(db) => db.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

operations! {
    // --- sign-in: chairs and sessions

    /// Stores a new chair's account; `EmailTaken` if the email is in use.
    fn insert_chair(&self, chair: &ChairRow) -> Result<()>;

    /// The chair whose account has this email, for signing in.
    fn chair_by_email(&self, email: &str) -> Result<Option<ChairRow>>;

    /// A chair's account.
    fn chair(&self, id: ChairId) -> Result<Option<ChairRow>>;

    /// Writes an event about a chair's account for its owner (wrong passwords tried
    /// against it, a sign-in), keeping only the latest [`ACCOUNT_EVENTS_KEPT`].
    fn record_account_event(&self, chair: ChairId, action: &str, detail: &serde_json::Value) -> Result<()>;

    /// A chair's account events, newest first.
    fn account_events(&self, chair: ChairId) -> Result<Vec<AccountEventRow>>;

    /// Stores a session by the hash of its token (the token itself is never stored).
    fn insert_session(
        &self,
        token_hash: &[u8],
        subject: SessionSubject,
        expires_at: i64,
    ) -> Result<()>;

    /// Whose session this is, and when it ends (Unix ms), if it has not ended yet.
    fn session(&self, token_hash: &[u8]) -> Result<Option<(SessionSubject, i64)>>;

    /// Ends a session (signing out).
    fn delete_session(&self, token_hash: &[u8]) -> Result<()>;

    // --- conferences

    /// Stores a new conference with its participants, in one transaction.
    fn insert_conference(
        &self,
        conference: &ConferenceRow,
        participants: &[(ParticipantRow, Option<Vec<u8>>)],
        event: &AuditEvent,
    ) -> Result<()>;

    /// Whether a room code is already some conference's.
    fn room_code_taken(&self, code: &str) -> Result<bool>;

    /// A conference by its id.
    fn conference(&self, id: ConferenceId) -> Result<Option<ConferenceRow>>;

    /// The conference a room code opens, for the lobby.
    fn conference_by_room_code(&self, code: &str) -> Result<Option<ConferenceRow>>;

    /// A chair's conferences, latest first.
    fn conferences_of_chair(&self, chair: ChairId) -> Result<Vec<ConferenceRow>>;

    /// Moves the conference to `phase`, with its audit event.
    fn set_phase(&self, id: ConferenceId, phase: Phase, event: &AuditEvent) -> Result<()>;

    // --- participants

    /// Adds a participant (invited, or waiting in the lobby), with its audit event.
    fn insert_participant(
        &self,
        p: &ParticipantRow,
        link_hash: Option<&[u8]>,
        event: &AuditEvent,
    ) -> Result<()>;

    /// A participant by their id.
    fn participant(&self, id: ParticipantId) -> Result<Option<ParticipantRow>>;

    /// The participant a join link's hash belongs to, if it was not withdrawn.
    fn participant_by_link(&self, link_hash: &[u8]) -> Result<Option<ParticipantRow>>;

    /// The chair's own participant record in one of their conferences.
    fn chair_participant(
        &self,
        conference: ConferenceId,
        chair: ChairId,
    ) -> Result<Option<ParticipantRow>>;

    /// Everyone in a conference (the chair, the invited, the lobby), in the order added.
    fn participants(&self, conference: ConferenceId) -> Result<Vec<ParticipantRow>>;

    /// Changes a participant's status (and role, when given), with its audit event. A
    /// participant who is removed or turned away also loses their link and every
    /// session at once.
    fn set_participant_status(
        &self,
        id: ParticipantId,
        status: ParticipantStatus,
        role: Option<Role>,
        event: &AuditEvent,
    ) -> Result<()>;

    /// Lets someone waiting in the lobby in, with the role (and agency) the chair gave,
    /// with its audit event.
    fn admit_participant(
        &self,
        id: ParticipantId,
        role: Role,
        agency: Option<&str>,
        event: &AuditEvent,
    ) -> Result<()>;

    /// Gives a participant a new join link: the old one stops working.
    fn replace_link(
        &self,
        id: ParticipantId,
        link_hash: &[u8],
        expires_at: i64,
        event: &AuditEvent,
    ) -> Result<()>;

    // --- documents

    /// A document as stored: its snapshot and the updates after it, in order, all
    /// as of one moment (another node may be writing to it meanwhile).
    fn load_document(&self, conference: ConferenceId, kind: DocumentKind) -> Result<StoredDocument>;

    /// Every document that has anything stored (a snapshot or updates), in order.
    fn stored_documents(&self) -> Result<Vec<(ConferenceId, DocumentKind)>>;

    /// How many bytes of a document's log each participant's updates take.
    fn bytes_by_sender(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<Vec<(ParticipantId, usize)>>;

    /// A document's whole log of updates, from the first, quarantined ones included
    /// (the log is kept after a snapshot: it records who made each change).
    fn document_log(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<Vec<(i64, Vec<u8>)>>;

    /// Appends updates to the log, numbered `seq` each, with the client ids they are
    /// the first to write under (`claims`, each with the participant it now belongs
    /// to) and the verdicts on forwarded updates that the turn came to (by the
    /// forwarded row's id), all or none, if `fence` holds. Returns once they are
    /// committed to disk.
    fn append_updates(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
        updates: &[(i64, Option<ParticipantId>, &[u8])],
        claims: &[(u64, ParticipantId)],
        verdicts: &[(i64, ForwardVerdict)],
    ) -> Result<()>;

    /// Leaves updates out of a document for good (`(seq, why)` each), with the audit
    /// event that tells the chair: `load_document` no longer gives them.
    fn quarantine(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
        updates: &[(i64, String)],
        event: &AuditEvent,
    ) -> Result<()>;

    /// The updates of a document left out of it, and why.
    fn quarantined(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
    ) -> Result<Vec<(i64, String)>>;

    /// Replaces the snapshot with `data` (the whole document as of `through_seq`).
    ///
    /// The log is kept: it records who made each change, which the audit needs.
    fn write_snapshot(
        &self,
        conference: ConferenceId,
        kind: DocumentKind,
        fence: Fence<'_>,
        through_seq: i64,
        data: &[u8],
    ) -> Result<()>;

    // --- safety scales and scores

    /// Opens a new scale, numbered after the conference's last one. `scale.number` is
    /// ignored; the stored scale is returned.
    fn open_scale(
        &self,
        scale: &ScaleRow,
        event: &AuditEvent,
    ) -> Result<std::result::Result<ScaleRow, OpenRefused>>;

    /// One of the conference's scales.
    fn scale(&self, conference: ConferenceId, id: ScaleId) -> Result<Option<ScaleRow>>;

    /// The conference's scales, first opened first.
    fn scales(&self, conference: ConferenceId) -> Result<Vec<ScaleRow>>;

    /// How many people have scored each of the conference's scales.
    fn scored_counts(&self, conference: ConferenceId) -> Result<Vec<(ScaleId, u32)>>;

    /// Stores `participant`'s score on an open scale, replacing any earlier score of
    /// theirs, with its audit event. Nothing is stored unless the scale is open and
    /// its conference is not closed.
    fn put_vote(
        &self,
        conference: ConferenceId,
        scale: ScaleId,
        participant: ParticipantId,
        vote: &VoteRow,
        event: &AuditEvent,
    ) -> Result<VoteOutcome>;

    /// Moves a scale from `from` to `to` (and records it); false if it was not at `from`.
    fn set_scale_status(
        &self,
        conference: ConferenceId,
        scale: ScaleId,
        from: ScaleStatus,
        to: ScaleStatus,
        event: &AuditEvent,
    ) -> Result<bool>;

    /// Every score given on a scale, in the order people first scored.
    fn votes(&self, scale: ScaleId) -> Result<Vec<VoteRow>>;

    /// One participant's score on each scale they scored, by scale id.
    fn votes_of(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
    ) -> Result<Vec<(ScaleId, VoteRow)>>;

    /// The conference a review conference follows, if the chair named one.
    fn previous_conference(&self, id: ConferenceId) -> Result<Option<ConferenceId>>;

    /// Names the conference a review conference follows.
    fn set_previous_conference(&self, id: ConferenceId, previous: ConferenceId) -> Result<()>;

    /// The conference's audit log, oldest first.
    fn audit_events(&self, conference: ConferenceId) -> Result<Vec<AuditRow>>;

    // --- the end of the meeting: decisions, attendance, closing; the audit log; deleting

    /// Stores the decision for one child, replacing an earlier one, with its audit
    /// event. Nothing is stored if the conference is closed (false).
    fn put_decision(
        &self,
        conference: ConferenceId,
        child: ChildId,
        body: &serde_json::Value,
        recorded_by: ParticipantId,
        event: &AuditEvent,
    ) -> Result<bool>;

    /// The conference's decisions, by child id.
    fn decisions(&self, conference: ConferenceId) -> Result<Vec<DecisionRow>>;

    /// Records whether a participant attended, with its audit event; false (nothing
    /// stored) if the conference is closed.
    fn put_attendance(
        &self,
        conference: ConferenceId,
        participant: ParticipantId,
        status: Attendance,
        event: &AuditEvent,
    ) -> Result<bool>;

    /// Who attended, as recorded: (participant, status).
    fn attendance(&self, conference: ConferenceId) -> Result<Vec<(ParticipantId, Attendance)>>;

    /// Sets the dates the chair chose for the next meetings, with its audit event;
    /// false (nothing stored) if the conference is closed.
    fn set_next_meetings(
        &self,
        conference: ConferenceId,
        core_group_by: &str,
        review_by: &str,
        event: &AuditEvent,
    ) -> Result<bool>;

    /// Closes the conference (phase `closed`) with its audit event. Returns when it
    /// was closed, or `None` if it was closed already.
    fn close_conference(&self, conference: ConferenceId, event: &AuditEvent) -> Result<Option<i64>>;

    /// Opens a closed conference again, at the decision phase, with its audit event;
    /// false if it was not closed.
    fn reopen_conference(&self, conference: ConferenceId, event: &AuditEvent) -> Result<bool>;

    /// Records an event that changes nothing else (an export, say).
    fn record_event(&self, event: &AuditEvent) -> Result<()>;

    /// The latest `most` stored changes to the conference's documents, oldest first,
    /// and whether there were more.
    fn document_changes(
        &self,
        conference: ConferenceId,
        most: u32,
    ) -> Result<(Vec<DocumentChangeRow>, bool)>;

    /// Conferences closed before `cutoff` (Unix ms), longest closed first.
    fn conferences_closed_before(&self, cutoff: i64) -> Result<Vec<ConferenceRow>>;

    /// Deletes a conference closed before `cutoff` with everything about it, in one
    /// transaction, and says what went. `None` if it is not (or no longer) closed
    /// before `cutoff`: reopened meanwhile, say. A dry run counts and deletes nothing.
    fn delete_closed_conference(
        &self,
        conference: ConferenceId,
        cutoff: i64,
        dry_run: bool,
    ) -> Result<Option<Removed>>;

    /// Deletes every conference closed before `cutoff`, one transaction each (see
    /// [`Storage::delete_closed_conference`]).
    fn delete_closed_before(&self, cutoff: i64, dry_run: bool) -> Result<Vec<Removed>>;
}
