//! The HTTP JSON calls only the full app makes (signing in, running a
//! conference). The transport, errors and the calls the phone pages make live in
//! `roundtable_phone::http`, which this module re-exports.

use serde::{Deserialize, Serialize};

pub use roundtable_phone::http::*;

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

#[derive(Serialize)]
struct SignInBody<'a> {
    email: &'a str,
    password: &'a str,
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
    /// For a review conference: the id of the conference it reviews.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_conference: Option<String>,
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

/// `POST /api/conferences/{id}/scales`: opens a safety scale. `subject` and
/// `wording` are as `docs/api.md` describes them.
pub async fn open_scale(
    id: &str,
    subject: serde_json::Value,
    wording: &roundtable_shared::scale::ScaleWording,
) -> Result<(), ApiError> {
    let body = to_json(&serde_json::json!({ "subject": subject, "wording": wording }))?;
    send("POST", &format!("/api/conferences/{id}/scales"), Some(body))
        .await
        .map(drop)
}

/// `POST /api/conferences/{id}/scales/{scale}/close` or `…/reveal`.
pub async fn move_scale_on(id: &str, scale: &str, to: &str) -> Result<(), ApiError> {
    send(
        "POST",
        &format!("/api/conferences/{id}/scales/{scale}/{to}"),
        None,
    )
    .await
    .map(drop)
}

/// `PUT /api/conferences/{id}/scales/{scale}/votes/{participant}`: the chair enters
/// a score for someone without a phone.
pub async fn score_for(
    id: &str,
    scale: &str,
    participant: &str,
    score: u8,
    reason: &str,
) -> Result<(), ApiError> {
    let body = to_json(&serde_json::json!({ "score": score, "reason": reason }))?;
    send(
        "PUT",
        &format!("/api/conferences/{id}/scales/{scale}/votes/{participant}"),
        Some(body),
    )
    .await
    .map(drop)
}

/// `PUT /api/conferences/{id}/decisions/{child}`: the decision for one child.
pub async fn record_decision(
    id: &str,
    child: &str,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    send(
        "PUT",
        &format!("/api/conferences/{id}/decisions/{child}"),
        Some(to_json(body)?),
    )
    .await
    .map(drop)
}

/// `PUT /api/conferences/{id}/attendance/{pid}`: present, apologies or absent.
pub async fn set_attendance(id: &str, pid: &str, status: &str) -> Result<(), ApiError> {
    let body = to_json(&serde_json::json!({ "status": status }))?;
    send(
        "PUT",
        &format!("/api/conferences/{id}/attendance/{pid}"),
        Some(body),
    )
    .await
    .map(drop)
}

/// `PUT /api/conferences/{id}/next-meetings`.
pub async fn set_next_meetings(
    id: &str,
    core_group_by: &str,
    review_by: &str,
) -> Result<(), ApiError> {
    let body =
        to_json(&serde_json::json!({ "core_group_by": core_group_by, "review_by": review_by }))?;
    send(
        "PUT",
        &format!("/api/conferences/{id}/next-meetings"),
        Some(body),
    )
    .await
    .map(drop)
}

/// `POST /api/conferences/{id}/close`.
pub async fn close_conference(id: &str) -> Result<(), ApiError> {
    send("POST", &format!("/api/conferences/{id}/close"), None)
        .await
        .map(drop)
}

/// `POST /api/conferences/{id}/reopen`.
pub async fn reopen_conference(id: &str) -> Result<(), ApiError> {
    send("POST", &format!("/api/conferences/{id}/reopen"), None)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_conference_kind_still_reads() {
        let list: Vec<ConferenceSummary> = serde_json::from_str(
            r#"[{"id":"k1","title":"A","kind":"transfer_in",
                 "scheduled_start":"2025-06-03T10:00:00Z","phase":"pre_meet","room_code":"ABC234"}]"#,
        )
        .unwrap();
        assert_eq!(list[0].kind, ConferenceKind::Other);
    }
}
