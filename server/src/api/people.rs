//! Inviting, admitting and removing participants; the lobby for people in the room.

use crate::error::JsonBody;
use crate::error::Path;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use roundtable_shared::api::{
    Admit, CameBy, EnterLobby, Invited, Joined, NewParticipant, ParticipantView, WaitingView,
};
use roundtable_shared::doc::{self, DocumentKind};
use roundtable_shared::protocol;
use roundtable_shared::{ConferenceId, Participant, ParticipantId, ParticipantStatus, Phase, Role};
use serde_json::json;
use uuid::Uuid;

use super::access::Chairing;
use super::text;
use crate::auth;
use crate::door::ClientAddress;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{ParticipantRow, SessionSubject, now_ms};
use crate::sync::mailbox::CloseReason;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conferences/{id}/participants", post(add))
        .route("/api/conferences/{id}/participants/{pid}", delete(remove))
        .route(
            "/api/conferences/{id}/participants/{pid}/link",
            post(new_link),
        )
        .route("/api/conferences/{id}/lobby", get(lobby))
        .route("/api/conferences/{id}/lobby/{pid}/admit", post(admit))
        .route(
            "/api/conferences/{id}/lobby/{pid}/turn-away",
            post(turn_away),
        )
        .route("/api/lobby", post(enter_lobby))
}

/// Where people reach this server, for join links: configured, never a request's
/// `Host` (which whoever sends the request writes).
pub(crate) fn base_url(state: &AppState) -> String {
    state.config.base_url()
}

fn role_for_invite(role: &str) -> Result<Role, ApiError> {
    match Role::parse(role.trim()) {
        Some(Role::Chair) => Err(ApiError::Invalid(
            "a conference has one chair: the person who created it".into(),
        )),
        Some(role) => Ok(role),
        None => {
            let names: Vec<_> = Role::ALL.iter().skip(1).map(|r| r.as_str()).collect();
            Err(ApiError::Invalid(format!(
                "role must be one of: {}",
                names.join(", ")
            )))
        }
    }
}

fn agency(value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(a) => text("agency", a, 100).map(Some),
    }
}

/// Someone invited, with their personal link, as the chair sees them once.
pub(crate) fn invited(base: &str, p: &ParticipantRow, token: String) -> Invited {
    Invited {
        participant: p.view(),
        join_link: format!("{base}/join#{token}"),
        token,
    }
}

/// A new invited participant and their join token (to be shown to the chair once).
pub(crate) fn invite(
    conference: ConferenceId,
    new: &NewParticipant,
) -> Result<(ParticipantRow, String), ApiError> {
    let row = ParticipantRow {
        id: ParticipantId(Uuid::new_v4()),
        conference_id: conference,
        name: text("name", &new.name, 100)?,
        role: Some(role_for_invite(&new.role)?),
        agency: agency(new.agency.as_deref())?,
        status: ParticipantStatus::Invited,
        link_expires_at: Some(now_ms() + auth::LINK_LIFETIME_MS),
        chair_id: None,
    };
    Ok((row, auth::new_token()))
}

fn model(p: &ParticipantRow) -> Option<Participant> {
    Some(Participant {
        id: p.id,
        name: p.name.clone(),
        role: p.role?,
        agency: p.agency.clone(),
    })
}

async fn add(
    State(state): State<AppState>,
    chair: Chairing,
    JsonBody(body): JsonBody<NewParticipant>,
) -> Result<(StatusCode, Json<Invited>), ApiError> {
    let id = chair.id();
    let (row, token) = invite(id, &body)?;
    let event = chair.event(
        "participant_invited",
        json!({ "participant": row.id, "name": row.name, "role": row.role }),
    );
    state
        .storage
        .insert_participant(&row, Some(&auth::token_hash(&token)), &event)
        .await?;
    if let Some(p) = model(&row) {
        state
            .rooms
            .server_change((id, DocumentKind::Shared), |txn| {
                doc::write_participant(txn, &p)
            })
            .await?;
    }
    tracing::info!(conference = %id, participant = %row.id, "participant invited");
    let base = base_url(&state);
    Ok((StatusCode::CREATED, Json(invited(&base, &row, token))))
}

/// A new personal join link for someone already invited (the chair lost the first
/// one, or it expired). The old link stops working at once; sessions already
/// opened with it carry on.
async fn new_link(
    State(state): State<AppState>,
    Path((_, pid)): Path<(Uuid, Uuid)>,
    chair: Chairing,
) -> Result<Json<Invited>, ApiError> {
    let id = chair.id();
    let p = participant_of(&state, id, pid).await?;
    if p.chair_id.is_some() {
        return Err(ApiError::Invalid(
            "the chair signs in with their account and needs no link".into(),
        ));
    }
    if !p.status.takes_part() {
        return Err(ApiError::Conflict(format!(
            "{} is not taking part in this conference",
            p.name
        )));
    }
    let token = auth::new_token();
    let event = chair.event("new_link", json!({ "participant": p.id }));
    state
        .storage
        .replace_link(
            p.id,
            &auth::token_hash(&token),
            now_ms() + auth::LINK_LIFETIME_MS,
            &event,
        )
        .await?;
    tracing::info!(conference = %id, participant = %p.id, "new join link");
    let base = base_url(&state);
    Ok(Json(invited(&base, &p, token)))
}

async fn participant_of(
    state: &AppState,
    conference: ConferenceId,
    pid: Uuid,
) -> Result<ParticipantRow, ApiError> {
    state
        .storage
        .participant(ParticipantId(pid))
        .await?
        .filter(|p| p.conference_id == conference)
        .ok_or(ApiError::NotFound(
            "there is no such participant in this conference",
        ))
}

/// A participant waiting in the lobby of the chair's conference.
async fn waiting(
    state: &AppState,
    chair: &Chairing,
    pid: Uuid,
) -> Result<ParticipantRow, ApiError> {
    let p = participant_of(state, chair.id(), pid).await?;
    if p.status != ParticipantStatus::Waiting {
        return Err(ApiError::Conflict(format!(
            "{} is not waiting in the lobby",
            p.name
        )));
    }
    Ok(p)
}

async fn remove(
    State(state): State<AppState>,
    Path((_, pid)): Path<(Uuid, Uuid)>,
    chair: Chairing,
) -> Result<StatusCode, ApiError> {
    let id = chair.id();
    let p = participant_of(&state, id, pid).await?;
    if p.chair_id.is_some() {
        return Err(ApiError::Invalid("the chair cannot be removed".into()));
    }
    let event = chair.event("participant_removed", json!({ "participant": p.id }));
    state
        .storage
        .set_participant_status(p.id, ParticipantStatus::Removed, None, &event)
        .await?;
    state
        .rooms
        .disconnect(
            id,
            p.id,
            CloseReason::new(protocol::CLOSE_REMOVED, protocol::REMOVED),
        )
        .await;
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            doc::remove_participant(txn, p.id)
        })
        .await?;
    // Their voting page's stream ends at once.
    state.scales_changed(id).await;
    tracing::info!(conference = %id, participant = %p.id, "participant removed");
    Ok(StatusCode::NO_CONTENT)
}

async fn lobby(
    State(state): State<AppState>,
    chair: Chairing,
) -> Result<Json<Vec<WaitingView>>, ApiError> {
    let people = state.storage.participants(chair.id()).await?;
    let waiting: Vec<&ParticipantRow> = people
        .iter()
        .filter(|p| p.status == ParticipantStatus::Waiting)
        .collect();
    let addresses: Vec<_> = waiting
        .iter()
        .map(|p| state.door.entrant_address(p.id))
        .collect();
    let taking_part: Vec<&ParticipantRow> = people
        .iter()
        .filter(|p| p.status.takes_part() && p.role.is_some())
        .collect();
    let views = waiting
        .iter()
        .zip(&addresses)
        .map(|(p, address)| {
            let likeness = super::likeness(&p.name);
            WaitingView {
                participant: p.view(),
                came_by: CameBy::RoomCode,
                from_same_address: address.map(|address| {
                    addresses.iter().filter(|a| **a == Some(address)).count() as u32
                }),
                same_name_as: taking_part
                    .iter()
                    .find(|other| !likeness.is_empty() && super::likeness(&other.name) == likeness)
                    .map(|other| other.view()),
            }
        })
        .collect();
    Ok(Json(views))
}

async fn admit(
    State(state): State<AppState>,
    Path((_, pid)): Path<(Uuid, Uuid)>,
    chair: Chairing,
    JsonBody(body): JsonBody<Admit>,
) -> Result<Json<ParticipantView>, ApiError> {
    let id = chair.id();
    let p = waiting(&state, &chair, pid).await?;
    let role = role_for_invite(&body.role)?;
    let agency = agency(body.agency.as_deref())?;
    let event = chair.event(
        "participant_admitted",
        json!({ "participant": p.id, "role": role.as_str(), "agency": agency }),
    );
    state
        .storage
        .admit_participant(p.id, role, agency.as_deref(), &event)
        .await?;
    let admitted = Participant {
        id: p.id,
        name: p.name.clone(),
        role,
        agency: agency.clone(),
    };
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            doc::write_participant(txn, &admitted)
        })
        .await?;
    tracing::info!(conference = %id, participant = %p.id, role = role.as_str(), "admitted from the lobby");
    let mut row = p;
    row.status = ParticipantStatus::Admitted;
    row.role = Some(role);
    row.agency = agency;
    Ok(Json(row.view()))
}

async fn turn_away(
    State(state): State<AppState>,
    Path((_, pid)): Path<(Uuid, Uuid)>,
    chair: Chairing,
) -> Result<StatusCode, ApiError> {
    let id = chair.id();
    let p = waiting(&state, &chair, pid).await?;
    let event = chair.event("participant_turned_away", json!({ "participant": p.id }));
    state
        .storage
        .set_participant_status(p.id, ParticipantStatus::TurnedAway, None, &event)
        .await?;
    tracing::info!(conference = %id, participant = %p.id, "turned away from the lobby");
    Ok(StatusCode::NO_CONTENT)
}

/// Someone in the room types the code shown on the wall (or scans its QR code) and
/// their name; they wait in the lobby until the chair lets them in. Within the front
/// door's limits: room code guesses from one address and from everyone, entries
/// from one address, and the places one address may take in a lobby.
async fn enter_lobby(
    State(state): State<AppState>,
    address: ClientAddress,
    JsonBody(body): JsonBody<EnterLobby>,
) -> Result<Response, ApiError> {
    // The name first: a mistake in it costs no guess.
    let name = text("name", &body.name, 100)?;
    let code = roundtable_shared::api::tidy_room_code(&body.room_code);
    state
        .door
        .guess_room_code(address, body.conference.is_some())?;
    let conference = match body.conference {
        Some(id) => state
            .storage
            .conference(id)
            .await?
            .filter(|c| same_code(&c.room_code, &code)),
        None if code.is_empty() => None,
        None => state.storage.conference_by_room_code(&code).await?,
    };
    let Some(conference) = conference.filter(|c| c.phase != Phase::Closed) else {
        state.door.unknown_room_code(address);
        return Err(ApiError::NotFound(
            "no meeting has this code: please check the code on the screen",
        ));
    };
    let waiting: Vec<ParticipantId> = state
        .storage
        .participants(conference.id)
        .await?
        .iter()
        .filter(|p| p.status == ParticipantStatus::Waiting)
        .map(|p| p.id)
        .collect();
    state.door.lobby_place(address, &waiting)?;
    let row = ParticipantRow {
        id: ParticipantId(Uuid::new_v4()),
        conference_id: conference.id,
        name,
        role: None,
        agency: None,
        status: ParticipantStatus::Waiting,
        link_expires_at: None,
        chair_id: None,
    };
    let event = crate::storage::AuditEvent {
        conference: conference.id,
        actor: Some(row.id),
        action: "asked_to_join",
        detail: json!({ "name": row.name }),
    };
    state.storage.insert_participant(&row, None, &event).await?;
    state.door.entered(row.id, address);
    let token = auth::start_session(&state, SessionSubject::Participant(row.id)).await?;
    tracing::info!(conference = %conference.id, participant = %row.id, "waiting in the lobby");
    Ok((
        StatusCode::CREATED,
        [(
            header::SET_COOKIE,
            auth::set_session_cookie(&token, state.config.secure_cookies()),
        )],
        Json(Joined {
            conference_id: conference.id,
            participant: row.view(),
        }),
    )
        .into_response())
}

/// Whether a typed code is a conference's, compared in constant time (it is a
/// secret, and this comparison is the one an attacker who knows the conference can
/// time).
fn same_code(stored: &str, typed: &str) -> bool {
    let (stored, typed) = (stored.as_bytes(), typed.as_bytes());
    stored.len() == typed.len()
        && stored
            .iter()
            .zip(typed)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}
