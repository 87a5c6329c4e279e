//! The plan, the decision and the record, over the real HTTP API and sync: decisions,
//! attendance and quorum, the next meetings, closing and reopening (and the frozen
//! document), the export, the audit view, and deleting conferences closed long ago.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use roundtable_shared::doc;
use roundtable_shared::record::{self, Attendance};
use roundtable_shared::{Decision, Phase};
use serde_json::{Value, json};
use yrs::Transact;

use crate::database::Beside;
use crate::helpers::{SyncClient, TestApp, error_of};
use crate::sync::{add_item, has_item};

/// (name, role, agency), in the order of `Scene::people`.
const PEOPLE: &[(&str, &str, Option<&str>)] = &[
    ("Priya Shah", "professional", Some("Children's Social Care")),
    ("PC Jones", "professional", Some("Police")),
    ("Dr Lee", "professional", Some("GP")),
    ("Sam Taylor", "parent", None),
    ("Ali Minutes", "minute_taker", None),
];
const SOCIAL_WORKER: usize = 0;
const POLICE: usize = 1;
const GP: usize = 2;
const PARENT: usize = 3;
const MINUTES: usize = 4;

struct Scene {
    app: TestApp,
    chair: Client,
    conference: String,
    /// (participant id, token) in the order of [`PEOPLE`].
    people: Vec<(String, String)>,
    /// (child id, name).
    children: Vec<(String, String)>,
}

async fn scene() -> Scene {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conference, people, children) = conference(&app, &chair).await;
    Scene {
        app,
        chair,
        conference,
        people,
        children,
    }
}

type People = Vec<(String, String)>;

async fn conference(app: &TestApp, chair: &Client) -> (String, People, People) {
    let participants: Vec<Value> = PEOPLE
        .iter()
        .map(|(name, role, agency)| json!({ "name": name, "role": role, "agency": agency }))
        .collect();
    let response = chair
        .post(app.url("/api/conferences"))
        .json(&json!({
            "title": "Initial conference: Jamie and Alex",
            "kind": "initial",
            "scheduled_start": "2026-12-01T10:00:00+00:00",
            "children": [{ "name": "Jamie" }, { "name": "Alex" }],
            "participants": participants,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let people = body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["participant"]["id"].as_str().unwrap().to_owned(),
                p["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let children = body["conference"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (
        body["conference"]["id"].as_str().unwrap().to_owned(),
        people,
        children,
    )
}

impl Scene {
    fn url(&self, rest: &str) -> String {
        self.app
            .url(&format!("/api/conferences/{}{rest}", self.conference))
    }

    fn token(&self, who: usize) -> &str {
        &self.people[who].1
    }

    fn id(&self, who: usize) -> &str {
        &self.people[who].0
    }

    async fn put(&self, rest: &str, body: Value) -> reqwest::Response {
        self.chair
            .put(self.url(rest))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, rest: &str, body: Value) -> reqwest::Response {
        self.chair
            .post(self.url(rest))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, rest: &str) -> Value {
        let response = self.chair.get(self.url(rest)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A participant's request, with a body that would be accepted from the chair.
    async fn as_participant(
        &self,
        who: usize,
        method: reqwest::Method,
        rest: &str,
        body: Value,
    ) -> (u16, String) {
        let response = Client::new()
            .request(method, self.url(rest))
            .bearer_auth(self.token(who))
            .json(&body)
            .send()
            .await
            .unwrap();
        error_of(response).await
    }

    async fn decide(&self, child: usize, body: Value) -> reqwest::Response {
        self.put(&format!("/decisions/{}", self.children[child].0), body)
            .await
    }

    async fn attend(&self, who: usize, status: &str) -> reqwest::Response {
        self.put(
            &format!("/attendance/{}", self.id(who)),
            json!({ "status": status }),
        )
        .await
    }

    async fn actions(&self) -> Vec<String> {
        self.get("/audit").await["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    }

    /// How many times the audit log records `action`.
    async fn recorded(&self, action: &str) -> usize {
        self.actions().await.iter().filter(|a| *a == action).count()
    }
}

/// A decision that is stored and what each refusal says, and that refusals change
/// nothing.
#[tokio::test]
async fn the_decision_for_each_child_is_checked_stored_and_shown() {
    let s = scene().await;
    let mut phone = s.app.connect(&s.conference, s.token(PARENT)).await;
    let plan = json!({
        "outcome": "child_protection_plan",
        "categories": ["neglect", "emotional_abuse"],
        "agency_views": [{ "agency": "Police", "view": "A plan is needed" }],
        "dissent": [{ "who": "Sam Taylor", "why": "Things are better since June" }],
        "lead_social_worker": "Priya Shah",
    });
    let response = s.decide(0, plan.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let jamie = s.children[0].0.clone();
    phone
        .wait_until(|c| record::read_decisions(&c.doc.transact()).len() == 1)
        .await;
    let shown = record::read_decisions(&phone.doc.transact()).remove(0);
    assert_eq!(shown.child.to_string(), jamie);
    let Decision::ChildProtectionPlan { categories } = &shown.decision else {
        panic!("wrong outcome: {:?}", shown.decision)
    };
    assert_eq!(categories.as_slice().len(), 2);
    assert_eq!(shown.dissent[0].why, "Things are better since June");
    assert_eq!(shown.lead_social_worker.as_deref(), Some("Priya Shah"));

    // Every refusal is a sentence, and leaves the decision as it was.
    let other_child = uuid::Uuid::new_v4();
    let refusals = [
        (
            s.put(&format!("/decisions/{other_child}"), plan.clone()).await,
            422,
            "that child is not part of this conference",
        ),
        (
            s.put("/decisions/not-a-child", plan.clone()).await,
            404,
            "there is nothing at this address",
        ),
        (
            s.decide(0, json!({ "outcome": "no_plan", "categories": ["neglect"] }))
                .await,
            422,
            "categories are only for a child protection plan",
        ),
        (
            s.decide(0, json!({ "outcome": "child_protection_plan", "categories": [] }))
                .await,
            422,
            "a child protection plan needs at least one category",
        ),
        (
            s.decide(
                0,
                json!({ "outcome": "no_plan", "agency_views": [{ "agency": "GP", "view": "  " }] }),
            )
            .await,
            422,
            "an agency's view is missing",
        ),
        (
            s.decide(
                0,
                json!({ "outcome": "no_plan", "dissent": [{ "who": "Sam", "why": "" }] }),
            )
            .await,
            422,
            "why they disagree is missing",
        ),
        (
            s.decide(
                0,
                json!({ "outcome": "no_plan", "dissent": [{ "who": "Sam", "why": "x".repeat(2001) }] }),
            )
            .await,
            422,
            "why they disagree is too long (at most 2000 characters)",
        ),
    ];
    for (response, status, sentence) in refusals {
        assert_eq!(error_of(response).await, (status, sentence.to_owned()));
    }
    let (status, _) = s
        .as_participant(
            SOCIAL_WORKER,
            reqwest::Method::PUT,
            &format!("/decisions/{jamie}"),
            json!({ "outcome": "no_plan" }),
        )
        .await;
    assert_eq!(status, 403);
    let record = s.get("/record").await;
    assert_eq!(
        record["decisions"][0]["decision"]["outcome"],
        "child_protection_plan"
    );
    assert_eq!(record["decisions"][1]["decision"], Value::Null);

    // Recording again replaces it, for that child only.
    assert_eq!(
        s.decide(0, json!({ "outcome": "child_in_need_plan" }))
            .await
            .status(),
        200
    );
    phone
        .wait_until(|c| {
            record::read_decisions(&c.doc.transact())[0].decision == Decision::ChildInNeedPlan
        })
        .await;
    let record = s.get("/record").await;
    assert_eq!(
        record["decisions"][0]["decision"]["outcome"],
        "child_in_need_plan"
    );
    assert_eq!(record["decisions"][0]["dissent"], json!([]));
    assert_eq!(s.recorded("decision_recorded").await, 2);
}

#[tokio::test]
async fn attendance_decides_the_quorum() {
    let s = scene().await;
    let mut phone = s.app.connect(&s.conference, s.token(PARENT)).await;
    let quorum = |c: &SyncClient| record::read_quorum(&c.doc.transact());

    for who in [SOCIAL_WORKER, POLICE, PARENT] {
        assert_eq!(s.attend(who, "present").await.status(), 200);
    }
    let answer: Value = s.attend(GP, "apologies").await.json().await.unwrap();
    assert_eq!(answer["quorum"]["quorate"], false);
    assert_eq!(answer["quorum"]["social_care"], true);
    assert_eq!(answer["quorum"]["other_agencies"], json!(["Police"]));
    phone
        .wait_until(|c| record::read_attendance(&c.doc.transact()).len() == 4)
        .await;
    assert_eq!(quorum(&phone).map(|q| q.quorate), Some(false));
    let gp = s.id(GP).parse().unwrap();
    assert_eq!(
        record::read_attendance(&phone.doc.transact())[&gp],
        Attendance::Apologies
    );

    // The GP arrives: social care and two other agencies.
    assert_eq!(s.attend(GP, "present").await.status(), 200);
    phone
        .wait_until(|c| quorum(c).is_some_and(|q| q.quorate))
        .await;
    // Social care leaves: no longer quorate, however many others stay.
    assert_eq!(s.attend(SOCIAL_WORKER, "absent").await.status(), 200);
    phone
        .wait_until(|c| quorum(c).is_some_and(|q| !q.quorate && !q.social_care))
        .await;

    assert_eq!(
        error_of(s.attend(GP, "late").await).await,
        (
            422,
            "status must be one of: present, apologies, absent".into()
        )
    );
    assert_eq!(
        error_of(
            s.put(
                &format!("/attendance/{}", uuid::Uuid::new_v4()),
                json!({ "status": "present" })
            )
            .await
        )
        .await
        .0,
        404
    );
    let (status, _) = s
        .as_participant(
            POLICE,
            reqwest::Method::PUT,
            &format!("/attendance/{}", s.id(POLICE)),
            json!({ "status": "present" }),
        )
        .await;
    assert_eq!(status, 403);
    let record = s.get("/record").await;
    let gp_entry = record["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Dr Lee")
        .unwrap()
        .clone();
    assert_eq!(gp_entry["attendance"], "present");
    assert_eq!(gp_entry["agency"], "GP");
    assert_eq!(record["quorum"]["quorate"], false);
    assert_eq!(s.recorded("attendance_recorded").await, 6);
}

#[tokio::test]
async fn the_next_meetings_are_proposed_and_can_be_changed() {
    let s = scene().await;
    let mut phone = s.app.connect(&s.conference, s.token(PARENT)).await;
    // Held on Tuesday 1 December 2026: ten working days, and three months (1 March
    // 2027 is a Monday).
    let next = record::read_next_meetings(&phone.doc.transact()).expect("written at creation");
    assert_eq!(
        (
            next.proposed_core_group_by.as_str(),
            next.core_group_by.as_str()
        ),
        ("2026-12-15", "2026-12-15")
    );
    assert_eq!(
        (next.proposed_review_by.as_str(), next.review_by.as_str()),
        ("2027-03-01", "2027-03-01")
    );
    // The plan's skeleton is there from the start too.
    assert!(
        roundtable_shared::plan::text(&phone.doc.transact(), roundtable_shared::plan::CONTINGENCY)
            .is_some()
    );

    let answer: Value = s
        .put(
            "/next-meetings",
            json!({ "core_group_by": "2026-12-10", "review_by": "2027-02-22" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["core_group_by"], "2026-12-10");
    assert_eq!(answer["proposed_core_group_by"], "2026-12-15");
    phone
        .wait_until(|c| {
            record::read_next_meetings(&c.doc.transact())
                .is_some_and(|n| n.core_group_by == "2026-12-10" && n.review_by == "2027-02-22")
        })
        .await;

    for (body, sentence) in [
        (
            json!({ "core_group_by": "2027-02-30", "review_by": "2027-03-01" }),
            "2027-02-30 is not a date",
        ),
        (
            json!({ "core_group_by": "2026-11-30", "review_by": "2027-03-01" }),
            "2026-11-30 is before the conference, which is on 2026-12-01",
        ),
    ] {
        assert_eq!(
            error_of(s.put("/next-meetings", body).await).await,
            (422, sentence.to_owned())
        );
    }
    let record = s.get("/record").await;
    assert_eq!(record["next_meetings"]["core_group_by"], "2026-12-10");
    assert_eq!(record["next_meetings"]["review_by"], "2027-02-22");
    assert!(s.actions().await.contains(&"next_meetings_set".to_owned()));
}

#[tokio::test]
async fn a_closed_conference_changes_no_more_until_the_chair_reopens_it() {
    let s = scene().await;
    let mut phone = s.app.connect(&s.conference, s.token(PARENT)).await;
    let open: Value = s
        .post("/scales", json!({ "subject": { "kind": "all_children" } }))
        .await
        .json()
        .await
        .unwrap();
    let scale = open["id"].as_str().unwrap().to_owned();

    let closed: Value = s.post("/close", json!({})).await.json().await.unwrap();
    assert_eq!(closed["phase"], "closed");
    phone
        .wait_until(|c| doc::read_phase(&c.doc.transact()) == Some(Phase::Closed))
        .await;
    let entry = record::read_closed(&phone.doc.transact()).expect("closed is recorded");
    assert_eq!(entry.by.to_string(), closed["by"].as_str().unwrap());

    let jamie = s.children[0].0.clone();
    let refused = [
        s.post("/close", json!({})).await,
        s.post("/phase", json!({ "phase": "planning" })).await,
        s.post("/scales", json!({ "subject": { "kind": "all_children" } }))
            .await,
        s.put(&format!("/scales/{scale}/vote"), json!({ "score": 5 }))
            .await,
        s.post(&format!("/scales/{scale}/close"), json!({})).await,
        s.post(&format!("/scales/{scale}/reveal"), json!({})).await,
        s.put(
            &format!("/decisions/{jamie}"),
            json!({ "outcome": "no_plan" }),
        )
        .await,
        s.attend(POLICE, "present").await,
        s.put(
            "/next-meetings",
            json!({ "core_group_by": "2026-12-10", "review_by": "2027-02-22" }),
        )
        .await,
    ];
    for response in refused {
        assert_eq!(
            error_of(response).await,
            (
                409,
                "this conference is closed: the chair can reopen it".into()
            )
        );
    }
    let score = Client::new()
        .put(s.url(&format!("/scales/{scale}/vote")))
        .bearer_auth(s.token(PARENT))
        .json(&json!({ "score": 4 }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(score).await.0, 409);
    // The statement that stores a score checks too, for a score that was on its way
    // when the chair closed the conference.
    use roundtable_server::storage::{AuditEvent, VoteOutcome, VoteRow};
    let parent = s.id(PARENT).parse().unwrap();
    let outcome = s
        .app
        .storage()
        .put_vote(
            s.conference.parse().unwrap(),
            scale.parse().unwrap(),
            parent,
            &VoteRow {
                participant_id: parent,
                score: 4,
                reason: None,
                entered_by: None,
            },
            &AuditEvent {
                conference: s.conference.parse().unwrap(),
                actor: Some(parent),
                action: "score_given",
                detail: json!({ "scale": scale, "score": 4 }),
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome, VoteOutcome::NotOpen);

    // Only the chair of this conference can reopen it.
    assert_eq!(
        s.as_participant(POLICE, reqwest::Method::POST, "/reopen", json!({}))
            .await,
        (403, "only the chair can reopen".into())
    );
    let stranger = s.app.another_chair("other@example.org").await;
    let response = stranger.post(s.url("/reopen")).send().await.unwrap();
    assert_eq!(
        error_of(response).await,
        (403, "only the chair can reopen".into())
    );
    let reopened: Value = s.post("/reopen", json!({})).await.json().await.unwrap();
    assert_eq!(reopened["phase"], "decision");
    phone
        .wait_until(|c| {
            doc::read_phase(&c.doc.transact()) == Some(Phase::Decision)
                && record::read_closed(&c.doc.transact()).is_none()
        })
        .await;
    assert_eq!(
        error_of(s.post("/reopen", json!({})).await).await,
        (409, "this conference is not closed".into())
    );
    assert_eq!(s.attend(POLICE, "present").await.status(), 200);
    // Moving the meeting on to the phase `closed` closes it the same way.
    let closed: Value = s
        .post("/phase", json!({ "phase": "closed" }))
        .await
        .json()
        .await
        .unwrap();
    assert!(closed["closed_at"].is_string());
    assert_eq!(error_of(s.attend(POLICE, "absent").await).await.0, 409);
    let actions = s.actions().await;
    let closing: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| matches!(*a, "conference_closed" | "conference_reopened"))
        .collect();
    assert_eq!(
        closing,
        [
            "conference_closed",
            "conference_reopened",
            "conference_closed"
        ]
    );
}

async fn stored_updates(app: &TestApp, conference: &str) -> i64 {
    app.beside()
        .await
        .int(
            "SELECT COUNT(*) FROM document_updates WHERE conference_id = $1",
            &[conference.into()],
        )
        .await
}

#[tokio::test]
async fn the_document_of_a_closed_conference_refuses_every_change() {
    let s = scene().await;
    let mut writer = s.app.connect(&s.conference, s.token(MINUTES)).await;
    let mut reader = s.app.connect(&s.conference, s.token(PARENT)).await;

    // Open, an item goes through.
    add_item(
        &mut writer,
        "i1",
        s.id(MINUTES),
        "Jamie has not been at school",
    )
    .await;
    reader.wait_until(has_item("i1")).await;

    assert_eq!(s.post("/close", json!({})).await.status(), 200);
    writer
        .wait_until(|c| doc::read_phase(&c.doc.transact()) == Some(Phase::Closed))
        .await;
    reader
        .wait_until(|c| doc::read_phase(&c.doc.transact()) == Some(Phase::Closed))
        .await;
    let before = stored_updates(&s.app, &s.conference).await;
    add_item(&mut writer, "i2", s.id(MINUTES), "Written after the end").await;
    writer.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        writer.refusals,
        ["the conference is closed, so the record cannot be changed"]
    );
    reader.settle(Duration::from_millis(300)).await;
    assert_eq!(reader.board().len(), 1);
    assert_eq!(stored_updates(&s.app, &s.conference).await, before);
    // A client that has nothing new to say is not refused (it would resync for ever).
    let sv = yrs::ReadTxn::state_vector(&reader.doc.transact());
    let nothing = yrs::ReadTxn::encode_state_as_update_v1(&reader.doc.transact(), &sv);
    reader
        .send(yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(
            nothing,
        )))
        .await;
    reader.settle(Duration::from_millis(300)).await;
    assert!(reader.refusals.is_empty());

    // Reopened, writing works again.
    assert_eq!(s.post("/reopen", json!({})).await.status(), 200);
    let mut writer = s.app.connect(&s.conference, s.token(MINUTES)).await;
    add_item(&mut writer, "i3", s.id(MINUTES), "Added after reopening").await;
    reader.wait_until(has_item("i3")).await;
    assert!(writer.refusals.is_empty());
}

#[tokio::test]
async fn a_plan_with_an_impossible_date_is_refused() {
    let s = scene().await;
    let mut minutes = s.app.connect(&s.conference, s.token(MINUTES)).await;
    let mut reader = s.app.connect(&s.conference, s.token(SOCIAL_WORKER)).await;
    use roundtable_shared::plan;
    minutes
        .edit(|txn| {
            assert!(plan::add_action(txn, "a1", "Attend the parenting course"));
            assert!(plan::set_action_field(
                txn,
                "a1",
                plan::action::BY,
                "2027-01-15"
            ));
        })
        .await;
    reader
        .wait_until(|c| plan::read_plan(&c.doc.transact()).actions.len() == 1)
        .await;
    let before = stored_updates(&s.app, &s.conference).await;
    minutes
        .edit(|txn| {
            assert!(plan::set_action_field(
                txn,
                "a1",
                plan::action::BY,
                "2027-02-30"
            ));
        })
        .await;
    minutes.wait_until(|c| !c.refusals.is_empty()).await;
    assert_eq!(
        minutes.refusals,
        ["an action's date must be a real date like 2027-01-15, not \"2027-02-30\""]
    );
    reader.settle(Duration::from_millis(300)).await;
    let seen = plan::read_plan(&reader.doc.transact());
    assert_eq!(seen.actions[0].by, plan::parse_date("2027-01-15"));
    assert_eq!(stored_updates(&s.app, &s.conference).await, before);
}

#[tokio::test]
async fn the_record_is_exported_whole_to_the_chair_only() {
    let s = scene().await;
    let mut minutes = s.app.connect(&s.conference, s.token(MINUTES)).await;
    add_item(
        &mut minutes,
        "i1",
        s.id(MINUTES),
        "Jamie says home is noisy at night",
    )
    .await;
    use roundtable_shared::plan;
    minutes
        .edit(|txn| {
            assert!(plan::add_danger(
                txn,
                "d1",
                "We are worried that",
                "Jamie will be safe"
            ));
        })
        .await;
    minutes
        .wait_until(|c| plan::read_plan(&c.doc.transact()).dangers.len() == 1)
        .await;
    // Saved: the answer to "saved?" follows the stored updates.
    minutes
        .send(yrs::sync::Message::Custom(
            roundtable_shared::protocol::SAVED,
            roundtable_shared::protocol::encode_saved(1),
        ))
        .await;
    minutes.wait_until(|c| c.saved.contains(&1)).await;

    // A revealed scale with its scores, and one still open.
    let scale: Value = s
        .post("/scales", json!({ "subject": { "kind": "all_children" } }))
        .await
        .json()
        .await
        .unwrap();
    let first = scale["id"].as_str().unwrap().to_owned();
    for (who, score) in [(POLICE, 6), (PARENT, 8)] {
        let r = Client::new()
            .put(s.url(&format!("/scales/{first}/vote")))
            .bearer_auth(s.token(who))
            .json(&json!({ "score": score, "reason": "secret until shown" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Before the reveal, not even the audit view shows a score.
    let audit = s.get("/audit").await;
    let given: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "score_given")
        .collect();
    assert_eq!(given.len(), 2);
    for event in &given {
        assert_eq!(event["detail"]["score"], Value::Null);
        assert_eq!(event["detail"]["reason"], Value::Null);
        assert!(event["actor"]["name"].is_string());
    }
    assert!(!audit.to_string().contains("secret until shown"));
    assert_eq!(
        s.post(&format!("/scales/{first}/close"), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        s.post(&format!("/scales/{first}/reveal"), json!({}))
            .await
            .status(),
        200
    );
    let audit = s.get("/audit").await;
    let scores: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "score_given")
        .map(|e| &e["detail"]["score"])
        .collect();
    assert_eq!(scores, [&json!(6), &json!(8)]);
    let second: Value = s
        .post("/scales", json!({ "subject": { "kind": "all_children" } }))
        .await
        .json()
        .await
        .unwrap();
    let r = Client::new()
        .put(s.url(&format!("/scales/{}/vote", second["id"].as_str().unwrap())))
        .bearer_auth(s.token(PARENT))
        .json(&json!({ "score": 2, "reason": "not yet for anyone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.decide(1, json!({ "outcome": "no_plan" })).await.status(),
        200
    );
    assert_eq!(s.attend(POLICE, "present").await.status(), 200);

    let record = s.get("/record").await;
    assert_eq!(record["format"], "roundtable-record/1");
    assert_eq!(record["conference"]["id"], s.conference.as_str());
    assert_eq!(record["conference"]["kind"], "initial");
    assert_eq!(record["conference"]["closed_at"], Value::Null);
    assert_eq!(record["children"][0]["name"], "Jamie");
    assert_eq!(
        record["participants"].as_array().unwrap().len(),
        PEOPLE.len() + 1
    );
    let heading = &record["board"][0];
    assert_eq!(
        heading["items"][0]["text"],
        "Jamie says home is noisy at night"
    );
    assert_eq!(heading["items"][0]["professionals_only"], false);
    assert_eq!(
        record["plan"]["dangers"][0]["safety_goal"],
        "Jamie will be safe"
    );
    let scales = record["safety_scales"].as_array().unwrap();
    assert_eq!(scales[0]["status"], "revealed");
    assert_eq!(scales[0]["summary"]["median"], 7.0);
    assert_eq!(scales[0]["results"].as_array().unwrap().len(), 2);
    assert_eq!(scales[1]["status"], "open");
    assert_eq!(scales[1]["scored"], 1);
    assert!(scales[1].get("results").is_none());
    assert!(!record.to_string().contains("not yet for anyone"));
    assert_eq!(record["decisions"][1]["decision"]["outcome"], "no_plan");
    assert_eq!(record["decisions"][1]["recorded_by"]["role"], "chair");
    assert_eq!(record["quorum"]["other_agencies"], json!(["Police"]));
    assert_eq!(record["next_meetings"]["review_by"], "2027-03-01");
    assert!(record["exported_at"].as_str().unwrap().starts_with("20"));

    // The audit view names who changed the document, oldest first.
    let audit = s.get("/audit").await;
    let changes = audit["document_changes"].as_array().unwrap();
    assert_eq!(audit["truncated"], false);
    assert!(
        changes
            .iter()
            .any(|c| c["participant"]["name"] == "Ali Minutes"
                && c["participant"]["role"] == "minute_taker"
                && c["document"] == "shared")
    );
    assert!(changes.iter().any(|c| c["participant"].is_null()));
    let times: Vec<&str> = changes.iter().map(|c| c["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert!(s.actions().await.contains(&"record_exported".to_owned()));

    // Nobody else: not a participant, not another chair; and no unknown conference.
    for who in [SOCIAL_WORKER, PARENT] {
        for rest in ["/record", "/audit"] {
            let (status, _) = s
                .as_participant(who, reqwest::Method::GET, rest, json!({}))
                .await;
            assert_eq!(status, 403, "{rest}");
        }
    }
    let stranger = s.app.another_chair("other@example.org").await;
    let response = stranger.get(s.url("/record")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = s
        .chair
        .get(
            s.app
                .url(&format!("/api/conferences/{}/record", uuid::Uuid::new_v4())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

/// Every row in every table that belongs to `conference`.
async fn rows_of(db: &mut Beside, conference: &str) -> Vec<(&'static str, i64)> {
    let queries: [(&str, &str); 10] = [
        (
            "conferences",
            "SELECT COUNT(*) FROM conferences WHERE id = $1",
        ),
        (
            "participants",
            "SELECT COUNT(*) FROM participants WHERE conference_id = $1",
        ),
        (
            "sessions",
            "SELECT COUNT(*) FROM sessions WHERE participant_id IN (SELECT id FROM participants WHERE conference_id = $1)",
        ),
        (
            "document_updates",
            "SELECT COUNT(*) FROM document_updates WHERE conference_id = $1",
        ),
        (
            "document_snapshots",
            "SELECT COUNT(*) FROM document_snapshots WHERE conference_id = $1",
        ),
        (
            "scales",
            "SELECT COUNT(*) FROM scales WHERE conference_id = $1",
        ),
        (
            "scale_votes",
            "SELECT COUNT(*) FROM scale_votes WHERE scale_id IN (SELECT id FROM scales WHERE conference_id = $1)",
        ),
        (
            "decisions",
            "SELECT COUNT(*) FROM decisions WHERE conference_id = $1",
        ),
        (
            "attendance",
            "SELECT COUNT(*) FROM attendance WHERE conference_id = $1",
        ),
        (
            "audit_events",
            "SELECT COUNT(*) FROM audit_events WHERE conference_id = $1",
        ),
    ];
    let mut counts = Vec::new();
    for (table, sql) in queries {
        counts.push((table, db.int(sql, &[conference.into()]).await));
    }
    counts
}

/// Fills a conference with something in every table, and closes it.
async fn used_and_closed(s: &Scene, conference: &str, people: &[(String, String)]) {
    let url = |rest: &str| s.app.url(&format!("/api/conferences/{conference}{rest}"));
    let scale: Value = s
        .chair
        .post(url("/scales"))
        .json(&json!({ "subject": { "kind": "all_children" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A session of a participant: their join link becomes a cookie.
    let phone = s.app.browser();
    let joined = phone
        .post(s.app.url("/api/join"))
        .json(&json!({ "token": people[PARENT].1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    let r = phone
        .put(url(&format!(
            "/scales/{}/vote",
            scale["id"].as_str().unwrap()
        )))
        .json(&json!({ "score": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .chair
        .put(url(&format!("/attendance/{}", people[POLICE].0)))
        .json(&json!({ "status": "present" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let child: Value = s
        .chair
        .get(url(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = s
        .chair
        .put(url(&format!(
            "/decisions/{}",
            child["children"][0]["id"].as_str().unwrap()
        )))
        .json(&json!({ "outcome": "no_plan" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A snapshot: the room is compacted when its last connection leaves.
    let client = s.app.connect(conference, &people[MINUTES].1).await;
    drop(client);
    let r = s.chair.post(url("/close")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn retention_deletes_everything_of_conferences_closed_long_ago_and_nothing_else() {
    let s = scene().await;
    let (old, old_people, _) = conference(&s.app, &s.chair).await;
    let (recent, recent_people, _) = conference(&s.app, &s.chair).await;
    used_and_closed(&s, &old, &old_people).await;
    used_and_closed(&s, &recent, &recent_people).await;
    // The open conference of the scene is used too.
    assert_eq!(s.attend(POLICE, "present").await.status(), 200);
    // A review conference that named the old one as the conference it reviews.
    let review = s
        .chair
        .post(s.app.url("/api/conferences"))
        .json(&json!({
            "title": "Review",
            "kind": "review",
            "scheduled_start": "2027-03-01T10:00:00+00:00",
            "children": [{ "name": "Jamie" }],
            "previous_conference": old,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), 201);

    let mut db = s.app.beside().await;
    // Wait for the compaction on leaving to be stored.
    let until = std::time::Instant::now() + crate::helpers::DEADLINE;
    while rows_of(&mut db, &old).await[4].1 == 0 {
        assert!(std::time::Instant::now() < until, "no snapshot stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let forty_days = 40 * 24 * 60 * 60 * 1000_i64;
    db.execute(
        "UPDATE conferences SET closed_at = closed_at - $1 WHERE id = $2",
        &[forty_days.into(), (&old).into()],
    )
    .await;
    let before_old = rows_of(&mut db, &old).await;
    assert!(
        before_old.iter().all(|(_, n)| *n > 0),
        "every table holds something of the old conference: {before_old:?}"
    );
    let before_recent = rows_of(&mut db, &recent).await;
    let before_open = rows_of(&mut db, &s.conference).await;

    let cutoff = roundtable_server::storage::now_ms() - 30 * 24 * 60 * 60 * 1000;
    // A dry run says what would go, and deletes nothing.
    let would = s
        .app
        .storage()
        .delete_closed_before(cutoff, true)
        .await
        .unwrap();
    assert_eq!(would.len(), 1);
    // So does the command line's, one line a conference and a total.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_roundtable"))
        .args(["retention", "--closed-days", "30", "--dry-run"])
        .args(s.app.database_arguments())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert!(
        lines[0].starts_with(&format!("would delete {old} ")),
        "{printed}"
    );
    assert!(lines[0].contains("scale_votes 1"), "{printed}");
    assert!(
        lines[1].starts_with("would delete 1 conference(s)"),
        "{printed}"
    );
    assert_eq!(rows_of(&mut db, &old).await, before_old);

    let gone = s
        .app
        .storage()
        .delete_closed_before(cutoff, false)
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].conference.to_string(), old);
    assert_eq!(gone[0].rows, would[0].rows);
    let votes = gone[0]
        .rows
        .iter()
        .find(|(t, _)| *t == "scale_votes")
        .unwrap();
    assert_eq!(votes.1, 1);
    assert!(
        rows_of(&mut db, &old).await.iter().all(|(_, n)| *n == 0),
        "{:?}",
        rows_of(&mut db, &old).await
    );
    assert_eq!(rows_of(&mut db, &recent).await, before_recent);
    assert_eq!(rows_of(&mut db, &s.conference).await, before_open);
    let previous = db
        .optional_text(
            "SELECT previous_conference_id FROM conferences WHERE title = 'Review'",
            &[],
        )
        .await;
    assert_eq!(previous, None);
    // Nothing more to delete.
    assert!(
        s.app
            .storage()
            .delete_closed_before(cutoff, false)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn every_command_about_people_and_the_meeting_is_in_the_audit_log() {
    let s = scene().await;
    let url = |rest: &str| {
        s.app
            .url(&format!("/api/conferences/{}{rest}", s.conference))
    };
    let post = |path: String, body: Value| {
        let chair = s.chair.clone();
        async move { chair.post(path).json(&body).send().await.unwrap() }
    };

    // Opening a link, inviting, a new link, the stage, the lobby, removal.
    let joined = Client::new()
        .post(s.app.url("/api/join"))
        .json(&json!({ "token": s.people[PARENT].1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    let invited: Value = post(
        url("/participants"),
        json!({ "name": "Nan", "role": "carer" }),
    )
    .await
    .json()
    .await
    .unwrap();
    let nan = invited["participant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        post(url(&format!("/participants/{nan}/link")), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        post(url("/phase"), json!({ "phase": "introductions" }))
            .await
            .status(),
        200
    );
    let shown: Value = s
        .chair
        .get(url(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = shown["room_code"].as_str().unwrap().to_owned();
    let mut waiting = Vec::new();
    for name in ["Kim", "Lou"] {
        let entered: Value = s
            .app
            .browser()
            .post(s.app.url("/api/lobby"))
            .json(&json!({ "room_code": code, "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        waiting.push(entered["participant"]["id"].as_str().unwrap().to_owned());
    }
    let admit = post(
        url(&format!("/lobby/{}/admit", waiting[0])),
        json!({ "role": "supporter" }),
    );
    assert_eq!(admit.await.status(), 200);
    let away = post(url(&format!("/lobby/{}/turn-away", waiting[1])), json!({}));
    assert_eq!(away.await.status(), 204);
    let removed = s
        .chair
        .delete(url(&format!("/participants/{nan}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);

    let log: Value = s
        .chair
        .get(url("/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Vec<(&str, &str)> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["name"].as_str().unwrap_or("nobody"),
            )
        })
        .collect();
    let chair = events[0].1;
    assert_eq!(
        events,
        [
            ("conference_created", chair),
            ("joined_by_link", "Sam Taylor"),
            ("participant_invited", chair),
            ("new_link", chair),
            ("phase_changed", chair),
            ("asked_to_join", "Kim"),
            ("asked_to_join", "Lou"),
            ("participant_admitted", chair),
            ("participant_turned_away", chair),
            ("participant_removed", chair),
        ]
    );
    assert_ne!(chair, "nobody");
}
