//! The conference model: plain data, valid by construction.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::headings::HeadingsTemplate;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// Identifies a conference.
    ConferenceId
);
id_type!(
    /// Identifies a participant of one conference.
    ParticipantId
);
id_type!(
    /// Identifies a child within a conference.
    ChildId
);
id_type!(
    /// Identifies a chair's account.
    ChairId
);
id_type!(
    /// Identifies a safety scale of one conference.
    ScaleId
);

/// Why a conference is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConferenceKind {
    /// The first conference about these children.
    Initial,
    /// A review of an existing child protection plan.
    Review,
    /// A conference about an unborn baby.
    PreBirth,
}

words!(ConferenceKind {
    Initial = "initial",
    Review = "review",
    PreBirth = "pre_birth",
});

impl ConferenceKind {
    /// The kind in plain words, as a family would read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Initial => "Initial conference",
            Self::Review => "Review conference",
            Self::PreBirth => "Pre-birth conference",
        }
    }
}

/// Where the meeting has got to. Phases run in this order; the chair may move
/// between them freely until the conference is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    PreMeet,
    Introductions,
    InformationSharing,
    Scaling,
    Planning,
    Decision,
    Closed,
}

words!(Phase {
    PreMeet = "pre_meet",
    Introductions = "introductions",
    InformationSharing = "information_sharing",
    Scaling = "scaling",
    Planning = "planning",
    Decision = "decision",
    Closed = "closed",
});

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Self::PreMeet => "Before the meeting",
            Self::Introductions => "Introductions",
            Self::InformationSharing => "Sharing information",
            Self::Scaling => "Safety scale",
            Self::Planning => "Making the plan",
            Self::Decision => "The decision",
            Self::Closed => "Meeting closed",
        }
    }
}

/// What a participant is at the conference; it decides what they may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Chair,
    MinuteTaker,
    Professional,
    Parent,
    Carer,
    Supporter,
    Child,
    Advocate,
    RoomDisplay,
}

words!(Role {
    Chair = "chair",
    MinuteTaker = "minute_taker",
    Professional = "professional",
    Parent = "parent",
    Carer = "carer",
    Supporter = "supporter",
    Child = "child",
    Advocate = "advocate",
    RoomDisplay = "room_display",
});

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Self::Chair => "Chair",
            Self::MinuteTaker => "Minute-taker",
            Self::Professional => "Professional",
            Self::Parent => "Parent",
            Self::Carer => "Carer",
            Self::Supporter => "Supporter",
            Self::Child => "Child or young person",
            Self::Advocate => "Advocate",
            Self::RoomDisplay => "Room display",
        }
    }

    /// Family members and those who support them: they see only what is shared
    /// with the family, never the professionals-only part.
    pub fn is_family_side(self) -> bool {
        matches!(
            self,
            Self::Parent | Self::Carer | Self::Supporter | Self::Child | Self::Advocate
        )
    }

    /// Whether this role gives a score on the safety scale.
    pub fn votes(self) -> bool {
        !matches!(self, Self::RoomDisplay)
    }
}

/// Where someone stands with a conference: on the list, let in, waiting in the lobby,
/// or no longer able to take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantStatus {
    /// Invited by the chair; has not opened their link yet.
    Invited,
    /// Taking part: opened their link, or let in from the lobby.
    Admitted,
    /// Came in with the room code and waits for the chair to let them in.
    Waiting,
    /// Taken off the conference by the chair; their link and sessions are gone.
    Removed,
    /// Not let in from the lobby.
    TurnedAway,
}

words!(ParticipantStatus {
    Invited = "invited",
    Admitted = "admitted",
    Waiting = "waiting",
    Removed = "removed",
    TurnedAway = "turned_away",
});

impl ParticipantStatus {
    /// Whether someone with this status may take part in the conference now.
    pub fn takes_part(self) -> bool {
        matches!(self, Self::Invited | Self::Admitted)
    }

    /// Whether they lost their way in for good (link and sessions gone).
    pub fn shut_out(self) -> bool {
        matches!(self, Self::Removed | Self::TurnedAway)
    }
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// Reads an optional `YYYY-MM-DD` date by way of an optional string, so that a
/// `null` reads as no date wherever serde has buffered it (as `#[serde(flatten)]`
/// does, where `time`'s own reader refuses it).
fn optional_iso_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<time::Date>, D::Error> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Option::<String>::deserialize(deserializer)?
        .map(|date| time::Date::parse(&date, format).map_err(serde::de::Error::custom))
        .transpose()
}

/// A child the conference is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub id: ChildId,
    /// The name the child is known by.
    pub name: String,
    /// Absent for an unborn baby. Written as `YYYY-MM-DD`.
    #[serde(
        default,
        serialize_with = "iso_date::option::serialize",
        deserialize_with = "optional_iso_date"
    )]
    pub date_of_birth: Option<time::Date>,
}

/// Someone taking part in a conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    /// The agency a professional speaks for ("Children's social care", "Police", ...).
    #[serde(default)]
    pub agency: Option<String>,
}

/// A conference as the chair set it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conference {
    pub id: ConferenceId,
    pub title: String,
    pub kind: ConferenceKind,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_start: OffsetDateTime,
    pub children: Vec<Child>,
    pub headings: HeadingsTemplate,
    pub phase: Phase,
}

/// A safety-scale score: a whole number from 0 (no safety at all) to 10 (enough
/// safety for the case to close). Only valid scores can exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Score(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a score is a whole number from 0 to 10")]
pub struct ScoreOutOfRange;

impl Score {
    pub const MIN: Score = Score(0);
    pub const MAX: Score = Score(10);

    pub fn new(value: i64) -> Result<Score, ScoreOutOfRange> {
        u8::try_from(value)
            .ok()
            .filter(|v| *v <= 10)
            .map(Score)
            .ok_or(ScoreOutOfRange)
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        Score::new(value).map_err(serde::de::Error::custom)
    }
}

/// The category of a child protection plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    PhysicalAbuse,
    EmotionalAbuse,
    SexualAbuse,
    Neglect,
}

impl Category {
    pub fn label(self) -> &'static str {
        match self {
            Self::PhysicalAbuse => "Physical abuse",
            Self::EmotionalAbuse => "Emotional abuse",
            Self::SexualAbuse => "Sexual abuse",
            Self::Neglect => "Neglect",
        }
    }
}

/// What the conference decides for one child. A child protection plan always has at
/// least one category; the other outcomes have none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    ChildProtectionPlan { categories: NonEmptyCategories },
    ChildInNeedPlan,
    NoPlan,
}

/// One or more distinct categories, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NonEmptyCategories(Vec<Category>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a child protection plan needs at least one category")]
pub struct NoCategory;

impl NonEmptyCategories {
    pub fn new(mut categories: Vec<Category>) -> Result<Self, NoCategory> {
        categories.sort();
        categories.dedup();
        if categories.is_empty() {
            Err(NoCategory)
        } else {
            Ok(NonEmptyCategories(categories))
        }
    }

    pub fn as_slice(&self) -> &[Category] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for NonEmptyCategories {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let categories = Vec::<Category>::deserialize(d)?;
        NonEmptyCategories::new(categories).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_accepts_zero_to_ten_only() {
        for v in 0..=10 {
            assert_eq!(Score::new(v).unwrap().get() as i64, v);
        }
        for v in [-1, 11, 255, 256, i64::MIN, i64::MAX] {
            assert_eq!(Score::new(v), Err(ScoreOutOfRange));
        }
    }

    #[test]
    fn score_rejects_bad_json() {
        assert!(serde_json::from_str::<Score>("7").is_ok());
        for bad in ["11", "-1", "\"seven\"", "7.5", "null"] {
            assert!(serde_json::from_str::<Score>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn child_protection_plan_needs_a_category() {
        let empty = r#"{"outcome":"child_protection_plan","categories":[]}"#;
        assert!(serde_json::from_str::<Decision>(empty).is_err());
        let ok = r#"{"outcome":"child_protection_plan","categories":["neglect","neglect","physical_abuse"]}"#;
        let Decision::ChildProtectionPlan { categories } = serde_json::from_str(ok).unwrap() else {
            panic!("wrong outcome")
        };
        assert_eq!(
            categories.as_slice(),
            [Category::PhysicalAbuse, Category::Neglect]
        );
        assert_eq!(
            serde_json::from_str::<Decision>(r#"{"outcome":"no_plan"}"#).unwrap(),
            Decision::NoPlan
        );
    }

    #[test]
    fn a_date_of_birth_is_written_as_an_iso_date() {
        let child: Child = serde_json::from_str(
            r#"{"id":"6f1c1c36-4d6e-4a51-9a1f-2a3f9c1d2e10","name":"Jamie","date_of_birth":"2019-04-30"}"#,
        )
        .unwrap();
        let json = serde_json::to_value(&child).unwrap();
        assert_eq!(json["date_of_birth"], "2019-04-30");
        let unborn: Child =
            serde_json::from_str(r#"{"id":"6f1c1c36-4d6e-4a51-9a1f-2a3f9c1d2e10","name":"Baby"}"#)
                .unwrap();
        assert_eq!(unborn.date_of_birth, None);
    }

    #[test]
    fn roles_and_phases_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{}\"", phase.as_str()));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
