//! The safety scale: what is being scored, the words people see, where a scale
//! is in its life, and the summary shown when the scores are revealed.
//!
//! Everyone scores from 0 (no safety at all) to 10 (enough safety for the case to
//! close), privately; the chair then reveals all the scores together.

use serde::{Deserialize, Serialize};
use yrs::encoding::serde::{from_any, to_any};
use yrs::{Any, Map, MapPrelim, MapRef, Out, ReadTxn, TransactionMut, WriteTxn};

use crate::doc::SCALES;
use crate::model::{ChildId, ParticipantId, Role, Score};

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

words!(ScaleStatus {
    Open = "open",
    Closed = "closed",
    Revealed = "revealed",
});

impl ScaleStatus {
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

/// One person's score, as shown once the scale is revealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedScore {
    pub participant: ParticipantId,
    pub name: String,
    pub role: Role,
    pub score: Score,
    /// Why they gave it, in their own words, if they said.
    #[serde(default)]
    pub reason: Option<String>,
    /// The chair entered it for someone without a phone.
    #[serde(default)]
    pub entered_by_chair: bool,
}

/// The revealed scores of the same question at the previous conference, shown beside
/// a review conference's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousScores {
    pub conference_title: String,
    /// When that conference was held (RFC 3339).
    pub held: String,
    pub scores: Vec<RevealedScore>,
}

/// A safety scale as the shared document holds it. Before the reveal it carries how
/// many people have scored, never the scores: those stay on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEntry {
    pub id: String,
    /// 1 for the conference's first scale, then 2, 3, …
    pub number: u32,
    pub subject: ScaleSubject,
    /// Who or what is scored, in words: a child's name, "the children", or the danger
    /// statement.
    pub about: String,
    pub wording: ScaleWording,
    pub status: ScaleStatus,
    /// How many people have scored.
    pub scored: u32,
    /// Every score, once revealed; empty before.
    pub results: Vec<RevealedScore>,
    pub previous: Option<PreviousScores>,
}

/// Entries of a scale's map in [`SCALES`].
pub mod entry {
    pub const NUMBER: &str = "number";
    pub const SUBJECT: &str = "subject";
    pub const ABOUT: &str = "about";
    pub const WORDING: &str = "wording";
    pub const STATUS: &str = "status";
    pub const SCORED: &str = "scored";
    pub const RESULTS: &str = "results";
    pub const PREVIOUS: &str = "previous";
}

fn any_of<T: Serialize>(value: &T) -> Any {
    // Our types are plain data: strings, numbers, lists and maps.
    to_any(value).unwrap_or(Any::Null)
}

fn scale_map<T: ReadTxn>(txn: &T, id: &str) -> Option<MapRef> {
    match txn.get_map(SCALES)?.get(txn, id) {
        Some(Out::YMap(map)) => Some(map),
        _ => None,
    }
}

/// Writes a new scale into [`SCALES`]. Server only.
pub fn write_scale(txn: &mut TransactionMut, scale: &ScaleEntry) {
    let mut fields: Vec<(&str, yrs::In)> = vec![
        (
            entry::NUMBER,
            yrs::In::Any(Any::from(i64::from(scale.number))),
        ),
        (entry::SUBJECT, yrs::In::Any(any_of(&scale.subject))),
        (entry::ABOUT, yrs::In::Any(Any::from(scale.about.as_str()))),
        (entry::WORDING, yrs::In::Any(any_of(&scale.wording))),
        (
            entry::STATUS,
            yrs::In::Any(Any::from(scale.status.as_str())),
        ),
        (
            entry::SCORED,
            yrs::In::Any(Any::from(i64::from(scale.scored))),
        ),
    ];
    if !scale.results.is_empty() {
        fields.push((entry::RESULTS, yrs::In::Any(any_of(&scale.results))));
    }
    if let Some(previous) = &scale.previous {
        fields.push((entry::PREVIOUS, yrs::In::Any(any_of(previous))));
    }
    let prelim: MapPrelim = fields.into_iter().collect();
    txn.get_or_insert_map(SCALES)
        .insert(txn, scale.id.as_str(), prelim);
}

/// Sets how many people have scored. The count only ever rises (a changed score is
/// still one score), so a late write of an older count never lowers it. Server only.
pub fn write_scored(txn: &mut TransactionMut, id: &str, scored: u32) {
    if let Some(map) = scale_map(txn, id) {
        let now = read_u32(txn, &map, entry::SCORED).unwrap_or(0);
        if scored > now {
            map.insert(txn, entry::SCORED, Any::from(i64::from(scored)));
        }
    }
}

/// Sets where the scale is in its life, with the scores once revealed. Server only.
pub fn write_status(
    txn: &mut TransactionMut,
    id: &str,
    status: ScaleStatus,
    results: &[RevealedScore],
) {
    if let Some(map) = scale_map(txn, id) {
        map.insert(txn, entry::STATUS, Any::from(status.as_str()));
        if status == ScaleStatus::Revealed {
            map.insert(txn, entry::SCORED, Any::from(results.len() as i64));
            map.insert(txn, entry::RESULTS, any_of(&results));
        }
    }
}

fn read_u32<T: ReadTxn>(txn: &T, map: &MapRef, key: &str) -> Option<u32> {
    match map.get(txn, key)? {
        Out::Any(Any::Number(n)) => n.as_i64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
}

fn read_any<T: ReadTxn, V: serde::de::DeserializeOwned>(
    txn: &T,
    map: &MapRef,
    key: &str,
) -> Option<V> {
    match map.get(txn, key)? {
        Out::Any(any) => from_any(&any).ok(),
        _ => None,
    }
}

/// Every scale of the conference, first opened first. A scale the document holds in
/// a shape this version does not understand is left out rather than guessed at.
pub fn read_scales<T: ReadTxn>(txn: &T) -> Vec<ScaleEntry> {
    let Some(root) = txn.get_map(SCALES) else {
        return Vec::new();
    };
    let mut scales: Vec<ScaleEntry> = root
        .iter(txn)
        .filter_map(|(id, value)| {
            let Out::YMap(map) = value else {
                return None;
            };
            let status: String = read_any(txn, &map, entry::STATUS)?;
            Some(ScaleEntry {
                id: id.to_owned(),
                number: read_u32(txn, &map, entry::NUMBER)?,
                subject: read_any(txn, &map, entry::SUBJECT)?,
                about: read_any(txn, &map, entry::ABOUT)?,
                wording: read_any(txn, &map, entry::WORDING)?,
                status: ScaleStatus::parse(&status)?,
                scored: read_u32(txn, &map, entry::SCORED).unwrap_or(0),
                results: read_any(txn, &map, entry::RESULTS).unwrap_or_default(),
                previous: read_any(txn, &map, entry::PREVIOUS),
            })
        })
        .collect();
    scales.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.id.cmp(&b.id)));
    scales
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

    use yrs::Transact;

    fn scale(number: u32) -> ScaleEntry {
        ScaleEntry {
            id: format!("scale-{number}"),
            number,
            subject: ScaleSubject::AllChildren,
            about: "the children".into(),
            wording: ScaleWording::defaults("the children"),
            status: ScaleStatus::Open,
            scored: 0,
            results: Vec::new(),
            previous: None,
        }
    }

    #[test]
    fn a_scale_in_the_document_carries_the_count_then_the_scores() {
        let doc = yrs::Doc::new();
        {
            let mut txn = doc.transact_mut();
            write_scale(&mut txn, &scale(2));
            write_scale(&mut txn, &scale(1));
            write_scored(&mut txn, "scale-2", 3);
            // An older count arriving late never lowers it.
            write_scored(&mut txn, "scale-2", 2);
        }
        let read = read_scales(&doc.transact());
        assert_eq!(read.iter().map(|s| s.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(read[1].scored, 3);
        assert_eq!(read[1].status, ScaleStatus::Open);
        assert!(read[1].results.is_empty());
        assert_eq!(read[0], scale(1));

        let revealed = RevealedScore {
            participant: ParticipantId(uuid::Uuid::new_v4()),
            name: "Sam".into(),
            role: Role::Parent,
            score: Score::new(6).unwrap(),
            reason: Some("Things are calmer at home".into()),
            entered_by_chair: false,
        };
        {
            let mut txn = doc.transact_mut();
            write_status(&mut txn, "scale-2", ScaleStatus::Closed, &[]);
            assert_eq!(read_scales(&txn)[1].status, ScaleStatus::Closed);
            write_status(
                &mut txn,
                "scale-2",
                ScaleStatus::Revealed,
                std::slice::from_ref(&revealed),
            );
        }
        let read = read_scales(&doc.transact());
        assert_eq!(read[1].status, ScaleStatus::Revealed);
        assert_eq!(read[1].results, [revealed]);
        assert_eq!(read[1].scored, 1);
    }
}
