//! A client that loses its connection keeps editing its own copy; when it is back,
//! its changes and everyone else's merge, and nothing is lost on either side.

use roundtable_shared::doc::{Board, NewItem};
use roundtable_shared::protocol;
use yrs::sync::Message;
use yrs::{Doc, GetString, Text, Transact, TransactionMut};

use crate::helpers::{SyncClient, TestApp};
use crate::sync::{add_item, has_item, text_of};

/// Edits a document while it has no connection.
fn offline_edit(doc: &Doc, f: impl FnOnce(&mut TransactionMut, &Board)) {
    let mut txn = doc.transact_mut();
    let board = Board::in_txn(&mut txn);
    f(&mut txn, &board);
}

fn append(txn: &mut TransactionMut, board: &Board, item: &str, words: &str) {
    assert!(board.insert_text(txn, item, u32::MAX, words));
}

/// Types at the end of an item's text, online.
async fn type_online(client: &mut SyncClient, item: &str, words: &str) {
    client
        .edit(|txn| {
            let board = Board::in_txn(txn);
            append(txn, &board, item, words);
        })
        .await;
}

fn new_item(txn: &mut TransactionMut, board: &Board, id: &str, author: &str, text: &str) {
    board.add_item(
        txn,
        NewItem {
            id,
            heading: "worries",
            text,
            author: author.parse().unwrap(),
            said_by: None,
            children: &[],
        },
    );
}

/// Erases the first `words` of an item's text.
fn erase(txn: &mut TransactionMut, board: &Board, item: &str, words: &str) {
    let text = board.text(txn, item).unwrap();
    let at = text.get_string(txn).find(words).unwrap();
    text.remove_range(txn, at as u32, words.len() as u32);
}

/// Whether every `(item, word)` is in the client's copy exactly once.
fn holds_once(words: &'static [(&'static str, &'static str)]) -> impl Fn(&SyncClient) -> bool {
    move |c| {
        words
            .iter()
            .all(|(item, word)| text_of(c, item).matches(word).count() == 1)
    }
}

/// Asks the server to confirm everything sent so far, and waits for its answer.
async fn confirm_saved(client: &mut SyncClient, number: u32) {
    client
        .send(Message::Custom(
            protocol::SAVED,
            protocol::encode_saved(number),
        ))
        .await;
    client.wait_until(|c| c.saved.contains(&number)).await;
    assert!(client.refusals.is_empty(), "{:?}", client.refusals);
}

/// Every replica reads the same board, holding every word once, and `gone` nowhere.
fn assert_same_and_complete(
    replicas: &[&SyncClient],
    words: &[(&str, &str)],
    gone: &[(&str, &str)],
) {
    let board = replicas[0].board();
    for replica in replicas {
        assert_eq!(replica.board(), board);
        for (item, word) in words {
            let text = text_of(replica, item);
            assert_eq!(
                text.matches(word).count(),
                1,
                "{word:?} in {item}: {text:?}"
            );
        }
        for (item, word) in gone {
            assert!(!text_of(replica, item).contains(word), "{word:?} is back");
        }
    }
}

/// What the minute-taker types offline, and what the others type meanwhile.
const OFFLINE_WORDS: &[(&str, &str)] = &[
    ("shared", "Ali at the start."),
    ("shared", "Ali at the end."),
    ("ali-1", "Ali offline in her own."),
    ("ali-2", "Ali's new item."),
    ("pat-1", "Ali in Pat's."),
];
const ONLINE_WORDS: &[(&str, &str)] = &[
    ("shared", "Bo at the start."),
    ("shared", "Bo at the end."),
    ("bo-2", "Bo's new item."),
    ("pat-1", "Pat online."),
    ("pat-2", "Pat's new item."),
];
const BEFORE: &[(&str, &str)] = &[
    ("shared", "Jamie was seen at school."),
    ("pat-1", "Health visits missed."),
    ("ali-1", "Dad works nights."),
];

#[tokio::test]
async fn edits_made_offline_merge_on_reconnecting_and_nothing_is_lost_on_either_side() {
    let mut app = TestApp::spawn().await;
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
    let [(ali_id, ali_token), (bo_id, bo_token), (pat_id, pat_token)] = &people[..] else {
        unreachable!()
    };
    let mut ali = app.connect(&conf, ali_token).await;
    let mut bo = app.connect(&conf, bo_token).await;
    let mut pat = app.connect(&conf, pat_token).await;
    add_item(&mut bo, "shared", bo_id, "Jamie was seen at school. ").await;
    add_item(&mut pat, "pat-1", pat_id, "Health visits missed. ").await;
    add_item(&mut ali, "ali-1", ali_id, "Draft: Dad works nights. ").await;
    for c in [&mut ali, &mut bo, &mut pat] {
        c.wait_until(|c| ["shared", "pat-1", "ali-1"].iter().all(|i| has_item(i)(c)))
            .await;
    }

    // Ali loses her connection and goes on editing her own copy: the same texts Bo
    // and Pat are typing into, her own item (erasing a word written before), and a
    // new item.
    ali.go_offline().await;
    offline_edit(&ali.doc, |txn, board| {
        assert!(board.insert_text(txn, "shared", 0, "Ali at the start. "));
        append(txn, board, "shared", "Ali at the end. ");
    });
    offline_edit(&ali.doc, |txn, board| {
        erase(txn, board, "ali-1", "Draft: ");
        append(txn, board, "ali-1", "Ali offline in her own. ");
        new_item(txn, board, "ali-2", ali_id, "Ali's new item. ");
        append(txn, board, "pat-1", "Ali in Pat's. ");
    });

    // Meanwhile, online, Bo and Pat type into the same texts and add items.
    bo.edit(|txn| {
        let board = Board::in_txn(txn);
        assert!(board.insert_text(txn, "shared", 0, "Bo at the start. "));
        append(txn, &board, "shared", "Bo at the end. ");
    })
    .await;
    add_item(&mut bo, "bo-2", bo_id, "Bo's new item. ").await;
    type_online(&mut pat, "pat-1", "Pat online. ").await;
    add_item(&mut pat, "pat-2", pat_id, "Pat's new item. ").await;
    bo.wait_until(holds_once(ONLINE_WORDS)).await;
    pat.wait_until(holds_once(ONLINE_WORDS)).await;
    // Nothing of Ali's reached anyone while she was away.
    assert!(!text_of(&bo, "shared").contains("Ali"));

    // Ali is back: her client and the server exchange what the other lacks.
    let mut ali = app.reconnect(ali, &conf, ali_token).await;
    confirm_saved(&mut ali, 1).await;
    for c in [&mut ali, &mut bo, &mut pat] {
        c.wait_until(holds_once(OFFLINE_WORDS)).await;
        c.wait_until(holds_once(ONLINE_WORDS)).await;
    }
    let everything: Vec<(&str, &str)> = [BEFORE, OFFLINE_WORDS, ONLINE_WORDS].concat();
    let gone = [("ali-1", "Draft:")];
    assert_same_and_complete(&[&ali, &bo, &pat], &everything, &gone);
    // Concurrent inserts at one place keep each side's words whole.
    let shared = text_of(&ali, "shared");
    assert!(
        shared.ends_with("Ali at the end. Bo at the end. ")
            || shared.ends_with("Bo at the end. Ali at the end. "),
        "{shared:?}"
    );

    // The store has everything too.
    let ours = ali.board();
    drop((ali, bo, pat));
    app.restart().await;
    let fresh = app.connect(&conf, pat_token).await;
    assert_eq!(fresh.board(), ours);
    assert_same_and_complete(&[&fresh], &everything, &gone);
}

#[tokio::test]
async fn edits_made_offline_while_the_server_restarts_merge_when_the_client_returns() {
    let mut app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Ali Minutes", "minute_taker"),
                ("Pat Nurse", "professional"),
            ],
        )
        .await;
    let [(ali_id, ali_token), (pat_id, pat_token)] = &people[..] else {
        unreachable!()
    };
    let mut ali = app.connect(&conf, ali_token).await;
    let mut pat = app.connect(&conf, pat_token).await;
    add_item(&mut pat, "pat-1", pat_id, "Health visits missed. ").await;
    ali.wait_until(has_item("pat-1")).await;

    // Pat, a professional, goes offline and edits her own item and adds one, while
    // Ali, the minute-taker, types into the same item online.
    pat.go_offline().await;
    offline_edit(&pat.doc, |txn, board| {
        erase(txn, board, "pat-1", "Health ");
        append(txn, board, "pat-1", "Pat offline before the restart. ");
        new_item(txn, board, "pat-2", pat_id, "Pat's item from offline. ");
    });
    type_online(&mut ali, "pat-1", "Ali before the restart. ").await;
    confirm_saved(&mut ali, 1).await;

    // The server restarts; Ali's client reconnects by itself, as clients do after
    // 1012, and goes on typing. Pat is still offline, and still typing.
    app.restart().await;
    let frame = ali.wait_closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1012);
    let mut ali = app.reconnect(ali, &conf, ali_token).await;
    type_online(&mut ali, "pat-1", "Ali after the restart. ").await;
    add_item(&mut ali, "ali-1", ali_id, "Ali's item after the restart. ").await;
    confirm_saved(&mut ali, 2).await;
    offline_edit(&pat.doc, |txn, board| {
        append(txn, board, "pat-1", "Pat offline after the restart. ");
    });

    let mut pat = app.reconnect(pat, &conf, pat_token).await;
    confirm_saved(&mut pat, 1).await;
    const WORDS: &[(&str, &str)] = &[
        ("pat-1", "visits missed."),
        ("pat-1", "Pat offline before the restart."),
        ("pat-1", "Pat offline after the restart."),
        ("pat-1", "Ali before the restart."),
        ("pat-1", "Ali after the restart."),
        ("pat-2", "Pat's item from offline."),
        ("ali-1", "Ali's item after the restart."),
    ];
    ali.wait_until(holds_once(WORDS)).await;
    pat.wait_until(holds_once(WORDS)).await;
    let gone = [("pat-1", "Health")];
    assert_same_and_complete(&[&ali, &pat], WORDS, &gone);

    // And the store keeps it all through another restart.
    drop(ali);
    drop(pat);
    app.restart().await;
    let fresh = app.connect(&conf, ali_token).await;
    assert_same_and_complete(&[&fresh], WORDS, &gone);
    assert_eq!(fresh.board().len(), 3);
}

#[tokio::test]
async fn an_item_deleted_while_its_author_typed_into_it_offline_stays_deleted_and_their_other_edits_are_kept()
 {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Ali Minutes", "minute_taker"),
                ("Pat Nurse", "professional"),
            ],
        )
        .await;
    let [(_, ali_token), (pat_id, pat_token)] = &people[..] else {
        unreachable!()
    };
    let mut ali = app.connect(&conf, ali_token).await;
    let mut pat = app.connect(&conf, pat_token).await;
    add_item(&mut pat, "pat-1", pat_id, "Said twice. ").await;
    ali.wait_until(has_item("pat-1")).await;

    // Pat types into her item offline; meanwhile the minute-taker deletes it.
    pat.go_offline().await;
    offline_edit(&pat.doc, |txn, board| {
        append(txn, board, "pat-1", "Pat offline. ");
        new_item(txn, board, "pat-2", pat_id, "Pat's item from offline. ");
    });
    ali.edit(|txn| {
        assert!(Board::in_txn(txn).delete_item(txn, "pat-1"));
    })
    .await;
    confirm_saved(&mut ali, 1).await;

    // Her typing went into an item that is gone, which is not refused: the rest of
    // what she did offline is kept, and the item stays deleted on both sides.
    let mut pat = app.reconnect(pat, &conf, pat_token).await;
    confirm_saved(&mut pat, 1).await;
    ali.wait_until(has_item("pat-2")).await;
    for c in [&ali, &pat] {
        let ids: Vec<String> = c.board().into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["pat-2"]);
    }
    assert_eq!(ali.board(), pat.board());
}
