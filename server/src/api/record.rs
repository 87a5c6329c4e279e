//! The end of the meeting and its record: the decision for each child, attendance and
//! quorum, the next meetings, closing and reopening, the export of the whole record,
//! and the audit view.
//!
//! Each command is stored with its audit event in one transaction, refused (409) if
//! the conference is closed, and then written into the shared document's `decisions`
//! root. The quorum is worked out again whenever attendance is recorded (not when
//! people are admitted or removed: until attendance is recorded nobody is present).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use roundtable_shared::api::{
    AttendanceRecorded, AuditEntry, AuditLog, Closed, DocumentChange, Outcome, PersonRef, PhaseNow,
    RecordAction, RecordAttendance, RecordConference, RecordDanger, RecordDecision,
    RecordDecisionEntry, RecordExport, RecordHeading, RecordItem, RecordParticipant, RecordPlan,
    RecordScale, SetNextMeetings,
};
use roundtable_shared::dates;
use roundtable_shared::doc::{self, Board, DocumentKind, SaidBy};
use roundtable_shared::plan::{self, format_date, parse_date};
use roundtable_shared::record::{
    self, AgencyView, Attendance, ClosedEntry, DecisionEntry, Dissent, NextMeetingsEntry, Quorum,
};
use roundtable_shared::scale::{ScaleStatus, Summary};
use roundtable_shared::{
    ChildId, ConferenceId, Decision, NonEmptyCategories, ParticipantId, ParticipantStatus, Phase,
    ScaleId,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::access::Chairing;
use super::scales::revealed_scores;
use super::{not_closed, text};
use crate::error::{ApiError, JsonBody, Path};
use crate::state::AppState;
use crate::storage::{ConferenceRow, ParticipantRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/conferences/{id}/decisions/{child}",
            put(record_decision),
        )
        .route(
            "/api/conferences/{id}/attendance/{participant}",
            put(record_attendance),
        )
        .route(
            "/api/conferences/{id}/next-meetings",
            put(set_next_meetings),
        )
        .route("/api/conferences/{id}/close", post(close))
        .route("/api/conferences/{id}/reopen", post(reopen))
        .route("/api/conferences/{id}/record", get(export))
        .route("/api/conferences/{id}/audit", get(audit_view))
}

/// Most agency views, and most dissents, recorded for one child.
const MAX_VOICES: usize = 30;
const MAX_VIEW_CHARS: usize = 2000;
/// Most document changes the audit view lists (the latest ones).
const MOST_DOCUMENT_CHANGES: u32 = 5000;

/// A time in Unix milliseconds as RFC 3339 in UTC, always with three decimals, so that
/// times sort as text.
pub(crate) fn rfc3339(ms: i64) -> String {
    const UTC_MS: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(UTC_MS).ok())
        .unwrap_or_default()
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(crate::storage::StorageError::Corrupt(what.to_owned()))
}

/// The date the conference is held on, in the time zone the chair gave.
fn held_on(row: &ConferenceRow) -> Result<time::Date, ApiError> {
    OffsetDateTime::parse(&row.scheduled_start, &Rfc3339)
        .map(|t| t.date())
        .map_err(|_| corrupt("conference start"))
}

/// Why a conference cannot be held in the calendar's last year.
pub(crate) const TOO_LATE: &str =
    "scheduled_start is too late: the meetings after it would fall after the year 9999";

/// The dates of the next meetings: the latest allowed, and the chair's choice (the
/// latest allowed until the chair changes them).
pub(crate) fn next_meetings_of(row: &ConferenceRow) -> Result<NextMeetingsEntry, ApiError> {
    let proposed = dates::next_meetings(held_on(row)?, row.kind)
        .ok_or_else(|| ApiError::Invalid(TOO_LATE.into()))?;
    let core = format_date(proposed.core_group_by);
    let review = format_date(proposed.review_by);
    Ok(NextMeetingsEntry {
        core_group_by: row.core_group_by.clone().unwrap_or_else(|| core.clone()),
        review_by: row.review_by.clone().unwrap_or_else(|| review.clone()),
        proposed_core_group_by: core,
        proposed_review_by: review,
    })
}

// --- decisions ------------------------------------------------------------------

/// The decision as asked, checked: the outcome with its categories, and every text.
fn checked_decision(
    child: ChildId,
    body: RecordDecision,
    recorded_at: String,
) -> Result<DecisionEntry, ApiError> {
    let decision = match body.outcome {
        Outcome::ChildProtectionPlan => Decision::ChildProtectionPlan {
            categories: NonEmptyCategories::new(body.categories)
                .map_err(|e| ApiError::Invalid(e.to_string()))?,
        },
        _ if !body.categories.is_empty() => {
            return Err(ApiError::Invalid(
                "categories are only for a child protection plan".into(),
            ));
        }
        Outcome::ChildInNeedPlan => Decision::ChildInNeedPlan,
        Outcome::NoPlan => Decision::NoPlan,
    };
    if body.agency_views.len() > MAX_VOICES || body.dissent.len() > MAX_VOICES {
        return Err(ApiError::Invalid(format!(
            "too many agency views or dissents (at most {MAX_VOICES} of each)"
        )));
    }
    // Each voice is a name (at most 100 characters) and what they said.
    let voices = |list: Vec<(String, String)>, name: &str, said: &str| {
        list.iter()
            .map(|(who, what)| Ok((text(name, who, 100)?, text(said, what, MAX_VIEW_CHARS)?)))
            .collect::<Result<Vec<_>, ApiError>>()
    };
    let agency_views = voices(
        body.agency_views
            .into_iter()
            .map(|v| (v.agency, v.view))
            .collect(),
        "an agency's name",
        "an agency's view",
    )?
    .into_iter()
    .map(|(agency, view)| AgencyView { agency, view })
    .collect();
    let dissent = voices(
        body.dissent.into_iter().map(|d| (d.who, d.why)).collect(),
        "who disagrees",
        "why they disagree",
    )?
    .into_iter()
    .map(|(who, why)| Dissent { who, why })
    .collect();
    let lead = match body.lead_social_worker.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(text("the lead social worker", name, 100)?),
    };
    Ok(DecisionEntry {
        child,
        decision,
        agency_views,
        dissent,
        lead_social_worker: lead,
        recorded_at,
    })
}

async fn record_decision(
    State(state): State<AppState>,
    Path((_, child)): Path<(Uuid, Uuid)>,
    member: Chairing,
    JsonBody(body): JsonBody<RecordDecision>,
) -> Result<Json<Value>, ApiError> {
    let id = member.id();
    not_closed(&member.conference)?;
    let child = ChildId(child);
    if !member.conference.children()?.iter().any(|c| c.id == child) {
        return Err(ApiError::Invalid(
            "that child is not part of this conference".into(),
        ));
    }
    let entry = checked_decision(child, body, rfc3339(crate::storage::now_ms()))?;
    let stored = serde_json::to_value(StoredDecision {
        decision: entry.decision.clone(),
        agency_views: entry.agency_views.clone(),
        dissent: entry.dissent.clone(),
        lead_social_worker: entry.lead_social_worker.clone(),
    })
    .map_err(|_| corrupt("decision"))?;
    let event = member.event(
        "decision_recorded",
        json!({ "child": child, "decision": stored }),
    );
    if !state
        .storage
        .put_decision(id, child, &stored, member.participant.id, &event)
        .await?
    {
        return Err(ApiError::Conflict(super::CLOSED.into()));
    }
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            record::write_decision(txn, &entry)
        })
        .await?;
    tracing::info!(conference = %id, child = %child, "decision recorded");
    Ok(Json(serde_json::to_value(&entry).unwrap_or_default()))
}

// --- attendance -----------------------------------------------------------------

/// Who attended, and the quorum that makes, from what is stored.
async fn attendance_and_quorum(
    state: &AppState,
    id: ConferenceId,
    people: &[ParticipantRow],
) -> Result<(BTreeMap<ParticipantId, Attendance>, Quorum), ApiError> {
    let attendance: BTreeMap<ParticipantId, Attendance> =
        state.storage.attendance(id).await?.into_iter().collect();
    let present = people
        .iter()
        .filter(|p| attendance.get(&p.id) == Some(&Attendance::Present))
        .filter_map(|p| p.agency.as_deref());
    let quorum = record::quorum(present);
    Ok((attendance, quorum))
}

async fn record_attendance(
    State(state): State<AppState>,
    Path((_, participant)): Path<(Uuid, Uuid)>,
    member: Chairing,
    JsonBody(body): JsonBody<RecordAttendance>,
) -> Result<Json<AttendanceRecorded>, ApiError> {
    let id = member.id();
    not_closed(&member.conference)?;
    let status = Attendance::parse(body.status.trim()).ok_or_else(|| {
        ApiError::Invalid("status must be one of: present, apologies, absent".into())
    })?;
    let people = state.storage.participants(id).await?;
    let person = people
        .iter()
        .find(|p| p.id == ParticipantId(participant))
        .ok_or(ApiError::NotFound(
            "there is no such participant in this conference",
        ))?;
    if !(person.status.takes_part() || person.status == ParticipantStatus::Removed) {
        return Err(ApiError::Invalid(format!(
            "{} has not been let in to this conference",
            person.name
        )));
    }
    let event = member.event(
        "attendance_recorded",
        json!({ "participant": person.id, "status": status.as_str() }),
    );
    if !state
        .storage
        .put_attendance(id, person.id, status, &event)
        .await?
    {
        return Err(ApiError::Conflict(super::CLOSED.into()));
    }
    let (attendance, quorum) = attendance_and_quorum(&state, id, &people).await?;
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            record::write_attendance(txn, &attendance);
            record::write_quorum(txn, &quorum);
        })
        .await?;
    tracing::info!(conference = %id, participant = %person.id, "attendance recorded");
    Ok(Json(AttendanceRecorded {
        participant: person.id,
        status,
        quorum,
    }))
}

// --- next meetings --------------------------------------------------------------

async fn set_next_meetings(
    State(state): State<AppState>,
    member: Chairing,
    JsonBody(body): JsonBody<SetNextMeetings>,
) -> Result<Json<Value>, ApiError> {
    let id = member.id();
    not_closed(&member.conference)?;
    let held = held_on(&member.conference)?;
    let checked = |given: &str| -> Result<String, ApiError> {
        let given = given.trim();
        let date =
            parse_date(given).ok_or_else(|| ApiError::Invalid(format!("{given} is not a date")))?;
        if date < held {
            return Err(ApiError::Invalid(format!(
                "{given} is before the conference, which is on {}",
                format_date(held)
            )));
        }
        Ok(format_date(date))
    };
    let core_group_by = checked(&body.core_group_by)?;
    let review_by = checked(&body.review_by)?;
    let event = member.event(
        "next_meetings_set",
        json!({ "core_group_by": core_group_by, "review_by": review_by }),
    );
    if !state
        .storage
        .set_next_meetings(id, &core_group_by, &review_by, &event)
        .await?
    {
        return Err(ApiError::Conflict(super::CLOSED.into()));
    }
    let mut row = member.conference.clone();
    row.core_group_by = Some(core_group_by);
    row.review_by = Some(review_by);
    let next = next_meetings_of(&row)?;
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            record::write_next_meetings(txn, &next)
        })
        .await?;
    tracing::info!(conference = %id, "next meetings set");
    Ok(Json(serde_json::to_value(&next).unwrap_or_default()))
}

// --- closing and reopening ------------------------------------------------------

/// Writes the phase into both documents, so that the restricted one is frozen too.
async fn write_phase_everywhere(
    state: &AppState,
    id: ConferenceId,
    phase: Phase,
    closed: Option<&ClosedEntry>,
) -> Result<(), ApiError> {
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            doc::write_phase(txn, phase);
            record::write_closed(txn, closed);
        })
        .await?;
    state
        .rooms
        .server_change((id, DocumentKind::Restricted), |txn| {
            doc::write_phase(txn, phase)
        })
        .await?;
    Ok(())
}

async fn close(State(state): State<AppState>, member: Chairing) -> Result<Json<Closed>, ApiError> {
    close_conference(&state, &member).await.map(Json)
}

/// Closes the conference (also what moving it to the phase `closed` does).
pub(crate) async fn close_conference(
    state: &AppState,
    member: &Chairing,
) -> Result<Closed, ApiError> {
    let id = member.id();
    not_closed(&member.conference)?;
    let event = member.event("conference_closed", json!({}));
    let closed_at = state
        .storage
        .close_conference(id, &event)
        .await?
        .ok_or_else(|| ApiError::Conflict(super::CLOSED.into()))?;
    let closed = ClosedEntry {
        closed_at: rfc3339(closed_at),
        by: member.participant.id,
    };
    write_phase_everywhere(state, id, Phase::Closed, Some(&closed)).await?;
    state.scales_changed(id).await;
    tracing::info!(conference = %id, "conference closed");
    Ok(Closed {
        phase: Phase::Closed,
        closed_at: closed.closed_at,
        by: closed.by,
    })
}

async fn reopen(
    State(state): State<AppState>,
    member: Result<Chairing, ApiError>,
) -> Result<Json<PhaseNow>, ApiError> {
    let member = member.map_err(|e| match e {
        ApiError::Forbidden => ApiError::NotAllowed("only the chair can reopen"),
        other => other,
    })?;
    let id = member.id();
    let event = member.event("conference_reopened", json!({}));
    if !state.storage.reopen_conference(id, &event).await? {
        return Err(ApiError::Conflict("this conference is not closed".into()));
    }
    write_phase_everywhere(&state, id, Phase::Decision, None).await?;
    state.scales_changed(id).await;
    tracing::info!(conference = %id, "conference reopened");
    Ok(Json(PhaseNow {
        phase: Phase::Decision,
    }))
}

// --- the record -----------------------------------------------------------------

/// A person as the audit view and the record name them.
fn person_ref(people: &[ParticipantRow], id: Option<ParticipantId>) -> Option<PersonRef> {
    let p = people.iter().find(|p| Some(p.id) == id)?;
    Some(PersonRef {
        id: p.id,
        name: p.name.clone(),
        role: p.role,
    })
}

/// Who said something, in words: their name (and agency), or the agency.
fn said_by_words(people: &[ParticipantRow], said_by: Option<&SaidBy>) -> Option<String> {
    Some(match said_by? {
        SaidBy::Agency(agency) => agency.clone(),
        SaidBy::Participant(id) => match people.iter().find(|p| p.id == *id) {
            Some(p) => match &p.agency {
                Some(agency) => format!("{} ({agency})", p.name),
                None => p.name.clone(),
            },
            None => "someone no longer in the conference".to_owned(),
        },
    })
}

/// Every item of a document's board. (Only reading: `Board::new` would ask for a
/// write transaction while this one is open.)
fn board_items(txn: &yrs::Transaction) -> Vec<doc::BoardItem> {
    Board::get(txn).map(|b| b.items(txn)).unwrap_or_default()
}

/// The board and the plan, read from the conference's documents.
async fn documents_view(
    state: &AppState,
    id: ConferenceId,
    people: &[ParticipantRow],
    child_names: &BTreeMap<ChildId, String>,
) -> Result<(Vec<RecordHeading>, RecordPlan), ApiError> {
    let name_of = |c: &ChildId| child_names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let (headings, shared, plan) = state
        .rooms
        .read((id, DocumentKind::Shared), |txn, _| {
            (
                doc::read_headings(txn),
                board_items(txn),
                plan::read_plan(txn),
            )
        })
        .await?;
    let restricted = state
        .rooms
        .read((id, DocumentKind::Restricted), |txn, _| board_items(txn))
        .await?;
    let board = headings
        .iter()
        .map(|heading| RecordHeading {
            key: heading.key.clone(),
            title: heading.title.clone(),
            items: [(false, &shared), (true, &restricted)]
                .into_iter()
                .flat_map(|(professionals_only, items)| {
                    items
                        .iter()
                        .filter(|i| i.heading == heading.key)
                        .map(move |i| (professionals_only, i))
                })
                .map(|(professionals_only, i)| RecordItem {
                    text: i.text.clone(),
                    said_by: said_by_words(people, i.said_by.as_ref()),
                    children: i.children.iter().map(name_of).collect(),
                    professionals_only,
                })
                .collect(),
        })
        .collect();
    let plan = RecordPlan {
        dangers: plan
            .dangers
            .iter()
            .map(|d| RecordDanger {
                statement: d.statement.clone(),
                safety_goal: d.goal.clone(),
            })
            .collect(),
        actions: plan
            .actions
            .iter()
            .map(|a| RecordAction {
                what: a.what.clone(),
                who: said_by_words(people, a.who.as_ref()),
                by: a.by.map(format_date),
                how_we_will_know: a.how_we_know.clone(),
                child: a.child.as_ref().map(name_of),
            })
            .collect(),
        contingency: plan.contingency,
        bottom_lines: plan.bottom_lines,
    };
    Ok((board, plan))
}

async fn scales_view(state: &AppState, id: ConferenceId) -> Result<Vec<RecordScale>, ApiError> {
    let counts = state.storage.scored_counts(id).await?;
    let mut scales = Vec::new();
    for row in state.storage.scales(id).await? {
        let (results, summary) = match row.status {
            ScaleStatus::Revealed => {
                let results = revealed_scores(state, id, row.id).await?;
                let scores: Vec<_> = results.iter().map(|r| r.score).collect();
                let summary = Summary::of(&scores);
                (Some(results), Some(summary))
            }
            _ => (None, None),
        };
        scales.push(RecordScale {
            number: row.number,
            about: row.about,
            status: row.status,
            scored: counts
                .iter()
                .find(|(s, _)| *s == row.id)
                .map_or(0, |(_, n)| *n),
            results,
            summary,
        });
    }
    Ok(scales)
}

/// A decision's body as stored (`put_decision`).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredDecision {
    decision: Decision,
    #[serde(default)]
    agency_views: Vec<AgencyView>,
    #[serde(default)]
    dissent: Vec<Dissent>,
    #[serde(default)]
    lead_social_worker: Option<String>,
}

async fn export(
    State(state): State<AppState>,
    member: Chairing,
) -> Result<Json<RecordExport>, ApiError> {
    let id = member.id();
    let row = &member.conference;
    let children = row.children()?;
    let child_names: BTreeMap<ChildId, String> =
        children.iter().map(|c| (c.id, c.name.clone())).collect();
    let people = state.storage.participants(id).await?;
    let (attendance, quorum) = attendance_and_quorum(&state, id, &people).await?;
    let participants = people
        .iter()
        .filter(|p| {
            !matches!(
                p.status,
                ParticipantStatus::Waiting | ParticipantStatus::TurnedAway
            )
        })
        .map(|p| RecordParticipant {
            id: p.id,
            name: p.name.clone(),
            role: p.role,
            agency: p.agency.clone(),
            removed: p.status == ParticipantStatus::Removed,
            attendance: attendance.get(&p.id).copied(),
        })
        .collect();
    let (board, plan) = documents_view(&state, id, &people, &child_names).await?;
    let stored = state.storage.decisions(id).await?;
    let mut decisions = Vec::with_capacity(children.len());
    for child in &children {
        let mut entry = RecordDecisionEntry {
            child: child.id,
            name: child.name.clone(),
            decision: None,
            agency_views: Vec::new(),
            dissent: Vec::new(),
            lead_social_worker: None,
            recorded_at: None,
            recorded_by: None,
        };
        if let Some(d) = stored.iter().find(|d| d.child_id == child.id) {
            let body: StoredDecision =
                serde_json::from_value(d.body.clone()).map_err(|_| corrupt("decision"))?;
            entry.decision = Some(body.decision);
            entry.agency_views = body.agency_views;
            entry.dissent = body.dissent;
            entry.lead_social_worker = body.lead_social_worker;
            entry.recorded_at = Some(rfc3339(d.recorded_at));
            entry.recorded_by = person_ref(&people, d.recorded_by);
        }
        decisions.push(entry);
    }
    let body = RecordExport {
        format: "roundtable-record/1".into(),
        conference: RecordConference {
            id: row.id,
            title: row.title.clone(),
            kind: row.kind,
            scheduled_start: row.scheduled_start.clone(),
            phase: row.phase,
            closed_at: row.closed_at.map(rfc3339),
        },
        children,
        participants,
        board,
        safety_scales: scales_view(&state, id).await?,
        plan,
        decisions,
        quorum,
        next_meetings: next_meetings_of(row)?,
        exported_at: rfc3339(crate::storage::now_ms()),
    };
    state
        .storage
        .record_event(&member.event("record_exported", json!({})))
        .await?;
    tracing::info!(conference = %id, "record exported");
    Ok(Json(body))
}

// --- the audit view -------------------------------------------------------------

async fn audit_view(
    State(state): State<AppState>,
    member: Chairing,
) -> Result<Json<AuditLog>, ApiError> {
    let id = member.id();
    let people = state.storage.participants(id).await?;
    let revealed: Vec<ScaleId> = state
        .storage
        .scales(id)
        .await?
        .into_iter()
        .filter(|s| s.status == ScaleStatus::Revealed)
        .map(|s| s.id)
        .collect();
    let events = state
        .storage
        .audit_events(id)
        .await?
        .into_iter()
        .map(|event| {
            let mut detail = event.detail;
            // A score is not shown before its scale is revealed, not even here.
            let secret = event.action == "score_given"
                && !detail["scale"]
                    .as_str()
                    .is_some_and(|s| revealed.iter().any(|r| r.to_string() == s));
            if secret {
                detail["score"] = Value::Null;
                detail["reason"] = Value::Null;
            }
            AuditEntry {
                at: rfc3339(event.at),
                actor: person_ref(&people, event.actor),
                action: event.action,
                detail,
            }
        })
        .collect();
    let (changes, truncated) = state
        .storage
        .document_changes(id, MOST_DOCUMENT_CHANGES)
        .await?;
    let document_changes = changes
        .into_iter()
        .map(|c| DocumentChange {
            at: rfc3339(c.at),
            participant: person_ref(&people, c.participant),
            document: c.document,
        })
        .collect();
    Ok(Json(AuditLog {
        events,
        document_changes,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_millisecond_time_is_written_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_120), "2026-11-18T11:06:40.120Z");
    }

    #[test]
    fn a_decision_is_checked_before_it_is_stored() {
        let body = |v: Value| serde_json::from_value::<RecordDecision>(v).unwrap();
        let child = ChildId(Uuid::from_u128(1));
        let refused = |v: Value| {
            checked_decision(child, body(v), String::new())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(json!({ "outcome": "no_plan", "categories": ["neglect"] })),
            "categories are only for a child protection plan"
        );
        assert_eq!(
            refused(json!({ "outcome": "child_protection_plan" })),
            "a child protection plan needs at least one category"
        );
        assert_eq!(
            refused(
                json!({ "outcome": "no_plan", "agency_views": [{ "agency": " ", "view": "x" }] })
            ),
            "an agency's name is missing"
        );
        let entry = checked_decision(
            child,
            body(json!({ "outcome": "child_in_need_plan", "lead_social_worker": "  " })),
            String::new(),
        )
        .unwrap();
        assert_eq!(
            (entry.decision, entry.lead_social_worker),
            (Decision::ChildInNeedPlan, None)
        );
    }
}
