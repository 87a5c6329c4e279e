//! What the fuzz targets share: the real server's state (SQLite storage in a scratch
//! directory, the rooms, the router), built once per process; conferences set up and
//! deleted through the real commands; connections to rooms; a reader for the fuzzer's
//! bytes; the panic watch (see [`panics`]); and the record of inputs that lets a
//! failure be replayed (see [`history`]).
//!
//! Everything runs on one current-thread tokio runtime, so a run is as repeatable as
//! the server allows (ids and tokens are still random).

pub mod connections;
pub mod history;
pub mod panics;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use roundtable_server::config::Config;
use roundtable_server::state::{AppState, Notices};
use roundtable_server::storage::{ChairRow, Storage};
use roundtable_server::sync::Limits;
use roundtable_server::sync::rooms::Rooms;
use roundtable_shared::{ChairId, ConferenceId, Role};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

pub const CHAIR_EMAIL: &str = "chair@example.org";
pub const CHAIR_PASSWORD: &str = "correct horse battery staple";

/// A directory for the database, in memory when `/dev/shm` exists so that SQLite's
/// `fsync` costs little. libFuzzer ends a run with `exit`, which skips `Drop`; so each
/// process names its directory after its pid, and removes those of processes that are
/// gone when it starts. `ROUNDTABLE_FUZZ_DIR` chooses where they go.
struct ScratchDir(PathBuf);

const SCRATCH_PREFIX: &str = "roundtable-fuzz-";

impl ScratchDir {
    fn new() -> ScratchDir {
        let base = std::env::var_os("ROUNDTABLE_FUZZ_DIR")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        remove_stale(&base);
        let dir = base.join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What the router answered.
pub struct Answer {
    pub status: StatusCode,
    /// The session cookie's value, if the answer sets one.
    pub session: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Someone taking part in a fixture conference.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// The join token (none for the chair, who signs in).
    pub token: Option<String>,
}

/// A conference made through `POST /api/conferences`.
#[derive(Debug, Clone)]
pub struct Conference {
    pub id: Uuid,
    pub room_code: String,
    pub children: Vec<Uuid>,
    /// The chair first (their participant record), then everyone invited, in order.
    pub people: Vec<Person>,
}

impl Conference {
    pub fn key(&self) -> ConferenceId {
        ConferenceId(self.id)
    }
}

/// The server, in process, without a socket.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    pub state: AppState,
    router: Router,
    chair_session: String,
    _dir: ScratchDir,
}

impl Server {
    /// Opens storage in a scratch directory, builds the state and the router, creates
    /// the chair's account and signs them in through `POST /api/session`.
    pub fn start() -> Server {
        panics::watch();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = ScratchDir::new();
        let state = runtime.block_on(async {
            let storage = Storage::open_sqlite(&dir.0.join("roundtable.sqlite3"))
                .await
                .expect("open the database");
            // Compacted more often than by default: a refused update reloads the
            // document, replaying every update since the last snapshot.
            let limits = Limits {
                compact_every: 50,
                ..Limits::default()
            };
            let config = Config {
                listen: "127.0.0.1:8080".parse().expect("an address"),
                data_dir: dir.0.clone(),
                database_url: None,
                client_dir: dir.0.join("client"),
                public_url: None,
                node_name: None,
                limits: limits.clone(),
                door: roundtable_server::door::Settings::out_of_reach(),
            };
            AppState {
                rooms: Arc::new(Rooms::new(storage.clone(), limits)),
                storage,
                config: Arc::new(config),
                notices: Arc::new(Notices::default()),
                // The targets are about who may do what, from one address many times
                // over: the front door's limits have tests of their own.
                door: Arc::new(roundtable_server::door::Door::new(
                    roundtable_server::door::Settings::out_of_reach(),
                )),
            }
        });
        let router = roundtable_server::app(state.clone());
        let mut server = Server {
            runtime,
            state,
            router,
            chair_session: String::new(),
            _dir: dir,
        };
        server.chair_session = server.block_on(async {
            server.add_chair(CHAIR_EMAIL, "Sam Chair").await;
            let answer = server
                .call(
                    Method::POST,
                    "/api/session",
                    None,
                    Some(&json!({ "email": CHAIR_EMAIL, "password": CHAIR_PASSWORD })),
                )
                .await;
            assert_eq!(answer.status, StatusCode::NO_CONTENT, "the chair signs in");
            answer.session.expect("a session cookie")
        });
        server
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn storage(&self) -> &Storage {
        &self.state.storage
    }

    pub fn rooms(&self) -> &Rooms {
        &self.state.rooms
    }

    pub fn limits(&self) -> &Limits {
        self.state.rooms.limits()
    }

    /// The signed-in chair's session cookie value.
    pub fn chair_session(&self) -> &str {
        &self.chair_session
    }

    /// Adds a chair account with [`CHAIR_PASSWORD`].
    pub async fn add_chair(&self, email: &str, name: &str) -> ChairId {
        let id = ChairId(Uuid::new_v4());
        self.storage()
            .insert_chair(&ChairRow {
                id,
                email: email.into(),
                name: name.into(),
                password_hash: roundtable_server::auth::hash_password(CHAIR_PASSWORD)
                    .expect("hash a password"),
            })
            .await
            .expect("add a chair");
        id
    }

    /// Sends one request through the router.
    pub async fn request(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let session = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next()?.strip_prefix("rt_session="))
            .find(|v| !v.is_empty())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Answer {
            status,
            session,
            body,
        }
    }

    /// A JSON request with an optional session cookie.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        session: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "roundtable.example");
        if let Some(session) = session {
            request = request.header(header::COOKIE, format!("rt_session={session}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.request(request.body(body).expect("a request")).await
    }

    /// Creates a conference with two children and one invited participant for each of
    /// `roles`, through the real command, as the chair with `session`.
    pub async fn conference(&self, session: &str, roles: &[Role]) -> Conference {
        let participants: Vec<Value> = roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let agency = match role {
                    Role::Professional if i % 2 == 0 => Some("Children's social care"),
                    Role::Professional => Some("Health visiting"),
                    _ => None,
                };
                json!({ "name": format!("{} {i}", role.label()), "role": role.as_str(), "agency": agency })
            })
            .collect();
        let created = self
            .call(
                Method::POST,
                "/api/conferences",
                Some(session),
                Some(&json!({
                    "title": "Alex and Sam Taylor",
                    "kind": "initial",
                    "scheduled_start": "2030-03-04T10:00:00+00:00",
                    "children": [{ "name": "Alex", "date_of_birth": "2019-04-30" }, { "name": "Sam" }],
                    "participants": participants,
                })),
            )
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "a conference is created"
        );
        let created = created.json();
        let uuid = |v: &Value| v.as_str().and_then(|s| s.parse::<Uuid>().ok());
        let id = uuid(&created["conference"]["id"]).expect("the conference's id");
        let shown = self
            .call(
                Method::GET,
                &format!("/api/conferences/{id}"),
                Some(session),
                None,
            )
            .await
            .json();
        let chair = Person {
            id: uuid(&shown["you"]["id"]).expect("the chair's participant id"),
            name: shown["you"]["name"].as_str().unwrap_or_default().to_owned(),
            role: Role::Chair,
            token: None,
        };
        let invited = created["participants"]
            .as_array()
            .expect("the invited participants")
            .iter()
            .zip(roles)
            .map(|(p, role)| Person {
                id: uuid(&p["participant"]["id"]).expect("a participant's id"),
                name: p["participant"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                role: *role,
                token: p["token"].as_str().map(str::to_owned),
            });
        Conference {
            id,
            room_code: created["conference"]["room_code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            children: shown["children"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| uuid(&c["id"]))
                .collect(),
            people: std::iter::once(chair).chain(invited).collect(),
        }
    }

    /// Opens a participant's join link as a browser does; returns their session.
    pub async fn join(&self, token: &str) -> String {
        let answer = self
            .call(
                Method::POST,
                "/api/join",
                None,
                Some(&json!({ "token": token })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "the join link opens");
        answer.session.expect("a session cookie")
    }

    /// Closes a conference through the real command (if it is open) and deletes it
    /// with everything about it, as retention does, so a long run's database stays
    /// small. Its rooms must have no connections left.
    pub async fn delete_conference(&self, session: &str, id: Uuid) {
        let closed = self
            .call(
                Method::POST,
                &format!("/api/conferences/{id}/close"),
                Some(session),
                None,
            )
            .await;
        if !matches!(closed.status, StatusCode::OK | StatusCode::CONFLICT) {
            panics::fail(&format!("closing a conference answered {}", closed.status));
        }
        match self
            .storage()
            .delete_closed_conference(ConferenceId(id), i64::MAX, false)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => panics::fail("a closed conference was not deleted"),
            Err(e) => panics::fail(&format!("deleting a conference failed: {e}")),
        }
    }
}

/// Reads the fuzzer's bytes as choices. Past the end, every read is zero, so any
/// input means something.
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input(data)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// One of `choices` (which must not be empty).
    pub fn pick<'c, T>(&mut self, choices: &'c [T]) -> &'c T {
        &choices[usize::from(self.byte()) % choices.len()]
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// A string of up to 255 bytes, its length first.
    pub fn text(&mut self) -> String {
        let n = usize::from(self.byte());
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
}

/// Replaces every occurrence of `from` in `data` with `to` (of any length).
pub fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() || data.len() < from.len() {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
