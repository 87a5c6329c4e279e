//! One simulated person at a board: a WebSocket, a local document holding only its
//! own items, and a typing schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roundtable_shared::ParticipantId;
use roundtable_shared::doc::{Board, NewItem};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact};

use crate::protocol::{Framing, Incoming};
use crate::target::ClientSpec;
use crate::track::{RoomTracker, reach};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The heading every item goes under: one of the four-headings template that the
/// Roundtable conferences are created with. The peers do not check headings.
const HEADING: &str = "worries";
const CONNECT_ATTEMPTS: u32 = 6;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Counts shared by every client of a run.
#[derive(Debug, Default)]
pub struct Counters {
    pub edits_sent: AtomicU64,
    /// Edits the server refused (a y-protocols or Hocuspocus permission-denied).
    pub refused: AtomicU64,
    pub malformed: AtomicU64,
    /// Connections that ended before the run did.
    pub dropped: AtomicU64,
    /// Connection attempts that failed and were tried again.
    pub connect_retries: AtomicU64,
    /// How late the most late edit was sent, against its schedule: if the generator
    /// cannot keep up, this grows, and the latencies mean less.
    pub max_lag_us: AtomicU64,
    /// Edits sent more than 5 ms after their scheduled time.
    pub late_edits: AtomicU64,
}

/// The typing schedule, the same for every client.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Between two edits of one client.
    pub period: Duration,
    /// Every this many edits, a client starts a new item instead of typing.
    pub new_item_every: u64,
    /// When edits stop being sent.
    pub edit_until: Instant,
    /// No edit is sent once this many have been, run-wide.
    pub max_edits: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {url}: {error}")]
    Connect {
        url: String,
        error: tokio_tungstenite::tungstenite::Error,
    },
    #[error("the server closed the connection during the handshake")]
    Closed,
    #[error("no answer to the sync handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("the server refused the connection: {0}")]
    Denied(String),
    #[error(transparent)]
    Malformed(#[from] crate::protocol::Malformed),
}

/// A connected, synced client, ready to edit.
pub struct Client {
    socket: Socket,
    framing: Framing,
    doc: Doc,
    client_id: u64,
    author: ParticipantId,
    index: usize,
    room: Arc<Mutex<RoomTracker>>,
    rng: u64,
}

/// Opens the socket, retrying with backoff: y-sweet has been seen to answer HTTP 500
/// to a burst of first connections to one document.
async fn open(spec: &ClientSpec, counters: &Counters) -> Result<Socket, ClientError> {
    let mut attempt = 0;
    loop {
        let error = match request(spec) {
            Ok(request) => {
                match tokio_tungstenite::connect_async_with_config(request, Some(config()), true)
                    .await
                {
                    Ok((socket, _)) => return Ok(socket),
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        attempt += 1;
        if attempt >= CONNECT_ATTEMPTS {
            return Err(ClientError::Connect {
                url: spec.url.clone(),
                error,
            });
        }
        counters.connect_retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
}

/// Small socket buffers. tungstenite zero-fills its whole read buffer (128 KiB by
/// default) before every read from the socket; the messages here are tens of bytes,
/// and with the default the generator spent most of its time in memset.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

fn request(
    spec: &ClientSpec,
) -> Result<
    tokio_tungstenite::tungstenite::handshake::client::Request,
    tokio_tungstenite::tungstenite::Error,
> {
    let mut request = spec.url.as_str().into_client_request()?;
    if let Some(token) = &spec.bearer {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|e| tokio_tungstenite::tungstenite::Error::HttpFormat(http_error(e)))?;
        request.headers_mut().insert("authorization", value);
    }
    Ok(request)
}

fn http_error(
    error: tokio_tungstenite::tungstenite::http::header::InvalidHeaderValue,
) -> tokio_tungstenite::tungstenite::http::Error {
    error.into()
}

impl Client {
    /// Connects and completes the sync handshake: the client has the server's
    /// SyncStep2 and the server has ours.
    pub async fn connect(
        spec: &ClientSpec,
        client_id: u64,
        index: usize,
        room: Arc<Mutex<RoomTracker>>,
        counters: &Counters,
    ) -> Result<Client, ClientError> {
        let socket = open(spec, counters).await?;
        let mut client = Client {
            socket,
            framing: spec.framing.clone(),
            doc: Doc::with_client_id(client_id),
            client_id,
            author: spec.author,
            index,
            room,
            // Any odd, non-zero seed will do; the client id makes each one's text differ.
            rng: client_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, client.handshake())
            .await
            .map_err(|_| ClientError::HandshakeTimeout(HANDSHAKE_TIMEOUT))??;
        Ok(client)
    }

    async fn send(&mut self, bytes: Vec<u8>) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.socket.send(WsMessage::Binary(bytes.into())).await
    }

    async fn handshake(&mut self) -> Result<(), ClientError> {
        if let Some(hello) = self.framing.hello("roundtable-load") {
            self.send(hello).await.map_err(|_| ClientError::Closed)?;
        }
        let state_vector = self.doc.transact().state_vector().encode_v1();
        let step1 = self.framing.sync_step_1(&state_vector);
        self.send(step1).await.map_err(|_| ClientError::Closed)?;
        loop {
            let Some(Ok(frame)) = self.socket.next().await else {
                return Err(ClientError::Closed);
            };
            let WsMessage::Binary(bytes) = frame else {
                continue;
            };
            match self.framing.read(&bytes)? {
                Incoming::SyncStep2(_) => return Ok(()),
                Incoming::SyncStep1(state_vector) => {
                    let answer = self.answer(state_vector);
                    self.send(answer).await.map_err(|_| ClientError::Closed)?;
                }
                Incoming::Denied(reason) => return Err(ClientError::Denied(reason)),
                Incoming::Update(_) | Incoming::Authenticated | Incoming::Other => {}
            }
        }
    }

    /// A SyncStep2 with what the server lacks of our own items.
    fn answer(&self, state_vector: &[u8]) -> Vec<u8> {
        let state_vector = StateVector::decode_v1(state_vector).unwrap_or_default();
        let update = self.doc.transact().encode_state_as_update_v1(&state_vector);
        self.framing.sync_step_2(&update)
    }

    fn random(&mut self) -> u64 {
        // xorshift64: fast and good enough to pick letters and schedule offsets.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Makes the next edit in the local document and returns its update and the
    /// client's clock just past it.
    fn edit(&mut self, number: u64, every: u64) -> (Vec<u8>, u32) {
        let item = format!("{}-{}", self.client_id, number / every);
        let board = Board::new(&self.doc);
        let letter = match self.random() % 27 {
            26 => ' ',
            n => char::from(b'a' + n as u8),
        };
        let mut txn = self.doc.transact_mut();
        if number.is_multiple_of(every) {
            let text = letter.to_string();
            board.add_item(
                &mut txn,
                NewItem {
                    id: &item,
                    heading: HEADING,
                    text: &text,
                    author: self.author,
                    said_by: None,
                    children: &[],
                },
            );
        } else {
            let mut buffer = [0; 4];
            board.insert_text(&mut txn, &item, u32::MAX, letter.encode_utf8(&mut buffer));
        }
        let update = txn.encode_update_v1();
        let end = txn.after_state().get(&ClientID::new(self.client_id));
        (update, end)
    }

    /// Types on schedule and reads what the others type until `stop` turns true.
    pub async fn run(
        mut self,
        workload: Workload,
        start: Instant,
        counters: Arc<Counters>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let period = workload.period;
        // Spread the clients over the period so they do not all type at once.
        let offset = period.mul_f64((self.random() % 10_000) as f64 / 10_000.0);
        let mut next = start + offset;
        let mut editing = true;
        let mut number = 0u64;
        let timer = tokio::time::sleep_until(next);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                frame = self.socket.next() => {
                    let at = std::time::Instant::now();
                    match frame {
                        Some(Ok(WsMessage::Binary(bytes))) => self.received(&bytes, at, &counters),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                () = &mut timer, if editing => {
                    let now = Instant::now();
                    if now >= workload.edit_until
                        || counters.edits_sent.fetch_add(1, Ordering::Relaxed) >= workload.max_edits
                    {
                        editing = false;
                        continue;
                    }
                    let lag = now.saturating_duration_since(next);
                    counters.max_lag_us.fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
                    if lag > Duration::from_millis(5) {
                        counters.late_edits.fetch_add(1, Ordering::Relaxed);
                    }
                    let (update, end) = self.edit(number, workload.new_item_every);
                    number += 1;
                    let message = self.framing.update(&update);
                    if let Ok(mut room) = self.room.lock() {
                        room.sent(self.index, end, std::time::Instant::now());
                    }
                    if self.send(message).await.is_err() {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    // A client that fell behind does not burst to catch up: it keeps
                    // the period from now, as a person would.
                    next = (next + period).max(Instant::now());
                    timer.as_mut().reset(next);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }

    fn received(&mut self, bytes: &[u8], at: std::time::Instant, counters: &Counters) {
        let update = match self.framing.read(bytes) {
            Ok(Incoming::Update(update) | Incoming::SyncStep2(update)) => update,
            Ok(Incoming::Denied(_)) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(_) => return,
            Err(_) => {
                counters.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Ok(reached) = reach(update) else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Ok(mut room) = self.room.lock() {
            for (client_id, clock) in reached {
                room.received(self.index, client_id, clock, at);
            }
        }
    }
}
