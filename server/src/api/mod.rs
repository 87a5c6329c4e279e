//! The HTTP JSON API. Each module exposes `router()`; see `docs/api.md`.

mod conferences;
mod people;
mod session;
mod sync;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(conferences::router())
        .merge(people::router())
        .merge(sync::router())
        .route("/api/{*rest}", axum::routing::any(not_found))
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
