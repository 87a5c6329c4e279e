//! The HTTP JSON API. Each module exposes `router()`; see `docs/api.md`.

mod conferences;
mod people;
mod record;
mod scales;
mod session;
mod sync;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(conferences::router())
        .merge(people::router())
        .merge(scales::router())
        .merge(record::router())
        .merge(sync::router())
        .route("/api/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn(refuse_other_sites))
}

/// Whether a request comes from this site, as far as the browser that sent it says.
/// Browsers send `Origin` with every WebSocket and with every request that changes
/// something, and `Sec-Fetch-Site` with every request (those that have it); a page can
/// set neither. Another site's page must not be able to use a visitor's cookie.
pub(crate) fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    use axum::http::header;
    // `same-site` is another origin of this site, such as a neighbouring subdomain:
    // refused as its `Origin` would be. `none` is the person's own doing (the address
    // bar, a bookmark).
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"))
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // Not a browser: authenticated by bearer token or cookie it holds.
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// Refuses a command sent from another site's page. The session cookie is already
/// `SameSite=Strict`; this holds even for a browser that does not honour it.
async fn refuse_other_sites(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if reads || same_origin(request.headers()) {
        next.run(request).await
    } else {
        crate::error::ApiError::Forbidden.into_response()
    }
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound("there is nothing at this address")
}

/// Checks a piece of free text a person typed: trimmed, not empty, not too long.
pub(crate) fn text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, crate::error::ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(crate::error::ApiError::Invalid(format!(
            "{field} is missing"
        )));
    }
    if value.chars().count() > max_chars {
        return Err(crate::error::ApiError::Invalid(format!(
            "{field} is too long (at most {max_chars} characters)"
        )));
    }
    Ok(value.to_owned())
}

/// What every command that would change a closed conference answers.
pub(crate) const CLOSED: &str = "this conference is closed: the chair can reopen it";

/// Refuses a change to a closed conference (409).
pub(crate) fn not_closed(
    conference: &crate::storage::ConferenceRow,
) -> Result<(), crate::error::ApiError> {
    match conference.closed_at {
        Some(_) => Err(crate::error::ApiError::Conflict(CLOSED.into())),
        None => Ok(()),
    }
}

/// Someone taking part in a conference, as the server knows them.
pub(crate) struct Member {
    pub participant: crate::storage::ParticipantRow,
    pub role: roundtable_shared::Role,
    pub conference: crate::storage::ConferenceRow,
    /// When the session or link the caller used stops working (Unix ms).
    pub expires_at: Option<i64>,
}

/// The caller's place in `conference`: the chair (through their participant row) or an
/// invited or admitted participant. Anyone else is refused with the reason.
pub(crate) async fn member_of(
    state: &crate::state::AppState,
    headers: &axum::http::HeaderMap,
    conference: roundtable_shared::ConferenceId,
) -> Result<Member, crate::error::ApiError> {
    use crate::auth::Caller;
    use crate::error::ApiError;
    // Who is calling is checked first, as for every command: someone without a valid
    // session or link is not told whether the conference exists.
    let (caller, expires_at) = crate::auth::credential(state, headers).await?;
    let row = state
        .storage
        .conference(conference)
        .await?
        .ok_or(ApiError::NotFound("there is no such conference"))?;
    let participant = match caller {
        Caller::Chair(chair) if chair == row.chair_id => state
            .storage
            .chair_participant(conference, chair)
            .await?
            .ok_or(ApiError::Forbidden)?,
        Caller::Chair(_) => return Err(ApiError::Forbidden),
        Caller::Participant(pid) => {
            let p = state
                .storage
                .participant(pid)
                .await?
                .ok_or(ApiError::SignInNeeded)?;
            if p.conference_id != conference {
                return Err(ApiError::Forbidden);
            }
            p
        }
    };
    match participant.status.as_str() {
        "invited" | "admitted" => {}
        "waiting" => return Err(ApiError::StillWaiting),
        _ => return Err(ApiError::Removed),
    }
    let role = participant
        .role
        .as_deref()
        .and_then(roundtable_shared::Role::parse)
        .ok_or(ApiError::StillWaiting)?;
    Ok(Member {
        participant,
        role,
        conference: row,
        expires_at,
    })
}

/// An audit event done by the chair of `conference`.
pub(crate) async fn chair_event(
    state: &crate::state::AppState,
    conference: roundtable_shared::ConferenceId,
    action: &'static str,
    detail: serde_json::Value,
) -> Result<crate::storage::AuditEvent, crate::error::ApiError> {
    let chair = match state.storage.conference(conference).await? {
        Some(row) => {
            state
                .storage
                .chair_participant(conference, row.chair_id)
                .await?
        }
        None => None,
    };
    Ok(crate::storage::AuditEvent {
        conference,
        actor: chair.map(|p| p.id),
        action,
        detail,
    })
}
