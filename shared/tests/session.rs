//! The client's session, fed message sequences as the server sends them: what it sends,
//! keeps and asks its caller to do.
//!
//! A small stand-in for the server stores every update it is sent, answers state
//! vectors and "saved?" questions in order, and greets a connection as the real one
//! does (its state vector, then its whole document). Refusals are made by hand.

use std::time::Duration;

use roundtable_shared::protocol;
use roundtable_shared::session::{self, Config, Output, Saving, Session};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, OffsetKind, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

const FORBIDDEN: &str = "your role cannot change this conference's document";

const CONFIG: Config = Config {
    offset_kind: OffsetKind::Bytes,
    first_wait: Duration::from_secs(1),
    longest_wait: Duration::from_secs(30),
};

/// The server's copy of the document.
struct Server {
    doc: Doc,
}

impl Server {
    fn with_text(text: &str) -> Server {
        let doc = roundtable_shared::doc::new_document();
        doc.get_or_insert_text("notes")
            .insert(&mut doc.transact_mut(), 0, text);
        Server { doc }
    }

    /// What it sends a new connection first.
    fn greeting(&self) -> Vec<Vec<u8>> {
        let txn = self.doc.transact();
        vec![
            Message::Sync(SyncMessage::SyncStep1(txn.state_vector())).encode_v1(),
            Message::Sync(SyncMessage::SyncStep2(
                txn.encode_state_as_update_v1(&StateVector::default()),
            ))
            .encode_v1(),
        ]
    }

    /// Handles what a client sent, in order: stores its updates and answers its state
    /// vectors and questions.
    fn handle(&self, sent: Vec<Message>) -> Vec<Vec<u8>> {
        let mut answers = Vec::new();
        for message in sent {
            match message {
                Message::Sync(SyncMessage::SyncStep1(theirs)) => {
                    let diff = self.doc.transact().encode_state_as_update_v1(&theirs);
                    answers.push(Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1());
                }
                Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                    let update = Update::decode_v1(&update).expect("a client's update");
                    self.doc
                        .transact_mut()
                        .apply_update(update)
                        .expect("it applies");
                }
                Message::Custom(protocol::SAVED, number) => {
                    answers.push(Message::Custom(protocol::SAVED, number).encode_v1());
                }
                _ => {}
            }
        }
        answers
    }

    fn text(&self) -> String {
        text_of(&self.doc)
    }
}

fn refusal(reason: &str) -> Vec<u8> {
    Message::Auth(Some(reason.to_owned())).encode_v1()
}

fn saved_answer(number: u32) -> Vec<u8> {
    Message::Custom(protocol::SAVED, protocol::encode_saved(number)).encode_v1()
}

fn text_of(doc: &Doc) -> String {
    doc.get_or_insert_text("notes").get_string(&doc.transact())
}

/// A session, and what it has sent that the server has not yet handled.
struct Client {
    session: Session,
    sent: Vec<Message>,
}

impl Client {
    fn new() -> Client {
        Client {
            session: Session::new(CONFIG),
            sent: Vec::new(),
        }
    }

    /// Drains the session's outputs, each in a few words, keeping what it sent.
    fn outputs(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        while let Some(output) = self.session.poll_output() {
            said.push(match output {
                Output::Send(bytes) => {
                    let message =
                        Message::decode_v1(&bytes).expect("the session sends valid messages");
                    let words = match &message {
                        Message::Sync(SyncMessage::SyncStep1(sv)) if sv.is_empty() => {
                            "send sync step 1 (for everything)".to_owned()
                        }
                        Message::Sync(SyncMessage::SyncStep1(_)) => "send sync step 1".to_owned(),
                        Message::Sync(SyncMessage::SyncStep2(_)) => "send sync step 2".to_owned(),
                        Message::Sync(SyncMessage::Update(_)) => "send update".to_owned(),
                        Message::Custom(protocol::SAVED, n) => {
                            format!(
                                "send saved? {}",
                                protocol::decode_saved(n).expect("a number")
                            )
                        }
                        other => format!("send {other:?}"),
                    };
                    self.sent.push(message);
                    words
                }
                Output::InStep { resent } => format!("in step, {resent} sent again"),
                Output::Changed => "changed".to_owned(),
                Output::Replaced => "replaced".to_owned(),
                Output::Refused(reason) => format!("refused: {reason}"),
                Output::Saved { up_to, updates } => {
                    format!("saved up to {up_to} ({} confirmed)", updates.len())
                }
                Output::Reconnect(why) => format!("reconnect: {why:?}"),
                Output::ConnectAfter(wait) => format!("connect after {} ms", wait.as_millis()),
                Output::Stopped(why) => format!("stopped: {why:?}"),
                Output::Presence(_) => "presence".to_owned(),
                Output::UnconfirmedChanged => "unconfirmed changed".to_owned(),
                Output::Unreadable(what) => format!("unreadable: {what}"),
            });
        }
        said
    }

    fn receive(&mut self, frames: Vec<Vec<u8>>) -> Vec<String> {
        for frame in frames {
            self.session.received(&frame);
        }
        self.outputs()
    }

    /// Connects to `server` and lets it handle everything sent until nothing more is
    /// said; returns all the session said meanwhile.
    fn connect(&mut self, server: &Server) -> Vec<String> {
        let mut said = self.greeted_by(server);
        said.extend(self.exchange(server));
        said
    }

    /// Opens a connection and takes the server's greeting; returns what the session
    /// said to the greeting.
    fn greeted_by(&mut self, server: &Server) -> Vec<String> {
        self.session.connection_opened();
        self.outputs();
        self.receive(server.greeting())
    }

    /// Lets the server handle what we sent, and hands its answers back, until it has
    /// nothing more to say.
    fn exchange(&mut self, server: &Server) -> Vec<String> {
        let mut said = Vec::new();
        loop {
            let answers = server.handle(std::mem::take(&mut self.sent));
            if answers.is_empty() {
                return said;
            }
            said.extend(self.receive(answers));
        }
    }

    fn close(&mut self, code: u16) -> Vec<String> {
        self.sent.clear();
        self.session.connection_closed(code);
        self.outputs()
    }

    /// Appends words to the notes; returns what the session said.
    fn type_words(&mut self, words: &str) -> Vec<String> {
        self.session
            .edit(|txn| {
                let notes = txn.get_or_insert_text("notes");
                let end = notes.len(txn);
                notes.insert(txn, end, words);
            })
            .expect("typing changes the document");
        self.outputs()
    }

    fn text(&self) -> String {
        text_of(self.session.doc())
    }
}

fn in_step_with(server: &Server) -> Client {
    let mut client = Client::new();
    client.connect(server);
    assert!(client.session.in_step());
    client
}

#[test]
fn connecting_sends_our_state_vector_answers_the_servers_and_is_in_step_once_its_document_arrived()
{
    let server = Server::with_text("Dad missed two meetings. ");
    let mut client = Client::new();
    client.session.connection_opened();
    assert_eq!(client.outputs(), ["send sync step 1 (for everything)"]);
    let [their_state, their_document] = <[Vec<u8>; 2]>::try_from(server.greeting()).unwrap();
    assert_eq!(client.receive(vec![their_state]), ["send sync step 2"]);
    assert!(!client.session.in_step());
    assert_eq!(
        client.receive(vec![their_document]),
        ["changed", "in step, 0 sent again"]
    );
    assert!(client.session.in_step());
    assert_eq!(client.text(), "Dad missed two meetings. ");
    assert_eq!(client.session.saving(), Saving::AllSaved);
}

#[test]
fn a_change_is_sent_with_a_saved_question_and_kept_until_the_answer() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    assert_eq!(
        client.type_words("Gran helps. "),
        ["send update", "send saved? 1", "unconfirmed changed"]
    );
    assert_eq!(client.session.unconfirmed(), 1);
    assert_eq!(client.session.saving(), Saving::Sending);
    assert_eq!(
        client.exchange(&server),
        ["unconfirmed changed", "saved up to 1 (1 confirmed)"]
    );
    assert_eq!(client.session.unconfirmed(), 0);
    assert_eq!(client.session.saving(), Saving::AllSaved);
    assert_eq!(server.text(), "Gran helps. ");
}

#[test]
fn a_saved_answer_confirms_only_the_changes_sent_before_its_question() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.type_words("one ");
    client.type_words("two ");
    let first = client.sent[0].clone();
    let Message::Sync(SyncMessage::Update(first)) = first else {
        panic!("the first change is sent as an update");
    };
    server.handle(std::mem::take(&mut client.sent));
    client.session.received(&saved_answer(1));
    let Some(Output::UnconfirmedChanged) = client.session.poll_output() else {
        panic!("the confirmed change is no longer kept");
    };
    let Some(Output::Saved { up_to: 1, updates }) = client.session.poll_output() else {
        panic!("the first change is confirmed");
    };
    assert_eq!(updates, [first]);
    assert_eq!(client.session.unconfirmed(), 1);
    assert_eq!(client.session.saving(), Saving::Sending);
    client.session.received(&saved_answer(2));
    assert_eq!(
        client.outputs(),
        ["unconfirmed changed", "saved up to 2 (1 confirmed)"]
    );
    assert_eq!(client.session.saving(), Saving::AllSaved);
}

#[test]
fn reconnecting_sends_again_everything_unconfirmed_merged_with_one_question() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.type_words("sent ");
    // The connection ends before the server reads it.
    assert_eq!(client.close(1006), ["connect after 1000 ms"]);
    assert_eq!(client.session.saving(), Saving::NotYet);
    assert_eq!(client.type_words("typed "), ["unconfirmed changed"]);
    assert_eq!(client.type_words("offline "), ["unconfirmed changed"]);
    assert_eq!(client.session.unconfirmed(), 3);

    client.session.connection_opened();
    assert_eq!(client.outputs(), ["send sync step 1"]);
    let greeting = server.greeting();
    assert_eq!(
        client.receive(greeting),
        [
            "send sync step 2",
            "changed",
            "send update",
            "send saved? 3",
            "in step, 3 sent again"
        ]
    );
    assert_eq!(
        client.exchange(&server),
        [
            "changed",
            "unconfirmed changed",
            "saved up to 3 (3 confirmed)"
        ]
    );
    assert_eq!(server.text(), "sent typed offline ");
    assert_eq!(client.session.saving(), Saving::AllSaved);
}

#[test]
fn messages_not_yet_sent_when_the_connection_closed_are_not_sent_on_the_next() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.session.edit(|txn| {
        let notes = txn.get_or_insert_text("notes");
        notes.insert(txn, 0, "late ");
    });
    client.session.connection_closed(1006);
    assert_eq!(
        client.outputs(),
        ["unconfirmed changed", "connect after 1000 ms"]
    );
    assert_eq!(client.session.unconfirmed(), 1);
}

#[test]
fn a_refused_change_drops_what_is_unconfirmed_and_the_copy_is_replaced_by_the_servers() {
    let server = Server::with_text("Stored. ");
    let mut client = in_step_with(&server);
    client.type_words("Refused. ");
    client.type_words("Built on it. ");
    client.sent.clear();
    assert_eq!(
        client.receive(vec![refusal(FORBIDDEN)]),
        [
            "unconfirmed changed".to_owned(),
            format!("refused: {FORBIDDEN}"),
            "send sync step 1 (for everything)".to_owned()
        ]
    );
    assert_eq!(client.session.unconfirmed(), 0);
    assert_eq!(client.session.saving(), Saving::AllSaved);
    // Until the server's copy is here, ours is shown as it was.
    assert_eq!(client.text(), "Stored. Refused. Built on it. ");
    assert_eq!(
        client.exchange(&server),
        ["replaced", "unconfirmed changed"]
    );
    assert_eq!(client.text(), "Stored. ");
    assert!(client.session.in_step());

    // The second change's refusal, for building on the first, arrives after the
    // copy was replaced: it went with the old copy, and is let go.
    assert_eq!(
        client.receive(vec![refusal(protocol::INCOMPLETE)]),
        Vec::<String>::new()
    );
    // The answers to the questions after them confirm nothing.
    assert_eq!(
        client.receive(vec![saved_answer(1), saved_answer(2)]),
        ["saved up to 1 (0 confirmed)", "saved up to 2 (0 confirmed)"]
    );
    // Changes made on the server's copy are sent as before.
    assert_eq!(
        client.type_words("Allowed. "),
        ["send update", "send saved? 3", "unconfirmed changed"]
    );
}

#[test]
fn a_change_typed_while_the_servers_copy_is_on_its_way_goes_with_the_old_copy() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.type_words("Refused. ");
    client.sent.clear();
    client.receive(vec![refusal(FORBIDDEN)]);
    client.type_words("Typed meanwhile. ");
    assert_eq!(client.session.unconfirmed(), 1);
    // Its refusal, as built on the first, says nothing new.
    assert_eq!(
        client.receive(vec![refusal(protocol::INCOMPLETE)]),
        ["unconfirmed changed"]
    );
    let answer = server.handle(vec![Message::Sync(SyncMessage::SyncStep1(
        StateVector::default(),
    ))]);
    assert_eq!(client.receive(answer), ["replaced", "unconfirmed changed"]);
    assert_eq!(client.text(), "");
    assert_eq!(client.session.unconfirmed(), 0);
}

#[test]
fn a_copy_still_being_replaced_when_the_connection_closed_is_filled_by_the_next_one() {
    let server = Server::with_text("Stored. ");
    let mut client = in_step_with(&server);
    client.type_words("Refused. ");
    client.sent.clear();
    client.receive(vec![refusal(FORBIDDEN)]);
    client.close(1006);
    assert_eq!(client.text(), "Stored. Refused. ");
    // Typed on the old copy, so it goes with it.
    client.type_words("Typed offline. ");
    assert_eq!(client.session.unconfirmed(), 1);
    client.session.connection_opened();
    assert_eq!(client.outputs(), ["send sync step 1 (for everything)"]);
    assert_eq!(
        client.receive(server.greeting()),
        [
            "send sync step 2",
            "replaced",
            "unconfirmed changed",
            "in step, 0 sent again"
        ]
    );
    assert_eq!(client.text(), "Stored. ");
    assert_eq!(client.session.unconfirmed(), 0);
}

#[test]
fn a_refusal_before_the_servers_document_arrived_connects_again_for_it() {
    let server = Server::with_text("Stored. ");
    let mut client = Client::new();
    client.type_words("Refused. ");
    client.session.connection_opened();
    client.outputs();
    assert_eq!(
        client.receive(vec![refusal(FORBIDDEN)]),
        [
            "unconfirmed changed".to_owned(),
            format!("refused: {FORBIDDEN}"),
            "reconnect: Refused".to_owned()
        ]
    );
    client.close(1000);
    let said = client.connect(&server);
    assert!(said.contains(&"replaced".to_owned()), "{said:?}");
    assert_eq!(client.text(), "Stored. ");
}

#[test]
fn a_change_building_on_what_the_server_lacks_is_kept_and_sent_again_by_reconnecting_three_times_in_a_row()
 {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.type_words("Gran collects the children. ");
    client.sent.clear();
    for _ in 0..session::MAX_INCOMPLETE_RESYNCS {
        assert_eq!(
            client.receive(vec![refusal(protocol::INCOMPLETE)]),
            ["reconnect: Incomplete"]
        );
        assert_eq!(client.session.unconfirmed(), 1);
        client.close(1000);
        assert_eq!(client.session.saving(), Saving::NotYet);
        let said = client.greeted_by(&server);
        assert!(
            said.contains(&"in step, 1 sent again".to_owned()),
            "{said:?}"
        );
        // Lost again on its way.
        client.sent.clear();
    }
    // A fourth time in a row: our own copy must lack what it builds on.
    assert_eq!(
        client.receive(vec![refusal(protocol::INCOMPLETE)]),
        [
            "unconfirmed changed".to_owned(),
            format!("refused: {}", protocol::INCOMPLETE),
            "send sync step 1 (for everything)".to_owned()
        ]
    );
    assert_eq!(client.session.unconfirmed(), 0);
}

#[test]
fn a_confirmed_change_starts_the_count_of_reconnects_for_what_the_server_lacks_again() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    for round in 0..2 * session::MAX_INCOMPLETE_RESYNCS {
        client.type_words(&format!("word{round} "));
        client.sent.clear();
        assert_eq!(
            client.receive(vec![refusal(protocol::INCOMPLETE)]),
            ["reconnect: Incomplete"],
            "round {round}"
        );
        client.close(1000);
        // This time the sync delivers it, and the server confirms it.
        client.connect(&server);
        assert_eq!(client.session.unconfirmed(), 0);
    }
    assert_eq!(server.text(), "word0 word1 word2 word3 word4 word5 ");
}

#[test]
fn a_change_the_server_could_not_store_is_kept_and_sent_again_by_reconnecting() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.type_words("Not stored yet. ");
    client.sent.clear();
    assert_eq!(
        client.receive(vec![refusal(protocol::NOT_SAVED)]),
        ["reconnect: NotSaved"]
    );
    assert_eq!(client.session.unconfirmed(), 1);
    assert_eq!(client.session.saving(), Saving::Retrying);
    assert_eq!(client.close(1000), ["connect after 1000 ms"]);
    assert_eq!(client.session.saving(), Saving::Retrying);
    let said = client.greeted_by(&server);
    assert!(
        said.contains(&"in step, 1 sent again".to_owned()),
        "{said:?}"
    );
    assert_eq!(client.session.saving(), Saving::Sending);
    client.exchange(&server);
    assert_eq!(client.session.saving(), Saving::AllSaved);
    assert_eq!(server.text(), "Not stored yet. ");
}

#[test]
fn waits_between_attempts_double_up_to_the_longest_and_start_again_once_a_change_is_confirmed() {
    let server = Server::with_text("");
    let mut client = Client::new();
    let waits = |client: &mut Client, attempts: usize| -> Vec<String> {
        (0..attempts).flat_map(|_| client.close(1006)).collect()
    };
    assert_eq!(
        waits(&mut client, 7),
        [1, 2, 4, 8, 16, 30, 30].map(|s| format!("connect after {} ms", s * 1000))
    );
    client.session.network_returned();
    assert_eq!(
        waits(&mut client, 2),
        ["connect after 1000 ms", "connect after 2000 ms"]
    );
    // In step with something unconfirmed, the count goes on until the server confirms.
    client.type_words("kept ");
    client.greeted_by(&server);
    assert_eq!(waits(&mut client, 1), ["connect after 4000 ms"]);
    client.connect(&server);
    assert_eq!(client.session.unconfirmed(), 0);
    assert_eq!(
        waits(&mut client, 2),
        ["connect after 1000 ms", "connect after 2000 ms"]
    );
    // In step with nothing to send starts the count again too.
    client.greeted_by(&server);
    assert_eq!(waits(&mut client, 1), ["connect after 1000 ms"]);
}

#[test]
fn someone_removed_loses_the_copy_and_their_changes_and_does_not_connect_again() {
    let server = Server::with_text("Confidential. ");
    let mut client = in_step_with(&server);
    client.type_words("Unsaved. ");
    assert_eq!(
        client.close(session::CLOSE_REMOVED),
        ["replaced", "unconfirmed changed", "stopped: Removed"]
    );
    assert_eq!(client.text(), "");
    assert_eq!(client.session.unconfirmed(), 0);
    assert_eq!(client.session.unconfirmed_update(), None);
    client.session.connection_opened();
    assert_eq!(client.outputs(), Vec::<String>::new());
}

#[test]
fn a_session_that_ended_keeps_the_changes_and_does_not_connect_again() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    client.type_words("Unsaved. ");
    assert_eq!(
        client.close(session::CLOSE_SESSION_ENDED),
        ["stopped: SessionEnded"]
    );
    assert_eq!(client.session.unconfirmed(), 1);
    assert_eq!(client.session.saving(), Saving::NotYet);
    assert!(client.session.unconfirmed_update().is_some());
}

#[test]
fn changes_kept_from_before_a_reload_go_on_top_of_the_servers_document_and_are_sent() {
    let server = Server::with_text("Stored. ");
    let mut before = in_step_with(&server);
    before.type_words("Typed before the reload. ");
    let kept = before
        .session
        .unconfirmed_update()
        .expect("one change kept");

    let mut after = Client::new();
    after.session.restore(kept);
    assert_eq!(after.session.saving(), Saving::NotYet);
    assert_eq!(after.session.unconfirmed(), 1);
    assert_eq!(
        after.greeted_by(&server),
        [
            "send sync step 2",
            "changed",
            "changed",
            "send update",
            "send saved? 1",
            "in step, 1 sent again"
        ]
    );
    assert_eq!(after.text(), "Stored. Typed before the reload. ");
    after.exchange(&server);
    assert_eq!(server.text(), "Stored. Typed before the reload. ");
    assert_eq!(after.session.saving(), Saving::AllSaved);
}

#[test]
fn what_cannot_be_read_is_reported_and_changes_nothing() {
    let server = Server::with_text("Stored. ");
    let mut client = in_step_with(&server);
    assert_eq!(
        client.receive(vec![vec![0, 2, 3, 9, 9]]),
        ["unreadable: a message from the server was not understood"]
    );
    assert_eq!(
        client.receive(vec![Message::Custom(protocol::SAVED, vec![1]).encode_v1()]),
        ["unreadable: a message from the server was not understood"]
    );
    assert_eq!(client.text(), "Stored. ");
}

#[test]
fn presence_from_the_server_is_handed_on() {
    let server = Server::with_text("");
    let mut client = in_step_with(&server);
    let presence = Message::Awareness(yrs::sync::AwarenessUpdate {
        clients: Default::default(),
    });
    assert_eq!(client.receive(vec![presence.encode_v1()]), ["presence"]);
}
