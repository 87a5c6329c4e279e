//! Signing in and out, and who am I.

use crate::error::JsonBody;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use roundtable_shared::ParticipantStatus;
use roundtable_shared::api::{ChairView, Joined, Me, Redeem, SignIn};

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::SessionSubject;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/session", post(sign_in).delete(sign_out))
        .route("/api/me", get(me))
        .route("/api/join", post(redeem_link))
}

async fn sign_in(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    let chair = state.storage.chair_by_email(body.email.trim()).await?;
    // Verify against a real hash even for an unknown email, so timing does not tell
    // which emails have accounts.
    let stored = chair
        .as_ref()
        .map_or(DUMMY_HASH.as_str(), |c| c.password_hash.as_str());
    let password = body.password;
    let stored_owned = stored.to_owned();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored_owned))
        .await
        .unwrap_or(false);
    let chair = match chair {
        Some(chair) if ok => chair,
        _ => return Err(ApiError::WrongCredentials),
    };
    let token = auth::start_session(&state, SessionSubject::Chair(chair.id)).await?;
    tracing::info!(chair = %chair.id, "chair signed in");
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            auth::set_session_cookie(&token, state.config.secure_cookies()),
        )],
    )
        .into_response())
}

/// An argon2id hash of a random password nobody knows.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| auth::hash_password(&auth::new_token()).unwrap_or_default());

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
