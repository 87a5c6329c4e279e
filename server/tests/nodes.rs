//! Several real `roundtable serve` processes on one fresh PostgreSQL database, as
//! behind a load balancer without sticky sessions: people on different nodes see
//! each other's words as if there were one server; a forbidden change sent through
//! a node that does not own the document is refused as on one node and reaches
//! nobody; killing the owner (SIGKILL) in the middle of a burst loses nothing that
//! was confirmed or relayed, and everyone converges on the survivors; an owner
//! paused (SIGSTOP) past its lease writes nothing when it wakes.
//!
//! Needs `ROUNDTABLE_TEST_DATABASE_URL`, a PostgreSQL cluster (`scripts/test.sh`
//! starts one); without it every test says it was skipped. Run with
//! `-- --nocapture` to see the figures, the takeover time among them.

#[path = "nodes/client.rs"]
mod client;
#[path = "crash/conference.rs"]
mod conference;
#[allow(dead_code)]
#[path = "api/database.rs"]
mod database;
#[path = "nodes/node.rs"]
mod node;
#[allow(dead_code)]
#[path = "crash/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "crash/store.rs"]
mod store;
#[path = "crash/typist.rs"]
mod typist;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roundtable_shared::doc::Board;
use roundtable_shared::gate::{Gate, Sender, Verdict};
use roundtable_shared::{ParticipantId, Phase, Role};
use sqlx::{Connection, PgConnection, Row};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, Transact, Update};

use client::Client;
use database::{Engine, TestDatabase, postgres_available};
use node::Node;
use typist::{Mode, Person, Typist};

/// One test at a time: each starts several servers, and the takeover it measures
/// should not wait for another test's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A document's lease lasts this long unless renewed (the server's default).
const LEASE: Duration = Duration::from_secs(5);
/// Longest wait for any one condition in the burst test.
const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh database with the chair's account, and `n` nodes on it; `None` if there
/// is no PostgreSQL to test on.
async fn nodes(n: usize) -> Option<(TestDatabase, String, Vec<Node>)> {
    if !postgres_available() {
        eprintln!("skipped: ROUNDTABLE_TEST_DATABASE_URL is unset (scripts/test.sh sets it)");
        return None;
    }
    let database = TestDatabase::create_on(Engine::Postgres).await;
    let url = database.url().expect("a PostgreSQL URL");
    server::add_chair(&["--database-url".into(), url.clone().into()]);
    let mut nodes = Vec::new();
    for name in ["node-a", "node-b", "node-c"].into_iter().take(n) {
        nodes.push(Node::start(name, &url).await);
    }
    Some((database, url, nodes))
}

/// The people of every test's conference: who types, and as what.
const PEOPLE: [(char, &str, &str); 6] = [
    ('a', "Ali Minutes", "minute_taker"),
    ('b', "Bo Minutes", "minute_taker"),
    ('c', "Pat Nurse", "professional"),
    ('d', "Kim Police", "professional"),
    ('e', "Jo Parent", "parent"),
    ('f', "Max Teacher", "professional"),
];

/// Signs the chair in through one node and creates the conference through another:
/// a sign-in holds on every node.
async fn set_up(sign_in: &Node, create: &Node) -> (String, Vec<Person>) {
    let (conference, people, _) = set_up_as_chair(sign_in, create).await;
    (conference, people)
}

/// As [`set_up`], with the chair's session cookie.
async fn set_up_as_chair(sign_in: &Node, create: &Node) -> (String, Vec<Person>, String) {
    conference::set_up(&sign_in.url(""), &create.url(""), &PEOPLE).await
}

fn person(people: &[Person], letter: char) -> &Person {
    people
        .iter()
        .find(|p| p.letter == letter)
        .expect("one of the people")
}

async fn connect(name: &'static str, node: &Node, conference: &str, person: &Person) -> Client {
    Client::connect(
        name,
        &node.sync_url(conference),
        &person.participant,
        &person.token,
    )
    .await
}

/// The rows of the conference's shared document: its snapshot, and its log with
/// who sent each update.
async fn stored_rows(
    url: &str,
    conference: &str,
) -> (Option<Vec<u8>>, Vec<(i64, Option<String>, Vec<u8>)>) {
    let mut db = PgConnection::connect(url)
        .await
        .expect("the database answers");
    let snapshot = sqlx::query(
        "SELECT through_seq, data FROM document_snapshots
         WHERE conference_id = $1 AND document = 'shared'",
    )
    .bind(conference)
    .fetch_optional(&mut db)
    .await
    .expect("the snapshot reads")
    .map(|row| {
        (
            row.get::<i64, _>("through_seq"),
            row.get::<Vec<u8>, _>("data"),
        )
    });
    let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
    let log = sqlx::query(
        "SELECT seq, participant_id, data FROM document_updates
         WHERE conference_id = $1 AND document = 'shared' AND seq > $2 ORDER BY seq",
    )
    .bind(conference)
    .bind(after)
    .fetch_all(&mut db)
    .await
    .expect("the log reads")
    .into_iter()
    .map(|row| (row.get("seq"), row.get("participant_id"), row.get("data")))
    .collect();
    db.close().await.expect("the connection closes");
    (snapshot.map(|(_, data)| data), log)
}

/// The shared document as a node loads it, checked whole: nothing pending, no hole.
async fn stored(url: &str, conference: &str) -> Doc {
    let (snapshot, log) = stored_rows(url, conference).await;
    store::from_parts(snapshot.iter().chain(log.iter().map(|(_, _, data)| data)))
}

/// Fails if two rows of the log insert the same content: no update was stored twice,
/// by two owners or by one twice. Returns how many rows the whole log holds.
async fn assert_no_row_repeats_another(url: &str, conference: &str) -> usize {
    let mut db = PgConnection::connect(url)
        .await
        .expect("the database answers");
    let log: Vec<(i64, Vec<u8>)> = sqlx::query(
        "SELECT seq, data FROM document_updates
         WHERE conference_id = $1 AND document = 'shared' ORDER BY seq",
    )
    .bind(conference)
    .fetch_all(&mut db)
    .await
    .expect("the log reads")
    .into_iter()
    .map(|row| (row.get("seq"), row.get("data")))
    .collect();
    db.close().await.expect("the connection closes");
    let mut seen: BTreeMap<u64, Vec<(u32, u32, i64)>> = BTreeMap::new();
    for (seq, data) in &log {
        let update = Update::decode_v1(data).expect("a stored update decodes");
        for (client, ranges) in update.insertions(true).iter() {
            for range in ranges.iter() {
                let earlier = seen.entry(client.get()).or_default();
                if let Some((start, end, other)) = earlier
                    .iter()
                    .find(|(start, end, _)| range.start < *end && *start < range.end)
                {
                    panic!(
                        "rows {other} and {seq} both insert changes of {client} ({start}..{end} and {range:?})"
                    );
                }
                earlier.push((range.start, range.end, *seq));
            }
        }
    }
    log.len()
}

/// Which node holds the document's lease, and at which epoch.
async fn lease(url: &str, conference: &str) -> (String, i64) {
    let mut db = PgConnection::connect(url)
        .await
        .expect("the database answers");
    let row = sqlx::query(
        "SELECT node, epoch FROM document_leases WHERE conference_id = $1 AND document = 'shared'",
    )
    .bind(conference)
    .fetch_one(&mut db)
    .await
    .expect("the document has a lease");
    db.close().await.expect("the connection closes");
    (row.get("node"), row.get("epoch"))
}

fn items(doc: &Doc) -> Vec<(String, String)> {
    let txn = doc.transact();
    Board::get(&txn)
        .map(|b| b.items(&txn).into_iter().map(|i| (i.id, i.text)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_through_any_node_reaches_the_people_on_every_other() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, url, nodes)) = nodes(3).await else {
        return;
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (conference, people) = set_up(a, b).await;
    // Whoever opens the document first owns it: Ali, on node A.
    let mut ali = connect("Ali", a, &conference, person(&people, 'a')).await;
    // (Creating the conference through node B wrote its first state under a lease
    // of B's, given up since.)
    let owned = lease(&url, &conference).await;
    assert_eq!(owned.0, a.name);
    let mut pat = connect("Pat", c, &conference, person(&people, 'c')).await;
    let mut jo = connect("Jo", b, &conference, person(&people, 'e')).await;

    ali.add_item("from-a", "Said on node A").await;
    ali.saved().await;
    pat.wait_until("shown Ali's item", |c| c.has_item("from-a"))
        .await;
    jo.wait_until("shown Ali's item", |c| c.has_item("from-a"))
        .await;

    // Through a node that does not own the document: forwarded to its owner, stored,
    // and relayed to everyone (not back to its sender, who has it).
    let before = pat.received.len();
    pat.add_item("from-c", "Said on node C").await;
    pat.saved().await;
    ali.wait_until("shown Pat's item", |c| c.has_item("from-c"))
        .await;
    jo.wait_until("shown Pat's item", |c| c.has_item("from-c"))
        .await;
    pat.linger(Duration::from_millis(300)).await;
    assert_eq!(
        pat.received.len(),
        before,
        "Pat's own item came back to Pat"
    );

    let store = stored(&url, &conference).await;
    assert_eq!(items(&store), ali.items());
    assert_eq!(items(&store), pat.items());
    assert_eq!(items(&store), jo.items());
    assert_no_row_repeats_another(&url, &conference).await;
    assert_eq!(
        lease(&url, &conference).await,
        owned,
        "one owner throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_edit_through_a_node_that_does_not_own_the_document_is_refused_as_on_one_node_and_reaches_nobody()
 {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, url, nodes)) = nodes(3).await else {
        return;
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (conference, people) = set_up(b, c).await;
    let mut ali = connect("Ali", a, &conference, person(&people, 'a')).await;
    ali.add_item("worry", "Said by Ali").await;
    ali.saved().await;
    let mut jo = connect("Jo", b, &conference, person(&people, 'e')).await;
    let mut pat = connect("Pat", c, &conference, person(&people, 'c')).await;

    // A parent may not write on the board. One node's gate, over the document as
    // stored, says why.
    jo.add_item("from-parent", "Written by a parent").await;
    let update = jo.unconfirmed_update().expect("Jo's item is unconfirmed");
    let (snapshot, log) = stored_rows(&url, &conference).await;
    let parts: Vec<&[u8]> = snapshot
        .iter()
        .map(|s| s.as_slice())
        .chain(log.iter().map(|(_, _, data)| data.as_slice()))
        .collect();
    let mut one_node = Gate::load(parts).expect("the stored document loads");
    let jo_id: ParticipantId = person(&people, 'e').participant.parse().expect("an id");
    let sender = Sender {
        participant: jo_id,
        role: Role::Parent,
    };
    let Verdict::Refused(expected) = one_node.admit(sender, &update) else {
        panic!("one node refuses a parent's item");
    };

    jo.wait_until("refused", |c| !c.refusals.is_empty()).await;
    assert_eq!(jo.refusals, [expected.to_string()]);
    // Jo's copy is the server's again, without the item.
    jo.wait_until("given the server's copy", |c| !c.has_item("from-parent"))
        .await;
    ali.linger(Duration::from_millis(500)).await;
    pat.linger(Duration::from_millis(100)).await;
    assert!(!ali.has_item("from-parent") && !pat.has_item("from-parent"));
    let store = stored(&url, &conference).await;
    assert!(!items(&store).iter().any(|(id, _)| id == "from-parent"));
    let (_, log) = stored_rows(&url, &conference).await;
    assert!(
        !log.iter()
            .any(|(_, sender, _)| sender.as_deref() == Some(&person(&people, 'e').participant)),
        "nothing of Jo's is stored"
    );

    // The meeting goes on.
    pat.add_item("after", "Said after the refusal").await;
    pat.saved().await;
    jo.wait_until("shown Pat's item", |c| c.has_item("after"))
        .await;
    ali.wait_until("shown Pat's item", |c| c.has_item("after"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_through_a_node_that_does_not_own_the_document_is_written_by_its_owner_and_a_removal_closes_connections_everywhere()
 {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, url, nodes)) = nodes(3).await else {
        return;
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (conference, people, cookie) = set_up_as_chair(a, b).await;
    let mut ali = connect("Ali", a, &conference, person(&people, 'a')).await;
    let owned = lease(&url, &conference).await;
    assert_eq!(owned.0, a.name);
    let mut pat = connect("Pat", b, &conference, person(&people, 'c')).await;
    let mut jo = connect("Jo", b, &conference, person(&people, 'e')).await;

    // The chair moves the meeting on through node C, which has nobody in it: the
    // change is made there, forwarded to node A, stored, and reaches everyone.
    let http = reqwest::Client::new();
    let moved = http
        .post(c.url(&format!("/api/conferences/{conference}/phase")))
        .header("cookie", &cookie)
        .json(&serde_json::json!({ "phase": "information_sharing" }))
        .send()
        .await
        .expect("the command is answered");
    assert_eq!(moved.status(), 200);
    let sharing = |c: &Client| c.phase() == Some(Phase::InformationSharing);
    ali.wait_until("moved on", sharing).await;
    pat.wait_until("moved on", sharing).await;
    jo.wait_until("moved on", sharing).await;
    assert_eq!(
        lease(&url, &conference).await,
        owned,
        "node A owns it still"
    );
    let store = stored(&url, &conference).await;
    assert_eq!(
        roundtable_shared::doc::read_phase(&store.transact()),
        Some(Phase::InformationSharing)
    );
    assert_no_row_repeats_another(&url, &conference).await;

    // The chair removes Jo through node C; Jo is connected to node B, and is cut off
    // there too.
    let jo_id = &person(&people, 'e').participant;
    let removed = http
        .delete(c.url(&format!(
            "/api/conferences/{conference}/participants/{jo_id}"
        )))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("the command is answered");
    assert_eq!(removed.status(), 204);
    jo.wait_until("cut off", |c| c.closed).await;
    assert_eq!(jo.close_code, Some(4403));
    // The others carry on.
    pat.add_item("after", "Said after Jo left").await;
    pat.saved().await;
    ali.wait_until("shown Pat's item", |c| c.has_item("after"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_nodes_under_the_names_the_servers_know_and_nobody_takes_another_s_id() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, _url, nodes)) = nodes(3).await else {
        return;
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (conference, people) = set_up(a, b).await;
    let mut ali = connect("Ali", a, &conference, person(&people, 'a')).await;
    let mut pat = connect("Pat", c, &conference, person(&people, 'c')).await;
    let (ali_id, pat_id) = (ali.client_id(), pat.client_id());

    // Ali, on node A, says what she is editing; Pat sees it on node C, under the
    // name the server knows (not the one Ali's device claims).
    ali.announce_as(
        ali_id,
        1,
        serde_json::json!({ "editing": "item-1", "user": { "name": "Not Ali" } }),
    )
    .await;
    pat.wait_until("shown Ali editing", |c| {
        c.presence_of(ali_id)
            .is_some_and(|s| s["editing"] == "item-1" && s["user"]["name"] == "Ali Minutes")
    })
    .await;
    pat.announce_as(pat_id, 1, serde_json::json!({})).await;
    ali.wait_until("shown Pat", |c| c.presence_of(pat_id).is_some())
        .await;

    // Jo opens the document on node B, which had nobody in it: the others' states
    // come to it.
    let mut jo = connect("Jo", b, &conference, person(&people, 'e')).await;
    jo.wait_until("shown Ali and Pat", |c| {
        c.names_present() == ["Ali Minutes", "Pat Nurse"]
    })
    .await;

    // Pat tries to take Ali's id, on node C: nobody sees it.
    pat.announce_as(ali_id, 50, serde_json::json!({ "editing": "item-9" }))
        .await;
    pat.announce_as(pat_id, 2, serde_json::json!({ "editing": "item-2" }))
        .await;
    jo.wait_until("shown Pat's next state", |c| {
        c.presence_of(pat_id)
            .is_some_and(|s| s["editing"] == "item-2")
    })
    .await;
    for (who, client) in [("Jo", &jo), ("Pat", &pat), ("Ali", &ali)] {
        if who == "Ali" {
            continue;
        }
        let state = client.presence_of(ali_id).expect("Ali is present");
        assert_eq!(
            state["editing"], "item-1",
            "{who} sees Pat's state under Ali's id"
        );
        assert_eq!(state["user"]["name"], "Ali Minutes");
    }

    // Ali leaves: she is gone from every node.
    drop(ali);
    pat.wait_until("told Ali left", |c| c.presence_of(ali_id).is_none())
        .await;
    jo.wait_until("told Ali left", |c| c.names_present() == ["Pat Nurse"])
        .await;
}

/// The chair's HTTP client, signed in with `cookie`, on `node`.
async fn chair_post(
    node: &Node,
    cookie: &str,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(node.url(path))
        .header("cookie", cookie)
        .json(&body)
        .send()
        .await
        .expect("the command is answered")
}

/// Reads `stream` (server-sent events) until an `event: scales` whose body passes
/// `done`, or fails after 10 s.
async fn next_scales(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if !block.lines().any(|l| l.trim() == "event: scales") {
                    continue;
                }
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                let value = serde_json::from_str(&data).expect("the event's body is JSON");
                if done(&value) {
                    return value;
                }
            }
            let chunk = stream
                .chunk()
                .await
                .expect("the stream reads")
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the phone's page hears of it within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phones_on_another_node_follow_the_scale_and_no_score_counts_that_lost_the_race_with_its_close()
 {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, _url, nodes)) = nodes(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (conference, people, cookie) = set_up_as_chair(a, a).await;
    let path = |rest: &str| format!("/api/conferences/{conference}{rest}");
    let jo = person(&people, 'e');

    // Jo's phone follows the scales through node B; the chair works through node A.
    let mut stream = reqwest::Client::new()
        .get(b.url(&path("/scales/live")))
        .bearer_auth(&jo.token)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    let mut buffer = String::new();
    next_scales(&mut stream, &mut buffer, |_| true).await;
    let opened = chair_post(
        a,
        &cookie,
        &path("/scales"),
        serde_json::json!({ "subject": { "kind": "all_children" } }),
    )
    .await;
    assert_eq!(opened.status(), 201);
    let scale: serde_json::Value = opened.json().await.expect("a JSON answer");
    let scale = scale["id"].as_str().expect("the scale's id").to_owned();
    next_scales(&mut stream, &mut buffer, |v| {
        v["scales"][0]["status"] == "open"
    })
    .await;

    // Everyone but the chair scores through node B, again and again, while the chair
    // closes the scale through node A: each score is either counted or refused.
    let voters: Vec<Person> = people
        .iter()
        .filter(|p| p.letter != 'a' && p.letter != 'b')
        .cloned()
        .collect();
    let vote_url = b.url(&path(&format!("/scales/{scale}/vote")));
    let scoring: Vec<_> = voters
        .iter()
        .map(|voter| {
            let (url, token, participant) = (
                vote_url.clone(),
                voter.token.clone(),
                voter.participant.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                // The last score each was told was counted, and how many were refused.
                let (mut counted, mut refused) = (None, 0);
                for round in 0..200u32 {
                    let score = round % 11;
                    let answer = http
                        .put(&url)
                        .bearer_auth(&token)
                        .json(&serde_json::json!({ "score": score }))
                        .send()
                        .await
                        .expect("the score is answered");
                    match answer.status().as_u16() {
                        200 | 204 => {
                            assert_eq!(refused, 0, "a score counted after one was refused");
                            counted = Some(score);
                        }
                        409 => refused += 1,
                        other => panic!("a score got {other}"),
                    }
                    if refused >= 3 {
                        break;
                    }
                }
                (participant, counted, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed = chair_post(
        a,
        &cookie,
        &path(&format!("/scales/{scale}/close")),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(closed.status(), 200);
    let mut told = BTreeMap::new();
    for task in scoring {
        let (participant, counted, refused) = task.await.expect("scoring ends");
        assert!(
            refused >= 3,
            "{participant}'s scores were still counted after the close"
        );
        told.insert(participant, counted);
    }
    let revealed = chair_post(
        a,
        &cookie,
        &path(&format!("/scales/{scale}/reveal")),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(revealed.status(), 200);
    // Jo's phone, on node B, hears of the reveal.
    let seen = next_scales(&mut stream, &mut buffer, |v| {
        v["scales"][0]["status"] == "revealed"
    })
    .await;
    let results: BTreeMap<String, Option<u64>> = seen["scales"][0]["results"]
        .as_array()
        .expect("the results")
        .iter()
        .map(|r| {
            (
                r["participant"].as_str().expect("who").to_owned(),
                r["score"].as_u64(),
            )
        })
        .collect();
    let expected: BTreeMap<String, Option<u64>> = told
        .into_iter()
        .filter(|(_, counted)| counted.is_some())
        .map(|(who, counted)| (who, counted.map(u64::from)))
        .collect();
    assert_eq!(
        results, expected,
        "the results are the scores each was told were counted, and only those"
    );
    assert!(!expected.is_empty(), "nobody scored before the close");

    // A score after the reveal is refused through either node.
    for node in [a, b] {
        let late = reqwest::Client::new()
            .put(node.url(&path(&format!("/scales/{scale}/vote"))))
            .bearer_auth(&jo.token)
            .json(&serde_json::json!({ "score": 10 }))
            .send()
            .await
            .expect("the score is answered");
        assert_eq!(late.status(), 409);
    }
}

/// Waits until `done` holds for every typist, or fails saying where each one is.
async fn wait_for_all(typists: &[Typist], what: &str, done: impl Fn(&typist::Replica) -> bool) {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(failed) = typists.iter().find(|t| t.failed()) {
            panic!("typist {} stopped unexpectedly", failed.person.letter);
        }
        if typists.iter().all(|t| done(&t.replica())) {
            return;
        }
        if Instant::now() > until {
            let states: Vec<String> = typists
                .iter()
                .map(|t| {
                    let r = t.replica();
                    format!(
                        "{} on {}: connected {}, in step {}, unconfirmed {}, refusals {:?}",
                        t.person.letter,
                        r.target,
                        r.connected(),
                        r.in_step(),
                        r.unsaved(),
                        r.refusals
                    )
                })
                .collect();
            panic!(
                "not every typist was {what} within {DEADLINE:?}:\n{}",
                states.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_in_a_burst_of_writes_loses_nothing_saved_and_everyone_converges_on_the_others()
 {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, url, mut nodes)) = nodes(3).await else {
        return;
    };
    let (conference, people) = set_up(&nodes[1], &nodes[2]).await;
    let targets: Vec<String> = nodes.iter().map(|n| n.sync_url(&conference)).collect();
    let targets: typist::Targets = Arc::new(Mutex::new(targets));
    // Ali first, on node A, which so owns the document; the others spread over the
    // three nodes. Max watches from node B, to time the takeover.
    let typing_every = Duration::from_millis(25);
    let typers: Vec<&Person> = people.iter().filter(|p| p.letter != 'f').collect();
    let mut typists = vec![Typist::start(
        targets.clone(),
        0,
        typers[0].clone(),
        1,
        typing_every,
    )];
    wait_for_all(&typists, "in step", |r| r.in_step()).await;
    assert_eq!(lease(&url, &conference).await.0, nodes[0].name);
    for (n, person) in typers.iter().enumerate().skip(1) {
        typists.push(Typist::start(
            targets.clone(),
            n,
            (*person).clone(),
            n as u64 + 1,
            typing_every,
        ));
    }
    let mut max = connect("Max", &nodes[1], &conference, person(&people, 'f')).await;
    wait_for_all(&typists, "in step", |r| r.in_step()).await;

    // The burst: everyone types; then node A dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let on_a: Vec<char> = typists
        .iter()
        .filter(|t| t.replica().target == targets.lock().unwrap()[0])
        .map(|t| t.person.letter)
        .collect();
    nodes[0].kill();
    let killed = Instant::now();
    targets.lock().unwrap().remove(0);
    // Until its conference takes writes again: Max's item, sent now through node B,
    // is confirmed once another node has taken the document over.
    max.add_item("after-the-kill", "Said once node A was gone")
        .await;
    max.saved().await;
    let takeover = killed.elapsed();

    // Everything anyone was sent, or told was saved, before the store is read is in
    // it: taken first, then the store read.
    wait_for_all(&typists, "connected again", |r| {
        r.connected() && !r.target.contains(&nodes[0].addr.to_string())
    })
    .await;
    // Each typist's letter, the updates it received, and its own confirmed ones.
    type Taken = (char, Vec<Vec<u8>>, Vec<Vec<u8>>);
    let taken: Vec<Taken> = typists
        .iter()
        .map(|t| {
            let mut r = t.replica();
            let received = std::mem::take(&mut r.received);
            let acknowledged = std::mem::take(&mut r.acknowledged);
            (t.person.letter, received, acknowledged)
        })
        .collect();
    let store = stored(&url, &conference).await;
    let snapshot = store.transact().snapshot();
    let (mut received_checked, mut acknowledged_checked) = (0, 0);
    for (letter, received, acknowledged) in &taken {
        for update in received {
            if let Some(missing) = store::missing(&snapshot, update) {
                panic!("{letter} was sent an update that is not stored: {missing}");
            }
        }
        for update in acknowledged {
            if let Some(missing) = store::missing(&snapshot, update) {
                panic!("{letter} was told an update was saved that is not stored: {missing}");
            }
        }
        received_checked += received.len();
        acknowledged_checked += acknowledged.len();
    }
    assert!(
        received_checked > 0 && acknowledged_checked > 0,
        "nothing was checked"
    );

    // Everyone converges, on the surviving nodes, on a document holding every word
    // each typed, once and in order.
    wait_for_all(&typists, "in step", |r| r.in_step()).await;
    for typist in &typists {
        typist.set_mode(Mode::Paused);
    }
    wait_for_all(&typists, "confirmed as saved", |r| {
        r.in_step() && r.unsaved() == 0
    })
    .await;
    let store = stored(&url, &conference).await;
    let state = store.transact().state_vector();
    wait_for_all(&typists, "caught up with the store", |r| {
        r.doc().transact().state_vector() == state
    })
    .await;
    let board = items(&store);
    let mut words_checked = 0;
    for typist in &typists {
        let replica = typist.replica();
        assert!(
            replica.refusals.is_empty(),
            "{} was refused: {:?}",
            typist.person.letter,
            replica.refusals
        );
        assert_eq!(
            items(replica.doc()),
            board,
            "{} reads another board",
            typist.person.letter
        );
        for (item, words) in &replica.typed {
            let text = &board
                .iter()
                .find(|(id, _)| id == item)
                .unwrap_or_else(|| panic!("the item {item} is not on the board"))
                .1;
            let found: Vec<&str> = text
                .split_whitespace()
                .filter(|w| w.starts_with(typist.person.letter))
                .collect();
            assert_eq!(
                found, *words,
                "the words {} typed into {item} are not there, once each and in order",
                typist.person.letter
            );
            words_checked += words.len();
        }
    }
    let rows = assert_no_row_repeats_another(&url, &conference).await;
    let (owner, epoch) = lease(&url, &conference).await;
    assert_ne!(owner, nodes[0].name);
    assert!(epoch >= 2);
    max.wait_until("caught up with the store", |c| c.state_vector() == state)
        .await;

    let edits: usize = typists.iter().map(|t| t.replica().edits).sum();
    println!(
        "nodes: owner node A killed (SIGKILL) in a burst; its conference took writes again after {:.0} ms (lease {} s); {} now owns it at epoch {epoch}",
        takeover.as_secs_f64() * 1000.0,
        LEASE.as_secs(),
        owner
    );
    println!(
        "  typists on node A when it died: {on_a:?}; {edits} changes typed; {received_checked} updates received and {acknowledged_checked} confirmed, each found stored; {rows} rows, none repeating another; {words_checked} words checked"
    );
    for typist in typists {
        typist.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_paused_past_its_lease_writes_nothing_when_it_wakes_and_nothing_is_lost() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some((_database, url, nodes)) = nodes(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let (conference, people) = set_up(a, b).await;
    let (ali_person, pat_person) = (person(&people, 'a'), person(&people, 'c'));
    let mut ali = connect("Ali", a, &conference, ali_person).await;
    let mut pat = connect("Pat", b, &conference, pat_person).await;
    ali.add_item("before", "Said before the pause").await;
    ali.saved().await;
    pat.wait_until("shown Ali's item", |c| c.has_item("before"))
        .await;
    let (owner, epoch) = lease(&url, &conference).await;
    assert_eq!(owner, a.name);

    // Node A stops, as a process does in a long pause (swapping, a debugger, a VM
    // frozen). Ali's next item waits in its socket; Pat's, through node B, waits
    // for an owner: node B takes the document over once A's lease has run out.
    a.signal("STOP");
    let paused = Instant::now();
    ali.add_item("while-paused", "Sent to the paused owner")
        .await;
    pat.add_item("during-pause", "Said while A was paused")
        .await;
    pat.saved().await;
    let taken_over = paused.elapsed();
    assert_eq!(lease(&url, &conference).await, (b.name.clone(), epoch + 1));

    // A wakes. What it still holds (Ali's item) it cannot store: its lease is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.signal("CONT");
    let until = Instant::now() + Duration::from_secs(15);
    let fenced = loop {
        let log = a.log();
        if log.contains("the document's lease is lost: nothing stored") {
            break "its write was refused by the lease's fence";
        }
        if log.contains("the document's lease could not be renewed in time") {
            break "it found its lease lost first, and forwarded";
        }
        assert!(
            Instant::now() < until,
            "node A never noticed it had lost the lease:\n{}",
            a.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Ali's item is kept on Ali's device until confirmed, through whichever node.
    ali.wait_until("confirmed, or cut off", |c| {
        c.closed || !c.has_unconfirmed()
    })
    .await;
    if ali.closed {
        ali.reconnect(&b.sync_url(&conference), &ali_person.token)
            .await;
    }
    ali.saved().await;
    pat.wait_until("shown Ali's item", |c| c.has_item("while-paused"))
        .await;

    let store = stored(&url, &conference).await;
    let ids: Vec<String> = items(&store).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for id in ["before", "while-paused", "during-pause"] {
        assert!(ids.iter().any(|i| i == id), "{id} is not stored: {ids:?}");
    }
    let rows = assert_no_row_repeats_another(&url, &conference).await;
    assert_eq!(lease(&url, &conference).await, (b.name.clone(), epoch + 1));
    ali.wait_until("caught up", |c| {
        c.state_vector() == store.transact().state_vector()
    })
    .await;
    println!(
        "nodes: owner node A paused (SIGSTOP); node B took over after {:.0} ms; on waking, {fenced}; {rows} rows, none repeating another",
        taken_over.as_secs_f64() * 1000.0
    );
}
