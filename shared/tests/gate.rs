//! The gate decides on an update before applying it; its decision must be the one made
//! by applying the update to a copy of the document and checking what yrs reports it
//! changed.
//!
//! Five people (chair, minute-taker, two professionals, a parent) each hold a replica
//! (two of them with garbage collection on, as stock Yjs clients have it) that is
//! synced from the server only now and then, so they edit from stale states:
//! adding, typing into, moving and deleting items (their own and others'), writing
//! the plan (with real and impossible dates), and reaching for the parts only the
//! server writes. Their updates reach the server at once, merged with later ones,
//! held back and delivered after later ones, or all at once as a reconnect sends them.
//! For every update:
//!
//! - the gate admits exactly what the reference accepts, and refuses what it refuses
//!   (not always naming the same fault first); it refuses more only a write that yrs
//!   reports as no change at all (one that loses to a concurrent write, say);
//! - the gate holds back (incomplete) only an update that builds on something the
//!   server does not have, and never spoils the document;
//! - in the end, once everything held back arrives, the server's document holds
//!   exactly what the reference's accepted updates make.

use proptest::prelude::*;
mod common;

use common::reference;
use roundtable_shared::doc::{self, Board, NewItem};
use roundtable_shared::gate::{Gate, Sender, Verdict};
use roundtable_shared::{ParticipantId, Role};
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, MapRef, Out, ReadTxn, Transact, Update, WriteTxn};

const ROLES: [Role; 5] = [
    Role::Chair,
    Role::MinuteTaker,
    Role::Professional,
    Role::Professional,
    Role::Parent,
];
/// Items each person may add, under ids of their own (clients make random ids, so two
/// people never add the same one).
const ITEMS_EACH: usize = 3;
const ITEMS: usize = ITEMS_EACH * ROLES.len();

fn item_id(item: usize) -> String {
    format!("item{item}")
}
const DATES: [&str; 3] = ["2027-01-15", "", "next Tuesday"];

fn participant(person: usize) -> ParticipantId {
    ParticipantId(Uuid::from_u128(0x1000 + person as u128))
}

#[derive(Debug, Clone)]
enum Op {
    Add { item: usize, as_someone_else: bool },
    Type { item: usize, at: usize },
    Erase { item: usize },
    Move { item: usize },
    Delete { item: usize },
    Contingency,
    Action { date: usize },
    Meta,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..ITEMS_EACH, proptest::bool::weighted(0.15))
            .prop_map(|(item, as_someone_else)| Op::Add { item, as_someone_else }),
        4 => (0..ITEMS, 0..8usize).prop_map(|(item, at)| Op::Type { item, at }),
        1 => (0..ITEMS).prop_map(|item| Op::Erase { item }),
        1 => (0..ITEMS).prop_map(|item| Op::Move { item }),
        1 => (0..ITEMS).prop_map(|item| Op::Delete { item }),
        1 => Just(Op::Contingency),
        1 => (0..DATES.len()).prop_map(|date| Op::Action { date }),
        1 => Just(Op::Meta),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    /// Someone edits; what it makes is sent at once, or kept back to go later.
    Edit {
        person: usize,
        op: Op,
        keep_back: bool,
    },
    /// Someone sends everything they kept back, merged, or in reverse order.
    Flush { person: usize, merged: bool },
    /// Someone's replica catches up with the server.
    Sync { person: usize },
    /// Someone connects again: their replica sends the server everything it lacks, in
    /// one update (what they kept back included), as a reconnecting client's SyncStep2.
    Resync { person: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..ROLES.len(), op(), proptest::bool::weighted(0.3))
            .prop_map(|(person, op, keep_back)| Step::Edit { person, op, keep_back }),
        1 => (0..ROLES.len(), any::<bool>()).prop_map(|(person, merged)| Step::Flush { person, merged }),
        2 => (0..ROLES.len()).prop_map(|person| Step::Sync { person }),
        1 => (0..ROLES.len()).prop_map(|person| Step::Resync { person }),
    ]
}

/// Makes the edit on the replica; `None` if there was nothing to do it to.
fn perform(replica: &Doc, person: usize, op: &Op, counter: &mut u32) -> Option<Vec<u8>> {
    let mut txn = replica.transact_mut();
    let board = Board::in_txn(&mut txn);
    *counter += 1;
    match op {
        Op::Add {
            item,
            as_someone_else,
        } => {
            let author = participant(if *as_someone_else { person + 1 } else { person });
            board.add_item(
                &mut txn,
                NewItem {
                    id: &item_id(person * ITEMS_EACH + item),
                    heading: "worries",
                    text: "first words",
                    author,
                    said_by: None,
                    children: &[],
                },
            );
        }
        Op::Type { item, at } => {
            let text = board.text(&txn, &item_id(*item))?;
            let len = yrs::Text::len(&text, &txn);
            let at = (*at as u32).min(len);
            board.insert_text(&mut txn, &item_id(*item), at, &format!("<{counter}>"));
        }
        Op::Erase { item } => {
            let text = board.text(&txn, &item_id(*item))?;
            let len = yrs::Text::len(&text, &txn);
            if len < 2 {
                return None;
            }
            yrs::Text::remove_range(&text, &mut txn, len / 2, 2);
        }
        Op::Move { item } => {
            if !board.move_item(&mut txn, &item_id(*item), "working_well", None, None) {
                return None;
            }
        }
        Op::Delete { item } => {
            if !board.delete_item(&mut txn, &item_id(*item)) {
                return None;
            }
        }
        Op::Contingency => {
            let plan = txn.get_or_insert_map(doc::PLAN);
            plan.insert(&mut txn, "contingency", format!("plan {counter}"));
        }
        Op::Action { date } => {
            let plan = txn.get_or_insert_map(doc::PLAN);
            let actions: MapRef = match plan.get(&txn, roundtable_shared::plan::ACTIONS) {
                Some(Out::YMap(map)) => map,
                _ => plan.insert(
                    &mut txn,
                    roundtable_shared::plan::ACTIONS,
                    yrs::MapPrelim::default(),
                ),
            };
            let action: MapRef = actions.insert(
                &mut txn,
                format!("action{counter}"),
                yrs::MapPrelim::default(),
            );
            action.insert(&mut txn, roundtable_shared::plan::action::BY, DATES[*date]);
        }
        Op::Meta => {
            let meta = txn.get_or_insert_map(doc::META);
            meta.insert(&mut txn, doc::meta::TITLE, format!("Renamed {counter}"));
        }
    }
    Some(txn.encode_update_v1())
}

struct Server {
    gate: Gate,
    accepted: Vec<Vec<u8>>,
}

fn sync_from(server: &Doc, replica: &Doc) {
    let sv = replica.transact().state_vector();
    let diff = server.transact().encode_state_as_update_v1(&sv);
    replica
        .transact_mut()
        .apply_update(Update::decode_v1(&diff).unwrap())
        .unwrap();
}

/// Whether `person`'s replicas collect garbage, as a stock Yjs client's do: they then
/// send collected ranges for content deleted before it reached the server.
fn collects_garbage(person: usize) -> bool {
    person % 2 == 1
}

fn fresh_replica(server: &Doc, person: usize, generation: u64) -> Doc {
    let replica = Doc::with_options(yrs::Options {
        client_id: yrs::ClientID::new(100 + person as u64 * 1000 + generation),
        skip_gc: !collects_garbage(person),
        ..doc::document_options()
    });
    sync_from(server, &replica);
    replica
}

/// Everything the document's roots hold.
fn content(doc: &Doc) -> Vec<(&'static str, yrs::Any)> {
    use yrs::types::ToJson;
    let txn = doc.transact();
    doc::ROOTS
        .iter()
        .filter_map(|root| Some((*root, txn.get_map(*root)?.to_json(&txn))))
        .collect()
}

fn run(steps: Vec<Step>) {
    let origin = doc::new_document();
    let start = {
        let mut txn = origin.transact_mut();
        txn.get_or_insert_map(doc::META)
            .insert(&mut txn, doc::meta::TITLE, "Conference");
        roundtable_shared::plan::write_skeleton(&mut txn);
        txn.encode_update_v1()
    };
    let mut server = Server {
        gate: Gate::load([start.as_slice()]).unwrap(),
        accepted: vec![start],
    };
    let mut generations = [0u64; ROLES.len()];
    let mut replicas: Vec<Doc> = (0..ROLES.len())
        .map(|p| fresh_replica(server.gate.doc(), p, 0))
        .collect();
    let mut kept: Vec<Vec<Vec<u8>>> = vec![Vec::new(); ROLES.len()];
    let mut held: Vec<Vec<Vec<u8>>> = vec![Vec::new(); ROLES.len()];
    let mut counter = 0;
    let deliver = |server: &mut Server,
                   replicas: &mut Vec<Doc>,
                   held: &mut Vec<Vec<Vec<u8>>>,
                   generations: &mut [u64; ROLES.len()],
                   person: usize,
                   update: Vec<u8>|
     -> bool {
        let role = ROLES[person];
        let sender = participant(person);
        assert_eq!(roundtable_shared::wire::check_update(&update), Ok(()));
        let (expected, unseen) = reference(&server.accepted, role, sender, &update);
        let verdict = server.gate.admit(
            Sender {
                participant: sender,
                role,
            },
            &update,
        );
        let mut reset = false;
        match (&verdict, &expected) {
            (Verdict::Accepted(taken), Ok(true)) => server.accepted.push(taken.update.clone()),
            (Verdict::Known, Ok(false)) => {}
            // Both refuse. The gate may name another of the update's faults first: it
            // also sees what yrs reports as no change (an item added and deleted again).
            (Verdict::Refused(_), Err(Some(_))) => {
                // The client drops its copy and starts again from the server's.
                generations[person] += 1;
                replicas[person] = fresh_replica(server.gate.doc(), person, generations[person]);
                held[person].clear();
                reset = true;
            }
            (Verdict::Incomplete(_), Err(None)) => held[person].push(update),
            // The gate refuses by where each write lands, even one that loses to a
            // concurrent write, where yrs reports no change.
            (Verdict::Refused(_), Ok(true)) if unseen => {
                generations[person] += 1;
                replicas[person] = fresh_replica(server.gate.doc(), person, generations[person]);
                held[person].clear();
                reset = true;
            }
            _ => panic!("gate: {verdict:?}, reference: {expected:?}"),
        }
        // What was held back may be complete now.
        if matches!(verdict, Verdict::Accepted(_)) {
            let waiting = std::mem::take(&mut held[person]);
            for update in waiting {
                let retry = server.gate.admit(
                    Sender {
                        participant: sender,
                        role,
                    },
                    &update,
                );
                match retry {
                    Verdict::Accepted(taken) => server.accepted.push(taken.update),
                    Verdict::Incomplete(_) => held[person].push(update),
                    _ => {}
                }
            }
        }
        reset
    };
    for step in steps {
        match step {
            Step::Edit {
                person,
                op,
                keep_back,
            } => {
                let Some(update) = perform(&replicas[person], person, &op, &mut counter) else {
                    continue;
                };
                if keep_back {
                    kept[person].push(update);
                } else if deliver(
                    &mut server,
                    &mut replicas,
                    &mut held,
                    &mut generations,
                    person,
                    update,
                ) {
                    // Refused: the client drops its copy, and what it had not sent.
                    kept[person].clear();
                }
            }
            Step::Flush { person, merged } => {
                let mut updates = std::mem::take(&mut kept[person]);
                if updates.is_empty() {
                    continue;
                }
                if merged {
                    let merged = yrs::merge_updates_v1(&updates).unwrap();
                    deliver(
                        &mut server,
                        &mut replicas,
                        &mut held,
                        &mut generations,
                        person,
                        merged,
                    );
                } else {
                    updates.reverse();
                    for update in updates {
                        if deliver(
                            &mut server,
                            &mut replicas,
                            &mut held,
                            &mut generations,
                            person,
                            update,
                        ) {
                            break;
                        }
                    }
                }
            }
            Step::Sync { person } => sync_from(server.gate.doc(), &replicas[person]),
            Step::Resync { person } => {
                let known = server.gate.doc().transact().state_vector();
                let update = replicas[person]
                    .transact()
                    .encode_state_as_update_v1(&known);
                kept[person].clear();
                deliver(
                    &mut server,
                    &mut replicas,
                    &mut held,
                    &mut generations,
                    person,
                    update,
                );
            }
        }
    }
    // The server's document is what its accepted updates make (how yrs splits the
    // same items into blocks depends on the order they came in).
    let rebuilt = Gate::load(server.accepted.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(content(rebuilt.doc()), content(server.gate.doc()));
    assert_eq!(
        rebuilt.doc().transact().state_vector(),
        server.gate.doc().transact().state_vector()
    );
    assert!(!server.gate.doc().transact().has_missing_updates());
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_gate_decides_as_applying_and_checking_would(
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        run(steps);
    }
}
