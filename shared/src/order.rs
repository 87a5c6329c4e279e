//! Positions of items under a heading.
//!
//! An item's position is a fractional index: a string that sorts between its
//! neighbours'. Reordering an item rewrites only its own position, so two people
//! reordering at once never duplicate or lose an item; if both pick the same
//! position, the item id breaks the tie, and every replica sorts the same way.

use fractional_index::FractionalIndex;

/// A position between `before` and `after` (either may be absent: the start or end
/// of the list). Positions that are not valid fractional indexes are treated as
/// absent, so a corrupt neighbour can never stop an item being placed.
pub fn position_between(before: Option<&str>, after: Option<&str>) -> String {
    let before = before.and_then(|s| FractionalIndex::from_string(s).ok());
    let after = after.and_then(|s| FractionalIndex::from_string(s).ok());
    let index = match (&before, &after) {
        (None, None) => FractionalIndex::default(),
        (Some(b), None) => FractionalIndex::new_after(b),
        (None, Some(a)) => FractionalIndex::new_before(a),
        (Some(b), Some(a)) if b < a => {
            FractionalIndex::new_between(b, a).unwrap_or_else(|| FractionalIndex::new_after(b))
        }
        (Some(b), Some(_)) => FractionalIndex::new_after(b),
    };
    index.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_sort_between_their_neighbours() {
        let first = position_between(None, None);
        let after = position_between(Some(&first), None);
        let before = position_between(None, Some(&first));
        let middle = position_between(Some(&first), Some(&after));
        assert!(before < first && first < middle && middle < after);
    }

    #[test]
    fn repeated_insertion_at_the_front_keeps_order() {
        let mut positions = vec![position_between(None, None)];
        for _ in 0..200 {
            let p = position_between(None, Some(&positions[0]));
            positions.insert(0, p);
        }
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(positions, sorted);
    }

    #[test]
    fn corrupt_neighbours_are_ignored() {
        let p = position_between(Some("not hex"), None);
        assert!(!p.is_empty());
    }
}
