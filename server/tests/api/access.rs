//! Who may do what. Every command and read of the HTTP API, and every part of both
//! documents, is tried by every role, by a chair and a participant of another
//! conference, by someone signed out, someone removed and someone still waiting in the
//! lobby, and each answer is checked against what `docs/api.md` says the caller may do.
//! Then: requests from another site's page, sessions and links that expire, and a
//! removal that ends everything of the person removed at once.

mod cross_site;
mod documents;
mod matrix;
mod removal;
mod sessions;

use roundtable_server::auth;
use roundtable_server::storage::{SessionSubject, now_ms};
use roundtable_shared::{ChairId, Role};
use serde_json::{Value, json};

use crate::helpers::{SyncClient, TestApp};

/// The date every conference here is held on; the next meetings are set after it.
const HELD: &str = "2026-12-01T10:00:00+00:00";

/// How a request proves who is calling.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    Nobody,
    /// A browser's session cookie.
    Cookie(String),
    /// A join token sent by a client that is not a browser.
    Bearer(String),
}

impl Credential {
    /// The request header that carries it, if any.
    pub(crate) fn header(&self) -> Option<(&'static str, String)> {
        match self {
            Self::Nobody => None,
            Self::Cookie(session) => {
                Some(("cookie", format!("{}={session}", auth::SESSION_COOKIE)))
            }
            Self::Bearer(token) => Some(("authorization", format!("Bearer {token}"))),
        }
    }

    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.header() {
            Some((name, value)) => request.header(name, value),
            None => request,
        }
    }
}

/// The session cookie a response sets.
pub(crate) fn session_set_by(response: &reqwest::Response) -> String {
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let pair = cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// Someone invited to a conference: their participant id, their join token, and the
/// session a browser got by opening their link.
#[derive(Clone, Debug, Default)]
pub(crate) struct Person {
    pub id: String,
    pub token: String,
    pub session: String,
}

impl Person {
    pub(crate) fn cookie(&self) -> Credential {
        Credential::Cookie(self.session.clone())
    }

    pub(crate) fn link(&self) -> Credential {
        Credential::Bearer(self.token.clone())
    }
}

/// What the conference has been through before a row of the matrix is tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Before {
    Nothing,
    /// A safety scale is open.
    OpenScale,
    /// A safety scale is closed, not yet revealed.
    ClosedScale,
    /// The conference is closed.
    Closed,
    /// A scale was open when the conference was closed.
    ClosedWithOpenScale,
}

/// The conference the matrix is about: its chair, someone in every role, someone to
/// act on, someone removed and two people waiting in the lobby.
pub(crate) struct Scene {
    pub conference: String,
    pub room_code: String,
    /// The chair's session, and their own participant record.
    pub chair: Credential,
    pub chair_pid: String,
    /// The chair of another conference, signed in.
    pub other_chair: Credential,
    pub child: String,
    /// Everyone but the chair, in the order of `Role::ALL`.
    pub roles: Vec<(Role, Person)>,
    /// A professional other commands act on (removed, given a link, scored for…).
    pub target: Person,
    /// A professional removed by the chair after opening their link.
    pub removed: Person,
    /// Someone waiting in the lobby, and the session they got there.
    pub waiting: Credential,
    /// Someone else waiting in the lobby, whom the chair admits or turns away.
    pub waiting_target: String,
    pub scale: Option<String>,
    /// The professional of the other conference, with a session of their own.
    pub elsewhere: Person,
}

impl Scene {
    pub(crate) fn person(&self, role: Role) -> &Person {
        &self
            .roles
            .iter()
            .find(|(r, _)| *r == role)
            .expect("everyone but the chair has a role in the scene")
            .1
    }

    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/api/conferences/{}{rest}", self.conference)
    }
}

/// The other conference, of another chair: a professional there, someone in its
/// lobby, its open scale and its child.
#[derive(Default)]
pub(crate) struct Elsewhere {
    pub professional: Person,
    pub waiting: String,
    pub scale: String,
    pub child: String,
}

/// A server with two chairs, the second running a conference of their own.
pub(crate) struct World {
    pub app: TestApp,
    pub http: reqwest::Client,
    chair: ChairId,
    other_chair: ChairId,
    pub elsewhere: Elsewhere,
}

impl World {
    pub(crate) async fn new() -> World {
        // Every caller signs in, opens links and enters the lobby from one address,
        // many times over: the front door's limits (`door.rs`) are set out of reach.
        let app = TestApp::spawn_with_door(roundtable_server::door::Settings::out_of_reach()).await;
        let http = reqwest::Client::new();
        let chair = chair_id(&app, &app.signed_in_chair().await).await;
        let other_chair = chair_id(&app, &app.another_chair("other@example.org").await).await;
        let mut world = World {
            app,
            http,
            chair,
            other_chair,
            elsewhere: Elsewhere::default(),
        };
        let chair = world.session_of(world.other_chair).await;
        let created = world
            .create_conference(&chair, &[("Pat Elsewhere", "professional", Some("Police"))])
            .await;
        let conference = created["conference"]["id"].as_str().unwrap().to_owned();
        let invited = &created["participants"][0];
        let professional = world.open_link(invited).await;
        let room_code = created["conference"]["room_code"].as_str().unwrap();
        let (_, waiting) = world.enter_lobby(room_code, "Nan Elsewhere").await;
        let scale = world.open_scale(&chair, &conference).await;
        world.elsewhere = Elsewhere {
            child: created["conference"]["children"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            professional,
            waiting,
            scale,
        };
        world
    }

    /// A new session for a chair, as signing in would give. Each scene has sessions of
    /// its own, since the matrix signs everyone out.
    async fn session_of(&self, chair: ChairId) -> Credential {
        let session = auth::new_token();
        self.app
            .storage()
            .insert_session(
                &auth::token_hash(&session),
                SessionSubject::Chair(chair),
                now_ms() + auth::SESSION_LIFETIME_MS,
            )
            .await
            .unwrap();
        Credential::Cookie(session)
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &Credential,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = who.apply(self.http.request(method, self.app.url(path)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn create_conference(
        &self,
        chair: &Credential,
        people: &[(&str, &str, Option<&str>)],
    ) -> Value {
        let participants: Vec<Value> = people
            .iter()
            .map(|(name, role, agency)| json!({ "name": name, "role": role, "agency": agency }))
            .collect();
        let body = json!({
            "title": "Initial child protection conference",
            "kind": "initial",
            "scheduled_start": HELD,
            "children": [{ "name": "Jamie", "date_of_birth": "2019-04-30" }],
            "participants": participants,
        });
        let response = self
            .send(reqwest::Method::POST, "/api/conferences", chair, Some(body))
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Opens an invited participant's link in a browser.
    async fn open_link(&self, invited: &Value) -> Person {
        let token = invited["token"].as_str().unwrap().to_owned();
        let response = self
            .send(
                reqwest::Method::POST,
                "/api/join",
                &Credential::Nobody,
                Some(json!({ "token": token })),
            )
            .await;
        assert_eq!(response.status(), 200);
        Person {
            id: invited["participant"]["id"].as_str().unwrap().to_owned(),
            token,
            session: session_set_by(&response),
        }
    }

    /// Someone asks to join from the lobby: their session and participant id.
    async fn enter_lobby(&self, room_code: &str, name: &str) -> (Credential, String) {
        let response = self
            .send(
                reqwest::Method::POST,
                "/api/lobby",
                &Credential::Nobody,
                Some(json!({ "room_code": room_code, "name": name })),
            )
            .await;
        assert_eq!(response.status(), 201);
        let session = session_set_by(&response);
        let body: Value = response.json().await.unwrap();
        (
            Credential::Cookie(session),
            body["participant"]["id"].as_str().unwrap().to_owned(),
        )
    }

    async fn open_scale(&self, chair: &Credential, conference: &str) -> String {
        let response = self
            .send(
                reqwest::Method::POST,
                &format!("/api/conferences/{conference}/scales"),
                chair,
                Some(json!({ "subject": { "kind": "all_children" } })),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    async fn chair_post(&self, scene: &Scene, rest: &str) {
        let response = self
            .send(reqwest::Method::POST, &scene.path(rest), &scene.chair, None)
            .await;
        assert_eq!(response.status(), 200, "{rest}");
    }

    /// The other conference's professional, with a new browser session.
    async fn signed_in_elsewhere(&self) -> Person {
        let mut person = self.elsewhere.professional.clone();
        let response = self
            .send(
                reqwest::Method::POST,
                "/api/join",
                &Credential::Nobody,
                Some(json!({ "token": person.token })),
            )
            .await;
        assert_eq!(response.status(), 200);
        person.session = session_set_by(&response);
        person
    }

    /// A new conference with everyone the matrix needs, after `before`.
    pub(crate) async fn scene(&self, before: Before) -> Scene {
        let chair = self.session_of(self.chair).await;
        let other_chair = self.session_of(self.other_chair).await;
        let mut people: Vec<(String, Role, Option<&str>)> = Role::ALL[1..]
            .iter()
            .map(|role| (format!("Someone {}", role.as_str()), *role, None))
            .collect();
        people.push((
            "Kim Target".into(),
            Role::Professional,
            Some("Health visiting"),
        ));
        people.push(("Rory Removed".into(), Role::Professional, Some("School")));
        let asked: Vec<(&str, &str, Option<&str>)> = people
            .iter()
            .map(|(name, role, agency)| (name.as_str(), role.as_str(), *agency))
            .collect();
        let created = self.create_conference(&chair, &asked).await;
        let conference = created["conference"]["id"].as_str().unwrap().to_owned();
        let room_code = created["conference"]["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut invited = Vec::new();
        for person in created["participants"].as_array().unwrap() {
            invited.push(self.open_link(person).await);
        }
        let removed = invited.pop().unwrap();
        let target = invited.pop().unwrap();
        let roles = Role::ALL[1..].iter().copied().zip(invited).collect();
        let (waiting, _) = self.enter_lobby(&room_code, "Lee Waiting").await;
        let (_, waiting_target) = self.enter_lobby(&room_code, "Nan Waiting").await;
        let shown: Value = self
            .send(
                reqwest::Method::GET,
                &format!("/api/conferences/{conference}"),
                &chair,
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        let mut scene = Scene {
            chair_pid: shown["you"]["id"].as_str().unwrap().to_owned(),
            child: shown["children"][0]["id"].as_str().unwrap().to_owned(),
            conference,
            room_code,
            chair,
            other_chair,
            roles,
            target,
            removed,
            waiting,
            waiting_target,
            scale: None,
            elsewhere: self.signed_in_elsewhere().await,
        };
        let gone = self
            .send(
                reqwest::Method::DELETE,
                &scene.path(&format!("/participants/{}", scene.removed.id)),
                &scene.chair,
                None,
            )
            .await;
        assert_eq!(gone.status(), 204);
        if matches!(
            before,
            Before::OpenScale | Before::ClosedScale | Before::ClosedWithOpenScale
        ) {
            scene.scale = Some(self.open_scale(&scene.chair, &scene.conference).await);
        }
        if before == Before::ClosedScale {
            let scale = scene.scale.clone().unwrap();
            self.chair_post(&scene, &format!("/scales/{scale}/close"))
                .await;
        }
        if matches!(before, Before::Closed | Before::ClosedWithOpenScale) {
            self.chair_post(&scene, "/close").await;
        }
        scene
    }

    /// Opens a sync socket to `path` as `who`, with any further headers.
    pub(crate) async fn open_socket(
        &self,
        path: &str,
        who: &Credential,
        extra: &[(&str, &str)],
    ) -> Result<SyncClient, u16> {
        let credential = who.header();
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some((name, value)) = &credential {
            headers.push((name, value.as_str()));
        }
        self.app.try_open(path, &headers).await
    }
}

async fn chair_id(app: &TestApp, browser: &reqwest::Client) -> ChairId {
    let me: Value = browser
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().parse().unwrap()
}

/// Every answer that was not what the caller should get, to be shown together.
#[derive(Default)]
pub(crate) struct Mismatches {
    pub checked: usize,
    found: Vec<String>,
}

impl Mismatches {
    pub(crate) fn check(&mut self, what: String, expected: &str, got: &str, detail: &str) {
        self.checked += 1;
        if expected != got {
            let detail: String = detail.chars().take(200).collect();
            self.found
                .push(format!("{what}: expected {expected}, got {got} {detail}"));
        }
    }

    /// A problem found beside the answer checked.
    pub(crate) fn note(&mut self, problem: String) {
        let problem: String = problem.chars().take(400).collect();
        self.found.push(problem);
    }

    /// Fails once, listing every mismatch.
    pub(crate) fn assert_none(self, matrix: &str) {
        assert!(
            self.found.is_empty(),
            "{} of {} {matrix} cases are not what the caller should get:\n{}",
            self.found.len(),
            self.checked,
            self.found.join("\n")
        );
    }
}
