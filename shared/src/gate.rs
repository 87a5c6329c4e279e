//! The gate: may this participant make this update to this conference's document?
//!
//! [`Gate`] holds a document and what is judged beside it (who wrote each board item),
//! and decides on each update a client sends, without IO: the caller stores what is
//! admitted and relays it. The decision is made before the update reaches the
//! document ([`predict`] reads where it would land), so a refused update leaves the
//! document as it was and costs no more than reading it.
//!
//! Once an admitted update is applied, the gate checks again what yrs itself reports
//! it changed ([`crate::guard::ChangeRecorder`]). The two agree; if they ever did not,
//! the verdict is [`Verdict::Spoiled`] and the document must be rebuilt from what is
//! stored, so the rules never rest on the prediction alone.
//!
//! Each Yjs client id belongs to whoever first makes changes under it ([`Owner`]).
//! Changes a client makes are numbered by its id and a clock; two devices writing under
//! one id would each keep their own change at the same clock, every replica would keep
//! whichever reached it first, and a replica holding the other could not take what
//! follows. So an update that writes under an id belonging to someone else is refused,
//! and the claims an admitted update makes are stored with it.

pub mod predict;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, ReadTxn, Transact, TransactionMut, Update};

use crate::doc::{self, Board};
use crate::guard::{ChangeRecorder, TransactionChanges};
use crate::model::{ParticipantId, Phase, Role};
use crate::permissions::{Refusal, check_update};
use predict::{Prediction, predict};

/// Who sends an update, as the server knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub participant: ParticipantId,
    pub role: Role,
}

/// Whose changes a Yjs client id carries in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The server's own changes (the outcome of commands), under the id of its replica.
    Server,
    /// The participant who first made changes under the id.
    Participant(ParticipantId),
}

/// An update the gate admitted and applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Store these bytes, then relay them. They are the update as the document took
    /// it (re-encoded from what it integrated), not as the client sent it: a replica
    /// that knows less or more than the server then integrates it the same way.
    pub update: Vec<u8>,
    /// The client ids it is the first to write under: they belong to its sender from
    /// now on, and are stored with it.
    pub claims: Vec<ClientID>,
}

/// What the gate decided about an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Applied to the document.
    Accepted(Admitted),
    /// Nothing in it is new to the document; nothing was applied.
    Known,
    /// It builds on changes the document does not have, from this client (at least);
    /// nothing was applied. It is worth trying again once the document has more of
    /// that client's changes.
    Incomplete(yrs::block::ClientID),
    /// Not allowed; nothing was applied. The reason is for the sender.
    Refused(Refusal),
    /// Not a valid Yjs update; nothing was applied.
    Malformed(&'static str),
    /// Applied, but it must not stay: yrs failed partway (no reason), or what it
    /// reported changing is refused. The document must be rebuilt from what is stored.
    Spoiled(Option<Refusal>),
}

/// Where a document holds a client's changes after a hole in them (a range it skipped,
/// as yrs does when changes arrive ahead of earlier ones): the client and the clock.
/// What fills such a hole later does not land the same way on every replica, so the
/// gate never admits an update that would leave one.
pub fn first_hole<T: ReadTxn>(txn: &T) -> Option<(yrs::block::ClientID, u32)> {
    use yrs::block::BlockView;
    for (client, end) in txn.state_vector().iter() {
        let mut clock = 0;
        while clock < *end {
            match txn.block(&yrs::ID::new(*client, clock)) {
                Some(BlockView::Item(item)) => clock = item.id().clock + item.len(),
                Some(BlockView::GC(range)) => clock = range.clock + range.len,
                Some(BlockView::Skip(_)) | None => return Some((*client, clock)),
            }
        }
    }
    None
}

/// Why stored updates could not be made into a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("a stored update cannot be decoded")]
    Undecodable,
    #[error("a stored update cannot be applied")]
    Inapplicable,
}

/// Applies one stored update in a transaction of its own.
fn apply_alone(doc: &Doc, part: &[u8]) -> Result<(), LoadError> {
    catch_unwind(AssertUnwindSafe(|| {
        let update = Update::decode_v1(part).map_err(|_| LoadError::Undecodable)?;
        doc.transact_mut()
            .apply_update(update)
            .map_err(|_| LoadError::Inapplicable)
    }))
    .unwrap_or(Err(LoadError::Inapplicable))
}

/// A conference's document with what the gate judges updates by.
pub struct Gate {
    doc: Doc,
    recorder: ChangeRecorder,
    /// The author of each board item, as of the last admitted change.
    authors: HashMap<String, String>,
    /// Whose changes each client id carries. Ids not here belong to nobody yet: the
    /// first participant to write under one claims it.
    owners: HashMap<ClientID, Owner>,
}

const NOT_AN_UPDATE: &str = "the update is not a valid Yjs update";

impl Gate {
    /// A gate over a document made of stored updates, applied in order.
    pub fn load<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Result<Gate, LoadError> {
        let doc = doc::new_document();
        let recorder = ChangeRecorder::attach(&doc);
        // yrs panics on some sequences of updates (in debug builds, on counters that
        // would go below zero): a stored document it cannot take is one that does not
        // load, not a crash.
        let applied = catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            for part in parts {
                let update = Update::decode_v1(part).map_err(|_| LoadError::Undecodable)?;
                txn.apply_update(update)
                    .map_err(|_| LoadError::Inapplicable)?;
            }
            Ok(())
        }));
        applied.unwrap_or(Err(LoadError::Inapplicable))?;
        recorder.take();
        Ok(Gate::over(doc, recorder))
    }

    /// A gate over a loaded document, its own replica's client id the server's.
    fn over(doc: Doc, recorder: ChangeRecorder) -> Gate {
        let authors = Board::new(&doc)
            .authors(&doc.transact())
            .into_iter()
            .collect();
        let owners = HashMap::from([(doc.client_id(), Owner::Server)]);
        Gate {
            doc,
            recorder,
            authors,
            owners,
        }
    }

    /// Adds who owns which client ids, as stored with the updates that claimed them.
    pub fn with_owners(
        mut self,
        owners: impl IntoIterator<Item = (ClientID, ParticipantId)>,
    ) -> Gate {
        for (client, participant) in owners {
            self.owners
                .entry(client)
                .or_insert(Owner::Participant(participant));
        }
        self
    }

    /// Whose changes `client` carries, if anyone's yet.
    pub fn owner(&self, client: ClientID) -> Option<Owner> {
        self.owners.get(&client).copied()
    }

    /// A gate over as much of a stored document as yrs can take: `parts` applied in
    /// order, each in a transaction of its own, leaving out any that cannot be decoded
    /// or applied (or that make yrs panic). Returns the gate and, for each part left
    /// out, its index in `parts` and why. For a document `load` refuses: what still
    /// applies is kept, and nothing is lost that the left-out parts did not hold.
    pub fn load_what_applies(parts: &[&[u8]]) -> (Gate, Vec<(usize, LoadError)>) {
        let mut kept: Vec<&[u8]> = Vec::with_capacity(parts.len());
        let mut left_out = Vec::new();
        let mut doc = doc::new_document();
        for (index, part) in parts.iter().enumerate() {
            match apply_alone(&doc, part) {
                Ok(()) => kept.push(part),
                Err(why) => {
                    left_out.push((index, why));
                    // What failed may have changed the document part way (a panic in
                    // yrs leaves it as it was then): start again from what applied.
                    doc = doc::new_document();
                    for part in &kept {
                        // Each applied on its own before, and applies so again.
                        let _ = apply_alone(&doc, part);
                    }
                }
            }
        }
        let recorder = ChangeRecorder::attach(&doc);
        (Gate::over(doc, recorder), left_out)
    }

    /// The document, for reading. Changing it other than through the gate would let
    /// changes in unchecked.
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// Decides on an update from `sender`, and applies it if it is allowed.
    pub fn admit(&mut self, sender: Sender, update: &[u8]) -> Verdict {
        self.admit_holding(sender, update, |_| false)
    }

    /// As [`Gate::admit`], where `held_by_another(client)` tells whether a device of
    /// someone other than the sender already goes by `client` (in who-is-here, say):
    /// the sender cannot claim such an id before its holder writes under it.
    pub fn admit_holding(
        &mut self,
        sender: Sender,
        update: &[u8],
        held_by_another: impl Fn(ClientID) -> bool,
    ) -> Verdict {
        // Hostile input must not take the server down: a panic inside yrs counts as an
        // update that cannot be read.
        let Ok(Ok(decoded)) = catch_unwind(|| Update::decode_v1(update)) else {
            return Verdict::Malformed(NOT_AN_UPDATE);
        };
        let (closed, claims) = {
            let txn = self.doc.transact();
            let mine = Owner::Participant(sender.participant);
            let mut claims = Vec::new();
            for (client, new) in predict::written_clients(&txn, &decoded) {
                match self.owners.get(&client) {
                    Some(owner) if *owner == mine => {}
                    // Even changes the document has already: the sender's copy holds
                    // them as its own, and what it holds at those clocks need not be
                    // what the owner wrote there.
                    Some(_) => return Verdict::Refused(Refusal::ForeignClient),
                    None if !new => {}
                    None if held_by_another(client) => {
                        return Verdict::Refused(Refusal::ForeignClient);
                    }
                    None => claims.push(client),
                }
            }
            let prediction = catch_unwind(AssertUnwindSafe(|| predict(&txn, &decoded)));
            let predicted = match prediction {
                Ok(Prediction::Known) => return Verdict::Known,
                Ok(Prediction::Incomplete(client)) => return Verdict::Incomplete(client),
                Ok(Prediction::Invalid) | Err(_) => return Verdict::Malformed(NOT_AN_UPDATE),
                Ok(Prediction::Changes(predicted)) => predicted,
            };
            let board = Board::get(&txn);
            let verdict = check_update(
                sender.role,
                sender.participant,
                &predicted.changes,
                |item| self.authors.get(item).cloned(),
                |item| match predicted.new_entries.get(item) {
                    Some(entry) => Some(entry.clone()),
                    None => board.as_ref().and_then(|b| b.entry_now(&txn, item)),
                },
            );
            if let Err(refusal) = verdict {
                return Verdict::Refused(refusal);
            }
            let closed = doc::read_phase(&txn) == Some(Phase::Closed);
            if closed {
                return Verdict::Refused(Refusal::Closed);
            }
            for date in &predicted.action_dates {
                if let Err(refusal) = crate::plan::check_date(date.as_deref()) {
                    return Verdict::Refused(Refusal::Plan(refusal));
                }
            }
            (closed, claims)
        };
        let Some((taken, observed)) = self.apply(decoded) else {
            return Verdict::Spoiled(None);
        };
        // Even with nothing to report (a deletion nobody sees), it changed the document:
        // it is stored like any other.
        if let Err(refusal) = self.judge_applied(sender, &observed, closed) {
            return Verdict::Spoiled(Some(refusal));
        }
        self.remember_authors(&observed);
        let mine = Owner::Participant(sender.participant);
        self.owners
            .extend(claims.iter().map(|client| (*client, mine)));
        Verdict::Accepted(Admitted {
            update: taken,
            claims,
        })
    }

    /// Applies a decided update: the update as the document took it, and what yrs
    /// reports it changed. `None` if yrs failed (or panicked) partway.
    fn apply(&mut self, decoded: Update) -> Option<(Vec<u8>, TransactionChanges)> {
        let applied = catch_unwind(AssertUnwindSafe(|| {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(decoded).map(|()| txn.encode_update_v1())
        }));
        let observed = self.recorder.take();
        match applied {
            Ok(Ok(taken)) => Some((taken, observed)),
            _ => None,
        }
    }

    /// Checks what yrs reported an applied update changed, by the same rules.
    fn judge_applied(
        &self,
        sender: Sender,
        observed: &TransactionChanges,
        closed: bool,
    ) -> Result<(), Refusal> {
        let board = Board::new(&self.doc);
        let txn = self.doc.transact();
        check_update(
            sender.role,
            sender.participant,
            observed,
            |item| self.authors.get(item).cloned(),
            |item| board.entry_now(&txn, item),
        )?;
        if closed {
            return Err(Refusal::Closed);
        }
        // The plan's dates were checked on what the update writes to them: checking the
        // whole plan again would refuse every change to it for one bad date stored long
        // ago.
        Ok(())
    }

    /// Remembers who wrote each item that was created, replaced or deleted: the next
    /// update may touch it.
    fn remember_authors(&mut self, observed: &TransactionChanges) {
        let board = Board::new(&self.doc);
        let txn = self.doc.transact();
        let touched = observed
            .changes
            .iter()
            .filter(|c| c.place.root.as_ref() == doc::BOARD && c.place.field.is_none());
        for change in touched {
            let Some(item) = change.place.entry.as_deref() else {
                continue;
            };
            match board.author(&txn, item) {
                Some(author) => self.authors.insert(item.to_owned(), author),
                None => self.authors.remove(item),
            };
        }
    }

    /// Decides on a change the server itself made on another node's copy of the
    /// document (the outcome of a command that node checked), forwarded to this one,
    /// the owner: no role's rules apply, but it may not write under a participant's
    /// client id, nor build on what the document lacks. The ids it writes under are
    /// the server's from now on.
    pub fn admit_server(&mut self, update: &[u8]) -> Verdict {
        let Ok(Ok(decoded)) = catch_unwind(|| Update::decode_v1(update)) else {
            return Verdict::Malformed(NOT_AN_UPDATE);
        };
        let claims = {
            let txn = self.doc.transact();
            let written = predict::written_clients(&txn, &decoded);
            if written
                .iter()
                .any(|(c, _)| matches!(self.owners.get(c), Some(Owner::Participant(_))))
            {
                return Verdict::Refused(Refusal::ForeignClient);
            }
            let clients: Vec<ClientID> = written
                .into_iter()
                .filter(|(_, new)| *new)
                .map(|(c, _)| c)
                .collect();
            match catch_unwind(AssertUnwindSafe(|| predict(&txn, &decoded))) {
                Ok(Prediction::Known) => return Verdict::Known,
                Ok(Prediction::Incomplete(client)) => return Verdict::Incomplete(client),
                Ok(Prediction::Invalid) | Err(_) => return Verdict::Malformed(NOT_AN_UPDATE),
                Ok(Prediction::Changes(_)) => clients,
            }
        };
        let Some((taken, observed)) = self.apply(decoded) else {
            return Verdict::Spoiled(None);
        };
        self.remember_authors(&observed);
        self.owners
            .extend(claims.iter().map(|client| (*client, Owner::Server)));
        // The server's ids are not stored as claims: no participant may take them
        // while this owner holds them, and each node's copy has ids of its own.
        Verdict::Accepted(Admitted {
            update: taken,
            claims: Vec::new(),
        })
    }

    /// Applies an update that the document's gate on another server node admitted
    /// and stored: this one follows the stored log and judges nothing, but keeps
    /// who wrote each item, as if it had admitted it.
    pub fn apply_stored(&mut self, update: &[u8]) -> Result<(), LoadError> {
        let applied = catch_unwind(AssertUnwindSafe(|| {
            let update = Update::decode_v1(update).map_err(|_| LoadError::Undecodable)?;
            self.doc
                .transact_mut()
                .apply_update(update)
                .map_err(|_| LoadError::Inapplicable)
        }))
        .unwrap_or(Err(LoadError::Inapplicable));
        let observed = self.recorder.take();
        applied?;
        self.remember_authors(&observed);
        Ok(())
    }

    /// Makes a change of the server's own (the outcome of a command it has checked).
    /// Returns the update to store and relay, or `None` if nothing changed.
    pub fn change(&mut self, change: impl FnOnce(&mut TransactionMut)) -> Option<Vec<u8>> {
        let update = {
            let mut txn = self.doc.transact_mut();
            change(&mut txn);
            txn.encode_update_v1()
        };
        let observed = self.recorder.take();
        if observed.is_empty() {
            return None;
        }
        self.remember_authors(&observed);
        Some(update)
    }

    /// The whole document as one update, for a snapshot or a newcomer.
    pub fn encode(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::NewItem;
    use crate::model::Role;

    /// An update adding one item, made on `doc`.
    fn add(doc: &Doc, id: &str) -> Vec<u8> {
        let board = Board::new(doc);
        let before = doc.transact().state_vector();
        board.add_item(
            &mut doc.transact_mut(),
            NewItem {
                id,
                heading: "worries",
                text: id,
                author: crate::model::ParticipantId(uuid::Uuid::nil()),
                said_by: None,
                children: &[],
            },
        );
        doc.transact().encode_state_as_update_v1(&before)
    }

    #[test]
    fn a_stored_document_with_a_bad_row_loads_what_still_applies() {
        let replica = doc::new_document();
        let first = add(&replica, "first");
        let second = add(&replica, "second");
        let garbage = vec![0xff, 0x03, 0x01];
        let parts: Vec<&[u8]> = vec![&first, &garbage, &second];
        assert!(Gate::load(parts.iter().copied()).is_err());
        let (gate, left_out) = Gate::load_what_applies(&parts);
        assert_eq!(left_out, vec![(1, LoadError::Undecodable)]);
        let txn = gate.doc().transact();
        let items: Vec<String> = Board::get(&txn)
            .map(|b| b.items(&txn).into_iter().map(|i| i.text).collect())
            .unwrap_or_default();
        assert_eq!(items, ["first", "second"]);
        assert_eq!(gate.authors.len(), 2);
    }

    fn professional(n: u128) -> Sender {
        Sender {
            participant: crate::model::ParticipantId(uuid::Uuid::from_u128(n)),
            role: Role::Professional,
        }
    }

    /// A replica with client id `client`, holding what `gate` holds.
    fn replica(gate: &Gate, client: u64) -> Doc {
        let replica = Doc::with_options(yrs::Options {
            client_id: ClientID::new(client),
            ..doc::document_options()
        });
        let whole = Update::decode_v1(&gate.encode()).expect("the server's document");
        replica.transact_mut().apply_update(whole).expect("applies");
        replica
    }

    /// An update adding one item authored by `sender`, made on `doc`.
    fn add_by(doc: &Doc, sender: Sender, id: &str) -> Vec<u8> {
        let before = doc.transact().state_vector();
        Board::new(doc).add_item(
            &mut doc.transact_mut(),
            NewItem {
                id,
                heading: "worries",
                text: id,
                author: sender.participant,
                said_by: None,
                children: &[],
            },
        );
        doc.transact().encode_state_as_update_v1(&before)
    }

    #[test]
    fn a_client_id_belongs_to_whoever_writes_under_it_first() {
        let (alex, sam) = (professional(1), professional(2));
        let mut gate = Gate::load([]).expect("an empty document");
        // Two devices that go by one client id, each adding items from the same clock.
        let (alexs, sams) = (replica(&gate, 7), replica(&gate, 7));
        let first = add_by(&alexs, alex, "alex");
        add_by(&sams, sam, "sam");
        add_by(&sams, sam, "sam again");
        let clash = sams
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        match gate.admit(alex, &first) {
            Verdict::Accepted(admitted) => assert_eq!(admitted.claims, [ClientID::new(7)]),
            other => panic!("the first writer's update: {other:?}"),
        }
        assert_eq!(
            gate.owner(ClientID::new(7)),
            Some(Owner::Participant(alex.participant))
        );
        assert_eq!(
            gate.admit(sam, &clash),
            Verdict::Refused(Refusal::ForeignClient)
        );
        // The owner goes on writing under it, claiming nothing new.
        let second = add_by(&alexs, alex, "alex again");
        match gate.admit(alex, &second) {
            Verdict::Accepted(admitted) => assert!(admitted.claims.is_empty()),
            other => panic!("the owner's next update: {other:?}"),
        }
        // And the owner's copy is the server's: nothing of the refused one got in.
        assert_eq!(
            alexs
                .transact()
                .encode_state_as_update_v1(&yrs::StateVector::default()),
            gate.encode()
        );
    }

    #[test]
    fn changes_under_someone_elses_id_are_refused_even_at_clocks_the_server_has() {
        let (alex, sam) = (professional(1), professional(2));
        let mut gate = Gate::load([]).expect("an empty document");
        let (alexs, sams) = (replica(&gate, 7), replica(&gate, 7));
        let first = add_by(&alexs, alex, "alex");
        // The same clock, another change: the server has that clock already.
        let clash = add_by(&sams, sam, "sam");
        assert!(matches!(gate.admit(alex, &first), Verdict::Accepted(_)));
        assert_eq!(
            gate.admit(sam, &clash),
            Verdict::Refused(Refusal::ForeignClient)
        );
        // The owner sending its own again is nothing new.
        assert_eq!(gate.admit(alex, &first), Verdict::Known);
    }

    #[test]
    fn owners_are_kept_across_a_reload() {
        let (alex, sam) = (professional(1), professional(2));
        let mut gate = Gate::load([]).expect("an empty document");
        let alexs = replica(&gate, 7);
        let first = add_by(&alexs, alex, "alex");
        assert!(matches!(gate.admit(alex, &first), Verdict::Accepted(_)));
        let stored = gate.encode();
        let mut reloaded = Gate::load([stored.as_slice()])
            .expect("loads")
            .with_owners([(ClientID::new(7), alex.participant)]);
        // Another device under the same id, up to date with the server.
        let sams = replica(&reloaded, 7);
        let clash = add_by(&sams, sam, "sam");
        assert_eq!(
            reloaded.admit(sam, &clash),
            Verdict::Refused(Refusal::ForeignClient)
        );
        let next = add_by(&alexs, alex, "alex again");
        assert!(matches!(reloaded.admit(alex, &next), Verdict::Accepted(_)));
    }

    #[test]
    fn an_id_someone_else_goes_by_cannot_be_claimed_nor_the_servers() {
        let sam = professional(2);
        let mut gate = Gate::load([]).expect("an empty document");
        let sams = replica(&gate, 7);
        let update = add_by(&sams, sam, "sam");
        // Alex's device announced itself under 7 before writing anything.
        let held_by_alex = |client: ClientID| client == ClientID::new(7);
        assert_eq!(
            gate.admit_holding(sam, &update, held_by_alex),
            Verdict::Refused(Refusal::ForeignClient)
        );
        let servers = replica(&gate, gate.doc().client_id().get());
        let update = add_by(&servers, sam, "sam");
        assert_eq!(
            gate.admit(sam, &update),
            Verdict::Refused(Refusal::ForeignClient)
        );
        assert_eq!(gate.owner(ClientID::new(7)), None);
    }

    #[test]
    fn a_sound_document_loads_whole_either_way() {
        let replica = doc::new_document();
        let first = add(&replica, "first");
        let (gate, left_out) = Gate::load_what_applies(&[&first]);
        assert!(left_out.is_empty());
        assert_eq!(gate.authors.len(), 1);
    }

    #[test]
    fn a_follower_applies_what_the_owner_stored_and_judges_as_the_owner_would_after() {
        let (alex, sam) = (professional(1), professional(2));
        let mut owner = Gate::load([]).expect("an empty document");
        let mut follower = Gate::load([]).expect("an empty document");
        let alexs = replica(&owner, 7);
        let Verdict::Accepted(stored) = owner.admit(alex, &add_by(&alexs, alex, "alex")) else {
            panic!("the owner takes the item");
        };
        follower.apply_stored(&stored.update).expect("applies");
        assert_eq!(follower.encode(), owner.encode());
        // It knows who wrote the item: Sam may not edit it there either.
        let sams = replica(&follower, 8);
        let before = sams.transact().state_vector();
        Board::new(&sams).insert_text(&mut sams.transact_mut(), "alex", 0, "sam ");
        let edit = sams.transact().encode_state_as_update_v1(&before);
        assert!(matches!(follower.admit(sam, &edit), Verdict::Refused(_)));
        assert_eq!(
            follower.apply_stored(&[0xff, 0x03, 0x01]),
            Err(LoadError::Undecodable)
        );
    }

    #[test]
    fn a_change_of_the_servers_made_elsewhere_is_taken_but_never_under_a_participants_id() {
        let alex = professional(1);
        let mut owner = Gate::load([]).expect("an empty document");
        let alexs = replica(&owner, 7);
        assert!(matches!(
            owner.admit(alex, &add_by(&alexs, alex, "alex")),
            Verdict::Accepted(_)
        ));
        // Another node's copy, with an id of its own, writes the phase.
        let elsewhere = replica(&owner, 99);
        let before = elsewhere.transact().state_vector();
        doc::write_phase(&mut elsewhere.transact_mut(), Phase::InformationSharing);
        let phase = elsewhere.transact().encode_state_as_update_v1(&before);
        assert!(matches!(owner.admit_server(&phase), Verdict::Accepted(_)));
        assert_eq!(
            doc::read_phase(&owner.doc().transact()),
            Some(Phase::InformationSharing)
        );
        assert_eq!(owner.owner(ClientID::new(99)), Some(Owner::Server));
        assert_eq!(owner.admit_server(&phase), Verdict::Known);
        // Under Alex's id, it is refused: nobody writes under another's id.
        let posing = replica(&owner, 7);
        let before = posing.transact().state_vector();
        doc::write_phase(&mut posing.transact_mut(), Phase::Planning);
        let posed = posing.transact().encode_state_as_update_v1(&before);
        assert_eq!(
            owner.admit_server(&posed),
            Verdict::Refused(Refusal::ForeignClient)
        );
        assert_eq!(
            owner.admit_server(&[0xff, 0x01]),
            Verdict::Malformed(NOT_AN_UPDATE)
        );
    }
}
