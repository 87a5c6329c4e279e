//! What the tests of the gate compare it with.

use std::collections::{HashMap, HashSet};

use roundtable_shared::doc::{self, Board};
use roundtable_shared::gate::predict::{Prediction, predict};
use roundtable_shared::guard::{ChangeRecorder, Place};
use roundtable_shared::permissions::{Refusal, check_update};
use roundtable_shared::{ParticipantId, Role};
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, Transact, Update};

/// What the reference makes of an update: applied to a copy of the document, then
/// judged by what yrs reports it changed. `Err(None)` if it leaves something pending
/// or lands after a hole (it builds on something the server lacks). The flag says
/// whether something the update writes lands where yrs reports no change (a write
/// that lost to a concurrent one, say): the gate judges by where each write lands, so
/// it may refuse such an update where the reference does not.
pub fn reference(
    accepted: &[Vec<u8>],
    role: Role,
    sender: ParticipantId,
    update: &[u8],
) -> (Result<bool, Option<Refusal>>, bool) {
    let mut unseen = false;
    let verdict = reference_verdict(accepted, role, sender, update, &mut unseen);
    (verdict, unseen)
}

fn reference_verdict(
    accepted: &[Vec<u8>],
    role: Role,
    sender: ParticipantId,
    update: &[u8],
    unseen: &mut bool,
) -> Result<bool, Option<Refusal>> {
    let copy = doc::new_document();
    let recorder = ChangeRecorder::attach(&copy);
    for part in accepted {
        copy.transact_mut()
            .apply_update(Update::decode_v1(part).unwrap())
            .unwrap();
    }
    recorder.take();
    let board = Board::new(&copy);
    let authors: HashMap<String, String> = board.authors(&copy.transact()).into_iter().collect();
    let before = copy.transact().state_vector();
    let decoded = Update::decode_v1(update).unwrap();
    // yrs integrates what comes after a hole in a client's clocks, leaving a skip.
    let hole = decoded
        .state_vector_lower()
        .iter()
        .any(|(client, clock)| *clock > before.get(client))
        || decoded.blocks().any(|block| match block {
            yrs::block::BlockView::Skip(range) => {
                range.clock + range.len > before.get(&range.client)
            }
            _ => false,
        });
    let closed = doc::read_phase(&copy.transact()) == Some(roundtable_shared::Phase::Closed);
    let predicted = match predict(&copy.transact(), &decoded) {
        Prediction::Changes(predicted) => predicted.changes.changes,
        _ => Default::default(),
    };
    copy.transact_mut().apply_update(decoded).unwrap();
    let changes = recorder.take();
    if hole || changes.incomplete {
        return Err(None);
    }
    let places: HashSet<&Place> = changes.changes.iter().map(|c| &c.place).collect();
    *unseen = changes.changes.is_empty() || predicted.iter().any(|c| !places.contains(&c.place));
    if changes.is_empty() && copy.transact().state_vector() == before {
        return Ok(false);
    }
    let txn = copy.transact();
    check_update(
        role,
        sender,
        &changes,
        |item| authors.get(item).cloned(),
        |item| board.entry_now(&txn, item),
    )
    .map_err(Some)?;
    if closed {
        return Err(Some(Refusal::Closed));
    }
    roundtable_shared::plan::check(&txn).map_err(|e| Some(Refusal::Plan(e)))?;
    Ok(true)
}
