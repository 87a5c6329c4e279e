//! The safety scale: the chair opens, closes and reveals a scale; everyone with a
//! vote gives a score from 0 to 10.
//!
//! Scores stay in storage until the reveal. The shared document gets only the
//! scale's words, where it is in its life, and how many have scored; at the reveal
//! the server writes every score into it for all screens to show.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::Stream;
use roundtable_shared::api::{
    ConferenceName, GiveScore, OpenScale, ScaleView, Scales, ScoreGiven, Voter, YourScore,
};
use roundtable_shared::doc::DocumentKind;
use roundtable_shared::scale::{
    self, PreviousScores, RevealedScore, ScaleEntry, ScaleStatus, ScaleSubject, ScaleWording,
    Summary, Wording,
};
use roundtable_shared::{Child, ConferenceId, ParticipantId, Role, ScaleId, Score};
use serde_json::{Value, json};
use uuid::Uuid;

use super::access::{Chairing, Participating};
use crate::error::{ApiError, JsonBody, Path};
use crate::state::AppState;
use crate::storage::{OpenRefused, ParticipantRow, ScaleRow, VoteOutcome, VoteRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conferences/{id}/scales", get(list).post(open))
        .route("/api/conferences/{id}/scales/live", get(live))
        .route("/api/conferences/{id}/scales/{scale}/vote", put(vote))
        .route(
            "/api/conferences/{id}/scales/{scale}/votes/{participant}",
            put(vote_for),
        )
        .route("/api/conferences/{id}/scales/{scale}/close", post(close))
        .route("/api/conferences/{id}/scales/{scale}/reveal", post(reveal))
}

const MAX_REASON_CHARS: usize = 1000;
const MAX_WORDS_CHARS: usize = 300;

/// Who or what a scale is about, in words.
fn about(subject: &ScaleSubject, children: &[Child]) -> Result<String, ApiError> {
    match subject {
        ScaleSubject::Child { child } => children
            .iter()
            .find(|c| c.id == *child)
            .map(|c| c.name.clone())
            .ok_or_else(|| ApiError::Invalid("that child is not part of this conference".into())),
        ScaleSubject::AllChildren => Ok(match children {
            [only] => only.name.clone(),
            _ => "the children".to_owned(),
        }),
        ScaleSubject::Danger { statement } => super::text("the danger statement", statement, 500),
    }
}

fn checked_wording(wording: ScaleWording) -> Result<ScaleWording, ApiError> {
    let words = |who: &str, w: Wording| -> Result<Wording, ApiError> {
        Ok(Wording {
            question: super::text(&format!("the {who} question"), &w.question, MAX_WORDS_CHARS)?,
            zero: super::text(&format!("the {who} meaning of 0"), &w.zero, MAX_WORDS_CHARS)?,
            ten: super::text(&format!("the {who} meaning of 10"), &w.ten, MAX_WORDS_CHARS)?,
        })
    };
    Ok(ScaleWording {
        professionals: words("professionals'", wording.professionals)?,
        family: words("family's", wording.family)?,
    })
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(crate::storage::StorageError::Corrupt(what.to_owned()))
}

/// Every score of a scale with the name and role of who gave it.
pub(super) async fn revealed_scores(
    state: &AppState,
    conference: ConferenceId,
    scale: ScaleId,
) -> Result<Vec<RevealedScore>, ApiError> {
    let people = state.storage.participants(conference).await?;
    let votes = state.storage.votes(scale).await?;
    votes
        .into_iter()
        .map(|vote| {
            let person = people
                .iter()
                .find(|p| p.id == vote.participant_id)
                .ok_or_else(|| corrupt("a score without its participant"))?;
            Ok(RevealedScore {
                participant: person.id,
                name: person.name.clone(),
                role: person
                    .role
                    .ok_or_else(|| corrupt("a score from someone without a role"))?,
                score: Score::new(i64::from(vote.score)).map_err(|_| corrupt("score"))?,
                reason: vote.reason,
                entered_by_chair: vote.entered_by.is_some_and(|by| by != vote.participant_id),
            })
        })
        .collect()
}

/// The previous conference's revealed scores on the same question, for a review
/// conference: the same child (by name), all the children, or the same danger
/// statement.
async fn previous_scores(
    state: &AppState,
    conference: ConferenceId,
    subject: &ScaleSubject,
    children: &[Child],
) -> Result<Option<PreviousScores>, ApiError> {
    let Some(previous_id) = state.storage.previous_conference(conference).await? else {
        return Ok(None);
    };
    let Some(previous) = state.storage.conference(previous_id).await? else {
        return Ok(None);
    };
    let previous_children = previous.children()?;
    let same = |earlier: &ScaleSubject| match (subject, earlier) {
        (ScaleSubject::AllChildren, ScaleSubject::AllChildren) => true,
        (ScaleSubject::Danger { statement: now }, ScaleSubject::Danger { statement: then }) => {
            now.trim().eq_ignore_ascii_case(then.trim())
        }
        (ScaleSubject::Child { child: now }, ScaleSubject::Child { child: then }) => {
            let name = |list: &[Child], id| {
                list.iter()
                    .find(|c| c.id == id)
                    .map(|c| c.name.trim().to_lowercase())
            };
            name(children, *now).is_some()
                && name(children, *now) == name(&previous_children, *then)
        }
        _ => false,
    };
    let mut matching = None;
    for row in state.storage.scales(previous_id).await? {
        if row.status == ScaleStatus::Revealed && same(&row.subject) {
            matching = Some(row);
        }
    }
    let Some(row) = matching else {
        return Ok(None);
    };
    Ok(Some(PreviousScores {
        conference_title: previous.title.clone(),
        held: previous.scheduled_start.clone(),
        scores: revealed_scores(state, previous_id, row.id).await?,
    }))
}

/// A scale as the caller may see it: the words for their side of the table, their
/// own score, and everyone's scores only once revealed.
async fn scale_view(
    state: &AppState,
    member: &Participating,
    row: &ScaleRow,
    scored: u32,
    mine: Option<&VoteRow>,
) -> Result<ScaleView, ApiError> {
    let wording = &row.wording;
    let status = row.status;
    let words = if member.role.is_family_side() {
        &wording.family
    } else {
        &wording.professionals
    };
    let (results, summary) = match status {
        ScaleStatus::Revealed => {
            let results = revealed_scores(state, member.conference.id, row.id).await?;
            let scores: Vec<Score> = results.iter().map(|r| r.score).collect();
            let summary = Summary::of(&scores);
            (Some(results), Some(summary))
        }
        _ => (None, None),
    };
    let children = member.conference.children()?;
    Ok(ScaleView {
        id: row.id,
        number: row.number,
        subject: row.subject.clone(),
        about: row.about.clone(),
        question: words.question.clone(),
        zero: words.zero.clone(),
        ten: words.ten.clone(),
        wording: wording.clone(),
        status,
        scored,
        your_score: mine.map(|v| YourScore {
            score: v.score,
            reason: v.reason.clone(),
            entered_by_chair: v.entered_by.is_some_and(|by| by != v.participant_id),
        }),
        results,
        summary,
        previous: previous_scores(state, member.conference.id, &row.subject, &children).await?,
    })
}

/// Everything `GET …/scales` answers: who the caller is and every scale.
async fn scales_view(state: &AppState, member: &Participating) -> Result<Scales, ApiError> {
    let id = member.conference.id;
    let rows = state.storage.scales(id).await?;
    let counts = state.storage.scored_counts(id).await?;
    let mine = state.storage.votes_of(id, member.participant.id).await?;
    let mut scales = Vec::with_capacity(rows.len());
    for row in &rows {
        let scored = counts
            .iter()
            .find(|(scale, _)| *scale == row.id)
            .map_or(0, |(_, n)| *n);
        let my_vote = mine
            .iter()
            .find(|(scale, _)| *scale == row.id)
            .map(|(_, v)| v);
        scales.push(scale_view(state, member, row, scored, my_vote).await?);
    }
    Ok(Scales {
        conference: ConferenceName {
            id,
            title: member.conference.title.clone(),
        },
        you: Voter {
            id: member.participant.id,
            name: member.participant.name.clone(),
            role: member.role,
            votes: member.role.votes(),
        },
        scales,
    })
}

async fn list(
    State(state): State<AppState>,
    member: Participating,
) -> Result<Json<Scales>, ApiError> {
    Ok(Json(scales_view(&state, &member).await?))
}

/// A stream of the caller's view of the scales (`event: scales`), sent at once and
/// again whenever a scale is opened, closed or revealed. It ends with `event: gone`
/// (the reason as data) if the caller stops being part of the conference.
async fn live(
    State(state): State<AppState>,
    member: Participating,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = member.id();
    let notices = state.notices.subscribe(id).ok_or(ApiError::Busy)?;
    // When the session or link the stream was opened with stops working, it is
    // checked again (and so ends) without waiting for a notice.
    let ends = crate::auth::ends_at(member.expires_at);
    // Each step re-checks who is asking, so a removed participant's stream ends at
    // the next notice.
    let stream = futures_util::stream::unfold(
        (state, headers, Some(notices), true),
        move |(state, headers, notices, first)| async move {
            let mut notices = notices?;
            if !first {
                tokio::select! {
                    changed = notices.changed() => changed.ok()?,
                    _ = crate::auth::expired(ends) => {}
                }
            }
            let event = match Participating::check(&state, &headers, id).await {
                Ok(member) => match scales_view(&state, &member).await {
                    Ok(body) => match Event::default().event("scales").json_data(&body) {
                        Ok(event) => event,
                        Err(e) => Event::default().event("problem").data(e.to_string()),
                    },
                    Err(e) => Event::default().event("problem").data(e.to_string()),
                },
                Err(e) => {
                    let gone = Event::default().event("gone").data(e.to_string());
                    return Some((Ok(gone), (state, headers, None, false)));
                }
            };
            Some((Ok(event), (state, headers, Some(notices), false)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn open(
    State(state): State<AppState>,
    member: Chairing,
    JsonBody(body): JsonBody<OpenScale>,
) -> Result<(StatusCode, Json<ScaleView>), ApiError> {
    let id = member.id();
    super::not_closed(&member.conference)?;
    let children = member.conference.children()?;
    let about = about(&body.subject, &children)?;
    let subject = match body.subject {
        ScaleSubject::Danger { .. } => ScaleSubject::Danger {
            statement: about.clone(),
        },
        other => other,
    };
    let wording = checked_wording(
        body.wording
            .unwrap_or_else(|| ScaleWording::defaults(&about)),
    )?;
    let new = ScaleRow {
        id: ScaleId(Uuid::new_v4()),
        conference_id: id,
        number: 0,
        subject: subject.clone(),
        about: about.clone(),
        wording: wording.clone(),
        status: ScaleStatus::Open,
    };
    let event = member.event(
        "scale_opened",
        json!({ "scale": new.id, "subject": subject, "about": about }),
    );
    let row =
        state
            .storage
            .open_scale(&new, &event)
            .await?
            .map_err(|OpenRefused::AnotherIsOpen| {
                ApiError::Conflict(
                    "another scale is still open: close it before opening a new one".into(),
                )
            })?;
    let entry = ScaleEntry {
        id: row.id.to_string(),
        number: row.number,
        subject: subject.clone(),
        about,
        wording,
        status: ScaleStatus::Open,
        scored: 0,
        results: Vec::new(),
        previous: previous_scores(&state, id, &subject, &children).await?,
    };
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            scale::write_scale(txn, &entry)
        })
        .await?;
    state.scales_changed(id).await;
    tracing::info!(conference = %id, scale = %row.id, "safety scale opened");
    let body = scale_view(&state, &member, &row, 0, None).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

const SCORE_RULE: &str = "the score must be a whole number from 0 to 10";

fn checked_score(body: &GiveScore) -> Result<(Score, Option<String>), ApiError> {
    let score = body
        .score
        .as_ref()
        .and_then(Value::as_i64)
        .and_then(|n| Score::new(n).ok())
        .ok_or_else(|| ApiError::Invalid(SCORE_RULE.into()))?;
    let reason = match body.reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) if r.chars().count() > MAX_REASON_CHARS => {
            return Err(ApiError::Invalid(format!(
                "the reason is too long (at most {MAX_REASON_CHARS} characters)"
            )));
        }
        Some(r) => Some(r.to_owned()),
    };
    Ok((score, reason))
}

/// Why a scale of this conference refused a score: the conference closed meanwhile,
/// the scale is unknown, or no longer open.
async fn vote_refusal(state: &AppState, conference: ConferenceId, scale: ScaleId) -> ApiError {
    match state.storage.conference(conference).await {
        Ok(Some(row)) if row.closed_at.is_some() => {
            return ApiError::Conflict(super::CLOSED.into());
        }
        Err(e) => return e.into(),
        _ => {}
    }
    match state.storage.scale(conference, scale).await {
        Ok(None) => ApiError::NotFound("there is no such safety scale in this conference"),
        Ok(Some(_)) => ApiError::Conflict(scale::ScaleRefusal::NotOpen.to_string()),
        Err(e) => e.into(),
    }
}

/// Stores a score for `voter` and tells every screen the new count.
async fn give_score(
    state: &AppState,
    member: &Participating,
    scale: ScaleId,
    voter: &ParticipantRow,
    body: &GiveScore,
) -> Result<Json<ScoreGiven>, ApiError> {
    super::not_closed(&member.conference)?;
    let (score, reason) = checked_score(body)?;
    let conference = member.conference.id;
    let on_behalf = voter.id != member.participant.id;
    let vote = VoteRow {
        participant_id: voter.id,
        score: score.get(),
        reason: reason.clone(),
        entered_by: on_behalf.then_some(member.participant.id),
    };
    let mut detail = json!({ "scale": scale, "score": score.get(), "reason": reason });
    if on_behalf {
        detail["for"] = json!(voter.id);
    }
    let event = member.event("score_given", detail);
    let VoteOutcome::Stored { scored } = state
        .storage
        .put_vote(conference, scale, voter.id, &vote, &event)
        .await?
    else {
        return Err(vote_refusal(state, conference, scale).await);
    };
    state
        .rooms
        .server_change((conference, DocumentKind::Shared), |txn| {
            scale::write_scored(txn, &scale.to_string(), scored)
        })
        .await?;
    Ok(Json(ScoreGiven {
        score: YourScore {
            score: score.get(),
            reason,
            entered_by_chair: on_behalf,
        },
        scored,
    }))
}

fn may_vote(p: &ParticipantRow) -> bool {
    p.role.is_some_and(Role::votes) && p.status.takes_part()
}

async fn vote(
    State(state): State<AppState>,
    Path((_, scale)): Path<(Uuid, Uuid)>,
    member: Participating,
    JsonBody(body): JsonBody<GiveScore>,
) -> Result<Json<ScoreGiven>, ApiError> {
    if !member.role.votes() {
        return Err(ApiError::Invalid(format!(
            "a {} does not give a score",
            member.role.label().to_lowercase()
        )));
    }
    let voter = member.participant.clone();
    give_score(&state, &member, ScaleId(scale), &voter, &body).await
}

/// The chair enters a score for someone without a phone; it is marked as entered by
/// the chair.
async fn vote_for(
    State(state): State<AppState>,
    Path((_, scale, participant)): Path<(Uuid, Uuid, Uuid)>,
    member: Chairing,
    JsonBody(body): JsonBody<GiveScore>,
) -> Result<Json<ScoreGiven>, ApiError> {
    let id = member.id();
    let voter = state
        .storage
        .participant(ParticipantId(participant))
        .await?
        .filter(|p| p.conference_id == id)
        .ok_or(ApiError::NotFound(
            "there is no such participant in this conference",
        ))?;
    if !may_vote(&voter) {
        return Err(ApiError::Invalid(format!(
            "{} cannot give a score in this conference",
            voter.name
        )));
    }
    give_score(&state, &member, ScaleId(scale), &voter, &body).await
}

/// Moves a scale on (close or reveal), writes the outcome into the document, and
/// tells the phones.
async fn move_on(
    state: &AppState,
    member: &Chairing,
    scale: ScaleId,
    to: ScaleStatus,
) -> Result<Json<ScaleView>, ApiError> {
    let id = member.id();
    super::not_closed(&member.conference)?;
    let row = state
        .storage
        .scale(id, scale)
        .await?
        .ok_or(ApiError::NotFound(
            "there is no such safety scale in this conference",
        ))?;
    let now = row.status;
    let next = match to {
        ScaleStatus::Closed => now.close(),
        _ => now.reveal(),
    };
    let (action, from) = match to {
        ScaleStatus::Closed => ("scale_closed", ScaleStatus::Open),
        _ => ("scale_revealed", ScaleStatus::Closed),
    };
    let moved = next.is_ok()
        && state
            .storage
            .set_scale_status(
                id,
                scale,
                from,
                to,
                &member.event(action, json!({ "scale": scale })),
            )
            .await?;
    // Whether it moved now or earlier, the document is made to say where the scale
    // is, so a write that failed before is put right by asking again.
    let row = state.storage.scale(id, scale).await?.unwrap_or(row);
    let status = row.status;
    let results = match status {
        ScaleStatus::Revealed => revealed_scores(state, id, scale).await?,
        _ => Vec::new(),
    };
    state
        .rooms
        .server_change((id, DocumentKind::Shared), |txn| {
            scale::write_status(txn, &scale.to_string(), status, &results)
        })
        .await?;
    if !moved {
        let refusal = next.err().map_or_else(
            || format!("the scale is now {}", status.as_str()),
            |r| r.to_string(),
        );
        return Err(ApiError::Conflict(refusal));
    }
    state.scales_changed(id).await;
    tracing::info!(conference = %id, scale = %scale, status = status.as_str(), "safety scale moved on");
    let counts = state.storage.scored_counts(id).await?;
    let scored = counts
        .iter()
        .find(|(s, _)| *s == scale)
        .map_or(0, |(_, n)| *n);
    Ok(Json(scale_view(state, member, &row, scored, None).await?))
}

async fn close(
    State(state): State<AppState>,
    Path((_, scale)): Path<(Uuid, Uuid)>,
    member: Chairing,
) -> Result<Json<ScaleView>, ApiError> {
    move_on(&state, &member, ScaleId(scale), ScaleStatus::Closed).await
}

async fn reveal(
    State(state): State<AppState>,
    Path((_, scale)): Path<(Uuid, Uuid)>,
    member: Chairing,
) -> Result<Json<ScaleView>, ApiError> {
    move_on(&state, &member, ScaleId(scale), ScaleStatus::Revealed).await
}
