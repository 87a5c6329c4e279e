//! What each role may write, checked on real Yjs updates made with yrs.

use roundtable_shared::doc::{self, Board, NewItem};
use roundtable_shared::guard::DocumentIndex;
use roundtable_shared::permissions::{Refusal, check_update};
use roundtable_shared::{ParticipantId, Role};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update, WriteTxn};

/// A server-side document with its index, and a client replica of it.
struct Fixture {
    server: Doc,
    index: DocumentIndex,
}

impl Fixture {
    fn new() -> Fixture {
        let server = Doc::with_client_id(1);
        let mut fixture = Fixture {
            server,
            index: DocumentIndex::new(),
        };
        // The server writes the conference details, as a command would.
        fixture.server_write(|txn| {
            txn.get_or_insert_map(doc::META)
                .insert(txn, doc::meta::TITLE, "Conference");
        });
        fixture
    }

    fn server_write(&mut self, f: impl FnOnce(&mut yrs::TransactionMut)) {
        let doc = self.server.clone();
        let before = doc.transact().state_vector();
        {
            let mut txn = doc.transact_mut();
            f(&mut txn);
        }
        let update = doc.transact().encode_state_as_update_v1(&before);
        let changes = self.index.read(&update).expect("server update readable");
        self.index.record(&changes);
    }

    /// A client replica in sync with the server.
    fn client(&self, client_id: u64) -> Doc {
        let doc = Doc::with_client_id(client_id);
        let state = self
            .server
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        doc.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        doc
    }

    /// Makes an edit on `client` and asks whether `role` may send it; applies it if so.
    fn send(
        &mut self,
        client: &Doc,
        role: Role,
        sender: ParticipantId,
        edit: impl FnOnce(&mut yrs::TransactionMut),
    ) -> Result<(), Refusal> {
        let before = client.transact().state_vector();
        {
            let mut txn = client.transact_mut();
            edit(&mut txn);
        }
        let update = client.transact().encode_state_as_update_v1(&before);
        let changes = self.index.read(&update).expect("readable");
        let board = Board::new(&self.server);
        let txn = self.server.transact();
        let verdict = check_update(role, sender, &changes, |item| board.author(&txn, item));
        drop(txn);
        if verdict.is_ok() {
            self.server
                .transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            self.index.record(&changes);
        }
        verdict
    }
}

fn person() -> ParticipantId {
    ParticipantId(uuid::Uuid::new_v4())
}

fn add(id: &'static str, author: ParticipantId) -> impl FnOnce(&mut yrs::TransactionMut) {
    move |txn| {
        Board::in_txn(txn).add_item(
            txn,
            NewItem {
                id,
                heading: "worries",
                text: "Dad shouts when he has been drinking",
                author,
                said_by: None,
                children: &[],
            },
        )
    }
}

#[test]
fn chair_and_minute_taker_write_the_whole_board_and_plan() {
    let mut f = Fixture::new();
    let (chair, minutes, pro) = (person(), person(), person());
    let c = f.client(10);
    assert_eq!(f.send(&c, Role::Professional, pro, add("a", pro)), Ok(()));
    let c = f.client(11);
    assert_eq!(f.send(&c, Role::Chair, chair, add("b", chair)), Ok(()));
    // The chair edits and moves someone else's item.
    assert_eq!(
        f.send(&c, Role::Chair, chair, |txn| {
            let board = Board::in_txn(txn);
            board.insert_text(txn, "a", 0, "Mum says: ");
            board.move_item(txn, "a", "complicating", None, None);
        }),
        Ok(())
    );
    let m = f.client(12);
    assert_eq!(
        f.send(&m, Role::MinuteTaker, minutes, |txn| {
            Board::in_txn(txn).delete_item(txn, "a");
            txn.get_or_insert_map(doc::PLAN)
                .insert(txn, "contingency", "Stay with Nan");
        }),
        Ok(())
    );
}

#[test]
fn a_professional_changes_only_their_own_items() {
    let mut f = Fixture::new();
    let (mine, theirs) = (person(), person());
    let other = f.client(20);
    f.send(&other, Role::Professional, theirs, add("theirs", theirs))
        .unwrap();
    let me = f.client(21);
    f.send(&me, Role::Professional, mine, add("mine", mine))
        .unwrap();
    assert_eq!(
        f.send(&me, Role::Professional, mine, |txn| {
            Board::in_txn(txn).insert_text(txn, "mine", 0, "Update: ");
        }),
        Ok(())
    );
    let me = f.client(22);
    assert_eq!(
        f.send(&me, Role::Professional, mine, |txn| {
            Board::in_txn(txn).insert_text(txn, "theirs", 3, "not ");
        }),
        Err(Refusal::NotYourItem)
    );
    let me = f.client(23);
    assert_eq!(
        f.send(&me, Role::Professional, mine, |txn| {
            Board::in_txn(txn).delete_item(txn, "theirs");
        }),
        Err(Refusal::NotYourItem)
    );
    let me = f.client(24);
    assert_eq!(
        f.send(&me, Role::Professional, mine, add("theirs", mine)),
        Err(Refusal::NotYourItem),
        "replacing someone else's item"
    );
    let me = f.client(25);
    assert_eq!(
        f.send(&me, Role::Professional, mine, |txn| {
            Board::in_txn(txn).delete_item(txn, "mine");
        }),
        Ok(())
    );
}

#[test]
fn nobody_claims_someone_else_as_author_or_changes_an_author() {
    let mut f = Fixture::new();
    let (chair, pro) = (person(), person());
    let c = f.client(30);
    assert_eq!(
        f.send(&c, Role::Chair, chair, add("x", pro)),
        Err(Refusal::WrongAuthor)
    );
    let c = f.client(31);
    f.send(&c, Role::Chair, chair, add("y", chair)).unwrap();
    assert_eq!(
        f.send(&c, Role::Chair, chair, |txn| {
            let board = txn.get_or_insert_map(doc::BOARD);
            let Some(yrs::Out::YMap(item)) = board.get(txn, "y") else {
                panic!()
            };
            item.insert(txn, doc::item::AUTHOR, pro.to_string());
        }),
        Err(Refusal::AuthorIsFixed)
    );
}

#[test]
fn family_and_room_display_read_only() {
    for role in [
        Role::Parent,
        Role::Carer,
        Role::Supporter,
        Role::Child,
        Role::Advocate,
        Role::RoomDisplay,
    ] {
        let mut f = Fixture::new();
        let who = person();
        let c = f.client(40);
        assert_eq!(
            f.send(&c, role, who, add("z", who)),
            Err(Refusal::ReadOnly("board")),
            "{role:?}"
        );
        let c = f.client(41);
        assert_eq!(
            f.send(&c, role, who, |txn| {
                txn.get_or_insert_map(doc::PLAN).insert(txn, "goal", "x");
            }),
            Err(Refusal::ReadOnly("plan")),
            "{role:?}"
        );
    }
}

#[test]
fn server_parts_and_unknown_parts_are_refused_to_every_role() {
    for role in [
        Role::Chair,
        Role::MinuteTaker,
        Role::Professional,
        Role::Parent,
    ] {
        for root in [doc::META, doc::ROSTER, doc::SCALES, doc::DECISIONS] {
            let mut f = Fixture::new();
            let c = f.client(50);
            let verdict = f.send(&c, role, person(), |txn| {
                txn.get_or_insert_map(root).insert(txn, "k", "v");
            });
            assert!(
                matches!(verdict, Err(Refusal::ServerOnly(_))),
                "{role:?} {root}"
            );
        }
        let mut f = Fixture::new();
        let c = f.client(51);
        let verdict = f.send(&c, role, person(), |txn| {
            txn.get_or_insert_map("anything").insert(txn, "k", "v");
        });
        assert_eq!(
            verdict,
            Err(Refusal::UnknownPart("anything".into())),
            "{role:?}"
        );
    }
}

#[test]
fn changing_an_existing_server_value_is_placed_in_its_root() {
    let mut f = Fixture::new();
    let c = f.client(60);
    // Overwriting the title creates a block whose origin is the old title.
    let verdict = f.send(&c, Role::Chair, person(), |txn| {
        txn.get_or_insert_map(doc::META)
            .insert(txn, doc::meta::TITLE, "Renamed");
    });
    assert_eq!(verdict, Err(Refusal::ServerOnly("details")));
}
