//! Hostile frames against the real server, in a test binary of their own so that the
//! process's peak memory belongs to these tests alone: each sends its frames from a
//! parent's connection and checks that the server's peak resident memory grew by less
//! than 64 MiB, that the sender was closed with a reason, and that the meeting went on
//! for everyone else.

#[allow(dead_code)]
#[path = "api/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::TestApp;
use roundtable_server::sync::ArrivingBudget;
use roundtable_shared::doc::{Board, NewItem};
use tokio::sync::Mutex;

/// One at a time: they measure the whole process's memory.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The most the server's peak resident memory may grow by while a test's frames arrive.
const BOUND: u64 = 64 * 1024 * 1024;

/// One line of this process's `/proc/self/status`, in bytes. The server under test
/// runs in the test's own process.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    kib * 1024
}

/// The process's peak resident memory (`VmHWM`) since the last
/// [`reset_peak_resident`], in bytes.
fn peak_resident() -> u64 {
    status_bytes("VmHWM:")
}

/// Starts the peak resident memory over from what is resident now (`VmRSS`), and
/// returns that: the idle baseline a test measures its growth from, whatever earlier
/// tests in this process reached.
fn reset_peak_resident() -> u64 {
    // Linux: writing 5 to clear_refs sets VmHWM to VmRSS.
    std::fs::write("/proc/self/clear_refs", "5").expect("/proc/self/clear_refs");
    status_bytes("VmRSS:")
}

/// Sends each frame from a new connection of the parent; every connection must be
/// closed with 1007 and `reason`, the peak memory must stay within [`BOUND`], and a
/// professional's item must still reach the chair afterwards.
async fn hostile(frames: Vec<Vec<u8>>, reason: &str) {
    let _one = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Jo Parent", "parent"),
                ("Pat Nurse", "professional"),
                ("Chris Chair", "minute_taker"),
            ],
        )
        .await;
    let (_, parent_token) = &people[0];
    let (nurse_id, nurse_token) = &people[1];
    let (_, minutes_token) = &people[2];
    let mut minutes = app.connect(&conf, minutes_token).await;
    let before = reset_peak_resident();
    for frame in frames {
        let mut parent = app.connect(&conf, parent_token).await;
        parent.send_raw(frame).await;
        let close = parent.wait_closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1007);
        assert_eq!(close.reason.as_str(), reason);
    }
    let grown = peak_resident().saturating_sub(before);
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    // The meeting goes on.
    let mut nurse = app.connect(&conf, nurse_token).await;
    let author = nurse_id.parse().unwrap();
    nurse
        .edit(|txn| {
            Board::in_txn(txn).add_item(
                txn,
                NewItem {
                    id: "after",
                    heading: "worries",
                    text: "Still here",
                    author,
                    said_by: None,
                    children: &[],
                },
            )
        })
        .await;
    minutes
        .wait_within(Duration::from_secs(5), |c| {
            c.board().iter().any(|i| i.id == "after")
        })
        .await;
}

#[tokio::test]
async fn state_vectors_declaring_millions_of_entries_are_refused_before_anything_is_reserved() {
    // Sync, step 1, a state vector of four bytes that declares 2^28 - 1 entries: yrs
    // alone would reserve room for all of them.
    let frame = vec![0, 0, 4, 0xff, 0xff, 0xff, 0x7f];
    hostile(vec![frame; 50], "the message declares more than it holds").await;
}

#[tokio::test]
async fn updates_declaring_millions_of_blocks_are_refused_before_anything_is_reserved() {
    // Sync, update: one client declaring 2^28 - 1 blocks.
    let update = [1, 0xff, 0xff, 0xff, 0x7f, 5, 0];
    let frame = [&[0, 2, update.len() as u8][..], &update].concat();
    hostile(vec![frame; 50], "the message declares more than it holds").await;
}

#[tokio::test]
async fn presence_declaring_millions_of_states_is_refused_before_anything_is_reserved() {
    let awareness = [0xff, 0xff, 0xff, 0x7f];
    let frame = [&[1, awareness.len() as u8][..], &awareness].concat();
    hostile(vec![frame; 50], "the message declares more than it holds").await;
}

#[tokio::test]
async fn values_nested_deeper_than_the_stack_allows_are_refused() {
    // An update whose one value is arrays within arrays, 100,000 deep: read
    // recursively, that would overflow the stack and take the server down.
    let mut update = vec![1, 1, 5, 0, 8, 1, 1, b'r', 1];
    update.extend(std::iter::repeat_n([117u8, 1], 100_000).flatten());
    update.push(126);
    update.push(0);
    let mut frame = vec![0, 2];
    let mut len = update.len();
    while len >= 0x80 {
        frame.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    frame.push(len as u8);
    frame.extend(update);
    hostile(vec![frame], "the message nests values too deeply").await;
}

/// How quickly an edit reaches the others: the nurse adds an item, and the time until
/// the minute-taker has it.
struct Probe {
    nurse: helpers::SyncClient,
    minutes: helpers::SyncClient,
    author: roundtable_shared::ParticipantId,
    sent: u32,
}

impl Probe {
    async fn once(&mut self) -> Duration {
        self.sent += 1;
        let id = format!("probe-{}", self.sent);
        let author = self.author;
        let started = std::time::Instant::now();
        self.nurse
            .add_item(&id, author, "Is this still quick?")
            .await;
        self.minutes
            .wait_within(Duration::from_secs(10), |c| {
                c.board().iter().any(|i| i.id == id)
            })
            .await;
        let took = started.elapsed();
        // The nurse reads what is relayed to her too, as a real client does.
        self.nurse.settle(Duration::from_millis(1)).await;
        took
    }

    /// Probes every 50 ms until `done` is set (at most 600 times).
    async fn until(&mut self, done: &std::sync::atomic::AtomicBool) -> Vec<Duration> {
        let mut took = Vec::new();
        while !done.load(std::sync::atomic::Ordering::Relaxed) && took.len() < 600 {
            took.push(self.once().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        took
    }
}

fn median(took: &[Duration]) -> Duration {
    let mut sorted = took.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// A professional who may attack by writing: their id and link token.
type Filler = (roundtable_shared::ParticipantId, String);

/// A conference with a parent (who attacks), a nurse and a minute-taker (whose edits
/// are timed) and another professional, and how long an edit took to reach the
/// minute-taker before the attack.
async fn meeting(app: &TestApp) -> (String, String, Filler, Probe, Vec<Duration>) {
    let chair = app.signed_in_chair().await;
    let (conf, people) = app
        .conference(
            &chair,
            &[
                ("Jo Parent", "parent"),
                ("Pat Nurse", "professional"),
                ("Chris Chair", "minute_taker"),
                ("Sam Social Worker", "professional"),
            ],
        )
        .await;
    let (_, parent_token) = &people[0];
    let (filler_id, filler_token) = &people[3];
    let (nurse_id, nurse_token) = &people[1];
    let (_, minutes_token) = &people[2];
    let mut probe = Probe {
        nurse: app.connect(&conf, nurse_token).await,
        minutes: app.connect(&conf, minutes_token).await,
        author: nurse_id.parse().unwrap(),
        sent: 0,
    };
    let mut quiet = Vec::new();
    for _ in 0..20 {
        quiet.push(probe.once().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let filler = (filler_id.parse().unwrap(), filler_token.clone());
    (conf, parent_token.clone(), filler, probe, quiet)
}

/// The meeting did not notice: the median time for an edit to reach the minute-taker
/// during the attack is within `slower` of the median before it, and none took 2 s.
/// (Single edits can take a second on a debug build with the machine's two cores
/// shared with other work, attack or not: the median is what the meeting feels.)
fn unnoticed(quiet: &[Duration], attacked: &[Duration], slower: Duration) {
    assert!(!attacked.is_empty(), "no edit was timed during the attack");
    let max = attacked.iter().max().copied().unwrap_or_default();
    eprintln!(
        "relay latency: before the attack median {:?} (of {}), during it median {:?}, max {:?} (of {})",
        median(quiet),
        quiet.len(),
        median(attacked),
        max,
        attacked.len()
    );
    assert!(
        max < Duration::from_secs(2),
        "an edit took {max:?} to arrive"
    );
    assert!(
        median(attacked) < median(quiet) + slower,
        "edits took {:?} (median) during the attack, {:?} before it",
        median(attacked),
        median(quiet)
    );
}

fn presence_of(id: u64, clock: u32, bytes: usize) -> yrs::sync::Message {
    let state = serde_json::json!({ "user": { "name": "Flood" }, "note": "x".repeat(bytes) });
    yrs::sync::Message::Awareness(yrs::sync::AwarenessUpdate {
        clients: [(
            yrs::ClientID::new(id),
            yrs::sync::awareness::AwarenessUpdateEntry {
                clock,
                json: state.to_string().into(),
            },
        )]
        .into(),
    })
}

/// A parent floods presence from ten connections at once, for two seconds, connecting
/// again each time one is closed (1.4 MB from each connection). Every flooding
/// connection is closed once the parent's allowance is spent, what reaches the others
/// is one allowance however many connections the parent opens, the server's memory
/// grows by less than 64 MiB and the meeting's edits arrive as quickly as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_presence_holds_no_memory_and_the_meeting_does_not_notice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _one = ONE_AT_A_TIME.lock().await;
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let (conf, parent_token, _, mut probe, quiet) = meeting(&app).await;
    let relayed_before = probe.minutes.presence_bytes;
    let before = reset_peak_resident();
    let done = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let attack = async {
        let until = started + Duration::from_secs(2);
        // Each flooder is a task of its own, as the people in the meeting are not.
        let flooders = (0..10u64).map(|flooder| {
            let (conf, parent_token) = (conf.clone(), parent_token.clone());
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                let mut sent = 0usize;
                let mut closes = Vec::new();
                let mut connections = 0u64;
                while std::time::Instant::now() < until && connections < 50 {
                    connections += 1;
                    let mut parent = app.connect(&conf, &parent_token).await;
                    let id = 1000 * flooder + connections;
                    // 1.4 MB of presence from each connection, far past its burst.
                    for clock in 1..=200 {
                        let message = yrs::updates::encoder::Encode::encode_v1(&presence_of(
                            id,
                            clock,
                            7 * 1024,
                        ));
                        sent += message.len();
                        parent.send_raw(message).await;
                    }
                    closes.push(parent.wait_closed().await);
                }
                (sent, closes)
            })
        });
        let results: Vec<_> = futures_util::future::join_all(flooders)
            .await
            .into_iter()
            .map(|flooder| flooder.expect("a flooder"))
            .collect();
        done.store(true, Ordering::Relaxed);
        results
    };
    let (results, attacked) = tokio::join!(attack, probe.until(&done));
    let attack_took = started.elapsed();
    let grown = peak_resident().saturating_sub(before);

    let sent: usize = results.iter().map(|(sent, _)| sent).sum();
    let closes: Vec<_> = results.into_iter().flat_map(|(_, closes)| closes).collect();
    let relayed = probe.minutes.presence_bytes - relayed_before;
    eprintln!(
        "presence flood: {} MiB sent over {} connections, {} KiB relayed to the minute-taker, peak resident memory grew by {} MiB",
        sent / 1024 / 1024,
        closes.len(),
        relayed / 1024,
        grown / 1024 / 1024
    );
    for close in closes.iter().flatten() {
        assert_eq!(u16::from(close.code), 1008, "{close:?}");
        assert_eq!(
            close.reason.as_str(),
            "too much presence at once: connect again and slow down"
        );
    }
    assert!(
        closes.iter().filter(|c| c.is_some()).count() * 2 >= closes.len(),
        "most flooding connections were told why they were closed"
    );
    // The parent's connections share one allowance: a burst of 64 KiB and 16 KiB a
    // second, however often they connect again (and a message of 7 KiB over it each
    // time one is let through at the edge).
    let allowed = 64 * 1024 + 16 * 1024 * attack_took.as_secs_f64().ceil() as usize;
    assert!(
        relayed <= allowed + 8 * 1024,
        "{relayed} bytes of presence relayed from {} connections in {attack_took:?}",
        closes.len()
    );
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    // Not yet as quick as without the attack on a debug build: the server reads 67 MB
    // of flood in two seconds, and drains what each closed connection had already
    // sent so that it can read why it was closed (a median of 45 to 270 ms, with one
    // allowance a connection and with one a participant alike, while another build
    // shared the machine).
    unnoticed(&quiet, &attacked, Duration::from_millis(500));
}

/// 200 connections each send all but the last KiB of a 1,000,000-byte message, and
/// stop (without the budget, the server held 181 MiB for them). Only as much as the
/// server's budget for messages still arriving is held: the connections past it are
/// closed with 1013 and the reason, the others once their message is too slow (1008).
/// The server's memory grows by less than 64 MiB, the meeting's edits arrive as
/// quickly as before, and once they are gone the budget is free again for a large
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_messages_are_held_within_one_budget_for_the_whole_server() {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    const SOCKETS: usize = 200;
    const LENGTH: usize = 1_000_000;
    let _one = ONE_AT_A_TIME.lock().await;
    let app = std::sync::Arc::new(
        TestApp::spawn_with(roundtable_server::sync::Limits {
            // A message too slow to arrive is closed after one or two of these.
            ping_interval: Duration::from_secs(1),
            ..Default::default()
        })
        .await,
    );
    let budget = app.rooms().limits().arriving.clone();
    let (conf, parent_token, _, mut probe, quiet) = meeting(&app).await;
    let before = reset_peak_resident();
    // One copy of the bytes for every connection: the test's own memory is the
    // server's process too.
    let payload = std::sync::Arc::new(vec![7u8; LENGTH - 1024]);
    let done = AtomicBool::new(false);
    let attack = async {
        // Each connection is a task of its own, as the people in the meeting are not.
        let sockets = (0..SOCKETS).map(|_| {
            let (conf, parent_token) = (conf.clone(), parent_token.clone());
            let (app, payload) = (std::sync::Arc::clone(&app), std::sync::Arc::clone(&payload));
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
                let request = app.sync_request(&conf, &parent_token);
                // The attacker's own buffers are small, so that what grows is the server's.
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0);
                let (mut socket, _) =
                    tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                        .await
                        .expect("connects");
                let mut head = vec![0x82, 0x80 | 127];
                head.extend((LENGTH as u64).to_be_bytes());
                head.extend([1, 2, 3, 4]); // the mask
                let write = async {
                    socket.get_mut().write_all(&head).await?;
                    socket.get_mut().write_all(&payload[..]).await
                };
                // Past the budget, the server stops reading: the write fails or stalls.
                let _ = tokio::time::timeout(Duration::from_secs(20), write).await;
                let read = async {
                    while let Some(frame) = socket.next().await {
                        if let Ok(WsMessage::Close(frame)) = frame {
                            return frame;
                        }
                        if frame.is_err() {
                            return None;
                        }
                    }
                    None
                };
                tokio::time::timeout(Duration::from_secs(20), read)
                    .await
                    .ok()
                    .flatten()
            })
        });
        let closes: Vec<_> = futures_util::future::join_all(sockets)
            .await
            .into_iter()
            .map(|socket| socket.expect("a connection"))
            .collect();
        done.store(true, Ordering::Relaxed);
        closes
    };
    // The most the budget held at any moment, looked at every millisecond.
    let held = std::sync::atomic::AtomicUsize::new(0);
    let watch = async {
        while !done.load(Ordering::Relaxed) {
            held.fetch_max(budget.held(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let (closes, attacked, ()) = tokio::join!(attack, probe.until(&done), watch);
    let grown = peak_resident().saturating_sub(before);

    let count = |code: u16| {
        closes
            .iter()
            .flatten()
            .filter(|c| u16::from(c.code) == code)
            .count()
    };
    let (over, slow) = (count(1013), count(1008));
    eprintln!(
        "half-sent messages: {over} closed over the budget, {slow} as too slow, {} without a close frame; peak resident memory grew by {} MiB",
        closes.iter().filter(|c| c.is_none()).count(),
        grown / 1024 / 1024
    );
    for close in closes.iter().flatten() {
        match u16::from(close.code) {
            1013 => assert_eq!(
                close.reason.as_str(),
                "the server is receiving too many large messages just now: connect again in a moment"
            ),
            1008 => assert_eq!(
                close.reason.as_str(),
                "a message took too long to arrive: connect again"
            ),
            _ => panic!("unexpected close: {close:?}"),
        }
    }
    // The budget holds about 8 of these messages: most connections are past it.
    let most = budget.max() / (LENGTH - ArrivingBudget::FREE_PER_CONNECTION);
    assert!(
        held.load(Ordering::Relaxed) <= budget.max(),
        "{} bytes held",
        held.load(Ordering::Relaxed)
    );
    assert!(
        over >= SOCKETS.saturating_sub(4 * most),
        "only {over} closed over the budget"
    );
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    // Not yet as quick as without the attack on a debug build: the server reads 67 MB
    // of flood in two seconds, and drains what each closed connection had already
    // sent so that it can read why it was closed (a median of 45 to 270 ms, with one
    // allowance a connection and with one a participant alike, while another build
    // shared the machine).
    unnoticed(&quiet, &attacked, Duration::from_millis(500));

    // Once they are gone, nothing is held, and a large message gets through.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while budget.held() > 0 {
        assert!(
            std::time::Instant::now() < until,
            "{} bytes still held",
            budget.held()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let long = "a long account of the home visit. ".repeat(10_000);
    let author = probe.author;
    probe
        .nurse
        .edit(|txn| {
            Board::in_txn(txn).add_item(
                txn,
                NewItem {
                    id: "long",
                    heading: "worries",
                    text: &long,
                    author,
                    said_by: None,
                    children: &[],
                },
            )
        })
        .await;
    probe
        .minutes
        .wait_within(Duration::from_secs(10), |c| {
            c.board().iter().any(|i| i.id == "long")
        })
        .await;
}

/// A parent sends updates the server refuses (items on the board, which a parent may
/// not add), 150 a second from each of four connections for three seconds, into a
/// document of 4 MiB. A refusal used to reload the whole document (431 ms each on
/// 32 MiB, and a meeting waiting 15 s): now it costs no more than reading the update.
/// Every refused update is answered, nobody sees any of them, the server's memory
/// grows by less than 64 MiB, the meeting's edits arrive as quickly as before, and
/// the server is not left catching up once the parent stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_updates_cost_only_their_reading_and_the_meeting_does_not_notice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _one = ONE_AT_A_TIME.lock().await;
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let (conf, parent_token, _, mut probe, _) = meeting(&app).await;
    // 4 MiB of the nurse's own words: what a reload would have read each time.
    let words = "School says attendance is 80% this term. ".repeat(6 * 1024);
    let author = probe.author;
    for n in 0..16 {
        probe
            .nurse
            .add_item(&format!("notes-{n}"), author, &words)
            .await;
    }
    probe
        .minutes
        .wait_within(Duration::from_secs(60), |c| {
            c.board().iter().any(|i| i.id == "notes-15")
        })
        .await;
    let mut quiet = Vec::new();
    for _ in 0..20 {
        quiet.push(probe.once().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The parent's four connections are open (each was sent the whole document)
    // before memory is measured: what is measured is the refusals.
    let mut parents = Vec::new();
    for _ in 0..4 {
        parents.push(app.connect(&conf, &parent_token).await);
    }
    let before = reset_peak_resident();
    let done = AtomicBool::new(false);
    let attack = async {
        let attackers = parents
            .into_iter()
            .enumerate()
            .map(|(attacker, mut parent)| {
                tokio::spawn(async move {
                    let parent_id = roundtable_shared::ParticipantId(uuid::Uuid::nil());
                    let until = std::time::Instant::now() + Duration::from_secs(3);
                    let mut sent = 0usize;
                    while std::time::Instant::now() < until && sent < 450 {
                        let id = format!("from-parent-{attacker}-{sent}");
                        parent
                            .add_item(&id, parent_id, "I want this on the board")
                            .await;
                        sent += 1;
                        tokio::time::sleep(Duration::from_micros(6_667)).await;
                    }
                    parent
                        .wait_within(Duration::from_secs(10), |c| c.refusals.len() >= sent)
                        .await;
                    (sent, parent.refusals.len())
                })
            });
        let results: Vec<_> = futures_util::future::join_all(attackers)
            .await
            .into_iter()
            .map(|attacker| attacker.expect("an attacker"))
            .collect();
        done.store(true, Ordering::Relaxed);
        results
    };
    let (results, attacked) = tokio::join!(attack, probe.until(&done));
    let grown = peak_resident().saturating_sub(before);
    let sent: usize = results.iter().map(|(sent, _)| sent).sum();
    eprintln!(
        "refused updates: {sent} sent from 4 connections, peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    for (sent, refused) in &results {
        assert_eq!(refused, sent, "every refused update is answered");
    }
    assert!(
        probe
            .minutes
            .board()
            .iter()
            .all(|i| !i.id.starts_with("from-parent")),
        "nobody sees a refused update"
    );
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    unnoticed(&quiet, &attacked, Duration::from_millis(200));
    // Nothing left to catch up on: the next edits arrive as they did before.
    let mut after = Vec::new();
    for _ in 0..10 {
        after.push(probe.once().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unnoticed(&quiet, &after, Duration::from_millis(100));
}

/// A professional writes into the conference as fast as they can, 64 KiB at a time,
/// until the server stops them at what one person may write (2 MiB here: the limit is
/// a setting, 8 MiB by default; without it one person filled the 32 MiB document in
/// two seconds and froze the conference for everyone). They are told why, can still
/// delete what they wrote, everyone else goes on writing, the server's memory grows
/// by less than 64 MiB and the meeting's edits arrive as quickly as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_filling_a_conference_is_stopped_and_the_meeting_does_not_notice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const QUOTA: usize = 2 * 1024 * 1024;
    const PERSON_FULL: &str =
        "you have written as much into this conference as one person may: ask the chair";
    let _one = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn_with(roundtable_server::sync::Limits {
        max_participant_bytes: QUOTA,
        ..roundtable_server::sync::Limits::default()
    })
    .await;
    let (conf, _, (filler_id, filler_token), mut probe, quiet) = meeting(&app).await;
    let before = reset_peak_resident();
    let done = AtomicBool::new(false);
    let attack = async {
        let mut filler = app.connect(&conf, &filler_token).await;
        let words = "x".repeat(64 * 1024);
        let mut written = 0;
        while written < 4 * QUOTA && !filler.refusals.iter().any(|r| r == PERSON_FULL) {
            filler
                .add_item(&format!("fill-{written}"), filler_id, &words)
                .await;
            written += words.len();
            filler.settle(Duration::from_millis(5)).await;
        }
        done.store(true, Ordering::Relaxed);
        (filler, written)
    };
    let ((mut filler, written), attacked) = tokio::join!(attack, probe.until(&done));
    let grown = peak_resident().saturating_sub(before);
    eprintln!(
        "filling: {} KiB written before the refusal, peak resident memory grew by {} MiB",
        written / 1024,
        grown / 1024 / 1024
    );
    assert!(
        filler.refusals.iter().any(|r| r == PERSON_FULL),
        "{:?}",
        filler.refusals
    );
    assert!(written <= QUOTA + 2 * 64 * 1024, "{written} bytes written");
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    unnoticed(&quiet, &attacked, Duration::from_millis(200));
    // What they wrote they can still delete, in a copy of their own up to date with
    // the server (theirs holds what was refused).
    let mut again = app.connect(&conf, &filler_token).await;
    again
        .edit(|txn| {
            Board::in_txn(txn).delete_item(txn, "fill-0");
        })
        .await;
    probe
        .minutes
        .wait_within(Duration::from_secs(10), |c| {
            !c.board().iter().any(|i| i.id == "fill-0")
        })
        .await;
    assert!(again.refusals.is_empty(), "{:?}", again.refusals);
    filler.settle(Duration::from_millis(1)).await;
}

/// The 99th percentile of `took` (the slowest of fewer than 100).
fn p99(took: &[Duration]) -> Duration {
    let mut sorted = took.to_vec();
    sorted.sort();
    let at = (sorted.len() * 99).div_ceil(100).saturating_sub(1);
    sorted.get(at).copied().unwrap_or_default()
}

/// As [`unnoticed`], and the 99th percentile within `slower` of the one before.
fn unnoticed_at_p99(quiet: &[Duration], attacked: &[Duration], slower: Duration) {
    eprintln!(
        "relay latency p99: before the attack {:?}, during it {:?}",
        p99(quiet),
        p99(attacked)
    );
    unnoticed(quiet, attacked, slower);
    assert!(
        p99(attacked) < p99(quiet) + slower,
        "p99 {:?} during the attack, {:?} before it",
        p99(attacked),
        p99(quiet)
    );
}

/// Answers by status.
type Answers = std::collections::BTreeMap<u16, usize>;

/// `attackers` tasks each send the requests `request(client, attacker, n)` makes,
/// one after another (one every `pace`, if given), for three seconds; their answers.
/// They share one pool of connections: the attackers' own memory is this process's
/// too.
async fn knock<F>(attackers: u32, pace: Option<Duration>, request: F) -> Answers
where
    F: Fn(&reqwest::Client, u32, u32) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = std::sync::Arc::new(request);
    let http = reqwest::Client::new();
    let until = std::time::Instant::now() + Duration::from_secs(3);
    let tasks = (0..attackers).map(|attacker| {
        let (http, request) = (http.clone(), std::sync::Arc::clone(&request));
        tokio::spawn(async move {
            let mut answers = Answers::new();
            let mut pace = pace.map(tokio::time::interval);
            let mut n = 0;
            while std::time::Instant::now() < until {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                n += 1;
                let response = request(&http, attacker, n).send().await;
                *answers
                    .entry(response.map_or(0, |r| r.status().as_u16()))
                    .or_default() += 1;
            }
            answers
        })
    });
    let mut all = Answers::new();
    for answers in futures_util::future::join_all(tasks).await {
        for (status, count) in answers.expect("an attacker") {
            *all.entry(status).or_default() += count;
        }
    }
    all
}

/// The front door with a trusted proxy on the loopback, so that one test can knock
/// from as many addresses as an attacker with a network of machines.
fn behind_a_proxy() -> roundtable_server::door::Settings {
    roundtable_server::door::Settings {
        trust_forwarded_for: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    }
}

/// 128 clients sign in with wrong passwords as fast as they can for three seconds,
/// each attempt from an address and for an account of its own, so that nothing but
/// the bound on password checks holds them (one address alone is refused after 20:
/// `api/door.rs`). Before the bound, 128 attempts at once took 1.86 GiB and the
/// meeting beside them waited up to 2.8 s for an edit. Now at most half the cores
/// check passwords, at a lower priority than the meetings, 16 more wait and the rest
/// are refused at once (503): memory grows by less than 64 MiB and the meeting does
/// not notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sign_ins_holds_bounded_memory_and_the_meeting_does_not_notice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _one = ONE_AT_A_TIME.lock().await;
    let app = std::sync::Arc::new(
        TestApp::spawn_limited(roundtable_server::sync::Limits::default(), behind_a_proxy()).await,
    );
    let (_, _, _, mut probe, quiet) = meeting(&app).await;
    let before = reset_peak_resident();
    let done = AtomicBool::new(false);
    let attack = async {
        let target = std::sync::Arc::clone(&app);
        let answers = knock(128, None, move |http, client, n| {
            http.post(target.url("/api/session"))
                .header("x-forwarded-for", format!("2001:db8:{client:x}:{n:x}::1"))
                .json(&serde_json::json!({
                    "email": format!("guess-{client}-{n}@example.org"),
                    "password": "a guess",
                }))
        })
        .await;
        done.store(true, Ordering::Relaxed);
        answers
    };
    let (answers, attacked) = tokio::join!(attack, probe.until(&done));
    let grown = peak_resident().saturating_sub(before);
    eprintln!(
        "sign-in flood: answers {answers:?}, peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    assert!(
        answers.keys().all(|status| matches!(status, 401 | 503)),
        "{answers:?}"
    );
    assert!(answers.contains_key(&503), "some were refused: {answers:?}");
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    // In a debug build, with the 128 attackers in this process on the same two cores
    // (thousands of refusals a second), the meeting does notice a little: see
    // `docs/reliability.md` for the figures, a release build's among them.
    unnoticed_at_p99(&quiet, &attacked, Duration::from_millis(200));
}

/// One address guesses room codes as fast as it can from eight connections for
/// three seconds, and asks to join the lobby it found with fifty names: its guesses
/// past its allowance are refused (429) without a look, it takes only its share of
/// the lobby, a family member from another address still gets in, memory stays put
/// and the meeting does not notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_room_codes_and_filling_a_lobby_are_held_and_the_meeting_does_not_notice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _one = ONE_AT_A_TIME.lock().await;
    let app = std::sync::Arc::new(
        TestApp::spawn_limited(roundtable_server::sync::Limits::default(), behind_a_proxy()).await,
    );
    let (conf, _, _, mut probe, quiet) = meeting(&app).await;
    let chair = app.signed_in_chair().await;
    let code = app.room_code(&chair, &conf).await;
    let before = reset_peak_resident();
    let done = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let attack = async {
        let (target, code) = (std::sync::Arc::clone(&app), code.clone());
        // 125 a second from each of eight, 1,000 in all: a little faster than the one
        // client measured against a release build (745 to 866 a second).
        let pace = Some(Duration::from_millis(8));
        let answers = knock(8, pace, move |http, guesser, n| {
            // Now and then the right code, as if it had been found.
            let guess = if n % 10 == 0 {
                code.clone()
            } else {
                format!("G{guesser:02}{n:09}")
            };
            http.post(target.url("/api/lobby"))
                .header("x-forwarded-for", "198.51.100.7")
                .json(&serde_json::json!({ "room_code": guess, "name": format!("Stranger {guesser} {n}") }))
        })
        .await;
        done.store(true, Ordering::Relaxed);
        answers
    };
    let (answers, attacked) = tokio::join!(attack, probe.until(&done));
    let took = started.elapsed();
    let grown = peak_resident().saturating_sub(before);
    let tried: usize = answers.values().sum();
    eprintln!(
        "room code guesses: {tried} in {took:?} ({:.0} a second), answers {answers:?}, peak resident memory grew by {} MiB",
        tried as f64 / took.as_secs_f64(),
        grown / 1024 / 1024
    );
    // A burst of 20 and 20 a minute: of thousands, only those were looked at.
    let looked_at = tried - answers.get(&429).copied().unwrap_or(0);
    assert!(
        looked_at <= 20 + 2,
        "{looked_at} guesses were looked at: {answers:?}"
    );
    assert!(answers.get(&201).copied().unwrap_or(0) <= 15, "{answers:?}");
    assert!(
        grown < BOUND,
        "peak resident memory grew by {} MiB",
        grown / 1024 / 1024
    );
    // The family member, on another address, gets in.
    let family = reqwest::Client::new()
        .post(app.url("/api/lobby"))
        .header("x-forwarded-for", "192.0.2.1")
        .json(&serde_json::json!({ "room_code": code, "name": "Nan Taylor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(family.status(), 201);
    unnoticed_at_p99(&quiet, &attacked, Duration::from_millis(100));
}
