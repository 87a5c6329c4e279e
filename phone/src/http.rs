//! Talking to the Roundtable server over HTTP: the transport both apps share, and
//! the calls the phone pages make.
//!
//! Every request goes to the same origin the page came from and sends the
//! session cookie with `credentials: same-origin`; the server sets and clears
//! that cookie itself, so the app never sees or stores a secret.
//!
//! Errors are turned into [`ApiError`], whose `Display` is a sentence a
//! person can read on screen. Detail that would only help a developer goes to
//! the browser console instead.

use std::fmt;

use roundtable_shared::api::{EnterLobby, Problem, Redeem};
use serde::{Serialize, de::DeserializeOwned};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

pub use roundtable_shared::api::{ChairView, Joined, Me, ParticipantView};

/// Why a call did not give the answer we hoped for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request never got an answer: no network, or the server is down.
    Unreachable,
    /// The server answered with an error status. `message` is the server's
    /// own plain-English `{"error": "…"}` if it sent one.
    Refused {
        status: u16,
        message: Option<String>,
    },
    /// The server answered, but not in the shape this app understands.
    UnexpectedAnswer,
}

impl ApiError {
    /// True when the server said "you are not signed in".
    pub fn is_unauthorised(&self) -> bool {
        matches!(self, ApiError::Refused { status: 401, .. })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable => f.write_str(
                "We could not reach Roundtable. Check that you are connected to the internet, \
                 then try again.",
            ),
            ApiError::Refused {
                message: Some(message),
                ..
            } => f.write_str(message),
            ApiError::Refused { status: 429, .. } => {
                f.write_str("Too many tries in a short time. Please wait a minute, then try again.")
            }
            ApiError::Refused { .. } | ApiError::UnexpectedAnswer => f.write_str(
                "Roundtable is not working properly just now. Please try again in a few minutes.",
            ),
        }
    }
}

/// `GET /api/me`: who is signed in on this browser, if anyone.
/// Returns `Ok(None)` when nobody is (401).
pub async fn me() -> Result<Option<Me>, ApiError> {
    match send("GET", "/api/me", None).await {
        Ok(answer) => parse(&answer).map(Some),
        Err(error) if error.is_unauthorised() => Ok(None),
        Err(error) => Err(error),
    }
}

/// `POST /api/join`: exchanges a personal join link's token for a session.
pub async fn join(token: &str) -> Result<Joined, ApiError> {
    let body = to_json(&Redeem {
        token: token.to_owned(),
    })?;
    let answer = send("POST", "/api/join", Some(body)).await?;
    parse(&answer)
}

/// `POST /api/lobby`: asks to join the meeting with the code on the screen.
/// `conference` is the one the QR code's address names, if the person came by it.
pub async fn enter_lobby(
    room_code: &str,
    name: &str,
    conference: Option<roundtable_shared::ConferenceId>,
) -> Result<Joined, ApiError> {
    let body = to_json(&EnterLobby {
        room_code: room_code.to_owned(),
        name: name.to_owned(),
        conference,
    })?;
    let answer = send("POST", "/api/lobby", Some(body)).await?;
    parse(&answer)
}

pub fn to_json(body: &impl Serialize) -> Result<String, ApiError> {
    serde_json::to_string(body).map_err(|_| ApiError::UnexpectedAnswer)
}

pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|error| {
        web_sys::console::error_1(&format!("Roundtable: unexpected answer: {error}").into());
        ApiError::UnexpectedAnswer
    })
}

/// Sends one request and returns the body of a successful (2xx) answer.
pub async fn send(method: &str, path: &str, json_body: Option<String>) -> Result<String, ApiError> {
    let response = fetch(method, path, json_body).await.map_err(|error| {
        web_sys::console::error_2(
            &format!("Roundtable: {method} {path} failed:").into(),
            &error,
        );
        ApiError::Unreachable
    })?;
    let status = response.status();
    // A body we cannot read is treated as empty: the status still tells us
    // whether the call worked.
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|text| text.as_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        let message = serde_json::from_str::<Problem>(&text)
            .ok()
            .map(|body| body.error)
            .filter(|message| !message.trim().is_empty());
        Err(ApiError::Refused { status, message })
    }
}

async fn fetch(method: &str, path: &str, json_body: Option<String>) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    headers.set("Accept", "application/json")?;
    let init = RequestInit::new();
    init.set_method(method);
    // The session cookie is same-origin only; never send it anywhere else.
    init.set_credentials(RequestCredentials::SameOrigin);
    if let Some(body) = json_body {
        headers.set("Content-Type", "application/json")?;
        init.set_body(&JsValue::from_str(&body));
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(path, &init)?;
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let answer = JsFuture::from(window.fetch_with_request(&request)).await?;
    answer.dyn_into::<Response>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_message_is_shown() {
        let error = ApiError::Refused {
            status: 401,
            message: Some("That email and password do not match.".into()),
        };
        assert_eq!(error.to_string(), "That email and password do not match.");
        assert!(error.is_unauthorised());
    }
}
