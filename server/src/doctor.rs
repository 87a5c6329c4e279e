//! `roundtable doctor`: replays stored documents and says which are not sound.
//!
//! For each document it reads every stored row and checks that each update is a
//! well-formed Yjs update (`roundtable_shared::wire`), that the snapshot and the updates
//! after it make a document (as the server loads it) that holds every stored update,
//! with nothing left pending and no hole in any client's changes, and that the snapshot
//! holds what replaying the log up to it holds. Updates quarantined when the document
//! would not load (`sync/room.rs`) are named as such, and otherwise left out.

use roundtable_shared::doc::DocumentKind;
use roundtable_shared::gate::{Gate, first_hole};
use roundtable_shared::{ConferenceId, wire};
use yrs::block::BlockView;
use yrs::types::ToJson;
use yrs::{Doc, ReadTxn, Transact};

use crate::storage::{Storage, StorageError};

/// What was found wrong with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub conference: ConferenceId,
    pub kind: DocumentKind,
    pub problem: String,
}

/// Examines every stored document, or those of one conference.
pub async fn examine(
    storage: &Storage,
    only: Option<ConferenceId>,
) -> Result<(usize, Vec<Finding>), StorageError> {
    let mut documents = storage.stored_documents().await?;
    if let Some(only) = only {
        documents.retain(|(conference, _)| *conference == only);
    }
    let mut findings = Vec::new();
    for (conference, kind) in &documents {
        for problem in examine_one(storage, *conference, *kind).await? {
            findings.push(Finding {
                conference: *conference,
                kind: *kind,
                problem,
            });
        }
    }
    Ok((documents.len(), findings))
}

async fn examine_one(
    storage: &Storage,
    conference: ConferenceId,
    kind: DocumentKind,
) -> Result<Vec<String>, StorageError> {
    let stored = storage.load_document(conference, kind).await?;
    let log = storage.document_log(conference, kind).await?;
    let quarantined = storage.quarantined(conference, kind).await?;
    let mut problems = Vec::new();
    for (seq, data) in &log {
        if quarantined.iter().any(|(q, _)| q == seq) {
            continue;
        }
        if let Err(why) = wire::check_update(data) {
            problems.push(format!("update {seq}: {why}"));
        }
    }
    if !problems.is_empty() {
        return Ok(problems);
    }
    let parts = stored
        .snapshot
        .iter()
        .chain(&stored.updates)
        .map(|(_, data)| data.as_slice());
    let loaded = match Gate::load(parts) {
        Ok(loaded) => loaded,
        Err(e) => return Ok(vec![format!("it does not load: {e}")]),
    };
    for (seq, why) in &quarantined {
        problems.push(format!(
            "update {seq} is quarantined (left out of the document): {why}"
        ));
    }
    let txn = loaded.doc().transact();
    let state = txn.state_vector();
    for (seq, data) in &log {
        if quarantined.iter().any(|(q, _)| q == seq) {
            continue;
        }
        let Ok(update) = <yrs::Update as yrs::updates::decoder::Decode>::decode_v1(data) else {
            problems.push(format!("update {seq} does not decode"));
            continue;
        };
        let integrated = update.blocks().all(|block| {
            let (client, end) = match block {
                BlockView::Item(item) => (item.id().client, item.id().clock + item.len()),
                BlockView::GC(range) | BlockView::Skip(range) => (range.client, range.clock),
            };
            state.get(&client) >= end
        });
        if !integrated {
            problems.push(format!(
                "update {seq} is not in the document it loads into: it depends on changes that are not stored"
            ));
        }
    }
    if txn.has_missing_updates() {
        problems.push("it holds changes that depend on changes it lacks".into());
    }
    if let Some((client, clock)) = first_hole(&txn) {
        problems.push(format!(
            "client {client} has changes after a hole in them, at {clock}"
        ));
    }
    if let Some((through, _)) = &stored.snapshot {
        let replayed = Gate::load(
            log.iter()
                .take_while(|(seq, _)| seq <= through)
                .filter(|(seq, _)| !quarantined.iter().any(|(q, _)| q == seq))
                .map(|(_, data)| data.as_slice()),
        );
        let snapshot = Gate::load(stored.snapshot.iter().map(|(_, data)| data.as_slice()));
        match (replayed, snapshot) {
            (Ok(replayed), Ok(snapshot)) => {
                if content(replayed.doc()) != content(snapshot.doc()) {
                    problems.push(format!(
                        "the snapshot through update {through} differs from the log replayed to it"
                    ));
                }
            }
            (Err(e), _) => problems.push(format!("the log to the snapshot does not load: {e}")),
            (_, Err(e)) => problems.push(format!("the snapshot does not load: {e}")),
        }
    }
    Ok(problems)
}

/// What each root of a document holds (by name), and the state it has reached.
type Content = (Vec<(String, yrs::Any)>, Vec<(u64, u32)>);

/// What each root of a document holds, and the state it has reached.
fn content(doc: &Doc) -> Content {
    let txn = doc.transact();
    let names: Vec<String> = txn.root_refs().map(|(name, _)| name.to_owned()).collect();
    let mut roots: Vec<(String, yrs::Any)> = names
        .into_iter()
        .filter_map(|name| {
            let json = txn.get_map(name.as_str())?.to_json(&txn);
            Some((name, json))
        })
        .collect();
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    let mut state: Vec<(u64, u32)> = txn
        .state_vector()
        .iter()
        .map(|(client, clock)| (client.get(), *clock))
        .collect();
    state.sort();
    (roots, state)
}
