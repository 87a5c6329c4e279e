//! Reading stored rows into typed ones, the same for every engine: ids, roles,
//! phases and statuses are parsed here, once, and a value that does not parse is
//! `Corrupt`. Each engine's row type gives its columns through [`Columns`].

use std::str::FromStr;

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::scale::ScaleStatus;
use roundtable_shared::{ConferenceId, ConferenceKind, ParticipantStatus, Phase, Role};

use super::{
    AccountEventRow, AuditRow, ChairRow, ConferenceRow, DecisionRow, DocumentChangeRow,
    ParticipantRow, Result, ScaleRow, StorageError, VoteRow,
};

/// A row's columns by name, as the schema declares them (text, a whole number). A
/// column of another type than asked is a mismatch between the code and its schema,
/// and panics.
pub(super) trait Columns {
    fn text(&self, column: &str) -> &str;
    fn optional_text(&self, column: &str) -> Option<&str>;
    fn int(&self, column: &str) -> i64;
    fn optional_int(&self, column: &str) -> Option<i64>;
}

macro_rules! columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> &str {
                sqlx::Row::get(self, column)
            }
            fn optional_text(&self, column: &str) -> Option<&str> {
                sqlx::Row::get(self, column)
            }
            fn int(&self, column: &str) -> i64 {
                sqlx::Row::get(self, column)
            }
            fn optional_int(&self, column: &str) -> Option<i64> {
                sqlx::Row::get(self, column)
            }
        }
    };
}

columns!(sqlx::sqlite::SqliteRow);
columns!(sqlx::postgres::PgRow);

pub(super) fn parse_id<T: FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StorageError::Corrupt(format!("bad id {s:?}")))
}

pub(super) fn id<T: FromStr>(row: &impl Columns, column: &str) -> Result<T> {
    parse_id(row.text(column))
}

pub(super) fn optional_id<T: FromStr>(row: &impl Columns, column: &str) -> Result<Option<T>> {
    row.optional_text(column).map(parse_id).transpose()
}

/// Reads a column that holds one of a set of words (a role, a phase, a status),
/// spelled as the type's `parse` takes it.
pub(super) fn word<T>(row: &impl Columns, column: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let stored = row.text(column);
    parse(stored).ok_or_else(|| StorageError::Corrupt(format!("{column} {stored:?}")))
}

/// Reads a column that may hold one of a set of words, or NULL.
pub(super) fn optional_word<T>(
    row: &impl Columns,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    match row.optional_text(column) {
        None => Ok(None),
        Some(_) => word(row, column, parse).map(Some),
    }
}

/// Reads a column that holds JSON of `T`.
pub(super) fn json<T: serde::de::DeserializeOwned>(row: &impl Columns, column: &str) -> Result<T> {
    serde_json::from_str(row.text(column))
        .map_err(|e| StorageError::Corrupt(format!("{column}: {e}")))
}

/// Reads a count, which is never negative.
pub(super) fn count(row: &impl Columns, column: &str) -> u32 {
    u32::try_from(row.int(column)).unwrap_or(0)
}

pub(super) const CHAIR_COLUMNS: &str = "id, email, name, password_hash";

pub(super) fn chair(row: &impl Columns) -> Result<ChairRow> {
    Ok(ChairRow {
        id: id(row, "id")?,
        email: row.text("email").to_owned(),
        name: row.text("name").to_owned(),
        password_hash: row.text("password_hash").to_owned(),
    })
}

pub(super) const CONFERENCE_COLUMNS: &str = "id, chair_id, title, kind, scheduled_start, headings, children, phase, room_code, closed_at, core_group_by, review_by";

pub(super) fn conference(row: &impl Columns) -> Result<ConferenceRow> {
    Ok(ConferenceRow {
        id: id(row, "id")?,
        chair_id: id(row, "chair_id")?,
        title: row.text("title").to_owned(),
        kind: word(row, "kind", ConferenceKind::parse)?,
        scheduled_start: row.text("scheduled_start").to_owned(),
        headings: row.text("headings").to_owned(),
        children_json: row.text("children").to_owned(),
        phase: word(row, "phase", Phase::parse)?,
        room_code: row.text("room_code").to_owned(),
        closed_at: row.optional_int("closed_at"),
        core_group_by: row.optional_text("core_group_by").map(str::to_owned),
        review_by: row.optional_text("review_by").map(str::to_owned),
    })
}

pub(super) const PARTICIPANT_COLUMNS: &str =
    "id, conference_id, name, role, agency, status, link_expires_at, chair_id";

pub(super) fn participant(row: &impl Columns) -> Result<ParticipantRow> {
    Ok(ParticipantRow {
        id: id(row, "id")?,
        conference_id: id(row, "conference_id")?,
        name: row.text("name").to_owned(),
        role: optional_word(row, "role", Role::parse)?,
        agency: row.optional_text("agency").map(str::to_owned),
        status: word(row, "status", ParticipantStatus::parse)?,
        link_expires_at: row.optional_int("link_expires_at"),
        chair_id: optional_id(row, "chair_id")?,
    })
}

pub(super) const SCALE_COLUMNS: &str = "id, conference_id, number, subject, about, wording, status";

pub(super) fn scale(row: &impl Columns) -> Result<ScaleRow> {
    Ok(ScaleRow {
        id: id(row, "id")?,
        conference_id: id(row, "conference_id")?,
        number: u32::try_from(row.int("number"))
            .map_err(|_| StorageError::Corrupt("scale number".into()))?,
        subject: json(row, "subject")?,
        about: row.text("about").to_owned(),
        wording: json(row, "wording")?,
        status: word(row, "status", ScaleStatus::parse)?,
    })
}

/// A score, from the columns `participant_id, score, reason, entered_by`.
pub(super) fn vote(row: &impl Columns) -> Result<VoteRow> {
    Ok(VoteRow {
        participant_id: id(row, "participant_id")?,
        score: u8::try_from(row.int("score")).map_err(|_| StorageError::Corrupt("score".into()))?,
        reason: row.optional_text("reason").map(str::to_owned),
        entered_by: optional_id(row, "entered_by")?,
    })
}

pub(super) fn audit(row: &impl Columns) -> Result<AuditRow> {
    Ok(AuditRow {
        at: row.int("at"),
        actor: optional_id(row, "actor")?,
        action: row.text("action").to_owned(),
        detail: serde_json::from_str(row.text("detail"))
            .map_err(|_| StorageError::Corrupt("audit detail".into()))?,
    })
}

pub(super) fn account_event(row: &impl Columns) -> Result<AccountEventRow> {
    Ok(AccountEventRow {
        at: row.int("at"),
        action: row.text("action").to_owned(),
        detail: serde_json::from_str(row.text("detail"))
            .map_err(|_| StorageError::Corrupt("account event detail".into()))?,
    })
}

pub(super) fn decision(row: &impl Columns) -> Result<DecisionRow> {
    Ok(DecisionRow {
        child_id: id(row, "child_id")?,
        body: serde_json::from_str(row.text("body"))
            .map_err(|_| StorageError::Corrupt("decision".into()))?,
        recorded_by: optional_id(row, "recorded_by")?,
        recorded_at: row.int("recorded_at"),
    })
}

pub(super) fn document_change(row: &impl Columns) -> Result<DocumentChangeRow> {
    Ok(DocumentChangeRow {
        at: row.int("created_at"),
        participant: optional_id(row, "participant_id")?,
        document: word(row, "document", DocumentKind::parse)?,
    })
}

/// The document a row is about, from its `conference_id` and `document` columns.
pub(super) fn document(row: &impl Columns) -> Result<(ConferenceId, DocumentKind)> {
    Ok((
        id(row, "conference_id")?,
        word(row, "document", DocumentKind::parse)?,
    ))
}
