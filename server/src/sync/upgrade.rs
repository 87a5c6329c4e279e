//! Taking an HTTP request over as a WebSocket (RFC 6455's opening handshake), with
//! tokio-tungstenite on the upgraded connection.
//!
//! The server does this itself rather than through axum's `WebSocketUpgrade` so that
//! it can send a large message (the whole document a new connection starts with) as
//! a run of small frames: tungstenite keeps its write buffer at the size of the
//! largest frame it has written, for the life of the connection, and twenty
//! connections each holding a board-sized buffer would cost a conference more than
//! everything else together.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::Limits;
use super::gathered::Gathered;
use crate::error::ApiError;

/// A WebSocket on an upgraded connection. Boxed: the stream is large, and it is moved
/// through the connection's task on its way to the connection's loop.
pub type Socket = Box<WebSocketStream<Gathered<TokioIo<Upgraded>>>>;

/// A request asking to become a WebSocket.
pub struct WebSocketRequest {
    accept: String,
    upgrade: OnUpgrade,
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let key = headers.get(header::SEC_WEBSOCKET_KEY);
        let is_websocket = parts.method == axum::http::Method::GET
            && has_token(headers, header::CONNECTION, "upgrade")
            && has_token(headers, header::UPGRADE, "websocket")
            && headers
                .get(header::SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v == "13");
        let (Some(key), true) = (key, is_websocket) else {
            return Err(ApiError::NotWebSocket);
        };
        let accept = derive_accept_key(key.as_bytes());
        let upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(ApiError::NotWebSocket)?;
        Ok(WebSocketRequest { accept, upgrade })
    }
}

impl WebSocketRequest {
    /// Answers `101 Switching Protocols`, then runs `serve` on the WebSocket once the
    /// client has it too.
    pub fn on_upgrade<F, Fut>(self, limits: &Limits, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .max_message_size(Some(limits.max_message_bytes))
            .max_frame_size(Some(limits.max_message_bytes))
            .read_buffer_size(limits.read_buffer_bytes)
            // Every frame is handed on at once, to be gathered until the flush by
            // `Gathered`, which gives its buffer back once flushed.
            .write_buffer_size(0);
        let upgrade = self.upgrade;
        let budget = limits.arriving.clone();
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let socket = Box::pin(WebSocketStream::from_raw_socket(
                        Gathered::new(TokioIo::new(upgraded), budget),
                        Role::Server,
                        Some(config),
                    ))
                    .await;
                    serve(Box::new(socket)).await;
                }
                Err(e) => tracing::debug!(error = %e, "the WebSocket upgrade failed"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&self.accept).expect("base64 is a valid header value"),
        );
        response
    }
}
