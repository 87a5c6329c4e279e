//! Replicas of one conference document converge, whatever the network does.
//!
//! Two to four replicas start from one document the server made (the plan's skeleton
//! and a few board items), then, round after round, each makes random changes to the
//! board and the plan. Their updates travel in a random order, some late, some twice;
//! a replica may be offline for some rounds (what was sent to it then is lost) and
//! catches up by a state-vector sync with one peer when it is back. At the end
//! everyone syncs with everyone, and:
//!
//! - every replica reads the same board, the same plan, the same content in every
//!   root, and encodes the same state once loaded into a fresh document;
//! - every item, danger and action created and deleted by nobody is there exactly once,
//!   with the author who created it, and everything deleted by anyone is gone, even
//!   when others were still changing it (yrs deletes the whole map: a concurrent change
//!   to one of its fields lands inside the deleted map and does not bring it back);
//! - every text holds exactly what was typed into it: its first words, and every
//!   marker typed by anyone and erased by nobody, once.
//!
//! Two variants, updates delivered out of order and twice, and documents with garbage
//! collection on, fail against yrs 0.28.1 as published; they run against the fix in
//! `vendor/yrs` (`vendor/yrs/FORK.md`). The smallest cases they found against the
//! published yrs are tests of their own, at the end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use roundtable_shared::doc::{self, Board, BoardItem, NewItem, SaidBy};
use roundtable_shared::plan::{self, Plan};
use roundtable_shared::{ChildId, ParticipantId};
use uuid::Uuid;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Doc, GetString, Options, ReadTxn, StateVector, Text, TextRef, Transact, TransactionMut,
    Update,
};

const HEADINGS: [&str; 3] = ["worries", "working_well", "next_steps"];
const AGENCIES: [&str; 3] = ["Health", "School", "Police"];
/// Values an action's plain entries take: a real date, a person, nothing.
const ACTION_VALUES: [&str; 4] = ["2027-01-15", "2027-03-01", "agency:Health", ""];
const ACTION_FIELDS: [&str; 3] = [plan::action::WHO, plan::action::BY, plan::action::CHILD];

fn participant(replica: usize) -> ParticipantId {
    ParticipantId(Uuid::from_u128(0x1000 + replica as u128))
}

fn child(n: usize) -> ChildId {
    ChildId(Uuid::from_u128(0x2000 + n as u128))
}

/// The server's own author id.
const SERVER: usize = 99;

/// A text of the document, named the same way on every replica.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TextKey {
    Item(String),
    Plan(&'static str),
    Field(&'static str, String, &'static str),
}

impl TextKey {
    fn find<T: ReadTxn>(&self, txn: &T) -> Option<TextRef> {
        match self {
            TextKey::Item(id) => Board::get(txn)?.text(txn, id),
            TextKey::Plan(name) => plan::text(txn, name),
            TextKey::Field(list, id, field) => plan::field_text(txn, list, id, field),
        }
    }

    /// The dangers' and actions' texts, and the plan's own two.
    fn plan_texts(plan: &Plan) -> Vec<TextKey> {
        let mut keys = vec![
            TextKey::Plan(plan::CONTINGENCY),
            TextKey::Plan(plan::BOTTOM_LINES),
        ];
        for d in &plan.dangers {
            keys.push(TextKey::Field(
                plan::DANGERS,
                d.id.clone(),
                plan::danger::STATEMENT,
            ));
            keys.push(TextKey::Field(
                plan::DANGERS,
                d.id.clone(),
                plan::danger::GOAL,
            ));
        }
        for a in &plan.actions {
            keys.push(TextKey::Field(
                plan::ACTIONS,
                a.id.clone(),
                plan::action::WHAT,
            ));
            keys.push(TextKey::Field(
                plan::ACTIONS,
                a.id.clone(),
                plan::action::HOW_WE_KNOW,
            ));
        }
        keys
    }
}

/// The markers (`[…]`) a text holds, with their byte ranges, and what is left around them.
fn markers(text: &str) -> (Vec<(String, u32, u32)>, String) {
    let mut found = Vec::new();
    let mut rest = String::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c, start) {
            ('[', None) => start = Some(i),
            (']', Some(s)) => {
                found.push((text[s..=i].to_owned(), s as u32, (i + 1 - s) as u32));
                start = None;
            }
            (_, None) => rest.push(c),
            (_, Some(_)) => {}
        }
    }
    (found, rest)
}

/// Byte offsets of a text where a new marker may go: anywhere but inside a marker.
fn gaps(text: &str) -> Vec<u32> {
    let mut gaps = vec![0];
    let mut inside = false;
    for (i, c) in text.char_indices() {
        match c {
            '[' => inside = true,
            ']' => inside = false,
            _ => {}
        }
        if !inside {
            gaps.push((i + c.len_utf8()) as u32);
        }
    }
    gaps
}

/// One of some choices, as a fraction of their number: `Index(u64::MAX / 2)` is the one
/// in the middle. (As `proptest::sample::Index`, which a test cannot write out, as the
/// tests of cases found below do.)
#[derive(Debug, Clone, Copy)]
struct Index(u64);

impl Index {
    fn get<'a, T>(&self, choices: &'a [T]) -> &'a T {
        &choices[((choices.len() as u128 * self.0 as u128) >> 64) as usize]
    }
}

impl Arbitrary for Index {
    type Parameters = ();
    type Strategy = proptest::strategy::Map<proptest::num::u64::Any, fn(u64) -> Index>;

    fn arbitrary_with((): ()) -> Self::Strategy {
        any::<u64>().prop_map(Index)
    }
}

#[derive(Debug, Clone)]
enum Op {
    AddItem {
        heading: usize,
    },
    TypeItem {
        item: Index,
        at: Index,
    },
    EraseItem {
        item: Index,
        marker: Index,
    },
    MoveItem {
        item: Index,
        heading: usize,
        before: Option<Index>,
        after: Option<Index>,
    },
    SetChild {
        item: Index,
        child: usize,
        concerns: bool,
    },
    SetSaidBy {
        item: Index,
        agency: Option<usize>,
    },
    DeleteItem {
        item: Index,
    },
    AddDanger,
    AddAction,
    SetAction {
        action: Index,
        field: usize,
        value: usize,
    },
    Remove {
        dangers: bool,
        entry: Index,
    },
    TypePlan {
        text: Index,
        at: Index,
    },
    ErasePlan {
        text: Index,
        marker: Index,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let index = any::<Index>;
    prop_oneof![
        3 => (0..HEADINGS.len()).prop_map(|heading| Op::AddItem { heading }),
        4 => (index(), index()).prop_map(|(item, at)| Op::TypeItem { item, at }),
        1 => (index(), index()).prop_map(|(item, marker)| Op::EraseItem { item, marker }),
        2 => (index(), 0..HEADINGS.len(), proptest::option::of(index()), proptest::option::of(index()))
            .prop_map(|(item, heading, before, after)| Op::MoveItem { item, heading, before, after }),
        1 => (index(), 0..2usize, any::<bool>())
            .prop_map(|(item, child, concerns)| Op::SetChild { item, child, concerns }),
        1 => (index(), proptest::option::of(0..AGENCIES.len()))
            .prop_map(|(item, agency)| Op::SetSaidBy { item, agency }),
        1 => index().prop_map(|item| Op::DeleteItem { item }),
        1 => Just(Op::AddDanger),
        1 => Just(Op::AddAction),
        1 => (index(), 0..ACTION_FIELDS.len(), 0..ACTION_VALUES.len())
            .prop_map(|(action, field, value)| Op::SetAction { action, field, value }),
        1 => (any::<bool>(), index()).prop_map(|(dangers, entry)| Op::Remove { dangers, entry }),
        4 => (index(), index()).prop_map(|(text, at)| Op::TypePlan { text, at }),
        1 => (index(), index()).prop_map(|(text, marker)| Op::ErasePlan { text, marker }),
    ]
}

/// One round: who is offline, the changes made (by replica number, taken modulo the
/// replica count), and a seed for the order and timing of delivery.
#[derive(Debug, Clone)]
struct Round {
    offline: [bool; 4],
    ops: Vec<(usize, Op)>,
    seed: u64,
}

fn round() -> impl Strategy<Value = Round> {
    (
        proptest::array::uniform4(proptest::bool::weighted(0.25)),
        proptest::collection::vec((0..4usize, op()), 0..8),
        any::<u64>(),
    )
        .prop_map(|(offline, ops, seed)| Round { offline, ops, seed })
}

/// A small deterministic generator for the delivery order (splitmix64).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// What everybody did, to say what the document must hold at the end.
#[derive(Default)]
struct Expected {
    /// Item id → its author.
    items: BTreeMap<String, ParticipantId>,
    deleted_items: BTreeSet<String>,
    dangers: BTreeSet<String>,
    actions: BTreeSet<String>,
    removed: BTreeSet<String>,
    /// A text's first words, given when it was created.
    seeds: BTreeMap<TextKey, String>,
    typed: BTreeMap<TextKey, Vec<String>>,
    erased: BTreeMap<TextKey, BTreeSet<String>>,
}

impl Expected {
    fn item_created(&mut self, id: &str, author: ParticipantId, text: &str) {
        self.items.insert(id.to_owned(), author);
        self.seeds
            .insert(TextKey::Item(id.to_owned()), text.to_owned());
    }

    fn danger_created(&mut self, id: &str, statement: &str, goal: &str) {
        self.dangers.insert(id.to_owned());
        for (field, seed) in [
            (plan::danger::STATEMENT, statement),
            (plan::danger::GOAL, goal),
        ] {
            self.seeds.insert(
                TextKey::Field(plan::DANGERS, id.to_owned(), field),
                seed.to_owned(),
            );
        }
    }

    fn action_created(&mut self, id: &str, what: &str) {
        self.actions.insert(id.to_owned());
        for (field, seed) in [(plan::action::WHAT, what), (plan::action::HOW_WE_KNOW, "")] {
            self.seeds.insert(
                TextKey::Field(plan::ACTIONS, id.to_owned(), field),
                seed.to_owned(),
            );
        }
    }
}

/// The document the server makes when the conference is created.
fn server_document(expected: &mut Expected, gc: bool) -> (Doc, Vec<u8>) {
    let server = new_doc(1, gc);
    let mut txn = server.transact_mut();
    plan::write_skeleton(&mut txn);
    for name in [plan::CONTINGENCY, plan::BOTTOM_LINES] {
        expected.seeds.insert(TextKey::Plan(name), String::new());
    }
    let board = Board::in_txn(&mut txn);
    for (n, heading) in HEADINGS.iter().enumerate() {
        let id = format!("s{n}");
        let text = format!("seed {n}");
        board.add_item(
            &mut txn,
            NewItem {
                id: &id,
                heading,
                text: &text,
                author: participant(SERVER),
                said_by: None,
                children: &[child(0)],
            },
        );
        expected.item_created(&id, participant(SERVER), &text);
    }
    assert!(plan::add_danger(
        &mut txn,
        "sd",
        "Dad drinks",
        "Alex is safe"
    ));
    expected.danger_created("sd", "Dad drinks", "Alex is safe");
    assert!(plan::add_action(&mut txn, "sa", "Course"));
    expected.action_created("sa", "Course");
    let update = txn.encode_update_v1();
    drop(txn);
    (server, update)
}

/// Moves the next update of queue `q` (even: replica `q / 2` up to the server; odd:
/// down from the server to replica `q / 2`). The server relays what it applies to every
/// other replica that is connected.
fn relay(
    server: &Doc,
    replicas: &[Replica],
    up: &mut [VecDeque<Vec<u8>>],
    down: &mut [VecDeque<Vec<u8>>],
    offline: &[bool],
    q: usize,
) {
    let r = q / 2;
    if q.is_multiple_of(2) {
        let update = up[r].pop_front().expect("a queued update");
        apply(server, &update);
        assert!(
            server.transact().store().pending_update().is_none(),
            "the server never holds an update it cannot apply"
        );
        for to in (0..replicas.len()).filter(|&to| to != r && !offline[to]) {
            down[to].push_back(update.clone());
        }
    } else {
        let update = down[r].pop_front().expect("a queued update");
        apply(&replicas[r].doc, &update);
    }
}

fn apply(doc: &Doc, update: &[u8]) {
    // Whatever replicas send one another passes the server's check of its shape.
    assert_eq!(roundtable_shared::wire::check_update(update), Ok(()));
    doc.transact_mut()
        .apply_update(Update::decode_v1(update).expect("a valid update"))
        .expect("the update applies");
}

/// The y-protocols sync between two replicas: each sends its state vector, the other
/// answers with what it lacks.
fn sync_pair(a: &Doc, b: &Doc) {
    for (from, to) in [(a, b), (b, a)] {
        let sv = to.transact().state_vector();
        let update = from.transact().encode_state_as_update_v1(&sv);
        apply(to, &update);
    }
}

struct Replica {
    number: usize,
    doc: Doc,
    made: usize,
}

impl Replica {
    fn fresh_id(&mut self, kind: &str) -> String {
        self.made += 1;
        format!("r{}{kind}{}", self.number, self.made)
    }

    fn marker(&mut self) -> String {
        self.made += 1;
        format!("[{}.{}]", self.number, self.made)
    }

    /// Applies one change in its own transaction; returns the update, if it changed
    /// anything.
    fn perform(&mut self, op: &Op, expected: &mut Expected) -> Option<Vec<u8>> {
        let doc = self.doc.clone();
        let mut txn = doc.transact_mut();
        let board = Board::in_txn(&mut txn);
        let items: Vec<BoardItem> = board.items(&txn);
        let pick = |i: &Index| (!items.is_empty()).then(|| i.get(&items).id.clone());
        let done = match op {
            Op::AddItem { heading } => {
                let id = self.fresh_id("i");
                let text = format!("note {id}");
                board.add_item(
                    &mut txn,
                    NewItem {
                        id: &id,
                        heading: HEADINGS[*heading],
                        text: &text,
                        author: participant(self.number),
                        said_by: Some(SaidBy::Participant(participant(self.number))),
                        children: &[],
                    },
                );
                expected.item_created(&id, participant(self.number), &text);
                true
            }
            Op::TypeItem { item, at } => match pick(item) {
                Some(id) => {
                    let marker = self.marker();
                    type_marker(&mut txn, TextKey::Item(id), at, marker, expected)
                }
                None => false,
            },
            Op::EraseItem { item, marker } => {
                let keys = items.iter().map(|i| TextKey::Item(i.id.clone())).collect();
                erase_marker(&mut txn, keys, item, marker, expected)
            }
            Op::MoveItem {
                item,
                heading,
                before,
                after,
            } => match pick(item) {
                Some(id) => {
                    let under: Vec<&BoardItem> = items
                        .iter()
                        .filter(|i| i.heading == HEADINGS[*heading] && i.id != id)
                        .collect();
                    let neighbour = |n: &Option<Index>| {
                        n.as_ref()
                            .filter(|_| !under.is_empty())
                            .map(|n| n.get(&under).id.as_str())
                    };
                    board.move_item(
                        &mut txn,
                        &id,
                        HEADINGS[*heading],
                        neighbour(before),
                        neighbour(after),
                    )
                }
                None => false,
            },
            Op::SetChild {
                item,
                child: n,
                concerns,
            } => pick(item).is_some_and(|id| board.set_child(&mut txn, &id, child(*n), *concerns)),
            Op::SetSaidBy { item, agency } => pick(item).is_some_and(|id| {
                let said_by = agency.map(|a| SaidBy::Agency(AGENCIES[a].to_owned()));
                board.set_said_by(&mut txn, &id, said_by.as_ref())
            }),
            Op::DeleteItem { item } => match pick(item) {
                Some(id) => {
                    assert!(board.delete_item(&mut txn, &id));
                    expected.deleted_items.insert(id);
                    true
                }
                None => false,
            },
            Op::AddDanger => {
                let id = self.fresh_id("d");
                let (statement, goal) = (format!("worry {id}"), format!("goal {id}"));
                assert!(plan::add_danger(&mut txn, &id, &statement, &goal));
                expected.danger_created(&id, &statement, &goal);
                true
            }
            Op::AddAction => {
                let id = self.fresh_id("a");
                let what = format!("do {id}");
                assert!(plan::add_action(&mut txn, &id, &what));
                expected.action_created(&id, &what);
                true
            }
            Op::SetAction {
                action,
                field,
                value,
            } => {
                let actions = plan::read_plan(&txn).actions;
                !actions.is_empty()
                    && plan::set_action_field(
                        &mut txn,
                        &action.get(&actions).id,
                        ACTION_FIELDS[*field],
                        ACTION_VALUES[*value],
                    )
            }
            Op::Remove { dangers, entry } => {
                let now = plan::read_plan(&txn);
                let (list, ids): (&str, Vec<String>) = if *dangers {
                    (
                        plan::DANGERS,
                        now.dangers.into_iter().map(|d| d.id).collect(),
                    )
                } else {
                    (
                        plan::ACTIONS,
                        now.actions.into_iter().map(|a| a.id).collect(),
                    )
                };
                if ids.is_empty() {
                    false
                } else {
                    let id = entry.get(&ids).clone();
                    assert!(plan::remove(&mut txn, list, &id));
                    expected.removed.insert(id);
                    true
                }
            }
            Op::TypePlan { text, at } => {
                let keys = TextKey::plan_texts(&plan::read_plan(&txn));
                let marker = self.marker();
                type_marker(&mut txn, text.get(&keys).clone(), at, marker, expected)
            }
            Op::ErasePlan { text, marker } => {
                let keys = TextKey::plan_texts(&plan::read_plan(&txn));
                erase_marker(&mut txn, keys, text, marker, expected)
            }
        };
        done.then(|| txn.encode_update_v1())
    }
}

fn type_marker(
    txn: &mut TransactionMut,
    key: TextKey,
    at: &Index,
    marker: String,
    expected: &mut Expected,
) -> bool {
    let text = key.find(txn).expect("the text is there");
    let gap = *at.get(&gaps(&text.get_string(txn)));
    plan::insert(txn, &text, gap, &marker);
    expected.typed.entry(key).or_default().push(marker);
    true
}

/// Erases one whole marker from one of the texts `keys` that holds any.
fn erase_marker(
    txn: &mut TransactionMut,
    keys: Vec<TextKey>,
    which_text: &Index,
    which: &Index,
    expected: &mut Expected,
) -> bool {
    type Marked = (TextKey, TextRef, Vec<(String, u32, u32)>);
    let marked: Vec<Marked> = keys
        .into_iter()
        .filter_map(|key| {
            let text = key.find(txn).expect("the text is there");
            let (found, _) = markers(&text.get_string(txn));
            (!found.is_empty()).then_some((key, text, found))
        })
        .collect();
    if marked.is_empty() {
        return false;
    }
    let (key, text, found) = which_text.get(&marked).clone();
    let (marker, start, len) = which.get(&found).clone();
    text.remove_range(txn, start, len);
    expected.erased.entry(key).or_default().insert(marker);
    true
}

/// Everything a replica holds, root by root, as plain values.
fn content(doc: &Doc) -> Vec<(&'static str, Any)> {
    let txn = doc.transact();
    doc::ROOTS
        .iter()
        .filter_map(|root| Some((*root, txn.get_map(*root)?.to_json(&txn))))
        .collect()
}

/// A replica's whole state, loaded into a fresh document and encoded again.
fn reloaded(doc: &Doc) -> (StateVector, Vec<u8>) {
    let fresh = Doc::with_client_id(7);
    apply(
        &fresh,
        &doc.transact()
            .encode_state_as_update_v1(&StateVector::default()),
    );
    let txn = fresh.transact();
    (
        txn.state_vector(),
        txn.encode_state_as_update_v1(&StateVector::default()),
    )
}

/// How the replicas' updates travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    /// As Roundtable runs: every replica talks to the server, which applies each
    /// update and relays it, in the order it applied them, to everyone connected.
    /// Updates queue on each connection, and any connection's next one may go first.
    /// Going offline closes the connection and loses what was queued on it; coming
    /// back is a state-vector sync with the server.
    Server,
    /// Peer to peer, with no order at all: updates arrive shuffled, late (in a later
    /// round), some twice, so replicas hold updates whose dependencies they lack.
    /// Coming back is a state-vector sync with one peer that is online.
    Mesh,
}

/// A replica's document. Without `gc`, as Roundtable makes them
/// (`doc::document_options`); with it, yrs' default: the content of what is deleted is
/// dropped and sent on as bare ranges ("GC" blocks).
fn new_doc(client: u64, gc: bool) -> Doc {
    Doc::with_options(Options {
        skip_gc: !gc,
        ..Options::with_client_id(yrs::block::ClientID::new(client))
    })
}

fn run(
    network: Network,
    gc: bool,
    replica_count: usize,
    rounds: &[Round],
) -> Result<(), TestCaseError> {
    let mut expected = Expected::default();
    let (server, start) = server_document(&mut expected, gc);
    let mut replicas: Vec<Replica> = (0..replica_count)
        .map(|number| {
            let doc = new_doc(10 + number as u64, gc);
            apply(&doc, &start);
            Replica {
                number,
                doc,
                made: 0,
            }
        })
        .collect();

    // Mesh: updates sent and not yet received, as (to, update).
    let mut in_flight: Vec<(usize, Vec<u8>)> = Vec::new();
    // Server: each connection's queues, up to the server and down from it.
    let mut up: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); replica_count];
    let mut down: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); replica_count];
    let mut was_offline = vec![false; replica_count];
    for round in rounds {
        let mut dice = Dice(round.seed);
        let offline = &round.offline[..replica_count];
        for r in 0..replica_count {
            if offline[r] {
                up[r].clear();
                down[r].clear();
            } else if was_offline[r] {
                match network {
                    Network::Server => sync_pair(&replicas[r].doc, &server),
                    Network::Mesh => {
                        let peers: Vec<usize> = (0..replica_count)
                            .filter(|&p| p != r && !offline[p])
                            .collect();
                        if !peers.is_empty() {
                            let peer = peers[dice.below(peers.len())];
                            sync_pair(&replicas[r].doc, &replicas[peer].doc);
                        }
                    }
                }
            }
        }
        was_offline = offline.to_vec();

        for (who, op) in &round.ops {
            let r = who % replica_count;
            let Some(update) = replicas[r].perform(op, &mut expected) else {
                continue;
            };
            if offline[r] {
                continue; // kept locally, sent by the next sync
            }
            match network {
                Network::Server => up[r].push_back(update),
                Network::Mesh => {
                    for to in (0..replica_count).filter(|&to| to != r) {
                        in_flight.push((to, update.clone()));
                        if dice.below(8) == 0 {
                            in_flight.push((to, update.clone())); // delivered twice
                        }
                    }
                }
            }
        }

        // A random part of what is in flight arrives; the rest waits for a later round.
        match network {
            Network::Server => {
                let queued: usize = up.iter().chain(&down).map(VecDeque::len).sum();
                for _ in 0..dice.below(queued + 1) {
                    let busy: Vec<usize> = (0..2 * replica_count)
                        .filter(|&q| ![&up, &down][q % 2][q / 2].is_empty())
                        .collect();
                    let q = busy[dice.below(busy.len())];
                    relay(&server, &replicas, &mut up, &mut down, offline, q);
                }
            }
            Network::Mesh => {
                dice.shuffle(&mut in_flight);
                let arriving = dice.below(in_flight.len() + 1);
                for (to, update) in in_flight.drain(..arriving) {
                    if !offline[to] {
                        apply(&replicas[to].doc, &update);
                    }
                }
            }
        }
    }

    // Everyone back: what is in flight arrives, then everyone syncs.
    let everyone = vec![false; replica_count];
    for q in 0..2 * replica_count {
        while ![&up, &down][q % 2][q / 2].is_empty() {
            relay(&server, &replicas, &mut up, &mut down, &everyone, q);
        }
    }
    for (to, update) in in_flight.drain(..) {
        apply(&replicas[to].doc, &update);
    }
    for _ in 0..2 {
        for a in 0..replica_count {
            match network {
                Network::Server => sync_pair(&replicas[a].doc, &server),
                Network::Mesh => {
                    for b in a + 1..replica_count {
                        sync_pair(&replicas[a].doc, &replicas[b].doc);
                    }
                }
            }
        }
    }
    if network == Network::Server {
        replicas.push(Replica {
            number: SERVER,
            doc: server,
            made: 0,
        });
    }

    // Convergence.
    let read = |doc: &Doc| {
        let txn = doc.transact();
        let store = txn.store();
        let settled = store.pending_update().is_none() && store.pending_ds().is_none();
        let items = Board::get(&txn).map(|b| b.items(&txn)).unwrap_or_default();
        (settled, items, plan::read_plan(&txn))
    };
    let (settled, items, plan) = read(&replicas[0].doc);
    prop_assert!(settled, "replica 0 has updates left pending");
    let first_content = content(&replicas[0].doc);
    let first_state = reloaded(&replicas[0].doc);
    for replica in &replicas[1..] {
        let (settled, other_items, other_plan) = read(&replica.doc);
        prop_assert!(
            settled,
            "replica {} has updates left pending",
            replica.number
        );
        prop_assert_eq!(&other_items, &items, "replica {} board", replica.number);
        prop_assert_eq!(&other_plan, &plan, "replica {} plan", replica.number);
        prop_assert_eq!(
            &content(&replica.doc),
            &first_content,
            "replica {} content",
            replica.number
        );
        let state = reloaded(&replica.doc);
        prop_assert_eq!(
            &state.0,
            &first_state.0,
            "replica {} state vector",
            replica.number
        );
        prop_assert!(
            state.1 == first_state.1,
            "replica {} encodes a different state",
            replica.number
        );
    }

    // Nothing lost, nothing duplicated, nothing deleted comes back.
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    prop_assert_eq!(unique.len(), ids.len(), "an item is listed twice");
    let want: BTreeSet<&str> = expected
        .items
        .keys()
        .filter(|id| !expected.deleted_items.contains(*id))
        .map(String::as_str)
        .collect();
    prop_assert_eq!(&unique, &want, "the board's items");
    for item in &items {
        prop_assert_eq!(
            item.author,
            Some(expected.items[&item.id]),
            "{}'s author",
            &item.id
        );
        prop_assert!(
            HEADINGS.contains(&item.heading.as_str()),
            "{}'s heading",
            &item.id
        );
        prop_assert!(!item.position.is_empty(), "{}'s position", &item.id);
    }
    let dangers: Vec<&str> = plan.dangers.iter().map(|d| d.id.as_str()).collect();
    let actions: Vec<&str> = plan.actions.iter().map(|a| a.id.as_str()).collect();
    let kept = |created: &BTreeSet<String>| -> Vec<String> {
        created
            .iter()
            .filter(|id| !expected.removed.contains(*id))
            .cloned()
            .collect()
    };
    let mut sorted_dangers = dangers.clone();
    sorted_dangers.sort();
    let mut sorted_actions = actions.clone();
    sorted_actions.sort();
    prop_assert_eq!(
        sorted_dangers,
        kept(&expected.dangers),
        "the plan's dangers"
    );
    prop_assert_eq!(
        sorted_actions,
        kept(&expected.actions),
        "the plan's actions"
    );

    // Every text holds its first words and every marker typed and not erased, once.
    let txn = replicas[0].doc.transact();
    let mut keys: Vec<TextKey> = items.iter().map(|i| TextKey::Item(i.id.clone())).collect();
    keys.extend(TextKey::plan_texts(&plan));
    for key in keys {
        let text = key
            .find(&txn)
            .expect("a text of what is there")
            .get_string(&txn);
        let (found, rest) = markers(&text);
        let mut found: Vec<String> = found.into_iter().map(|(m, _, _)| m).collect();
        found.sort();
        let erased = expected.erased.get(&key);
        let mut want: Vec<String> = expected
            .typed
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|m| erased.is_none_or(|e| !e.contains(*m)))
            .cloned()
            .collect();
        want.sort();
        prop_assert_eq!(found, want, "markers in {:?}: {:?}", &key, &text);
        prop_assert_eq!(&rest, &expected.seeds[&key], "first words of {:?}", &key);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // A failure prints its smallest case; nothing is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Through the server, as Roundtable runs. The documents keep deleted content (see
    /// `with_garbage_collection` for why).
    #[test]
    fn replicas_converge_and_keep_every_change(
        replica_count in 2..=4usize,
        rounds in proptest::collection::vec(round(), 1..=6),
    ) {
        run(Network::Server, false, replica_count, &rounds)?;
    }

    /// Peer to peer, in any order, late and twice, so that replicas hold updates whose
    /// dependencies they lack and integrate some ahead of earlier ones, skipping what is
    /// missing. yrs 0.28.1 as published fails this about once in 40,000 cases: cutting
    /// off the part of an update a replica had can leave a skipped range of the update
    /// overlapping what follows it, and then a replica is left with a deletion pending
    /// for a clock nobody reached, or cannot apply an update ("InvalidParent"); a text
    /// holding a marker twice was seen too. It runs against the fix in `vendor/yrs`
    /// (`vendor/yrs/FORK.md`; 150,000 cases passed). Roundtable's server never relays
    /// an update it could not apply, so its replicas never hold such updates.
    #[test]
    fn replicas_converge_whatever_the_order_of_delivery(
        replica_count in 2..=4usize,
        rounds in proptest::collection::vec(round(), 1..=6),
    ) {
        run(Network::Mesh, false, replica_count, &rounds)?;
    }

    /// As above, through the server, with yrs' default garbage collection (as stock Yjs
    /// clients make their documents; Roundtable's own are made without it). yrs 0.28.1
    /// panicked here (`attempt to subtract with overflow` at `block_store.rs:320`,
    /// `BlockStore::push` from `integrate_gc`; unchecked in a release build) when a
    /// replica that had integrated a client's updates out of order, with a skipped range
    /// between them, received a garbage-collected range covering the skipped range and
    /// what followed it: cutting off the known part left the collected range too long
    /// (`vendor/yrs/FORK.md`, "Splitting a garbage-collected or skipped range").
    #[test]
    fn with_garbage_collection(
        replica_count in 2..=4usize,
        rounds in proptest::collection::vec(round(), 1..=6),
    ) {
        run(Network::Server, true, replica_count, &rounds)?;
    }
}

/// What yrs does when one replica deletes an item while another changes it: the
/// delete wins, in whichever order the two updates arrive, and the other's changes
/// (typing, moving, who said it, a child) do not bring the item back.
#[test]
fn a_delete_wins_over_concurrent_changes_to_the_item() {
    let mut expected = Expected::default();
    let (_, start) = server_document(&mut expected, true);
    for deleter_first in [true, false] {
        let (a, b, c) = (new_doc(10, true), new_doc(11, true), new_doc(12, true));
        for d in [&a, &b, &c] {
            apply(d, &start);
        }
        let delete = {
            let mut txn = a.transact_mut();
            assert!(Board::in_txn(&mut txn).delete_item(&mut txn, "s0"));
            txn.encode_update_v1()
        };
        let change = {
            let mut txn = b.transact_mut();
            let board = Board::in_txn(&mut txn);
            assert!(board.insert_text(&mut txn, "s0", 0, "[typed]"));
            assert!(board.move_item(&mut txn, "s0", HEADINGS[2], Some("s2"), None));
            assert!(board.set_said_by(&mut txn, "s0", Some(&SaidBy::Agency("Health".into()))));
            assert!(board.set_child(&mut txn, "s0", child(1), true));
            txn.encode_update_v1()
        };
        let order = if deleter_first {
            [&delete, &change]
        } else {
            [&change, &delete]
        };
        for update in order {
            apply(&c, update);
        }
        apply(&a, &change);
        apply(&b, &delete);
        for d in [&a, &b, &c] {
            let txn = d.transact();
            let board = Board::get(&txn).unwrap();
            assert_eq!(board.item(&txn, "s0"), None);
            let ids: BTreeSet<String> = board.items(&txn).into_iter().map(|i| i.id).collect();
            assert_eq!(ids, BTreeSet::from(["s1".to_owned(), "s2".to_owned()]));
        }
        assert_eq!(content(&a), content(&b));
        assert_eq!(content(&a), content(&c));
    }
}

/// The smallest case `replicas_converge_whatever_the_order_of_delivery` found against
/// yrs 0.28.1 as published: a replica was left holding updates it could never apply (a
/// skipped range in an update, cut in two where the replica's own hole ended, kept its
/// whole length; `vendor/yrs/FORK.md`).
#[test]
fn out_of_order_and_twice_a_case_found() -> Result<(), TestCaseError> {
    run(
        Network::Mesh,
        false,
        4,
        &[
            Round {
                offline: [true, true, false, true],
                ops: vec![
                    (
                        2,
                        Op::MoveItem {
                            item: Index(6148914691236517206),
                            heading: 0,
                            before: None,
                            after: None,
                        },
                    ),
                    (
                        2,
                        Op::SetSaidBy {
                            item: Index(0),
                            agency: Some(0),
                        },
                    ),
                    (2, Op::AddItem { heading: 2 }),
                ],
                seed: 16096325938096229813,
            },
            Round {
                offline: [false, false, false, false],
                ops: vec![
                    (
                        0,
                        Op::MoveItem {
                            item: Index(4611686018427387904),
                            heading: 1,
                            before: None,
                            after: None,
                        },
                    ),
                    (
                        0,
                        Op::TypeItem {
                            item: Index(0),
                            at: Index(0),
                        },
                    ),
                    (
                        0,
                        Op::MoveItem {
                            item: Index(0),
                            heading: 1,
                            before: None,
                            after: None,
                        },
                    ),
                    (
                        0,
                        Op::TypeItem {
                            item: Index(4611686018427387904),
                            at: Index(0),
                        },
                    ),
                    (
                        0,
                        Op::DeleteItem {
                            item: Index(9223372036854775808),
                        },
                    ),
                    (
                        0,
                        Op::SetChild {
                            item: Index(6148914691236517206),
                            child: 0,
                            concerns: false,
                        },
                    ),
                ],
                seed: 3513491935278129104,
            },
            Round {
                offline: [false, false, false, false],
                ops: vec![
                    (
                        0,
                        Op::SetSaidBy {
                            item: Index(0),
                            agency: None,
                        },
                    ),
                    (0, Op::AddItem { heading: 0 }),
                    (0, Op::AddDanger),
                    (
                        0,
                        Op::SetSaidBy {
                            item: Index(0),
                            agency: Some(0),
                        },
                    ),
                ],
                seed: 17556258251061968233,
            },
            Round {
                offline: [false, true, false, false],
                ops: vec![],
                seed: 0,
            },
            Round {
                offline: [false, false, false, false],
                ops: vec![],
                seed: 0,
            },
        ],
    )
}

/// The smallest case `with_garbage_collection` found against yrs 0.28.1 as published:
/// it panicked with "attempt to subtract with overflow" in `BlockStore::push`.
#[test]
fn with_garbage_collection_a_case_found() -> Result<(), TestCaseError> {
    run(
        Network::Server,
        true,
        4,
        &[
            Round {
                offline: [false, false, false, true],
                ops: vec![
                    (1, Op::AddItem { heading: 1 }),
                    (
                        1,
                        Op::MoveItem {
                            item: Index(9223372036854775808),
                            heading: 0,
                            before: None,
                            after: None,
                        },
                    ),
                    (
                        1,
                        Op::SetChild {
                            item: Index(0),
                            child: 0,
                            concerns: false,
                        },
                    ),
                    (1, Op::AddDanger),
                ],
                seed: 407973441087840548,
            },
            Round {
                offline: [false, false, false, false],
                ops: vec![
                    (
                        1,
                        Op::TypeItem {
                            item: Index(13835058055282163712),
                            at: Index(0),
                        },
                    ),
                    (
                        2,
                        Op::MoveItem {
                            item: Index(0),
                            heading: 0,
                            before: None,
                            after: Some(Index(0)),
                        },
                    ),
                    (
                        1,
                        Op::SetChild {
                            item: Index(13835058055282163712),
                            child: 0,
                            concerns: true,
                        },
                    ),
                    (
                        2,
                        Op::DeleteItem {
                            item: Index(12297829382473034411),
                        },
                    ),
                    (
                        0,
                        Op::MoveItem {
                            item: Index(0),
                            heading: 0,
                            before: None,
                            after: None,
                        },
                    ),
                    (1, Op::AddItem { heading: 0 }),
                ],
                seed: 11235399660956664461,
            },
            Round {
                offline: [false, false, true, true],
                ops: vec![],
                seed: 10961615327368568624,
            },
            Round {
                offline: [false, false, false, true],
                ops: vec![],
                seed: 5790588265487218845,
            },
        ],
    )
}
