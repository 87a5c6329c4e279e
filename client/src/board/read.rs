//! What the board shows, read from the conference's document.

use roundtable_shared::doc::{self, Board, ChildEntry, HeadingEntry, SaidBy};
use roundtable_shared::model::{Participant, ParticipantId, Phase};
use roundtable_shared::plan::{Plan, read_plan};
use roundtable_shared::record;
use roundtable_shared::scale::{ScaleEntry, ScaleStatus, read_scales};
use yrs::ReadTxn;

/// Everything the board draws, read in one go after every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub title: Option<String>,
    pub phase: Option<Phase>,
    pub headings: Vec<HeadingEntry>,
    pub children: Vec<ChildEntry>,
    pub roster: Vec<Participant>,
    /// Every item, ordered by heading and position.
    pub items: Vec<ItemView>,
    /// The safety scales, first opened first.
    pub scales: Vec<ScaleEntry>,
    /// The plan as drafted so far.
    pub plan: Plan,
    /// Decisions, attendance, quorum, next meetings and whether the conference is closed.
    pub record: RecordView,
}

/// What the server has recorded in the `decisions` root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordView {
    pub decisions: Vec<record::DecisionEntry>,
    pub attendance: std::collections::BTreeMap<ParticipantId, record::Attendance>,
    pub quorum: Option<record::Quorum>,
    pub next_meetings: Option<record::NextMeetingsEntry>,
    pub closed: Option<record::ClosedEntry>,
}

/// One item on the board, with its words ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemView {
    pub id: String,
    pub heading: String,
    pub text: String,
    /// Participant id of whoever added it.
    pub author: Option<String>,
    pub said_by: Option<SaidBy>,
    /// Ids of the children it concerns, as text.
    pub children: Vec<String>,
}

impl Snapshot {
    pub fn read<T: ReadTxn>(txn: &T) -> Snapshot {
        let items = Board::get(txn)
            .map(|board| {
                board
                    .items(txn)
                    .into_iter()
                    .map(|item| ItemView {
                        id: item.id,
                        heading: item.heading,
                        text: item.text,
                        author: item.author.map(|a| a.to_string()),
                        said_by: item.said_by,
                        children: item.children.iter().map(|c| c.to_string()).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            title: doc::read_title(txn),
            phase: doc::read_phase(txn),
            headings: doc::read_headings(txn),
            children: doc::read_children(txn),
            roster: doc::read_roster(txn),
            items,
            scales: read_scales(txn),
            plan: read_plan(txn),
            record: RecordView {
                decisions: record::read_decisions(txn),
                attendance: record::read_attendance(txn),
                quorum: record::read_quorum(txn),
                next_meetings: record::read_next_meetings(txn),
                closed: record::read_closed(txn),
            },
        }
    }

    /// The scale of the moment: the open one, else the latest.
    pub fn current_scale(&self) -> Option<&ScaleEntry> {
        self.scales
            .iter()
            .find(|s| s.status == ScaleStatus::Open)
            .or_else(|| self.scales.last())
    }

    /// How many people in the conference can give a score.
    pub fn voters(&self) -> usize {
        self.roster.iter().filter(|p| p.role.votes()).count()
    }

    pub fn item(&self, id: &str) -> Option<&ItemView> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The ids of the items under `heading`, in order.
    pub fn ids_under(&self, heading: &str) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| i.heading == heading)
            .map(|i| i.id.clone())
            .collect()
    }

    /// Who said an item, in words: a person's name (with their agency), or an
    /// agency.
    pub fn said_by_words(&self, said_by: &SaidBy) -> String {
        match said_by {
            SaidBy::Agency(agency) => agency.clone(),
            SaidBy::Participant(id) => match self.roster.iter().find(|p| p.id == *id) {
                Some(p) => match &p.agency {
                    Some(agency) => format!("{} ({agency})", p.name),
                    None => format!("{} ({})", p.name, p.role.label()),
                },
                None => "Someone who has left the conference".to_owned(),
            },
        }
    }

    /// The names of the children an item concerns, in the conference's order.
    pub fn children_words(&self, item: &ItemView) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| item.children.contains(&c.id.to_string()))
            .map(|c| c.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roundtable_shared::doc::NewItem;
    use roundtable_shared::model::Role;
    use std::collections::HashMap;
    use yrs::{Any, Doc, Map, Transact, WriteTxn};

    #[test]
    fn the_board_reads_headings_items_and_who_said_them() {
        let doc = Doc::new();
        let priya: roundtable_shared::ParticipantId =
            "00000000-0000-0000-0000-000000000001".parse().unwrap();
        {
            let mut txn = doc.transact_mut();
            let meta = txn.get_or_insert_map(doc::META);
            meta.insert(&mut txn, doc::meta::TITLE, "Alex");
            let headings: Vec<Any> = [("worries", "What are we worried about?")]
                .into_iter()
                .map(|(key, title)| {
                    Any::from(HashMap::from([
                        ("key".to_owned(), Any::from(key)),
                        ("title".to_owned(), Any::from(title)),
                    ]))
                })
                .collect();
            meta.insert(&mut txn, doc::meta::HEADINGS, Any::from(headings));
            doc::write_participant(
                &mut txn,
                &Participant {
                    id: priya,
                    name: "Priya Shah".into(),
                    role: Role::Professional,
                    agency: Some("Health visiting".into()),
                },
            );
            let board = Board::in_txn(&mut txn);
            for (id, text) in [("a", "first"), ("b", "second")] {
                board.add_item(
                    &mut txn,
                    NewItem {
                        id,
                        heading: "worries",
                        text,
                        author: priya,
                        said_by: Some(SaidBy::Participant(priya)),
                        children: &[],
                    },
                );
            }
        }
        let board = Snapshot::read(&doc.transact());
        assert_eq!(board.title.as_deref(), Some("Alex"));
        assert_eq!(board.headings.len(), 1);
        assert_eq!(board.ids_under("worries"), ["a", "b"]);
        let first = board.item("a").unwrap();
        assert_eq!(
            board.said_by_words(first.said_by.as_ref().unwrap()),
            "Priya Shah (Health visiting)"
        );
    }
}
