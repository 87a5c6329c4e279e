//! The errors the HTTP API answers with. Each maps to a status and a message a person
//! can act on; internal detail is logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("please sign in")]
    SignInNeeded,
    #[error("the email or password is not right")]
    WrongCredentials,
    #[error(
        "this link is not valid any more: it may have expired or been withdrawn. Please ask the chair for a new one"
    )]
    LinkNotValid,
    #[error("you have been removed from this conference")]
    Removed,
    #[error("please wait: the chair has not let you in yet")]
    StillWaiting,
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is busy; please try again in a moment")]
    Busy,
    #[error("something went wrong on the server")]
    Internal(#[from] StorageError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignInNeeded | Self::WrongCredentials => StatusCode::UNAUTHORIZED,
            Self::LinkNotValid | Self::Removed => StatusCode::GONE,
            Self::StillWaiting | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, "request failed");
        }
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
