//! The HTTP JSON calls only the full app makes (signing in, running a
//! conference). The transport, errors and the calls the phone pages make live in
//! `roundtable_phone::http`, which this module re-exports.

pub use roundtable_phone::http::*;

use roundtable_shared::api::{
    Admit, GiveScore, OpenScale, RecordAttendance, RecordDecision, SetNextMeetings, SetPhase,
    SignIn,
};
pub use roundtable_shared::api::{
    ConferenceDetail as Conference, ConferenceView as ConferenceSummary, Created, Invited,
    NewChild, NewConference, NewParticipant, ParticipantView as Participant,
    WaitingView as Waiting,
};

/// `POST /api/session`: signs a chair in. The server sets the session cookie.
pub async fn sign_in(email: &str, password: &str) -> Result<(), ApiError> {
    let body = to_json(&SignIn {
        email: email.to_owned(),
        password: password.to_owned(),
    })?;
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
    let body = to_json(&SetPhase {
        phase: phase.to_owned(),
    })?;
    send("POST", &format!("/api/conferences/{id}/phase"), Some(body))
        .await
        .map(drop)
}

/// `GET /api/conferences/{id}/lobby`: who is waiting to be let in.
pub async fn lobby(id: &str) -> Result<Vec<Waiting>, ApiError> {
    let answer = send("GET", &format!("/api/conferences/{id}/lobby"), None).await?;
    parse(&answer)
}

/// `POST /api/conferences/{id}/lobby/{pid}/admit`.
pub async fn admit(id: &str, pid: &str, role: &str) -> Result<(), ApiError> {
    let body = to_json(&Admit {
        role: role.to_owned(),
        agency: None,
    })?;
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
    subject: roundtable_shared::scale::ScaleSubject,
    wording: roundtable_shared::scale::ScaleWording,
) -> Result<(), ApiError> {
    let body = to_json(&OpenScale {
        subject,
        wording: Some(wording),
    })?;
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
    let body = to_json(&GiveScore {
        score: Some(score.into()),
        reason: Some(reason.to_owned()),
    })?;
    send(
        "PUT",
        &format!("/api/conferences/{id}/scales/{scale}/votes/{participant}"),
        Some(body),
    )
    .await
    .map(drop)
}

/// `PUT /api/conferences/{id}/decisions/{child}`: the decision for one child.
pub async fn record_decision(id: &str, child: &str, body: &RecordDecision) -> Result<(), ApiError> {
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
    let body = to_json(&RecordAttendance {
        status: status.to_owned(),
    })?;
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
    let body = to_json(&SetNextMeetings {
        core_group_by: core_group_by.to_owned(),
        review_by: review_by.to_owned(),
    })?;
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
