//! Sessions and join links stop working when they expire. Nobody can wait twelve hours
//! in a test, so the stored expiry is moved into the past instead, as the clock would.

use roundtable_server::auth;
use roundtable_server::storage::now_ms;
use roundtable_shared::Role;
use serde_json::json;

use super::matrix::{self, Who, column};
use super::{Before, Credential, Mismatches, Scene, World, session_set_by};

const HOUR_MS: i64 = 60 * 60 * 1000;

async fn session_expiry(world: &World, session: &str) -> i64 {
    world
        .app
        .beside()
        .await
        .int(
            "SELECT expires_at FROM sessions WHERE token_hash = $1",
            &[auth::token_hash(session).into()],
        )
        .await
}

async fn expire_session(world: &World, session: &str) {
    world
        .app
        .beside()
        .await
        .execute(
            "UPDATE sessions SET expires_at = $1 WHERE token_hash = $2",
            &[(now_ms() - 1).into(), auth::token_hash(session).into()],
        )
        .await;
}

/// What goes wrong when `who` reads who they are and the conference, and opens its
/// shared document, as a member may.
async fn member_reads(world: &World, scene: &Scene, who: &Credential) -> Vec<String> {
    let mut wrong = Vec::new();
    for path in ["/api/me".to_owned(), scene.path("")] {
        let response = world.send(reqwest::Method::GET, &path, who, None).await;
        if response.status() != 200 {
            wrong.push(format!("{path}: {}", response.status()));
        }
    }
    if let Err(status) = world.open_socket(&scene.path("/sync"), who, &[]).await {
        wrong.push(format!("the shared document: {status}"));
    }
    wrong
}

#[tokio::test]
async fn a_session_past_its_expiry_is_refused_on_every_command_and_socket() {
    let world = World::new().await;
    let scene = world.scene(Before::OpenScale).await;
    // A chair signs in, and a professional opens their link, as their browsers do.
    let before = now_ms();
    let signed_in = world
        .send(
            reqwest::Method::POST,
            "/api/session",
            &Credential::Nobody,
            Some(json!({
                "email": crate::helpers::CHAIR_EMAIL,
                "password": crate::helpers::CHAIR_PASSWORD,
            })),
        )
        .await;
    assert_eq!(signed_in.status(), 204);
    let chair = session_set_by(&signed_in);
    let professional = scene.person(Role::Professional).session.clone();
    // Each session is stored with the cookie's lifetime, twelve hours, and no more.
    let after = now_ms();
    for session in [&chair, &professional] {
        let expires = session_expiry(&world, session).await;
        assert!(
            expires > before && expires <= after + 12 * HOUR_MS,
            "expires in {} hours",
            (expires - after) / HOUR_MS
        );
    }
    for (who, session) in [
        (Who::Chair, &chair),
        (Who::Role(Role::Professional), &professional),
    ] {
        let credential = Credential::Cookie(session.clone());
        let unexpired = member_reads(&world, &scene, &credential).await;
        assert!(unexpired.is_empty(), "{who:?} before expiry: {unexpired:?}");

        expire_session(&world, session).await;
        // Now every command and read answers as it does someone signed out.
        let mut mismatches = Mismatches::default();
        for row in matrix::rows() {
            if row.expect.iter().all(|status| *status == row.expect[0]) {
                continue; // The same for anyone: not about who is calling.
            }
            let (status, body) = matrix::answer(&world, &scene, &row, &credential).await;
            mismatches.check(
                format!(
                    "{:?} {} with {who:?}'s expired session",
                    row.method, row.path
                ),
                &row.expect[column(Who::SignedOut)].to_string(),
                &status.to_string(),
                &body,
            );
        }
        mismatches.assert_none("expired session");
    }
}

#[tokio::test]
async fn a_join_link_past_its_expiry_opens_nothing_but_its_session_lasts_its_own_time() {
    let world = World::new().await;
    let scene = world.scene(Before::OpenScale).await;
    let parent = scene.person(Role::Parent).clone();
    let mut db = world.app.beside().await;
    let expires = db
        .int(
            "SELECT link_expires_at FROM participants WHERE id = $1",
            &[(&parent.id).into()],
        )
        .await;
    assert!(
        expires <= now_ms() + 30 * 24 * HOUR_MS,
        "a link lasts 30 days"
    );
    let unexpired = member_reads(&world, &scene, &parent.link()).await;
    assert!(unexpired.is_empty(), "{unexpired:?}");

    db.execute(
        "UPDATE participants SET link_expires_at = $1 WHERE id = $2",
        &[(now_ms() - 1).into(), (&parent.id).into()],
    )
    .await;
    let mut mismatches = Mismatches::default();
    let opened = world
        .send(
            reqwest::Method::POST,
            "/api/join",
            &Credential::Nobody,
            Some(json!({ "token": parent.token })),
        )
        .await;
    let status = opened.status().as_u16().to_string();
    mismatches.check("opening the expired link".into(), "410", &status, "");
    // As a bearer token it answers as a withdrawn link does, everywhere.
    for row in matrix::rows() {
        if row.expect.iter().all(|status| *status == row.expect[0]) {
            continue;
        }
        let (status, body) = matrix::answer(&world, &scene, &row, &parent.link()).await;
        mismatches.check(
            format!("{:?} {} with the expired link", row.method, row.path),
            &row.expect[column(Who::RemovedLink)].to_string(),
            &status.to_string(),
            &body,
        );
    }
    mismatches.assert_none("expired link");
    // The session the browser got with the link before it expired has its own
    // lifetime.
    let still = member_reads(&world, &scene, &parent.cookie()).await;
    assert!(still.is_empty(), "{still:?}");
}

#[tokio::test]
async fn what_is_open_when_a_session_or_link_expires_closes_then() {
    let world = World::new().await;
    let scene = world.scene(Before::OpenScale).await;
    let professional = scene.person(Role::Professional);
    let parent = scene.person(Role::Parent);
    // The session and the link run out a moment from now.
    let soon = now_ms() + 1500;
    let mut db = world.app.beside().await;
    db.execute(
        "UPDATE sessions SET expires_at = $1 WHERE token_hash = $2",
        &[soon.into(), auth::token_hash(&professional.session).into()],
    )
    .await;
    db.execute(
        "UPDATE participants SET link_expires_at = $1 WHERE id = $2",
        &[soon.into(), (&parent.id).into()],
    )
    .await;

    let mut by_session = world
        .open_socket(&scene.path("/sync"), &professional.cookie(), &[])
        .await
        .unwrap();
    let mut by_link = world
        .open_socket(&scene.path("/sync"), &parent.link(), &[])
        .await
        .unwrap();
    let mut phone = professional
        .cookie()
        .apply(world.http.get(world.app.url(&scene.path("/scales/live"))))
        .send()
        .await
        .unwrap();
    let mut events = String::new();
    crate::scales::next_event(&mut phone, &mut events, "scales", |_| true).await;
    // A chair whose session has hours left stays.
    let mut chair = world
        .open_socket(&scene.path("/sync"), &scene.chair, &[])
        .await
        .unwrap();

    for (whose, socket) in [("session", &mut by_session), ("link", &mut by_link)] {
        let frame = socket
            .wait_closed()
            .await
            .unwrap_or_else(|| panic!("the socket opened by {whose} closes with a reason"));
        assert_eq!(u16::from(frame.code), 4401, "{whose}");
        assert_eq!(
            frame.reason.as_str(),
            "your session has ended: please sign in again"
        );
    }
    let gone = crate::scales::next_event(&mut phone, &mut events, "gone", |_| true).await;
    assert_eq!(gone, "please sign in");
    chair.settle(std::time::Duration::from_millis(300)).await;
    assert!(chair.closed.is_none(), "{:?}", chair.closed);
}
