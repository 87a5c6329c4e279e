//! Hostile frames against the real server, in a test binary of their own so that the
//! process's peak memory belongs to these tests alone: each sends its frames from a
//! parent's connection and checks that the server's peak resident memory grew by less
//! than 64 MiB, that the sender was closed with a reason, and that the meeting went on
//! for everyone else.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::TestApp;
use roundtable_shared::doc::{Board, NewItem};
use tokio::sync::Mutex;

/// One at a time: they measure the whole process's memory.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The most the server's peak resident memory may grow by while a test's frames arrive.
const BOUND: u64 = 64 * 1024 * 1024;

/// The process's peak resident memory so far (`VmHWM`), in bytes.
fn peak_resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
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
    let before = peak_resident();
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
