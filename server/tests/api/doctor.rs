//! `roundtable doctor`: a sound conference is reported sound; one with a bad row is
//! reported, with what is wrong.

use roundtable_server::doctor::examine;
use roundtable_shared::ConferenceId;
use roundtable_shared::doc::DocumentKind;
use yrs::{Doc, Map, Transact, WriteTxn};

use crate::database::writing;
use crate::helpers::TestApp;
use crate::sync::{add_item, has_item};

#[tokio::test]
async fn the_doctor_finds_sound_documents_sound_and_names_what_is_wrong_with_the_others() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Ali Minutes", "minute_taker")])
        .await;
    let (ali_id, ali_token) = &people[0];
    let mut ali = app.connect(&conf, ali_token).await;
    add_item(&mut ali, "sound", ali_id, "Mum keeps every appointment").await;
    let mut watcher = app.connect(&conf, ali_token).await;
    watcher.wait_until(has_item("sound")).await;
    let conference = ConferenceId(conf.parse().unwrap());

    let (documents, findings) = examine(app.storage(), Some(conference)).await.unwrap();
    assert!(documents >= 1);
    assert_eq!(findings, []);
    // Nobody has it open (on PostgreSQL, no node holds its lease) while it is written.
    drop((ali, watcher));
    let mut app = app;
    app.restart().await;

    // A row written behind the server's back: a change from a client whose earlier
    // changes are not stored, and bytes that are not an update at all.
    let ahead = {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        let board = txn.get_or_insert_map("board");
        board.insert(&mut txn, "first", "one");
        drop(txn);
        let sv = yrs::ReadTxn::state_vector(&doc.transact());
        let mut txn = doc.transact_mut();
        let board = txn.get_or_insert_map("board");
        board.insert(&mut txn, "second", "two");
        drop(txn);
        yrs::ReadTxn::encode_state_as_update_v1(&doc.transact(), &sv)
    };
    let stored = app
        .storage()
        .document_log(conference, DocumentKind::Shared)
        .await
        .unwrap();
    let next = stored.last().map_or(1, |(seq, _)| seq + 1);
    let writing = writing(app.storage(), conference, DocumentKind::Shared).await;
    app.storage()
        .append_update(
            conference,
            DocumentKind::Shared,
            writing.fence(),
            next,
            None,
            &ahead,
        )
        .await
        .unwrap();
    let (_, findings) = examine(app.storage(), Some(conference)).await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        findings[0].problem,
        format!(
            "update {next} is not in the document it loads into: it depends on changes that are not stored"
        )
    );
    app.storage()
        .append_update(
            conference,
            DocumentKind::Shared,
            writing.fence(),
            next + 1,
            None,
            &[0xff, 0xff, 0xff],
        )
        .await
        .unwrap();
    writing.done().await;
    let (_, findings) = examine(app.storage(), Some(conference)).await.unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.problem.starts_with(&format!("update {}:", next + 1))),
        "{findings:?}"
    );
}
