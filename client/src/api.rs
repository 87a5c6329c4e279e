//! The few HTTP JSON calls the app makes to the Roundtable server.
//!
//! Every request goes to the same origin the page came from and sends the
//! session cookie with `credentials: same-origin`; the server sets and clears
//! that cookie itself, so the app never sees or stores a secret.
//!
//! Errors are turned into [`ApiError`], whose `Display` is a sentence a
//! person can read on screen. Detail that would only help a developer goes to
//! the browser console instead.

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

/// A signed-in chair, as `GET /api/me` describes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Chair {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// A participant in a conference, as `GET /api/me`, `POST /api/join`, the lobby
/// and the chair's list of people describe them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Participant {
    pub id: String,
    pub name: String,
    /// `None` while waiting in the lobby.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub agency: Option<String>,
    /// `invited`, `admitted`, `waiting`, `turned_away` or `removed`.
    pub status: String,
}

/// Who the server says this browser belongs to (`GET /api/me`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Me {
    Chair(Chair),
    Participant {
        #[serde(flatten)]
        participant: Participant,
        conference_id: String,
        /// False while the person waits in the lobby for the chair to let
        /// them in (people who join from the room's QR code).
        #[serde(default = "admitted_by_default")]
        admitted: bool,
    },
}

fn admitted_by_default() -> bool {
    true
}

/// The kinds of conference the council holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConferenceKind {
    Initial,
    Review,
    PreBirth,
    /// A kind this version of the app does not know yet; newer servers may
    /// send one, and the list should still show.
    #[serde(other)]
    Other,
}

/// One line of `GET /api/conferences`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConferenceSummary {
    pub id: String,
    pub title: String,
    pub kind: ConferenceKind,
    /// RFC 3339, as sent by the server.
    pub scheduled_start: String,
    pub phase: String,
    pub room_code: String,
}

/// The answer to `POST /api/join`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Joined {
    pub conference_id: String,
    pub participant: Participant,
}

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

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Serialize)]
struct SignInBody<'a> {
    email: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
struct JoinBody<'a> {
    token: &'a str,
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

/// `POST /api/session`: signs a chair in. The server sets the session cookie.
pub async fn sign_in(email: &str, password: &str) -> Result<(), ApiError> {
    let body = to_json(&SignInBody { email, password })?;
    send("POST", "/api/session", Some(body)).await.map(drop)
}

/// `DELETE /api/session`: signs out. The server clears the session cookie.
pub async fn sign_out() -> Result<(), ApiError> {
    send("DELETE", "/api/session", None).await.map(drop)
}

/// `GET /api/conferences`: the signed-in chair's conferences.
pub async fn conferences() -> Result<Vec<ConferenceSummary>, ApiError> {
    let answer = send("GET", "/api/conferences", None).await?;
    parse(&answer)
}

/// `POST /api/join`: exchanges a personal join link's token for a session.
pub async fn join(token: &str) -> Result<Joined, ApiError> {
    let body = to_json(&JoinBody { token })?;
    let answer = send("POST", "/api/join", Some(body)).await?;
    parse(&answer)
}

/// Your own place in a conference, as `GET /api/conferences/{id}` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct You {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// `GET /api/conferences/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Conference {
    pub id: String,
    pub title: String,
    pub phase: String,
    pub room_code: String,
    pub you: You,
    /// Everyone, for the chair only.
    #[serde(default)]
    pub participants: Option<Vec<Participant>>,
}

/// Someone invited, with their personal link (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Invited {
    pub participant: Participant,
    pub join_link: String,
}

/// The answer to `POST /api/conferences`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Created {
    pub conference: ConferenceSummary,
    pub participants: Vec<Invited>,
}

/// A new conference, as the chair's form fills it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewConference {
    pub title: String,
    pub kind: String,
    pub scheduled_start: String,
    pub children: Vec<NewChild>,
    pub headings_template: String,
    pub participants: Vec<NewParticipant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewChild {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewParticipant {
    pub name: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
}

/// `GET /api/conferences/{id}`: the conference and your place in it.
pub async fn conference(id: &str) -> Result<Conference, ApiError> {
    let answer = send("GET", &format!("/api/conferences/{id}"), None).await?;
    parse(&answer)
}

/// `POST /api/conferences`: creates a conference and invites people.
pub async fn create_conference(new: &NewConference) -> Result<Created, ApiError> {
    let answer = send("POST", "/api/conferences", Some(to_json(new)?)).await?;
    parse(&answer)
}

/// `POST /api/conferences/{id}/phase`.
pub async fn set_phase(id: &str, phase: &str) -> Result<(), ApiError> {
    let body = to_json(&serde_json::json!({ "phase": phase }))?;
    send("POST", &format!("/api/conferences/{id}/phase"), Some(body))
        .await
        .map(drop)
}

/// `GET /api/conferences/{id}/lobby`: who is waiting to be let in.
pub async fn lobby(id: &str) -> Result<Vec<Participant>, ApiError> {
    let answer = send("GET", &format!("/api/conferences/{id}/lobby"), None).await?;
    parse(&answer)
}

/// `POST /api/conferences/{id}/lobby/{pid}/admit`.
pub async fn admit(id: &str, pid: &str, role: &str) -> Result<(), ApiError> {
    let body = to_json(&serde_json::json!({ "role": role }))?;
    send(
        "POST",
        &format!("/api/conferences/{id}/lobby/{pid}/admit"),
        Some(body),
    )
    .await
    .map(drop)
}

/// `POST /api/conferences/{id}/lobby/{pid}/turn-away`.
pub async fn turn_away(id: &str, pid: &str) -> Result<(), ApiError> {
    send(
        "POST",
        &format!("/api/conferences/{id}/lobby/{pid}/turn-away"),
        None,
    )
    .await
    .map(drop)
}

/// `POST /api/conferences/{id}/participants`: invites one more person.
pub async fn invite(id: &str, person: &NewParticipant) -> Result<Invited, ApiError> {
    let answer = send(
        "POST",
        &format!("/api/conferences/{id}/participants"),
        Some(to_json(person)?),
    )
    .await?;
    parse(&answer)
}

/// `POST /api/conferences/{id}/participants/{pid}/link`: a new personal link.
pub async fn new_link(id: &str, pid: &str) -> Result<Invited, ApiError> {
    let answer = send(
        "POST",
        &format!("/api/conferences/{id}/participants/{pid}/link"),
        None,
    )
    .await?;
    parse(&answer)
}

/// `POST /api/lobby`: asks to join the meeting with the code on the screen.
pub async fn enter_lobby(room_code: &str, name: &str) -> Result<Joined, ApiError> {
    let body = to_json(&serde_json::json!({ "room_code": room_code, "name": name }))?;
    let answer = send("POST", "/api/lobby", Some(body)).await?;
    parse(&answer)
}

fn to_json(body: &impl Serialize) -> Result<String, ApiError> {
    serde_json::to_string(body).map_err(|_| ApiError::UnexpectedAnswer)
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|error| {
        web_sys::console::error_1(&format!("Roundtable: unexpected answer: {error}").into());
        ApiError::UnexpectedAnswer
    })
}

/// Sends one request and returns the body of a successful (2xx) answer.
async fn send(method: &str, path: &str, json_body: Option<String>) -> Result<String, ApiError> {
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
        let message = serde_json::from_str::<ErrorBody>(&text)
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
    fn a_chair_is_read_from_me() {
        let me: Me = serde_json::from_str(
            r#"{"kind":"chair","id":"c1","name":"Sam Okafor","email":"sam@example.org"}"#,
        )
        .unwrap();
        assert_eq!(
            me,
            Me::Chair(Chair {
                id: "c1".into(),
                name: "Sam Okafor".into(),
                email: "sam@example.org".into(),
            })
        );
    }

    #[test]
    fn a_participant_is_read_from_me() {
        let me: Me = serde_json::from_str(
            r#"{"kind":"participant","id":"p1","name":"Jo","role":"parent",
                "conference_id":"k1","status":"waiting","admitted":false}"#,
        )
        .unwrap();
        let Me::Participant {
            participant,
            conference_id,
            admitted,
        } = me
        else {
            panic!("expected a participant");
        };
        assert_eq!(participant.name, "Jo");
        assert_eq!(participant.agency, None);
        assert_eq!(conference_id, "k1");
        assert!(!admitted);
    }

    #[test]
    fn an_unknown_conference_kind_still_reads() {
        let list: Vec<ConferenceSummary> = serde_json::from_str(
            r#"[{"id":"k1","title":"A","kind":"transfer_in",
                 "scheduled_start":"2025-06-03T10:00:00Z","phase":"pre_meet","room_code":"ABC234"}]"#,
        )
        .unwrap();
        assert_eq!(list[0].kind, ConferenceKind::Other);
    }

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
