//! One WebSocket connection to a room.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::Limits;
use super::allowance::Allowance;
use super::gathered::Passed;
use super::mailbox::{CloseReason, Delivery, Receiver};
use super::room::Outcome;
use super::rooms::{Joined, Rooms};
use super::upgrade::Socket;

/// Why a connection ends after a change could not be stored.
const NOT_STORED: &str = "the server could not save a change; connect again to send it";

pub use roundtable_shared::protocol::CLOSE_SESSION_ENDED;
const SESSION_ENDED: &str = "your session has ended: please sign in again";

/// Pings a connection may leave unanswered before it is closed.
const UNANSWERED_PINGS: u32 = 3;

/// How long the client has to answer the server's close.
const CLOSING_TIME: Duration = Duration::from_secs(2);

/// Why a connection that floods the room with messages is closed.
const TOO_MANY: &str = "too many messages at once: connect again and slow down";
/// Why a connection that sends too much presence is closed.
const TOO_MUCH_PRESENCE: &str = "too much presence at once: connect again and slow down";
/// Why a connection that sends too large a presence message is closed.
const PRESENCE_TOO_LARGE: &str = "a presence message may be at most 8 KiB";

/// Why a connection is closed whose message would take the server's budget for
/// messages still arriving past its limit.
const TOO_MUCH_ARRIVING: &str =
    "the server is receiving too many large messages just now: connect again in a moment";

/// Why a connection whose message does not arrive in time is closed.
const TOO_SLOW: &str = "a message took too long to arrive: connect again";

/// The first byte of a y-protocols presence (awareness) message.
const AWARENESS: u8 = 1;

/// The smallest piece a large message is sent in.
const MIN_FRAGMENT: usize = 64;

/// Messages written to a socket before it is flushed, when more are queued.
const WRITE_BATCH: usize = 64;

/// Queues `message` on `sink`, as one frame. A message larger than `fragment` goes
/// past tungstenite (see `gathered.rs`): its write buffer grows to the largest frame it
/// is given and keeps that size for the life of the connection, so whole documents
/// must not pass through it. Everything tungstenite has is flushed first, so that the
/// order holds.
async fn feed<S>(
    sink: &mut S,
    passed: &Passed,
    message: &Bytes,
    fragment: usize,
) -> Result<(), WsError>
where
    S: Sink<WsMessage, Error = WsError> + Unpin,
{
    if message.len() <= fragment {
        return sink.feed(WsMessage::Binary(Bytes::clone(message))).await;
    }
    sink.flush().await?;
    passed.binary(message);
    Ok(())
}

/// Runs a joined connection until either side ends it, or `ends` comes (when the
/// session or link it was opened with stops working).
///
/// This future is the connection's task for as long as the connection lasts, so it is
/// kept small: what is awaited only now and then (handling a message, a write, a
/// ping, closing) is boxed, and one timer serves both the pings and the end.
pub fn run(
    socket: Socket,
    rooms: Arc<Rooms>,
    joined: Joined,
    ends: Option<tokio::time::Instant>,
) -> impl Future<Output = ()> + Send {
    // Set up outside the future, which then holds each of these once.
    let Joined {
        room,
        connection,
        mailbox,
        presence,
    } = joined;
    let fragment = rooms.limits().frame_bytes.max(MIN_FRAGMENT);
    // Bytes read, and how many had been when the last whole message came: more since
    // then, at two pings in a row, is a message that takes too long to arrive.
    let arrival = socket.get_ref().arrival();
    let passed = socket.get_ref().passed();
    let mut unfinished_at_last_ping = false;
    let (mut sink, mut stream) = socket.split();
    let mut next_ping = tokio::time::Instant::now() + rooms.limits().ping_interval;
    let timer = tokio::time::sleep_until(next_timer(next_ping, ends));
    // Pings sent since the last answer. Only an answer shows that the client still
    // reads what it is sent; one that keeps talking but stops reading, or whose
    // network has vanished, falls silent here.
    let mut unanswered = 0u32;
    let limits = rooms.limits();
    let mut allowance = Allowance::new(limits.messages_per_second, limits.message_burst);
    // Presence is relayed to everyone: its bytes are bounded too, by an allowance
    // this participant's connections share (`presence`), so that connecting again
    // and again earns no new burst.
    async move {
        let limits = rooms.limits();
        tokio::pin!(timer);

        let reason: Option<CloseReason> = loop {
            tokio::select! {
                frame = stream.next() => {
                    let Some(frame) = frame else { break None };
                    match &frame {
                        // A control frame may come in the middle of a message in
                        // fragments: only its own bytes (a two-byte head, a four-byte
                        // mask, as every client sends it) count as arrived whole.
                        Ok(WsMessage::Ping(payload) | WsMessage::Pong(payload)) => {
                            arrival.control(6 + payload.len() as u64);
                        }
                        _ => arrival.whole(),
                    }
                    match frame {
                        Ok(WsMessage::Binary(_)) if !allowance.take(Instant::now(), 1.0) => {
                            break Some(CloseReason::new(1008, TOO_MANY));
                        }
                        Ok(WsMessage::Binary(bytes)) if bytes.first() == Some(&AWARENESS)
                            && bytes.len() > limits.max_presence_bytes => {
                            break Some(CloseReason::new(1009, PRESENCE_TOO_LARGE));
                        }
                        Ok(WsMessage::Binary(bytes)) if bytes.first() == Some(&AWARENESS)
                            && !presence.take(Instant::now(), bytes.len() as f64) => {
                            break Some(CloseReason::new(1008, TOO_MUCH_PRESENCE));
                        }
                        Ok(WsMessage::Binary(bytes)) => {
                            let receive = room.receive(rooms.storage(), limits, connection, &bytes);
                            match Box::pin(receive).await {
                                Outcome::Applied | Outcome::Refused(_) => {}
                                Outcome::Malformed(why) => break Some(CloseReason::new(1007, why)),
                                Outcome::NotStored => break Some(CloseReason::new(1013, NOT_STORED)),
                            }
                        }
                        Ok(WsMessage::Text(_)) => {
                            break Some(CloseReason::new(1003, "only binary Yjs messages are accepted"));
                        }
                        Ok(WsMessage::Close(_)) => break None,
                        Ok(WsMessage::Pong(_)) => unanswered = 0,
                        // Pings are answered by tungstenite; raw frames are never read.
                        Ok(WsMessage::Ping(_) | WsMessage::Frame(_)) => {}
                        Err(_) if arrival.over_budget() => {
                            break Some(CloseReason::new(1013, TOO_MUCH_ARRIVING));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "connection error");
                            break Some(CloseReason::new(1009, "the message was too large or broken"));
                        }
                    }
                }
                delivery = mailbox.next() => {
                    let message = match delivery {
                        Delivery::Message(message) => message,
                        // The room let go of this connection, with its reason if any.
                        Delivery::Closed(reason) => break reason,
                    };
                    // Whatever else is queued goes out with it: one write and one flush
                    // for a burst, not one per message.
                    let send = async {
                        feed(&mut sink, &passed, &message, fragment).await?;
                        for _ in 1..WRITE_BATCH {
                            let Some(message) = mailbox.try_take() else { break };
                            feed(&mut sink, &passed, &message, fragment).await?;
                        }
                        sink.flush().await
                    };
                    match Box::pin(tokio::time::timeout(limits.send_timeout, send)).await {
                        Ok(Ok(())) => {}
                        _ => break None,
                    }
                }
                () = &mut timer => {
                    let now = tokio::time::Instant::now();
                    if ends.is_some_and(|ends| now >= ends) {
                        break Some(CloseReason::new(CLOSE_SESSION_ENDED, SESSION_ENDED));
                    }
                    if now >= next_ping {
                        if unanswered >= UNANSWERED_PINGS {
                            break Some(CloseReason::new(1001, "no answer to ping"));
                        }
                        // Half a message holds memory: it must arrive within a ping
                        // interval or two, like any message from a live client.
                        let unfinished = arrival.unfinished();
                        if unfinished && unfinished_at_last_ping {
                            break Some(CloseReason::new(1008, TOO_SLOW));
                        }
                        unfinished_at_last_ping = unfinished;
                        let send = sink.send(WsMessage::Ping(Bytes::new()));
                        if Box::pin(tokio::time::timeout(limits.send_timeout, send)).await.is_err() {
                            break None;
                        }
                        unanswered += 1;
                        next_ping = now + limits.ping_interval;
                        // Whoever vanished without a word stops showing as here.
                        Box::pin(room.expire_presence(limits.presence_timeout)).await;
                    }
                    timer.as_mut().reset(next_timer(next_ping, ends));
                }
            }
        };

        Box::pin(rooms.leave(&room, connection)).await;
        Box::pin(close(
            sink, stream, &mailbox, reason, limits, &passed, fragment,
        ))
        .await;
    }
}

/// When a connection's timer next goes off: its next ping, or its end if sooner.
fn next_timer(
    next_ping: tokio::time::Instant,
    ends: Option<tokio::time::Instant>,
) -> tokio::time::Instant {
    ends.map_or(next_ping, |ends| ends.min(next_ping))
}

/// Ends a connection: sends what is still queued and the close frame with `reason`,
/// if there is one, waits for the client's own close, then closes the socket.
async fn close(
    mut sink: SplitSink<Socket, WsMessage>,
    mut stream: SplitStream<Socket>,
    mailbox: &Receiver,
    reason: Option<CloseReason>,
    limits: &Limits,
    passed: &Passed,
    fragment: usize,
) {
    if let Some(reason) = reason {
        let frame = CloseFrame {
            code: reason.code.into(),
            reason: reason.reason.into(),
        };
        // What was queued before the reason (the refusal that explains it, say) goes
        // out first.
        let goodbye = async {
            while let Some(message) = mailbox.try_take() {
                feed(&mut sink, passed, &message, fragment).await?;
            }
            sink.send(WsMessage::Close(Some(frame))).await
        };
        let _ = tokio::time::timeout(limits.send_timeout, goodbye).await;
        // The closing handshake: read (and drop) what the client still sends until
        // its own close. Closing with its messages unread would reset the
        // connection, and the client might never read why it was closed.
        let handshake = async {
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, WsMessage::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSING_TIME, handshake).await;
    }
    let _ = tokio::time::timeout(limits.send_timeout, sink.close()).await;
}

/// Closes a connection that could not join, with a reason.
pub async fn refuse(mut socket: Socket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    let _ = socket.send(WsMessage::Close(Some(frame))).await;
}
