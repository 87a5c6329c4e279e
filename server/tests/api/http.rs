//! The HTTP API: signing in, conferences, links, the lobby, phases, the client.

use serde_json::{Value, json};

use crate::helpers::{CHAIR_EMAIL, TestApp};

/// GETs `url` and reads the JSON body.
async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: String) -> T {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The status of a WebSocket handshake to `path`, made with `client`'s cookies.
async fn handshake(app: &TestApp, client: &reqwest::Client, path: &str) -> u16 {
    client
        .get(app.url(path))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn health_answers_ok() {
    let app = TestApp::spawn().await;
    let body: Value = reqwest::get(app.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn the_built_client_is_served_at_the_root_with_strict_headers() {
    let app = TestApp::spawn().await;
    for path in ["/", "/join"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("loader.js"),
            "{path} should serve the built client; run scripts/build-client.sh"
        );
    }
    let wasm = reqwest::get(app.url("/pkg/roundtable_client_bg.wasm"))
        .await
        .unwrap();
    assert_eq!(wasm.status(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_cookie_is_strict() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let wrong = browser
        .post(app.url("/api/session"))
        .json(&json!({ "email": CHAIR_EMAIL, "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "the email or password is not right");
    assert_eq!(
        browser
            .get(app.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let right = browser
        .post(app.url("/api/session"))
        .json(&json!({ "email": CHAIR_EMAIL, "password": crate::helpers::CHAIR_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 204);
    let cookie = right.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let me: Value = get_json(&browser, app.url("/api/me")).await;
    assert_eq!(me["kind"], "chair");

    let out = browser
        .delete(app.url("/api/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(
        browser
            .get(app.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_chair_creates_and_lists_conferences_and_bad_input_is_explained() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (id, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    assert_eq!(people.len(), 1);
    assert!(people[0].1.len() >= 43, "join tokens are long");
    let list: Vec<Value> = get_json(&chair, app.url("/api/conferences")).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["room_code"].as_str().unwrap().len(), 12);

    let cases = [
        (
            json!({ "title": "", "kind": "initial", "scheduled_start": "2026-12-01T10:00:00Z", "children": [{"name": "A"}] }),
            422,
            "title is missing",
        ),
        (
            json!({ "title": "T", "kind": "initial", "scheduled_start": "tomorrow", "children": [{"name": "A"}] }),
            422,
            "scheduled_start must be",
        ),
        // Found by the `commands` fuzz target: the dates of the next meetings could
        // not be worked out, and the server panicked after storing the conference.
        (
            json!({ "title": "T", "kind": "review", "scheduled_start": "9999-12-31T10:00:00Z", "children": [{"name": "A"}] }),
            422,
            "scheduled_start is too late",
        ),
        (
            json!({ "title": "T", "kind": "initial", "scheduled_start": "2026-12-01T10:00:00Z", "children": [] }),
            422,
            "at least one child",
        ),
        (
            json!({ "title": "T", "kind": "initial", "scheduled_start": "2026-12-01T10:00:00Z", "children": [{"name": "A"}], "participants": [{"name": "X", "role": "boss"}] }),
            422,
            "role must be one of",
        ),
        (
            json!({ "title": "T", "kind": "initial", "scheduled_start": "2026-12-01T10:00:00Z", "children": [{"name": "A"}], "participants": [{"name": "X", "role": "chair"}] }),
            422,
            "one chair",
        ),
    ];
    for (body, status, message) in cases {
        let response = chair
            .post(app.url("/api/conferences"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(message),
            "{error}"
        );
    }
    let list: Vec<Value> = get_json(&chair, app.url("/api/conferences")).await;
    assert_eq!(list.len(), 1, "nothing was created by bad input");

    let stranger = app.browser();
    assert_eq!(
        stranger
            .get(app.url("/api/conferences"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        chair
            .get(app.url(&format!("/api/conferences/{unknown}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_join_link_signs_the_participant_in_and_a_removed_one_stops_working() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (id, _) = app.conference(&chair, &[]).await;
    let added: Value = chair
        .post(app.url(&format!("/api/conferences/{id}/participants")))
        .json(&json!({ "name": "Jo Parent", "role": "parent" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = added["join_link"].as_str().unwrap();
    let token = link.split_once("/join#").unwrap().1;
    assert_eq!(token, added["token"]);

    let phone = app.browser();
    let joined = phone
        .post(app.url("/api/join"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    let me: Value = get_json(&phone, app.url("/api/me")).await;
    assert_eq!(me["name"], "Jo Parent");
    assert_eq!(me["role"], "parent");
    let shown: Value = get_json(&phone, app.url(&format!("/api/conferences/{id}"))).await;
    assert_eq!(shown["title"], "Initial child protection conference");
    assert!(
        shown.get("participants").is_none(),
        "only the chair sees the participant list"
    );
    assert_eq!(shown["you"]["id"], added["participant"]["id"]);
    assert_eq!(shown["you"]["role"], "parent");

    let pid = added["participant"]["id"].as_str().unwrap();
    chair
        .delete(app.url(&format!("/api/conferences/{id}/participants/{pid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        phone.get(app.url("/api/me")).send().await.unwrap().status(),
        401,
        "session ended"
    );
    let again = app
        .browser()
        .post(app.url("/api/join"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
    let error: Value = again.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("ask the chair for a new one")
    );
}

#[tokio::test]
async fn someone_in_the_room_waits_in_the_lobby_until_the_chair_admits_them() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (id, _) = app.conference(&chair, &[]).await;
    let shown: Value = get_json(&chair, app.url(&format!("/api/conferences/{id}"))).await;
    let code = shown["room_code"].as_str().unwrap().to_lowercase();

    let wrong = app
        .browser()
        .post(app.url("/api/lobby"))
        .json(&json!({ "room_code": "ZZZZZZ", "name": "X" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);

    let phone = app.browser();
    let entered = phone
        .post(app.url("/api/lobby"))
        .json(&json!({ "room_code": code, "name": "Nan" }))
        .send()
        .await
        .unwrap();
    assert_eq!(entered.status(), 201);
    let me: Value = get_json(&phone, app.url("/api/me")).await;
    assert_eq!(me["admitted"], false);
    let sync = format!("/api/conferences/{id}/sync");
    assert_eq!(handshake(&app, &phone, &sync).await, 403);

    let lobby: Vec<Value> =
        get_json(&chair, app.url(&format!("/api/conferences/{id}/lobby"))).await;
    assert_eq!(lobby.len(), 1);
    assert_eq!(lobby[0]["name"], "Nan");
    let pid = lobby[0]["id"].as_str().unwrap();
    let admitted = chair
        .post(app.url(&format!("/api/conferences/{id}/lobby/{pid}/admit")))
        .json(&json!({ "role": "carer", "agency": "Kinship care" }))
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 200);
    let me: Value = get_json(&phone, app.url("/api/me")).await;
    assert_eq!(me["admitted"], true);
    assert_eq!(me["role"], "carer");
    // The agency the chair gave is kept, as an invited person's is (the quorum counts
    // agencies present).
    assert_eq!(me["agency"], "Kinship care");
    let shown: Value = get_json(&chair, app.url(&format!("/api/conferences/{id}"))).await;
    let nan = shown["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Nan")
        .unwrap();
    assert_eq!(nan["agency"], "Kinship care");
    assert_eq!(handshake(&app, &phone, &sync).await, 101);

    // Someone else is turned away: they can never connect.
    let other = app.browser();
    other
        .post(app.url("/api/lobby"))
        .json(&json!({ "room_code": code, "name": "Stranger" }))
        .send()
        .await
        .unwrap();
    let lobby: Vec<Value> =
        get_json(&chair, app.url(&format!("/api/conferences/{id}/lobby"))).await;
    let pid = lobby[0]["id"].as_str().unwrap();
    let away = chair
        .post(app.url(&format!("/api/conferences/{id}/lobby/{pid}/turn-away")))
        .send()
        .await
        .unwrap();
    assert_eq!(away.status(), 204);
    assert_eq!(
        other.get(app.url("/api/me")).send().await.unwrap().status(),
        401
    );

    // Only the chair runs the lobby.
    assert_eq!(
        phone
            .get(app.url(&format!("/api/conferences/{id}/lobby")))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test]
async fn the_chair_changes_the_phase_and_everyone_sees_it() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (id, people) = app.conference(&chair, &[("Jo Parent", "parent")]).await;
    let mut parent = app.connect(&id, &people[0].1).await;
    let phase = |c: &crate::helpers::SyncClient| {
        roundtable_shared::doc::read_phase(&yrs::Transact::transact(&c.doc))
    };
    assert_eq!(phase(&parent), Some(roundtable_shared::Phase::PreMeet));
    let response = chair
        .post(app.url(&format!("/api/conferences/{id}/phase")))
        .json(&json!({ "phase": "information_sharing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    parent
        .wait_until(move |c| phase(c) == Some(roundtable_shared::Phase::InformationSharing))
        .await;
    let bad = chair
        .post(app.url(&format!("/api/conferences/{id}/phase")))
        .json(&json!({ "phase": "lunch" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    // A participant cannot change the phase.
    let phone = app.browser();
    phone
        .post(app.url("/api/join"))
        .json(&json!({ "token": people[0].1 }))
        .send()
        .await
        .unwrap();
    let refused = phone
        .post(app.url(&format!("/api/conferences/{id}/phase")))
        .json(&json!({ "phase": "closed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn the_chair_gives_a_new_link_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (id, people) = app.conference(&chair, &[("Jo Parent", "parent")]).await;
    let (pid, old_token) = &people[0];

    let shown: Value = get_json(&chair, app.url(&format!("/api/conferences/{id}"))).await;
    assert_eq!(
        shown["you"]["role"], "chair",
        "the chair is told their own place"
    );
    let chair_pid = shown["you"]["id"].as_str().unwrap().to_owned();

    let renewed = chair
        .post(app.url(&format!("/api/conferences/{id}/participants/{pid}/link")))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    let new_token = renewed["token"].as_str().unwrap();
    assert_ne!(new_token, old_token);
    assert!(renewed["join_link"].as_str().unwrap().ends_with(new_token));

    let redeem = |token: String| {
        let browser = app.browser();
        let url = app.url("/api/join");
        async move {
            browser
                .post(url)
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        redeem(old_token.clone()).await,
        410,
        "the old link is withdrawn"
    );
    assert_eq!(redeem(new_token.to_owned()).await, 200);

    let for_chair = chair
        .post(app.url(&format!(
            "/api/conferences/{id}/participants/{chair_pid}/link"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(for_chair.status(), 422);

    let someone_else = app.browser();
    let refused = someone_else
        .post(app.url(&format!("/api/conferences/{id}/participants/{pid}/link")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn the_client_is_sent_compressed_to_browsers_that_accept_it() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in ["/pkg/roundtable_phone_bg.wasm", "/conference/x/score"] {
        let response = client
            .get(app.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-encoding"], "gzip", "{path}");
    }
}

#[tokio::test]
async fn browsers_are_told_to_keep_to_https_only_when_it_is_served_over_tls() {
    let plain = TestApp::spawn().await;
    let response = reqwest::get(plain.url("/health")).await.unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );

    let behind_tls = TestApp::spawn_behind("https://roundtable.example.org").await;
    for path in ["/health", "/", "/api/me"] {
        let response = reqwest::get(behind_tls.url(path)).await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=63072000; includeSubDomains",
            "{path}"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
    }
}
