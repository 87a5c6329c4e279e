//! The storage operations sync depends on — appending to a document's log, loading
//! it, compacting it into a snapshot, quarantining what does not load — on SQLite and
//! on PostgreSQL: each engine does what the seam promises, and the two agree, step
//! by step.
//!
//! PostgreSQL is the cluster at `ROUNDTABLE_TEST_DATABASE_URL` (`scripts/test.sh`
//! always starts one); without it only SQLite is checked, and the test says so.

#[allow(dead_code)]
#[path = "api/database.rs"]
mod database;

use database::{Engine, TestDatabase, postgres_available, writing};
use std::sync::Arc;
use std::time::Duration;

use roundtable_server::storage::nodes::Notice;
use roundtable_server::storage::{
    self, AuditEvent, ChairRow, ConferenceRow, Fence, ForwardVerdict, Location, ParticipantRow,
    Storage, StorageError, StoredDocument,
};
use roundtable_shared::doc::DocumentKind;
use roundtable_shared::{
    ChairId, ConferenceId, ConferenceKind, ParticipantId, ParticipantStatus, Phase, Role,
};

/// A conference with one participant, to hang documents on.
struct Conference {
    id: ConferenceId,
    nurse: ParticipantId,
}

async fn conference(storage: &Storage) -> Conference {
    let chair = ChairId(uuid::Uuid::new_v4());
    storage
        .insert_chair(&ChairRow {
            id: chair,
            email: format!("{chair}@example.org"),
            name: "Sam Chair".into(),
            password_hash: "not a real hash".into(),
        })
        .await
        .unwrap();
    let id = ConferenceId(uuid::Uuid::new_v4());
    let nurse = ParticipantId(uuid::Uuid::new_v4());
    let row = ConferenceRow {
        id,
        chair_id: chair,
        title: "Initial child protection conference".into(),
        kind: ConferenceKind::Initial,
        scheduled_start: "2026-12-01T10:00:00+00:00".into(),
        headings: "default".into(),
        children_json: "[]".into(),
        phase: Phase::PreMeet,
        room_code: id.to_string(),
        closed_at: None,
        core_group_by: None,
        review_by: None,
    };
    let participant = ParticipantRow {
        id: nurse,
        conference_id: id,
        name: "Pat Nurse".into(),
        role: Some(Role::Professional),
        agency: Some("Health visiting".into()),
        status: ParticipantStatus::Invited,
        link_expires_at: None,
        chair_id: None,
    };
    storage
        .insert_conference(
            &row,
            &[(participant, None)],
            &event(id, "conference_created"),
        )
        .await
        .unwrap();
    Conference { id, nurse }
}

fn event(conference: ConferenceId, action: &'static str) -> AuditEvent {
    AuditEvent {
        conference,
        actor: None,
        action,
        detail: serde_json::json!({}),
    }
}

/// What a loaded document holds, to compare: (snapshot, updates, last seq).
type Loaded = (Option<(i64, Vec<u8>)>, Vec<(i64, Vec<u8>)>, i64);

fn loaded(document: StoredDocument) -> Loaded {
    (document.snapshot, document.updates, document.last_seq)
}

/// Bytes as an update might hold them: every byte value, and a large one (a snapshot
/// of a long meeting) in pieces of a pattern.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Runs the operations sync uses on `storage`, checking each answer against what the
/// seam promises; returns every answer, to compare with the other engine's.
async fn exercise(storage: &Storage) -> Vec<String> {
    let c = conference(storage).await;
    let shared = DocumentKind::Shared;
    let restricted = DocumentKind::Restricted;
    let mut transcript = Vec::new();
    let mut note = |step: &str, what: String| transcript.push(format!("{step}: {what}"));

    // Written as a tool would while no node has the documents open.
    let shared_writing = writing(storage, c.id, shared).await;
    let restricted_writing = writing(storage, c.id, restricted).await;
    let (fence, restricted_fence) = (shared_writing.fence(), restricted_writing.fence());

    let empty = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(empty, (None, vec![], 0));
    note("empty", format!("{empty:?}"));

    // A batch of the nurse's updates and one of the server's own.
    let (one, two, three) = (bytes(1, 40), bytes(2, 256), bytes(3, 1));
    storage
        .append_updates(
            c.id,
            shared,
            fence,
            &[
                (1, Some(c.nurse), &one),
                (2, None, &two),
                (3, Some(c.nurse), &three),
            ],
            &[(11, c.nurse), (u64::MAX, c.nurse)],
            &[],
        )
        .await
        .unwrap();
    // The client ids claimed come back with the document, all 64 bits of them.
    let mut clients = storage.load_document(c.id, shared).await.unwrap().clients;
    clients.sort();
    assert_eq!(clients, [(11, c.nurse), (u64::MAX, c.nurse)]);
    let ids: Vec<u64> = clients.iter().map(|(client, _)| *client).collect();
    note("claims", format!("{ids:?}"));
    let after_batch = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(
        after_batch,
        (
            None,
            vec![(1, one.clone()), (2, two.clone()), (3, three.clone())],
            3
        )
    );
    note("batch", format!("{after_batch:?}"));

    // A batch with a sequence number already taken is stored not at all, and is not
    // the database being unavailable.
    let refused = storage
        .append_updates(
            c.id,
            shared,
            fence,
            &[
                (4, Some(c.nurse), &one),
                (3, Some(c.nurse), &two),
                (5, None, &three),
            ],
            &[(12, c.nurse)],
            &[],
        )
        .await
        .expect_err("seq 3 is taken");
    assert!(!refused.is_unavailable(), "{refused}");
    let after_refusal = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(after_refusal, after_batch, "nothing of the refused batch");
    let clients = storage.load_document(c.id, shared).await.unwrap().clients;
    assert_eq!(clients.len(), 2, "nor its claims: {clients:?}");
    note("refused batch", format!("{after_refusal:?}"));

    // Sequence numbers are per document: the restricted one starts at 1 too.
    let secret = bytes(9, 64);
    storage
        .append_updates(
            c.id,
            restricted,
            restricted_fence,
            &[(1, Some(c.nurse), &secret)],
            &[],
            &[],
        )
        .await
        .unwrap();
    let other = loaded(storage.load_document(c.id, restricted).await.unwrap());
    assert_eq!(other, (None, vec![(1, secret.clone())], 1));
    note("restricted", format!("{other:?}"));

    // A snapshot through 3; the update after it still loads after it.
    let four = bytes(4, 17);
    storage
        .append_updates(c.id, shared, fence, &[(4, Some(c.nurse), &four)], &[], &[])
        .await
        .unwrap();
    let snapshot = bytes(7, 3 << 20);
    storage
        .write_snapshot(c.id, shared, fence, 3, &snapshot)
        .await
        .unwrap();
    let compacted = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(
        compacted,
        (Some((3, snapshot.clone())), vec![(4, four.clone())], 4)
    );
    note("snapshot", summary(&compacted));

    // Quarantined, update 4 no longer loads, but stays in the log and still counts
    // for the next number; quarantining it again changes nothing.
    for _ in 0..2 {
        storage
            .quarantine(
                c.id,
                shared,
                fence,
                &[(4, "it depends on changes that are not stored".into())],
                &event(c.id, "document_quarantined"),
            )
            .await
            .unwrap();
    }
    let without = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(without, (Some((3, snapshot.clone())), vec![], 4));
    note("quarantined", summary(&without));
    let quarantined = storage.quarantined(c.id, shared).await.unwrap();
    assert_eq!(
        quarantined,
        [(4, "it depends on changes that are not stored".to_owned())]
    );
    note("quarantine", format!("{quarantined:?}"));
    let log = storage.document_log(c.id, shared).await.unwrap();
    let seqs: Vec<i64> = log.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "the log keeps every update");
    note("log", format!("{log:?}"));
    let audit: Vec<String> = storage
        .audit_events(c.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        audit,
        [
            "conference_created",
            "document_quarantined",
            "document_quarantined"
        ]
    );
    note("audit", format!("{audit:?}"));

    // Appending goes on after the quarantined update; a new snapshot replaces the old.
    let five = bytes(5, 9);
    storage
        .append_updates(c.id, shared, fence, &[(5, None, &five)], &[], &[])
        .await
        .unwrap();
    let resumed = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(resumed, (Some((3, snapshot.clone())), vec![(5, five)], 5));
    note("resumed", summary(&resumed));
    let whole = bytes(8, 1000);
    storage
        .write_snapshot(c.id, shared, fence, 5, &whole)
        .await
        .unwrap();
    let recompacted = loaded(storage.load_document(c.id, shared).await.unwrap());
    assert_eq!(recompacted, (Some((5, whole)), vec![], 5));
    note("recompacted", format!("{recompacted:?}"));

    let documents = storage.stored_documents().await.unwrap();
    assert_eq!(documents, [(c.id, restricted), (c.id, shared)]);
    let senders = storage.bytes_by_sender(c.id, shared).await.unwrap();
    assert_eq!(senders, [(c.nurse, one.len() + three.len() + four.len())]);
    note(
        "by sender",
        format!("{:?}", senders.iter().map(|(_, n)| n).collect::<Vec<_>>()),
    );
    shared_writing.done().await;
    restricted_writing.done().await;
    transcript
}

/// A loaded document with its snapshot's bytes summed up (its seq, length and sum):
/// a transcript holds no 3 MiB line.
fn summary(loaded: &Loaded) -> String {
    let snapshot = loaded.0.as_ref().map(|(seq, data)| {
        let sum: u64 = data.iter().map(|b| u64::from(*b)).sum();
        (*seq, data.len(), sum)
    });
    format!("{snapshot:?}, {:?}, {}", loaded.1, loaded.2)
}

#[tokio::test]
async fn both_engines_append_load_compact_and_quarantine_documents_alike() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Storage::open(&Location::Sqlite(dir.path().join("roundtable.sqlite3")))
        .await
        .unwrap();
    let on_sqlite = exercise(&sqlite).await;
    sqlite.close().await;

    if !postgres_available() {
        eprintln!(
            "PostgreSQL not checked: ROUNDTABLE_TEST_DATABASE_URL is unset (scripts/test.sh sets it)"
        );
        return;
    }
    let database = TestDatabase::create_on(Engine::Postgres).await;
    let url = database.url().expect("a PostgreSQL URL");
    let postgres = Storage::open(&Location::Postgres(url)).await.unwrap();
    let on_postgres = exercise(&postgres).await;
    postgres.close().await;
    assert_eq!(on_sqlite, on_postgres);
}

#[tokio::test]
async fn a_postgresql_server_out_of_reach_is_the_database_being_unavailable() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://rt@127.0.0.1:{port}/roundtable");
    let error = match Storage::open(&Location::Postgres(url)).await {
        Ok(_) => panic!("nothing listens on port {port}"),
        Err(error) => error,
    };
    assert!(error.is_unavailable(), "{error}");
}

/// A fresh PostgreSQL database with a conference in it, or `None` (and why) if there
/// is no cluster to test on.
async fn on_postgres() -> Option<(TestDatabase, Storage, Conference)> {
    if !postgres_available() {
        eprintln!("not checked: ROUNDTABLE_TEST_DATABASE_URL is unset (scripts/test.sh sets it)");
        return None;
    }
    let database = TestDatabase::create_on(Engine::Postgres).await;
    let url = database.url().expect("a PostgreSQL URL");
    let storage = Storage::open(&Location::Postgres(url)).await.unwrap();
    let c = conference(&storage).await;
    Some((database, storage, c))
}

/// Waits until PostgreSQL's clock has passed a lease that lasts `lifetime`.
async fn outlive(lifetime: Duration) {
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_document_has_one_owner_and_a_write_under_a_lease_lost_writes_nothing() {
    let Some((_database, storage, c)) = on_postgres().await else {
        return;
    };
    let nodes = storage.nodes().expect("PostgreSQL has nodes");
    let key = (c.id, DocumentKind::Shared);
    let (a, b): (Arc<str>, Arc<str>) = ("node-a".into(), "node-b".into());
    let short = Duration::from_millis(400);

    let first = nodes.acquire(key, &a, short).await.unwrap().expect("free");
    assert_eq!(first.epoch, 1);
    assert!(
        nodes.acquire(key, &b, short).await.unwrap().is_none(),
        "held by a"
    );
    let update = bytes(1, 10);
    storage
        .append_updates(
            c.id,
            key.1,
            Fence::Lease(&first),
            &[(1, None, &update)],
            &[],
            &[],
        )
        .await
        .unwrap();
    // Without a lease, nothing is written on a database nodes share.
    let unfenced = storage
        .append_updates(c.id, key.1, Fence::Alone, &[(2, None, &update)], &[], &[])
        .await;
    assert!(
        matches!(unfenced, Err(StorageError::NotOwner)),
        "{unfenced:?}"
    );

    // Renewed, the lease outlives its first lifetime.
    assert_eq!(nodes.renew(&a, &[(key, 1)], short).await.unwrap(), [key]);
    tokio::time::sleep(short / 2).await;
    assert_eq!(nodes.renew(&a, &[(key, 1)], short).await.unwrap(), [key]);
    tokio::time::sleep(short / 2).await;
    assert!(
        nodes.acquire(key, &b, short).await.unwrap().is_none(),
        "still a's"
    );

    // Expired, it is no one's: even its holder's writes are refused, though nobody has
    // taken it over, and it cannot be renewed.
    outlive(short).await;
    let late = storage
        .append_updates(
            c.id,
            key.1,
            Fence::Lease(&first),
            &[(2, None, &update)],
            &[],
            &[],
        )
        .await;
    assert!(matches!(late, Err(StorageError::NotOwner)), "{late:?}");
    assert!(
        nodes
            .renew(&a, &[(key, 1)], short)
            .await
            .unwrap()
            .is_empty()
    );

    // Taken over, at the next epoch: the old owner writes nothing at all.
    let second = nodes
        .acquire(key, &b, short)
        .await
        .unwrap()
        .expect("expired");
    assert_eq!(second.epoch, 2);
    let fenced = [
        storage
            .append_updates(
                c.id,
                key.1,
                Fence::Lease(&first),
                &[(2, None, &update)],
                &[(5, c.nurse)],
                &[],
            )
            .await,
        storage
            .write_snapshot(c.id, key.1, Fence::Lease(&first), 1, &update)
            .await,
        storage
            .quarantine(
                c.id,
                key.1,
                Fence::Lease(&first),
                &[(1, "no".into())],
                &event(c.id, "document_quarantined"),
            )
            .await,
    ];
    for result in fenced {
        assert!(matches!(result, Err(StorageError::NotOwner)), "{result:?}");
    }
    let stored = storage.load_document(c.id, key.1).await.unwrap();
    assert_eq!(loaded(stored), (None, vec![(1, update.clone())], 1));
    assert!(storage.quarantined(c.id, key.1).await.unwrap().is_empty());
    storage
        .append_updates(
            c.id,
            key.1,
            Fence::Lease(&second),
            &[(2, None, &update)],
            &[],
            &[],
        )
        .await
        .unwrap();

    // Given up, it can be taken at once, and the epoch goes on rising.
    nodes.give_up(&b, &[(key, 2)]).await.unwrap();
    let third = nodes
        .acquire(key, &a, short)
        .await
        .unwrap()
        .expect("given up");
    assert_eq!(third.epoch, 3);
    // The other document's lease is its own.
    let other = nodes
        .acquire((c.id, DocumentKind::Restricted), &b, short)
        .await
        .unwrap()
        .expect("free");
    assert_eq!(other.epoch, 1);
    storage.close().await;
}

#[tokio::test]
async fn a_forwarded_update_gets_the_owners_verdict_with_the_write_that_stores_it() {
    let Some((_database, storage, c)) = on_postgres().await else {
        return;
    };
    let nodes = storage.nodes().expect("PostgreSQL has nodes");
    let key = (c.id, DocumentKind::Shared);
    let (owner, follower): (Arc<str>, Arc<str>) = ("owner".into(), "follower".into());
    let mut listener = nodes.listener().await.unwrap();
    let lease = nodes
        .acquire(key, &owner, Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free");

    let (good, bad) = (bytes(1, 12), bytes(2, 12));
    let ids = nodes
        .forward(
            key,
            &follower,
            &[
                (7, Some((c.nurse, Role::Professional)), &good),
                // The server's own change, made where a command was handled.
                (0, None, &bad),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    let notice = |n: sqlx::postgres::PgNotification| Notice::parse(n.payload());
    assert_eq!(
        notice(listener.recv().await.unwrap()),
        Some(Notice::Forwarded(key))
    );

    let waiting = nodes.waiting(key, 0, 10).await.unwrap();
    let seen: Vec<_> = waiting
        .iter()
        .map(|f| {
            (
                f.id,
                f.node.as_str(),
                f.connection,
                f.sender,
                f.data.clone(),
            )
        })
        .collect();
    let nurse = Some((c.nurse, Role::Professional));
    assert_eq!(
        seen,
        [
            (ids[0], "follower", 7, nurse, good.clone()),
            (ids[1], "follower", 0, None, bad.clone()),
        ]
    );
    let statuses = nodes.status(&follower, &[key]).await.unwrap();
    assert!(statuses[0].leased && statuses[0].waiting && !statuses[0].answered);
    assert_eq!(statuses[0].last_seq, 0);

    // A write under a lost lease stores no verdict either.
    let stale = storage::Lease {
        node: owner.clone(),
        epoch: lease.epoch - 1,
    };
    let refused = storage
        .append_updates(
            c.id,
            key.1,
            Fence::Lease(&stale),
            &[(1, Some(c.nurse), &good)],
            &[],
            &[(ids[0], ForwardVerdict::Accepted(1))],
        )
        .await;
    assert!(
        matches!(refused, Err(StorageError::NotOwner)),
        "{refused:?}"
    );
    assert_eq!(nodes.waiting(key, 0, 10).await.unwrap().len(), 2);

    let reason = "you may not change this".to_owned();
    storage
        .append_updates(
            c.id,
            key.1,
            Fence::Lease(&lease),
            &[(1, Some(c.nurse), &good)],
            &[],
            &[
                (ids[0], ForwardVerdict::Accepted(1)),
                (ids[1], ForwardVerdict::Refused(reason.clone())),
            ],
        )
        .await
        .unwrap();
    let mut heard = vec![
        notice(listener.recv().await.unwrap()),
        notice(listener.recv().await.unwrap()),
    ];
    heard.sort_by_key(|n| format!("{n:?}"));
    assert_eq!(
        heard,
        [Some(Notice::Answered(key)), Some(Notice::Updates(key, 1))]
    );
    assert!(nodes.waiting(key, 0, 10).await.unwrap().is_empty());
    let statuses = nodes.status(&follower, &[key]).await.unwrap();
    assert!(!statuses[0].waiting && statuses[0].answered);
    assert_eq!(statuses[0].last_seq, 1);
    assert!(
        nodes
            .take_verdicts(key, &owner, &ids)
            .await
            .unwrap()
            .is_empty(),
        "not the owner's"
    );
    // Each verdict is taken by the one waiting for it, once.
    let second = nodes
        .take_verdicts(key, &follower, &ids[1..])
        .await
        .unwrap();
    assert_eq!(second, [(ids[1], ForwardVerdict::Refused(reason))]);
    let first = nodes.take_verdicts(key, &follower, &ids).await.unwrap();
    assert_eq!(first, [(ids[0], ForwardVerdict::Accepted(1))]);
    assert!(
        nodes
            .take_verdicts(key, &follower, &ids)
            .await
            .unwrap()
            .is_empty(),
        "read once"
    );
    assert_eq!(nodes.updates_after(key, 0, 10).await.unwrap(), [(1, good)]);
    assert!(nodes.updates_after(key, 1, 10).await.unwrap().is_empty());
    storage.close().await;
}
