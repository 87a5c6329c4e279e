//! The WebSocket sync endpoints: one per conference document.

use std::sync::Arc;

use crate::error::Path;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use roundtable_shared::ConferenceId;
use roundtable_shared::doc::DocumentKind;
use roundtable_shared::protocol;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::sync::peer::Peer;
use crate::sync::upgrade::WebSocketRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conferences/{id}/sync", get(shared))
        .route("/api/conferences/{id}/restricted/sync", get(restricted))
}

async fn shared(
    state: State<AppState>,
    headers: HeaderMap,
    path: Path<Uuid>,
    ws: WebSocketRequest,
) -> Result<Response, ApiError> {
    connect(state, headers, path, ws, DocumentKind::Shared).await
}

async fn restricted(
    state: State<AppState>,
    headers: HeaderMap,
    path: Path<Uuid>,
    ws: WebSocketRequest,
) -> Result<Response, ApiError> {
    connect(state, headers, path, ws, DocumentKind::Restricted).await
}

async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ws: WebSocketRequest,
    kind: DocumentKind,
) -> Result<Response, ApiError> {
    if !super::same_origin(&headers, &state.config) {
        return Err(ApiError::Forbidden);
    }
    let id = ConferenceId(id);
    let super::access::Participating {
        participant,
        role,
        expires_at,
        ..
    } = super::access::Participating::check(&state, &headers, id).await?;
    // The connection ends when the session or link it was opened with does.
    let ends = crate::auth::ends_at(expires_at);
    if !kind.readable_by(role) {
        return Err(ApiError::Forbidden);
    }
    let peer = Peer {
        participant: participant.id,
        name: participant.name.clone(),
        role,
    };
    let rooms = Arc::clone(&state.rooms);
    let limits = rooms.limits().clone();
    let participant_id = participant.id;
    Ok(ws.on_upgrade(&limits, move |socket| async move {
            match rooms.join((id, kind), peer).await {
                Ok(joined) => {
                    // The chair may have removed this participant since the check above;
                    // a removal after this point closes the connection through the room.
                    let still_in = matches!(
                        rooms.storage().participant(participant_id).await,
                        Ok(Some(p)) if p.status.takes_part()
                    );
                    if !still_in {
                        rooms.leave(&joined.room, joined.connection).await;
                        crate::sync::socket::refuse(socket, protocol::CLOSE_REMOVED, protocol::REMOVED).await;
                        return;
                    }
                    tracing::info!(conference = %id, participant = %participant_id, document = kind.as_str(), "connected");
                    // A task of its own, so that what joining needed is freed now and
                    // the connection holds only its loop for as long as it lasts.
                    tokio::spawn(async move {
                        crate::sync::socket::run(socket, rooms, joined, ends).await;
                        tracing::info!(conference = %id, participant = %participant_id, "disconnected");
                    });
                }
                Err(e) => {
                    tracing::error!(conference = %id, error = %e, "could not open the conference");
                    crate::sync::socket::refuse(socket, 1011, "the conference could not be opened").await;
                }
            }
        }))
}
