//! A real server on port 0 with a fresh database, and typed helpers to drive it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use roundtable_server::storage::ChairRow;
use roundtable_server::sync::Limits;
use roundtable_server::{Config, Running, auth};
use roundtable_shared::ChairId;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, TransactionMut, Update};

use crate::database::{Beside, TestDatabase};

pub const CHAIR_EMAIL: &str = "chair@example.org";
pub const CHAIR_PASSWORD: &str = "correct horse battery staple";
pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    data_dir: tempfile::TempDir,
    limits: Limits,
    /// `--public-url`: where people reach the server (behind a TLS proxy if https).
    public_url: Option<String>,
    door: roundtable_server::door::Settings,
    running: Option<Running>,
    /// Last, so that the server stops before its database goes.
    database: TestDatabase,
}

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../client/dist")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Limits::default()).await
    }

    pub async fn spawn_with(limits: Limits) -> TestApp {
        Self::spawn_configured(limits, None).await
    }

    /// A server whose public address is `public_url`, as behind a TLS proxy.
    pub async fn spawn_behind(public_url: &str) -> TestApp {
        Self::spawn_configured(Limits::default(), Some(public_url.to_owned())).await
    }

    /// A server keeping its database in `data_dir` (SQLite's file; PostgreSQL keeps
    /// it on the cluster whatever `data_dir` is).
    pub async fn spawn_in(data_dir: tempfile::TempDir, limits: Limits) -> TestApp {
        Self::spawn_full(data_dir, limits, None, Default::default()).await
    }

    /// A server with the front door's limits set to `door`.
    pub async fn spawn_with_door(door: roundtable_server::door::Settings) -> TestApp {
        Self::spawn_full(
            tempfile::tempdir().expect("temp dir"),
            Limits::default(),
            None,
            door,
        )
        .await
    }

    async fn spawn_configured(limits: Limits, public_url: Option<String>) -> TestApp {
        Self::spawn_full(
            tempfile::tempdir().expect("temp dir"),
            limits,
            public_url,
            Default::default(),
        )
        .await
    }

    /// A server with both the sync limits and the front door's set.
    pub async fn spawn_limited(limits: Limits, door: roundtable_server::door::Settings) -> TestApp {
        Self::spawn_full(tempfile::tempdir().expect("temp dir"), limits, None, door).await
    }

    async fn spawn_full(
        data_dir: tempfile::TempDir,
        limits: Limits,
        public_url: Option<String>,
        door: roundtable_server::door::Settings,
    ) -> TestApp {
        let mut app = TestApp {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            limits,
            public_url,
            door,
            running: None,
            database: TestDatabase::create().await,
        };
        app.start("127.0.0.1:0".parse().unwrap()).await;
        let hash = auth::hash_password(CHAIR_PASSWORD).unwrap();
        app.running
            .as_ref()
            .unwrap()
            .state
            .storage
            .insert_chair(&ChairRow {
                id: ChairId(uuid::Uuid::new_v4()),
                email: CHAIR_EMAIL.into(),
                name: "Sam Chair".into(),
                password_hash: hash,
            })
            .await
            .unwrap();
        app
    }

    async fn start(&mut self, listen: std::net::SocketAddr) {
        let config = Config {
            listen,
            data_dir: self.data_dir.path().to_owned(),
            database_url: self.database.url(),
            client_dir: client_dir(),
            public_url: self.public_url.clone(),
            node_name: None,
            limits: self.limits.clone(),
            door: self.door.clone(),
        };
        let running = roundtable_server::start(config)
            .await
            .expect("server starts");
        self.addr = running.addr;
        self.running = Some(running);
    }

    /// Stops the server gracefully and starts it again on the same database and port.
    pub async fn restart(&mut self) {
        let running = self.running.take().expect("running");
        running.stop().await.expect("stops cleanly");
        let addr = self.addr;
        self.start(addr).await;
    }

    /// A connection to the server's database beside the server's own, as another
    /// program would open.
    pub async fn beside(&self) -> Beside {
        self.database.connect(self.data_dir.path()).await
    }

    /// The command line's arguments that name the server's database.
    pub fn database_arguments(&self) -> Vec<std::ffi::OsString> {
        self.database.arguments(self.data_dir.path())
    }

    pub fn storage(&self) -> &roundtable_server::storage::Storage {
        &self.running.as_ref().expect("running").state.storage
    }

    /// Adds another chair account and signs them in.
    pub async fn another_chair(&self, email: &str) -> reqwest::Client {
        self.storage()
            .insert_chair(&ChairRow {
                id: ChairId(uuid::Uuid::new_v4()),
                email: email.into(),
                name: "Another Chair".into(),
                password_hash: auth::hash_password(CHAIR_PASSWORD).unwrap(),
            })
            .await
            .unwrap();
        let chair = self.browser();
        let response = chair
            .post(self.url("/api/session"))
            .json(&json!({ "email": email, "password": CHAIR_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        chair
    }

    pub fn door(&self) -> &roundtable_server::door::Door {
        &self.running.as_ref().expect("running").state.door
    }

    pub fn rooms(&self) -> &roundtable_server::sync::rooms::Rooms {
        &self.running.as_ref().expect("running").state.rooms
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// An HTTP client with its own cookie jar.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap()
    }

    pub async fn signed_in_chair(&self) -> reqwest::Client {
        let chair = self.browser();
        let response = chair
            .post(self.url("/api/session"))
            .json(&json!({ "email": CHAIR_EMAIL, "password": CHAIR_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        chair
    }

    /// Creates a conference with the given participants (name, role); returns its id
    /// and each participant's (id, token).
    pub async fn conference(
        &self,
        chair: &reqwest::Client,
        people: &[(&str, &str)],
    ) -> (String, Vec<(String, String)>) {
        let participants: Vec<Value> = people
            .iter()
            .map(|(name, role)| json!({ "name": name, "role": role, "agency": if *role == "professional" { Some("Health visiting") } else { None } }))
            .collect();
        let response = chair
            .post(self.url("/api/conferences"))
            .json(&json!({
                "title": "Initial child protection conference",
                "kind": "initial",
                "scheduled_start": "2026-12-01T10:00:00+00:00",
                "children": [{ "name": "Jamie", "date_of_birth": "2019-04-30" }],
                "participants": participants,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let id = body["conference"]["id"].as_str().unwrap().to_owned();
        let people = body["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["participant"]["id"].as_str().unwrap().to_owned(),
                    p["token"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (id, people)
    }

    /// GETs `path` with `client`'s cookies and reads the JSON answer.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> Value {
        let response = client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// The room code of a conference, as its chair sees it.
    pub async fn room_code(&self, chair: &reqwest::Client, conference: &str) -> String {
        let detail = self
            .get_json(chair, &format!("/api/conferences/{conference}"))
            .await;
        detail["room_code"].as_str().unwrap().to_owned()
    }

    /// Opens the conference's sync socket with a participant's token.
    pub async fn connect(&self, conference: &str, token: &str) -> SyncClient {
        self.try_connect(conference, token).await.expect("connects")
    }

    pub async fn try_connect(&self, conference: &str, token: &str) -> Result<SyncClient, u16> {
        // Made as every replica is, without garbage collection (`doc::document_options`).
        let doc = roundtable_shared::doc::new_document();
        SyncClient::open(self.sync_request(conference, token), doc).await
    }

    /// Opens the conference's sync socket with a document that goes by `client_id`.
    pub async fn connect_as(
        &self,
        conference: &str,
        token: &str,
        client_id: yrs::ClientID,
    ) -> SyncClient {
        let doc = Doc::with_options(yrs::Options {
            client_id,
            ..roundtable_shared::doc::document_options()
        });
        SyncClient::open(self.sync_request(conference, token), doc)
            .await
            .expect("connects")
    }

    /// Connects again with the document `client` kept while it was away, as a stock
    /// client does: the server is sent what it lacks, and sends what the client lacks.
    pub async fn reconnect(&self, client: SyncClient, conference: &str, token: &str) -> SyncClient {
        SyncClient::open(self.sync_request(conference, token), client.doc)
            .await
            .expect("connects again")
    }

    /// The request that opens a conference's sync socket with a participant's token.
    pub fn sync_request(
        &self,
        conference: &str,
        token: &str,
    ) -> tungstenite::handshake::client::Request {
        let authorization = format!("Bearer {token}");
        self.request(
            &format!("/api/conferences/{conference}/sync"),
            &[("authorization", authorization.as_str())],
        )
    }

    /// Opens a sync socket at `path` with the given request headers (a cookie, a
    /// bearer token, an `Origin`); the status of the refusal if it is refused.
    pub async fn try_open(&self, path: &str, headers: &[(&str, &str)]) -> Result<SyncClient, u16> {
        let doc = roundtable_shared::doc::new_document();
        SyncClient::open(self.request(path, headers), doc).await
    }

    fn request(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> tungstenite::handshake::client::Request {
        let mut request = self.ws_url(path).into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        request
    }
}

/// The status and the `error` sentence of an answer.
pub async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Yjs client over a real WebSocket, as a stock client would behave.
pub struct SyncClient {
    socket: Socket,
    pub doc: Doc,
    /// Reasons given by the server for refusing this client's updates.
    pub refusals: Vec<String>,
    /// Presence states by Yjs client id (JSON), as last received.
    pub presence: std::collections::HashMap<yrs::ClientID, Value>,
    /// The close frame, once the server has closed the connection.
    pub closed: Option<Option<CloseFrame>>,
    /// The numbers of the "saved?" questions the server has answered.
    pub saved: Vec<u32>,
    /// How many bytes of presence messages have arrived.
    pub presence_bytes: usize,
    /// Whether the server's state has arrived (its first SyncStep2).
    synced: bool,
}

impl SyncClient {
    async fn open(
        request: tungstenite::handshake::client::Request,
        doc: Doc,
    ) -> Result<SyncClient, u16> {
        let (socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(ok) => ok,
            Err(tungstenite::Error::Http(response)) => return Err(response.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        };
        let mut client = SyncClient {
            socket,
            doc,
            refusals: Vec::new(),
            presence: Default::default(),
            closed: None,
            saved: Vec::new(),
            presence_bytes: 0,
            synced: false,
        };
        let sv = client.doc.transact().state_vector();
        client.send(Message::Sync(SyncMessage::SyncStep1(sv))).await;
        // The server greets with its state (a restricted document may still be empty).
        client.wait_until(|c| c.synced).await;
        Ok(client)
    }

    pub async fn send(&mut self, message: Message) {
        self.send_raw(message.encode_v1()).await;
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        let _ = self.socket.send(WsMessage::Binary(bytes.into())).await;
    }

    pub async fn send_frame(&mut self, frame: WsMessage) {
        let _ = self.socket.send(frame).await;
    }

    /// Makes a local edit and sends it to the server as an update.
    pub async fn edit(&mut self, f: impl FnOnce(&mut TransactionMut)) -> Vec<u8> {
        let update = {
            let mut txn = self.doc.transact_mut();
            f(&mut txn);
            txn.encode_update_v1()
        };
        self.send(Message::Sync(SyncMessage::Update(update.clone())))
            .await;
        update
    }

    /// Adds an item under "worries" with `text`, written by `author`, and sends it.
    pub async fn add_item(
        &mut self,
        id: &str,
        author: roundtable_shared::ParticipantId,
        text: &str,
    ) -> Vec<u8> {
        self.edit(|txn| {
            roundtable_shared::doc::Board::in_txn(txn).add_item(
                txn,
                roundtable_shared::doc::NewItem {
                    id,
                    heading: "worries",
                    text,
                    author,
                    said_by: None,
                    children: &[],
                },
            )
        })
        .await
    }

    /// Closes the connection from this side and keeps the document, to edit offline
    /// and to [`TestApp::reconnect`] with.
    pub async fn go_offline(&mut self) {
        let _ = self.socket.close(None).await;
        self.closed.get_or_insert(None);
    }

    fn apply(&self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("valid update");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("applies");
    }

    /// Handles one incoming message; false once the connection is closed.
    async fn pump_one(&mut self, until: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let frame = match tokio::time::timeout_at(until.into(), self.socket.next()).await {
            Err(_) => return true,
            Ok(None) | Ok(Some(Err(_))) => {
                self.closed.get_or_insert(None);
                return false;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            WsMessage::Binary(bytes) => {
                if bytes.first() == Some(&1) {
                    self.presence_bytes += bytes.len();
                }
                match Message::decode_v1(&bytes).expect("server sends valid messages") {
                    Message::Sync(SyncMessage::SyncStep1(sv)) => {
                        let diff = self.doc.transact().encode_state_as_update_v1(&sv);
                        self.send(Message::Sync(SyncMessage::SyncStep2(diff))).await;
                    }
                    Message::Sync(SyncMessage::SyncStep2(u)) => {
                        self.apply(&u);
                        self.synced = true;
                    }
                    Message::Sync(SyncMessage::Update(u)) => self.apply(&u),
                    Message::Auth(reason) => self.refusals.push(reason.unwrap_or_default()),
                    Message::Custom(roundtable_shared::protocol::SAVED, data) => {
                        self.saved
                            .extend(roundtable_shared::protocol::decode_saved(&data));
                    }
                    Message::Awareness(update) => {
                        for (id, entry) in update.clients {
                            if entry.json.as_ref() == "null" {
                                self.presence.remove(&id);
                            } else {
                                self.presence
                                    .insert(id, serde_json::from_str(&entry.json).unwrap());
                            }
                        }
                    }
                    _ => {}
                }
            }
            WsMessage::Close(frame) => {
                self.closed = Some(frame);
                return false;
            }
            _ => {}
        }
        true
    }

    /// Reads messages until `done` holds, or panics at the deadline.
    pub async fn wait_until(&mut self, done: impl Fn(&SyncClient) -> bool) {
        self.wait_within(DEADLINE, done).await
    }

    /// Reads messages until `done` holds, or panics after `within`.
    pub async fn wait_within(&mut self, within: Duration, done: impl Fn(&SyncClient) -> bool) {
        let until = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < until,
                "condition not met before the deadline"
            );
            if !self.pump_one(until).await && !done(self) {
                panic!(
                    "connection closed before the condition was met: {:?}",
                    self.closed
                );
            }
        }
    }

    /// Reads messages for a short while, to show that something does NOT arrive.
    pub async fn settle(&mut self, how_long: Duration) {
        let until = Instant::now() + how_long;
        while Instant::now() < until && self.pump_one(until).await {}
    }

    /// Waits for the server to close the connection; returns the close frame.
    pub async fn wait_closed(&mut self) -> Option<CloseFrame> {
        let until = Instant::now() + DEADLINE;
        while self.closed.is_none() {
            assert!(
                Instant::now() < until,
                "connection not closed before the deadline"
            );
            self.pump_one(until).await;
        }
        self.closed.clone().flatten()
    }

    /// The whole document as one update, for comparing replicas.
    pub fn state(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Whether this client's document holds everything in `state`.
    pub fn contains(&self, state: &[u8]) -> bool {
        let theirs = Update::decode_v1(state).unwrap().state_vector();
        let ours = self.doc.transact().state_vector();
        theirs
            .iter()
            .all(|(client, clock)| ours.get(client) >= *clock)
    }

    pub fn board(&self) -> Vec<roundtable_shared::doc::BoardItem> {
        let board = roundtable_shared::doc::Board::new(&self.doc);
        board.items(&self.doc.transact())
    }
}
