//! What an update would change, read from the update and the document before any of it
//! is applied.
//!
//! yrs decides where an item lands when it integrates it: an item names its parent only
//! when it has no neighbours, and otherwise takes the parent of the item it was inserted
//! after (or before). This module follows the same rules without integrating anything:
//! it finds each new item's parent, in the document or earlier in the update, walks up to
//! the root, and reports the places changed the way [`crate::guard::ChangeRecorder`]
//! reports them after the fact (root, entry of the root map, field of that entry).
//!
//! Where the two could differ, the prediction errs on the side of reporting more: every
//! place an item lands is reported, whether or not the item ends up visible, except where
//! it lands inside a type that is deleted (before the update or by it), which nobody
//! sees. The gate still checks what the recorder saw once an admitted update is applied,
//! so a prediction that missed something is caught there.
//!
//! It also tells whether the update is complete: every item it builds on (its origins,
//! its parent), every range it deletes, and every clock before its own, must be in the
//! document or in the update. yrs integrates an item that arrives ahead of earlier items
//! of the same client, leaving a hole the later ones cannot fill in the same way on
//! every replica; such an update is reported as incomplete instead.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::block::{BlockView, ClientID, ID, Item, ItemContent, ItemParent};
use yrs::types::TypeRef;
use yrs::{Any, ReadTxn, StateVector, Update};

use crate::doc::{self, ROOTS};
use crate::guard::{Change, ChangeKind, Place, TransactionChanges};
use crate::permissions::EntryNow;

/// What reading an update against the document found.
#[derive(Debug)]
pub enum Prediction {
    /// Nothing in it is new: every item is known and everything it deletes is deleted.
    Known,
    /// It builds on items or deletes ranges the document does not have.
    Incomplete,
    /// It cannot be integrated (an item's parent is not a type).
    Invalid,
    /// It would change the document.
    Changes(Predicted),
}

/// The changes an update would make.
#[derive(Debug, Default)]
pub struct Predicted {
    /// The places changed, as the recorder would report them.
    pub changes: TransactionChanges,
    /// Board entries the update creates or replaces, as they would be after it.
    pub new_entries: HashMap<Arc<str>, EntryNow>,
    /// Values written to an action's `by` field: `None` for anything but a plain string.
    pub action_dates: Vec<Option<String>>,
}

/// A type, by the root's name or by the ID of the item holding it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TypeKey {
    Root(Arc<str>),
    Nested(ID),
}

/// Where a type sits: its root, the keys of its first levels below the root (`None` for
/// a level that is a position in a list), how deep it is, whether it is deleted or
/// inside something deleted, and whether the update creates it.
///
/// yrs reports no change inside a type that is deleted, nor inside one the same
/// transaction creates (creating it is the change).
#[derive(Debug, Clone)]
struct TypePlace {
    root: Arc<str>,
    path: [Option<Arc<str>>; 3],
    depth: usize,
    hidden: bool,
    created: bool,
}

/// Where an item of the update lands.
#[derive(Debug, Clone)]
enum Parent {
    /// In this type, under this key if the type is used as a map.
    In(TypeKey, Option<Arc<str>>),
    /// Nowhere: yrs keeps it only as a collected range.
    Lost,
}

/// An item found by its ID.
enum Found<'a> {
    /// One of the update's new items (from `new_from` on; the clocks before are known).
    New(&'a Item),
    /// An item of the document.
    Stored(&'a Item),
    /// A range the document keeps only as collected.
    Collected,
    /// Neither the document nor the update has it.
    Missing,
}

/// An update's new items for one client, in clock order, with the first new clock.
struct Run<'a> {
    /// (first clock, end clock, item) of each item.
    items: Vec<(u32, u32, &'a Item)>,
}

struct Reader<'a, T: ReadTxn> {
    txn: &'a T,
    update: &'a Update,
    known: StateVector,
    runs: HashMap<ClientID, Run<'a>>,
    parents: HashMap<ID, Parent>,
    types: HashMap<TypeKey, Option<TypePlace>>,
}

/// Reads `update` against the document `txn` reads.
pub fn predict<T: ReadTxn>(txn: &T, update: &Update) -> Prediction {
    let known = txn.state_vector();
    let mut runs: HashMap<ClientID, Run<'_>> = HashMap::new();
    // Every clock from what the document knows up to the last the update carries must be
    // carried by the update: a hole means it was sent ahead of what it follows.
    let mut next_clock: HashMap<ClientID, u32> = HashMap::new();
    for block in update.blocks() {
        let (client, start, end, item) = match block {
            BlockView::Item(item) => (
                item.id().client,
                item.id().clock,
                item.id().clock + item.len(),
                Some(item),
            ),
            BlockView::GC(range) => (range.client, range.clock, range.clock + range.len, None),
            BlockView::Skip(range) => {
                if range.clock + range.len > known.get(&range.client) {
                    return Prediction::Incomplete;
                }
                continue;
            }
        };
        let from = known.get(&client);
        if end <= from {
            continue;
        }
        let expected = next_clock.entry(client).or_insert(from);
        if start > *expected {
            return Prediction::Incomplete;
        }
        *expected = (*expected).max(end);
        if let Some(item) = item {
            runs.entry(client)
                .or_insert_with(|| Run { items: Vec::new() })
                .items
                .push((start.max(from), end, item));
        }
    }
    let mut reader = Reader {
        txn,
        update,
        known,
        runs,
        parents: HashMap::new(),
        types: HashMap::new(),
    };
    reader.read()
}

impl<'a, T: ReadTxn> Reader<'a, T> {
    fn read(&mut self) -> Prediction {
        let mut predicted = Predicted::default();
        let mut changes_anything = false;
        let new_items: Vec<&'a Item> = self
            .runs
            .values()
            .flat_map(|run| run.items.iter().map(|(_, _, item)| *item))
            .collect();
        // Every new item's parent first: where one lands can depend on another.
        for item in &new_items {
            if let Err(stop) = self.parent_of(item) {
                return stop.into();
            }
        }
        for item in &new_items {
            changes_anything = true;
            let parent = self.parents[item.id()].clone();
            if let ItemParent::Root(name) = item.parent_ref()
                && !ROOTS.contains(&name)
                && !predicted.changes.unknown_roots.iter().any(|r| r == name)
            {
                predicted.changes.unknown_roots.push(name.to_owned());
            }
            let Parent::In(parent, sub) = parent else {
                continue;
            };
            let Some(place) = self.type_place(&parent) else {
                return Prediction::Incomplete;
            };
            if place.hidden {
                continue;
            }
            if place.created {
                // Reported with the type itself; a date is still checked.
                self.check_date_in_created(&mut predicted, &place, sub.as_ref(), item);
                continue;
            }
            self.record_insert(&mut predicted, &place, sub.as_ref(), item);
        }
        for (client, ranges) in self.update.delete_set().iter() {
            for range in ranges.iter() {
                match self.record_deletes(&mut predicted, *client, range.start, range.end) {
                    Ok(changed) => changes_anything |= changed,
                    Err(stop) => return stop.into(),
                }
            }
        }
        // Roots the document has already that are not part of its layout: the recorder
        // reports them with every change.
        for (name, _) in self.txn.root_refs() {
            if !ROOTS.contains(&name) && !predicted.changes.unknown_roots.iter().any(|r| r == name)
            {
                predicted.changes.unknown_roots.push(name.to_owned());
            }
        }
        if !changes_anything {
            return Prediction::Known;
        }
        Prediction::Changes(predicted)
    }

    fn record_insert(
        &mut self,
        predicted: &mut Predicted,
        place: &TypePlace,
        sub: Option<&Arc<str>>,
        item: &'a Item,
    ) {
        let change = |entry: Option<Arc<str>>, field: Option<Arc<str>>| Change {
            place: Place {
                root: place.root.clone(),
                entry,
                field,
            },
            kind: ChangeKind::Insert,
        };
        let [first, second, _] = &place.path;
        let change = match place.depth {
            0 => change(sub.cloned(), None),
            1 => change(first.clone(), sub.cloned()),
            _ => change(first.clone(), second.clone()),
        };
        predicted.changes.changes.insert(change);
        if place.depth == 0
            && place.root.as_ref() == doc::BOARD
            && let Some(entry) = sub
        {
            // Of several new values for one entry, the one written last holds it: each
            // was inserted after the one before.
            let superseded = self.runs.values().any(|run| {
                run.items.iter().any(|(_, _, other)| {
                    other.origin() == Some(&item.last_id())
                        && self.parents.get(other.id()).is_some_and(
                            |p| matches!(p, Parent::In(TypeKey::Root(_), Some(s)) if s == entry),
                        )
                })
            });
            if !superseded {
                let now = self.entry_made_by(item);
                match predicted.new_entries.get(entry) {
                    Some(before) if *before != now => {
                        // Two last values for one entry: neither is trusted.
                        predicted
                            .new_entries
                            .insert(entry.clone(), EntryNow::not_an_item());
                    }
                    _ => {
                        predicted.new_entries.insert(entry.clone(), now);
                    }
                }
            }
        }
        self.check_date_in_created(predicted, place, sub, item);
    }

    /// Notes the value an item writes to an action's `by` field, if it does.
    fn check_date_in_created(
        &self,
        predicted: &mut Predicted,
        place: &TypePlace,
        sub: Option<&Arc<str>>,
        item: &'a Item,
    ) {
        let [first, second, third] = &place.path;
        let in_action = place.root.as_ref() == doc::PLAN
            && first.as_deref() == Some(crate::plan::ACTIONS)
            && second.is_some();
        let by = crate::plan::action::BY;
        if in_action && place.depth == 2 && sub.map(|s| s.as_ref()) == Some(by) {
            predicted.action_dates.push(match item.content() {
                ItemContent::Any(values) => match values.last() {
                    Some(Any::String(s)) => Some(s.to_string()),
                    _ => None,
                },
                _ => None,
            });
        } else if in_action && place.depth >= 3 && third.as_deref() == Some(by) {
            // Something inside a `by` field: a date is a plain string.
            predicted.action_dates.push(None);
        }
    }

    /// What a new board entry holds: whether it is a map, and the author written into
    /// it by the same update.
    fn entry_made_by(&self, item: &'a Item) -> EntryNow {
        let ItemContent::Type(branch) = item.content() else {
            return EntryNow::not_an_item();
        };
        if *branch.type_ref() != TypeRef::Map {
            return EntryNow::not_an_item();
        }
        let map = *item.id();
        let mut author: Option<Option<String>> = None;
        for run in self.runs.values() {
            for (_, _, field) in &run.items {
                if field.parent_ref() != ItemParent::Nested(map)
                    || field.parent_sub().map(|s| s.as_ref()) != Some(doc::item::AUTHOR)
                {
                    continue;
                }
                let value = match field.content() {
                    ItemContent::Any(values) => match values.last() {
                        Some(Any::String(s)) => Some(s.to_string()),
                        _ => None,
                    },
                    _ => None,
                };
                author = match author {
                    None => Some(value),
                    Some(previous) if previous == value => Some(previous),
                    Some(_) => Some(None),
                };
            }
        }
        EntryNow {
            is_map: true,
            author: author.flatten(),
        }
    }

    /// Records what deleting `start..end` of `client` changes. Returns whether anything
    /// not deleted yet is deleted.
    fn record_deletes(
        &mut self,
        predicted: &mut Predicted,
        client: ClientID,
        start: u32,
        end: u32,
    ) -> Result<bool, Stop> {
        let mut changed = false;
        let mut clock = start;
        while clock < end {
            let id = ID::new(client, clock);
            match self.find(&id) {
                Found::New(item) => {
                    // Inserted and deleted by the same update: its insertion is already
                    // reported where it lands.
                    changed = true;
                    clock = item.id().clock + item.len();
                }
                Found::Stored(item) => {
                    clock = item.id().clock + item.len();
                    if item.is_deleted() {
                        continue;
                    }
                    changed = true;
                    let key = match item.parent_ref() {
                        ItemParent::Root(name) => TypeKey::Root(Arc::from(name)),
                        ItemParent::Nested(id) => TypeKey::Nested(id),
                        ItemParent::Unknown => continue,
                    };
                    let Some(place) = self.type_place(&key) else {
                        return Err(Stop::Incomplete);
                    };
                    if place.hidden {
                        continue;
                    }
                    let sub = item.parent_sub();
                    let [first, second, _] = &place.path;
                    let (entry, field, kind) = match (place.depth, sub) {
                        (0, Some(sub)) => (Some(sub.clone()), None, ChangeKind::Delete),
                        (0, None) => (None, None, ChangeKind::Insert),
                        (1, Some(sub)) => (first.clone(), Some(sub.clone()), ChangeKind::Delete),
                        (1, None) => (first.clone(), None, ChangeKind::Insert),
                        _ => (first.clone(), second.clone(), ChangeKind::Insert),
                    };
                    predicted.changes.changes.insert(Change {
                        place: Place {
                            root: place.root.clone(),
                            entry,
                            field,
                        },
                        kind,
                    });
                }
                Found::Collected => {
                    // Collected content is deleted already. Its length is not known from
                    // the ID alone: step past it through the document.
                    match self.txn.block(&id) {
                        Some(BlockView::GC(range)) => clock = range.clock + range.len,
                        _ => return Err(Stop::Incomplete),
                    }
                }
                Found::Missing => return Err(Stop::Incomplete),
            }
        }
        Ok(changed)
    }

    /// Finds the item holding `id`.
    fn find(&self, id: &ID) -> Found<'a> {
        if id.clock >= self.known.get(&id.client) {
            let Some(run) = self.runs.get(&id.client) else {
                return Found::Missing;
            };
            let at = run.items.partition_point(|(_, end, _)| *end <= id.clock);
            return match run.items.get(at) {
                Some((start, _, item)) if *start <= id.clock => Found::New(item),
                _ => Found::Missing,
            };
        }
        let txn: &'a T = self.txn;
        match txn.block(id) {
            Some(BlockView::Item(item)) => Found::Stored(item),
            Some(BlockView::GC(_)) => Found::Collected,
            Some(BlockView::Skip(_)) | None => Found::Missing,
        }
    }

    /// Where a new item of the update lands, following yrs: the parent it names, or
    /// else the parent of the item it was inserted after, or else before.
    fn parent_of(&mut self, item: &'a Item) -> Result<Parent, Stop> {
        // Items whose parent comes from a neighbour in the update are resolved first,
        // without recursion (a hostile update can chain any number of them).
        let mut stack: Vec<&'a Item> = vec![item];
        while let Some(&top) = stack.last() {
            if self.parents.contains_key(top.id()) {
                stack.pop();
                continue;
            }
            match self.resolve(top) {
                Ok(parent) => {
                    self.parents.insert(*top.id(), parent);
                    stack.pop();
                }
                Err(Needs::Item(dependency)) => {
                    if stack.iter().any(|i| std::ptr::eq(*i, dependency)) {
                        // Items that build on each other: yrs leaves them pending.
                        return Err(Stop::Incomplete);
                    }
                    stack.push(dependency);
                }
                Err(Needs::Nothing(outcome)) => return Err(outcome),
            }
        }
        Ok(self.parents[item.id()].clone())
    }

    /// Resolves an item's parent, if what it depends on is resolved.
    fn resolve(&self, item: &'a Item) -> Result<Parent, Needs<'a>> {
        let start = item.id();
        let from = self.known.get(&start.client);
        // Part of this item is known: yrs integrates the rest after the known part, and
        // takes the key it sits under from there.
        let trimmed_sub = if start.clock < from {
            match self.find(&ID::new(start.client, from - 1)) {
                Found::Stored(left) => left.parent_sub().cloned(),
                _ => None,
            }
        } else {
            None
        };
        let neighbour = |id: Option<&ID>| -> Result<Option<Parent>, Needs<'a>> {
            let Some(id) = id else {
                return Ok(None);
            };
            if id.client == start.client && id.clock >= start.clock {
                // A client inserts only next to what it already had: an update that says
                // otherwise is not one yrs integrates the same way everywhere.
                return Err(Needs::Nothing(Stop::Invalid));
            }
            match self.find(id) {
                Found::New(dependency) => match self.parents.get(dependency.id()) {
                    Some(Parent::In(key, sub)) => Ok(Some(Parent::In(key.clone(), sub.clone()))),
                    Some(Parent::Lost) => Ok(None),
                    None => Err(Needs::Item(dependency)),
                },
                Found::Stored(neighbour) => Ok(match neighbour.parent_ref() {
                    ItemParent::Root(name) => Some(Parent::In(
                        TypeKey::Root(Arc::from(name)),
                        neighbour.parent_sub().cloned(),
                    )),
                    ItemParent::Nested(id) => Some(Parent::In(
                        TypeKey::Nested(id),
                        neighbour.parent_sub().cloned(),
                    )),
                    ItemParent::Unknown => None,
                }),
                Found::Collected => Ok(None),
                Found::Missing => Err(Needs::Nothing(Stop::Incomplete)),
            }
        };
        let with_sub = |parent: Parent| match (parent, &trimmed_sub) {
            (Parent::In(key, _), Some(sub)) => Parent::In(key, Some(sub.clone())),
            (parent, _) => parent,
        };
        match item.parent_ref() {
            ItemParent::Root(name) => Ok(with_sub(Parent::In(
                TypeKey::Root(Arc::from(name)),
                item.parent_sub().cloned(),
            ))),
            ItemParent::Nested(id) => {
                if id.client == start.client && id.clock >= start.clock {
                    return Err(Needs::Nothing(Stop::Invalid));
                }
                let parent = match self.find(&id) {
                    Found::New(holder) => match holder.content() {
                        ItemContent::Type(_) if holder.id() == &id => {
                            Parent::In(TypeKey::Nested(id), item.parent_sub().cloned())
                        }
                        ItemContent::Deleted(_) => Parent::Lost,
                        _ => return Err(Needs::Nothing(Stop::Invalid)),
                    },
                    Found::Stored(holder) => match holder.content() {
                        ItemContent::Type(_) => {
                            Parent::In(TypeKey::Nested(*holder.id()), item.parent_sub().cloned())
                        }
                        ItemContent::Deleted(_) => Parent::Lost,
                        _ => return Err(Needs::Nothing(Stop::Invalid)),
                    },
                    Found::Collected => Parent::Lost,
                    Found::Missing => return Err(Needs::Nothing(Stop::Incomplete)),
                };
                Ok(with_sub(parent))
            }
            ItemParent::Unknown => {
                // Both neighbours must be there, as yrs asks before integrating.
                let left = neighbour(item.origin())?;
                let right = neighbour(item.right_origin())?;
                let parent = match (left, right) {
                    (Some(Parent::In(key, sub)), _) => Parent::In(key, sub),
                    (_, Some(Parent::In(key, sub))) => Parent::In(key, sub),
                    _ => Parent::Lost,
                };
                Ok(with_sub(parent))
            }
        }
    }

    /// Where a type sits. `None` if it depends on something missing.
    fn type_place(&mut self, key: &TypeKey) -> Option<TypePlace> {
        // Walk up to a type whose place is known, then fill in the way back down.
        let mut chain: Vec<TypeKey> = Vec::new();
        let mut current = key.clone();
        let mut top = loop {
            if let Some(known) = self.types.get(&current) {
                break known.clone()?;
            }
            match &current {
                TypeKey::Root(name) => {
                    let place = TypePlace {
                        root: name.clone(),
                        path: [None, None, None],
                        depth: 0,
                        hidden: false,
                        created: false,
                    };
                    self.types.insert(current.clone(), Some(place.clone()));
                    break place;
                }
                TypeKey::Nested(id) => {
                    chain.push(current.clone());
                    let parent = match self.find(id) {
                        Found::New(item) => match self.parents.get(item.id()) {
                            Some(Parent::In(parent, _)) => parent.clone(),
                            Some(Parent::Lost) => break self.lost_type(&chain),
                            None => match self.parent_of(item) {
                                Ok(Parent::In(parent, _)) => parent,
                                Ok(Parent::Lost) => break self.lost_type(&chain),
                                Err(_) => return self.missing_type(&chain),
                            },
                        },
                        Found::Stored(item) => match item.parent_ref() {
                            ItemParent::Root(name) => TypeKey::Root(Arc::from(name)),
                            ItemParent::Nested(id) => TypeKey::Nested(id),
                            ItemParent::Unknown => break self.lost_type(&chain),
                        },
                        Found::Collected => break self.lost_type(&chain),
                        Found::Missing => return self.missing_type(&chain),
                    };
                    if chain.len() > 1 && chain.contains(&parent) {
                        return self.missing_type(&chain);
                    }
                    current = parent;
                }
            }
        };
        // `chain` runs from `key` up to the child of `top`.
        while let Some(child) = chain.pop() {
            let TypeKey::Nested(id) = &child else {
                continue;
            };
            let (sub, deleted, created) = match self.find(id) {
                Found::New(item) => (
                    match self.parents.get(item.id()) {
                        Some(Parent::In(_, sub)) => sub.clone(),
                        _ => None,
                    },
                    self.update.delete_set().contains(id),
                    true,
                ),
                Found::Stored(item) => (
                    item.parent_sub().cloned(),
                    item.is_deleted() || self.update.delete_set().contains(id),
                    false,
                ),
                _ => (None, true, false),
            };
            let mut path = top.path.clone();
            if top.depth < path.len() {
                path[top.depth] = sub;
            }
            top = TypePlace {
                root: top.root.clone(),
                path,
                depth: top.depth + 1,
                hidden: top.hidden || deleted,
                created,
            };
            self.types.insert(child, Some(top.clone()));
        }
        Some(top)
    }

    /// A type whose holder was collected: whatever lands in it is lost.
    fn lost_type(&mut self, chain: &[TypeKey]) -> TypePlace {
        let place = TypePlace {
            root: Arc::from(""),
            path: [None, None, None],
            depth: 0,
            hidden: true,
            created: false,
        };
        if let Some(last) = chain.last() {
            self.types.insert(last.clone(), Some(place.clone()));
        }
        place
    }

    fn missing_type(&mut self, chain: &[TypeKey]) -> Option<TypePlace> {
        for key in chain {
            self.types.insert(key.clone(), None);
        }
        None
    }
}

/// Why an item's parent cannot be resolved yet.
enum Needs<'a> {
    /// Another new item must be resolved first.
    Item(&'a Item),
    /// It cannot be resolved.
    Nothing(Stop),
}

/// Why reading an update stops short of its changes.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Incomplete,
    Invalid,
}

impl From<Stop> for Prediction {
    fn from(stop: Stop) -> Prediction {
        match stop {
            Stop::Incomplete => Prediction::Incomplete,
            Stop::Invalid => Prediction::Invalid,
        }
    }
}
