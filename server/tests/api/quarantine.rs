//! A stored document with a row yrs cannot apply still opens: from what still applies,
//! with the bad row quarantined, reported to the chair (the audit log) and to the
//! operator (`roundtable doctor`), and nothing else lost.

use roundtable_server::doctor::examine;
use roundtable_shared::ConferenceId;
use roundtable_shared::doc::{Board, DocumentKind, NewItem};
use roundtable_shared::gate::Gate;
use serde_json::Value;
use yrs::{ReadTxn, Transact};

use crate::database::writing;
use crate::helpers::TestApp;
use crate::sync::{add_item, has_item, pid, text_of};

/// An update adding an item to the document as it is stored, made behind the server's
/// back.
async fn stored_item(app: &TestApp, conference: ConferenceId, id: &str, author: &str) -> Vec<u8> {
    let stored = app
        .storage()
        .load_document(conference, DocumentKind::Shared)
        .await
        .unwrap();
    let parts: Vec<&[u8]> = stored
        .snapshot
        .iter()
        .chain(&stored.updates)
        .map(|(_, data)| data.as_slice())
        .collect();
    let replica = Gate::load(parts).unwrap().doc().clone();
    let before = replica.transact().state_vector();
    let board = Board::new(&replica);
    board.add_item(
        &mut replica.transact_mut(),
        NewItem {
            id,
            heading: "worries",
            text: "Written after the bad row",
            author: pid(author),
            said_by: None,
            children: &[],
        },
    );
    replica.transact().encode_state_as_update_v1(&before)
}

#[tokio::test]
async fn a_document_with_a_row_that_cannot_be_applied_opens_without_it_and_says_so() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let conference = ConferenceId(conf.parse().unwrap());
    let mut nurse = app.connect(&conf, nurse_token).await;
    add_item(&mut nurse, "kept", nurse_id, "Mum keeps every appointment").await;
    let mut watcher = app.connect(&conf, nurse_token).await;
    watcher.wait_until(has_item("kept")).await;
    drop((nurse, watcher));
    app.restart().await;

    // A row that is not an update at all, then a good one after it.
    let after = stored_item(&app, conference, "after", nurse_id).await;
    let last = app
        .storage()
        .load_document(conference, DocumentKind::Shared)
        .await
        .unwrap()
        .last_seq;
    let storage = app.storage();
    let writing = writing(storage, conference, DocumentKind::Shared).await;
    storage
        .append_update(
            conference,
            DocumentKind::Shared,
            writing.fence(),
            last + 1,
            None,
            &[0xff, 0x03, 0x01],
        )
        .await
        .unwrap();
    storage
        .append_update(
            conference,
            DocumentKind::Shared,
            writing.fence(),
            last + 2,
            None,
            &after,
        )
        .await
        .unwrap();
    writing.done().await;
    app.restart().await;

    // The conference opens, with everything but the bad row.
    let mut nurse = app.connect(&conf, nurse_token).await;
    nurse.wait_until(has_item("after")).await;
    assert_eq!(text_of(&nurse, "kept"), "Mum keeps every appointment");
    assert_eq!(text_of(&nurse, "after"), "Written after the bad row");

    // The chair sees it in the audit log; the operator in the doctor's report.
    let audit: Value = chair
        .get(app.url(&format!("/api/conferences/{conf}/audit")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let quarantined: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "updates_quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{audit}");
    assert_eq!(
        quarantined[0]["detail"]["updates"],
        serde_json::json!([last + 1])
    );
    assert_eq!(quarantined[0]["detail"]["document"], "shared");
    let (_, findings) = examine(app.storage(), Some(conference)).await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        findings[0].problem,
        format!(
            "update {} is quarantined (left out of the document): a stored update cannot be decoded",
            last + 1
        )
    );

    // The meeting goes on: a new change is stored after the rows there are, and the
    // document opens whole again, quarantined once only.
    add_item(&mut nurse, "new", nurse_id, "Dad has moved out").await;
    let mut watcher = app.connect(&conf, nurse_token).await;
    watcher.wait_until(has_item("new")).await;
    drop((nurse, watcher));
    app.restart().await;
    let back = app.connect(&conf, nurse_token).await;
    for (id, text) in [
        ("kept", "Mum keeps every appointment"),
        ("after", "Written after the bad row"),
        ("new", "Dad has moved out"),
    ] {
        assert_eq!(text_of(&back, id), text);
    }
    let audit: Value = chair
        .get(app.url(&format!("/api/conferences/{conf}/audit")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let times = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "updates_quarantined")
        .count();
    assert_eq!(times, 1);
}

#[tokio::test]
async fn a_snapshot_that_does_not_load_is_rebuilt_from_the_log() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let conference = ConferenceId(conf.parse().unwrap());
    let mut nurse = app.connect(&conf, nurse_token).await;
    add_item(&mut nurse, "kept", nurse_id, "Mum keeps every appointment").await;
    let mut watcher = app.connect(&conf, nurse_token).await;
    watcher.wait_until(has_item("kept")).await;
    drop((nurse, watcher));
    app.restart().await;
    let last = app
        .storage()
        .load_document(conference, DocumentKind::Shared)
        .await
        .unwrap()
        .last_seq;
    let writing = writing(app.storage(), conference, DocumentKind::Shared).await;
    app.storage()
        .write_snapshot(
            conference,
            DocumentKind::Shared,
            writing.fence(),
            last,
            &[0xff, 0x03, 0x01],
        )
        .await
        .unwrap();
    writing.done().await;
    app.restart().await;

    let back = app.connect(&conf, nurse_token).await;
    assert_eq!(text_of(&back, "kept"), "Mum keeps every appointment");
    // Nothing was left out, and the snapshot is sound again.
    assert_eq!(
        app.storage()
            .quarantined(conference, DocumentKind::Shared)
            .await
            .unwrap(),
        []
    );
    let (_, findings) = examine(app.storage(), Some(conference)).await.unwrap();
    assert_eq!(findings, []);
}
