//! The HTTP JSON API. Each module exposes `router()`; see `docs/api.md`.

mod access;
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
