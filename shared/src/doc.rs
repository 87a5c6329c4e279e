//! The layout of a conference's collaborative document, defined once for both sides.
//!
//! A conference has two documents ([`DocumentKind`]): the shared one everybody
//! receives, and a restricted one for professionals only. A CRDT syncs everything it
//! holds, so what the family must not see can never live in the shared document.
//!
//! Roots of a document (all are maps):
//! - [`META`]: title, kind, scheduled start, phase, headings and children. Server only.
//! - [`ROSTER`]: participant id → `{name, role, agency}`. Server only.
//! - [`BOARD`]: item id → item map (see [`item`]). Written by the chair, the
//!   minute-taker, and professionals for their own items.
//! - [`PLAN`]: the drafted plan. Chair and minute-taker.
//! - [`SCALES`], [`DECISIONS`]: outcomes of commands. Server only.
//!
//! A board item is a map under its own id in [`BOARD`], never an element of a list:
//! moving it to another heading or reordering it rewrites only its `heading` and
//! `position` entries, so concurrent moves settle on one place (last writer wins) and
//! an item can be neither duplicated nor lost. Its text is a collaborative text, so two
//! people typing in one item both keep their words.

use std::collections::BTreeSet;
use std::str::FromStr;

use yrs::types::ToJson;
use yrs::{
    Any, Doc, GetString, Map, MapPrelim, MapRef, Out, ReadTxn, Text, TextPrelim, TextRef,
    TransactionMut, WriteTxn,
};

use crate::headings::HeadingsTemplate;
use crate::model::{ChildId, Conference, Participant, ParticipantId, Phase, Role};
use crate::order::position_between;

pub const META: &str = "meta";
pub const ROSTER: &str = "roster";
pub const BOARD: &str = "board";
pub const PLAN: &str = "plan";
pub const SCALES: &str = "scales";
pub const DECISIONS: &str = "decisions";

/// Every root a document may have. Updates touching any other root are refused.
pub const ROOTS: [&str; 6] = [META, ROSTER, BOARD, PLAN, SCALES, DECISIONS];

/// Entries of [`META`].
pub mod meta {
    pub const TITLE: &str = "title";
    pub const KIND: &str = "kind";
    pub const SCHEDULED_START: &str = "scheduled_start";
    pub const PHASE: &str = "phase";
    pub const HEADINGS: &str = "headings";
    pub const CHILDREN: &str = "children";
}

/// Entries of a board item map.
pub mod item {
    /// Key of the heading the item sits under.
    pub const HEADING: &str = "heading";
    /// Fractional index ordering the item under its heading (see [`crate::order`]).
    pub const POSITION: &str = "position";
    /// Collaborative text of the item.
    pub const TEXT: &str = "text";
    /// Participant id of whoever created the item. Written once, with the item.
    pub const AUTHOR: &str = "author";
    /// Who said it: `participant:<id>` or `agency:<name>`.
    pub const SAID_BY: &str = "said_by";
    /// Map of child id → `true` for the children the item concerns.
    pub const CHILDREN: &str = "children";
}

/// How every replica of a conference's document is made, on the server and in the
/// browser: deleted content is kept (`skip_gc`) rather than garbage-collected, so the
/// record keeps what was struck out as well as what stands.
///
/// Clients made otherwise (a stock Yjs client with garbage collection on) send ranges
/// they collected; the server takes them (the gate reads them as filling clocks and
/// holding nothing anyone sees). yrs 0.28.1 as published corrupts its block store when
/// it integrates a collected range that covers both a range it skipped and what it has
/// after it (in debug builds it panics with "attempt to subtract with overflow" in
/// `BlockStore::push`); the copy in `vendor/yrs` fixes that (`vendor/yrs/FORK.md`), and
/// `shared/tests/convergence.rs`'s `with_garbage_collection` passes against it.
pub fn document_options() -> yrs::Options {
    yrs::Options {
        skip_gc: true,
        ..yrs::Options::default()
    }
}

/// A new, empty document made with [`document_options`].
pub fn new_document() -> Doc {
    Doc::with_options(document_options())
}

/// Which of a conference's two documents.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Everyone in the conference receives it, family included.
    Shared,
    /// Professionals only: never sent to a family member's device.
    Restricted,
}

words!(DocumentKind {
    Shared = "shared",
    Restricted = "restricted",
});

impl DocumentKind {
    /// Whether someone with this role may receive the document at all.
    pub fn readable_by(self, role: Role) -> bool {
        match self {
            Self::Shared => true,
            Self::Restricted => !role.is_family_side() && role != Role::RoomDisplay,
        }
    }
}

/// Who said what an item records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaidBy {
    Participant(ParticipantId),
    Agency(String),
}

impl SaidBy {
    pub fn encode(&self) -> String {
        match self {
            Self::Participant(id) => format!("participant:{id}"),
            Self::Agency(name) => format!("agency:{name}"),
        }
    }

    pub fn decode(s: &str) -> Option<SaidBy> {
        if let Some(id) = s.strip_prefix("participant:") {
            ParticipantId::from_str(id).ok().map(SaidBy::Participant)
        } else {
            s.strip_prefix("agency:")
                .filter(|name| !name.trim().is_empty())
                .map(|name| SaidBy::Agency(name.to_owned()))
        }
    }
}

/// A board entry as it is (after a transaction, when its changes are checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryNow {
    pub is_map: bool,
    pub author: Option<String>,
}

impl EntryNow {
    /// An entry that is not an item.
    pub fn not_an_item() -> EntryNow {
        EntryNow {
            is_map: false,
            author: None,
        }
    }
}

/// A board item as read from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardItem {
    pub id: String,
    pub heading: String,
    pub position: String,
    pub text: String,
    pub author: Option<ParticipantId>,
    pub said_by: Option<SaidBy>,
    pub children: BTreeSet<ChildId>,
}

/// What a new item holds when it is created.
#[derive(Debug, Clone)]
pub struct NewItem<'a> {
    pub id: &'a str,
    pub heading: &'a str,
    pub text: &'a str,
    pub author: ParticipantId,
    pub said_by: Option<SaidBy>,
    pub children: &'a [ChildId],
}

/// Typed access to the board of one document.
///
/// Create it with [`Board::new`] outside any transaction (yrs takes a transaction to
/// create a root), with [`Board::in_txn`] inside a write transaction, or with
/// [`Board::get`] inside a read transaction.
#[derive(Clone)]
pub struct Board {
    root: MapRef,
}

impl Board {
    pub fn new(doc: &Doc) -> Board {
        Board {
            root: doc.get_or_insert_map(BOARD),
        }
    }

    /// The board, if the document has one, for reading inside a read transaction.
    pub fn get<T: ReadTxn>(txn: &T) -> Option<Board> {
        txn.get_map(BOARD).map(|root| Board { root })
    }

    pub fn in_txn(txn: &mut TransactionMut) -> Board {
        Board {
            root: txn.get_or_insert_map(BOARD),
        }
    }

    /// Adds an item at the end of its heading. The author is written with the item,
    /// in the same transaction, as the server requires.
    pub fn add_item(&self, txn: &mut TransactionMut, new: NewItem<'_>) {
        let last = self
            .items(txn)
            .into_iter()
            .filter(|i| i.heading == new.heading)
            .map(|i| i.position)
            .next_back();
        let position = position_between(last.as_deref(), None);
        let children: MapPrelim = new
            .children
            .iter()
            .map(|c| (c.to_string(), yrs::In::Any(Any::Bool(true))))
            .collect();
        let mut fields: Vec<(&str, yrs::In)> = vec![
            (item::HEADING, yrs::In::Any(Any::from(new.heading))),
            (item::POSITION, yrs::In::Any(Any::from(position))),
            (item::TEXT, yrs::In::Text(TextPrelim::new(new.text).into())),
            (
                item::AUTHOR,
                yrs::In::Any(Any::from(new.author.to_string())),
            ),
            (item::CHILDREN, yrs::In::Map(children)),
        ];
        if let Some(said_by) = &new.said_by {
            fields.push((item::SAID_BY, yrs::In::Any(Any::from(said_by.encode()))));
        }
        let prelim: MapPrelim = fields.into_iter().collect();
        self.root.insert(txn, new.id, prelim);
    }

    fn item_map<T: ReadTxn>(&self, txn: &T, id: &str) -> Option<MapRef> {
        match self.root.get(txn, id) {
            Some(Out::YMap(map)) => Some(map),
            _ => None,
        }
    }

    /// The item's collaborative text, to type into.
    pub fn text<T: ReadTxn>(&self, txn: &T, id: &str) -> Option<TextRef> {
        match self.item_map(txn, id)?.get(txn, item::TEXT) {
            Some(Out::YText(text)) => Some(text),
            _ => None,
        }
    }

    /// Inserts `chunk` at character `index` of the item's text.
    pub fn insert_text(&self, txn: &mut TransactionMut, id: &str, index: u32, chunk: &str) -> bool {
        match self.text(txn, id) {
            Some(text) => {
                let index = index.min(text.len(txn));
                text.insert(txn, index, chunk);
                true
            }
            None => false,
        }
    }

    /// Moves the item under `heading`, between the items `before` and `after` there.
    pub fn move_item(
        &self,
        txn: &mut TransactionMut,
        id: &str,
        heading: &str,
        before: Option<&str>,
        after: Option<&str>,
    ) -> bool {
        let Some(map) = self.item_map(txn, id) else {
            return false;
        };
        let position_of =
            |other: Option<&str>| other.and_then(|o| self.item(txn, o)).map(|i| i.position);
        let position = position_between(
            position_of(before).as_deref(),
            position_of(after).as_deref(),
        );
        map.insert(txn, item::HEADING, heading);
        map.insert(txn, item::POSITION, position);
        true
    }

    /// Marks which children the item concerns.
    pub fn set_child(
        &self,
        txn: &mut TransactionMut,
        id: &str,
        child: ChildId,
        concerns: bool,
    ) -> bool {
        let Some(map) = self.item_map(txn, id) else {
            return false;
        };
        let Some(Out::YMap(children)) = map.get(txn, item::CHILDREN) else {
            return false;
        };
        if concerns {
            children.insert(txn, child.to_string(), true);
        } else {
            children.remove(txn, &child.to_string());
        }
        true
    }

    pub fn set_said_by(
        &self,
        txn: &mut TransactionMut,
        id: &str,
        said_by: Option<&SaidBy>,
    ) -> bool {
        let Some(map) = self.item_map(txn, id) else {
            return false;
        };
        match said_by {
            Some(s) => {
                map.insert(txn, item::SAID_BY, s.encode());
            }
            None => {
                map.remove(txn, item::SAID_BY);
            }
        }
        true
    }

    pub fn delete_item(&self, txn: &mut TransactionMut, id: &str) -> bool {
        self.root.remove(txn, id).is_some()
    }

    pub fn item<T: ReadTxn>(&self, txn: &T, id: &str) -> Option<BoardItem> {
        let map = self.item_map(txn, id)?;
        let string = |key: &str| match map.get(txn, key) {
            Some(Out::Any(Any::String(s))) => Some(s.to_string()),
            _ => None,
        };
        let text = match map.get(txn, item::TEXT) {
            Some(Out::YText(t)) => t.get_string(txn),
            _ => String::new(),
        };
        let children = match map.get(txn, item::CHILDREN) {
            Some(Out::YMap(c)) => c
                .keys(txn)
                .filter_map(|k| ChildId::from_str(k).ok())
                .collect(),
            _ => BTreeSet::new(),
        };
        Some(BoardItem {
            id: id.to_owned(),
            heading: string(item::HEADING).unwrap_or_default(),
            position: string(item::POSITION).unwrap_or_default(),
            text,
            author: string(item::AUTHOR).and_then(|a| ParticipantId::from_str(&a).ok()),
            said_by: string(item::SAID_BY).and_then(|s| SaidBy::decode(&s)),
            children,
        })
    }

    /// The entry under `id` as it is now, for checking a transaction's changes.
    pub fn entry_now<T: ReadTxn>(&self, txn: &T, id: &str) -> Option<EntryNow> {
        match self.root.get(txn, id)? {
            Out::YMap(map) => Some(EntryNow {
                is_map: true,
                author: match map.get(txn, item::AUTHOR) {
                    Some(Out::Any(Any::String(s))) => Some(s.to_string()),
                    _ => None,
                },
            }),
            _ => Some(EntryNow {
                is_map: false,
                author: None,
            }),
        }
    }

    /// Every item's id and author, for remembering who may change what.
    pub fn authors<T: ReadTxn>(&self, txn: &T) -> Vec<(String, String)> {
        let ids: Vec<String> = self.root.keys(txn).map(str::to_owned).collect();
        ids.into_iter()
            .filter_map(|id| {
                let author = self.author(txn, &id)?;
                Some((id, author))
            })
            .collect()
    }

    /// Author of the item `id`, as recorded when it was created.
    pub fn author<T: ReadTxn>(&self, txn: &T, id: &str) -> Option<String> {
        match self.item_map(txn, id)?.get(txn, item::AUTHOR) {
            Some(Out::Any(Any::String(s))) => Some(s.to_string()),
            _ => None,
        }
    }

    /// Every item, ordered by heading key, then position, then id (the tie-break every
    /// replica agrees on).
    pub fn items<T: ReadTxn>(&self, txn: &T) -> Vec<BoardItem> {
        let ids: Vec<String> = self.root.keys(txn).map(str::to_owned).collect();
        let mut items: Vec<BoardItem> = ids.iter().filter_map(|id| self.item(txn, id)).collect();
        items.sort_by(|a, b| {
            (&a.heading, &a.position, &a.id).cmp(&(&b.heading, &b.position, &b.id))
        });
        items
    }

    /// The items under one heading, in order.
    pub fn items_under<T: ReadTxn>(&self, txn: &T, heading: &str) -> Vec<BoardItem> {
        self.items(txn)
            .into_iter()
            .filter(|i| i.heading == heading)
            .collect()
    }
}

/// Writes the conference's details into [`META`]. Server only.
pub fn write_meta(txn: &mut TransactionMut, conference: &Conference) {
    let meta = txn.get_or_insert_map(META);
    meta.insert(txn, meta::TITLE, conference.title.as_str());
    meta.insert(txn, meta::KIND, conference.kind.as_str());
    let start = conference
        .scheduled_start
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    meta.insert(txn, meta::SCHEDULED_START, start);
    meta.insert(txn, meta::PHASE, conference.phase.as_str());
    let headings: Vec<Any> = headings_any(conference.headings);
    meta.insert(txn, meta::HEADINGS, Any::from(headings));
    let children: Vec<Any> = conference
        .children
        .iter()
        .map(|c| {
            Any::from(std::collections::HashMap::from([
                ("id".to_owned(), Any::from(c.id.to_string())),
                ("name".to_owned(), Any::from(c.name.as_str())),
            ]))
        })
        .collect();
    meta.insert(txn, meta::CHILDREN, Any::from(children));
}

fn headings_any(template: HeadingsTemplate) -> Vec<Any> {
    template
        .headings()
        .iter()
        .map(|h| {
            Any::from(std::collections::HashMap::from([
                ("key".to_owned(), Any::from(h.key)),
                ("title".to_owned(), Any::from(h.title)),
            ]))
        })
        .collect()
}

/// Sets the phase shown to everyone. Server only.
pub fn write_phase(txn: &mut TransactionMut, phase: Phase) {
    txn.get_or_insert_map(META)
        .insert(txn, meta::PHASE, phase.as_str());
}

/// The phase as the document records it.
pub fn read_phase<T: ReadTxn>(txn: &T) -> Option<Phase> {
    match txn.get_map(META)?.get(txn, meta::PHASE) {
        Some(Out::Any(Any::String(s))) => Phase::parse(&s),
        _ => None,
    }
}

/// The title as the document records it.
pub fn read_title<T: ReadTxn>(txn: &T) -> Option<String> {
    match txn.get_map(META)?.get(txn, meta::TITLE) {
        Some(Out::Any(Any::String(s))) => Some(s.to_string()),
        _ => None,
    }
}

/// A heading of the board, as [`META`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadingEntry {
    pub key: String,
    pub title: String,
}

/// A child the conference is about, as [`META`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildEntry {
    pub id: ChildId,
    pub name: String,
}

/// Reads a list of small maps from [`META`], keeping the entries `read` accepts.
fn read_meta_list<T: ReadTxn, E>(
    txn: &T,
    key: &str,
    read: impl Fn(&dyn Fn(&str) -> Option<String>) -> Option<E>,
) -> Vec<E> {
    let Some(meta) = txn.get_map(META) else {
        return Vec::new();
    };
    let Some(Out::Any(Any::Array(list))) = meta.get(txn, key) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let Any::Map(fields) = entry else {
                return None;
            };
            read(&|k: &str| match fields.get(k) {
                Some(Any::String(s)) => Some(s.to_string()),
                _ => None,
            })
        })
        .collect()
}

/// The board's headings, in the order the template gives them.
pub fn read_headings<T: ReadTxn>(txn: &T) -> Vec<HeadingEntry> {
    read_meta_list(txn, meta::HEADINGS, |field| {
        Some(HeadingEntry {
            key: field("key")?,
            title: field("title")?,
        })
    })
}

/// The children the conference is about, in the order the chair gave them.
pub fn read_children<T: ReadTxn>(txn: &T) -> Vec<ChildEntry> {
    read_meta_list(txn, meta::CHILDREN, |field| {
        Some(ChildEntry {
            id: ChildId::from_str(&field("id")?).ok()?,
            name: field("name")?,
        })
    })
}

/// Adds or updates a participant in [`ROSTER`]. Server only.
pub fn write_participant(txn: &mut TransactionMut, participant: &Participant) {
    let mut entry = std::collections::HashMap::from([
        ("name".to_owned(), Any::from(participant.name.as_str())),
        ("role".to_owned(), Any::from(participant.role.as_str())),
    ]);
    if let Some(agency) = &participant.agency {
        entry.insert("agency".to_owned(), Any::from(agency.as_str()));
    }
    txn.get_or_insert_map(ROSTER)
        .insert(txn, participant.id.to_string(), Any::from(entry));
}

/// Removes a participant from [`ROSTER`]. Server only.
pub fn remove_participant(txn: &mut TransactionMut, id: ParticipantId) {
    txn.get_or_insert_map(ROSTER).remove(txn, &id.to_string());
}

/// The roster: every participant the document knows, in name order.
pub fn read_roster<T: ReadTxn>(txn: &T) -> Vec<Participant> {
    let Some(roster) = txn.get_map(ROSTER) else {
        return Vec::new();
    };
    let mut people: Vec<Participant> = roster
        .iter(txn)
        .filter_map(|(key, value)| {
            let id = ParticipantId::from_str(key).ok()?;
            let Any::Map(fields) = value.to_json(txn) else {
                return None;
            };
            let text = |k: &str| match fields.get(k) {
                Some(Any::String(s)) => Some(s.to_string()),
                _ => None,
            };
            Some(Participant {
                id,
                name: text("name")?,
                role: Role::parse(&text("role")?)?,
                agency: text("agency"),
            })
        })
        .collect();
    people.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    people
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Child, ConferenceId, ConferenceKind};
    use yrs::Transact;

    #[test]
    fn the_details_written_for_a_conference_read_back() {
        let alex = Child {
            id: ChildId(uuid::Uuid::from_u128(1)),
            name: "Alex".into(),
            date_of_birth: None,
        };
        let conference = Conference {
            id: ConferenceId(uuid::Uuid::from_u128(2)),
            title: "Alex Taylor".into(),
            kind: ConferenceKind::Initial,
            scheduled_start: time::macros::datetime!(2030-03-04 10:00 UTC),
            children: vec![alex.clone()],
            headings: HeadingsTemplate::SignsOfSafety,
            phase: Phase::PreMeet,
        };
        let doc = Doc::new();
        write_meta(&mut doc.transact_mut(), &conference);
        let txn = doc.transact();
        assert_eq!(read_title(&txn).as_deref(), Some("Alex Taylor"));
        assert_eq!(read_phase(&txn), Some(Phase::PreMeet));
        let keys: Vec<String> = read_headings(&txn).into_iter().map(|h| h.key).collect();
        let expected: Vec<&str> = HeadingsTemplate::SignsOfSafety
            .headings()
            .iter()
            .map(|h| h.key)
            .collect();
        assert_eq!(keys, expected);
        assert_eq!(
            read_children(&txn),
            [ChildEntry {
                id: alex.id,
                name: "Alex".into()
            }]
        );
    }
}
