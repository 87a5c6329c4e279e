//! The server killed with SIGKILL at random moments while people type, again and
//! again, and started again on the same database and port.
//!
//! Four people who may write on the board (two minute-takers typing into one item
//! together, two professionals) and a parent who only reads keep going through every
//! crash, with connections that reconnect by themselves as the browser's do
//! (`crash/typist.rs`). After every kill, the database file is read as the server
//! will load it, and must hold every update any client received from the server
//! (relayed updates are stored before they are sent) and every update the server
//! confirmed as saved. After every restart the clients reconnect, send again what was
//! not confirmed, and converge with the store on one document holding every word
//! each of them typed, once and in order, and none they erased.
//!
//! `ROUNDTABLE_CRASH_CYCLES` sets the number of cycles (20 by default);
//! `ROUNDTABLE_CRASH_SEED` repeats a run's random choices (each run prints its seed). Run with
//! `-- --nocapture` to see the figures.

#[path = "crash/conference.rs"]
mod conference;
#[path = "crash/server.rs"]
mod server;
#[path = "crash/store.rs"]
mod store;
#[path = "crash/typist.rs"]
mod typist;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use roundtable_shared::doc::Board;
use yrs::{Doc, ReadTxn, StateVector, Transact};

use server::Server;
use typist::{Mode, Typist};

/// How often each writer makes a change.
const TYPING_EVERY: Duration = Duration::from_millis(25);
/// Longest a cycle types before the kill.
const LONGEST_RUN: Duration = Duration::from_millis(1500);
/// Longest wait for any one condition (clients disconnected, reconnected, in step).
const DEADLINE: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Totals {
    kills: usize,
    kills_while_reconnecting: usize,
    received_checked: usize,
    acknowledged_checked: usize,
    unconfirmed_at_kill: usize,
    convergences: usize,
    words_checked: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_at_random_moments_loses_nothing_received_or_confirmed_and_clients_converge()
 {
    let cycles: usize = std::env::var("ROUNDTABLE_CRASH_CYCLES")
        .ok()
        .map(|n| n.parse().expect("ROUNDTABLE_CRASH_CYCLES is a number"))
        .unwrap_or(20);
    let seed: u64 = std::env::var("ROUNDTABLE_CRASH_SEED")
        .ok()
        .map(|n| n.parse().expect("ROUNDTABLE_CRASH_SEED is a number"))
        .unwrap_or_else(|| rand::rng().random());
    println!(
        "crash test: {cycles} cycles, seed {seed} (ROUNDTABLE_CRASH_SEED={seed} repeats its random choices)"
    );
    let limit = Duration::from_secs(60 + 8 * cycles as u64);
    tokio::time::timeout(limit, crash_cycles(cycles, seed))
        .await
        .unwrap_or_else(|_| panic!("the crash test took more than {limit:?} (seed {seed})"));
}

async fn crash_cycles(cycles: usize, seed: u64) {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Server::new();
    server.start().await;
    let people = [
        ('a', "Ali Minutes", "minute_taker"),
        ('b', "Bo Minutes", "minute_taker"),
        ('c', "Pat Nurse", "professional"),
        ('d', "Kim Police", "professional"),
        ('e', "Jo Parent", "parent"),
    ];
    let at = server.url("");
    let (conference, people, _) = conference::set_up(&at, &at, &people).await;
    let url = format!("ws://{}/api/conferences/{conference}/sync", server.addr);
    let typists: Vec<Typist> = people
        .into_iter()
        .enumerate()
        .map(|(n, person)| {
            let targets = std::sync::Arc::new(std::sync::Mutex::new(vec![url.clone()]));
            Typist::start(targets, 0, person, seed ^ n as u64, TYPING_EVERY)
        })
        .collect();
    let mut run = Run {
        server,
        conference,
        typists,
        seed,
        totals: Totals::default(),
        must_hold: Vec::new(),
    };
    run.converge().await;

    for cycle in 1..=cycles {
        // The kill comes at a random moment while everyone types.
        let typing = rng.random_range(Duration::ZERO..LONGEST_RUN);
        tokio::time::sleep(typing).await;
        run.kill_and_check(cycle).await;
        run.server.start().await;
        if rng.random_ratio(1, 4) {
            // And sometimes again while the clients are reconnecting and sending what
            // the server had not confirmed.
            let reconnecting = rng.random_range(Duration::ZERO..Duration::from_millis(300));
            tokio::time::sleep(reconnecting).await;
            run.kill_and_check(cycle).await;
            run.totals.kills_while_reconnecting += 1;
            run.server.start().await;
        }
        run.converge().await;
    }

    let elapsed = started.elapsed();
    let (edits, erased, resent, connections, incomplete) =
        run.typists
            .iter()
            .fold((0, 0, 0, 0, 0), |(e, x, r, c, i), t| {
                let replica = t.replica();
                (
                    e + replica.edits,
                    x + replica.erased,
                    r + replica.resent,
                    c + replica.connections,
                    i + replica.incomplete,
                )
            });
    let totals = &run.totals;
    println!(
        "crash test: {cycles} cycles survived in {elapsed:.1?} ({:.2?} a cycle), seed {seed}",
        elapsed / cycles.max(1) as u32
    );
    println!(
        "  {} kills with SIGKILL ({} of them while the clients were reconnecting), {} server starts",
        totals.kills, totals.kills_while_reconnecting, run.server.starts
    );
    println!(
        "  updates received from the server, each found in the store after the next kill: {}",
        totals.received_checked
    );
    println!(
        "  updates the server confirmed as saved, each found in the store after the next kill: {}",
        totals.acknowledged_checked
    );
    println!(
        "  changes typed: {edits} ({erased} of them erasing a word); not yet confirmed when the server was killed: {}; sent on reconnecting, unconfirmed: {resent}; refused as building on what the server lacked, and sent again: {incomplete}",
        totals.unconfirmed_at_kill
    );
    println!(
        "  connections: {connections}; convergences checked: {} ({} words checked in all)",
        totals.convergences, totals.words_checked
    );
    assert!(
        totals.received_checked > 0 && totals.acknowledged_checked > 0,
        "nothing was checked"
    );
    for typist in run.typists {
        typist.stop().await;
    }
}

struct Run {
    server: Server,
    conference: String,
    typists: Vec<Typist>,
    seed: u64,
    totals: Totals,
    /// The state everyone last converged on: the store must keep it.
    must_hold: Vec<Vec<u8>>,
}

impl Run {
    /// Waits until `done` holds for every typist, or fails at the deadline saying
    /// where each one is.
    async fn wait_for_all(&self, what: &str, done: impl Fn(&typist::Replica) -> bool) {
        if let Err(failure) = self.wait_until(what, done).await {
            panic!("{failure}");
        }
    }

    /// Waits until `done` holds for every typist; at the deadline, says where each one
    /// is.
    async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&typist::Replica) -> bool,
    ) -> Result<(), String> {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(failed) = self.typists.iter().find(|t| t.failed()) {
                panic!(
                    "typist {} stopped unexpectedly (seed {})",
                    failed.person.letter, self.seed
                );
            }
            if self.typists.iter().all(|t| done(&t.replica())) {
                return Ok(());
            }
            if Instant::now() > until {
                let states: Vec<String> = self
                    .typists
                    .iter()
                    .map(|t| {
                        let r = t.replica();
                        format!(
                            "{} (client {}): connected {}, in step {}, unconfirmed {}, refusals {:?}",
                            t.person.letter,
                            r.doc().client_id(),
                            r.connected(),
                            r.in_step(),
                            r.unsaved(),
                            r.refusals
                        )
                    })
                    .collect();
                return Err(format!(
                    "not every client was {what} within {DEADLINE:?} (seed {}):\n{}",
                    self.seed,
                    states.join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn assert_no_refusals(&self) {
        for typist in &self.typists {
            let refusals = &typist.replica().refusals;
            assert!(
                refusals.is_empty(),
                "the server refused changes of {}: {refusals:?} (seed {})",
                typist.person.letter,
                self.seed
            );
        }
    }

    async fn stored(&self) -> Doc {
        store::load(&self.server.database_path(), &self.conference).await
    }

    /// Kills the server, then looks in the database for everything the clients
    /// received from it and everything it confirmed.
    async fn kill_and_check(&mut self, cycle: usize) {
        self.server.kill();
        self.totals.kills += 1;
        // Once a client sees its connection end, it has read everything the dead
        // server sent it.
        self.wait_for_all("disconnected", |r| !r.connected()).await;
        let stored = self.stored().await;
        let snapshot = stored.transact().snapshot();
        let must_hold = std::mem::take(&mut self.must_hold);
        for state in &must_hold {
            if let Some(missing) = store::missing(&snapshot, state) {
                panic!(
                    "cycle {cycle}: the store lost part of the state everyone had converged on: {missing} (seed {})",
                    self.seed
                );
            }
        }
        for typist in &self.typists {
            let (received, acknowledged, unconfirmed) = {
                let mut replica = typist.replica();
                (
                    std::mem::take(&mut replica.received),
                    std::mem::take(&mut replica.acknowledged),
                    replica.unsaved(),
                )
            };
            for update in &received {
                if let Some(missing) = store::missing(&snapshot, update) {
                    panic!(
                        "cycle {cycle}: {} received an update from the server that is not stored: {missing} (seed {})",
                        typist.person.letter, self.seed
                    );
                }
            }
            for update in &acknowledged {
                if let Some(missing) = store::missing(&snapshot, update) {
                    panic!(
                        "cycle {cycle}: the server confirmed an update of {} that is not stored: {missing} (seed {})",
                        typist.person.letter, self.seed
                    );
                }
            }
            self.totals.received_checked += received.len();
            self.totals.acknowledged_checked += acknowledged.len();
            self.totals.unconfirmed_at_kill += unconfirmed;
        }
        self.assert_no_refusals();
    }

    /// Waits for the clients to reconnect by themselves, stops the typing, and checks
    /// that every client and the store hold the same document with every word typed.
    async fn converge(&mut self) {
        self.wait_for_all("reconnected", |r| r.in_step()).await;
        // Once `set_mode` returns, that typist types nothing more: every change it made
        // is among its unconfirmed ones until the server confirms it.
        for typist in &self.typists {
            typist.set_mode(Mode::Paused);
        }
        self.wait_for_all("confirmed as saved", |r| r.in_step() && r.unsaved() == 0)
            .await;
        self.assert_no_refusals();
        // Everything anyone typed is confirmed, so stored; what is still on its way is
        // the server relaying it.
        let stored = self.stored().await;
        let (snapshot, board, state) = {
            let txn = stored.transact();
            let board = Board::get(&txn).map(|b| b.items(&txn)).unwrap_or_default();
            (
                txn.snapshot(),
                board,
                txn.encode_state_as_update_v1(&StateVector::default()),
            )
        };
        let caught_up = self
            .wait_until("caught up with the store", |r| {
                r.doc().transact().state_vector() == snapshot.state_map
            })
            .await;
        if let Err(failure) = caught_up {
            // Say what each client holds that the store read above lacks, or the
            // reverse, and how it compares with the store as it is now.
            let now = self.stored().await.transact().snapshot();
            let differences: Vec<String> = self
                .typists
                .iter()
                .map(|t| {
                    let r = t.replica();
                    format!(
                        "{}: against the store read once all was confirmed: {}; against the store now: {}",
                        t.person.letter,
                        store::difference(&snapshot, r.doc()),
                        store::difference(&now, r.doc())
                    )
                })
                .collect();
            panic!("{failure}\n{}", differences.join("\n"));
        }
        for typist in &self.typists {
            let replica = typist.replica();
            let txn = replica.doc().transact();
            assert!(
                txn.snapshot() == snapshot,
                "{} holds other deletions than the store (seed {})",
                typist.person.letter,
                self.seed
            );
            let items = Board::get(&txn).map(|b| b.items(&txn)).unwrap_or_default();
            assert_eq!(
                items, board,
                "{} reads another board than the store (seed {})",
                typist.person.letter, self.seed
            );
        }
        for typist in &self.typists {
            let replica = typist.replica();
            for (item, words) in &replica.typed {
                let text = board
                    .iter()
                    .find(|i| i.id == *item)
                    .map(|i| i.text.as_str())
                    .unwrap_or_else(|| {
                        panic!(
                            "the item {item} of {} is not on the board (seed {})",
                            typist.person.letter, self.seed
                        )
                    });
                let found: Vec<&str> = text
                    .split_whitespace()
                    .filter(|w| w.starts_with(typist.person.letter))
                    .collect();
                assert_eq!(
                    found, *words,
                    "the words {} typed into {item} are not there, once each and in order (seed {})",
                    typist.person.letter, self.seed
                );
                self.totals.words_checked += words.len();
            }
        }
        self.must_hold = vec![state];
        self.totals.convergences += 1;
        for typist in &self.typists {
            typist.set_mode(Mode::Typing);
        }
    }
}
