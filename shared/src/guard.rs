//! Reading an incoming Yjs update, before it is applied, to tell which parts of the
//! document it would change.
//!
//! A Yjs update is a list of new blocks and a set of deleted ids. A block names its
//! parent explicitly (a root, or the block holding its parent type) or implicitly,
//! through the neighbour it was inserted after (its origin). [`DocumentIndex`]
//! remembers, for every block id the document holds, where it sits: the root, the
//! entry of that root's map, and the field of that entry's map ([`Place`]). With it,
//! every block and deletion of an update can be placed without applying the update,
//! so the server can refuse a forbidden update whole.
//!
//! The index must see every update the document integrates, in order: those from
//! clients and the server's own. [`DocumentIndex::read`] places an update without
//! changing anything; [`DocumentIndex::record`] adds it once it has been applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use yrs::encoding::read::{Cursor, Read};
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::{Any, ClientID, ID, IdSet};

/// Where a block sits in the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    /// The root type's name.
    pub root: Arc<str>,
    /// The key of the root map's entry that holds the block, if any.
    pub entry: Option<Arc<str>>,
    /// The key within that entry's map, if the block is inside one.
    pub field: Option<Arc<str>>,
}

/// Whether an update adds to or deletes from a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Insert,
    Delete,
}

/// One kind of change an update makes at one place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Change {
    pub place: Place,
    pub kind: ChangeKind,
}

/// A root-map entry that the update creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEntry {
    /// The entry's value is a map type (as every board item must be).
    pub is_map: bool,
    /// The `author` string written into the entry's map in the same update.
    pub author: Option<String>,
}

/// What an update would change, found by [`DocumentIndex::read`].
#[derive(Debug, Clone, Default)]
pub struct UpdateChanges {
    pub changes: BTreeSet<Change>,
    /// Root-map entries created by this update, by (root, entry key).
    pub new_entries: BTreeMap<(Arc<str>, Arc<str>), NewEntry>,
    /// Newly covered id ranges and where they sit (`None`: garbage-collected, inert).
    spans: Vec<(ClientID, u32, u32, Option<Place>)>,
}

impl UpdateChanges {
    /// Whether the update adds nothing the document does not already have.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.spans.is_empty()
    }
}

/// Why an update could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableUpdate {
    #[error("the update is not a valid Yjs update")]
    Malformed,
    #[error("the update uses a kind of content this document does not hold")]
    UnsupportedContent,
    #[error("the update depends on changes the server does not have; reload to continue")]
    MissingHistory,
}

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const GC: u8 = 0;
const SKIP: u8 = 10;

const TYPE_ARRAY: u8 = 0;
const TYPE_MAP: u8 = 1;
const TYPE_TEXT: u8 = 2;

#[derive(Debug)]
enum Parent {
    Root(Arc<str>),
    Block(ID),
    /// Taken from the origin or right origin, as Yjs does.
    Neighbour,
    /// A garbage-collected range: it holds nothing and sits nowhere.
    Collected,
}

#[derive(Debug)]
struct NewBlock {
    client: ClientID,
    clock: u32,
    len: u32,
    origin: Option<ID>,
    right_origin: Option<ID>,
    parent: Parent,
    parent_sub: Option<Arc<str>>,
    is_map: bool,
    /// The block's value when it is a single string (as `author` is).
    string: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    end: u32,
    place: Option<u32>,
}

/// Where every block of one document sits. See the module documentation.
#[derive(Debug, Default)]
pub struct DocumentIndex {
    places: Vec<Place>,
    place_ids: HashMap<Place, u32>,
    clients: HashMap<ClientID, BTreeMap<u32, Span>>,
}

/// Where a block was found while reading an update.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    At(Place),
    Inert,
}

impl DocumentIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many id ranges the index holds (a measure of its size).
    pub fn span_count(&self) -> usize {
        self.clients.values().map(BTreeMap::len).sum()
    }

    /// The next clock the document expects from `client`.
    fn known_end(&self, client: ClientID) -> u32 {
        self.clients
            .get(&client)
            .and_then(|spans| spans.last_key_value())
            .map_or(0, |(_, span)| span.end)
    }

    fn lookup(&self, id: &ID) -> Option<Found> {
        let spans = self.clients.get(&id.client)?;
        let (_, span) = spans.range(..=id.clock).next_back()?;
        if id.clock >= span.end {
            return None;
        }
        Some(match span.place {
            Some(p) => Found::At(self.places[p as usize].clone()),
            None => Found::Inert,
        })
    }

    /// Places every change of a v1-encoded update, without applying it.
    pub fn read(&self, update: &[u8]) -> Result<UpdateChanges, UnreadableUpdate> {
        let (blocks, deleted) = parse(update)?;
        let mut changes = UpdateChanges::default();

        // Blocks the document already has are skipped; a block may be partly new.
        let mut pending: Vec<NewBlock> = Vec::new();
        let mut covered: HashMap<ClientID, u32> = HashMap::new();
        for block in blocks {
            let end_known = *covered
                .entry(block.client)
                .or_insert_with(|| self.known_end(block.client));
            let block_end = block.clock + block.len;
            if block_end <= end_known {
                continue;
            }
            if block.clock > end_known {
                return Err(UnreadableUpdate::MissingHistory);
            }
            covered.insert(block.client, block_end);
            pending.push(block);
        }

        // Resolve places; origins may point at other blocks of this update, in any order.
        let mut placed: HashMap<ClientID, BTreeMap<u32, (u32, Found)>> = HashMap::new();
        let find = |placed: &HashMap<ClientID, BTreeMap<u32, (u32, Found)>>, id: &ID| {
            if let Some((_, (end, found))) = placed
                .get(&id.client)
                .and_then(|m| m.range(..=id.clock).next_back())
                && id.clock < *end
            {
                return Some(found.clone());
            }
            self.lookup(id)
        };
        let mut new_entry_blocks: HashMap<ID, (Arc<str>, Arc<str>)> = HashMap::new();
        while !pending.is_empty() {
            let before = pending.len();
            let mut unresolved = Vec::new();
            for block in pending {
                let found = match &block.parent {
                    Parent::Collected => Some(Found::Inert),
                    Parent::Root(name) => Some(Found::At(Place {
                        root: name.clone(),
                        entry: block.parent_sub.clone(),
                        field: None,
                    })),
                    Parent::Block(id) => find(&placed, id).map(|parent| match parent {
                        Found::Inert => Found::Inert,
                        Found::At(p) if p.entry.is_some() && p.field.is_none() => {
                            Found::At(Place {
                                field: block.parent_sub.clone(),
                                ..p
                            })
                        }
                        Found::At(p) => Found::At(p),
                    }),
                    Parent::Neighbour => {
                        let left = block.origin.as_ref().map(|id| find(&placed, id));
                        let right = block.right_origin.as_ref().map(|id| find(&placed, id));
                        match (left, right) {
                            (Some(None), _) | (_, Some(None)) => None,
                            (Some(Some(Found::Inert)), _) | (_, Some(Some(Found::Inert))) => {
                                Some(Found::Inert)
                            }
                            (Some(Some(found)), _) => Some(found),
                            (None, Some(Some(found))) => Some(found),
                            (None, None) => return Err(UnreadableUpdate::Malformed),
                        }
                    }
                };
                let Some(found) = found else {
                    unresolved.push(block);
                    continue;
                };
                if let Found::At(place) = &found {
                    changes.changes.insert(Change {
                        place: place.clone(),
                        kind: ChangeKind::Insert,
                    });
                    let id = ID::new(block.client, block.clock);
                    match (&block.parent, &place.entry, &place.field) {
                        // A new value for a root map's key: placed explicitly, or after
                        // the value it replaces.
                        (Parent::Root(_) | Parent::Neighbour, Some(entry), None) => {
                            let root = place.root.clone();
                            new_entry_blocks.insert(id, (root.clone(), entry.clone()));
                            changes.new_entries.insert(
                                (root, entry.clone()),
                                NewEntry {
                                    is_map: block.is_map,
                                    author: None,
                                },
                            );
                        }
                        (Parent::Block(parent), _, Some(field))
                            if field.as_ref() == crate::doc::item::AUTHOR =>
                        {
                            if let Some(key) = new_entry_blocks.get(parent)
                                && let Some(entry) = changes.new_entries.get_mut(key)
                            {
                                entry.author = block.string.clone();
                            }
                        }
                        _ => {}
                    }
                }
                let place = match found {
                    Found::At(p) => Some(p),
                    Found::Inert => None,
                };
                placed.entry(block.client).or_default().insert(
                    block.clock,
                    (
                        block.clock + block.len,
                        place.clone().map_or(Found::Inert, Found::At),
                    ),
                );
                changes
                    .spans
                    .push((block.client, block.clock, block.clock + block.len, place));
            }
            if unresolved.len() == before {
                return Err(UnreadableUpdate::MissingHistory);
            }
            pending = unresolved;
        }

        // Deletions: every deleted id must be known, here or in this update.
        for (client, ranges) in deleted {
            for range in ranges {
                let mut clock = range.start;
                while clock < range.end {
                    let id = ID::new(client, clock);
                    let (found, end) = if let Some((_, (end, found))) = placed
                        .get(&client)
                        .and_then(|m| m.range(..=clock).next_back())
                        .filter(|(_, (end, _))| clock < *end)
                    {
                        (found.clone(), *end)
                    } else {
                        let spans = self.clients.get(&client);
                        let span = spans
                            .and_then(|s| s.range(..=clock).next_back())
                            .filter(|(_, span)| clock < span.end)
                            .ok_or(UnreadableUpdate::MissingHistory)?;
                        let found = self.lookup(&id).ok_or(UnreadableUpdate::MissingHistory)?;
                        (found, span.1.end)
                    };
                    if let Found::At(place) = found {
                        changes.changes.insert(Change {
                            place,
                            kind: ChangeKind::Delete,
                        });
                    }
                    clock = end.min(range.end).max(clock + 1);
                }
            }
        }
        Ok(changes)
    }

    /// Adds an applied update's blocks to the index.
    pub fn record(&mut self, changes: &UpdateChanges) {
        for (client, start, end, place) in &changes.spans {
            let place = place.as_ref().map(|p| self.intern(p));
            let known = self.known_end(*client);
            let start = (*start).max(known);
            if start >= *end {
                continue;
            }
            let spans = self.clients.entry(*client).or_default();
            if let Some(mut last) = spans.last_entry()
                && last.get().end == start
                && last.get().place == place
            {
                last.get_mut().end = *end;
                continue;
            }
            spans.insert(start, Span { end: *end, place });
        }
    }

    fn intern(&mut self, place: &Place) -> u32 {
        if let Some(id) = self.place_ids.get(place) {
            return *id;
        }
        let id = self.places.len() as u32;
        self.places.push(place.clone());
        self.place_ids.insert(place.clone(), id);
        id
    }
}

type DeleteSet = Vec<(ClientID, Vec<std::ops::Range<u32>>)>;

/// Decodes the blocks and delete set of a v1 update, as yrs does, keeping what we need.
fn parse(update: &[u8]) -> Result<(Vec<NewBlock>, DeleteSet), UnreadableUpdate> {
    // yrs must accept the update too; this also bounds what the loop below can meet.
    let whole = yrs::Update::decode_v1(update).map_err(|_| UnreadableUpdate::Malformed)?;
    let mut decoder = DecoderV1::new(Cursor::new(update));
    let malformed = |_| UnreadableUpdate::Malformed;
    let mut blocks = Vec::new();
    let clients: u32 = decoder.read_var().map_err(malformed)?;
    for _ in 0..clients {
        let count: u32 = decoder.read_var().map_err(malformed)?;
        let client = decoder.read_client().map_err(malformed)?;
        let mut clock: u32 = decoder.read_var().map_err(malformed)?;
        for _ in 0..count {
            let info = decoder.read_info().map_err(malformed)?;
            match info {
                SKIP => {
                    let len: u32 = decoder.read_var().map_err(malformed)?;
                    clock += len;
                }
                GC => {
                    let len = decoder.read_len().map_err(malformed)?;
                    blocks.push(NewBlock {
                        client,
                        clock,
                        len,
                        origin: None,
                        right_origin: None,
                        parent: Parent::Collected,
                        parent_sub: None,
                        is_map: false,
                        string: None,
                    });
                    clock += len;
                }
                info => {
                    let block = read_item(&mut decoder, info, client, clock)?;
                    clock += block.len;
                    blocks.push(block);
                }
            }
        }
    }
    let deleted = IdSet::decode(&mut decoder).map_err(malformed)?;
    let deleted: DeleteSet = deleted
        .iter()
        .map(|(client, ranges)| (*client, ranges.iter().cloned().collect()))
        .collect();
    // Our reading must agree with yrs' about which ids the update inserts.
    let mut ours = IdSet::new();
    for b in &blocks {
        ours.insert(ID::new(b.client, b.clock), b.len);
    }
    if ours != whole.insertions(true) {
        return Err(UnreadableUpdate::Malformed);
    }
    Ok((blocks, deleted))
}

fn read_item(
    decoder: &mut DecoderV1<'_>,
    info: u8,
    client: ClientID,
    clock: u32,
) -> Result<NewBlock, UnreadableUpdate> {
    let malformed = |_| UnreadableUpdate::Malformed;
    let origin = if info & HAS_ORIGIN != 0 {
        Some(decoder.read_left_id().map_err(malformed)?)
    } else {
        None
    };
    let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
        Some(decoder.read_right_id().map_err(malformed)?)
    } else {
        None
    };
    let explicit_parent = info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0;
    let parent = if explicit_parent {
        if decoder.read_parent_info().map_err(malformed)? {
            Parent::Root(Arc::from(decoder.read_string().map_err(malformed)?))
        } else {
            Parent::Block(decoder.read_left_id().map_err(malformed)?)
        }
    } else {
        Parent::Neighbour
    };
    let parent_sub = if explicit_parent && info & HAS_PARENT_SUB != 0 {
        Some(Arc::from(decoder.read_string().map_err(malformed)?))
    } else {
        None
    };
    let mut is_map = false;
    let mut string = None;
    let len = match info & 0b1111 {
        1 => decoder.read_len().map_err(malformed)?,
        2 => {
            let count = decoder.read_len().map_err(malformed)?;
            for _ in 0..=count {
                decoder.read_string().map_err(malformed)?;
            }
            count
        }
        3 => {
            decoder.read_buf().map_err(malformed)?;
            1
        }
        4 => {
            let s = decoder.read_string().map_err(malformed)?;
            // Yjs counts text in UTF-16 code units.
            s.encode_utf16().count() as u32
        }
        5 => {
            decoder.read_json().map_err(malformed)?;
            1
        }
        6 => {
            decoder.read_key().map_err(malformed)?;
            decoder.read_json().map_err(malformed)?;
            1
        }
        7 => {
            match decoder.read_type_ref().map_err(malformed)? {
                TYPE_MAP => is_map = true,
                TYPE_ARRAY | TYPE_TEXT => {}
                _ => return Err(UnreadableUpdate::UnsupportedContent),
            }
            1
        }
        8 => {
            let count = decoder.read_len().map_err(malformed)?;
            for i in 0..count {
                let value = decoder.read_any().map_err(malformed)?;
                if count == 1
                    && i == 0
                    && let Any::String(s) = value
                {
                    string = Some(s.to_string());
                }
            }
            count
        }
        _ => return Err(UnreadableUpdate::UnsupportedContent),
    };
    if len == 0 {
        return Err(UnreadableUpdate::Malformed);
    }
    Ok(NewBlock {
        client,
        clock,
        len,
        origin,
        right_origin,
        parent,
        parent_sub,
        is_map,
        string,
    })
}
