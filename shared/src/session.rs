//! One client's side of Roundtable's sync, without IO: the browser's `client/src/live.rs`
//! and the crash test's typist both drive it, each over its own WebSocket.
//!
//! A [`Session`] owns the local copy of a conference's document and every change of
//! ours the server has not confirmed yet. The caller tells it what happened (a
//! connection opened, a message arrived, the connection closed, we changed the
//! document) and drains [`Output`]s with [`Session::poll_output`]: the messages to
//! send, whether to close the connection and connect again, and what the page or the
//! test needs to know. It has no timers and no sockets: when it wants to connect
//! again after a wait, it says how long ([`Output::ConnectAfter`]) and the caller
//! waits.
//!
//! What it does, in the protocol's terms (`docs/api.md`, "Sync"):
//! - every change of ours is kept until the server answers a "saved?" question
//!   ([`protocol::SAVED`]) sent after it;
//! - on connecting it sends its state vector (SyncStep1) and answers the server's with
//!   what the server lacks (SyncStep2); once the server's whole document has arrived
//!   it sends again, merged, every change not yet confirmed, and asks "saved?";
//! - a change refused because the server lacks what it builds on
//!   ([`protocol::INCOMPLETE`]) is kept, and connecting again sends it with what it
//!   builds on, at most [`MAX_INCOMPLETE_RESYNCS`] times in a row;
//! - a change the server could not store ([`protocol::NOT_SAVED`]) is kept, and sent
//!   again by connecting again;
//! - any other refusal drops every change not yet confirmed (each builds on the refused
//!   one) and replaces our copy by the server's whole document, asked for on the same
//!   connection.

use std::collections::VecDeque;
use std::time::Duration;

use yrs::sync::awareness::AwarenessUpdate;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, OffsetKind, Options, ReadTxn, StateVector, Transact, TransactionMut};

use crate::protocol;

/// How many times in a row a refusal of a change because the server lacks what it
/// builds on is answered by connecting again (which sends the server everything of
/// ours it lacks) before we conclude that our own copy lacks it.
pub const MAX_INCOMPLETE_RESYNCS: u32 = 3;
pub use crate::protocol::{CLOSE_REMOVED, CLOSE_SESSION_ENDED};

/// How a session makes its documents and how long it waits between attempts.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How text positions are counted: UTF-16 units where a browser's text fields
    /// give them.
    pub offset_kind: OffsetKind,
    /// The wait before connecting again after a first failure; it doubles after
    /// every further one, up to `longest_wait`.
    pub first_wait: Duration,
    pub longest_wait: Duration,
}

/// What the caller is to do, or to know, drained with [`Session::poll_output`].
#[derive(Debug)]
pub enum Output {
    /// Send this message, as a binary frame, on the open connection (in order).
    Send(Vec<u8>),
    /// The server's whole document has arrived on this connection: we are in step,
    /// and every change not yet confirmed (`resent` of them) has been sent again.
    InStep { resent: usize },
    /// The local copy changed: the server's changes, or ours kept from before, applied.
    Changed,
    /// The local copy was replaced: by the server's whole document after a refusal,
    /// or by an empty one for someone removed.
    Replaced,
    /// The server refused a change of ours, for this reason. Every change not yet
    /// confirmed is dropped (they build on it), and the server's copy is on its way.
    Refused(String),
    /// The server has stored every change of ours up to number `up_to`: `updates`.
    Saved { up_to: u32, updates: Vec<Vec<u8>> },
    /// Close this connection, reading nothing more from it, and report it closed.
    Reconnect(Reconnect),
    /// Connect again after this wait.
    ConnectAfter(Duration),
    /// Do not connect again.
    Stopped(Stop),
    /// Who is present, as the server sent it.
    Presence(AwarenessUpdate),
    /// The changes not yet confirmed are different now: what
    /// [`Session::unconfirmed_update`] returns, for keeping them across a reload.
    UnconfirmedChanged,
    /// Something from the server could not be read or applied; it was left out.
    Unreadable(Unreadable),
}

/// Why the session asks for a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// The server could not store a change: it is kept, and sent again.
    NotSaved,
    /// The server lacks what a change builds on: the new connection's sync sends it.
    Incomplete,
    /// A change was refused before we were in step: the next connection brings the
    /// server's whole document.
    Refused,
}

/// Why the session will not connect again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The session or link ended: changes not yet confirmed are kept, for when the
    /// person has signed in again.
    SessionEnded,
    /// The person was removed from the conference: our copy and our changes are gone.
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("a message from the server was not understood")]
    Message,
    #[error("an update from the server could not be applied")]
    Update,
    #[error("the server's document could not be applied")]
    Document,
    #[error("the changes kept from before could not be applied")]
    Restored,
}

/// Whether our own changes are stored on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saving {
    /// Nothing of ours is waiting: everything we changed is stored.
    AllSaved,
    /// Sent, and waiting for the server to confirm.
    Sending,
    /// Not in step with the server: kept until we are.
    NotYet,
    /// The server could not store a change; it is kept and sent again.
    Retrying,
}

/// A change of ours the server has not confirmed yet.
struct Unconfirmed {
    /// Our own count of changes, which the "saved?" question carries.
    number: u32,
    update: Vec<u8>,
}

pub struct Session {
    config: Config,
    doc: Doc,
    /// After a refusal: a new copy being filled with the server's whole document. The
    /// caller goes on showing `doc` until it has arrived, then this replaces it.
    fresh: Option<Doc>,
    connected: bool,
    /// True once the server's whole document has arrived on this connection.
    in_step: bool,
    /// True once, on this connection, our copy was replaced by the server's after a
    /// refusal: changes sent before that were made on the old copy, and a refusal of
    /// one of them for building on what the server lacks is about a change already
    /// dropped.
    replaced_here: bool,
    unconfirmed: Vec<Unconfirmed>,
    /// Changes kept from an earlier run, applied once the server's document is here.
    restored: Option<Vec<u8>>,
    next_number: u32,
    /// Connections made again, since the server last confirmed a change, because it
    /// refused one that builds on changes it did not have.
    incomplete_resyncs: u32,
    /// Failed attempts since the server last confirmed a change (or we were in step
    /// with nothing to send): the next wait doubles with each.
    failures: u32,
    /// The server could not store a change, and nothing has been sent again since.
    retrying: bool,
    stopped: Option<Stop>,
    outputs: VecDeque<Output>,
}

impl Session {
    pub fn new(config: Config) -> Session {
        Session {
            config,
            doc: new_doc(config),
            fresh: None,
            connected: false,
            in_step: false,
            replaced_here: false,
            unconfirmed: Vec::new(),
            restored: None,
            next_number: 1,
            incomplete_resyncs: 0,
            failures: 0,
            retrying: false,
            stopped: None,
            outputs: VecDeque::new(),
        }
    }

    /// Changes of ours kept from an earlier run (one update, as
    /// [`Session::unconfirmed_update`] gave it): applied on top of the server's
    /// document once it has arrived, then sent and confirmed like any other.
    pub fn restore(&mut self, update: Vec<u8>) {
        self.restored = Some(update);
    }

    /// The local copy. Change it only through [`Session::edit`].
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// Our copy's client id, which our presence is published under.
    pub fn client_id(&self) -> ClientID {
        self.doc.client_id()
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn in_step(&self) -> bool {
        self.in_step
    }

    pub fn stopped(&self) -> Option<Stop> {
        self.stopped
    }

    /// How many of our changes the server has not confirmed.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len() + usize::from(self.restored.is_some())
    }

    pub fn saving(&self) -> Saving {
        if self.unconfirmed() == 0 {
            Saving::AllSaved
        } else if self.retrying {
            Saving::Retrying
        } else if self.in_step {
            Saving::Sending
        } else {
            Saving::NotYet
        }
    }

    /// Every change not yet confirmed, as one update (`None` when there is none, or
    /// when they would not merge).
    pub fn unconfirmed_update(&self) -> Option<Vec<u8>> {
        let restored = self.restored.iter().map(Vec::as_slice);
        let updates: Vec<&[u8]> = restored
            .chain(self.unconfirmed.iter().map(|u| u.update.as_slice()))
            .collect();
        match updates.as_slice() {
            [] => None,
            [one] => Some(one.to_vec()),
            many => yrs::merge_updates_v1(many).ok(),
        }
    }

    /// The next thing to do, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Makes a change of our own: applies it to the local copy, keeps it until the
    /// server confirms it, and sends it if we are in step. `None` if the transaction
    /// changed nothing (there is nothing to keep).
    pub fn edit<R>(&mut self, change: impl FnOnce(&mut TransactionMut<'_>) -> R) -> Option<R> {
        let (value, update) = {
            let mut txn = self.doc.transact_mut();
            let value = change(&mut txn);
            (value, txn.encode_update_v1())
        };
        // An empty transaction encodes to two zero bytes.
        if update.len() <= 2 {
            return None;
        }
        let number = self.take_number();
        self.retrying = false;
        if self.in_step {
            self.send(Message::Sync(SyncMessage::Update(update.clone())));
            self.send(saved_question(number));
        }
        self.unconfirmed.push(Unconfirmed { number, update });
        self.outputs.push_back(Output::UnconfirmedChanged);
        Some(value)
    }

    /// A connection is open: greet the server with what we have.
    pub fn connection_opened(&mut self) {
        if self.stopped.is_some() {
            return;
        }
        self.connected = true;
        self.in_step = false;
        self.replaced_here = false;
        let state_vector = self.current().transact().state_vector();
        self.send(Message::Sync(SyncMessage::SyncStep1(state_vector)));
    }

    /// A binary message arrived on the open connection.
    pub fn received(&mut self, bytes: &[u8]) {
        if !self.connected {
            return;
        }
        let Ok(message) = Message::decode_v1(bytes) else {
            self.outputs
                .push_back(Output::Unreadable(Unreadable::Message));
            return;
        };
        match message {
            Message::Sync(SyncMessage::SyncStep1(theirs)) => {
                // The server asks for what it lacks: our unconfirmed changes among them.
                // (After a refusal, nothing of our old copy is to be sent again.)
                let diff = self.current().transact().encode_state_as_update_v1(&theirs);
                self.send(Message::Sync(SyncMessage::SyncStep2(diff)));
            }
            Message::Sync(SyncMessage::SyncStep2(update)) => self.whole_document(&update),
            Message::Sync(SyncMessage::Update(update)) => {
                if apply(&self.doc, &update).is_err() {
                    self.outputs
                        .push_back(Output::Unreadable(Unreadable::Update));
                }
                self.outputs.push_back(Output::Changed);
            }
            Message::Awareness(update) => self.outputs.push_back(Output::Presence(update)),
            Message::Auth(reason) => self.refused(reason.unwrap_or_default()),
            Message::Custom(protocol::SAVED, data) => match protocol::decode_saved(&data) {
                Some(number) => self.saved(number),
                None => self
                    .outputs
                    .push_back(Output::Unreadable(Unreadable::Message)),
            },
            Message::AwarenessQuery | Message::Custom(..) => {}
        }
    }

    /// The connection closed with this code (1006 when it failed, or never opened), or
    /// an attempt to open one failed. Messages not yet sent on it are dropped.
    pub fn connection_closed(&mut self, code: u16) {
        self.connected = false;
        self.in_step = false;
        self.replaced_here = false;
        self.outputs.retain(|o| !matches!(o, Output::Send(_)));
        if self.stopped.is_some() {
            return;
        }
        match code {
            CLOSE_SESSION_ENDED => self.stop(Stop::SessionEnded),
            CLOSE_REMOVED => {
                // Someone removed must not keep the board, nor their changes to it.
                self.doc = new_doc(self.config);
                self.fresh = None;
                self.unconfirmed.clear();
                self.restored = None;
                self.outputs.push_back(Output::Replaced);
                self.outputs.push_back(Output::UnconfirmedChanged);
                self.stop(Stop::Removed);
            }
            _ => {
                let wait = self.wait(self.failures);
                self.failures = self.failures.saturating_add(1);
                self.outputs.push_back(Output::ConnectAfter(wait));
            }
        }
    }

    /// The network is back: the next attempt need not wait for earlier failures.
    pub fn network_returned(&mut self) {
        self.failures = 0;
    }

    /// How long to wait before the next attempt, after `failures` failed ones.
    fn wait(&self, failures: u32) -> Duration {
        self.config
            .first_wait
            .saturating_mul(1u32 << failures.min(15))
            .min(self.config.longest_wait)
    }

    /// The copy the server's sync is filling: the new one after a refusal.
    fn current(&self) -> &Doc {
        self.fresh.as_ref().unwrap_or(&self.doc)
    }

    fn send(&mut self, message: Message) {
        self.outputs.push_back(Output::Send(message.encode_v1()));
    }

    fn stop(&mut self, why: Stop) {
        self.stopped = Some(why);
        self.outputs.push_back(Output::Stopped(why));
    }

    fn take_number(&mut self) -> u32 {
        let number = self.next_number;
        // Numbers only go up, wrapping after four thousand million changes.
        self.next_number = self.next_number.wrapping_add(1);
        number
    }

    /// A SyncStep2: the server's whole document (its greeting, or its answer to our
    /// state vector).
    fn whole_document(&mut self, update: &[u8]) {
        if let Some(fresh) = self.fresh.take() {
            // Asked for after a refusal: it takes the place of our copy, which holds
            // the refused change.
            if apply(&fresh, update).is_err() {
                self.outputs
                    .push_back(Output::Unreadable(Unreadable::Document));
            }
            self.doc = fresh;
            // Changes made on the old copy while this was on its way go with it: sent
            // again they would only be refused, as built on what the server refused.
            self.unconfirmed.clear();
            self.replaced_here = self.in_step;
            self.outputs.push_back(Output::Replaced);
            self.outputs.push_back(Output::UnconfirmedChanged);
        } else {
            if apply(&self.doc, update).is_err() {
                self.outputs
                    .push_back(Output::Unreadable(Unreadable::Update));
            }
            self.outputs.push_back(Output::Changed);
        }
        if !self.in_step {
            self.now_in_step();
        }
    }

    fn now_in_step(&mut self) {
        self.in_step = true;
        self.retrying = false;
        // Changes kept from before a reload go on top of the server's document.
        if let Some(update) = self.restored.take() {
            if apply(&self.doc, &update).is_ok() {
                let number = self.take_number();
                self.unconfirmed.push(Unconfirmed { number, update });
                self.outputs.push_back(Output::Changed);
            } else {
                self.outputs
                    .push_back(Output::Unreadable(Unreadable::Restored));
                self.outputs.push_back(Output::UnconfirmedChanged);
            }
        }
        let resent = self.unconfirmed.len();
        if let Some(last) = self.unconfirmed.last().map(|u| u.number) {
            // Send everything not yet confirmed, whatever our SyncStep2 carried: the
            // server ignores what it already has.
            let updates: Vec<&[u8]> = self
                .unconfirmed
                .iter()
                .map(|u| u.update.as_slice())
                .collect();
            let messages: Vec<Message> = match yrs::merge_updates_v1(&updates) {
                Ok(merged) => vec![Message::Sync(SyncMessage::Update(merged))],
                // Updates that will not merge are still sent, one by one.
                Err(_) => updates
                    .iter()
                    .map(|u| Message::Sync(SyncMessage::Update(u.to_vec())))
                    .collect(),
            };
            for message in messages {
                self.send(message);
            }
            self.send(saved_question(last));
        } else {
            self.failures = 0;
        }
        self.outputs.push_back(Output::InStep { resent });
    }

    fn saved(&mut self, number: u32) {
        self.failures = 0;
        self.incomplete_resyncs = 0;
        let (confirmed, kept): (Vec<Unconfirmed>, Vec<Unconfirmed>) = self
            .unconfirmed
            .drain(..)
            .partition(|u| u.number.wrapping_sub(number) as i32 <= 0);
        self.unconfirmed = kept;
        if !confirmed.is_empty() {
            self.outputs.push_back(Output::UnconfirmedChanged);
        }
        self.outputs.push_back(Output::Saved {
            up_to: number,
            updates: confirmed.into_iter().map(|u| u.update).collect(),
        });
    }

    fn refused(&mut self, reason: String) {
        if reason == protocol::NOT_SAVED {
            // Not wrong, just not stored: keep it, and send it again by connecting
            // again (the server asks for what it lacks). Nothing more is to be read
            // from this connection: later refusals on it would only be of changes
            // that built on this one.
            self.retrying = true;
            self.outputs
                .push_back(Output::Reconnect(Reconnect::NotSaved));
            return;
        }
        let incomplete = reason == protocol::INCOMPLETE;
        if incomplete && self.replaced_here {
            // Of a change made on the copy we replaced: it went with that copy.
            // Changes made on the server's copy build only on what it has.
            return;
        }
        if incomplete && self.fresh.is_none() && self.incomplete_resyncs < MAX_INCOMPLETE_RESYNCS {
            // The server lacks what our change builds on (an edit sent as a connection
            // opened, before the sync delivered what it builds on). The change is not
            // wrong: keep our copy and everything unconfirmed, and connect again. The
            // new connection's greeting carries the server's state vector, and our
            // answer to it, made from our whole copy, holds everything of ours it
            // lacks in one complete update, which the server reads before anything
            // else we send; then the unconfirmed changes are sent and confirmed as
            // after any reconnect. Sending on this connection instead would mean
            // sending the whole document (only the greeting says what the server
            // has), which may be larger than a message may be, and every change we
            // sent after this one builds on it and is being refused too: nothing more
            // is to be read from it.
            self.incomplete_resyncs += 1;
            self.outputs
                .push_back(Output::Reconnect(Reconnect::Incomplete));
            return;
        }
        // A refused change stays in our copy and every later change would build on
        // it: start again from the server's copy. (A "depends" refusal gets here only
        // when connecting again did not help, so our copy itself lacks what the
        // change builds on, or while we are already starting again after a refusal,
        // when it is of a change that built on the refused one: that one is not told
        // again.)
        self.unconfirmed.clear();
        self.restored = None;
        self.incomplete_resyncs = 0;
        self.retrying = false;
        self.outputs.push_back(Output::UnconfirmedChanged);
        if !(incomplete && self.fresh.is_some()) {
            self.outputs.push_back(Output::Refused(reason));
        }
        if self.fresh.is_none() {
            self.fresh = Some(new_doc(self.config));
            if self.in_step {
                // The refusal did not change the server's document: ask for all of it
                // on this connection, and show what we showed until it is here.
                self.send(Message::Sync(
                    SyncMessage::SyncStep1(StateVector::default()),
                ));
            } else {
                // Whether the server's whole document is still to come on this
                // connection is not known: the next connection's sync brings it.
                self.outputs
                    .push_back(Output::Reconnect(Reconnect::Refused));
            }
        }
    }
}

fn new_doc(config: Config) -> Doc {
    // Each document gets a client id of its own (`Options::default` draws one).
    Doc::with_options(Options {
        offset_kind: config.offset_kind,
        ..crate::doc::document_options()
    })
}

fn saved_question(number: u32) -> Message {
    Message::Custom(protocol::SAVED, protocol::encode_saved(number))
}

fn apply(doc: &Doc, update: &[u8]) -> Result<(), ()> {
    let update = yrs::Update::decode_v1(update).map_err(|_| ())?;
    doc.transact_mut().apply_update(update).map_err(|_| ())
}
