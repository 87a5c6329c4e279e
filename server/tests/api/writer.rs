//! Storing updates: one writer commits every room's updates together, and nothing is
//! relayed or confirmed before it is stored.

use std::time::Duration;

use roundtable_shared::doc::Board;
use roundtable_shared::protocol;
use yrs::sync::Message;

use crate::helpers::{SyncClient, TestApp};
use crate::sync::{add_item, has_item, text_of};

const CONFERENCES: usize = 4;
const KEYSTROKES: usize = 30;

/// Asks whether everything `client` sent is stored, waits for the answer, and checks
/// that nothing it sent was refused.
async fn confirm_saved(client: &mut SyncClient, n: u32) {
    client
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(n)))
        .await;
    client.wait_until(|c| c.saved.contains(&n)).await;
    assert!(client.refusals.is_empty(), "{:?}", client.refusals);
}

async fn type_into(client: &mut SyncClient, item: &str, text: &str) {
    for (index, ch) in text.chars().enumerate() {
        let chunk = ch.to_string();
        client
            .edit(|txn| {
                let board = Board::in_txn(txn);
                assert!(board.insert_text(txn, item, index as u32, &chunk));
            })
            .await;
    }
}

#[tokio::test]
async fn many_conferences_typing_at_once_keep_every_keystroke_in_order_through_a_restart() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let mut rooms = Vec::new();
    for _ in 0..CONFERENCES {
        let (conf, people) = app
            .conference(
                &chair,
                &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
            )
            .await;
        let (nurse_id, nurse_token) = people[0].clone();
        let mut nurse = app.connect(&conf, &nurse_token).await;
        let parent = app.connect(&conf, &people[1].1).await;
        add_item(&mut nurse, "notes", &nurse_id, "").await;
        rooms.push((conf, people, nurse, parent));
    }
    let text: String = "abcdefghijklmnopqrstuvwxyz0123456789"
        .chars()
        .take(KEYSTROKES)
        .collect();

    // Every conference types its keystrokes without waiting, so the writer has
    // several rooms' updates queued at once.
    let typing = rooms.iter_mut().enumerate().map(|(n, (_, _, nurse, _))| {
        let text = &text;
        async move {
            type_into(nurse, "notes", text).await;
            confirm_saved(nurse, n as u32).await;
        }
    });
    futures_util::future::join_all(typing).await;
    for (_, _, _, parent) in &mut rooms {
        parent.wait_until(|c| text_of(c, "notes") == text).await;
    }

    let conferences: Vec<_> = rooms
        .into_iter()
        .map(|(conf, people, _, _)| (conf, people))
        .collect();
    app.restart().await;
    for (conf, people) in &conferences {
        let back = app.connect(conf, &people[1].1).await;
        assert_eq!(text_of(&back, "notes"), text);
    }
}

#[tokio::test]
async fn an_update_that_cannot_be_stored_is_refused_seen_by_nobody_and_other_rooms_go_on() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
        )
        .await;
    let (other_conf, other_people) = app
        .conference(
            &chair,
            &[("Sam Teacher", "professional"), ("Kim Parent", "parent")],
        )
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let (teacher_id, teacher_token) = &other_people[0];
    let mut nurse = app.connect(&conf, nurse_token).await;
    let mut parent = app.connect(&conf, &people[1].1).await;
    let mut teacher = app.connect(&other_conf, teacher_token).await;
    let mut other_parent = app.connect(&other_conf, &other_people[1].1).await;

    // The disk refuses the nurse's writes, and only hers.
    let mut db = app.beside().await;
    db.refuse_updates_from(nurse_id, "the disk is full").await;

    add_item(&mut nurse, "lost", nurse_id, "Not stored").await;
    add_item(&mut teacher, "kept", teacher_id, "Stored").await;
    nurse
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(1)))
        .await;
    nurse.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(nurse.refusals, [protocol::NOT_SAVED]);
    other_parent.wait_until(has_item("kept")).await;
    parent.settle(Duration::from_millis(200)).await;
    assert!(parent.board().is_empty(), "{:?}", parent.board());

    // Once the disk takes writes again, the same person's next change goes through,
    // and the refused one is nowhere.
    db.accept_updates_again().await;
    db.close().await;
    let mut nurse_again = app.connect(&conf, nurse_token).await;
    add_item(&mut nurse_again, "after", nurse_id, "Stored after").await;
    parent.wait_until(has_item("after")).await;
    let fresh = app.connect(&conf, &people[1].1).await;
    let ids: Vec<String> = fresh.board().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["after"]);
}

/// Professionals who type at once into their own items, one each.
const TYPISTS: [(&str, &str); 6] = [
    ("Ann Nurse", "item-a"),
    ("Ben Teacher", "item-b"),
    ("Cat Social Worker", "item-c"),
    ("Dan Doctor", "item-d"),
    ("Eve Health Visitor", "item-e"),
    ("Fay Police Officer", "item-f"),
];

#[tokio::test]
async fn professionals_typing_at_once_with_refused_updates_between_keep_every_keystroke_and_nothing_refused()
 {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let mut invited: Vec<(&str, &str)> = TYPISTS
        .iter()
        .map(|(name, _)| (*name, "professional"))
        .collect();
    invited.push(("Jo Parent", "parent"));
    invited.push(("Gus Forger", "professional"));
    let (conf, people) = app.conference(&chair, &invited).await;
    let mut typists = Vec::new();
    for (n, (_, item)) in TYPISTS.iter().enumerate() {
        let (person, token) = &people[n];
        let mut client = app.connect(&conf, token).await;
        add_item(&mut client, item, person, "").await;
        typists.push((*item, client));
    }
    let (parent_id, parent_token) = &people[TYPISTS.len()];
    let forger_token = &people[TYPISTS.len() + 1].1;
    let mut parent = app.connect(&conf, parent_token).await;
    let mut forger = app.connect(&conf, forger_token).await;
    let text = "the quick brown fox jumps over the lazy dog";

    // Everyone types without waiting, so updates reach the room while it stores the
    // ones before; meanwhile a parent (who may not change the board) and a
    // professional claiming to be the parent each try to add an item.
    let typing = typists
        .iter_mut()
        .enumerate()
        .map(|(n, (item, client))| async move {
            type_into(client, item, text).await;
            confirm_saved(client, n as u32).await;
        });
    let refused = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        add_item(&mut parent, "from-parent", parent_id, "Not allowed").await;
        add_item(&mut forger, "forged", parent_id, "Forged").await;
        parent.wait_until(|c| c.refusals.len() == 1).await;
        forger.wait_until(|c| c.refusals.len() == 1).await;
    };
    futures_util::future::join(futures_util::future::join_all(typing), refused).await;

    // Everything typed is there, once and in order, and nothing refused, for anyone
    // joining now and after a restart (so it was stored).
    let check = |client: &SyncClient| {
        for (_, item) in TYPISTS {
            assert_eq!(text_of(client, item), text, "{item}");
        }
        let ids: Vec<String> = client.board().into_iter().map(|i| i.id).collect();
        assert_eq!(ids.len(), TYPISTS.len(), "{ids:?}");
    };
    let mut fresh = app.connect(&conf, forger_token).await;
    fresh.settle(Duration::from_millis(100)).await;
    check(&fresh);
    app.restart().await;
    let back = app.connect(&conf, forger_token).await;
    check(&back);
}

#[tokio::test]
async fn a_refused_update_among_those_waiting_for_a_busy_room_drops_only_itself() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Ann Nurse", "professional"),
                ("Ben Teacher", "professional"),
                ("Cat Social Worker", "professional"),
                ("Gus Forger", "professional"),
                ("Jo Parent", "parent"),
            ],
        )
        .await;
    let mut ann = app.connect(&conf, &people[0].1).await;
    let mut ben = app.connect(&conf, &people[1].1).await;
    let mut cat = app.connect(&conf, &people[2].1).await;
    let mut forger = app.connect(&conf, &people[3].1).await;
    let mut parent = app.connect(&conf, &people[4].1).await;
    add_item(&mut ann, "item-a", &people[0].0, "").await;
    add_item(&mut ben, "item-b", &people[1].0, "").await;
    add_item(&mut cat, "item-c", &people[2].0, "").await;
    parent.wait_until(has_item("item-c")).await;

    // Another program holds the database: Ann's keystroke waits to be stored, and the
    // room with it. Ben's keystroke, the forged item and Cat's keystroke arrive in
    // that order and wait for the room; once the database is free they are handled
    // together, the forged one refused between the other two.
    let mut db = app.beside().await;
    db.hold_writes().await;
    type_into(&mut ann, "item-a", "1").await;
    let pause = Duration::from_millis(100);
    tokio::time::sleep(pause).await;
    type_into(&mut ben, "item-b", "2").await;
    tokio::time::sleep(pause).await;
    add_item(&mut forger, "forged", &people[4].0, "Forged").await;
    tokio::time::sleep(pause).await;
    type_into(&mut cat, "item-c", "3").await;
    tokio::time::sleep(pause).await;
    db.release().await;

    forger.wait_until(|c| c.refusals.len() == 1).await;
    let done = |c: &SyncClient| {
        ["item-a", "item-b", "item-c"]
            .iter()
            .zip(["1", "2", "3"])
            .all(|(item, text)| text_of(c, item) == text)
    };
    parent.wait_until(done).await;
    for (n, client) in [&mut ann, &mut ben, &mut cat].into_iter().enumerate() {
        confirm_saved(client, n as u32).await;
    }
    // The room's document and the stored one both hold the three keystrokes and not
    // the forged item.
    let check = |client: &SyncClient| {
        assert!(done(client), "{:?}", client.board());
        assert!(!has_item("forged")(client), "{:?}", client.board());
    };
    check(&parent);
    let fresh = app.connect(&conf, &people[4].1).await;
    check(&fresh);
    app.restart().await;
    let back = app.connect(&conf, &people[4].1).await;
    check(&back);
}
