//! Who may write which part of a conference's document.
//!
//! | role | board | plan |
//! |---|---|---|
//! | chair, minute-taker | write all | write |
//! | professional | add items, change and delete their own | read |
//! | family, child, advocate, room display | read | read |
//!
//! `meta`, `roster`, `scales` and `decisions` are written by the server only, as the
//! outcome of commands it has checked. Nobody may change who wrote an item, and an item
//! must be created with its author (the sender) in the same update.

use crate::doc;
use crate::guard::{ChangeKind, UpdateChanges};
use crate::model::{ParticipantId, Role};

/// Why an update was refused, in words the sender can be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("your role cannot change this conference's {0}")]
    ReadOnly(&'static str),
    #[error("only the server changes the conference's {0}")]
    ServerOnly(&'static str),
    #[error("the document has no part called \"{0}\"")]
    UnknownPart(String),
    #[error("you can change only the items you added")]
    NotYourItem,
    #[error("who wrote an item cannot be changed")]
    AuthorIsFixed,
    #[error("a new item must be added with you as its author")]
    WrongAuthor,
    #[error("board entries must be items")]
    NotAnItem,
}

/// Checks every change of an update against what `role` may write.
///
/// The restricted document has the same layout and the same rules.
/// `author_of(item)` gives the recorded author of an existing board item.
pub fn check_update(
    role: Role,
    sender: ParticipantId,
    update: &UpdateChanges,
    author_of: impl Fn(&str) -> Option<String>,
) -> Result<(), Refusal> {
    let sender = sender.to_string();
    let writes_board = matches!(role, Role::Chair | Role::MinuteTaker | Role::Professional);
    let writes_all = matches!(role, Role::Chair | Role::MinuteTaker);
    for change in &update.changes {
        let place = &change.place;
        match place.root.as_ref() {
            doc::META => return Err(Refusal::ServerOnly("details")),
            doc::ROSTER => return Err(Refusal::ServerOnly("list of participants")),
            doc::SCALES => return Err(Refusal::ServerOnly("safety scales")),
            doc::DECISIONS => return Err(Refusal::ServerOnly("decisions")),
            doc::PLAN if writes_all => continue,
            doc::PLAN => return Err(Refusal::ReadOnly("plan")),
            doc::BOARD if writes_board => {}
            doc::BOARD => return Err(Refusal::ReadOnly("board")),
            other => return Err(Refusal::UnknownPart(other.to_owned())),
        }
        let Some(entry) = &place.entry else {
            return Err(Refusal::NotAnItem);
        };
        let new = update.new_entries.get(&(place.root.clone(), entry.clone()));
        let owned_before = || author_of(entry).as_deref() == Some(sender.as_str());
        let existed = || author_of(entry).is_some();
        match (&place.field, change.kind, new) {
            // Creating (or replacing) an item.
            (None, ChangeKind::Insert, Some(new)) => {
                if !new.is_map {
                    return Err(Refusal::NotAnItem);
                }
                if new.author.as_deref() != Some(sender.as_str()) {
                    return Err(Refusal::WrongAuthor);
                }
                if !writes_all && existed() && !owned_before() {
                    return Err(Refusal::NotYourItem);
                }
            }
            (None, ChangeKind::Insert, None) => return Err(Refusal::NotAnItem),
            // Deleting an item.
            (None, ChangeKind::Delete, _) => {
                if !writes_all && !owned_before() {
                    return Err(Refusal::NotYourItem);
                }
            }
            // Inside an item created by this same update: checked with the item.
            (Some(_), ChangeKind::Insert, Some(_)) => {}
            // Deleting an item deletes what it holds: checked with the item.
            (Some(_), ChangeKind::Delete, _) if deletes_entry(update, &place.root, entry) => {}
            (Some(field), _, _) => {
                if field.as_ref() == doc::item::AUTHOR {
                    return Err(Refusal::AuthorIsFixed);
                }
                if !writes_all && !owned_before() {
                    return Err(Refusal::NotYourItem);
                }
            }
        }
    }
    Ok(())
}

fn deletes_entry(
    update: &UpdateChanges,
    root: &std::sync::Arc<str>,
    entry: &std::sync::Arc<str>,
) -> bool {
    update.changes.iter().any(|c| {
        c.kind == ChangeKind::Delete
            && c.place.field.is_none()
            && &c.place.root == root
            && c.place.entry.as_ref() == Some(entry)
    })
}
