//! The HTTP JSON API. Each module exposes `router()`; see `docs/api.md`.

mod access;
mod account;
mod conferences;
mod people;
mod record;
mod scales;
mod session;
mod sync;

use axum::Router;

use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(account::router())
        .merge(conferences::router())
        .merge(people::router())
        .merge(scales::router())
        .merge(record::router())
        .merge(sync::router())
        .route("/api/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_other_sites,
        ))
}

/// Whether a request comes from this site, as far as the browser that sent it says.
/// Browsers send `Origin` with every WebSocket and with every request that changes
/// something, and `Sec-Fetch-Site` with every request (those that have it); a page can
/// set neither. Another site's page must not be able to use a visitor's cookie.
///
/// This site's origin is the public URL's scheme, host and port when one is
/// configured; else `http://` and the request's `Host` (the server itself speaks
/// only plain HTTP, so an `https://` origin is another site's, or a proxy nobody
/// told the server about).
pub(crate) fn same_origin(headers: &axum::http::HeaderMap, config: &crate::Config) -> bool {
    use crate::config::Origin;
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
    let ours = config.origin().or_else(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok())?;
        Origin::of_host("http", host)
    });
    matches!((Origin::parse(origin), ours), (Some(theirs), Some(ours)) if theirs == ours)
}

/// Refuses a command sent from another site's page. The session cookie is already
/// `SameSite=Strict`; this holds even for a browser that does not honour it.
async fn refuse_other_sites(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if reads || same_origin(request.headers(), &state.config) {
        next.run(request).await
    } else {
        crate::error::ApiError::Forbidden.into_response()
    }
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::NotFound("there is nothing at this address")
}

/// Checks a piece of free text a person typed (a name, an agency, a title):
/// normalised (NFC), trimmed, not empty, not too long, and on one line without
/// control characters or the characters that change the direction of text around
/// them (a name that ends with a right-to-left override turns what follows it
/// around wherever it is shown).
pub(crate) fn text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, crate::error::ApiError> {
    use unicode_normalization::UnicodeNormalization;
    let value: String = value.nfc().collect();
    let value = value.trim();
    if let Some(c) = value.chars().find(|c| not_in_a_name(*c)) {
        let what = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            "control characters or line breaks"
        } else {
            "characters that change the direction of the text"
        };
        return Err(crate::error::ApiError::Invalid(format!(
            "{field} must not hold {what} (U+{:04X})",
            u32::from(c)
        )));
    }
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

/// A chair's name, as `roundtable chair add` is given it: checked as every name is.
pub fn name(field: &str, value: &str) -> Result<String, crate::error::ApiError> {
    text(field, value, 100)
}

/// A name as compared with another's, to flag someone who may be posing as a person
/// invited: compatibility-normalised (NFKC), in lower case, letters and digits only.
pub(crate) fn likeness(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Control characters (NUL, escape, tabs and new lines…), line and paragraph
/// separators, and the bidirectional marks, embeddings, overrides and isolates.
pub fn not_in_a_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{061C}' | '\u{200E}' | '\u{200F}' // the Arabic letter mark, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2066}'..='\u{2069}' // isolates
        )
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
