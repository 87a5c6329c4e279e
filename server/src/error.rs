//! The errors the HTTP API answers with. Each maps to a status and a message a person
//! can act on; internal detail is logged, never sent.

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
    /// Not allowed, with the reason, e.g. "only the chair can reopen".
    #[error("{0}")]
    NotAllowed(&'static str),
    /// The message says what was not found, e.g. "there is no such conference".
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server is busy; please try again in a moment")]
    Busy,
    /// Refused for now (429 or 503), with a sentence and how many seconds to wait.
    #[error("{sentence}")]
    TryLater {
        status: StatusCode,
        sentence: String,
        seconds: u64,
    },
    #[error("the request is too large")]
    TooLarge,
    #[error("this address takes only WebSocket connections")]
    NotWebSocket,
    #[error("the request did not arrive in time; please try again")]
    TooSlow,
    #[error("the request must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error(
        "the server could not save this just now, so nothing was changed. Please try again in a moment"
    )]
    StorageUnavailable,
    #[error("something went wrong on the server")]
    Internal(StorageError),
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "storage unavailable");
            ApiError::StorageUnavailable
        } else {
            ApiError::Internal(e)
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignInNeeded | Self::WrongCredentials => StatusCode::UNAUTHORIZED,
            Self::LinkNotValid | Self::Removed => StatusCode::GONE,
            Self::StillWaiting | Self::Forbidden | Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Busy | Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooSlow => StatusCode::REQUEST_TIMEOUT,
            Self::NotWebSocket => StatusCode::BAD_REQUEST,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TryLater { status, .. } => *status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, "request failed");
        }
        let body = roundtable_shared::api::Problem {
            error: self.to_string(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let retry_after = match &self {
            Self::TryLater { seconds, .. } => Some(*seconds),
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => Some(5),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as R;
        match rejection {
            R::MissingJsonContentType(_) => ApiError::NotJson,
            R::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge
            }
            // serde's message names the field and what was wrong with it.
            R::JsonDataError(e) => {
                ApiError::Invalid(format!("the request is not right: {}", e.body_text()))
            }
            R::JsonSyntaxError(_) => ApiError::Invalid("the request is not valid JSON".into()),
            other => ApiError::Invalid(other.body_text()),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        ApiError::NotFound("there is nothing at this address")
    }
}

/// `axum::Json`, answering bad bodies with our JSON errors.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// `axum::extract::Path`, answering bad ids with our JSON errors.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);
