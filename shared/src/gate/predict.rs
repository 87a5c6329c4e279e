//! What an update would change, read from the update and the document before any of it
//! is applied.
//!
//! yrs decides where an item lands when it integrates it. It first cuts off the part of
//! each block the document already has: the rest then follows the last known element.
//! An item names its parent only when it has no neighbours; otherwise it takes the
//! parent of the item it was inserted after (or, failing that, before), and the map key
//! of either. This module follows the same rules without integrating anything: it finds
//! each new item's parent, in the document or earlier in the update, walks up to the
//! root, and reports the places changed the way [`crate::guard::ChangeRecorder`] reports
//! them after the fact (root, entry of the root map, field of that entry).
//!
//! Where the two could differ, the prediction errs on the side of reporting more: every
//! place an item lands is reported, whether or not the item ends up visible, except where
//! it lands inside a type that is deleted (before the update or by it), which nobody
//! sees, or inside a type the update creates (creating it is the change). The gate still
//! checks what the recorder saw once an admitted update is applied, so a prediction that
//! missed something is caught there.
//!
//! It also tells whether the update is complete: every item it builds on (its origins,
//! its parent, and the previous block of its own client), every range it deletes, and
//! every clock before its own, must be in the document or in the update. yrs integrates
//! an item that arrives ahead of earlier items of the same client, leaving a hole the
//! later ones cannot fill in the same way on every replica; such an update is reported
//! as incomplete instead. An update whose blocks for one client are not in clock order,
//! one after the other (a client listed twice, say), is not one yrs can integrate
//! safely, and is invalid.
//!
//! Work is linear in the size of the update, plus a lookup in the document for each
//! item it refers to and each block it deletes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use yrs::block::{BlockView, ClientID, ID, Item, ItemContent, ItemParent};
use yrs::types::TypeRef;
use yrs::{Any, Map, ReadTxn, StateVector, Update};

use crate::doc::{self, ROOTS};
use crate::guard::{Change, ChangeKind, Place, TransactionChanges};
use crate::permissions::EntryNow;

/// What reading an update against the document found.
#[derive(Debug)]
pub enum Prediction {
    /// Nothing in it is new: every item is known and everything it deletes is deleted.
    Known,
    /// It builds on something the document does not have, from this client.
    Incomplete(ClientID),
    /// It cannot be integrated safely (blocks out of order, a parent that is not a type).
    Invalid,
    /// It would change the document.
    Changes(Predicted),
}

/// The clients under whose ids `update` carries changes (items or collected ranges),
/// in order, each with whether the document lacks any of them yet.
pub fn written_clients<T: ReadTxn>(txn: &T, update: &Update) -> Vec<(ClientID, bool)> {
    let known = txn.state_vector();
    // A map, not a list searched per block: a hostile update may name many clients.
    let mut clients: HashMap<ClientID, bool> = HashMap::new();
    for block in update.blocks() {
        let (client, end) = match block {
            BlockView::Item(item) => (item.id().client, item.id().clock + item.len()),
            BlockView::GC(range) => (range.client, range.clock.saturating_add(range.len)),
            BlockView::Skip(_) => continue,
        };
        *clients.entry(client).or_default() |= end > known.get(&client);
    }
    let mut clients: Vec<(ClientID, bool)> = clients.into_iter().collect();
    clients.sort_unstable();
    clients
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
/// transaction creates.
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
    /// One of the update's new items.
    New(&'a Item),
    /// An item of the document.
    Stored(&'a Item),
    /// A range the document keeps, or the update carries, only as collected; the
    /// clock it ends at.
    Collected(u32),
    /// Neither the document nor the update has it.
    Missing,
}

/// Why reading an update stops short of its changes.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Incomplete(ClientID),
    Invalid,
}

impl From<Stop> for Prediction {
    fn from(stop: Stop) -> Prediction {
        match stop {
            Stop::Incomplete(client) => Prediction::Incomplete(client),
            Stop::Invalid => Prediction::Invalid,
        }
    }
}

/// Why an item's parent cannot be resolved yet.
enum Needs<'a> {
    /// Another new item must be resolved first.
    Item(&'a Item),
    /// It cannot be resolved.
    Nothing(Stop),
}

/// A neighbour of a new item, as yrs finds it: its parent and its key.
struct Neighbour {
    parent: Option<TypeKey>,
    sub: Option<Arc<str>>,
}

struct Reader<'a, T: ReadTxn> {
    txn: &'a T,
    known: StateVector,
    /// The update's new items of each client: (first new clock, end clock, item).
    runs: HashMap<ClientID, Vec<(u32, u32, &'a Item)>>,
    /// The update's new collected ranges of each client: (first new clock, end clock).
    collected: HashMap<ClientID, Vec<(u32, u32)>>,
    /// What the update deletes, per client, sorted and merged.
    deletes: HashMap<ClientID, Vec<(u32, u32)>>,
    parents: HashMap<ID, Parent>,
    types: HashMap<TypeKey, Option<TypePlace>>,
}

/// Reads `update` against the document `txn` reads.
pub fn predict<T: ReadTxn>(txn: &T, update: &Update) -> Prediction {
    let known = txn.state_vector();
    let mut runs: HashMap<ClientID, Vec<(u32, u32, &Item)>> = HashMap::new();
    // Every client's blocks must follow one another in clock order, and every clock from
    // what the document knows up to the last the update carries must be carried.
    let mut next_clock: HashMap<ClientID, u32> = HashMap::new();
    // Ranges a client kept only as garbage-collected (content deleted, and then
    // collected, on a replica with garbage collection on): they fill clocks, and hold
    // nothing anyone sees.
    let mut collected: HashMap<ClientID, Vec<(u32, u32)>> = HashMap::new();
    let mut first_new: HashMap<ClientID, u32> = HashMap::new();
    for block in update.blocks() {
        let (client, start, end, item) = match block {
            BlockView::Item(item) => {
                let id = item.id();
                (
                    id.client,
                    id.clock,
                    id.clock.saturating_add(item.len()),
                    Some(item),
                )
            }
            BlockView::GC(range) | BlockView::Skip(range) => (
                range.client,
                range.clock,
                range.clock.saturating_add(range.len),
                None,
            ),
        };
        if let Some(previous) = next_clock.insert(client, end)
            && start != previous
        {
            return Prediction::Invalid;
        }
        let from = known.get(&client);
        if end <= from {
            continue;
        }
        let start = start.max(from);
        match (block, item) {
            (_, Some(item)) => runs.entry(client).or_default().push((start, end, item)),
            (BlockView::Skip(_), _) => return Prediction::Incomplete(client),
            _ => collected.entry(client).or_default().push((start, end)),
        }
        first_new.entry(client).or_insert(start);
    }
    for (client, start) in &first_new {
        if *start > known.get(client) {
            return Prediction::Incomplete(*client);
        }
    }
    let mut deletes: HashMap<ClientID, Vec<(u32, u32)>> = HashMap::new();
    for (client, ranges) in update.delete_set().iter() {
        let merged = deletes.entry(*client).or_default();
        merged.extend(
            ranges
                .iter()
                .filter(|r| r.start < r.end)
                .map(|r| (r.start, r.end)),
        );
    }
    for merged in deletes.values_mut() {
        merged.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(merged.len());
        for &(start, end) in merged.iter() {
            match out.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => out.push((start, end)),
            }
        }
        *merged = out;
    }
    let mut reader = Reader {
        txn,
        known,
        runs,
        collected,
        deletes,
        parents: HashMap::new(),
        types: HashMap::new(),
    };
    reader.read()
}

impl<'a, T: ReadTxn> Reader<'a, T> {
    fn read(&mut self) -> Prediction {
        let mut predicted = Predicted::default();
        let mut unknown_roots = BTreeSet::new();
        let new_items: Vec<&'a Item> = self
            .runs
            .values()
            .flat_map(|run| run.iter().map(|(_, _, item)| *item))
            .collect();
        // Every new item's parent first: where one lands can depend on another.
        for item in &new_items {
            if let Err(stop) = self.parent_of(item) {
                return stop.into();
            }
        }
        // Which new items were inserted right after another new item: of several new
        // values under one key, the last one holds it.
        let mut followed: HashSet<ID> = HashSet::new();
        for item in &new_items {
            if let Some(origin) = item.origin() {
                followed.insert(*origin);
            }
        }
        // New collected ranges change nothing anyone sees, but they are new to the
        // document: what a client makes after them builds on them.
        let mut changes_anything = !new_items.is_empty() || !self.collected.is_empty();
        for item in &new_items {
            if let ItemParent::Root(name) = item.parent_ref()
                && !ROOTS.contains(&name)
            {
                unknown_roots.insert(name.to_owned());
            }
            let Parent::In(parent, sub) = self.parents[item.id()].clone() else {
                continue;
            };
            let Some(place) = self.type_place(&parent) else {
                return Prediction::Incomplete(item.id().client);
            };
            if place.hidden {
                continue;
            }
            self.note_date(&mut predicted, &place, sub.as_ref(), item);
            if place.created {
                // Reported with the type itself.
                continue;
            }
            if place.depth == 0
                && self.deleted_here(item.id())
                && let Some(key) = &sub
            {
                // A new entry of a root, deleted again by the same update: what the
                // root held under that key (if anything) is gone, and nothing new is
                // there.
                if self.root_holds(&place.root, key) {
                    record_delete(&mut predicted, &place, Some(key));
                }
                continue;
            }
            record_insert(&mut predicted, &place, sub.as_ref());
            if place.depth == 0
                && place.root.as_ref() == doc::BOARD
                && let Some(entry) = &sub
                && !followed.contains(&item.last_id())
            {
                let now = self.entry_made_by(item, &followed);
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
        let deletes: Vec<(ClientID, u32, u32)> = self
            .deletes
            .iter()
            .flat_map(|(client, ranges)| ranges.iter().map(|(s, e)| (*client, *s, *e)))
            .collect();
        for (client, start, end) in deletes {
            match self.record_deletes(&mut predicted, client, start, end) {
                Ok(changed) => changes_anything |= changed,
                Err(stop) => return stop.into(),
            }
        }
        // Roots the document has already that are not part of its layout: the recorder
        // reports them with every change.
        for (name, _) in self.txn.root_refs() {
            if !ROOTS.contains(&name) {
                unknown_roots.insert(name.to_owned());
            }
        }
        predicted.changes.unknown_roots = unknown_roots.into_iter().collect();
        if !changes_anything {
            return Prediction::Known;
        }
        Prediction::Changes(predicted)
    }

    /// Whether the root `root` holds a value under `key` now.
    fn root_holds(&self, root: &str, key: &str) -> bool {
        let txn: &'a T = self.txn;
        txn.get_map(root)
            .is_some_and(|map| map.get(txn, key).is_some())
    }

    /// Whether the update deletes `id`.
    fn deleted_here(&self, id: &ID) -> bool {
        let Some(ranges) = self.deletes.get(&id.client) else {
            return false;
        };
        let at = ranges.partition_point(|(_, end)| *end <= id.clock);
        ranges.get(at).is_some_and(|(start, _)| *start <= id.clock)
    }

    /// Notes the value an item writes to an action's `by` field, if it does.
    fn note_date(
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
            predicted.action_dates.push(plain_string(item));
        } else if in_action && place.depth >= 3 && third.as_deref() == Some(by) {
            // Something inside a `by` field: a date is a plain string.
            predicted.action_dates.push(None);
        }
    }

    /// What a new board entry holds: whether it is a map, and the author written into
    /// it by the same update (the last value written under `author`, if it stays).
    fn entry_made_by(&self, item: &'a Item, followed: &HashSet<ID>) -> EntryNow {
        let ItemContent::Type(branch) = item.content() else {
            return EntryNow::not_an_item();
        };
        if *branch.type_ref() != TypeRef::Map {
            return EntryNow::not_an_item();
        }
        let map = TypeKey::Nested(*item.id());
        let mut author: Option<Option<String>> = None;
        for run in self.runs.values() {
            for (_, _, field) in run {
                let Some(Parent::In(parent, Some(sub))) = self.parents.get(field.id()) else {
                    continue;
                };
                if *parent != map
                    || sub.as_ref() != doc::item::AUTHOR
                    || followed.contains(&field.last_id())
                {
                    continue;
                }
                let value = if self.deleted_here(field.id()) {
                    None
                } else {
                    plain_string(field)
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
                        return Err(Stop::Incomplete(client));
                    };
                    if place.hidden {
                        continue;
                    }
                    record_delete(predicted, &place, item.parent_sub());
                }
                // Collected content is deleted already.
                Found::Collected(end) => clock = end,
                Found::Missing => return Err(Stop::Incomplete(client)),
            }
        }
        Ok(changed)
    }

    /// Finds the item holding `id`.
    fn find(&self, id: &ID) -> Found<'a> {
        if id.clock >= self.known.get(&id.client) {
            if let Some(run) = self.runs.get(&id.client) {
                let at = run.partition_point(|(_, end, _)| *end <= id.clock);
                if let Some((start, _, item)) = run.get(at)
                    && *start <= id.clock
                {
                    return Found::New(item);
                }
            }
            if let Some(ranges) = self.collected.get(&id.client) {
                let at = ranges.partition_point(|(_, end)| *end <= id.clock);
                if let Some((start, end)) = ranges.get(at)
                    && *start <= id.clock
                {
                    return Found::Collected(*end);
                }
            }
            return Found::Missing;
        }
        let txn: &'a T = self.txn;
        match txn.block(id) {
            Some(BlockView::Item(item)) => Found::Stored(item),
            Some(BlockView::GC(range)) => Found::Collected(range.clock + range.len),
            Some(BlockView::Skip(_)) | None => Found::Missing,
        }
    }

    /// Where a new item of the update lands, following yrs. Items whose parent comes
    /// from another new item are resolved first, without recursion (a hostile update
    /// can chain any number of them).
    fn parent_of(&mut self, item: &'a Item) -> Result<Parent, Stop> {
        let mut stack: Vec<&'a Item> = vec![item];
        let mut on_stack: HashSet<ID> = HashSet::from([*item.id()]);
        while let Some(&top) = stack.last() {
            if self.parents.contains_key(top.id()) {
                on_stack.remove(top.id());
                stack.pop();
                continue;
            }
            match self.resolve(top) {
                Ok(parent) => {
                    self.parents.insert(*top.id(), parent);
                    on_stack.remove(top.id());
                    stack.pop();
                }
                Err(Needs::Item(dependency)) => {
                    if !on_stack.insert(*dependency.id()) {
                        // Items that build on each other: yrs leaves them pending.
                        return Err(Stop::Incomplete(top.id().client));
                    }
                    stack.push(dependency);
                }
                Err(Needs::Nothing(stop)) => return Err(stop),
            }
        }
        Ok(self.parents[item.id()].clone())
    }

    /// Resolves an item's parent, once what it depends on is resolved.
    fn resolve(&self, item: &'a Item) -> Result<Parent, Needs<'a>> {
        let id = *item.id();
        let from = self.known.get(&id.client);
        // yrs integrates a client's blocks in clock order: the previous new one first.
        let new_from = id.clock.max(from);
        if new_from > from {
            match self.find(&ID::new(id.client, new_from - 1)) {
                Found::New(previous) if !self.parents.contains_key(previous.id()) => {
                    return Err(Needs::Item(previous));
                }
                Found::New(_) | Found::Collected(_) => {}
                _ => return Err(Needs::Nothing(Stop::Incomplete(id.client))),
            }
        }
        // The part the document has is cut off: the rest follows the last known element.
        let origin = if id.clock < from {
            Some(ID::new(id.client, from - 1))
        } else {
            item.origin().copied()
        };
        for reference in [origin.as_ref(), item.right_origin()].into_iter().flatten() {
            if reference.client == id.client && reference.clock >= new_from {
                // A client inserts only next to what it already had.
                return Err(Needs::Nothing(Stop::Invalid));
            }
        }
        let left = self.neighbour(origin.as_ref())?;
        let right = self.neighbour(item.right_origin())?;
        let neighbours_sub = || {
            left.as_ref()
                .and_then(|n| n.sub.clone())
                .or_else(|| right.as_ref().and_then(|n| n.sub.clone()))
        };
        let parent = match item.parent_ref() {
            ItemParent::Root(name) => Some(TypeKey::Root(Arc::from(name))),
            ItemParent::Nested(holder) => {
                if holder.client == id.client && holder.clock >= new_from {
                    return Err(Needs::Nothing(Stop::Invalid));
                }
                match self.find(&holder) {
                    Found::New(found) | Found::Stored(found) => match found.content() {
                        ItemContent::Type(_) if *found.id() == holder => {
                            Some(TypeKey::Nested(holder))
                        }
                        ItemContent::Deleted(_) => None,
                        _ => return Err(Needs::Nothing(Stop::Invalid)),
                    },
                    Found::Collected(_) => None,
                    Found::Missing => return Err(Needs::Nothing(Stop::Incomplete(holder.client))),
                }
            }
            ItemParent::Unknown => left
                .as_ref()
                .and_then(|n| n.parent.clone())
                .or_else(|| right.as_ref().and_then(|n| n.parent.clone())),
        };
        Ok(match parent {
            Some(parent) => Parent::In(
                parent,
                neighbours_sub().or_else(|| item.parent_sub().cloned()),
            ),
            None => Parent::Lost,
        })
    }

    /// The item at `id`, if it is one, as a neighbour: `None` for none or a collected one.
    fn neighbour(&self, id: Option<&ID>) -> Result<Option<Neighbour>, Needs<'a>> {
        let Some(id) = id else {
            return Ok(None);
        };
        match self.find(id) {
            Found::New(neighbour) => match self.parents.get(neighbour.id()) {
                Some(Parent::In(key, sub)) => Ok(Some(Neighbour {
                    parent: Some(key.clone()),
                    sub: sub.clone(),
                })),
                Some(Parent::Lost) => Ok(Some(Neighbour {
                    parent: None,
                    sub: None,
                })),
                None => Err(Needs::Item(neighbour)),
            },
            Found::Stored(neighbour) => Ok(Some(Neighbour {
                parent: match neighbour.parent_ref() {
                    ItemParent::Root(name) => Some(TypeKey::Root(Arc::from(name))),
                    ItemParent::Nested(id) => Some(TypeKey::Nested(id)),
                    ItemParent::Unknown => None,
                },
                sub: neighbour.parent_sub().cloned(),
            })),
            Found::Collected(_) => Ok(None),
            Found::Missing => Err(Needs::Nothing(Stop::Incomplete(id.client))),
        }
    }

    /// Where a type sits. `None` if it depends on something missing.
    fn type_place(&mut self, key: &TypeKey) -> Option<TypePlace> {
        // Walk up to a type whose place is known, then fill in the way back down.
        let mut chain: Vec<TypeKey> = Vec::new();
        let mut in_chain: HashSet<TypeKey> = HashSet::new();
        let mut current = key.clone();
        let mut top = loop {
            if let Some(known) = self.types.get(&current) {
                match known.clone() {
                    Some(place) => break place,
                    None => return self.missing_type(&chain),
                }
            }
            let id = match &current {
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
                TypeKey::Nested(id) => *id,
            };
            if !in_chain.insert(current.clone()) {
                return self.missing_type(&chain);
            }
            chain.push(current.clone());
            let parent = match self.find(&id) {
                Found::New(item) => match self.parents.get(item.id()) {
                    Some(Parent::In(parent, _)) => parent.clone(),
                    _ => break self.lost_type(&chain),
                },
                Found::Stored(item) => match item.parent_ref() {
                    ItemParent::Root(name) => TypeKey::Root(Arc::from(name)),
                    ItemParent::Nested(id) => TypeKey::Nested(id),
                    ItemParent::Unknown => break self.lost_type(&chain),
                },
                Found::Collected(_) => break self.lost_type(&chain),
                Found::Missing => return self.missing_type(&chain),
            };
            current = parent;
        };
        // `chain` runs from `key` up to the child of `top`.
        while let Some(child) = chain.pop() {
            let TypeKey::Nested(id) = &child else {
                continue;
            };
            if self.types.get(&child).is_some_and(Option::is_some) {
                top = self.types[&child].clone().unwrap_or(top);
                continue;
            }
            let (sub, deleted, created) = match self.find(id) {
                Found::New(item) => (
                    match self.parents.get(item.id()) {
                        Some(Parent::In(_, sub)) => sub.clone(),
                        _ => None,
                    },
                    self.deleted_here(id),
                    true,
                ),
                Found::Stored(item) => (
                    item.parent_sub().cloned(),
                    item.is_deleted() || self.deleted_here(id),
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

    /// A type whose holder was collected or lost: whatever lands in it is lost.
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

/// Records an item landing in `place` under `sub`, as the recorder would see it.
fn record_insert(predicted: &mut Predicted, place: &TypePlace, sub: Option<&Arc<str>>) {
    let [first, second, _] = &place.path;
    let (entry, field) = match place.depth {
        0 => (sub.cloned(), None),
        1 => (first.clone(), sub.cloned()),
        _ => (first.clone(), second.clone()),
    };
    predicted.changes.changes.insert(Change {
        place: Place {
            root: place.root.clone(),
            entry,
            field,
        },
        kind: ChangeKind::Insert,
    });
}

/// Records the deletion of an item in `place` under `sub`: a map's entry is removed,
/// anything deeper changes the field that holds it.
fn record_delete(predicted: &mut Predicted, place: &TypePlace, sub: Option<&Arc<str>>) {
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

/// The item's value if it is one plain string.
fn plain_string(item: &Item) -> Option<String> {
    match item.content() {
        ItemContent::Any(values) => match values.as_slice() {
            [Any::String(s)] => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}
