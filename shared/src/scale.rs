//! The safety scale: what is being scored, the words people see, where a scale
//! is in its life, and the summary shown when the scores are revealed.
//!
//! Everyone scores from 0 (no safety at all) to 10 (enough safety for the case to
//! close), privately; the chair then reveals all the scores together.

use serde::{Deserialize, Serialize};

use crate::model::{ChildId, Score};

/// What a scale asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScaleSubject {
    /// One child.
    Child { child: ChildId },
    /// All the children of the conference together.
    AllChildren,
    /// One danger statement from the plan.
    Danger { statement: String },
}

/// The words of a scale for one audience: the question and what 0 and 10 mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wording {
    pub question: String,
    pub zero: String,
    pub ten: String,
}

/// The words of a scale: professionals', and (which may be plainer) the family's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleWording {
    pub professionals: Wording,
    pub family: Wording,
}

impl ScaleWording {
    /// The words the chair starts from. `about` names who or what is scored:
    /// a child's name, "the children", or the danger statement.
    pub fn defaults(about: &str) -> ScaleWording {
        ScaleWording {
            professionals: Wording {
                question: format!("On a scale of 0 to 10, how safe is {about} now?"),
                zero: "No safety at all: harm is certain to happen again".to_owned(),
                ten: "Enough safety for the case to close".to_owned(),
            },
            family: Wording {
                question: format!("How safe do you think {about} is now, from 0 to 10?"),
                zero: "Not safe at all".to_owned(),
                ten: "Safe enough that social workers do not need to be involved any more"
                    .to_owned(),
            },
        }
    }
}

/// Where a scale is in its life. It only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleStatus {
    /// People are scoring; nobody sees anyone else's score.
    Open,
    /// Scoring has stopped; the scores are still private.
    Closed,
    /// Everyone sees every score.
    Revealed,
}

/// Why a scale cannot do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScaleRefusal {
    #[error("this scale is closed: scores cannot be given or changed any more")]
    NotOpen,
    #[error("this scale is already closed")]
    AlreadyClosed,
    #[error("close the scale before revealing the scores")]
    StillOpen,
    #[error("the scores of this scale are already shown")]
    AlreadyRevealed,
}

impl ScaleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Revealed => "revealed",
        }
    }

    pub fn parse(s: &str) -> Option<ScaleStatus> {
        [Self::Open, Self::Closed, Self::Revealed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// Whether a score may be given or changed now.
    pub fn check_vote(self) -> Result<(), ScaleRefusal> {
        match self {
            Self::Open => Ok(()),
            _ => Err(ScaleRefusal::NotOpen),
        }
    }

    /// The status after the chair closes the scale.
    pub fn close(self) -> Result<ScaleStatus, ScaleRefusal> {
        match self {
            Self::Open => Ok(Self::Closed),
            Self::Closed => Err(ScaleRefusal::AlreadyClosed),
            Self::Revealed => Err(ScaleRefusal::AlreadyRevealed),
        }
    }

    /// The status after the chair reveals the scores.
    pub fn reveal(self) -> Result<ScaleStatus, ScaleRefusal> {
        match self {
            Self::Open => Err(ScaleRefusal::StillOpen),
            Self::Closed => Ok(Self::Revealed),
            Self::Revealed => Err(ScaleRefusal::AlreadyRevealed),
        }
    }
}

/// What the revealed scores add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many people gave each score: `counts[s]` for the score `s`.
    pub counts: [u32; 11],
    /// The middle score; halfway between the two middle ones for an even number of
    /// scores. `None` when nobody scored.
    pub median: Option<f32>,
    pub lowest: Option<Score>,
    pub highest: Option<Score>,
}

impl Summary {
    pub fn of(scores: &[Score]) -> Summary {
        let mut counts = [0u32; 11];
        for score in scores {
            counts[usize::from(score.get())] += 1;
        }
        let mut sorted = scores.to_vec();
        sorted.sort();
        let median = match sorted.len() {
            0 => None,
            n if n % 2 == 1 => Some(f32::from(sorted[n / 2].get())),
            n => Some((f32::from(sorted[n / 2 - 1].get()) + f32::from(sorted[n / 2].get())) / 2.0),
        };
        Summary {
            counts,
            median,
            lowest: sorted.first().copied(),
            highest: sorted.last().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[i64]) -> Vec<Score> {
        values.iter().map(|v| Score::new(*v).unwrap()).collect()
    }

    #[test]
    fn a_scale_is_scored_then_closed_then_revealed() {
        let open = ScaleStatus::Open;
        assert_eq!(open.check_vote(), Ok(()));
        assert_eq!(open.reveal(), Err(ScaleRefusal::StillOpen));
        let closed = open.close().unwrap();
        assert_eq!(closed.check_vote(), Err(ScaleRefusal::NotOpen));
        assert_eq!(closed.close(), Err(ScaleRefusal::AlreadyClosed));
        let revealed = closed.reveal().unwrap();
        assert_eq!(revealed.check_vote(), Err(ScaleRefusal::NotOpen));
        assert_eq!(revealed.reveal(), Err(ScaleRefusal::AlreadyRevealed));
        for status in [open, closed, revealed] {
            assert_eq!(ScaleStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn the_summary_counts_each_score_and_finds_the_middle() {
        let five = Summary::of(&scores(&[3, 7, 4, 4, 9]));
        assert_eq!(five.median, Some(4.0));
        assert_eq!(five.lowest, Score::new(3).ok());
        assert_eq!(five.highest, Score::new(9).ok());
        assert_eq!(five.counts[4], 2);
        assert_eq!(five.counts.iter().sum::<u32>(), 5);

        assert_eq!(Summary::of(&scores(&[2, 5])).median, Some(3.5));
        let nobody = Summary::of(&[]);
        assert_eq!((nobody.median, nobody.lowest), (None, None));
    }

    #[test]
    fn the_subject_is_written_with_its_kind() {
        let json = serde_json::to_value(ScaleSubject::AllChildren).unwrap();
        assert_eq!(json, serde_json::json!({ "kind": "all_children" }));
        let danger: ScaleSubject = serde_json::from_value(
            serde_json::json!({ "kind": "danger", "statement": "Dad's drinking" }),
        )
        .unwrap();
        assert_eq!(
            danger,
            ScaleSubject::Danger {
                statement: "Dad's drinking".into()
            }
        );
    }

    #[test]
    fn default_words_name_what_is_scored_and_both_ends() {
        let words = ScaleWording::defaults("Alex");
        assert!(words.professionals.question.contains("Alex"));
        assert!(words.family.question.contains("Alex"));
        assert!(words.family.ten.contains("Safe enough"));
    }
}
