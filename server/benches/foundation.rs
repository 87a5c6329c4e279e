//! Fixed-workload measurements of the foundation (run with
//! `cargo bench -p roundtable-server --bench foundation`):
//!
//! 1. edit → second client: a client adds characters to an item, one update at a time,
//!    and we time until another client on loopback has it (300 edits; median, p95).
//! 2. loading a conference whose log holds 10,000 updates, cold, with no snapshot and
//!    after compaction into a snapshot.
//! 3. a refused update on that conference, with the 10,000 updates in its log: the time
//!    from sending it, followed by a "saved?" question, until the question is answered
//!    (the refusal comes first), against the same question alone (50 each: median,
//!    quartiles, p95).
//! 4. the same on a conference whose document is at its 32 MiB limit.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use roundtable_server::Config;
use roundtable_server::storage::{ChairRow, Fence};
use roundtable_shared::doc::{Board, DocumentKind, NewItem};
use roundtable_shared::{ChairId, ConferenceId, ParticipantId};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Text, Transact, Update};

const EDITS: usize = 300;
const HISTORY: usize = 10_000;
const REFUSALS: usize = 50;
/// Items of 1 MiB of text that make a document of about 32 MiB (its limit).
const LARGE_ITEMS: usize = 31;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, conf: &str, token: &str) -> Socket {
    connect_to(addr, conf, "sync", token).await
}

async fn connect_to(addr: std::net::SocketAddr, conf: &str, endpoint: &str, token: &str) -> Socket {
    let mut request = format!("ws://{addr}/api/conferences/{conf}/{endpoint}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    // A whole document comes as one frame: up to the document limit, past
    // tungstenite's default limits.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .unwrap()
        .0
}

/// Reads until an update arrives; applies everything to `doc`.
async fn next_update(socket: &mut Socket, doc: &Doc) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("update within 10 s")
            .unwrap()
            .unwrap();
        if let WsMessage::Binary(bytes) = frame
            && let Ok(Message::Sync(SyncMessage::Update(u) | SyncMessage::SyncStep2(u))) =
                Message::decode_v1(&bytes)
        {
            doc.transact_mut()
                .apply_update(Update::decode_v1(&u).unwrap())
                .unwrap();
            return;
        }
    }
}

/// Sends `update` (if any) and a "saved?" question; the time until it is answered.
async fn round_trip(socket: &mut Socket, question: u32, update: Option<Vec<u8>>) -> Duration {
    let started = Instant::now();
    if let Some(update) = &update {
        let message = Message::Sync(SyncMessage::Update(update.clone())).encode_v1();
        socket
            .send(WsMessage::Binary(message.into()))
            .await
            .unwrap();
    }
    let saved = Message::Custom(
        roundtable_shared::protocol::SAVED,
        roundtable_shared::protocol::encode_saved(question),
    );
    socket
        .send(WsMessage::Binary(saved.encode_v1().into()))
        .await
        .unwrap();
    let refusals = wait_saved(socket, question).await;
    let took = started.elapsed();
    // What is timed is a refusal: the update must have drawn one, and the question
    // alone none.
    assert_eq!(
        refusals,
        update
            .is_some()
            .then(|| "only the server changes the conference's details".to_owned())
            .into_iter()
            .collect::<Vec<_>>()
    );
    took
}

/// Reads until the answer to "saved?" question `number` arrives; the reasons of the
/// refusals that came before it.
async fn wait_saved(socket: &mut Socket, number: u32) -> Vec<String> {
    let mut refusals = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .unwrap();
        let WsMessage::Binary(bytes) = frame else {
            continue;
        };
        match Message::decode_v1(&bytes) {
            Ok(Message::Custom(roundtable_shared::protocol::SAVED, data))
                if roundtable_shared::protocol::decode_saved(&data) == Some(number) =>
            {
                return refusals;
            }
            Ok(Message::Auth(reason)) => refusals.push(reason.unwrap_or_default()),
            _ => {}
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Median, quartiles and p95 of `times` (sorted here), in milliseconds.
fn spread(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |p| percentile(times, p).as_secs_f64() * 1e3;
    format!(
        "median {:.2} ms (quartiles {:.2}–{:.2}, p95 {:.2})",
        ms(0.5),
        ms(0.25),
        ms(0.75),
        ms(0.95)
    )
}

/// Times `REFUSALS` refused updates, each followed by a "saved?", against as many
/// questions alone, on `socket`. `forbidden(i)` makes the i-th refused update.
async fn refusals(socket: &mut Socket, forbidden: impl Fn(usize) -> Vec<u8>) -> (String, String) {
    let mut alone = Vec::new();
    let mut with_refusal = Vec::new();
    for i in 0..REFUSALS {
        alone.push(round_trip(socket, 2 * i as u32, None).await);
        with_refusal.push(round_trip(socket, 2 * i as u32 + 1, Some(forbidden(i))).await);
    }
    (spread(&mut with_refusal), spread(&mut alone))
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        database_url: None,
        client_dir: dir.path().join("no-client"),
        public_url: None,
        node_name: None,
        limits: Default::default(),
        door: Default::default(),
    };
    let running = roundtable_server::start(config).await.unwrap();
    let addr = running.addr;
    let storage = running.state.storage.clone();
    storage
        .insert_chair(&ChairRow {
            id: ChairId(uuid::Uuid::new_v4()),
            email: "chair@example.org".into(),
            name: "Chair".into(),
            password_hash: roundtable_server::auth::hash_password("bench password 1234").unwrap(),
        })
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    http.post(format!("http://{addr}/api/session"))
        .json(&json!({ "email": "chair@example.org", "password": "bench password 1234" }))
        .send()
        .await
        .unwrap();
    let created: Value = http
        .post(format!("http://{addr}/api/conferences"))
        .json(&json!({
            "title": "Benchmark", "kind": "initial", "scheduled_start": "2026-12-01T10:00:00Z",
            "children": [{ "name": "A" }],
            "participants": [{ "name": "Writer", "role": "minute_taker" }, { "name": "Reader", "role": "parent" }],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conf = created["conference"]["id"].as_str().unwrap().to_owned();
    let writer_id: ParticipantId = created["participants"][0]["participant"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let writer_token = created["participants"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader_token = created["participants"][1]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // 1. Edit to second client.
    let writer_doc = Doc::new();
    let reader_doc = Doc::new();
    let mut writer = connect(addr, &conf, &writer_token).await;
    let mut reader = connect(addr, &conf, &reader_token).await;
    next_update(&mut writer, &writer_doc).await; // the greeting's SyncStep2
    next_update(&mut reader, &reader_doc).await;
    let send = |doc: &Doc, f: &dyn Fn(&mut yrs::TransactionMut)| {
        let mut txn = doc.transact_mut();
        f(&mut txn);
        Message::Sync(SyncMessage::Update(txn.encode_update_v1())).encode_v1()
    };
    let first = send(&writer_doc, &|txn| {
        Board::in_txn(txn).add_item(
            txn,
            NewItem {
                id: "item",
                heading: "worries",
                text: "",
                author: writer_id,
                said_by: None,
                children: &[],
            },
        )
    });
    writer.send(WsMessage::Binary(first.into())).await.unwrap();
    next_update(&mut reader, &reader_doc).await;
    let mut times = Vec::with_capacity(EDITS);
    for i in 0..EDITS {
        let bytes = send(&writer_doc, &|txn| {
            let text = Board::in_txn(txn).text(txn, "item").unwrap();
            let len = text.len(txn);
            text.insert(txn, len, if i % 10 == 9 { " " } else { "a" });
        });
        let started = Instant::now();
        writer.send(WsMessage::Binary(bytes.into())).await.unwrap();
        next_update(&mut reader, &reader_doc).await;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "edit -> second client, {EDITS} edits on loopback (each stored with fsync before relay):"
    );
    println!(
        "  median {:.3} ms, p95 {:.3} ms, max {:.3} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
    drop(writer);
    drop(reader);

    // 2. Loading a 10,000-update history: one update per typed character, as a
    // browser sends them, written straight into the log of a fresh conference.
    let conference = ConferenceId(conf.parse().unwrap());
    let history = Doc::new();
    let mut updates = Vec::with_capacity(HISTORY);
    updates.push(send_update(&history, |txn| {
        Board::in_txn(txn).add_item(
            txn,
            NewItem {
                id: "long",
                heading: "worries",
                text: "",
                author: writer_id,
                said_by: None,
                children: &[],
            },
        )
    }));
    for i in 1..HISTORY {
        updates.push(send_update(&history, |txn| {
            let text = Board::in_txn(txn).text(txn, "long").unwrap();
            let len = text.len(txn);
            text.insert(txn, len, if i % 7 == 0 { " " } else { "b" });
        }));
    }
    let room = (conference, DocumentKind::Restricted);
    let written = Instant::now();
    for (seq, update) in updates.iter().enumerate() {
        storage
            .append_update(
                conference,
                DocumentKind::Restricted,
                Fence::Alone,
                seq as i64 + 1,
                Some(writer_id),
                update,
            )
            .await
            .unwrap();
    }
    eprintln!(
        "  (wrote {HISTORY} updates in {:.1} s)",
        written.elapsed().as_secs_f64()
    );
    let mut cold = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let len = running
            .state
            .rooms
            .read(room, |txn, _| {
                Board::get(txn).map_or(0, |board| board.items(txn).len())
            })
            .await
            .unwrap();
        cold.push(started.elapsed());
        assert_eq!(len, 1);
    }
    cold.sort();
    println!("load a conference with a {HISTORY}-update log and no snapshot (median of 5):");
    println!("  {:.2} ms", percentile(&cold, 0.5).as_secs_f64() * 1e3);
    let mut reads = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        storage
            .load_document(conference, DocumentKind::Restricted)
            .await
            .unwrap();
        reads.push(started.elapsed());
    }
    reads.sort();
    println!(
        "  of which reading the rows from SQLite: {:.2} ms",
        percentile(&reads, 0.5).as_secs_f64() * 1e3
    );

    // 3. A refused update on the loaded conference: the minute-taker writes to the
    // details, which only the server writes.
    let mut refused = connect_to(addr, &conf, "restricted/sync", &writer_token).await;
    let refused_doc = Doc::new();
    next_update(&mut refused, &refused_doc).await; // the greeting's SyncStep2
    let greeting = {
        use yrs::ReadTxn;
        refused_doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    let (with_refusal, alone) = refusals(&mut refused, |i| {
        // Each from a fresh copy of the server's document, so that it builds on
        // nothing refused before it.
        let copy = Doc::new();
        copy.transact_mut()
            .apply_update(Update::decode_v1(&greeting).unwrap())
            .unwrap();
        send_update(&copy, |txn| {
            use yrs::{Map, WriteTxn};
            txn.get_or_insert_map(roundtable_shared::doc::META).insert(
                txn,
                "title",
                format!("Renamed {i}"),
            );
        })
    })
    .await;
    println!(
        "a refused update with the {HISTORY}-update log and no snapshot, until a saved? after it is answered ({REFUSALS} each):"
    );
    println!("  refused update then saved?: {with_refusal}");
    println!("  saved? alone:               {alone}");
    drop(refused);

    // The server compacts every 500 updates, so the most it ever loads is a snapshot
    // plus a tail of under 500 updates: compact at 9,501 and load again.
    let compact_every = roundtable_server::sync::Limits::default().compact_every;
    let through = HISTORY - compact_every + 1;
    let partial = Doc::new();
    {
        let mut txn = partial.transact_mut();
        for update in &updates[..through] {
            txn.apply_update(Update::decode_v1(update).unwrap())
                .unwrap();
        }
    }
    let snapshot = {
        use yrs::ReadTxn;
        partial
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    storage
        .write_snapshot(
            conference,
            DocumentKind::Restricted,
            Fence::Alone,
            through as i64,
            &snapshot,
        )
        .await
        .unwrap();
    let tail = HISTORY - through;
    let mut with_tail = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let len = running
            .state
            .rooms
            .read(room, |txn, _| {
                Board::get(txn).map_or(0, |b| b.items(txn)[0].text.len())
            })
            .await
            .unwrap();
        with_tail.push(started.elapsed());
        assert_eq!(len, HISTORY - 1);
    }
    with_tail.sort();
    println!(
        "load it with a snapshot and a {tail}-update tail, the most the server leaves (median of 5):"
    );
    println!(
        "  {:.2} ms",
        percentile(&with_tail, 0.5).as_secs_f64() * 1e3
    );

    // Compact everything, as the server does when the last person leaves, and load again.
    let snapshot = {
        use yrs::ReadTxn;
        history
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    storage
        .write_snapshot(
            conference,
            DocumentKind::Restricted,
            Fence::Alone,
            HISTORY as i64,
            &snapshot,
        )
        .await
        .unwrap();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        running.state.rooms.read(room, |_, _| ()).await.unwrap();
        warm.push(started.elapsed());
    }
    warm.sort();
    println!("load it fully compacted into a snapshot (median of 5):");
    println!(
        "  {:.2} ms ({} bytes of snapshot)",
        percentile(&warm, 0.5).as_secs_f64() * 1e3,
        snapshot.len()
    );

    // 4. A refused update on a document at its 32 MiB limit: another conference's,
    // written straight into its log, one 1 MiB item an update.
    let created: Value = http
        .post(format!("http://{addr}/api/conferences"))
        .json(&json!({
            "title": "Large", "kind": "initial", "scheduled_start": "2026-12-01T10:00:00Z",
            "children": [{ "name": "A" }],
            "participants": [
                { "name": "Filler", "role": "minute_taker" },
                { "name": "Writer", "role": "minute_taker" },
            ],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let large = ConferenceId(
        created["conference"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    // One participant wrote the document; another, who has written nothing (and is
    // far from their share), sends the refused updates.
    let large_writer: ParticipantId = created["participants"][0]["participant"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let large_token = created["participants"][1]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let large_doc = Doc::new();
    let words = "the large document. ".repeat(1024 * 1024 / 20);
    let mut stored = 0;
    for i in 0..LARGE_ITEMS {
        let id = format!("large-{i}");
        let update = send_update(&large_doc, |txn| {
            Board::in_txn(txn).add_item(
                txn,
                NewItem {
                    id: &id,
                    heading: "worries",
                    text: &words,
                    author: large_writer,
                    said_by: None,
                    children: &[],
                },
            )
        });
        stored += update.len();
        storage
            .append_update(
                large,
                DocumentKind::Restricted,
                Fence::Alone,
                i as i64 + 1,
                Some(large_writer),
                &update,
            )
            .await
            .unwrap();
    }
    let mut socket = connect_to(addr, &large.0.to_string(), "restricted/sync", &large_token).await;
    let started = Instant::now();
    next_update(&mut socket, &Doc::new()).await; // the greeting's SyncStep2
    eprintln!(
        "  (loaded and received the {:.1} MiB document in {:.2} s)",
        stored as f64 / 1024.0 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    let (with_refusal, alone) = refusals(&mut socket, |i| {
        // Changing the details builds on nothing: a fresh document will do.
        send_update(&Doc::new(), |txn| {
            use yrs::{Map, WriteTxn};
            txn.get_or_insert_map(roundtable_shared::doc::META).insert(
                txn,
                "title",
                format!("Renamed {i}"),
            );
        })
    })
    .await;
    println!(
        "a refused update on a document of {:.1} MiB ({LARGE_ITEMS} updates), until a saved? after it is answered ({REFUSALS} each):",
        stored as f64 / 1024.0 / 1024.0
    );
    println!("  refused update then saved?: {with_refusal}");
    println!("  saved? alone:               {alone}");
    drop(socket);
    running.stop().await.unwrap();
}

fn send_update(doc: &Doc, f: impl FnOnce(&mut yrs::TransactionMut)) -> Vec<u8> {
    let mut txn = doc.transact_mut();
    f(&mut txn);
    txn.encode_update_v1()
}
