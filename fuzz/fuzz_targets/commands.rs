//! The JSON commands, sent in process through the real router (`roundtable_server::app`)
//! with SQLite storage: creating a conference, inviting, removing, new links, the
//! phase, the lobby, the safety scale (open, vote, vote for someone, close, reveal),
//! decisions, attendance, next meetings, closing and reopening, opening a join link;
//! and the reads that show what they stored (scales, the record, the audit view).
//!
//! Four bytes choose the request, the rest is its body:
//! 1. the route;
//! 2. the caller (by default the signed-in chair, or a participant for a vote; also
//!    the chair, a parent, a professional, the room display, another chair, nobody),
//!    whether the body is marked as JSON, and whether the request comes from another
//!    site's page (by its `Origin` or `Sec-Fetch-Site`);
//! 3. the conference (the fixture, another chair's, an unknown id, not an id);
//! 4. the other id in the path (a participant, someone in the lobby, a scale, a child;
//!    known or not).
//!
//! In the body, `$CONF`, `$OTHER`, `$CHILD`, `$CHILD2`, `$PARENT`, `$PRO`, `$SCALE`,
//! `$ROOM` and `$TOKEN` stand for the fixture's ids, room code and the parent's join
//! token, so the fuzzer can reach past "no such child".
//!
//! No answer may be a 5xx (a 503 only for a full lobby, as documented), and every
//! 4xx but 405 carries a JSON `{"error": "…"}`. Conferences the fuzzer creates are
//! deleted at once; the fixture is replaced (and deleted) every few hundred commands.

#![no_main]

use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use roundtable_fuzz::{Conference, Input, Server, panics, replace_all};
use roundtable_server::storage::SessionSubject;
use roundtable_shared::Role;
use serde_json::{Value, json};
use uuid::Uuid;

const INVITED: [Role; 4] = [
    Role::Parent,
    Role::Professional,
    Role::MinuteTaker,
    Role::RoomDisplay,
];
const PARENT: usize = 1;
const PROFESSIONAL: usize = 2;
const ROOM_DISPLAY: usize = 4;
/// The fixture is replaced after this many commands.
const COMMANDS_PER_FIXTURE: usize = 256;

const ROUTES: [(Method, &str); 24] = [
    (Method::POST, "/api/conferences"),
    (Method::POST, "/api/conferences/{id}/participants"),
    (Method::POST, "/api/conferences/{id}/phase"),
    (Method::POST, "/api/conferences/{id}/scales"),
    (Method::PUT, "/api/conferences/{id}/scales/{scale}/vote"),
    (
        Method::PUT,
        "/api/conferences/{id}/scales/{scale}/votes/{pid}",
    ),
    (Method::POST, "/api/conferences/{id}/scales/{scale}/close"),
    (Method::POST, "/api/conferences/{id}/scales/{scale}/reveal"),
    (Method::PUT, "/api/conferences/{id}/decisions/{child}"),
    (Method::PUT, "/api/conferences/{id}/attendance/{pid}"),
    (Method::PUT, "/api/conferences/{id}/next-meetings"),
    (Method::POST, "/api/conferences/{id}/close"),
    (Method::POST, "/api/conferences/{id}/reopen"),
    (Method::POST, "/api/conferences/{id}/lobby/{pid}/admit"),
    (Method::POST, "/api/conferences/{id}/lobby/{pid}/turn-away"),
    (Method::POST, "/api/lobby"),
    (Method::POST, "/api/join"),
    (Method::DELETE, "/api/conferences/{id}/participants/{pid}"),
    (
        Method::POST,
        "/api/conferences/{id}/participants/{pid}/link",
    ),
    (Method::GET, "/api/conferences/{id}/scales"),
    (Method::GET, "/api/conferences/{id}/record"),
    (Method::GET, "/api/conferences/{id}/audit"),
    (Method::GET, "/api/conferences/{id}"),
    (Method::GET, "/api/me"),
];
const VOTE: usize = 4;

struct Fixture {
    conference: Conference,
    /// Sessions by index in `conference.people` (the chair's first).
    sessions: Vec<String>,
    /// Another chair's conference, for commands on a conference not one's own.
    other: Conference,
    /// Scales opened, latest last.
    scales: Vec<Uuid>,
    /// People who asked to join from the lobby, latest last.
    waiting: Vec<Uuid>,
    commands: usize,
}

struct Harness {
    server: Server,
    other_chair: String,
    fixture: Fixture,
}

static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| {
        let server = Server::start();
        let other_chair = server.block_on(async {
            let id = server
                .add_chair("other.chair@example.org", "Kim Other")
                .await;
            roundtable_server::auth::start_session(&server.state, SessionSubject::Chair(id))
                .await
                .unwrap_or_else(|e| panics::fail(&format!("a session for another chair: {e}")))
        });
        let fixture = server.block_on(Fixture::new(&server, &other_chair));
        Mutex::new(Harness {
            server,
            other_chair,
            fixture,
        })
    });
    let mut harness = harness.lock().unwrap_or_else(|e| e.into_inner());
    roundtable_fuzz::history::record(data);
    let Harness {
        server,
        other_chair,
        fixture,
    } = &mut *harness;
    panics::run(|| server.block_on(fixture.run(server, other_chair, data)));
});

fn keep_last(list: &mut Vec<Uuid>, id: Uuid) {
    list.push(id);
    if list.len() > 4 {
        list.remove(0);
    }
}

impl Fixture {
    /// A conference with a parent, a professional, a minute-taker and the room display
    /// who have opened their links, an open scale, and someone waiting in the lobby.
    async fn new(server: &Server, other_chair: &str) -> Fixture {
        let chair = server.chair_session().to_owned();
        let conference = server.conference(&chair, &INVITED).await;
        let mut sessions = vec![chair.clone()];
        for person in &conference.people[1..] {
            let token = person.token.as_deref().unwrap_or_default();
            sessions.push(server.join(token).await);
        }
        let mut fixture = Fixture {
            other: server.conference(other_chair, &[Role::Parent]).await,
            conference,
            sessions,
            scales: Vec::new(),
            waiting: Vec::new(),
            commands: 0,
        };
        let id = fixture.conference.id;
        let opened = server
            .call(
                Method::POST,
                &format!("/api/conferences/{id}/scales"),
                Some(&chair),
                Some(&json!({ "subject": { "kind": "all_children" } })),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "a scale opens");
        fixture.learn(0, &opened.json());
        let asked = server
            .call(
                Method::POST,
                "/api/lobby",
                None,
                Some(
                    &json!({ "room_code": fixture.conference.room_code, "name": "Pat Neighbour" }),
                ),
            )
            .await;
        assert_eq!(asked.status, StatusCode::CREATED, "someone asks to join");
        fixture.learn(15, &asked.json());
        fixture
    }

    /// Remembers the ids a successful command made.
    fn learn(&mut self, route: usize, body: &Value) {
        let uuid = |v: &Value| v.as_str().and_then(|s| s.parse::<Uuid>().ok());
        match route {
            3 => {
                if let Some(id) = uuid(&body["id"]) {
                    keep_last(&mut self.scales, id);
                }
            }
            15 => {
                if let Some(id) = uuid(&body["participant"]["id"]) {
                    keep_last(&mut self.waiting, id);
                }
            }
            _ => {}
        }
    }

    fn placeholders(&self, body: &[u8]) -> Vec<u8> {
        let c = &self.conference;
        let child = |i: usize| c.children.get(i).copied().unwrap_or_default().to_string();
        let scale = self.scales.last().copied().unwrap_or_default().to_string();
        let token = c.people[PARENT].token.clone().unwrap_or_default();
        let pairs = [
            ("$CONF", c.id.to_string()),
            ("$OTHER", self.other.id.to_string()),
            ("$CHILD2", child(1)),
            ("$CHILD", child(0)),
            ("$PARENT", c.people[PARENT].id.to_string()),
            ("$PRO", c.people[PROFESSIONAL].id.to_string()),
            ("$SCALE", scale),
            ("$ROOM", c.room_code.clone()),
            ("$TOKEN", token),
        ];
        let mut body = body.to_vec();
        if !body.contains(&b'$') {
            return body;
        }
        for (name, value) in pairs {
            body = replace_all(&body, name.as_bytes(), value.as_bytes());
        }
        body
    }

    async fn run(&mut self, server: &Server, other_chair: &str, data: &[u8]) {
        let mut input = Input::new(data);
        let route = usize::from(input.byte()) % ROUTES.len();
        let how = input.byte();
        let which_conference = input.byte();
        let which = usize::from(input.byte());
        let body = self.placeholders(input.rest());

        let (method, template) = &ROUTES[route];
        let default = match route {
            VOTE if how & 0x40 != 0 => Some(self.sessions[PROFESSIONAL].as_str()),
            VOTE => Some(self.sessions[PARENT].as_str()),
            _ => Some(self.sessions[0].as_str()),
        };
        let session = match how & 7 {
            0 | 1 => default,
            2 => Some(self.sessions[0].as_str()),
            3 => Some(self.sessions[PARENT].as_str()),
            4 => Some(self.sessions[PROFESSIONAL].as_str()),
            5 => Some(self.sessions[ROOM_DISPLAY].as_str()),
            6 => Some(other_chair),
            _ => None,
        }
        .map(str::to_owned);
        let conference = match which_conference % 8 {
            0..=4 => self.conference.id.to_string(),
            5 => self.other.id.to_string(),
            6 => Uuid::from_u128(u128::from(which_conference)).to_string(),
            _ => "not-a-conference".to_owned(),
        };
        let people = &self.conference.people;
        let pid = match which % 8 {
            0..=4 => people[which % people.len()].id,
            5 | 6 => self.waiting.last().copied().unwrap_or_default(),
            _ => self.other.people[0].id,
        };
        let scale = self
            .scales
            .iter()
            .rev()
            .nth(which % 6)
            .copied()
            .unwrap_or_else(|| Uuid::from_u128(which as u128));
        let child = self
            .conference
            .children
            .get(which % 3)
            .copied()
            .unwrap_or_else(|| Uuid::from_u128(which as u128));
        let path = template
            .replace("{id}", &conference)
            .replace("{pid}", &pid.to_string())
            .replace("{scale}", &scale.to_string())
            .replace("{child}", &child.to_string());

        let mut request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header(header::HOST, "roundtable.example");
        if let Some(session) = &session {
            request = request.header(header::COOKIE, format!("rt_session={session}"));
        }
        if how & 0x08 == 0 {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        match how & 0x30 {
            0x30 => request = request.header(header::ORIGIN, "https://elsewhere.example"),
            0x20 => request = request.header("sec-fetch-site", "cross-site"),
            _ => {}
        }
        let request = request
            .body(Body::from(body.clone()))
            .unwrap_or_else(|e| panics::fail(&format!("a request could not be built: {e}")));
        let answer = server.request(request).await;
        panics::settle(false, "a command");

        let status = answer.status;
        let json = answer.json();
        let lobby_full = status == StatusCode::SERVICE_UNAVAILABLE
            && json["error"] == "the server is busy; please try again in a moment";
        if status.is_server_error() && !lobby_full {
            panics::fail(&format!(
                "{method} {path} answered {status} {json} to {:?}",
                String::from_utf8_lossy(&body)
            ));
        }
        if status.is_client_error()
            && status != StatusCode::METHOD_NOT_ALLOWED
            && !json["error"].is_string()
        {
            panics::fail(&format!(
                "{method} {path} answered {status} without a JSON error: {:?}",
                String::from_utf8_lossy(&answer.body)
            ));
        }
        if status.is_success() {
            self.learn(route, &json);
            if route == 0 {
                // A conference the fuzzer made: deleted at once, by its chair.
                let created = json["conference"]["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok());
                match (created, session) {
                    (Some(id), Some(session)) => server.delete_conference(&session, id).await,
                    _ => panics::fail("a conference was created without an id or a chair"),
                }
            }
        }

        self.commands += 1;
        if self.commands >= COMMANDS_PER_FIXTURE {
            let chair = server.chair_session();
            server.delete_conference(chair, self.conference.id).await;
            server.delete_conference(other_chair, self.other.id).await;
            *self = Fixture::new(server, other_chair).await;
            roundtable_fuzz::history::restart();
        }
    }
}
