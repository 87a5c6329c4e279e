//! Passwords, tokens, sessions and who is calling.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, header};
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::SessionSubject;
use roundtable_shared::{ChairId, ParticipantId};

pub const SESSION_COOKIE: &str = "rt_session";
/// How long a browser session lasts.
pub const SESSION_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;
/// How long a personal join link stays valid.
pub const LINK_LIFETIME_MS: i64 = 30 * 24 * 60 * 60 * 1000;

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new random token: 32 bytes, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens are stored only as this hash. They are long and random, so a fast hash is
/// enough: there is nothing to guess.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn set_session_cookie(token: &str, secure: bool) -> String {
    let max_age = SESSION_LIFETIME_MS / 1000;
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

pub fn clear_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Who is making a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Chair(ChairId),
    Participant(ParticipantId),
}

/// Identifies the caller from the session cookie or, for non-browser clients, a
/// bearer token: a participant's join link token.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    Ok(credential(state, headers).await?.0)
}

/// The caller, and when what they called with stops working (Unix ms; `None` for a
/// join link that does not expire).
pub async fn credential(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Caller, Option<i64>), ApiError> {
    if let Some(cookie) = session_cookie(headers)
        && let Some((subject, expires_at)) = state.storage.session(&token_hash(cookie)).await?
    {
        let caller = match subject {
            SessionSubject::Chair(id) => Caller::Chair(id),
            SessionSubject::Participant(id) => Caller::Participant(id),
        };
        return Ok((caller, Some(expires_at)));
    }
    if let Some(token) = bearer_token(headers) {
        let participant = participant_by_link(state, token).await?;
        return Ok((
            Caller::Participant(participant.id),
            participant.link_expires_at,
        ));
    }
    Err(ApiError::SignInNeeded)
}

/// When a credential that stops working at `expires_at` (Unix ms) does, on the
/// runtime's clock.
pub fn ends_at(expires_at: Option<i64>) -> Option<tokio::time::Instant> {
    expires_at.map(|at| {
        let left = u64::try_from(at - crate::storage::now_ms()).unwrap_or(0);
        tokio::time::Instant::now() + std::time::Duration::from_millis(left)
    })
}

/// Waits until `ends`; for ever if it is `None`.
pub async fn expired(ends: Option<tokio::time::Instant>) {
    match ends {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The participant a join token belongs to, if the link is still valid.
pub async fn participant_by_link(
    state: &AppState,
    token: &str,
) -> Result<crate::storage::ParticipantRow, ApiError> {
    let participant = state
        .storage
        .participant_by_link(&token_hash(token.trim()))
        .await?
        .ok_or(ApiError::LinkNotValid)?;
    if participant
        .link_expires_at
        .is_some_and(|t| t <= crate::storage::now_ms())
    {
        return Err(ApiError::LinkNotValid);
    }
    Ok(participant)
}

/// Starts a session for `subject`; returns the cookie value to set.
pub async fn start_session(state: &AppState, subject: SessionSubject) -> Result<String, ApiError> {
    let token = new_token();
    let expires = crate::storage::now_ms() + SESSION_LIFETIME_MS;
    state
        .storage
        .insert_session(&token_hash(&token), subject, expires)
        .await?;
    Ok(token)
}
