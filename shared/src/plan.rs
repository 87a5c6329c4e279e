//! The plan drafted at the end of the meeting, in the [`PLAN`] root of the shared
//! document. The chair and the minute-taker write it together, live; everyone else
//! sees it.
//!
//! Layout of [`PLAN`]:
//! - `dangers`: a map of danger id → danger (a map): `position` (a fractional index,
//!   as on the board), `statement` (a `Y.Text`: who is worried, about what, and what
//!   could happen if nothing changes) and `goal` (a `Y.Text`: the safety goal paired
//!   with it);
//! - `actions`: a map of action id → action (a map): `position`, `what` (a `Y.Text`),
//!   `who` (`participant:<id>` or `agency:<name>`, as an item's "said by"), `by` (the
//!   date it is due, `YYYY-MM-DD`, or empty), `how_we_know` (a `Y.Text`), and `child`
//!   (the id of the child it concerns, or empty);
//! - `contingency` and `bottom_lines`: one `Y.Text` each.
//!
//! The server writes the empty skeleton (the two maps and the two texts) when the
//! conference is created ([`write_skeleton`]), so two people who start writing at once
//! never each create their own `contingency` and lose one of them. A danger or an
//! action is a map under its own id, so, like a board item, it can be neither
//! duplicated nor lost.

use std::str::FromStr;

use yrs::{
    Any, GetString, Map, MapPrelim, MapRef, Out, ReadTxn, Text, TextPrelim, TextRef,
    TransactionMut, WriteTxn,
};

use crate::doc::{PLAN, SaidBy};
use crate::model::ChildId;
use crate::order::position_between;

pub const DANGERS: &str = "dangers";
pub const ACTIONS: &str = "actions";
pub const CONTINGENCY: &str = "contingency";
pub const BOTTOM_LINES: &str = "bottom_lines";

/// Entries of a danger's map.
pub mod danger {
    pub const POSITION: &str = "position";
    pub const STATEMENT: &str = "statement";
    pub const GOAL: &str = "goal";
}

/// Entries of an action's map.
pub mod action {
    pub const POSITION: &str = "position";
    pub const WHAT: &str = "what";
    pub const WHO: &str = "who";
    pub const BY: &str = "by";
    pub const HOW_WE_KNOW: &str = "how_we_know";
    pub const CHILD: &str = "child";
}

/// A danger statement and its safety goal, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Danger {
    pub id: String,
    pub position: String,
    pub statement: String,
    pub goal: String,
}

/// An action, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub id: String,
    pub position: String,
    pub what: String,
    pub who: Option<SaidBy>,
    /// `None` when not set.
    pub by: Option<time::Date>,
    pub how_we_know: String,
    pub child: Option<ChildId>,
}

/// The whole plan, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub dangers: Vec<Danger>,
    pub actions: Vec<Action>,
    pub contingency: String,
    pub bottom_lines: String,
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Reads a due date as the plan holds it: `YYYY-MM-DD`, a real day of the calendar.
pub fn parse_date(text: &str) -> Option<time::Date> {
    time::Date::parse(text.trim(), DATE).ok()
}

pub fn format_date(date: time::Date) -> String {
    date.format(DATE).unwrap_or_default()
}

/// Writes the plan's empty skeleton, if it is not there yet. Server only.
pub fn write_skeleton(txn: &mut TransactionMut) {
    let plan = txn.get_or_insert_map(PLAN);
    if plan.get(txn, DANGERS).is_none() {
        plan.insert(txn, DANGERS, MapPrelim::default());
    }
    if plan.get(txn, ACTIONS).is_none() {
        plan.insert(txn, ACTIONS, MapPrelim::default());
    }
    for text in [CONTINGENCY, BOTTOM_LINES] {
        if plan.get(txn, text).is_none() {
            plan.insert(txn, text, TextPrelim::new(""));
        }
    }
}

fn part<T: ReadTxn>(txn: &T, name: &str) -> Option<Out> {
    txn.get_map(PLAN)?.get(txn, name)
}

fn part_map<T: ReadTxn>(txn: &T, name: &str) -> Option<MapRef> {
    match part(txn, name)? {
        Out::YMap(map) => Some(map),
        _ => None,
    }
}

/// One of the plan's texts: [`CONTINGENCY`] or [`BOTTOM_LINES`].
pub fn text<T: ReadTxn>(txn: &T, name: &str) -> Option<TextRef> {
    match part(txn, name)? {
        Out::YText(text) => Some(text),
        _ => None,
    }
}

/// A text field of a danger or an action.
pub fn field_text<T: ReadTxn>(txn: &T, list: &str, id: &str, field: &str) -> Option<TextRef> {
    let Out::YMap(entry) = part_map(txn, list)?.get(txn, id)? else {
        return None;
    };
    match entry.get(txn, field)? {
        Out::YText(text) => Some(text),
        _ => None,
    }
}

fn last_position<T: ReadTxn>(txn: &T, list: &str) -> Option<String> {
    let map = part_map(txn, list)?;
    map.iter(txn)
        .filter_map(|(_, value)| match value {
            Out::YMap(entry) => match entry.get(txn, "position") {
                Some(Out::Any(Any::String(p))) => Some(p.to_string()),
                _ => None,
            },
            _ => None,
        })
        .max()
}

/// Adds a danger statement with its safety goal at the end.
pub fn add_danger(txn: &mut TransactionMut, id: &str, statement: &str, goal: &str) -> bool {
    let position = position_between(last_position(txn, DANGERS).as_deref(), None);
    let Some(dangers) = part_map(txn, DANGERS) else {
        return false;
    };
    let fields: Vec<(&str, yrs::In)> = vec![
        (danger::POSITION, yrs::In::Any(Any::from(position))),
        (
            danger::STATEMENT,
            yrs::In::Text(TextPrelim::new(statement).into()),
        ),
        (danger::GOAL, yrs::In::Text(TextPrelim::new(goal).into())),
    ];
    dangers.insert(txn, id, fields.into_iter().collect::<MapPrelim>());
    true
}

/// Adds an empty action at the end.
pub fn add_action(txn: &mut TransactionMut, id: &str, what: &str) -> bool {
    let position = position_between(last_position(txn, ACTIONS).as_deref(), None);
    let Some(actions) = part_map(txn, ACTIONS) else {
        return false;
    };
    let fields: Vec<(&str, yrs::In)> = vec![
        (action::POSITION, yrs::In::Any(Any::from(position))),
        (action::WHAT, yrs::In::Text(TextPrelim::new(what).into())),
        (action::WHO, yrs::In::Any(Any::from(""))),
        (action::BY, yrs::In::Any(Any::from(""))),
        (
            action::HOW_WE_KNOW,
            yrs::In::Text(TextPrelim::new("").into()),
        ),
        (action::CHILD, yrs::In::Any(Any::from(""))),
    ];
    actions.insert(txn, id, fields.into_iter().collect::<MapPrelim>());
    true
}

/// Sets one of an action's plain entries: [`action::WHO`], [`action::BY`] or
/// [`action::CHILD`].
pub fn set_action_field(txn: &mut TransactionMut, id: &str, field: &str, value: &str) -> bool {
    let Some(Out::YMap(entry)) = part_map(txn, ACTIONS).and_then(|m| m.get(txn, id)) else {
        return false;
    };
    entry.insert(txn, field, Any::from(value));
    true
}

/// Removes a danger ([`DANGERS`]) or an action ([`ACTIONS`]).
pub fn remove(txn: &mut TransactionMut, list: &str, id: &str) -> bool {
    part_map(txn, list).is_some_and(|m| m.remove(txn, id).is_some())
}

fn string_of<T: ReadTxn>(txn: &T, entry: &MapRef, key: &str) -> String {
    match entry.get(txn, key) {
        Some(Out::Any(Any::String(s))) => s.to_string(),
        Some(Out::YText(t)) => t.get_string(txn),
        _ => String::new(),
    }
}

fn entries<T: ReadTxn>(txn: &T, list: &str) -> Vec<(String, MapRef)> {
    let Some(map) = part_map(txn, list) else {
        return Vec::new();
    };
    let mut found: Vec<(String, String, MapRef)> = map
        .iter(txn)
        .filter_map(|(id, value)| match value {
            Out::YMap(entry) => Some((string_of(txn, &entry, "position"), id.to_owned(), entry)),
            _ => None,
        })
        .collect();
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    found
        .into_iter()
        .map(|(_, id, entry)| (id, entry))
        .collect()
}

/// The plan as it stands, dangers and actions in order.
pub fn read_plan<T: ReadTxn>(txn: &T) -> Plan {
    let dangers = entries(txn, DANGERS)
        .into_iter()
        .map(|(id, entry)| Danger {
            id,
            position: string_of(txn, &entry, danger::POSITION),
            statement: string_of(txn, &entry, danger::STATEMENT),
            goal: string_of(txn, &entry, danger::GOAL),
        })
        .collect();
    let actions = entries(txn, ACTIONS)
        .into_iter()
        .map(|(id, entry)| Action {
            id,
            position: string_of(txn, &entry, action::POSITION),
            what: string_of(txn, &entry, action::WHAT),
            who: SaidBy::decode(&string_of(txn, &entry, action::WHO)),
            by: parse_date(&string_of(txn, &entry, action::BY)),
            how_we_know: string_of(txn, &entry, action::HOW_WE_KNOW),
            child: ChildId::from_str(&string_of(txn, &entry, action::CHILD)).ok(),
        })
        .collect();
    let text_of = |name| {
        text(txn, name)
            .map(|t| t.get_string(txn))
            .unwrap_or_default()
    };
    Plan {
        dangers,
        actions,
        contingency: text_of(CONTINGENCY),
        bottom_lines: text_of(BOTTOM_LINES),
    }
}

/// Checks what the plan holds that a person could have typed wrong: every action's
/// date is empty or a real date. Returns the sentence to show otherwise.
pub fn check<T: ReadTxn>(txn: &T) -> Result<(), String> {
    for (_, entry) in entries(txn, ACTIONS) {
        check_date(Some(&string_of(txn, &entry, action::BY)))?;
    }
    Ok(())
}

/// Checks one value written to an action's `by`: empty, or a real date. `None` stands
/// for a value that is not a plain string.
pub fn check_date(by: Option<&str>) -> Result<(), String> {
    match by {
        Some(by) if by.trim().is_empty() || parse_date(by).is_some() => Ok(()),
        Some(by) => Err(format!(
            "an action's date must be a real date like 2027-01-15, not {by:?}"
        )),
        None => Err("an action's date must be a real date like 2027-01-15".into()),
    }
}

/// Types `chunk` at `index` of a text; used by tests and tools.
pub fn insert(txn: &mut TransactionMut, text: &TextRef, index: u32, chunk: &str) {
    let index = index.min(text.len(txn));
    text.insert(txn, index, chunk);
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Transact, Update, updates::decoder::Decode};

    fn synced(a: &Doc, b: &Doc) {
        for (from, to) in [(a, b), (b, a)] {
            let sv = to.transact().state_vector();
            let update = from.transact().encode_state_as_update_v1(&sv);
            to.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
        }
    }

    #[test]
    fn two_writers_of_the_plan_keep_every_word() {
        let server = Doc::new();
        write_skeleton(&mut server.transact_mut());
        let (chair, minutes) = (Doc::new(), Doc::new());
        synced(&server, &chair);
        synced(&server, &minutes);

        {
            let mut txn = chair.transact_mut();
            assert!(add_danger(
                &mut txn,
                "d1",
                "We are worried that",
                "Alex will be safe"
            ));
            let contingency = text(&txn, CONTINGENCY).unwrap();
            insert(
                &mut txn,
                &contingency,
                0,
                "If Dad drinks, Mum calls the police.",
            );
        }
        {
            let mut txn = minutes.transact_mut();
            assert!(add_action(&mut txn, "a1", "Attend the parenting course"));
            assert!(set_action_field(&mut txn, "a1", action::BY, "2027-01-15"));
            assert!(set_action_field(
                &mut txn,
                "a1",
                action::WHO,
                "agency:Family support"
            ));
            let contingency = text(&txn, CONTINGENCY).unwrap();
            insert(&mut txn, &contingency, 0, "Nan will look after Alex. ");
        }
        synced(&chair, &minutes);

        let plan = read_plan(&chair.transact());
        assert_eq!(plan, read_plan(&minutes.transact()));
        assert_eq!(plan.dangers[0].statement, "We are worried that");
        assert_eq!(plan.actions[0].what, "Attend the parenting course");
        assert_eq!(plan.actions[0].by, parse_date("2027-01-15"));
        assert_eq!(
            plan.actions[0].who,
            Some(SaidBy::Agency("Family support".into()))
        );
        assert!(plan.contingency.contains("Nan will look after Alex."));
        assert!(
            plan.contingency
                .contains("If Dad drinks, Mum calls the police.")
        );
        assert_eq!(check(&chair.transact()), Ok(()));
    }

    #[test]
    fn an_impossible_date_is_found() {
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            write_skeleton(&mut txn);
            add_action(&mut txn, "a1", "Visit");
            set_action_field(&mut txn, "a1", action::BY, "2027-02-30");
        }
        let why = check(&doc.transact()).unwrap_err();
        assert!(why.contains("2027-02-30"), "{why}");
        assert_eq!(
            parse_date("2028-02-29").map(format_date).as_deref(),
            Some("2028-02-29")
        );
        assert_eq!(parse_date("2027-02-29"), None);
        assert_eq!(parse_date("next week"), None);
    }

    #[test]
    fn the_skeleton_is_written_once() {
        let doc = Doc::new();
        write_skeleton(&mut doc.transact_mut());
        {
            let mut txn = doc.transact_mut();
            let contingency = text(&txn, CONTINGENCY).unwrap();
            insert(&mut txn, &contingency, 0, "Kept");
        }
        write_skeleton(&mut doc.transact_mut());
        assert_eq!(read_plan(&doc.transact()).contingency, "Kept");
    }
}
