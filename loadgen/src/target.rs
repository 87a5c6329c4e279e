//! Setting up rooms on each kind of server: what URL each client opens, with which
//! headers and framing, and under which author id it writes.

use std::net::SocketAddr;

use roundtable_shared::ParticipantId;
use serde_json::{Value, json};

use crate::protocol::Framing;

/// The servers the generator knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// Roundtable: rooms are conferences created through its HTTP API.
    Roundtable,
    /// `@y/websocket-server`: the room is the URL path.
    YWebsocket,
    /// `@hocuspocus/server`: the room is named in every message.
    Hocuspocus,
    /// y-sweet: rooms are documents created through its HTTP API.
    YSweet,
}

/// How one client reaches its room.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub url: String,
    /// Sent as `Authorization: Bearer …` on the WebSocket upgrade.
    pub bearer: Option<String>,
    pub framing: Framing,
    /// Written as the author of the client's items. On Roundtable it must be the
    /// participant's own id; elsewhere any id will do, and a fresh one is used so the
    /// documents look the same everywhere.
    pub author: ParticipantId,
}

/// A chair account on a Roundtable server, to create conferences with.
#[derive(Debug, Clone)]
pub struct Chair {
    pub email: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0} refused: HTTP {1}: {2}")]
    Refused(&'static str, u16, String),
    #[error("{0}: {1}")]
    Http(&'static str, reqwest::Error),
    #[error("{0}: the answer lacks {1}")]
    Unexpected(&'static str, &'static str),
    #[error("a Roundtable target needs --chair-email and a chair password")]
    NoChair,
    #[error("the server sent a WebSocket address that is not on 127.0.0.1: {0}")]
    NotLoopback(String),
}

/// What a room setup needs to know.
pub struct Setup<'a> {
    pub kind: TargetKind,
    pub addr: SocketAddr,
    pub rooms: usize,
    pub clients: usize,
    /// Distinguishes this run's rooms from earlier runs' on the same server.
    pub run_id: &'a str,
    pub chair: Option<&'a Chair>,
    /// The role Roundtable participants are invited with.
    pub role: &'a str,
}

/// Creates the rooms and returns, per room, how each client connects.
pub async fn prepare(setup: &Setup<'_>) -> Result<Vec<Vec<ClientSpec>>, SetupError> {
    let http = reqwest::Client::builder()
        // The target is 127.0.0.1: a proxy from the environment must never be used.
        .no_proxy()
        .build()
        .map_err(|e| SetupError::Http("building the HTTP client", e))?;
    let mut rooms = Vec::with_capacity(setup.rooms);
    let session = match setup.kind {
        TargetKind::Roundtable => Some(sign_in(&http, setup).await?),
        _ => None,
    };
    for room in 0..setup.rooms {
        let name = format!("load-{}-{room}", setup.run_id);
        let specs = match setup.kind {
            TargetKind::Roundtable => {
                let cookie = session.as_deref().ok_or(SetupError::NoChair)?;
                roundtable_room(&http, setup, cookie, room).await?
            }
            TargetKind::YWebsocket => {
                let url = format!("ws://{}/{name}", setup.addr);
                same_for_all(setup.clients, url, Framing::Plain)
            }
            TargetKind::Hocuspocus => {
                let url = format!("ws://{}/", setup.addr);
                let framing = Framing::Hocuspocus { document: name };
                same_for_all(setup.clients, url, framing)
            }
            TargetKind::YSweet => {
                let url = y_sweet_doc(&http, setup.addr, &name).await?;
                same_for_all(setup.clients, url, Framing::Plain)
            }
        };
        rooms.push(specs);
    }
    Ok(rooms)
}

fn same_for_all(clients: usize, url: String, framing: Framing) -> Vec<ClientSpec> {
    (0..clients)
        .map(|_| ClientSpec {
            url: url.clone(),
            bearer: None,
            framing: framing.clone(),
            author: ParticipantId(uuid::Uuid::new_v4()),
        })
        .collect()
}

async fn post(
    http: &reqwest::Client,
    what: &'static str,
    url: String,
    cookie: Option<&str>,
    body: Value,
) -> Result<reqwest::Response, SetupError> {
    let mut request = http.post(url).json(&body);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request
        .send()
        .await
        .map_err(|e| SetupError::Http(what, e))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(SetupError::Refused(what, status.as_u16(), text));
    }
    Ok(response)
}

/// Signs the chair in and returns the session cookie as a `name=value` pair.
async fn sign_in(http: &reqwest::Client, setup: &Setup<'_>) -> Result<String, SetupError> {
    let chair = setup.chair.ok_or(SetupError::NoChair)?;
    let body = json!({"email": chair.email, "password": chair.password});
    let url = format!("http://{}/api/session", setup.addr);
    let response = post(http, "signing in", url, None, body).await?;
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with("rt_session="))
        .map(str::to_owned)
        .ok_or(SetupError::Unexpected("signing in", "a session cookie"))
}

/// Creates a conference with one participant per client; each connects with its own
/// join token, as a non-browser client does.
async fn roundtable_room(
    http: &reqwest::Client,
    setup: &Setup<'_>,
    cookie: &str,
    room: usize,
) -> Result<Vec<ClientSpec>, SetupError> {
    let participants: Vec<Value> = (0..setup.clients)
        .map(|i| json!({"name": format!("Load client {i}"), "role": setup.role, "agency": "Load"}))
        .collect();
    let body = json!({
        "title": format!("Load room {room} ({})", setup.run_id),
        "kind": "initial",
        "scheduled_start": "2030-01-07T10:00:00+00:00",
        "children": [{"name": "Alex"}],
        "headings_template": "four_headings",
        "participants": participants,
    });
    let url = format!("http://{}/api/conferences", setup.addr);
    let created: Value = post(http, "creating a conference", url, Some(cookie), body)
        .await?
        .json()
        .await
        .map_err(|e| SetupError::Http("reading the new conference", e))?;
    let what = "creating a conference";
    let id = created["conference"]["id"]
        .as_str()
        .ok_or(SetupError::Unexpected(what, "conference.id"))?;
    let url = format!("ws://{}/api/conferences/{id}/sync", setup.addr);
    created["participants"]
        .as_array()
        .ok_or(SetupError::Unexpected(what, "participants"))?
        .iter()
        .map(|p| {
            let token = p["token"]
                .as_str()
                .ok_or(SetupError::Unexpected(what, "a token"))?;
            let author = p["participant"]["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or(SetupError::Unexpected(what, "a participant id"))?;
            Ok(ClientSpec {
                url: url.clone(),
                bearer: Some(token.to_owned()),
                framing: Framing::Plain,
                author: ParticipantId(author),
            })
        })
        .collect()
}

/// Creates a y-sweet document and asks where clients connect to it. Without an auth
/// key y-sweet issues no tokens, and its answer's URL is built from our Host header.
async fn y_sweet_doc(
    http: &reqwest::Client,
    addr: SocketAddr,
    name: &str,
) -> Result<String, SetupError> {
    let what = "creating a y-sweet document";
    post(
        http,
        what,
        format!("http://{addr}/doc/new"),
        None,
        json!({"docId": name}),
    )
    .await?;
    let what = "asking y-sweet for a client token";
    let token: Value = post(
        http,
        what,
        format!("http://{addr}/doc/{name}/auth"),
        None,
        json!({}),
    )
    .await?
    .json()
    .await
    .map_err(|e| SetupError::Http(what, e))?;
    let base = token["url"]
        .as_str()
        .ok_or(SetupError::Unexpected(what, "url"))?;
    if !base.starts_with("ws://127.0.0.1:") {
        return Err(SetupError::NotLoopback(base.to_owned()));
    }
    // Its clients append the document id to the URL they are given.
    let mut url = format!("{base}/{name}");
    if let Some(token) = token["token"].as_str() {
        url.push_str("?token=");
        url.push_str(token);
    }
    Ok(url)
}
