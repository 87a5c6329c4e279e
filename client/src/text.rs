//! Turning what a text box now holds into the smallest change to a shared text,
//! and keeping the caret in place when someone else's typing changes the box.
//!
//! A text box only tells us its whole new value. Replacing the shared text with
//! it would throw away whatever someone else typed in the meantime, so we send
//! only the part that differs: the characters between the common beginning and
//! the common end of the old and new values. Positions count UTF-16 units, as
//! the browser's text fields (and the documents `live.rs` makes) do.

/// Replace `delete` units at `at` with `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub at: u32,
    pub delete: u32,
    pub insert: String,
}

fn is_low_surrogate(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

/// The change that turns `old` into `new`, or `None` if they are equal.
pub fn splice(old: &str, new: &str) -> Option<Splice> {
    let old: Vec<u16> = old.encode_utf16().collect();
    let new: Vec<u16> = new.encode_utf16().collect();
    if old == new {
        return None;
    }
    let mut prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    // Never split a character made of two UTF-16 units.
    while prefix > 0
        && (old.get(prefix).is_some_and(|&u| is_low_surrogate(u))
            || new.get(prefix).is_some_and(|&u| is_low_surrogate(u)))
    {
        prefix -= 1;
    }
    let room = old.len().min(new.len()) - prefix;
    let mut suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    while suffix > 0 && is_low_surrogate(old[old.len() - suffix]) {
        suffix -= 1;
    }
    Some(Splice {
        at: prefix as u32,
        delete: (old.len() - prefix - suffix) as u32,
        insert: String::from_utf16_lossy(&new[prefix..new.len() - suffix]),
    })
}

/// Where a caret at `caret` should be after `change` was made by someone else.
pub fn caret_after(caret: u32, change: &Splice) -> u32 {
    let inserted = change.insert.encode_utf16().count() as u32;
    if caret <= change.at {
        caret
    } else if caret >= change.at + change.delete {
        caret - change.delete + inserted
    } else {
        // Inside the replaced part: keep it just after what replaced it.
        change.at + inserted
    }
}

/// Shows someone else's typing in `area` as `text` changes, keeping our caret among
/// the same words.
pub fn follow_others(
    area: leptos::prelude::NodeRef<leptos::html::Textarea>,
    text: impl Fn() -> Option<String> + 'static,
) {
    use leptos::prelude::*;
    Effect::new(move |_| {
        let Some(text) = text() else {
            return;
        };
        let Some(area) = area.get() else {
            return;
        };
        let shown = area.value();
        let Some(change) = splice(&shown, &text) else {
            return;
        };
        let start = area.selection_start().ok().flatten();
        let end = area.selection_end().ok().flatten();
        area.set_value(&text);
        if let (Some(start), Some(end)) = (start, end) {
            let _ =
                area.set_selection_range(caret_after(start, &change), caret_after(end, &change));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(old: &str, new: &str, expected: Option<(u32, u32, &str)>) {
        let got = splice(old, new).map(|s| (s.at, s.delete, s.insert));
        let expected = expected.map(|(at, delete, insert)| (at, delete, insert.to_owned()));
        assert_eq!(got, expected, "{old:?} → {new:?}");
    }

    #[test]
    fn typing_inserts_only_what_was_typed() {
        check("Dad drinks", "Dad drinks", None);
        check("Dad drinks", "Dad drinks a lot", Some((10, 0, " a lot")));
        check("Dad drinks", "Mum and Dad drinks", Some((0, 0, "Mum and ")));
        check("aaa", "aaaa", Some((3, 0, "a")));
    }

    #[test]
    fn deleting_and_replacing_touch_only_that_part() {
        check("Dad drinks a lot", "Dad drinks", Some((10, 6, "")));
        check(
            "school every day",
            "school most days",
            Some((7, 9, "most days")),
        );
        check("abc", "", Some((0, 3, "")));
    }

    #[test]
    fn a_character_of_two_units_is_never_split() {
        // 😀 and 😃 share their first UTF-16 unit.
        check("a😀b", "a😃b", Some((1, 2, "😃")));
        check("😀", "😀😀", Some((2, 0, "😀")));
    }

    #[test]
    fn the_caret_stays_with_the_words_around_it() {
        let typed_before = Splice {
            at: 0,
            delete: 0,
            insert: "Mum ".into(),
        };
        assert_eq!(caret_after(3, &typed_before), 7);
        let typed_after = Splice {
            at: 10,
            delete: 0,
            insert: "!".into(),
        };
        assert_eq!(caret_after(3, &typed_after), 3);
        let replaced_around = Splice {
            at: 2,
            delete: 4,
            insert: "xy".into(),
        };
        assert_eq!(caret_after(4, &replaced_around), 4);
        assert_eq!(caret_after(8, &replaced_around), 6);
    }
}
