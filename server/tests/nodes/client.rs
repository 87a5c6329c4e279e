//! One person's connection to one node, driving the browser's client session
//! (`roundtable_shared::session`) a step at a time, for tests that say exactly when
//! each thing happens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use roundtable_shared::ParticipantId;
use roundtable_shared::doc::{Board, NewItem};
use roundtable_shared::session::{Config, Output, Session};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use yrs::OffsetKind;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

const SESSION: Config = Config {
    offset_kind: OffsetKind::Bytes,
    first_wait: Duration::from_millis(50),
    longest_wait: Duration::from_millis(800),
};

use crate::typist::Socket;

pub struct Client {
    pub name: &'static str,
    participant: ParticipantId,
    session: Session,
    socket: Socket,
    /// Updates the server sent (relayed, or its whole document).
    pub received: Vec<Vec<u8>>,
    /// Refusals, with their reasons.
    pub refusals: Vec<String>,
    /// Whether the connection has ended, and with which close code.
    pub closed: bool,
    pub close_code: Option<u16>,
    /// Everyone's presence as the server relayed it: client id → (clock, state).
    pub presence: HashMap<u64, (u32, serde_json::Value)>,
}

/// Opens a connection to `url` as the holder of `token`, as a typist does.
async fn open(url: &str, token: &str) -> Socket {
    crate::typist::connect(
        url.to_owned(),
        token.to_owned(),
        tokio::time::Instant::now(),
    )
    .await
    .expect("connects")
}

impl Client {
    /// Connects and waits until the server's whole document has arrived.
    pub async fn connect(name: &'static str, url: &str, participant: &str, token: &str) -> Client {
        let mut client = Client {
            name,
            participant: participant.parse().expect("a participant id"),
            session: Session::new(SESSION),
            socket: open(url, token).await,
            received: Vec::new(),
            refusals: Vec::new(),
            closed: false,
            close_code: None,
            presence: HashMap::new(),
        };
        client.session.connection_opened();
        client.flush().await;
        client.wait_until("in step", |c| c.session.in_step()).await;
        client
    }

    /// Connects again, to `url`: the session sends what the server has not
    /// confirmed once it is in step.
    pub async fn reconnect(&mut self, url: &str, token: &str) {
        if !self.closed {
            let _ = self.socket.close(None).await;
            self.session.connection_closed(1000);
        }
        self.socket = open(url, token).await;
        self.closed = false;
        self.session.connection_opened();
        self.flush().await;
        self.wait_until("in step", |c| c.session.in_step()).await;
    }

    /// The id this client's changes and presence go by.
    pub fn client_id(&self) -> u64 {
        self.session.client_id().get()
    }

    /// Sends a presence state under `client` (our own id, or someone else's).
    pub async fn announce_as(&mut self, client: u64, clock: u32, state: serde_json::Value) {
        let update = AwarenessUpdate {
            clients: HashMap::from([(
                yrs::ClientID::new(client),
                AwarenessUpdateEntry {
                    clock,
                    json: state.to_string().into(),
                },
            )]),
        };
        let frame = Message::Awareness(update).encode_v1();
        self.closed |= self
            .socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .is_err();
    }

    /// The presence state the server relayed under `client`, if any.
    pub fn presence_of(&self, client: u64) -> Option<&serde_json::Value> {
        self.presence.get(&client).map(|(_, state)| state)
    }

    /// The names of everyone present, as the server put them on their states.
    pub fn names_present(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .presence
            .values()
            .filter_map(|(_, state)| state["user"]["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    pub fn has_unconfirmed(&self) -> bool {
        self.session.unconfirmed() > 0
    }

    /// Our changes the server has not confirmed, as one update.
    pub fn unconfirmed_update(&self) -> Option<Vec<u8>> {
        self.session.unconfirmed_update()
    }

    /// Sends what the session asks to send; notes what it says.
    async fn flush(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Send(frame) if !self.closed => {
                    let sent = self.socket.send(WsMessage::Binary(frame.into())).await;
                    self.closed = sent.is_err();
                }
                Output::Refused(reason) => self.refusals.push(reason),
                // The test connects again itself, where it wants.
                Output::Reconnect(_) | Output::ConnectAfter(_) => {}
                Output::Stopped(why) => panic!("{} was turned away: {why:?}", self.name),
                Output::Unreadable(what) => panic!("{}: {what}", self.name),
                _ => {}
            }
        }
    }

    /// Reads what the server sends until `done`, failing after a few seconds.
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let until = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            assert!(
                !self.closed,
                "{}'s connection ended before {what}",
                self.name
            );
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} was not {what} in time", self.name);
            if let Ok(frame) = tokio::time::timeout(left, self.socket.next()).await {
                self.handle(frame).await;
            }
        }
    }

    /// Handles what the socket gave: a message, or its end.
    async fn handle(&mut self, frame: Option<Result<WsMessage, WsError>>) {
        match frame {
            Some(Ok(WsMessage::Binary(bytes))) => {
                match Message::decode_v1(&bytes) {
                    Ok(Message::Sync(
                        SyncMessage::SyncStep2(update) | SyncMessage::Update(update),
                    )) => self.received.push(update),
                    Ok(Message::Awareness(update)) => {
                        for (client, entry) in update.clients {
                            if entry.json.as_ref() == "null" {
                                self.presence.remove(&client.get());
                            } else if let Ok(state) = serde_json::from_str(&entry.json) {
                                self.presence.insert(client.get(), (entry.clock, state));
                            }
                        }
                    }
                    _ => {}
                }
                self.session.received(&bytes);
                self.flush().await;
            }
            Some(Ok(WsMessage::Close(frame))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                self.closed = true;
                self.close_code = Some(code);
                self.session.connection_closed(code);
            }
            None | Some(Err(_)) => {
                self.closed = true;
                self.session.connection_closed(1006);
            }
            Some(Ok(_)) => {}
        }
    }

    /// Adds an item of ours to the board, and sends it.
    pub async fn add_item(&mut self, id: &str, text: &str) {
        let author = self.participant;
        self.session
            .edit(|txn| {
                Board::in_txn(txn).add_item(
                    txn,
                    NewItem {
                        id,
                        heading: "worries",
                        text,
                        author,
                        said_by: None,
                        children: &[],
                    },
                )
            })
            .expect("the edit changes the document");
        self.flush().await;
    }

    /// Waits until the server has confirmed every change of ours.
    pub async fn saved(&mut self) {
        self.wait_until("confirmed as saved", |c| c.session.unconfirmed() == 0)
            .await;
    }

    /// The board's items, by id, with their text.
    pub fn items(&self) -> Vec<(String, String)> {
        let txn = yrs::Transact::transact(self.session.doc());
        Board::get(&txn)
            .map(|b| b.items(&txn).into_iter().map(|i| (i.id, i.text)).collect())
            .unwrap_or_default()
    }

    /// The meeting's phase, as our copy has it.
    pub fn phase(&self) -> Option<roundtable_shared::Phase> {
        roundtable_shared::doc::read_phase(&yrs::Transact::transact(self.session.doc()))
    }

    pub fn has_item(&self, id: &str) -> bool {
        self.items().iter().any(|(i, _)| i == id)
    }

    /// Waits for anything still on its way (a relay, say) for a moment.
    pub async fn linger(&mut self, time: Duration) {
        let until = Instant::now() + time;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closed {
                return;
            }
            match tokio::time::timeout(left, self.socket.next()).await {
                Ok(frame) => self.handle(frame).await,
                Err(_) => return,
            }
        }
    }

    /// The state vector of our copy.
    pub fn state_vector(&self) -> yrs::StateVector {
        yrs::ReadTxn::state_vector(&yrs::Transact::transact(self.session.doc()))
    }
}
