//! Signing in and out, and who am I.

use crate::error::JsonBody;
use axum::extract::State;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use roundtable_shared::ParticipantStatus;
use roundtable_shared::api::{ChairView, Joined, Me, Redeem, SignIn};

use crate::auth::{self, Caller};
use crate::door::{self, ClientAddress, SignInOutcome};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::SessionSubject;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/session", post(sign_in).delete(sign_out))
        .route("/api/me", get(me))
        .route("/api/join", post(redeem_link))
}

/// Signs a chair in, within the front door's limits (`door`): an address or account
/// that has had too many wrong passwords waits before its next try, password checks
/// queue on threads of their own, and the account's owner is told of wrong passwords
/// in its account events.
async fn sign_in(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    let email = body.email.trim();
    let slot = state.door.enter_sign_in(address)?;
    let chair = state.storage.chair_by_email(email).await?;
    let known_browser = chair
        .as_ref()
        .is_some_and(|chair| door::known::is_known(&headers, chair));
    let stored = chair.as_ref().map(|c| Arc::from(c.password_hash.as_str()));
    let outcome = state
        .door
        .check_password(slot, address, email, known_browser, body.password, stored)
        .await?;
    let chair = match (chair, outcome) {
        (Some(chair), SignInOutcome::Right) => chair,
        (chair, SignInOutcome::Wrong { failures }) => {
            if let Some(chair) = chair
                && state.door.worth_telling(failures)
            {
                let detail = serde_json::json!({
                    "in_a_row": failures,
                    "last_from": address.0.to_string(),
                });
                state
                    .storage
                    .record_account_event(chair.id, "wrong_passwords", &detail)
                    .await?;
            }
            return Err(ApiError::WrongCredentials);
        }
        (None, SignInOutcome::Right) => return Err(ApiError::WrongCredentials),
    };
    let token = auth::start_session(&state, SessionSubject::Chair(chair.id)).await?;
    let detail =
        serde_json::json!({ "from": address.0.to_string(), "known_browser": known_browser });
    state
        .storage
        .record_account_event(chair.id, "signed_in", &detail)
        .await?;
    tracing::info!(chair = %chair.id, "chair signed in");
    let secure = state.config.secure_cookies();
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    for cookie in [
        auth::set_session_cookie(&token, secure),
        door::known::cookie_for(&chair, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(cookie) = auth::session_cookie(&headers) {
        state
            .storage
            .delete_session(&auth::token_hash(cookie))
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            auth::clear_session_cookie(state.config.secure_cookies()),
        )],
    )
        .into_response())
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    match auth::caller(&state, &headers).await? {
        Caller::Chair(id) => {
            let chair = state
                .storage
                .chair(id)
                .await?
                .ok_or(ApiError::SignInNeeded)?;
            Ok(Json(Me::Chair(ChairView {
                id: chair.id,
                name: chair.name,
                email: chair.email,
            })))
        }
        Caller::Participant(id) => {
            let p = state
                .storage
                .participant(id)
                .await?
                .ok_or(ApiError::SignInNeeded)?;
            Ok(Json(Me::Participant {
                participant: p.view(),
                conference_id: p.conference_id,
                admitted: p.status.takes_part(),
            }))
        }
    }
}

/// Opens a personal join link: the browser gets the participant's session.
async fn redeem_link(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Redeem>,
) -> Result<Response, ApiError> {
    let mut participant = auth::participant_by_link(&state, &body.token).await?;
    if participant.status == ParticipantStatus::Invited {
        let event = crate::storage::AuditEvent {
            conference: participant.conference_id,
            actor: Some(participant.id),
            action: "joined_by_link",
            detail: serde_json::json!({}),
        };
        state
            .storage
            .set_participant_status(participant.id, ParticipantStatus::Admitted, None, &event)
            .await?;
        participant.status = ParticipantStatus::Admitted;
    }
    let token = auth::start_session(&state, SessionSubject::Participant(participant.id)).await?;
    tracing::info!(participant = %participant.id, "join link opened");
    let body = Joined {
        conference_id: participant.conference_id,
        participant: participant.view(),
    };
    Ok((
        StatusCode::OK,
        [(
            header::SET_COOKIE,
            auth::set_session_cookie(&token, state.config.secure_cookies()),
        )],
        Json(body),
    )
        .into_response())
}
