//! Updates that arrive before what they build on: held back, never stored, relayed or
//! confirmed as if they were complete.

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
async fn an_update_sent_ahead_of_what_it_builds_on_waits_for_it_and_only_then_is_saved() {
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

    // The nurse's replica makes both updates, but the second reaches the server first,
    // followed by a "saved?" question. (This client sends raw frames: it does not
    // answer the server's request for what is missing.)
    nurse.answers_sync_step1 = false;
    let (first, second) = two_updates(nurse_id, &nurse.state());
    nurse
        .send(Message::Sync(SyncMessage::Update(second.clone())))
        .await;
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(1)))
        .await;
    // The server cannot place the words yet: nobody sees them and nothing is
    // confirmed.
    parent.settle(Duration::from_millis(300)).await;
    assert!(parent.board().is_empty(), "{:?}", parent.board());
    nurse.settle(Duration::from_millis(100)).await;
    assert!(
        nurse.saved.is_empty(),
        "confirmed before it could be stored"
    );
    assert!(nurse.refusals.is_empty(), "{:?}", nurse.refusals);

    // The first arrives: both are stored, then relayed and confirmed.
    nurse.send(Message::Sync(SyncMessage::Update(first))).await;
    nurse.wait_until(|c| c.saved.contains(&1)).await;
    assert!(nurse.refusals.is_empty(), "{:?}", nurse.refusals);
    parent.wait_until(has_item("late")).await;
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
async fn the_server_asks_for_what_an_update_builds_on_and_a_stock_client_sends_it() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let mut nurse = app.connect(&conf, nurse_token).await;

    // Made on the nurse's own replica; only the second is sent. The server answers it
    // with its state vector, and the client (as any y-protocols client does) sends
    // what the server lacks.
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
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(2)))
        .await;
    nurse.wait_until(|c| c.saved.contains(&2)).await;
    assert!(nurse.refusals.is_empty(), "{:?}", nurse.refusals);
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
async fn a_new_item_sent_after_a_gap_in_its_clients_changes_waits_for_what_came_before() {
    // An item that builds on nothing else still follows its client's earlier changes:
    // yrs would integrate it ahead of them, leaving a hole they cannot fill the same
    // way everywhere.
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
    nurse.answers_sync_step1 = false;
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
    nurse.send(Message::Sync(SyncMessage::Update(second))).await;
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(4)))
        .await;
    parent.settle(Duration::from_millis(300)).await;
    assert!(parent.board().is_empty(), "{:?}", parent.board());
    nurse.settle(Duration::from_millis(100)).await;
    assert!(
        nurse.saved.is_empty(),
        "confirmed before what came before it"
    );

    nurse.send(Message::Sync(SyncMessage::Update(first))).await;
    nurse.wait_until(|c| c.saved.contains(&4)).await;
    parent.wait_until(has_item("second")).await;
    let ids: Vec<String> = parent.board().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["first", "second"]);
}
