//! A removal ends everything of the person removed at once: their connections to both
//! documents, their browser's session on every command, their link, and their phone's
//! event stream.

use roundtable_shared::Role;
use serde_json::json;

use super::matrix::{self, Who, column};
use super::{Before, Credential, Mismatches, World};

#[tokio::test]
async fn a_removed_participant_loses_every_connection_session_and_link_at_once() {
    let world = World::new().await;
    let scene = world.scene(Before::OpenScale).await;
    // A professional reads both documents on a laptop, one socket with the browser's
    // session and one with the link, and follows the scales on a phone, where they
    // opened their link too.
    let removed = scene.person(Role::Professional).clone();
    let opened = world
        .send(
            reqwest::Method::POST,
            "/api/join",
            &Credential::Nobody,
            Some(json!({ "token": removed.token })),
        )
        .await;
    assert_eq!(opened.status(), 200);
    let phone_session = Credential::Cookie(super::session_set_by(&opened));
    let mut shared = world
        .open_socket(&scene.path("/sync"), &removed.cookie(), &[])
        .await
        .unwrap();
    let mut restricted = world
        .open_socket(&scene.path("/restricted/sync"), &removed.link(), &[])
        .await
        .unwrap();
    let colleague = scene.person(Role::MinuteTaker).link();
    let mut colleague = world
        .open_socket(&scene.path("/sync"), &colleague, &[])
        .await
        .unwrap();
    let mut phone = phone_session
        .apply(world.http.get(world.app.url(&scene.path("/scales/live"))))
        .send()
        .await
        .unwrap();
    assert_eq!(phone.status(), 200);
    let mut events = String::new();
    crate::scales::next_event(&mut phone, &mut events, "scales", |_| true).await;
    for credential in [removed.cookie(), phone_session.clone(), removed.link()] {
        let me = world
            .send(reqwest::Method::GET, "/api/me", &credential, None)
            .await;
        assert_eq!(me.status(), 200, "before the removal, {credential:?} works");
    }

    let response = world
        .send(
            reqwest::Method::DELETE,
            &scene.path(&format!("/participants/{}", removed.id)),
            &scene.chair,
            None,
        )
        .await;
    assert_eq!(response.status(), 204);

    for (document, socket) in [("shared", &mut shared), ("restricted", &mut restricted)] {
        let frame = socket
            .wait_closed()
            .await
            .unwrap_or_else(|| panic!("the {document} document's socket closes with a reason"));
        assert_eq!(u16::from(frame.code), 4403, "{document}");
        assert_eq!(
            frame.reason.as_str(),
            "you have been removed from this conference",
            "{document}"
        );
    }
    let gone = crate::scales::next_event(&mut phone, &mut events, "gone", |_| true).await;
    assert!(gone.as_str().is_some_and(|why| !why.is_empty()), "{gone}");
    let rest = tokio::time::timeout(crate::helpers::DEADLINE, async {
        while let Some(chunk) = phone.chunk().await.unwrap() {
            events.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(rest.is_ok(), "the phone's stream ends after `gone`");

    // Every command and read, with either session and with the link, is refused as the
    // matrix says for a removed participant.
    let mut mismatches = Mismatches::default();
    for row in matrix::rows() {
        if row.expect.iter().all(|status| *status == row.expect[0]) {
            continue; // The same for anyone: not about who is calling.
        }
        for (who, credential, label) in [
            (Who::RemovedSession, removed.cookie(), "laptop's session"),
            (
                Who::RemovedSession,
                phone_session.clone(),
                "phone's session",
            ),
            (Who::RemovedLink, removed.link(), "link"),
        ] {
            let expected = row.expect[column(who)];
            let (status, body) = matrix::answer(&world, &scene, &row, &credential).await;
            mismatches.check(
                format!(
                    "{:?} {} with the removed participant's {label}",
                    row.method, row.path
                ),
                &expected.to_string(),
                &status.to_string(),
                &body,
            );
        }
    }
    let link = world
        .send(
            reqwest::Method::POST,
            "/api/join",
            &Credential::Nobody,
            Some(json!({ "token": removed.token })),
        )
        .await;
    mismatches.check(
        "opening the removed participant's link".into(),
        "410",
        &link.status().as_u16().to_string(),
        "",
    );
    mismatches.assert_none("removal");

    // Everyone else stays, and sees them gone from the list of participants.
    colleague
        .wait_until(|c| {
            let roster = roundtable_shared::doc::read_roster(&yrs::Transact::transact(&c.doc));
            !roster.iter().any(|p| p.id.to_string() == removed.id)
        })
        .await;
    assert!(colleague.closed.is_none());
}
