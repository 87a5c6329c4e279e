//! Creating, listing and running conferences.

use crate::error::JsonBody;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngExt;
use roundtable_shared::api::{
    Closed, ConferenceDetail, ConferenceView, Created, NewConference, PhaseNow, SetPhase, You,
};
use roundtable_shared::doc::{self, DocumentKind};
use roundtable_shared::record;
use roundtable_shared::{
    Child, ChildId, Conference, ConferenceId, Participant, ParticipantId, ParticipantStatus, Phase,
    Role,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::access::{Chairing, Participating, SignedInChair};
use super::people::{invite, invited};
use super::text;
use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{ConferenceRow, ParticipantRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conferences", get(list).post(create))
        .route("/api/conferences/{id}", get(show))
        .route("/api/conferences/{id}/phase", post(set_phase))
}

async fn list(
    State(state): State<AppState>,
    SignedInChair(chair): SignedInChair,
) -> Result<Json<Vec<ConferenceView>>, ApiError> {
    let rows = state.storage.conferences_of_chair(chair).await?;
    Ok(Json(
        rows.iter()
            .map(ConferenceRow::view)
            .collect::<Result<_, _>>()?,
    ))
}

/// 32 letters and digits, none that looks like another (no I, O, 0 or 1).
const ROOM_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A room code's length: 12 of 32 symbols is 60 bits, so that guessing one during a
/// conference's life is hopeless even at a thousand guesses a second (the arithmetic
/// is in `docs/reliability.md`). Shown in three groups of four.
pub(crate) const ROOM_CODE_LENGTH: usize = 12;

fn room_code() -> String {
    let mut rng = rand::rng();
    (0..ROOM_CODE_LENGTH)
        .map(|_| ROOM_CODE_ALPHABET[rng.random_range(0..ROOM_CODE_ALPHABET.len())] as char)
        .collect()
}

async fn create(
    State(state): State<AppState>,
    SignedInChair(chair_id): SignedInChair,
    JsonBody(body): JsonBody<NewConference>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let chair = state
        .storage
        .chair(chair_id)
        .await?
        .ok_or(ApiError::SignInNeeded)?;
    let title = text("title", &body.title, 200)?;
    let start = OffsetDateTime::parse(body.scheduled_start.trim(), &Rfc3339).map_err(|_| {
        ApiError::Invalid(
            "scheduled_start must be a date and time like 2026-12-01T10:00:00+00:00".into(),
        )
    })?;
    if body.children.is_empty() {
        return Err(ApiError::Invalid(
            "a conference is about at least one child".into(),
        ));
    }
    if body.children.len() > 20 || body.participants.len() > 100 {
        return Err(ApiError::Invalid(
            "too many children or participants".into(),
        ));
    }
    let mut children = Vec::new();
    for child in &body.children {
        let date_of_birth = match child.date_of_birth.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(
                time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                    .map_err(|_| {
                        ApiError::Invalid(format!(
                            "date of birth {d:?} is not a date like 2019-04-30"
                        ))
                    })?,
            ),
        };
        children.push(Child {
            id: ChildId(Uuid::new_v4()),
            name: text("child's name", &child.name, 100)?,
            date_of_birth,
        });
    }
    let previous = match body.previous_conference {
        None => None,
        Some(previous) => {
            let row = state
                .storage
                .conference(previous)
                .await?
                .filter(|row| row.chair_id == chair_id)
                .ok_or_else(|| {
                    ApiError::Invalid(
                        "the previous conference must be one of your own conferences".into(),
                    )
                })?;
            Some(row.id)
        }
    };
    let conference = Conference {
        id: ConferenceId(Uuid::new_v4()),
        title,
        kind: body.kind,
        scheduled_start: start,
        children,
        headings: body.headings_template,
        phase: Phase::PreMeet,
    };
    let mut code = room_code();
    while state.storage.room_code_taken(&code).await? {
        code = room_code();
    }
    let headings = serde_json::to_value(conference.headings)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let row = ConferenceRow {
        id: conference.id,
        chair_id,
        title: conference.title.clone(),
        kind: conference.kind,
        scheduled_start: start.format(&Rfc3339).unwrap_or_default(),
        headings,
        children_json: serde_json::to_string(&conference.children).unwrap_or_else(|_| "[]".into()),
        phase: conference.phase,
        room_code: code,
        closed_at: None,
        core_group_by: None,
        review_by: None,
    };
    // Worked out before anything is stored: a start in the calendar's last year has
    // no dates for its next meetings, and is refused.
    let next_meetings = super::record::next_meetings_of(&row)?;
    // The chair takes part as a participant too, so the board can name them.
    let chair_participant = ParticipantRow {
        id: ParticipantId(Uuid::new_v4()),
        conference_id: conference.id,
        name: chair.name.clone(),
        role: Some(Role::Chair),
        agency: None,
        status: ParticipantStatus::Admitted,
        link_expires_at: None,
        chair_id: Some(chair_id),
    };
    let mut rows = vec![(chair_participant, None)];
    let mut tokens = Vec::new();
    for new in &body.participants {
        let (row, token) = invite(conference.id, new)?;
        rows.push((row, Some(auth::token_hash(&token))));
        tokens.push(token);
    }
    let event = crate::storage::AuditEvent {
        conference: conference.id,
        actor: Some(rows[0].0.id),
        action: "conference_created",
        detail: json!({ "title": row.title, "invited": rows.len() - 1 }),
    };
    state.storage.insert_conference(&row, &rows, &event).await?;
    if let Some(previous) = previous {
        state
            .storage
            .set_previous_conference(conference.id, previous)
            .await?;
    }

    let roster: Vec<Participant> = rows
        .iter()
        .filter_map(|(p, _)| {
            Some(Participant {
                id: p.id,
                name: p.name.clone(),
                role: p.role?,
                agency: p.agency.clone(),
            })
        })
        .collect();
    state
        .rooms
        .server_change((conference.id, DocumentKind::Shared), |txn| {
            doc::write_meta(txn, &conference);
            for p in &roster {
                doc::write_participant(txn, p);
            }
            roundtable_shared::plan::write_skeleton(txn);
            record::write_next_meetings(txn, &next_meetings);
        })
        .await?;
    tracing::info!(conference = %conference.id, "conference created");

    let base = super::people::base_url(&state);
    let participants = rows
        .iter()
        .skip(1)
        .zip(tokens)
        .map(|((p, _), token)| invited(&base, p, token))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(Created {
            conference: row.view()?,
            participants,
        }),
    ))
}

async fn show(
    State(state): State<AppState>,
    member: Participating,
) -> Result<Json<ConferenceDetail>, ApiError> {
    // The caller's own place in the conference: the board needs it to know which
    // items are theirs and what their role lets them change.
    let you = You {
        id: member.participant.id,
        name: member.participant.name.clone(),
        role: member.role,
    };
    let participants = match member.chairs() {
        true => {
            let people = state.storage.participants(member.id()).await?;
            Some(people.iter().map(ParticipantRow::view).collect())
        }
        false => None,
    };
    Ok(Json(ConferenceDetail {
        conference: member.conference.view()?,
        you,
        participants,
    }))
}

async fn set_phase(
    State(state): State<AppState>,
    chair: Chairing,
    JsonBody(body): JsonBody<SetPhase>,
) -> Result<Json<PhaseResult>, ApiError> {
    let id = chair.id();
    super::not_closed(&chair.conference)?;
    let phase = Phase::parse(body.phase.trim()).ok_or_else(|| {
        let names: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        ApiError::Invalid(format!("phase must be one of: {}", names.join(", ")))
    })?;
    if phase == Phase::Closed {
        // Closing is more than a phase: it is recorded, and freezes the conference.
        let closed = super::record::close_conference(&state, &chair).await?;
        return Ok(Json(PhaseResult::Closed(closed)));
    }
    let _ = chair.conference.model()?;
    let event = chair.event("phase_changed", json!({ "phase": phase.as_str() }));
    state.storage.set_phase(id, phase, &event).await?;
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            doc::write_phase(txn, phase)
        })
        .await?;
    tracing::info!(conference = %id, phase = phase.as_str(), "phase changed");
    Ok(Json(PhaseResult::Moved(PhaseNow { phase })))
}

/// What moving to a phase answers: the phase, or for `closed` what closing answers.
#[derive(Serialize)]
#[serde(untagged)]
enum PhaseResult {
    Moved(PhaseNow),
    Closed(Closed),
}
