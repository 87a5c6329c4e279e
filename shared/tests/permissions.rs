//! What each role may write, checked on real Yjs updates made with yrs.

mod common;

use roundtable_shared::doc::{self, Board, NewItem};

use roundtable_shared::gate::{Gate, Sender, Verdict};
use roundtable_shared::permissions::Refusal;
use roundtable_shared::{ParticipantId, Role};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, ReadTxn, StateVector, Transact, Update, WriteTxn};

/// A server-side document behind the gate, as the server has it, beside a reference
/// that applies each update to a copy of the document and checks what yrs reports it
/// changed. Every update is judged by both, and they must agree: the gate decides
/// before applying, so this is what shows its reading of an update is right.
struct Fixture {
    gate: Gate,
    accepted: Vec<Vec<u8>>,
}

impl Fixture {
    fn new() -> Fixture {
        let origin = Doc::with_client_id(1);
        let title = {
            let mut txn = origin.transact_mut();
            txn.get_or_insert_map(doc::META)
                .insert(&mut txn, doc::meta::TITLE, "Conference");
            txn.encode_update_v1()
        };
        Fixture {
            gate: Gate::load([title.as_slice()]).unwrap(),
            accepted: vec![title],
        }
    }

    /// The server's document, for reading.
    fn server(&self) -> &Doc {
        self.gate.doc()
    }

    /// A client replica in sync with the server.
    fn client(&self, client_id: u64) -> Doc {
        let doc = Doc::with_client_id(client_id);
        let state = self
            .server()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        doc.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        doc
    }

    /// Makes an edit on `client` and asks whether `role` may send it.
    fn send(
        &mut self,
        client: &Doc,
        role: Role,
        sender: ParticipantId,
        edit: impl FnOnce(&mut yrs::TransactionMut),
    ) -> Result<(), Refusal> {
        let update = {
            let mut txn = client.transact_mut();
            edit(&mut txn);
            txn.encode_update_v1()
        };
        self.send_update(role, sender, update)
    }

    fn send_update(
        &mut self,
        role: Role,
        sender: ParticipantId,
        update: Vec<u8>,
    ) -> Result<(), Refusal> {
        let (reference, _) = common::reference(&self.accepted, role, sender, &update);
        let reference = reference
            .map(|_| ())
            .map_err(|refusal| refusal.expect("complete"));
        let verdict = self.gate.admit(
            Sender {
                participant: sender,
                role,
            },
            &update,
        );
        let judged = match &verdict {
            Verdict::Accepted(_) | Verdict::Known => Ok(()),
            Verdict::Refused(refusal) => Err(refusal.clone()),
            other => panic!("the gate said {other:?} where the reference said {reference:?}"),
        };
        assert_eq!(judged, reference, "the gate and the reference disagree");
        if let Verdict::Accepted(taken) = verdict {
            self.accepted.push(taken.update);
        }
        judged
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
fn a_role_that_writes_nothing_cannot_write_where_nobody_would_see_it() {
    // Found by the `sync_message` fuzz target: typing into an item that someone has
    // deleted changes nothing anyone sees, so no rule about places refused it.
    let (chair, pro) = (person(), person());
    for (role, expected) in [
        (Role::Parent, Err(Refusal::ReadOnly("document"))),
        (Role::RoomDisplay, Err(Refusal::ReadOnly("document"))),
        (Role::Professional, Ok(())),
    ] {
        let mut f = Fixture::new();
        let c = f.client(60);
        assert_eq!(f.send(&c, Role::Professional, pro, add("a", pro)), Ok(()));
        // A replica from before the chair deletes the item.
        let stale = f.client(61);
        let c = f.client(62);
        assert_eq!(
            f.send(&c, Role::Chair, chair, |txn| {
                Board::in_txn(txn).delete_item(txn, "a");
            }),
            Ok(())
        );
        let typed = f.send(&stale, role, pro, |txn| {
            assert!(Board::in_txn(txn).insert_text(txn, "a", 0, "unseen "));
        });
        assert_eq!(typed, expected, "{role:?}");
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

/// An update crafted byte by byte: a garbage-collected block, then a string whose
/// origin is the conference title and whose right origin is that garbage. Wherever yrs
/// puts the string, the title must not change for a professional.
#[test]
fn a_crafted_update_cannot_reach_the_server_parts() {
    use yrs::encoding::write::Write;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    use yrs::{ClientID, ID};
    let mut f = Fixture::new();
    let attacker = ClientID::new(777);
    let title_block = ID::new(ClientID::new(1), 0);
    let mut e = EncoderV1::new();
    e.write_var(1u32); // clients
    e.write_var(2u32); // blocks of this client
    e.write_client(attacker);
    e.write_var(0u32); // first clock
    e.write_info(0); // a garbage-collected range
    e.write_len(1);
    e.write_info(0b1100_0100); // origin, right origin, string content
    e.write_left_id(&title_block);
    e.write_right_id(&ID::new(attacker, 0));
    e.write_string("Renamed");
    e.write_var(0u32); // empty delete set
    let update = e.to_vec();
    let sender = Sender {
        participant: person(),
        role: Role::Professional,
    };
    let verdict = f.gate.admit(sender, &update);
    let title = doc::read_title(&f.server().transact());
    assert_eq!(title.as_deref(), Some("Conference"), "verdict: {verdict:?}");
    assert!(matches!(verdict, Verdict::Refused(_)), "{verdict:?}");
}

/// A professional's own item with words typed into it from client 30: the update tests
/// below build on those words, `(30, 0..5)`.
fn with_own_words(f: &mut Fixture, pro: ParticipantId) -> yrs::ID {
    let c = f.client(29);
    f.send(&c, Role::Professional, pro, add("mine", pro))
        .unwrap();
    let c = f.client(30);
    f.send(&c, Role::Professional, pro, |txn| {
        Board::in_txn(txn).insert_text(txn, "mine", 0, "hello");
    })
    .unwrap();
    yrs::ID::new(yrs::ClientID::new(30), 4)
}

fn professional(participant: ParticipantId) -> Sender {
    Sender {
        participant,
        role: Role::Professional,
    }
}

/// The whole document, to show that something changed nothing.
fn encoded(f: &Fixture) -> Vec<u8> {
    f.server()
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
}

#[test]
fn a_client_listed_twice_in_one_update_is_not_an_update() {
    // yrs appends the second section to the first, so the client's clocks go back:
    // integrating that overwrites a live block.
    let mut f = Fixture::new();
    let pro = person();
    with_own_words(&mut f, pro);
    let c = f.client(31);
    let typed = {
        let mut txn = c.transact_mut();
        Board::in_txn(&mut txn).insert_text(&mut txn, "mine", 5, "!");
        txn.encode_update_v1()
    };
    // One client, then an empty delete set: the client's section sits between.
    assert_eq!((typed[0], typed[typed.len() - 1]), (1, 0));
    let section = &typed[1..typed.len() - 1];
    let twice = [&[2u8][..], section, section, &[0]].concat();
    let before = encoded(&f);
    let verdict = f.gate.admit(professional(pro), &twice);
    assert!(matches!(verdict, Verdict::Malformed(_)), "{verdict:?}");
    assert_eq!(encoded(&f), before);
}

#[test]
fn items_that_wait_for_each_other_across_clients_are_incomplete() {
    use yrs::encoding::write::Write;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    use yrs::{ClientID, ID};
    let mut f = Fixture::new();
    let pro = person();
    let own = with_own_words(&mut f, pro);
    let (a, b) = (ClientID::new(500), ClientID::new(501));
    let mut e = EncoderV1::new();
    e.write_var(2u32); // clients
    e.write_var(2u32); // blocks of a
    e.write_client(a);
    e.write_var(0u32);
    e.write_info(0b1000_0100); // an origin, string content
    e.write_left_id(&ID::new(b, 0)); // after b's first, which comes after a's second
    e.write_string("x");
    e.write_info(0b1000_0100);
    e.write_left_id(&own);
    e.write_string("y");
    e.write_var(1u32); // blocks of b
    e.write_client(b);
    e.write_var(0u32);
    e.write_info(0b1000_0100);
    e.write_left_id(&ID::new(a, 1));
    e.write_string("z");
    e.write_var(0u32); // empty delete set
    let before = encoded(&f);
    let verdict = f.gate.admit(professional(pro), &e.to_vec());
    assert!(matches!(verdict, Verdict::Incomplete(_)), "{verdict:?}");
    assert_eq!(encoded(&f), before);
}

#[test]
fn a_block_that_begins_inside_what_the_server_has_lands_after_it() {
    // The block claims to follow the professional's own words, but its first element
    // is one the server already has (the end of the conference's title): yrs cuts it
    // there, and the rest follows the title, into the details only the server writes.
    use yrs::encoding::write::Write;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    let mut f = Fixture::new();
    let pro = person();
    let own = with_own_words(&mut f, pro);
    let server_client = yrs::ClientID::new(1);
    let from = f.server().transact().state_vector().get(&server_client);
    let mut e = EncoderV1::new();
    e.write_var(1u32);
    e.write_var(1u32);
    e.write_client(server_client);
    e.write_var(from - 1);
    e.write_info(0b1000_0100);
    e.write_left_id(&own);
    e.write_string("ab");
    e.write_var(0u32);
    let verdict = f.send_update(Role::Professional, pro, e.to_vec());
    assert_eq!(verdict, Err(Refusal::ServerOnly("details")));
}

#[test]
fn an_author_written_twice_in_the_new_item_is_the_last_one_written() {
    let mut f = Fixture::new();
    let (pro, other) = (person(), person());
    let c = f.client(40);
    let verdict = f.send(&c, Role::Professional, pro, |txn| {
        add("twice", pro)(txn);
        let board = txn.get_or_insert_map(doc::BOARD);
        let Some(yrs::Out::YMap(item)) = board.get(txn, "twice") else {
            panic!()
        };
        item.insert(txn, doc::item::AUTHOR, other.to_string());
    });
    assert_eq!(verdict, Err(Refusal::WrongAuthor));
}
