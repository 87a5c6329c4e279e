//! A browser that has signed in to an account keeps a cookie saying so (`rt_known`),
//! and its sign-ins are counted apart from everyone else's: so a stranger trying
//! passwords against a chair's account makes the stranger wait, not the chair on
//! their own laptop. (The usual "device cookie" against account lockout.)
//!
//! The cookie is `<chair id>.<expiry, Unix ms>.<tag>`, the tag an HMAC-SHA256 of the
//! first two under a key made from the account's stored password hash: nothing more
//! is stored, only this server can make one, and changing the password ends them all.
//! It proves only that this browser signed in before; it opens nothing by itself.

use axum::http::HeaderMap;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::storage::ChairRow;

pub const KNOWN_COOKIE: &str = "rt_known";

/// How long a browser is remembered after it signs in.
pub const KNOWN_LIFETIME_MS: i64 = 90 * 24 * 60 * 60 * 1000;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The MAC over a cookie's chair and expiry, keyed by the account's password hash.
fn mac(chair: &ChairRow, expires_at: i64) -> HmacSha256 {
    let key = Sha256::new()
        .chain_update(b"roundtable known browser\0")
        .chain_update(chair.password_hash.as_bytes())
        .finalize();
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{}.{expires_at}", chair.id).as_bytes());
    mac
}

/// The cookie to set for a browser that just signed in to `chair`'s account.
pub fn cookie_for(chair: &ChairRow, secure: bool) -> String {
    let expires_at = crate::storage::now_ms() + KNOWN_LIFETIME_MS;
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(chair, expires_at).finalize().into_bytes());
    let max_age = KNOWN_LIFETIME_MS / 1000;
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{KNOWN_COOKIE}={}.{expires_at}.{tag}; Path=/api/session; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        chair.id
    )
}

/// Whether the request comes from a browser that signed in to `chair`'s account.
pub fn is_known(headers: &HeaderMap, chair: &ChairRow) -> bool {
    let values = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == KNOWN_COOKIE)
        .map(|(_, value)| value);
    values.into_iter().any(|value| {
        let mut parts = value.splitn(3, '.');
        let (Some(id), Some(expires), Some(given)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(expires_at) = expires.parse::<i64>() else {
            return false;
        };
        let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given) else {
            return false;
        };
        if id != chair.id.to_string() || expires_at <= crate::storage::now_ms() {
            return false;
        }
        // Compared in constant time.
        mac(chair, expires_at).verify_slice(&given).is_ok()
    })
}
