//! Who is asking, and what they may do: the one place every HTTP command's caller is
//! checked. A handler says what it needs by the extractor it takes:
//!
//! - [`SignedInChair`]: a chair's own session, for commands that are not about one
//!   conference (listing and creating conferences);
//! - [`Participating`]: anyone taking part in the conference named by the path's
//!   `{id}`: its chair, or someone invited or let in from the lobby;
//! - [`Chairing`]: the chair of the conference named by the path's `{id}`.
//!
//! Who is calling is checked first, as for every command: someone without a valid
//! session or link is not told whether the conference exists.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use roundtable_shared::{ChairId, ConferenceId, ParticipantStatus, Role};

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{AuditEvent, ConferenceRow, ParticipantRow};

/// A chair, signed in with their own account.
pub(crate) struct SignedInChair(pub ChairId);

impl FromRequestParts<AppState> for SignedInChair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match auth::caller(state, &parts.headers).await? {
            Caller::Chair(chair) => Ok(SignedInChair(chair)),
            Caller::Participant(_) => Err(ApiError::Forbidden),
        }
    }
}

/// Someone taking part in a conference, as the server knows them.
pub(crate) struct Participating {
    pub participant: ParticipantRow,
    pub role: Role,
    pub conference: ConferenceRow,
    /// When the session or link the caller used stops working (Unix ms).
    pub expires_at: Option<i64>,
}

impl Participating {
    pub fn id(&self) -> ConferenceId {
        self.conference.id
    }

    /// Whether this is the conference's chair.
    pub fn chairs(&self) -> bool {
        self.role == Role::Chair
    }

    /// An audit event done by this person.
    pub fn event(&self, action: &'static str, detail: serde_json::Value) -> AuditEvent {
        AuditEvent {
            conference: self.conference.id,
            actor: Some(self.participant.id),
            action,
            detail,
        }
    }
}

impl FromRequestParts<AppState> for Participating {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let id = conference_in_path(parts, state).await?;
        Participating::check(state, &parts.headers, id).await
    }
}

impl Participating {
    /// Checks again whether the caller that `headers` name takes part in `id` (a
    /// stream does at each step, so that someone removed stops receiving it).
    pub async fn check(
        state: &AppState,
        headers: &axum::http::HeaderMap,
        id: ConferenceId,
    ) -> Result<Participating, ApiError> {
        let (caller, expires_at) = auth::credential(state, headers).await?;
        let conference = conference(state, id).await?;
        let participant = match caller {
            Caller::Chair(chair) if chair == conference.chair_id => state
                .storage
                .chair_participant(conference.id, chair)
                .await?
                .ok_or(ApiError::Forbidden)?,
            Caller::Chair(_) => return Err(ApiError::Forbidden),
            Caller::Participant(pid) => {
                let p = state
                    .storage
                    .participant(pid)
                    .await?
                    .ok_or(ApiError::SignInNeeded)?;
                if p.conference_id != conference.id {
                    return Err(ApiError::Forbidden);
                }
                p
            }
        };
        match participant.status {
            ParticipantStatus::Invited | ParticipantStatus::Admitted => {}
            ParticipantStatus::Waiting => return Err(ApiError::StillWaiting),
            ParticipantStatus::Removed | ParticipantStatus::TurnedAway => {
                return Err(ApiError::Removed);
            }
        }
        let role = participant.role.ok_or(ApiError::StillWaiting)?;
        Ok(Participating {
            participant,
            role,
            conference,
            expires_at,
        })
    }
}

/// The chair of a conference, taking part through their own participant row (the
/// actor of what they do, in the audit log and on the board).
pub(crate) struct Chairing(Participating);

impl std::ops::Deref for Chairing {
    type Target = Participating;

    fn deref(&self) -> &Participating {
        &self.0
    }
}

impl FromRequestParts<AppState> for Chairing {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let member = Participating::from_request_parts(parts, state).await?;
        if member.chairs() {
            Ok(Chairing(member))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The conference the path's `{id}` names (an address with no such id is not found,
/// as with every path).
async fn conference_in_path(parts: &mut Parts, state: &AppState) -> Result<ConferenceId, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::NotFound("there is nothing at this address"))?;
    params
        .iter()
        .find(|(name, _)| *name == "id")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or(ApiError::NotFound("there is nothing at this address"))
}

async fn conference(state: &AppState, id: ConferenceId) -> Result<ConferenceRow, ApiError> {
    state
        .storage
        .conference(id)
        .await?
        .ok_or(ApiError::NotFound("there is no such conference"))
}
