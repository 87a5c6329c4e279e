//! A chair's own account: what happened to it (wrong passwords tried against it, and
//! sign-ins), so that its owner learns of an attack on it. There is no email yet.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use roundtable_shared::api::{AccountEvent, AccountEvents};

use super::access::SignedInChair;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/account/events", get(events))
}

async fn events(
    State(state): State<AppState>,
    SignedInChair(chair): SignedInChair,
) -> Result<Json<AccountEvents>, ApiError> {
    let events = state
        .storage
        .account_events(chair)
        .await?
        .into_iter()
        .map(|row| AccountEvent {
            at: super::record::rfc3339(row.at),
            action: row.action,
            detail: row.detail,
        })
        .collect();
    Ok(Json(AccountEvents { events }))
}
