//! Heading templates: the columns of the whiteboard. Councils differ, so the
//! headings are chosen per conference.

use serde::{Deserialize, Serialize};

/// One column of the whiteboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Heading {
    /// Stable identifier stored on every board item under this heading.
    pub key: &'static str,
    /// The heading as written on the board.
    pub title: &'static str,
    /// What goes under it, in plain words.
    pub hint: &'static str,
}

/// The set of headings a conference uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadingsTemplate {
    /// Our default: worries, complicating factors, what's working well, what needs to happen.
    #[default]
    FourHeadings,
    /// Signs of Safety's three questions, plus grey areas.
    SignsOfSafety,
    /// Strengthening Families: danger/harm, complicating factors, strengths, safety, grey areas.
    StrengtheningFamilies,
}

const WORRIES: Heading = Heading {
    key: "worries",
    title: "What are we worried about?",
    hint: "Harm that has happened and what could happen in the future",
};
const COMPLICATING: Heading = Heading {
    key: "complicating",
    title: "Complicating factors",
    hint: "Things that make it harder to keep the children safe",
};
const WORKING_WELL: Heading = Heading {
    key: "working_well",
    title: "What's working well?",
    hint: "Strengths and the safety that is already there",
};
const NEXT_STEPS: Heading = Heading {
    key: "next_steps",
    title: "What needs to happen?",
    hint: "Safety goals and next steps",
};
const GREY_AREAS: Heading = Heading {
    key: "grey_areas",
    title: "Grey areas",
    hint: "What we don't know yet",
};
const DANGER_HARM: Heading = Heading {
    key: "danger_harm",
    title: "Danger and harm",
    hint: "Harm that has happened and the danger of it happening again",
};
const STRENGTHS: Heading = Heading {
    key: "strengths",
    title: "Strengths",
    hint: "What the family does well",
};
const SAFETY: Heading = Heading {
    key: "safety",
    title: "Safety",
    hint: "What keeps the children safe, shown over time",
};

impl HeadingsTemplate {
    pub const ALL: [HeadingsTemplate; 3] = [
        Self::FourHeadings,
        Self::SignsOfSafety,
        Self::StrengtheningFamilies,
    ];

    /// The name used in the API, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FourHeadings => "four_headings",
            Self::SignsOfSafety => "signs_of_safety",
            Self::StrengtheningFamilies => "strengthening_families",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::FourHeadings => "Four headings",
            Self::SignsOfSafety => "Signs of Safety (three questions and grey areas)",
            Self::StrengtheningFamilies => "Strengthening Families",
        }
    }

    /// The headings, left to right.
    pub fn headings(self) -> &'static [Heading] {
        match self {
            Self::FourHeadings => &[WORRIES, COMPLICATING, WORKING_WELL, NEXT_STEPS],
            Self::SignsOfSafety => &[WORRIES, WORKING_WELL, NEXT_STEPS, GREY_AREAS],
            Self::StrengtheningFamilies => {
                &[DANGER_HARM, COMPLICATING, STRENGTHS, SAFETY, GREY_AREAS]
            }
        }
    }

    pub fn heading(self, key: &str) -> Option<&'static Heading> {
        self.headings().iter().find(|h| h.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_unique_heading_keys() {
        for template in HeadingsTemplate::ALL {
            let keys: Vec<_> = template.headings().iter().map(|h| h.key).collect();
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(keys.len(), unique.len(), "{template:?}");
        }
    }

    #[test]
    fn default_is_the_four_headings() {
        let titles: Vec<_> = HeadingsTemplate::default()
            .headings()
            .iter()
            .map(|h| h.title)
            .collect();
        assert_eq!(
            titles,
            [
                "What are we worried about?",
                "Complicating factors",
                "What's working well?",
                "What needs to happen?"
            ]
        );
    }
}
