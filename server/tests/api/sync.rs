//! Live sync: convergence, durability, permissions, bad frames, presence.

use std::time::Duration;

use roundtable_shared::ParticipantId;
use roundtable_shared::doc::{Board, NewItem};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::AwarenessUpdate;
use yrs::sync::Message;
use yrs::sync::awareness::AwarenessUpdateEntry;

use crate::helpers::{SyncClient, TestApp};

const LIAR: yrs::ClientID = yrs::ClientID::new(4242);

pub(crate) fn pid(s: &str) -> ParticipantId {
    s.parse().unwrap()
}

pub(crate) async fn add_item(
    client: &mut SyncClient,
    id: &'static str,
    author: &str,
    text: &'static str,
) {
    client.add_item(id, pid(author), text).await;
}

pub(crate) fn has_item(id: &'static str) -> impl Fn(&SyncClient) -> bool {
    move |c| c.board().iter().any(|i| i.id == id)
}

pub(crate) fn text_of(c: &SyncClient, id: &str) -> String {
    c.board()
        .into_iter()
        .find(|i| i.id == id)
        .map(|i| i.text)
        .unwrap_or_default()
}

#[tokio::test]
async fn two_clients_typing_in_one_item_converge_and_a_late_joiner_gets_everything() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Ali Minutes", "minute_taker"),
                ("Bo Minutes", "minute_taker"),
                ("Pat Nurse", "professional"),
            ],
        )
        .await;
    let mut a = app.connect(&conf, &people[0].1).await;
    let mut b = app.connect(&conf, &people[1].1).await;

    add_item(&mut a, "item-1", &people[0].0, "Jamie misses school").await;
    b.wait_until(has_item("item-1")).await;

    // Both type into the same item at once, neither waiting for the other.
    a.edit(|txn| {
        Board::in_txn(txn).insert_text(txn, "item-1", 0, "Often: ");
    })
    .await;
    b.edit(|txn| {
        Board::in_txn(txn).insert_text(txn, "item-1", 19, " on Mondays");
    })
    .await;
    let both = |c: &SyncClient| {
        let t = text_of(c, "item-1");
        t.contains("Often: ") && t.contains(" on Mondays")
    };
    a.wait_until(both).await;
    b.wait_until(both).await;
    assert_eq!(
        text_of(&a, "item-1"),
        "Often: Jamie misses school on Mondays"
    );
    assert_eq!(a.board(), b.board());

    let late = app.connect(&conf, &people[2].1).await;
    assert_eq!(late.board(), a.board());
}

#[tokio::test]
async fn concurrent_moves_of_one_item_leave_exactly_one_copy() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Ali Minutes", "minute_taker"),
                ("Bo Minutes", "minute_taker"),
            ],
        )
        .await;
    let mut a = app.connect(&conf, &people[0].1).await;
    let mut b = app.connect(&conf, &people[1].1).await;
    add_item(&mut a, "item-1", &people[0].0, "Dad drinks").await;
    b.wait_until(has_item("item-1")).await;
    a.edit(|txn| {
        Board::in_txn(txn).move_item(txn, "item-1", "complicating", None, None);
    })
    .await;
    b.edit(|txn| {
        Board::in_txn(txn).move_item(txn, "item-1", "next_steps", None, None);
    })
    .await;
    let settled = |c: &SyncClient| c.board().len() == 1 && c.board()[0].heading != "worries";
    a.wait_until(settled).await;
    b.wait_until(settled).await;
    a.settle(Duration::from_millis(200)).await;
    b.settle(Duration::from_millis(200)).await;
    assert_eq!(a.board(), b.board());
    assert_eq!(a.board().len(), 1);
}

#[tokio::test]
async fn the_document_survives_a_restart_with_everything_clients_received() {
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
    for (id, text) in [
        ("i1", "First worry"),
        ("i2", "Second worry"),
        ("i3", "Nan helps"),
    ] {
        add_item(&mut nurse, id, nurse_id, text).await;
    }
    parent.wait_until(has_item("i3")).await;
    let seen_by_parent = parent.state();
    drop(nurse);
    drop(parent);

    app.restart().await;
    let after = app.connect(&conf, parent_token).await;
    // Everything the parent had received is in the reloaded document.
    assert_eq!(after.board(), items_of(&seen_by_parent));
    assert_eq!(after.board().len(), 3);
    assert!(after.contains(&seen_by_parent));
}

fn items_of(state: &[u8]) -> Vec<roundtable_shared::doc::BoardItem> {
    use yrs::Transact;
    use yrs::updates::decoder::Decode;
    let doc = yrs::Doc::new();
    let board = Board::new(&doc);
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(state).unwrap())
        .unwrap();
    board.items(&doc.transact())
}

#[tokio::test]
async fn a_conference_nobody_is_in_is_unloaded_and_reloads_intact() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let mut nurse = app.connect(&conf, nurse_token).await;
    add_item(&mut nurse, "kept", nurse_id, "Kept while nobody is here").await;
    // Confirmed as saved before the nurse leaves: a socket dropped with messages
    // unread is reset, and the server may never read what was sent just before.
    nurse
        .send(Message::Custom(
            roundtable_shared::protocol::SAVED,
            roundtable_shared::protocol::encode_saved(1),
        ))
        .await;
    nurse.wait_until(|c| c.saved.contains(&1)).await;
    assert_eq!(app.rooms().open_count().await, 1);
    drop(nurse);
    let until = std::time::Instant::now() + crate::helpers::DEADLINE;
    while app.rooms().open_count().await != 0 {
        assert!(
            std::time::Instant::now() < until,
            "the room was not unloaded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let back = app.connect(&conf, nurse_token).await;
    assert_eq!(text_of(&back, "kept"), "Kept while nobody is here");
}

#[tokio::test]
async fn an_update_the_sender_may_not_make_is_refused_and_seen_by_nobody() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
        )
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let (parent_id, parent_token) = &people[1];
    let mut nurse = app.connect(&conf, nurse_token).await;
    let mut parent = app.connect(&conf, parent_token).await;

    add_item(
        &mut parent,
        "from-parent",
        parent_id,
        "I want to say something",
    )
    .await;
    parent.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        parent.refusals[0],
        "your role cannot change this conference's board"
    );

    // The professional tries to claim to be the parent, and to change the title.
    add_item(&mut nurse, "forged", parent_id, "Forged").await;
    nurse.wait_until(|c| c.refusals.len() == 1).await;
    nurse
        .edit(|txn| {
            use yrs::{Map, WriteTxn};
            txn.get_or_insert_map(roundtable_shared::doc::META)
                .insert(txn, "title", "Renamed");
        })
        .await;
    nurse.wait_until(|c| c.refusals.len() == 2).await;

    // A new connection of the same professional can still add their own item, and
    // nobody ever sees the refused ones.
    let mut nurse2 = app.connect(&conf, nurse_token).await;
    add_item(
        &mut nurse2,
        "allowed",
        nurse_id,
        "School says attendance is 80%",
    )
    .await;
    parent.wait_until(has_item("allowed")).await;
    // (Each sender's own replica still holds its refused edit: a Yjs client that was
    // refused reloads to drop it.)
    nurse2.settle(Duration::from_millis(100)).await;
    let fresh = app.connect(&conf, parent_token).await;
    for c in [&nurse2, &fresh] {
        let ids: Vec<String> = c.board().into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["allowed"]);
    }
    assert_eq!(
        roundtable_shared::doc::read_title(&yrs::Transact::transact(&fresh.doc)).as_deref(),
        Some("Initial child protection conference")
    );
}

#[tokio::test]
async fn nobody_can_write_under_the_client_id_of_another_persons_device() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Pat Nurse", "professional"),
                ("Kim Police", "professional"),
            ],
        )
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let (police_id, police_token) = &people[1];
    let shared_id = yrs::ClientID::new(5001);
    let mut nurse = app.connect_as(&conf, nurse_token, shared_id).await;
    add_item(&mut nurse, "nurse-1", nurse_id, "GP has seen Alex twice").await;
    let mut watcher = app.connect(&conf, police_token).await;
    watcher.wait_until(has_item("nurse-1")).await;

    // Another professional's device takes the nurse's id, and goes on from where the
    // nurse's changes end: its changes would sit at the clocks of the nurse's next.
    let mut impostor = app.connect_as(&conf, police_token, shared_id).await;
    add_item(
        &mut impostor,
        "forged",
        police_id,
        "Written under the nurse's id",
    )
    .await;
    impostor.wait_until(|c| !c.refusals.is_empty()).await;
    assert!(
        impostor.refusals[0].contains("belongs to another device"),
        "{:?}",
        impostor.refusals
    );
    // Nor can it go by that id in who-is-here.
    impostor
        .send(Message::Awareness(AwarenessUpdate {
            clients: [(
                shared_id,
                AwarenessUpdateEntry {
                    clock: 1,
                    json: r#"{"typing":true}"#.into(),
                },
            )]
            .into(),
        }))
        .await;

    // The nurse's next change lands at those clocks, and everyone takes it.
    add_item(&mut nurse, "nurse-2", nurse_id, "Attendance is 80%").await;
    watcher.wait_until(has_item("nurse-2")).await;
    watcher.settle(Duration::from_millis(200)).await;
    assert!(!watcher.presence.contains_key(&shared_id));
    assert!(
        watcher.contains(&nurse.state()),
        "the nurse's copy is everyone's"
    );

    // Who owns the id is stored: after a restart it is still the nurse's.
    app.restart().await;
    let mut impostor = app.connect_as(&conf, police_token, shared_id).await;
    add_item(&mut impostor, "forged-again", police_id, "Still not mine").await;
    impostor.wait_until(|c| !c.refusals.is_empty()).await;
    let mut nurse = app.reconnect(nurse, &conf, nurse_token).await;
    add_item(&mut nurse, "nurse-3", nurse_id, "School is supportive").await;
    let mut fresh = app.connect(&conf, police_token).await;
    fresh.wait_until(has_item("nurse-3")).await;
    let mut ids: Vec<String> = fresh.board().into_iter().map(|i| i.id).collect();
    ids.sort();
    assert_eq!(ids, ["nurse-1", "nurse-2", "nurse-3"]);
    assert!(fresh.contains(&nurse.state()) && nurse.contains(&fresh.state()));
}

#[tokio::test]
async fn a_change_from_a_replica_with_garbage_collection_on_is_taken_and_loads_after_a_restart() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (nurse_id, nurse_token) = &people[0];
    let mut nurse = app.connect(&conf, nurse_token).await;

    // A stock Yjs client with garbage collection on, offline: it adds two items and
    // deletes one, whose content it then collects, and sends all of it at once.
    let offline = yrs::Doc::with_options(yrs::Options {
        client_id: yrs::ClientID::new(777),
        skip_gc: false,
        ..yrs::Options::default()
    });
    let board = Board::new(&offline);
    for (id, text) in [
        ("kept", "School says attendance is 80%"),
        ("dropped", "Typo"),
    ] {
        board.add_item(
            &mut yrs::Transact::transact_mut(&offline),
            NewItem {
                id,
                heading: "worries",
                text,
                author: pid(nurse_id),
                said_by: None,
                children: &[],
            },
        );
    }
    board.delete_item(&mut yrs::Transact::transact_mut(&offline), "dropped");
    let update = yrs::ReadTxn::encode_state_as_update_v1(
        &yrs::Transact::transact(&offline),
        &yrs::StateVector::default(),
    );
    let collected = yrs::updates::decoder::Decode::decode_v1(update.as_slice())
        .map(|u: yrs::Update| {
            u.blocks()
                .any(|b| matches!(b, yrs::block::BlockView::GC(_)))
        })
        .unwrap();
    assert!(collected, "the update carries collected ranges");
    nurse
        .send(Message::Sync(yrs::sync::SyncMessage::Update(update)))
        .await;
    let mut other = app.connect(&conf, nurse_token).await;
    other.wait_until(has_item("kept")).await;
    assert!(nurse.refusals.is_empty(), "{:?}", nurse.refusals);

    // Later changes from anyone are taken, and the document loads whole after a
    // restart, with what was collected still collected.
    add_item(&mut nurse, "allowed", nurse_id, "GP has seen Alex twice").await;
    other.wait_until(has_item("allowed")).await;
    app.restart().await;
    let fresh = app.connect(&conf, nurse_token).await;
    let mut ids: Vec<String> = fresh.board().into_iter().map(|i| i.id).collect();
    ids.sort();
    assert_eq!(ids, ["allowed", "kept"]);
    assert_eq!(text_of(&fresh, "kept"), "School says attendance is 80%");
    let state = yrs::ReadTxn::state_vector(&yrs::Transact::transact(&fresh.doc));
    let offline_state = yrs::ReadTxn::state_vector(&yrs::Transact::transact(&offline));
    assert_eq!(
        state.get(&yrs::ClientID::new(777)),
        offline_state.get(&yrs::ClientID::new(777))
    );
}

#[tokio::test]
async fn a_family_members_change_that_nobody_would_see_is_refused_and_not_stored() {
    // Found by the `sync_message` fuzz target: text typed into an item someone had
    // deleted changes nothing anyone sees, so a parent's update was stored, relayed
    // and listed as their change in the audit view.
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[("Ali Minutes", "minute_taker"), ("Jo Parent", "parent")],
        )
        .await;
    let mut minutes = app.connect(&conf, &people[0].1).await;
    let mut parent = app.connect(&conf, &people[1].1).await;
    add_item(&mut minutes, "gone", &people[0].0, "Soon deleted").await;
    parent.wait_until(has_item("gone")).await;
    use yrs::Transact;
    use yrs::updates::decoder::Decode;
    // The parent's replica as it was before the item was deleted.
    let stale = yrs::Doc::new();
    stale
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&parent.state()).unwrap())
        .unwrap();
    minutes
        .edit(|txn| {
            Board::in_txn(txn).delete_item(txn, "gone");
        })
        .await;
    parent.wait_until(|c| !has_item("gone")(c)).await;

    let typed = {
        let mut txn = stale.transact_mut();
        assert!(Board::in_txn(&mut txn).insert_text(&mut txn, "gone", 0, "unseen words"));
        txn.encode_update_v1()
    };
    parent
        .send(Message::Sync(yrs::sync::SyncMessage::Update(typed)))
        .await;
    parent.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        parent.refusals,
        ["your role cannot change this conference's document"]
    );
    let audit: serde_json::Value = chair
        .get(app.url(&format!("/api/conferences/{conf}/audit")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by = |id: &str| {
        let changes = audit["document_changes"].as_array().unwrap();
        changes
            .iter()
            .filter(|c| c["participant"]["id"] == id)
            .count()
    };
    assert_eq!((by(&people[0].0), by(&people[1].0)), (2, 0));
}

#[tokio::test]
async fn a_participant_of_one_conference_cannot_open_another() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (_first, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let (second, _) = app
        .conference(&chair, &[("Kim Police", "professional")])
        .await;
    assert_eq!(
        app.try_connect(&second, &people[0].1).await.err(),
        Some(403)
    );
    assert_eq!(
        app.try_connect(&second, "not-a-token").await.err(),
        Some(410)
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        app.try_connect(&unknown, &people[0].1).await.err(),
        Some(404)
    );
}

/// A conference with a minute-taker who writes, a professional who watches, and a
/// third participant whose connection misbehaves.
pub(crate) struct Three {
    pub conf: String,
    pub writer_id: String,
    pub writer: SyncClient,
    pub watcher: SyncClient,
    pub misbehaving_token: String,
}

pub(crate) async fn three(app: &TestApp) -> Three {
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Ali Minutes", "minute_taker"),
                ("Pat Nurse", "professional"),
                ("Kim Police", "professional"),
            ],
        )
        .await;
    Three {
        writer: app.connect(&conf, &people[0].1).await,
        watcher: app.connect(&conf, &people[1].1).await,
        writer_id: people[0].0.clone(),
        misbehaving_token: people[2].1.clone(),
        conf,
    }
}

impl Three {
    /// The others still sync after the misbehaving connection was closed.
    pub(crate) async fn others_still_sync(&mut self) {
        add_item(&mut self.writer, "after", &self.writer_id, "Still here").await;
        self.watcher.wait_until(has_item("after")).await;
        assert!(self.writer.closed.is_none() && self.watcher.closed.is_none());
    }
}

#[tokio::test]
async fn a_malformed_message_closes_only_that_connection() {
    let app = TestApp::spawn().await;
    let mut t = three(&app).await;
    let mut bad = app.connect(&t.conf, &t.misbehaving_token).await;
    // A sync update whose payload is not a Yjs update.
    bad.send_raw(vec![0, 2, 5, 200, 1, 2, 3, 4]).await;
    let frame = bad.wait_closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1007);
    t.others_still_sync().await;
}

#[tokio::test]
async fn a_client_id_wider_than_53_bits_closes_only_that_connection() {
    // Found by the `sync_message` fuzz target: yrs asserts (in debug builds) that a
    // client id fits in 53 bits while it decodes a state vector or presence, so such a
    // frame ended the connection's task before it could leave the room.
    let app = TestApp::spawn().await;
    let mut t = three(&app).await;
    let wide = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    let state_vector = [&[0, 0, 11, 1][..], &wide, &[1]].concat();
    let presence = [&[1, 16, 1][..], &wide, &[0, 4], b"null"].concat();
    for frame in [state_vector, presence] {
        let mut bad = app.connect(&t.conf, &t.misbehaving_token).await;
        bad.send_raw(frame).await;
        let frame = bad.wait_closed().await.expect("close frame");
        assert_eq!(u16::from(frame.code), 1007);
    }
    t.others_still_sync().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let limits = roundtable_server::sync::Limits {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    };
    let app = TestApp::spawn_with(limits).await;
    let mut t = three(&app).await;
    let mut big = app.connect(&t.conf, &t.misbehaving_token).await;
    big.send_frame(WsMessage::Binary(vec![0u8; 200 * 1024].into()))
        .await;
    let frame = big.wait_closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1009);
    t.others_still_sync().await;
}

#[tokio::test]
async fn a_text_frame_closes_only_that_connection() {
    let app = TestApp::spawn().await;
    let mut t = three(&app).await;
    let mut wrong = app.connect(&t.conf, &t.misbehaving_token).await;
    wrong.send_frame(WsMessage::Text("hello".into())).await;
    let frame = wrong.wait_closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1003);
    t.others_still_sync().await;
}

#[tokio::test]
async fn presence_shows_the_name_the_server_knows_whatever_the_client_claims() {
    let app = TestApp::spawn().await;
    let mut t = three(&app).await;
    let mut liar = app.connect(&t.conf, &t.misbehaving_token).await;
    let claim =
        serde_json::json!({ "user": { "name": "The Chair", "role": "chair" }, "cursor": 3 });
    liar.send(Message::Awareness(AwarenessUpdate {
        clients: [(
            LIAR,
            AwarenessUpdateEntry {
                clock: 1,
                json: claim.to_string().into(),
            },
        )]
        .into(),
    }))
    .await;
    t.watcher
        .wait_until(|c| c.presence.contains_key(&LIAR))
        .await;
    let seen = &t.watcher.presence[&LIAR];
    assert_eq!(seen["user"]["name"], "Kim Police");
    assert_eq!(seen["user"]["role"], "professional");
    assert_eq!(
        seen["cursor"], 3,
        "the rest of the state is relayed as sent"
    );
    // Another connection cannot take over that presence entry.
    let other = serde_json::json!({ "user": { "name": "Someone" } });
    t.writer
        .send(Message::Awareness(AwarenessUpdate {
            clients: [(
                LIAR,
                AwarenessUpdateEntry {
                    clock: 5,
                    json: other.to_string().into(),
                },
            )]
            .into(),
        }))
        .await;
    t.writer.settle(Duration::from_millis(200)).await;
    t.watcher.settle(Duration::from_millis(200)).await;
    assert_eq!(t.watcher.presence[&LIAR]["user"]["name"], "Kim Police");
    // When the connection goes, so does its presence.
    drop(liar);
    t.watcher
        .wait_until(|c| !c.presence.contains_key(&LIAR))
        .await;
}

#[tokio::test]
async fn the_server_answers_a_saved_question_only_after_storing_what_came_before() {
    use roundtable_shared::protocol;
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Ali Minutes", "minute_taker")])
        .await;
    let (ali_id, ali_token) = &people[0];
    let mut ali = app.connect(&conf, ali_token).await;

    add_item(&mut ali, "saved-1", ali_id, "Dad has stopped drinking").await;
    ali.send(Message::Custom(protocol::SAVED, protocol::encode_saved(7)))
        .await;
    ali.wait_until(|c| c.saved.contains(&7)).await;
    assert!(ali.refusals.is_empty());

    // Once confirmed, the change survives the server stopping at once.
    let state = ali.state();
    drop(ali);
    app.restart().await;
    let mut again = app.connect(&conf, ali_token).await;
    again.wait_until(|c| c.contains(&state)).await;
    assert_eq!(text_of(&again, "saved-1"), "Dad has stopped drinking");

    // A question without a number is not a saved question.
    again
        .send(Message::Custom(protocol::SAVED, vec![1, 2]))
        .await;
    let close = again.wait_closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1007);
}
