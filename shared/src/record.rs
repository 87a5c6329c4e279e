//! The end of the meeting: the decision for each child, who attended and whether the
//! conference was quorate, the dates of the next meetings, and the conference's
//! closing. All of it is written by the server into the [`DECISIONS`] root of the
//! shared document, as the outcome of the chair's commands.
//!
//! Layout of [`DECISIONS`] (every value a plain `Any`, written whole):
//! - `child:<child id>`: a [`DecisionEntry`];
//! - [`ATTENDANCE`]: participant id → `present` | `apologies` | `absent`;
//! - [`QUORUM`]: a [`Quorum`];
//! - [`NEXT_MEETINGS`]: a [`NextMeetingsEntry`];
//! - [`CLOSED`]: a [`ClosedEntry`], present only while the conference is closed.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use yrs::encoding::serde::{from_any, to_any};
use yrs::{Map, Out, ReadTxn, TransactionMut, WriteTxn};

use crate::doc::DECISIONS;
use crate::model::{ChildId, Decision, ParticipantId};

pub const CHILD_PREFIX: &str = "child:";
pub const ATTENDANCE: &str = "attendance";
pub const QUORUM: &str = "quorum";
pub const NEXT_MEETINGS: &str = "next_meetings";
pub const CLOSED: &str = "closed";

/// What one agency thinks of the decision, in its own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyView {
    pub agency: String,
    pub view: String,
}

/// Someone who disagrees with the decision, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dissent {
    pub who: String,
    pub why: String,
}

/// The decision for one child as the document holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub child: ChildId,
    pub decision: Decision,
    #[serde(default)]
    pub agency_views: Vec<AgencyView>,
    #[serde(default)]
    pub dissent: Vec<Dissent>,
    /// The social worker who leads the plan, if one is named.
    #[serde(default)]
    pub lead_social_worker: Option<String>,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// Whether someone took part in the meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    Present,
    /// Could not come and said so.
    Apologies,
    Absent,
}

words!(Attendance {
    Present = "present",
    Apologies = "apologies",
    Absent = "absent",
});

/// Whether the conference is quorate: children's social care and at least two other
/// agencies present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    pub quorate: bool,
    /// Someone from children's social care is present.
    pub social_care: bool,
    /// The other agencies present, each once, as first written.
    pub other_agencies: Vec<String>,
}

/// Whether an agency's name says it is children's social care.
pub fn names_social_care(agency: &str) -> bool {
    let agency = agency.to_lowercase();
    ["social care", "children's services", "social work"]
        .iter()
        .any(|words| agency.contains(words))
}

/// The quorum of a meeting, from the agencies of the people present (one entry a
/// person; people without an agency count for none). Agencies are compared trimmed
/// and without regard to case.
pub fn quorum<'a>(present_agencies: impl IntoIterator<Item = &'a str>) -> Quorum {
    let mut social_care = false;
    let mut seen = std::collections::BTreeSet::new();
    let mut other_agencies = Vec::new();
    for agency in present_agencies {
        let agency = agency.trim();
        if agency.is_empty() {
            continue;
        }
        if names_social_care(agency) {
            social_care = true;
        } else if seen.insert(agency.to_lowercase()) {
            other_agencies.push(agency.to_owned());
        }
    }
    Quorum {
        quorate: social_care && other_agencies.len() >= 2,
        social_care,
        other_agencies,
    }
}

/// The dates of the meetings after the conference: the latest allowed (proposed) and
/// the ones the chair chose, all `YYYY-MM-DD`. The chosen ones are the proposed ones
/// until the chair changes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextMeetingsEntry {
    pub proposed_core_group_by: String,
    pub proposed_review_by: String,
    pub core_group_by: String,
    pub review_by: String,
}

/// Who closed the conference, and when (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedEntry {
    pub closed_at: String,
    pub by: ParticipantId,
}

fn write<T: Serialize>(txn: &mut TransactionMut, key: &str, value: &T) {
    // Our types are plain data: strings, numbers, lists and maps.
    let any = to_any(value).unwrap_or(yrs::Any::Null);
    txn.get_or_insert_map(DECISIONS).insert(txn, key, any);
}

fn read<T: ReadTxn, V: serde::de::DeserializeOwned>(txn: &T, key: &str) -> Option<V> {
    match txn.get_map(DECISIONS)?.get(txn, key)? {
        Out::Any(any) => from_any(&any).ok(),
        _ => None,
    }
}

/// Writes (or replaces) the decision for one child. Server only.
pub fn write_decision(txn: &mut TransactionMut, entry: &DecisionEntry) {
    write(txn, &format!("{CHILD_PREFIX}{}", entry.child), entry);
}

/// Every decision the document holds, in the order of the children's ids. An entry in
/// a shape this version does not understand is left out rather than guessed at.
pub fn read_decisions<T: ReadTxn>(txn: &T) -> Vec<DecisionEntry> {
    let Some(root) = txn.get_map(DECISIONS) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = root
        .keys(txn)
        .filter(|k| k.starts_with(CHILD_PREFIX))
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys.iter()
        .filter_map(|key| read::<_, DecisionEntry>(txn, key))
        .collect()
}

/// Writes who attended. Server only.
pub fn write_attendance(
    txn: &mut TransactionMut,
    attendance: &BTreeMap<ParticipantId, Attendance>,
) {
    let by_id: BTreeMap<String, Attendance> = attendance
        .iter()
        .map(|(id, status)| (id.to_string(), *status))
        .collect();
    write(txn, ATTENDANCE, &by_id);
}

pub fn read_attendance<T: ReadTxn>(txn: &T) -> BTreeMap<ParticipantId, Attendance> {
    read::<_, BTreeMap<String, Attendance>>(txn, ATTENDANCE)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, status)| Some((ParticipantId::from_str(&id).ok()?, status)))
        .collect()
}

/// Writes whether the conference is quorate. Server only.
pub fn write_quorum(txn: &mut TransactionMut, quorum: &Quorum) {
    write(txn, QUORUM, quorum);
}

pub fn read_quorum<T: ReadTxn>(txn: &T) -> Option<Quorum> {
    read(txn, QUORUM)
}

/// Writes the dates of the next meetings. Server only.
pub fn write_next_meetings(txn: &mut TransactionMut, next: &NextMeetingsEntry) {
    write(txn, NEXT_MEETINGS, next);
}

pub fn read_next_meetings<T: ReadTxn>(txn: &T) -> Option<NextMeetingsEntry> {
    read(txn, NEXT_MEETINGS)
}

/// Marks the conference closed, or (with `None`) open again. Server only.
pub fn write_closed(txn: &mut TransactionMut, closed: Option<&ClosedEntry>) {
    match closed {
        Some(closed) => write(txn, CLOSED, closed),
        None => {
            txn.get_or_insert_map(DECISIONS).remove(txn, CLOSED);
        }
    }
}

pub fn read_closed<T: ReadTxn>(txn: &T) -> Option<ClosedEntry> {
    read(txn, CLOSED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, NonEmptyCategories};
    use yrs::{Doc, Transact};

    #[test]
    fn social_care_is_recognised_by_its_usual_names() {
        for name in [
            "Children's Social Care",
            "Essex social care",
            "CHILDREN'S SERVICES",
            "Social work team",
        ] {
            assert!(names_social_care(name), "{name}");
        }
        for name in ["Police", "Health visiting", "School", "Adult care"] {
            assert!(!names_social_care(name), "{name}");
        }
    }

    #[test]
    fn quorum_needs_social_care_and_two_other_agencies() {
        let q = quorum(["Children's social care", "Police", "Health visiting"]);
        assert_eq!(
            q,
            Quorum {
                quorate: true,
                social_care: true,
                other_agencies: vec!["Police".into(), "Health visiting".into()],
            }
        );
        // The same agency twice, however written, is one agency.
        let q = quorum(["Children's social care", "Police", " police "]);
        assert!(!q.quorate);
        assert_eq!(q.other_agencies, ["Police"]);
        // Two social care teams are not two other agencies.
        let q = quorum(["Social care", "Children's services", "Police"]);
        assert!(!q.quorate);
        // Without social care, no number of agencies is enough.
        let q = quorum(["Police", "School", "GP", ""]);
        assert_eq!((q.quorate, q.social_care), (false, false));
        assert_eq!(q.other_agencies.len(), 3);
        assert!(!quorum([]).quorate);
    }

    #[test]
    fn attendance_round_trips_through_its_names() {
        for a in Attendance::ALL {
            assert_eq!(Attendance::parse(a.as_str()), Some(a));
        }
        assert_eq!(Attendance::parse("late"), None);
    }

    #[test]
    fn what_is_written_reads_back() {
        let child = ChildId(uuid::Uuid::from_u128(7));
        let entry = DecisionEntry {
            child,
            decision: Decision::ChildProtectionPlan {
                categories: NonEmptyCategories::new(vec![Category::Neglect]).unwrap(),
            },
            agency_views: vec![AgencyView {
                agency: "Police".into(),
                view: "Agrees".into(),
            }],
            dissent: vec![Dissent {
                who: "Dad".into(),
                why: "Things have changed".into(),
            }],
            lead_social_worker: Some("Priya Shah".into()),
            recorded_at: "2026-12-01T11:00:00Z".into(),
        };
        let person = ParticipantId(uuid::Uuid::from_u128(9));
        let next = NextMeetingsEntry {
            proposed_core_group_by: "2026-12-15".into(),
            proposed_review_by: "2027-03-01".into(),
            core_group_by: "2026-12-10".into(),
            review_by: "2027-03-01".into(),
        };
        let closed = ClosedEntry {
            closed_at: "2026-12-01T12:00:00Z".into(),
            by: person,
        };
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            write_decision(&mut txn, &entry);
            write_attendance(&mut txn, &BTreeMap::from([(person, Attendance::Apologies)]));
            write_quorum(&mut txn, &quorum(["Police"]));
            write_next_meetings(&mut txn, &next);
            write_closed(&mut txn, Some(&closed));
        }
        let txn = doc.transact();
        assert_eq!(read_decisions(&txn), [entry]);
        assert_eq!(read_attendance(&txn)[&person], Attendance::Apologies);
        assert_eq!(read_quorum(&txn), Some(quorum(["Police"])));
        assert_eq!(read_next_meetings(&txn), Some(next));
        assert_eq!(read_closed(&txn), Some(closed));
        drop(txn);
        write_closed(&mut doc.transact_mut(), None);
        assert_eq!(read_closed(&doc.transact()), None);
    }
}
