//! What every part of the board shares: the live document, what it shows, and who
//! you are in it. Kept apart from the board's page so that the parts drawn on it (the
//! chair's tools, the scale, the plan, the decisions) can use it without using the
//! page.

use leptos::prelude::*;
use roundtable_shared::model::Role;
use roundtable_shared::permissions;

use super::read::Snapshot;
use crate::live::{Live, LiveSignals};

/// What every part of the board needs, shared through Leptos' context.
#[derive(Clone)]
pub(crate) struct BoardContext {
    pub live: StoredValue<Live, LocalStorage>,
    pub signals: LiveSignals,
    pub snapshot: Memo<Snapshot>,
    /// Your own participant id and role in this conference.
    pub me: String,
    pub role: Role,
    /// The item whose editor is open on this screen, if any.
    pub open_item: RwSignal<Option<String>>,
    /// The id of an element to give focus to once the board has redrawn.
    pub focus_next: RwSignal<Option<String>>,
}

impl BoardContext {
    pub fn edit(&self, f: impl FnOnce(&mut yrs::TransactionMut)) {
        self.live.with_value(|live| live.edit(f));
    }

    pub fn may_change(&self, author: Option<&str>) -> bool {
        permissions::may_change_item(self.role, &self.me, author)
    }
}

/// The start of an item's text, to name it in a sentence.
pub(crate) fn short(text: &str) -> String {
    const MOST: usize = 40;
    let text = text.trim();
    match text.char_indices().nth(MOST) {
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
        None if text.is_empty() => "an empty item".to_owned(),
        None => text.to_owned(),
    }
}

/// A new random id for an item, from the browser's secure random numbers.
pub(crate) fn new_item_id() -> String {
    window()
        .crypto()
        .map(|crypto| crypto.random_uuid())
        .unwrap_or_else(|_| format!("item-{}", js_sys::Date::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_named_by_the_start_of_its_text() {
        assert_eq!(
            short("Dad has stopped drinking"),
            "Dad has stopped drinking"
        );
        assert_eq!(short("  "), "an empty item");
        let long = "Jamie has missed school on most Mondays since the start of term";
        assert_eq!(short(long), "Jamie has missed school on most Mondays…");
    }
}
