//! What a transaction actually changed, read from the document itself.
//!
//! [`ChangeRecorder`] observes every root of a document and records, for each
//! transaction, the places it changed: the root, the entry of the root's map, and the
//! field of that entry's map ([`Place`]). These come from yrs' own events, after yrs
//! has integrated the update, so they say where content really landed, whatever the
//! update claimed. [`crate::gate`] decides on a client's update before applying it;
//! once it has applied an accepted one, it checks the recorder's account by the same
//! rules ([`crate::permissions`]), so the decision never rests on its reading of the
//! update alone.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use yrs::types::{EntryChange, Event, PathSegment};
use yrs::{DeepObservable, Doc, ReadTxn, Transact};

use crate::doc::ROOTS;

/// Where a change happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    /// The root type's name.
    pub root: Arc<str>,
    /// The key of the root map's entry, if the change is inside one.
    pub entry: Option<Arc<str>>,
    /// The key within that entry's map, if the change is inside one.
    pub field: Option<Arc<str>>,
}

/// Whether a place gained or lost something. Replacing a value counts as an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Insert,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Change {
    pub place: Place,
    pub kind: ChangeKind,
}

/// Everything one transaction changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionChanges {
    pub changes: BTreeSet<Change>,
    /// Roots the document has that are not part of its layout.
    pub unknown_roots: Vec<String>,
    /// The update left parts waiting for changes the document does not have.
    pub incomplete: bool,
}

impl TransactionChanges {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.unknown_roots.is_empty() && !self.incomplete
    }
}

/// Records what each transaction on a document changes. See the module documentation.
pub struct ChangeRecorder {
    doc: Doc,
    recorded: Arc<Mutex<BTreeSet<Change>>>,
}

const OBSERVER: &str = "roundtable-change-recorder";

impl ChangeRecorder {
    /// Starts recording changes to every root of `doc`. Call outside any transaction.
    pub fn attach(doc: &Doc) -> ChangeRecorder {
        let recorded: Arc<Mutex<BTreeSet<Change>>> = Arc::default();
        for root in ROOTS {
            let map = doc.get_or_insert_map(root);
            let sink = Arc::clone(&recorded);
            let root: Arc<str> = Arc::from(root);
            map.observe_deep(OBSERVER, move |txn, events| {
                let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
                for event in events.iter() {
                    record(&mut sink, &root, txn, event);
                }
            });
        }
        ChangeRecorder {
            doc: doc.clone(),
            recorded,
        }
    }

    /// What happened since the last call, plus the document's state now.
    pub fn take(&self) -> TransactionChanges {
        let changes = std::mem::take(&mut *self.recorded.lock().unwrap_or_else(|e| e.into_inner()));
        let txn = self.doc.transact();
        let unknown_roots = txn
            .root_refs()
            .map(|(name, _)| name)
            .filter(|name| !ROOTS.contains(name))
            .map(str::to_owned)
            .collect();
        TransactionChanges {
            changes,
            unknown_roots,
            incomplete: txn.has_missing_updates(),
        }
    }
}

fn key(segment: Option<&PathSegment>) -> Option<Arc<str>> {
    match segment {
        Some(PathSegment::Key(k)) => Some(k.clone()),
        _ => None,
    }
}

fn record(sink: &mut BTreeSet<Change>, root: &Arc<str>, txn: &yrs::TransactionMut, event: &Event) {
    let path = event.path();
    let mut segments = path.iter();
    let (first, second) = (segments.next(), segments.next());
    let place = |entry: Option<Arc<str>>, field: Option<Arc<str>>| Place {
        root: root.clone(),
        entry,
        field,
    };
    match (event, first, second) {
        // A change to a map's own entries: the root map, or an entry's map.
        (Event::Map(map), None, _) | (Event::Map(map), Some(_), None) => {
            for (name, change) in map.keys(txn) {
                let kind = match change {
                    EntryChange::Removed(_) => ChangeKind::Delete,
                    EntryChange::Inserted(_) | EntryChange::Updated(..) => ChangeKind::Insert,
                };
                let place = match first {
                    None => place(Some(name.clone()), None),
                    Some(segment) => place(key(Some(segment)), Some(name.clone())),
                };
                sink.insert(Change { place, kind });
            }
        }
        // Anything else happened inside a type, at whatever depth: it changes the field
        // holding that type (or the entry, for a type that is an entry itself).
        _ => {
            let place = match (first, second) {
                (None, _) => place(None, None),
                (Some(entry), field) => place(key(Some(entry)), key(field)),
            };
            sink.insert(Change {
                place,
                kind: ChangeKind::Insert,
            });
        }
    }
}
