//! One WebSocket connection to a room.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};

use super::Limits;
use super::room::{CloseReason, Joined, Outcome, Rooms};

/// Messages written to a socket before it is flushed, when more are queued.
const WRITE_BATCH: usize = 64;

/// Sets a connection's message limits and buffer sizes before it is upgraded.
pub fn configure(ws: WebSocketUpgrade, limits: &Limits) -> WebSocketUpgrade {
    ws.max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
}

/// Runs a joined connection until either side ends it.
pub async fn run(socket: WebSocket, rooms: Arc<Rooms>, joined: Joined) {
    let Joined {
        room,
        connection,
        mut queue,
        mut close,
    } = joined;
    let limits = rooms.limits().clone();
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.reset();
    let mut last_heard = Instant::now();

    let reason: Option<CloseReason> = loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(frame) = frame else { break None };
                last_heard = Instant::now();
                match frame {
                    Ok(WsMessage::Binary(bytes)) => {
                        // Boxed, so the connection's task is not as large as handling
                        // a message for all of its life.
                        let receive = room.receive(rooms.storage(), &limits, connection, &bytes);
                        match Box::pin(receive).await {
                            Outcome::Applied | Outcome::Refused(_) => {}
                            Outcome::Malformed(why) => break Some(CloseReason::new(1007, why)),
                        }
                    }
                    Ok(WsMessage::Text(_)) => {
                        break Some(CloseReason::new(1003, "only binary Yjs messages are accepted"));
                    }
                    Ok(WsMessage::Close(_)) => break None,
                    Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "connection error");
                        break Some(CloseReason::new(1009, "the message was too large or broken"));
                    }
                }
            }
            message = queue.recv() => {
                let Some(message) = message else {
                    // The room let go of this connection; the reason, if any, is set.
                    break close.borrow().clone();
                };
                // Whatever else is queued goes out with it: one write and one flush
                // for a burst, not one per message.
                let send = async {
                    sink.feed(WsMessage::Binary(Bytes::clone(&message))).await?;
                    for _ in 1..WRITE_BATCH {
                        let Ok(message) = queue.try_recv() else { break };
                        sink.feed(WsMessage::Binary(Bytes::clone(&message))).await?;
                    }
                    sink.flush().await
                };
                match tokio::time::timeout(limits.send_timeout, send).await {
                    Ok(Ok(())) => {}
                    _ => break None,
                }
            }
            changed = close.changed() => {
                if changed.is_err() {
                    break None;
                }
                let reason = close.borrow().clone();
                if reason.is_some() {
                    break reason;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > limits.ping_interval * 3 {
                    break Some(CloseReason::new(1001, "no answer to ping"));
                }
                let send = sink.send(WsMessage::Ping(Vec::new().into()));
                if tokio::time::timeout(limits.send_timeout, send).await.is_err() {
                    break None;
                }
            }
        }
    };

    rooms.leave(&room, connection).await;
    if let Some(reason) = reason {
        let frame = CloseFrame {
            code: reason.code,
            reason: reason.reason.into(),
        };
        let _ = tokio::time::timeout(
            limits.send_timeout,
            sink.send(WsMessage::Close(Some(frame))),
        )
        .await;
    }
    let _ = tokio::time::timeout(limits.send_timeout, sink.close()).await;
}

/// Closes a connection that could not join, with a reason.
pub async fn refuse(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(WsMessage::Close(Some(frame))).await;
}
