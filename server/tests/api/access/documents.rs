//! The document matrix: every role writes to every part of the shared and the
//! restricted document with a real Yjs update, over a real socket, and each write is
//! either stored and relayed or refused to the writer alone; and every role reads the
//! documents it may, and no other.

use roundtable_shared::doc::{self, Board, NewItem};
use roundtable_shared::{Participant, ParticipantId, Phase, Role, plan, protocol};
use yrs::sync::Message;
use yrs::{Map, Out, ReadTxn, Transact, TransactionMut, WriteTxn};

use super::{Credential, Mismatches, Scene, World};
use crate::helpers::SyncClient;

/// A part of a document, and the write tried on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Adds a board item with the writer as its author.
    AddOwnItem,
    /// Adds a board item naming someone else as its author.
    AddItemAsSomeoneElse,
    /// Types into an item the writer added.
    EditOwnItem,
    DeleteOwnItem,
    /// Types into an item a professional added.
    EditOthersItem,
    /// Moves it under another heading.
    MoveOthersItem,
    DeleteOthersItem,
    /// Writes themselves in as the author of someone else's item.
    ClaimOthersItem,
    /// Adds a danger statement to the plan.
    Plan,
    /// Renames the conference (`meta`).
    Title,
    /// Moves the meeting to the decision (`meta.phase`).
    Phase,
    /// Makes themselves chair on the list of participants (`roster`).
    Roster,
    /// Adds a safety scale (`scales`).
    Scales,
    /// Records a decision (`decisions`).
    Decisions,
    /// Writes to a root the document does not have.
    NoSuchRoot,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Stored,
    Refused(&'static str),
    /// The role can have no item of its own.
    NotApplicable,
}

impl Expect {
    fn words(self) -> String {
        match self {
            Self::Stored => "stored and relayed".into(),
            Self::Refused(reason) => format!("refused to the writer alone: {reason}"),
            Self::NotApplicable => unreachable!(),
        }
    }
}

const OK: Expect = Expect::Stored;
const NA: Expect = Expect::NotApplicable;
const RO_BOARD: Expect = Expect::Refused("your role cannot change this conference's board");
const RO_PLAN: Expect = Expect::Refused("your role cannot change this conference's plan");
const NOT_YOURS: Expect = Expect::Refused("you can change only the items you added");
const AS_YOU: Expect = Expect::Refused("a new item must be added with you as its author");
const AUTHOR: Expect = Expect::Refused("who wrote an item cannot be changed");
const DETAILS: Expect = Expect::Refused("only the server changes the conference's details");
const ROSTER: Expect =
    Expect::Refused("only the server changes the conference's list of participants");
const SCALES: Expect = Expect::Refused("only the server changes the conference's safety scales");
const DECISIONS: Expect = Expect::Refused("only the server changes the conference's decisions");
const NO_PART: Expect = Expect::Refused("the document has no part called \"notes\"");

/// What each role may write, the same in both documents (`docs/api.md`, "Who may
/// write what"). Columns, as `Role::ALL`: chair, minute-taker, professional, parent,
/// carer, supporter, child, advocate, room display. DESIGN.md's table of roles gives the
/// child and advocate "read; child's views" on the board; as documented, they read it
/// and the chair records a child's words as said.
#[rustfmt::skip]
const WRITES: [(Part, [Expect; 9]); 15] = [
    //                               chair      mt         pro        parent     carer      supporter  child      advocate   display
    (Part::AddOwnItem,           [OK,        OK,        OK,        RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD]),
    (Part::AddItemAsSomeoneElse, [AS_YOU,    AS_YOU,    AS_YOU,    RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD]),
    (Part::EditOwnItem,          [OK,        OK,        OK,        NA,        NA,        NA,        NA,        NA,        NA]),
    (Part::DeleteOwnItem,        [OK,        OK,        OK,        NA,        NA,        NA,        NA,        NA,        NA]),
    (Part::EditOthersItem,       [OK,        OK,        NOT_YOURS, RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD]),
    (Part::MoveOthersItem,       [OK,        OK,        NOT_YOURS, RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD]),
    (Part::DeleteOthersItem,     [OK,        OK,        NOT_YOURS, RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD]),
    (Part::ClaimOthersItem,      [AUTHOR,    AUTHOR,    AUTHOR,    RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD,  RO_BOARD]),
    (Part::Plan,                 [OK,        OK,        RO_PLAN,   RO_PLAN,   RO_PLAN,   RO_PLAN,   RO_PLAN,   RO_PLAN,   RO_PLAN]),
    (Part::Title,                [DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS]),
    (Part::Phase,                [DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS,   DETAILS]),
    (Part::Roster,               [ROSTER,    ROSTER,    ROSTER,    ROSTER,    ROSTER,    ROSTER,    ROSTER,    ROSTER,    ROSTER]),
    (Part::Scales,               [SCALES,    SCALES,    SCALES,    SCALES,    SCALES,    SCALES,    SCALES,    SCALES,    SCALES]),
    (Part::Decisions,            [DECISIONS, DECISIONS, DECISIONS, DECISIONS, DECISIONS, DECISIONS, DECISIONS, DECISIONS, DECISIONS]),
    (Part::NoSuchRoot,           [NO_PART,   NO_PART,   NO_PART,   NO_PART,   NO_PART,   NO_PART,   NO_PART,   NO_PART,   NO_PART]),
];

/// Who may open the restricted document, as `Role::ALL`: the chair, the minute-taker
/// and professionals; never the family's side or the room display.
#[rustfmt::skip]
const READS_RESTRICTED: [bool; 9] = [true, true, true, false, false, false, false, false, false];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Document {
    Shared,
    Restricted,
}

const MARK: &str = "Added by someone else: ";

fn own_item(n: usize) -> String {
    format!("own-{n}")
}

fn others_item(n: usize) -> String {
    format!("others-{n}")
}

fn new_item(n: usize) -> String {
    format!("new-{n}")
}

fn add_item(txn: &mut TransactionMut, id: &str, author: ParticipantId) {
    Board::in_txn(txn).add_item(
        txn,
        NewItem {
            id,
            heading: "worries",
            text: "Jamie has missed school",
            author,
            said_by: None,
            children: &[],
        },
    );
}

/// The write of `part` in case `n`, by `me`; `other` is the professional whose items
/// the writer may or may not change.
fn write(part: Part, txn: &mut TransactionMut, me: ParticipantId, other: ParticipantId, n: usize) {
    let board = Board::in_txn(txn);
    match part {
        Part::AddOwnItem => add_item(txn, &new_item(n), me),
        Part::AddItemAsSomeoneElse => add_item(txn, &new_item(n), other),
        Part::EditOwnItem => {
            board.insert_text(txn, &own_item(n), 0, MARK);
        }
        Part::DeleteOwnItem => {
            board.delete_item(txn, &own_item(n));
        }
        Part::EditOthersItem => {
            board.insert_text(txn, &others_item(n), 0, MARK);
        }
        Part::MoveOthersItem => {
            board.move_item(txn, &others_item(n), "complicating", None, None);
        }
        Part::DeleteOthersItem => {
            board.delete_item(txn, &others_item(n));
        }
        Part::ClaimOthersItem => {
            let root = txn.get_or_insert_map(doc::BOARD);
            if let Some(Out::YMap(item)) = root.get(txn, &others_item(n)) {
                item.insert(txn, doc::item::AUTHOR, me.to_string());
            }
        }
        Part::Plan => {
            plan::write_skeleton(txn);
            plan::add_danger(txn, &format!("danger-{n}"), "Dad drinks", "Jamie is safe");
        }
        Part::Title => {
            txn.get_or_insert_map(doc::META)
                .insert(txn, doc::meta::TITLE, format!("Renamed {n}"));
        }
        Part::Phase => doc::write_phase(txn, Phase::Decision),
        Part::Roster => doc::write_participant(
            txn,
            &Participant {
                id: me,
                name: format!("Promoted {n}"),
                role: Role::Chair,
                agency: None,
            },
        ),
        Part::Scales => {
            txn.get_or_insert_map(doc::SCALES)
                .insert(txn, format!("scale-{n}"), "revealed");
        }
        Part::Decisions => {
            txn.get_or_insert_map(doc::DECISIONS).insert(
                txn,
                format!("child:{n}"),
                "child_protection_plan",
            );
        }
        Part::NoSuchRoot => {
            txn.get_or_insert_map("notes")
                .insert(txn, format!("note-{n}"), "A note");
        }
    }
}

fn has_entry(client: &SyncClient, root: &str, key: &str) -> bool {
    let txn = client.doc.transact();
    txn.get_map(root)
        .is_some_and(|map| map.get(&txn, key).is_some())
}

/// Whether someone else's copy of the document shows the write of `part` in case `n`.
fn shows(part: Part, client: &SyncClient, me: ParticipantId, n: usize) -> bool {
    let item = |id: String| client.board().into_iter().find(|i| i.id == id);
    match part {
        Part::AddOwnItem | Part::AddItemAsSomeoneElse => item(new_item(n)).is_some(),
        Part::EditOwnItem => item(own_item(n)).is_some_and(|i| i.text.starts_with(MARK)),
        Part::DeleteOwnItem => item(own_item(n)).is_none(),
        Part::EditOthersItem => item(others_item(n)).is_some_and(|i| i.text.starts_with(MARK)),
        Part::MoveOthersItem => item(others_item(n)).is_some_and(|i| i.heading == "complicating"),
        Part::DeleteOthersItem => item(others_item(n)).is_none(),
        Part::ClaimOthersItem => item(others_item(n)).is_some_and(|i| i.author == Some(me)),
        Part::Plan => plan::read_plan(&client.doc.transact())
            .dangers
            .iter()
            .any(|d| d.id == format!("danger-{n}")),
        Part::Title => doc::read_title(&client.doc.transact()) == Some(format!("Renamed {n}")),
        Part::Phase => doc::read_phase(&client.doc.transact()) == Some(Phase::Decision),
        Part::Roster => doc::read_roster(&client.doc.transact())
            .iter()
            .any(|p| p.id == me && p.name == format!("Promoted {n}")),
        Part::Scales => has_entry(client, doc::SCALES, &format!("scale-{n}")),
        Part::Decisions => has_entry(client, doc::DECISIONS, &format!("child:{n}")),
        Part::NoSuchRoot => has_entry(client, "notes", &format!("note-{n}")),
    }
}

/// Asks the server "saved?" and waits for the answer: everything sent before, and
/// everything the server sent this connection before, has been handled.
async fn confirm(client: &mut SyncClient, n: u32) {
    client
        .send(Message::Custom(protocol::SAVED, protocol::encode_saved(n)))
        .await;
    client.wait_until(|c| c.saved.contains(&n)).await;
}

/// One document of the conference, with a professional who adds the items others
/// try to change, and the chair's screen, which shows what was relayed.
struct Room {
    path: String,
    author: SyncClient,
    watcher: SyncClient,
}

struct Conference<'a> {
    world: &'a World,
    scene: Scene,
    shared: Room,
    restricted: Room,
    /// A number for each case, and for each "saved?" question it asks.
    n: usize,
}

impl Conference<'_> {
    fn room(&mut self, document: Document) -> &mut Room {
        match document {
            Document::Shared => &mut self.shared,
            Document::Restricted => &mut self.restricted,
        }
    }

    /// The writer's credential and participant id.
    fn writer(&self, role: Role) -> (Credential, ParticipantId) {
        match role {
            Role::Chair => (
                self.scene.chair.clone(),
                self.scene.chair_pid.parse().unwrap(),
            ),
            _ => {
                let person = self.scene.person(role);
                (person.link(), person.id.parse().unwrap())
            }
        }
    }

    /// `role` writes `part` of `document` from a fresh copy; what became of it.
    async fn attempt(&mut self, document: Document, role: Role, part: Part) -> String {
        self.n += 1;
        let n = self.n;
        let saved = u32::try_from(n).unwrap();
        let other: ParticipantId = self.scene.target.id.parse().unwrap();
        let (credential, me) = self.writer(role);
        let world = self.world;
        let room = self.room(document);
        if matches!(
            part,
            Part::EditOthersItem
                | Part::MoveOthersItem
                | Part::DeleteOthersItem
                | Part::ClaimOthersItem
        ) {
            room.author
                .edit(|txn| add_item(txn, &others_item(n), other))
                .await;
            confirm(&mut room.author, saved).await;
            assert!(
                room.author.refusals.is_empty(),
                "{:?}",
                room.author.refusals
            );
        }
        let mut writer = world
            .open_socket(&room.path, &credential, &[])
            .await
            .expect("the writer connects");
        if matches!(part, Part::EditOwnItem | Part::DeleteOwnItem) {
            writer.edit(|txn| add_item(txn, &own_item(n), me)).await;
            confirm(&mut writer, 1).await;
            if let Some(refusal) = writer.refusals.first() {
                return format!("could not add an item of its own first: {refusal}");
            }
        }
        writer.edit(|txn| write(part, txn, me, other, n)).await;
        confirm(&mut writer, 2).await;
        let refusal = writer.refusals.first().cloned();
        confirm(&mut room.watcher, saved).await;
        let seen = shows(part, &room.watcher, me, n);
        match (refusal, seen) {
            (None, true) => Expect::Stored.words(),
            (Some(reason), false) => format!("refused to the writer alone: {reason}"),
            (None, false) => "neither refused nor shown to anyone else".into(),
            (Some(reason), true) => format!("refused ({reason}) yet shown to someone else"),
        }
    }
}

fn document_path(scene: &Scene, document: Document) -> String {
    match document {
        Document::Shared => scene.path("/sync"),
        Document::Restricted => scene.path("/restricted/sync"),
    }
}

/// What `role` finds when it opens `document`: the item written there, and nothing of
/// the other document.
async fn reads(conference: &Conference<'_>, document: Document, role: Role) -> String {
    let (credential, _) = conference.writer(role);
    let path = document_path(&conference.scene, document);
    let client = match conference.world.open_socket(&path, &credential, &[]).await {
        Ok(client) => client,
        Err(status) => return format!("refused ({status})"),
    };
    let ids: Vec<String> = client.board().into_iter().map(|i| i.id).collect();
    let (mine, theirs) = match document {
        Document::Shared => ("shared-item", "restricted-item"),
        Document::Restricted => ("restricted-item", "shared-item"),
    };
    match (
        ids.iter().any(|i| i == mine),
        ids.iter().any(|i| i == theirs),
    ) {
        (true, false) => "reads it".into(),
        (found, leaked) => format!("reads it? {found}; holds the other document's item? {leaked}"),
    }
}

#[tokio::test]
async fn every_role_writes_and_reads_exactly_the_parts_of_the_documents_it_may() {
    let world = World::new().await;
    let scene = world.scene(super::Before::Nothing).await;
    let author = scene.target.link();
    let author_id: ParticipantId = scene.target.id.parse().unwrap();
    let mut rooms = Vec::new();
    for (document, item) in [
        (Document::Shared, "shared-item"),
        (Document::Restricted, "restricted-item"),
    ] {
        let path = document_path(&scene, document);
        let mut writer = world.open_socket(&path, &author, &[]).await.unwrap();
        writer.edit(|txn| add_item(txn, item, author_id)).await;
        confirm(&mut writer, 0).await;
        assert!(writer.refusals.is_empty(), "{:?}", writer.refusals);
        let watcher = world.open_socket(&path, &scene.chair, &[]).await.unwrap();
        rooms.push(Room {
            path,
            author: writer,
            watcher,
        });
    }
    let restricted = rooms.pop().unwrap();
    let shared = rooms.pop().unwrap();
    let mut conference = Conference {
        world: &world,
        scene,
        shared,
        restricted,
        n: 0,
    };
    let mut mismatches = Mismatches::default();

    for (index, role) in Role::ALL.into_iter().enumerate() {
        let expected = if READS_RESTRICTED[index] {
            "reads it"
        } else {
            "refused (403)"
        };
        for (document, expected) in [
            (Document::Shared, "reads it"),
            (Document::Restricted, expected),
        ] {
            let got = reads(&conference, document, role).await;
            mismatches.check(
                format!("{} opening the {document:?} document", role.as_str()),
                expected,
                &got,
                "",
            );
        }
    }

    for document in [Document::Shared, Document::Restricted] {
        for (index, role) in Role::ALL.into_iter().enumerate() {
            if document == Document::Restricted && !READS_RESTRICTED[index] {
                continue; // They cannot open it, as checked above.
            }
            for (part, expected) in WRITES {
                let expected = expected[index];
                if matches!(expected, Expect::NotApplicable) {
                    continue;
                }
                let got = conference.attempt(document, role, part).await;
                mismatches.check(
                    format!(
                        "{} writing {part:?} in the {document:?} document",
                        role.as_str()
                    ),
                    &expected.words(),
                    &got,
                    "",
                );
            }
        }
    }
    println!(
        "access matrix: {} document cases checked",
        mismatches.checked
    );
    mismatches.assert_none("document");
}
