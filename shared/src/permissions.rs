//! Who may write which part of a conference's document.
//!
//! | role | board | plan |
//! |---|---|---|
//! | chair, minute-taker | write all | write |
//! | professional | add items, change and delete their own | read |
//! | family, child, advocate, room display | read | read |
//!
//! `meta`, `roster`, `scales` and `decisions` are written by the server only, as the
//! outcome of commands it has checked. An item is created with its author (the sender)
//! in the same transaction, and its author never changes.

use std::sync::Arc;

use crate::doc;
use crate::guard::{ChangeKind, TransactionChanges};
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
    /// Not a matter of permission: see [`crate::protocol::INCOMPLETE`].
    #[error("{}", crate::protocol::INCOMPLETE)]
    Incomplete,
    #[error("the conference is closed, so the record cannot be changed")]
    Closed,
    /// The update makes changes under a Yjs client id whose changes belong to someone
    /// else. Two devices writing under one id would each keep their own change at the
    /// same clock, and the one the server did not keep could not take what follows it.
    #[error(
        "the change was made under a client id that belongs to another device in this meeting: \
         start again from the server's document, which takes a client id of its own"
    )]
    ForeignClient,
    /// The plan would hold something it must not (an action's date that is not a date).
    #[error("{0}")]
    Plan(String),
}

/// Whether `role` may add items to the board.
pub fn adds_items(role: Role) -> bool {
    matches!(role, Role::Chair | Role::MinuteTaker | Role::Professional)
}

/// Whether `role` may change and delete everyone's items (and write the plan),
/// not only its own.
pub fn changes_every_item(role: Role) -> bool {
    matches!(role, Role::Chair | Role::MinuteTaker)
}

/// Whether someone with `role` and participant id `me` may change an item added by
/// `author`.
pub fn may_change_item(role: Role, me: &str, author: Option<&str>) -> bool {
    changes_every_item(role) || (adds_items(role) && author == Some(me))
}

pub use crate::doc::EntryNow;

/// Checks everything a transaction changed against what `role` may write. Asked of
/// every transaction that changed the document, even when `changes` is empty: what
/// it changed may be where nobody sees it.
///
/// `author_before(item)` is the recorded author of a board item before the
/// transaction (`None` if there was no such item); `entry_after(item)` is the entry
/// after it. The restricted document has the same layout and the same rules.
pub fn check_update(
    role: Role,
    sender: ParticipantId,
    changes: &TransactionChanges,
    author_before: impl Fn(&str) -> Option<String>,
    entry_after: impl Fn(&str) -> Option<EntryNow>,
) -> Result<(), Refusal> {
    if changes.incomplete {
        return Err(Refusal::Incomplete);
    }
    if let Some(root) = changes.unknown_roots.first() {
        return Err(Refusal::UnknownPart(root.clone()));
    }
    let sender = sender.to_string();
    let writes_board = adds_items(role);
    let writes_all = changes_every_item(role);
    for change in &changes.changes {
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
        let before = author_before(entry);
        let after = entry_after(entry);
        let may_change = |author: &str| writes_all || author == sender;
        match (&place.field, change.kind, &before) {
            // A new item.
            (None, ChangeKind::Insert, None) => match &after {
                Some(EntryNow {
                    is_map: true,
                    author,
                }) if author.as_deref() == Some(sender.as_str()) => {}
                Some(EntryNow { is_map: true, .. }) => return Err(Refusal::WrongAuthor),
                _ => return Err(Refusal::NotAnItem),
            },
            // An item replaced by another under the same id: same author, and only by
            // someone who may change it.
            (None, ChangeKind::Insert, Some(author)) => {
                if !may_change(author) {
                    return Err(Refusal::NotYourItem);
                }
                match &after {
                    Some(EntryNow {
                        is_map: true,
                        author: now,
                    }) if now.as_ref() == Some(author) => {}
                    Some(EntryNow { is_map: true, .. }) => return Err(Refusal::AuthorIsFixed),
                    _ => return Err(Refusal::NotAnItem),
                }
            }
            (None, ChangeKind::Delete, author) => {
                if !author.as_deref().is_some_and(may_change) {
                    return Err(Refusal::NotYourItem);
                }
            }
            // Inside an item created in this same transaction: checked with the item.
            (Some(_), _, None) => {
                if !created_here(changes, &place.root, entry) {
                    return Err(Refusal::NotAnItem);
                }
            }
            (Some(field), _, Some(author)) => {
                if field.as_ref() == doc::item::AUTHOR {
                    return Err(Refusal::AuthorIsFixed);
                }
                if !may_change(author) {
                    return Err(Refusal::NotYourItem);
                }
            }
        }
    }
    // Whatever else changed, nobody sees: text typed into an item someone deleted,
    // ranges a client kept only as garbage-collected. It would still be stored,
    // relayed and take room in the document, so a role that may write nothing may
    // not send that either. (A writer may: typing into an item as someone else
    // deletes it is how concurrent edits go.)
    if !writes_board && !writes_all {
        return Err(Refusal::ReadOnly("document"));
    }
    Ok(())
}

fn created_here(changes: &TransactionChanges, root: &Arc<str>, entry: &Arc<str>) -> bool {
    changes.changes.iter().any(|c| {
        c.kind == ChangeKind::Insert
            && c.place.field.is_none()
            && &c.place.root == root
            && c.place.entry.as_ref() == Some(entry)
    })
}
