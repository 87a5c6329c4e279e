//! The document as stored, read from the database file itself, and what it holds.

use std::path::Path;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Row};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Snapshot, Transact, Update};

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

    let doc = roundtable_shared::doc::new_document();
    {
        let mut txn = doc.transact_mut();
        for data in snapshot.iter().map(|(_, data)| data).chain(&updates) {
            let update = Update::decode_v1(data).expect("a stored update decodes");
            txn.apply_update(update).expect("a stored update applies");
        }
    }
    let pending = {
        let txn = doc.transact();
        txn.store().pending_update().is_some() || txn.store().pending_ds().is_some()
    };
    assert!(!pending, "the stored document depends on updates it lacks");
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
