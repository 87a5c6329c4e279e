//! Updates that arrive before what they build on: refused before any of it is applied,
//! never stored, relayed or confirmed as if they were complete; sent again with what
//! they build on, they are taken.

use std::time::Duration;

use roundtable_shared::doc::{Board, NewItem};
use roundtable_shared::protocol;
use yrs::sync::{Message, SyncMessage};
use yrs::{Doc, Transact};

use crate::helpers::TestApp;
use crate::sync::{has_item, pid, text_of};

/// Two updates made one after the other on a replica of the conference: an item, then
/// words typed into it (which build on the item).
fn two_updates(author: &str, state: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use yrs::updates::decoder::Decode;
    let doc = Doc::with_options(roundtable_shared::doc::document_options());
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(state).unwrap())
        .unwrap();
    let board = Board::new(&doc);
    let author = pid(author);
    let first = {
        let mut txn = doc.transact_mut();
        board.add_item(
            &mut txn,
            NewItem {
                id: "late",
                heading: "worries",
                text: "Mum is ",
                author,
                said_by: None,
                children: &[],
            },
        );
        txn.encode_update_v1()
    };
    let second = {
        let mut txn = doc.transact_mut();
        board.insert_text(&mut txn, "late", 7, "back at work");
        txn.encode_update_v1()
    };
    (first, second)
}

#[tokio::test]
async fn an_update_sent_ahead_of_what_it_builds_on_is_refused_and_taken_once_sent_with_it() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
        )
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let (_, parent_token) = &people[1];
    let mut nurse = app.connect(&conf, nurse_token).await;
    let mut parent = app.connect(&conf, parent_token).await;

    // The nurse's replica makes both updates, but the second reaches the server first.
    let (first, second) = two_updates(nurse_id, &nurse.state());
    nurse
        .send(Message::Sync(SyncMessage::Update(second.clone())))
        .await;
    nurse.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        nurse.refusals,
        [roundtable_shared::permissions::Refusal::Incomplete.to_string()]
    );
    parent.settle(Duration::from_millis(200)).await;
    assert!(parent.board().is_empty(), "{:?}", parent.board());

    // Sent again with what it builds on, both are stored, relayed and confirmed.
    for update in [first, second] {
        nurse.send(Message::Sync(SyncMessage::Update(update))).await;
    }
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(1)))
        .await;
    nurse.wait_until(|c| c.saved.contains(&1)).await;
    assert_eq!(nurse.refusals.len(), 1, "{:?}", nurse.refusals);
    parent
        .wait_until(|c| text_of(c, "late") == "Mum is back at work")
        .await;

    // Confirmed means stored: both are there after the server stops at once.
    drop((nurse, parent));
    app.restart().await;
    let fresh = app.connect(&conf, parent_token).await;
    assert_eq!(text_of(&fresh, "late"), "Mum is back at work");
}

#[tokio::test]
async fn a_client_refused_for_what_it_did_not_send_converges_by_sending_its_whole_document() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let mut nurse = app.connect(&conf, nurse_token).await;

    // Made on the nurse's own replica; only the second is sent, and refused. The
    // client keeps its work and sends its whole document (a sync step 2 against an
    // empty state vector): the server takes what it lacks.
    let (first, second) = two_updates(nurse_id, &nurse.state());
    for update in [&first, &second] {
        use yrs::updates::decoder::Decode;
        nurse
            .doc
            .transact_mut()
            .apply_update(yrs::Update::decode_v1(update).unwrap())
            .unwrap();
    }
    nurse.send(Message::Sync(SyncMessage::Update(second))).await;
    nurse.wait_until(|c| !c.refusals.is_empty()).await;
    let whole = nurse.state();
    nurse
        .send(Message::Sync(SyncMessage::SyncStep2(whole)))
        .await;
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(2)))
        .await;
    nurse.wait_until(|c| c.saved.contains(&2)).await;
    assert_eq!(nurse.refusals.len(), 1, "{:?}", nurse.refusals);
    let fresh = app.connect(&conf, nurse_token).await;
    assert_eq!(text_of(&fresh, "late"), "Mum is back at work");
}

#[tokio::test]
async fn an_update_whose_sender_lacks_what_it_builds_on_is_refused_and_never_stored() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let mut nurse = app.connect(&conf, nurse_token).await;

    // The second update, from a replica the connection's own client does not have:
    // asked for what is missing, the client has nothing to send.
    let (_, second) = two_updates(nurse_id, &nurse.state());
    nurse.send(Message::Sync(SyncMessage::Update(second))).await;
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(3)))
        .await;
    nurse.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        nurse.refusals,
        [roundtable_shared::permissions::Refusal::Incomplete.to_string()]
    );
    // The question is answered after the refusal, which says what came of it.
    nurse.wait_until(|c| c.saved.contains(&3)).await;

    drop(nurse);
    app.restart().await;
    let fresh = app.connect(&conf, nurse_token).await;
    assert!(fresh.board().is_empty(), "{:?}", fresh.board());
    let stored = app
        .storage()
        .load_document(
            roundtable_shared::ConferenceId(conf.parse().unwrap()),
            roundtable_shared::doc::DocumentKind::Shared,
        )
        .await
        .unwrap();
    let doc = roundtable_shared::gate::Gate::load(
        stored
            .snapshot
            .iter()
            .chain(&stored.updates)
            .map(|(_, data)| data.as_slice()),
    )
    .unwrap();
    assert!(!yrs::ReadTxn::has_missing_updates(&doc.doc().transact()));
}

#[tokio::test]
async fn a_new_item_sent_after_a_gap_in_its_clients_changes_is_refused_until_what_came_before_is_sent()
 {
    // An item that builds on nothing else still follows its client's earlier changes:
    // yrs would take it ahead of them, behind a hole they cannot fill the same way
    // everywhere (or keep nothing, without a word).
    use yrs::updates::decoder::Decode;
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
        )
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let (_, parent_token) = &people[1];
    let mut nurse = app.connect(&conf, nurse_token).await;
    let mut parent = app.connect(&conf, parent_token).await;

    let doc = Doc::with_options(roundtable_shared::doc::document_options());
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(&nurse.state()).unwrap())
        .unwrap();
    let board = Board::new(&doc);
    let add = |id: &'static str, text: &'static str| {
        let mut txn = doc.transact_mut();
        board.add_item(
            &mut txn,
            NewItem {
                id,
                heading: "worries",
                text,
                author: pid(nurse_id),
                said_by: None,
                children: &[],
            },
        );
        txn.encode_update_v1()
    };
    let first = add("first", "Mum keeps every appointment");
    let second = add("second", "Nan visits on Sundays");
    nurse
        .send(Message::Sync(SyncMessage::Update(second.clone())))
        .await;
    nurse.wait_until(|c| !c.refusals.is_empty()).await;
    parent.settle(Duration::from_millis(200)).await;
    assert!(parent.board().is_empty(), "{:?}", parent.board());

    for update in [first, second] {
        nurse.send(Message::Sync(SyncMessage::Update(update))).await;
    }
    parent.wait_until(has_item("second")).await;
    let ids: Vec<String> = parent.board().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["first", "second"]);
}
