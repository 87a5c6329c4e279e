//! The HTTP API's requests and answers, as the server sends and reads them and as the
//! browser apps read and send them: one definition for both ends (`docs/api.md`
//! describes each call).
//!
//! Words a person chose from a list (a role to invite someone as, a phase, an
//! attendance) are sent as text and checked by the server, which answers a word it
//! does not know with the list of those it does.

use serde::{Deserialize, Serialize};

use crate::headings::HeadingsTemplate;
use crate::model::{
    ChairId, Child, ConferenceId, ConferenceKind, ParticipantId, ParticipantStatus, Phase, Role,
    ScaleId,
};
use crate::record::{AgencyView, Attendance, Dissent, NextMeetingsEntry, Quorum};
use crate::scale::{
    PreviousScores, RevealedScore, ScaleStatus, ScaleSubject, ScaleWording, Summary,
};

/// The body of every error answer: a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub error: String,
}

// --- signing in -------------------------------------------------------------------

/// `POST /api/session`: a chair signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// `POST /api/join`: a personal join link's token, exchanged for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeem {
    pub token: String,
}

/// `POST /api/lobby`: someone in the room asks to join with the code on the wall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterLobby {
    pub room_code: String,
    pub name: String,
    /// The conference, when the person came by the room view's QR code, whose
    /// address names it: a guess that names its conference cannot be a guess at
    /// every conference's code at once, so it is not held to the limit on all
    /// guesses together (only to its address's), and gets in during an attack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference: Option<ConferenceId>,
}

/// The answer to `POST /api/join` and `POST /api/lobby`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub conference_id: ConferenceId,
    pub participant: ParticipantView,
}

/// A signed-in chair, as `GET /api/me` describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChairView {
    pub id: ChairId,
    pub name: String,
    pub email: String,
}

/// Who the server says a browser belongs to (`GET /api/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Me {
    Chair(ChairView),
    Participant {
        #[serde(flatten)]
        participant: ParticipantView,
        conference_id: ConferenceId,
        /// False while the person waits in the lobby for the chair to let them in.
        admitted: bool,
    },
}

// --- conferences ------------------------------------------------------------------

/// A conference, as `GET /api/conferences` lists it and the other answers name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceView {
    pub id: ConferenceId,
    pub title: String,
    pub kind: ConferenceKind,
    /// RFC 3339, as the chair gave it.
    pub scheduled_start: String,
    pub headings: HeadingsTemplate,
    pub children: Vec<Child>,
    pub phase: Phase,
    pub room_code: String,
}

impl ConferenceView {
    /// The room code as shown on screens: in groups of four (`ABCD EFGH JKLM`), easier
    /// to read from the wall and to type. Spaces do not count when it is typed.
    pub fn room_code_shown(&self) -> String {
        spaced_room_code(&self.room_code)
    }
}

/// A room code as people type it: letters and digits only, in capitals (spaces and
/// dashes between its groups do not count).
pub fn tidy_room_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A room code in groups of four, separated by spaces.
pub fn spaced_room_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Your own place in a conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct You {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
}

/// `GET /api/conferences/{id}`: the conference and your place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceDetail {
    #[serde(flatten)]
    pub conference: ConferenceView,
    pub you: You,
    /// Everyone, for the chair only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<ParticipantView>>,
}

/// `POST /api/conferences`: a new conference, with the people invited to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewConference {
    pub title: String,
    pub kind: ConferenceKind,
    /// RFC 3339, e.g. `2026-12-01T10:00:00+00:00`.
    pub scheduled_start: String,
    pub children: Vec<NewChild>,
    #[serde(default)]
    pub headings_template: HeadingsTemplate,
    #[serde(default)]
    pub participants: Vec<NewParticipant>,
    /// For a review conference: the conference it reviews, so that its safety scales
    /// can be shown beside the new scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_conference: Option<ConferenceId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChild {
    pub name: String,
    /// `YYYY-MM-DD`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
}

/// The answer to `POST /api/conferences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub conference: ConferenceView,
    pub participants: Vec<Invited>,
}

/// `POST /api/conferences/{id}/phase`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPhase {
    /// One of [`Phase`]'s words.
    pub phase: String,
}

/// Where the conference is now, after a change of phase or a reopening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseNow {
    pub phase: Phase,
}

/// The answer to `POST /api/conferences/{id}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub phase: Phase,
    /// RFC 3339 in UTC.
    pub closed_at: String,
    /// The chair's participant id.
    pub by: ParticipantId,
}

// --- people -----------------------------------------------------------------------

/// A participant in a conference, as `GET /api/me`, the joins, the lobby and the
/// chair's list of people describe them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub name: String,
    /// `None` while waiting in the lobby.
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub agency: Option<String>,
    pub status: ParticipantStatus,
}

/// `GET /api/conferences/{id}/lobby`: someone waiting to be let in, with what the
/// chair should know before admitting them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingView {
    #[serde(flatten)]
    pub participant: ParticipantView,
    /// How they asked to join: with the room code (typed, or by the QR code).
    pub came_by: CameBy,
    /// How many of the people waiting (this one among them) asked from the same
    /// address, when the server knows (it forgets on restarting).
    #[serde(default)]
    pub from_same_address: Option<u32>,
    /// Someone invited, or already let in, whose name this one's matches (ignoring
    /// case, spaces and punctuation): perhaps them, perhaps someone posing as them.
    #[serde(default)]
    pub same_name_as: Option<ParticipantView>,
}

/// How someone waiting in the lobby asked to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameBy {
    RoomCode,
}

/// `POST /api/conferences/{id}/participants`: someone to invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewParticipant {
    pub name: String,
    /// One of [`Role`]'s words, other than `chair`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
}

/// Someone invited, with their personal link (shown once, to the chair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    pub participant: ParticipantView,
    pub join_link: String,
    pub token: String,
}

/// `POST /api/conferences/{id}/lobby/{pid}/admit`: the role to let someone in as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    /// One of [`Role`]'s words, other than `chair`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
}

// --- safety scales ----------------------------------------------------------------

/// `POST /api/conferences/{id}/scales`: what to score, and in which words (the
/// defaults when none are given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenScale {
    pub subject: ScaleSubject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wording: Option<ScaleWording>,
}

/// `PUT …/scales/{scale}/vote` and `…/votes/{participant}`: a score from 0 to 10.
/// The score is read as any JSON value so that one out of range, or not a whole
/// number, is answered with the rule rather than a parser's message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GiveScore {
    #[serde(default)]
    pub score: Option<serde_json::Value>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A score as its giver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YourScore {
    pub score: u8,
    #[serde(default)]
    pub reason: Option<String>,
    /// Entered by the chair for someone without a phone.
    #[serde(default)]
    pub entered_by_chair: bool,
}

/// The answer to giving a score: the score, and how many have scored now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreGiven {
    #[serde(flatten)]
    pub score: YourScore,
    pub scored: u32,
}

/// A scale as the caller may see it: the words for their side of the table, their
/// own score, and everyone's scores only once revealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleView {
    pub id: ScaleId,
    pub number: u32,
    pub subject: ScaleSubject,
    pub about: String,
    /// The question in the words for the caller's side of the table.
    pub question: String,
    pub zero: String,
    pub ten: String,
    pub wording: ScaleWording,
    pub status: ScaleStatus,
    pub scored: u32,
    #[serde(default)]
    pub your_score: Option<YourScore>,
    /// Every score, once revealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<RevealedScore>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The same scale's scores at the conference this one reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousScores>,
}

/// The conference a scale belongs to, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceName {
    pub id: ConferenceId,
    pub title: String,
}

/// Who is looking at the scales, and whether they give a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    pub votes: bool,
}

/// `GET /api/conferences/{id}/scales`, and each `scales` event of `…/scales/live`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scales {
    pub conference: ConferenceName,
    pub you: Voter,
    pub scales: Vec<ScaleView>,
}

impl Scales {
    /// The scale to show first: the open one, else the latest.
    pub fn current(&self) -> Option<&ScaleView> {
        self.scales
            .iter()
            .find(|s| s.status == ScaleStatus::Open)
            .or_else(|| self.scales.last())
    }
}

// --- the end of the meeting -------------------------------------------------------

/// The outcome the chair records for a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)]
pub enum Outcome {
    ChildProtectionPlan,
    ChildInNeedPlan,
    NoPlan,
}

/// `PUT /api/conferences/{id}/decisions/{child}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDecision {
    pub outcome: Outcome,
    /// For a child protection plan: the categories of harm, at least one.
    #[serde(default)]
    pub categories: Vec<crate::model::Category>,
    #[serde(default)]
    pub agency_views: Vec<AgencyView>,
    #[serde(default)]
    pub dissent: Vec<Dissent>,
    #[serde(default)]
    pub lead_social_worker: Option<String>,
}

/// `PUT /api/conferences/{id}/attendance/{participant}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAttendance {
    /// One of [`Attendance`]'s words.
    pub status: String,
}

/// The answer: the attendance as stored, and the quorum it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRecorded {
    pub participant: ParticipantId,
    pub status: Attendance,
    pub quorum: Quorum,
}

/// `PUT /api/conferences/{id}/next-meetings`: `YYYY-MM-DD` each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetNextMeetings {
    pub core_group_by: String,
    pub review_by: String,
}

// --- the record -------------------------------------------------------------------

/// Someone the record or the audit log names: who recorded, scored or changed
/// something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: ParticipantId,
    pub name: String,
    #[serde(default)]
    pub role: Option<Role>,
}

/// `GET /api/conferences/{id}/record`: the whole record of a conference, for a case
/// management system and for the family's letter (`docs/record-export.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordExport {
    /// `roundtable-record/1`.
    pub format: String,
    pub conference: RecordConference,
    pub children: Vec<Child>,
    pub participants: Vec<RecordParticipant>,
    pub board: Vec<RecordHeading>,
    pub safety_scales: Vec<RecordScale>,
    pub plan: RecordPlan,
    pub decisions: Vec<RecordDecisionEntry>,
    pub quorum: Quorum,
    pub next_meetings: NextMeetingsEntry,
    /// RFC 3339 in UTC.
    pub exported_at: String,
}

/// The conference as the record describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordConference {
    pub id: ConferenceId,
    pub title: String,
    pub kind: ConferenceKind,
    pub scheduled_start: String,
    pub phase: Phase,
    /// RFC 3339 in UTC; `None` while open.
    pub closed_at: Option<String>,
}

/// Someone invited or let in, as the record lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordParticipant {
    pub id: ParticipantId,
    pub name: String,
    pub role: Option<Role>,
    pub agency: Option<String>,
    /// The chair removed them during the conference.
    pub removed: bool,
    pub attendance: Option<Attendance>,
}

/// What was written under one heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHeading {
    pub key: String,
    pub title: String,
    pub items: Vec<RecordItem>,
}

/// One thing said, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordItem {
    pub text: String,
    /// Who said it, in words: a name with its agency, or an agency.
    pub said_by: Option<String>,
    /// The names of the children it concerns.
    pub children: Vec<String>,
    /// Written in the professionals-only part, which the family did not see.
    pub professionals_only: bool,
}

/// A safety scale as the record keeps it: the scores only once revealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordScale {
    pub number: u32,
    pub about: String,
    pub status: ScaleStatus,
    pub scored: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<RevealedScore>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// The plan drafted in the meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPlan {
    pub dangers: Vec<RecordDanger>,
    pub actions: Vec<RecordAction>,
    pub contingency: String,
    pub bottom_lines: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDanger {
    pub statement: String,
    pub safety_goal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAction {
    pub what: String,
    /// Who does it, in words.
    pub who: Option<String>,
    /// `YYYY-MM-DD`.
    pub by: Option<String>,
    pub how_we_will_know: String,
    /// The name of the child it is for, if one.
    pub child: Option<String>,
}

/// The decision for one child: `decision` is `None` until the chair records one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDecisionEntry {
    pub child: crate::model::ChildId,
    pub name: String,
    pub decision: Option<crate::model::Decision>,
    #[serde(default)]
    pub agency_views: Vec<AgencyView>,
    #[serde(default)]
    pub dissent: Vec<Dissent>,
    #[serde(default)]
    pub lead_social_worker: Option<String>,
    /// RFC 3339 in UTC.
    #[serde(default)]
    pub recorded_at: Option<String>,
    #[serde(default)]
    pub recorded_by: Option<PersonRef>,
}

/// `GET /api/conferences/{id}/audit`: every command, and the latest changes to the
/// documents, with who and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog {
    pub events: Vec<AuditEntry>,
    pub document_changes: Vec<DocumentChange>,
    /// Only the latest document changes are listed.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// RFC 3339 in UTC.
    pub at: String,
    /// `None` for the server's own doing.
    pub actor: Option<PersonRef>,
    pub action: String,
    /// What the command was given (a score of a scale not yet revealed left out).
    pub detail: serde_json::Value,
}

/// `GET /api/account/events`: what happened to the signed-in chair's account, newest
/// first: wrong passwords tried against it (`wrong_passwords`: how many in a row, and
/// from how many addresses) and sign-ins (`signed_in`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvents {
    pub events: Vec<AccountEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// RFC 3339 in UTC.
    pub at: String,
    pub action: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentChange {
    pub at: String,
    pub participant: Option<PersonRef>,
    pub document: crate::doc::DocumentKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conference_whose_child_has_no_date_of_birth_reads_back() {
        let detail = ConferenceDetail {
            conference: ConferenceView {
                id: ConferenceId(uuid::Uuid::nil()),
                title: "Taylor children".into(),
                kind: ConferenceKind::Initial,
                scheduled_start: "2030-03-04T10:00:00Z".into(),
                headings: HeadingsTemplate::FourHeadings,
                children: vec![Child {
                    id: crate::model::ChildId(uuid::Uuid::nil()),
                    name: "Alex".into(),
                    date_of_birth: None,
                }],
                phase: Phase::PreMeet,
                room_code: "ABC234".into(),
            },
            you: You {
                id: ParticipantId(uuid::Uuid::nil()),
                name: "Sam".into(),
                role: Role::Chair,
            },
            participants: None,
        };
        let json = serde_json::to_string(&detail).unwrap();
        assert!(json.contains(r#""date_of_birth":null"#), "{json}");
        assert_eq!(
            serde_json::from_str::<ConferenceDetail>(&json).unwrap(),
            detail
        );
    }

    #[test]
    fn a_participant_is_read_from_me_with_their_place() {
        let me: Me = serde_json::from_str(
            r#"{"kind":"participant","id":"7d1f6c9e-4f0b-4a43-9a8e-0c1b2d3e4f50","name":"Jo",
                "role":null,"agency":null,"status":"waiting",
                "conference_id":"0b5e3f7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b","admitted":false}"#,
        )
        .unwrap();
        let Me::Participant {
            participant,
            admitted,
            ..
        } = me
        else {
            panic!("expected a participant");
        };
        assert_eq!(participant.status, ParticipantStatus::Waiting);
        assert_eq!(participant.role, None);
        assert!(!admitted);
    }

    fn scale(n: u128, status: ScaleStatus) -> ScaleView {
        ScaleView {
            id: ScaleId(uuid::Uuid::from_u128(n)),
            number: 1,
            subject: ScaleSubject::AllChildren,
            about: "Jamie".into(),
            question: "How safe?".into(),
            zero: "Not".into(),
            ten: "Safe".into(),
            wording: ScaleWording::defaults("Jamie"),
            status,
            scored: 0,
            your_score: None,
            results: None,
            summary: None,
            previous: None,
        }
    }

    #[test]
    fn the_open_scale_comes_first_then_the_latest() {
        let mut all = Scales {
            conference: ConferenceName {
                id: ConferenceId(uuid::Uuid::nil()),
                title: "T".into(),
            },
            you: Voter {
                id: ParticipantId(uuid::Uuid::nil()),
                name: "Sam".into(),
                role: Role::Parent,
                votes: true,
            },
            scales: vec![scale(1, ScaleStatus::Open), scale(2, ScaleStatus::Revealed)],
        };
        assert_eq!(all.current().unwrap().id, ScaleId(uuid::Uuid::from_u128(1)));
        all.scales[0].status = ScaleStatus::Revealed;
        assert_eq!(all.current().unwrap().id, ScaleId(uuid::Uuid::from_u128(2)));
        all.scales.clear();
        assert!(all.current().is_none());
    }

    #[test]
    fn a_scale_leaves_out_what_is_not_there_yet() {
        let open = ScaleView {
            id: ScaleId(uuid::Uuid::nil()),
            number: 1,
            subject: ScaleSubject::AllChildren,
            about: "the children".into(),
            question: "How safe?".into(),
            zero: "Not safe".into(),
            ten: "Safe".into(),
            wording: ScaleWording::defaults("the children"),
            status: ScaleStatus::Open,
            scored: 0,
            your_score: None,
            results: None,
            summary: None,
            previous: None,
        };
        let json = serde_json::to_value(&open).unwrap();
        assert_eq!(json["status"], "open");
        assert!(json["your_score"].is_null());
        assert!(json.get("results").is_none() && json.get("previous").is_none());
    }
}
