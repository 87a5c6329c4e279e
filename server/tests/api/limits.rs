//! Limits on what one address or one connection may take: slow requests, floods of
//! connections and of messages, clients that stop reading or vanish. Each gets a
//! clear refusal or is let go, and everyone else carries on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use roundtable_server::sync::{ArrivingBudget, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::updates::encoder::Encode;

use crate::helpers::{DEADLINE, SyncClient, TestApp};
use crate::sync::{add_item, has_item, three};

/// Another address on this machine: the floods come from here, everyone else from
/// 127.0.0.1.
const OTHER_ADDRESS: &str = "127.0.0.2:0";

async fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(local.parse().unwrap()).unwrap();
    socket.connect(server).await.expect("connects")
}

/// Reads until the server closes the connection (or the deadline); returns what came.
async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn health(app: &TestApp) -> u16 {
    reqwest::get(app.url("/health"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn requests_that_arrive_too_slowly_are_cut_off_and_others_are_served() {
    let timeout = Duration::from_millis(800);
    let app = TestApp::spawn_with(Limits {
        request_head_timeout: timeout,
        request_timeout: timeout,
        ..Limits::default()
    })
    .await;

    // Many connections sending their headers a byte at a time, and some sending
    // nothing at all.
    let mut slow = Vec::new();
    for n in 0..40 {
        let mut stream = connect_from(OTHER_ADDRESS, app.addr).await;
        if n % 2 == 0 {
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        slow.push((stream, Instant::now()));
    }
    // One sends its body a byte at a time.
    let mut slow_body = connect_from(OTHER_ADDRESS, app.addr).await;
    slow_body
        .write_all(
            b"POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();

    // Meanwhile everyone else is served as usual.
    assert_eq!(health(&app).await, 200);
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(&chair, &[("Pat Nurse", "professional")])
        .await;
    let mut nurse = app.connect(&conf, &people[0].1).await;
    add_item(&mut nurse, "served", &people[0].0, "Served meanwhile").await;

    // Dribbling does not keep a connection open past the time allowed.
    let mut cut = 0;
    let until = Instant::now() + DEADLINE;
    while !slow.is_empty() {
        assert!(
            Instant::now() < until,
            "{} slow connections still open",
            slow.len()
        );
        let mut still_open = Vec::new();
        for (mut stream, since) in slow {
            let _ = stream.write_all(b"X").await;
            let mut byte = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(5), stream.read(&mut byte)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(since.elapsed() >= timeout, "cut off before its time");
                    cut += 1;
                }
                Ok(Ok(n)) => panic!("answered: {}", String::from_utf8_lossy(&byte[..n])),
                Err(_) => still_open.push((stream, since)),
            }
        }
        slow = still_open;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cut, 40);
    let answer = read_to_end(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request did not arrive in time"),
        "{answer}"
    );
    assert_eq!(health(&app).await, 200);
}

#[tokio::test]
async fn thousands_of_connections_from_one_address_are_refused_clearly_and_others_go_on() {
    const SHARE: usize = 40;
    const ATTEMPTS: usize = 2000;
    let app = TestApp::spawn_with(Limits {
        connections_per_address: SHARE,
        ..Limits::default()
    })
    .await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
        )
        .await;
    let mut nurse = app.connect(&conf, &people[0].1).await;
    let mut parent = app.connect(&conf, &people[1].1).await;

    // One address takes its whole share and holds it…
    let mut held = Vec::new();
    for _ in 0..SHARE {
        let mut stream = connect_from(OTHER_ADDRESS, app.addr).await;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        held.push(stream);
    }
    // …then tries thousands more, many at once.
    let mut refused = 0;
    for _ in 0..ATTEMPTS / 50 {
        let wave: Vec<_> = (0..50)
            .map(|_| {
                let server = app.addr;
                tokio::spawn(async move {
                    let mut stream = connect_from(OTHER_ADDRESS, server).await;
                    let _ = stream
                        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await;
                    read_to_end(&mut stream).await
                })
            })
            .collect();
        for attempt in wave {
            let answer = attempt.await.unwrap();
            assert!(
                answer.starts_with("HTTP/1.1 429 Too Many Requests"),
                "{answer}"
            );
            assert!(
                answer.contains("too many connections from your address"),
                "{answer}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, ATTEMPTS);

    // Everyone else is served all along: new connections, and the conference.
    assert_eq!(health(&app).await, 200);
    add_item(&mut nurse, "meanwhile", &people[0].0, "Still working").await;
    parent.wait_until(has_item("meanwhile")).await;
    let late = app.connect(&conf, &people[1].1).await;
    assert!(has_item("meanwhile")(&late));

    // Once the address lets go, it is served again.
    drop(held);
    let until = Instant::now() + DEADLINE;
    loop {
        let mut stream = connect_from(OTHER_ADDRESS, app.addr).await;
        let _ = stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        if read_to_end(&mut stream).await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < until, "the address was not let back in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn presence(id: u64, clock: u32, name: &str) -> Message {
    let state = serde_json::json!({ "user": { "name": name } });
    Message::Awareness(AwarenessUpdate {
        clients: [(
            yrs::ClientID::new(id),
            AwarenessUpdateEntry {
                clock,
                json: state.to_string().into(),
            },
        )]
        .into(),
    })
}

#[tokio::test]
async fn a_flood_of_messages_closes_only_that_connection() {
    let app = TestApp::spawn_with(Limits {
        messages_per_second: 50,
        message_burst: 100,
        ..Limits::default()
    })
    .await;
    let mut t = three(&app).await;
    let mut flood = app.connect(&t.conf, &t.misbehaving_token).await;
    for clock in 1..=1000 {
        flood.send(presence(77, clock, "Flood")).await;
    }
    let frame = flood.wait_closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(
        frame.reason.as_str(),
        "too many messages at once: connect again and slow down"
    );
    t.others_still_sync().await;
    // Connecting again, at a sensible pace, works.
    let mut again = app.connect(&t.conf, &t.misbehaving_token).await;
    again.send(presence(78, 1, "Calm")).await;
    t.watcher
        .wait_until(|c| c.presence.contains_key(&yrs::ClientID::new(78)))
        .await;
}

/// Opens a sync connection from a socket that takes in very little at a time.
async fn narrow_socket(
    app: &TestApp,
    conference: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let request = app.sync_request(conference, token);
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("connects");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_that_stops_reading_and_one_that_vanishes_do_not_hold_up_a_room_of_100() {
    const PEOPLE: usize = 100;
    const EDITS: usize = 40;
    const PARAGRAPH: usize = 4000;
    let app = TestApp::spawn_with(Limits {
        // Test clients answer pings only while they read, and 100 of them share
        // this machine with the server: give them time.
        ping_interval: Duration::from_secs(2),
        send_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let chair = app.signed_in_chair().await;
    let names: Vec<String> = (0..PEOPLE).map(|n| format!("Person {n}")).collect();
    let people: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "professional")).collect();
    let (conf, people) = app.conference(&chair, &people).await;

    let gone = |c: &SyncClient| {
        !c.presence.contains_key(&yrs::ClientID::new(1000))
            && !c.presence.contains_key(&yrs::ClientID::new(1001))
    };

    // Most follow the meeting while one types, each edit about 4 KB.
    let mut followers = Vec::new();
    for (_, token) in &people[3..] {
        let mut client = app.connect(&conf, token).await;
        followers.push(tokio::spawn(async move {
            client
                .wait_within(Duration::from_secs(60), |c| {
                    c.board()
                        .iter()
                        .any(|i| i.id == "notes" && i.text.len() >= EDITS * PARAGRAPH)
                })
                .await;
            client
        }));
    }
    // One stops reading (though it keeps saying it is here), one vanishes without
    // a word.
    let mut stalled = narrow_socket(&app, &conf, &people[0].1).await;
    stalled
        .send(WsMessage::Binary(
            presence(1000, 1, "Stalled").encode_v1().into(),
        ))
        .await
        .unwrap();
    let mut vanished = app.connect(&conf, &people[1].1).await;
    vanished.send(presence(1001, 1, "Vanished")).await;
    let (writer_id, writer_token) = people[2].clone();
    let mut writer = app.connect(&conf, &writer_token).await;
    writer.wait_until(|c| c.presence.len() == 2).await;
    add_item(&mut writer, "notes", &writer_id, "").await;
    let paragraph = "x".repeat(PARAGRAPH);
    let keep_stalled_talking = tokio::spawn(async move {
        for clock in 2.. {
            if stalled
                .send(WsMessage::Binary(
                    presence(1000, clock, "Stalled").encode_v1().into(),
                ))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    for n in 0..EDITS {
        writer
            .edit(|txn| {
                let board = roundtable_shared::doc::Board::in_txn(txn);
                assert!(board.insert_text(txn, "notes", (n * PARAGRAPH) as u32, &paragraph));
            })
            .await;
        writer.settle(Duration::from_millis(20)).await;
    }
    for follower in followers {
        let client = follower.await.unwrap();
        assert!(client.closed.is_none(), "{:?}", client.closed);
    }
    // Both misbehaving connections are let go, and everyone sees them leave.
    writer.wait_within(Duration::from_secs(30), gone).await;
    let fresh = app.connect(&conf, &people[3].1).await;
    assert!(gone(&fresh), "{:?}", fresh.presence);
    assert!(vanished.closed.is_none(), "it never read its close");
    drop(vanished);
    keep_stalled_talking.abort();
}

/// A presence state of about `bytes` bytes.
fn large_presence(id: u64, clock: u32, bytes: usize) -> Message {
    let state = serde_json::json!({ "user": { "name": "Flood" }, "note": "x".repeat(bytes) });
    Message::Awareness(AwarenessUpdate {
        clients: [(
            yrs::ClientID::new(id),
            AwarenessUpdateEntry {
                clock,
                json: state.to_string().into(),
            },
        )]
        .into(),
    })
}

#[tokio::test]
async fn a_flood_of_presence_is_cut_off_before_it_reaches_the_others() {
    let app = TestApp::spawn().await;
    let mut t = three(&app).await;
    let mut flood = app.connect(&t.conf, &t.misbehaving_token).await;
    // 7 KiB states, as fast as they go: 700 KiB if all were taken.
    for clock in 1..=100 {
        flood.send(large_presence(77, clock, 7 * 1024)).await;
    }
    let frame = flood.wait_closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(
        frame.reason.as_str(),
        "too much presence at once: connect again and slow down"
    );
    t.others_still_sync().await;
    // What reached the others is bounded by the burst (64 KiB), not by the flood.
    assert!(
        t.watcher.presence_bytes <= 80 * 1024,
        "{} bytes of presence relayed",
        t.watcher.presence_bytes
    );

    // One state larger than a presence message may be closes at once.
    let mut large = app.connect(&t.conf, &t.misbehaving_token).await;
    large.send(large_presence(78, 1, 9 * 1024)).await;
    let frame = large.wait_closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    assert_eq!(
        frame.reason.as_str(),
        "a presence message may be at most 8 KiB"
    );
}

#[tokio::test]
async fn someone_who_vanishes_stops_showing_as_here_for_everyone_and_for_newcomers() {
    let app = TestApp::spawn_with(Limits {
        ping_interval: Duration::from_millis(200),
        presence_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let mut t = three(&app).await;
    // Their state is set once and never renewed; the connection stays open (its
    // pongs still come back, as a phone's would after it locked with the page open).
    let mut gone = app.connect(&t.conf, &t.misbehaving_token).await;
    gone.send(presence(79, 1, "Gone")).await;
    let id = yrs::ClientID::new(79);
    t.watcher.wait_until(|c| c.presence.contains_key(&id)).await;
    // Reading keeps it answering pings.
    let pump = tokio::spawn(async move {
        gone.settle(Duration::from_secs(4)).await;
        gone
    });
    t.watcher
        .wait_within(Duration::from_secs(3), |c| !c.presence.contains_key(&id))
        .await;
    let newcomer = app.connect(&t.conf, &t.misbehaving_token).await;
    assert!(!newcomer.presence.contains_key(&id));
    let gone = pump.await.unwrap();
    assert!(gone.closed.is_none(), "the connection itself stayed open");
}

#[tokio::test]
async fn a_message_that_never_finishes_arriving_is_not_held_for_long() {
    let app = TestApp::spawn_with(Limits {
        ping_interval: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut t = three(&app).await;
    // The head of a 100,000-byte binary frame, then ten bytes of it, and no more; the
    // connection answers every ping meanwhile.
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let request = app.sync_request(&t.conf, &t.misbehaving_token);
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("connects");
    let mut head = vec![0x82, 0x80 | 127];
    head.extend(100_000u64.to_be_bytes());
    head.extend([1, 2, 3, 4]); // the mask
    head.extend([0u8; 10]);
    socket.get_mut().write_all(&head).await.unwrap();
    let started = Instant::now();
    let close = loop {
        use futures_util::StreamExt;
        match tokio::time::timeout(DEADLINE, socket.next()).await {
            Ok(Some(Ok(WsMessage::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    // Held for at most two ping intervals (and a little).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(
        close.reason.as_str(),
        "a message took too long to arrive: connect again"
    );
    t.others_still_sync().await;
}

/// Opens a sync connection and sends the head of a binary frame of `length` bytes and
/// `sent` bytes of it, and no more.
async fn half_a_message(
    app: &TestApp,
    conference: &str,
    token: &str,
    length: u64,
    sent: usize,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let request = app.sync_request(conference, token);
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("connects");
    let mut head = vec![0x82, 0x80 | 127];
    head.extend(length.to_be_bytes());
    head.extend([1, 2, 3, 4]); // the mask
    head.extend(vec![0u8; sent]);
    // Past the budget the server stops reading: the write may fail.
    let _ = tokio::time::timeout(DEADLINE, socket.get_mut().write_all(&head)).await;
    socket
}

#[tokio::test]
async fn messages_still_arriving_are_held_within_one_budget_for_the_whole_server() {
    use futures_util::StreamExt;
    let budget = ArrivingBudget::new(100 * 1024);
    let app = TestApp::spawn_with(Limits {
        arriving: budget.clone(),
        ..Limits::default()
    })
    .await;
    let mut t = three(&app).await;
    // 60 KiB of a 200,000-byte message: all but the first 8 KiB are charged.
    let first = half_a_message(&app, &t.conf, &t.misbehaving_token, 200_000, 60 * 1024).await;
    let until = Instant::now() + DEADLINE;
    while budget.held() < 50 * 1024 {
        assert!(Instant::now() < until, "{} bytes held", budget.held());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second such message would take the budget past 100 KiB: its connection is
    // closed, and the first one's is not.
    let mut second = half_a_message(&app, &t.conf, &t.misbehaving_token, 200_000, 60 * 1024).await;
    let close = loop {
        match tokio::time::timeout(DEADLINE, second.next()).await {
            Ok(Some(Ok(WsMessage::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), 1013);
    assert_eq!(
        close.reason.as_str(),
        "the server is receiving too many large messages just now: connect again in a moment"
    );
    assert!(budget.held() <= budget.max());
    // Ordinary edits do not need the budget: the meeting goes on.
    t.others_still_sync().await;
    // Once the first connection is gone, nothing is held.
    drop(first);
    let until = Instant::now() + DEADLINE;
    while budget.held() > 0 {
        assert!(Instant::now() < until, "{} bytes still held", budget.held());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Types `chunk` at the end of item `id`'s text, as one update.
async fn type_chunk(client: &mut SyncClient, id: &'static str, chunk: &str) {
    client
        .edit(|txn| {
            let board = roundtable_shared::doc::Board::in_txn(txn);
            let len = board.text(txn, id).map_or(0, |t| yrs::Text::len(&t, txn));
            board.insert_text(txn, id, len, chunk);
        })
        .await;
}

#[tokio::test]
async fn nobody_fills_a_conference_alone_and_a_full_one_can_still_be_cleared() {
    let app = TestApp::spawn_with(Limits {
        max_document_bytes: 64 * 1024,
        max_participant_bytes: 40 * 1024,
        ..Limits::default()
    })
    .await;
    let mut t = three(&app).await;
    let filler_id = {
        // The misbehaving professional's own participant id, from the roster.
        let roster = roundtable_shared::doc::read_roster(&yrs::Transact::transact(&t.watcher.doc));
        roster
            .into_iter()
            .find(|p| p.name == "Kim Police")
            .expect("Kim is on the roster")
            .id
            .to_string()
    };
    let mut filler = app.connect(&t.conf, &t.misbehaving_token).await;
    add_item(&mut filler, "filler", &filler_id, "x").await;
    let chunk = "y".repeat(4 * 1024);
    for _ in 0..12 {
        type_chunk(&mut filler, "filler", &chunk).await;
    }
    filler.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        filler.refusals[0],
        "you have written as much into this conference as one person may: ask the chair"
    );

    // Others still write, until the document itself is full.
    add_item(&mut t.writer, "minutes", &t.writer_id, "z").await;
    for _ in 0..12 {
        type_chunk(&mut t.writer, "minutes", &chunk).await;
    }
    t.writer.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        t.writer.refusals[0],
        "this conference's document is full: the chair can still delete"
    );

    // Deleting is still taken, and reaches the others.
    t.writer.settle(Duration::from_millis(200)).await;
    let refused = t.writer.refusals.len();
    t.writer
        .edit(|txn| {
            roundtable_shared::doc::Board::in_txn(txn).delete_item(txn, "filler");
        })
        .await;
    t.watcher
        .wait_until(|c| !c.board().iter().any(|i| i.id == "filler"))
        .await;
    t.writer.settle(Duration::from_millis(100)).await;
    assert_eq!(t.writer.refusals.len(), refused, "{:?}", t.writer.refusals);
}
