//! The document as stored, read from the database file itself, and what it holds.

use std::path::Path;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Row};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, ReadTxn, Snapshot, StateVector, Transact, Update};

/// The shared document of `conference` as the server loads it when it starts: the
/// snapshot, then every update logged after it, in order.
pub async fn load(database: &Path, conference: &str) -> Doc {
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the database opens");
    let snapshot = sqlx::query(
        "SELECT through_seq, data FROM document_snapshots WHERE conference_id = ? AND document = 'shared'",
    )
    .bind(conference)
    .fetch_optional(&mut db)
    .await
    .expect("the snapshot reads")
    .map(|row| (row.get::<i64, _>("through_seq"), row.get::<Vec<u8>, _>("data")));
    let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
    let updates: Vec<Vec<u8>> = sqlx::query(
        "SELECT data FROM document_updates
         WHERE conference_id = ? AND document = 'shared' AND seq > ? ORDER BY seq",
    )
    .bind(conference)
    .bind(after)
    .fetch_all(&mut db)
    .await
    .expect("the log reads")
    .into_iter()
    .map(|row| row.get("data"))
    .collect();
    db.close().await.expect("the database closes");

    from_parts(snapshot.iter().map(|(_, data)| data).chain(&updates))
}

/// A stored document made of its parts (the snapshot, then the updates after it),
/// checked whole: nothing in it waits for changes it lacks, and no client's changes
/// have a hole.
pub fn from_parts<'a>(parts: impl IntoIterator<Item = &'a Vec<u8>>) -> Doc {
    let doc = roundtable_shared::doc::new_document();
    {
        let mut txn = doc.transact_mut();
        for data in parts {
            let update = Update::decode_v1(data).expect("a stored update decodes");
            txn.apply_update(update).expect("a stored update applies");
        }
    }
    let pending = {
        let txn = doc.transact();
        txn.store().pending_update().is_some() || txn.store().pending_ds().is_some()
    };
    assert!(!pending, "the stored document depends on updates it lacks");
    if let Some((client, clock)) = roundtable_shared::gate::first_hole(&doc.transact()) {
        panic!("the stored document has a hole in the changes of {client} at {clock}");
    }
    doc
}

/// What `update` holds that the document of `stored` lacks, if anything: content it
/// inserted or deleted.
pub fn missing(stored: &Snapshot, update: &[u8]) -> Option<String> {
    let update = Update::decode_v1(update).expect("a received update decodes");
    for (client, ranges) in update.insertions(true).iter() {
        let have = stored.state_map.get(client);
        if let Some(range) = ranges.iter().find(|range| range.end > have) {
            return Some(format!(
                "inserted {client:?} {range:?}; the store has that client's changes up to {have}"
            ));
        }
    }
    let deleted = update.delete_set().diff(&stored.delete_set);
    (!deleted.is_empty()).then(|| format!("deleted {deleted}, which the store has not deleted"))
}

/// How `doc` differs from the stored document: the clients whose changes one side
/// holds further than the other, and any updates `doc` holds but could not integrate
/// (they wait for changes it lacks).
pub fn difference(stored: &Snapshot, doc: &Doc) -> String {
    let txn = doc.transact();
    let ours = txn.state_vector();
    let mut clients: Vec<ClientID> = ours
        .iter()
        .chain(stored.state_map.iter())
        .map(|(client, _)| *client)
        .collect();
    clients.sort_unstable();
    clients.dedup();
    let mut parts = Vec::new();
    for client in clients {
        let (here, there) = (ours.get(&client), stored.state_map.get(&client));
        if here < there {
            parts.push(format!("lacks {client} clocks {here}..{there}"));
        } else if here > there {
            parts.push(format!(
                "holds {client} clocks {there}..{here} the store lacks"
            ));
        }
    }
    if let Some(pending) = txn.store().pending_update() {
        let holds: Vec<String> = sorted(&pending.update.state_vector_lower())
            .zip(sorted(&pending.update.state_vector()))
            .map(|((client, from), (_, to))| format!("{client} {from}..{to}"))
            .collect();
        let missing: Vec<String> = sorted(&pending.missing)
            .map(|(client, clock)| format!("{client} up to {clock}"))
            .collect();
        parts.push(format!(
            "pending update holding [{}], waiting for [{}]",
            holds.join(", "),
            missing.join(", ")
        ));
    }
    if let Some(deletions) = txn.store().pending_ds() {
        parts.push(format!("pending deletions {deletions}"));
    }
    let deleted = stored.delete_set.diff(&txn.snapshot().delete_set);
    if !deleted.is_empty() {
        parts.push(format!("has not deleted {deleted}"));
    }
    if parts.is_empty() {
        "the same as the store".to_owned()
    } else {
        parts.join("; ")
    }
}

fn sorted(state: &StateVector) -> impl Iterator<Item = (ClientID, u32)> {
    let mut entries: Vec<(ClientID, u32)> = state.iter().map(|(c, k)| (*c, *k)).collect();
    entries.sort_unstable();
    entries.into_iter()
}
