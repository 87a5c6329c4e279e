//! The safety scale over the real HTTP API and sync: opening, scoring, closing and
//! revealing, the secrecy of scores before the reveal, and every refusal.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use roundtable_shared::scale::{ScaleStatus, read_scales};
use serde_json::{Value, json};
use yrs::Transact;

use crate::helpers::{TestApp, error_of};

const PEOPLE: &[(&str, &str)] = &[
    ("Priya Shah", "professional"),
    ("Sam Taylor", "parent"),
    ("Wall", "room_display"),
    ("Alex Taylor", "parent"),
];

struct Scene {
    app: TestApp,
    chair: Client,
    conference: String,
    /// (participant id, token) in the order of [`PEOPLE`].
    people: Vec<(String, String)>,
}

async fn scene() -> Scene {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let (conference, people) = app.conference(&chair, PEOPLE).await;
    Scene {
        app,
        chair,
        conference,
        people,
    }
}

impl Scene {
    fn url(&self, rest: &str) -> String {
        self.app
            .url(&format!("/api/conferences/{}{rest}", self.conference))
    }

    fn token(&self, who: usize) -> &str {
        &self.people[who].1
    }

    async fn open(&self, body: Value) -> reqwest::Response {
        self.chair
            .post(self.url("/scales"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn open_all_children(&self) -> String {
        let response = self
            .open(json!({ "subject": { "kind": "all_children" } }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    async fn vote(&self, who: usize, scale: &str, body: Value) -> reqwest::Response {
        Client::new()
            .put(self.url(&format!("/scales/{scale}/vote")))
            .bearer_auth(self.token(who))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn chair_post(&self, scale: &str, what: &str) -> reqwest::Response {
        self.chair
            .post(self.url(&format!("/scales/{scale}/{what}")))
            .send()
            .await
            .unwrap()
    }

    async fn scales_seen_by(&self, who: usize) -> Value {
        Client::new()
            .get(self.url("/scales"))
            .bearer_auth(self.token(who))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn scores_stay_on_the_server_until_the_chair_reveals_them() {
    let s = scene().await;
    let mut parents_phone = s.app.connect(&s.conference, s.token(1)).await;
    let scale = s.open_all_children().await;

    // The family's words, not the professionals'.
    let seen = s.scales_seen_by(1).await;
    assert_eq!(seen["you"]["votes"], true);
    let words = &seen["scales"][0];
    assert_eq!(words["status"], "open");
    assert!(
        words["question"]
            .as_str()
            .unwrap()
            .starts_with("How safe do you think Jamie")
    );
    assert_eq!(words["zero"], "Not safe at all");

    let reason = "Mum has kept every appointment since June";
    assert_eq!(
        s.vote(0, &scale, json!({ "score": 7, "reason": reason }))
            .await
            .status(),
        200
    );
    let answer: Value = s
        .vote(1, &scale, json!({ "score": 3 }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["scored"], 2);
    // A changed score is still one score.
    let answer: Value = s
        .vote(
            1,
            &scale,
            json!({ "score": 4, "reason": "Better than last month" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["scored"], 2);

    parents_phone
        .wait_until(|c| {
            read_scales(&c.doc.transact())
                .first()
                .is_some_and(|s| s.scored == 2)
        })
        .await;
    // Nothing of any score is in the document: not the numbers, not the reasons.
    let entry = &read_scales(&parents_phone.doc.transact())[0];
    assert!(entry.results.is_empty());
    let everything = parents_phone.state();
    for secret in [reason.as_bytes(), b"Better than last month"] {
        assert!(!everything.windows(secret.len()).any(|w| w == secret));
    }
    // Nor does anyone's view before the reveal carry scores other than their own.
    let professionals_view = s.scales_seen_by(0).await;
    assert_eq!(professionals_view["scales"][0]["your_score"]["score"], 7);
    assert!(professionals_view["scales"][0].get("results").is_none());
    assert_eq!(
        s.scales_seen_by(1).await["scales"][0]["your_score"]["score"],
        4
    );

    assert_eq!(s.chair_post(&scale, "close").await.status(), 200);
    parents_phone
        .wait_until(|c| read_scales(&c.doc.transact())[0].status == ScaleStatus::Closed)
        .await;
    assert!(
        read_scales(&parents_phone.doc.transact())[0]
            .results
            .is_empty()
    );

    let revealed: Value = s.chair_post(&scale, "reveal").await.json().await.unwrap();
    assert_eq!(revealed["status"], "revealed");
    assert_eq!(revealed["summary"]["median"], 5.5);
    parents_phone
        .wait_until(|c| read_scales(&c.doc.transact())[0].status == ScaleStatus::Revealed)
        .await;
    let entry = &read_scales(&parents_phone.doc.transact())[0];
    let shown: Vec<(&str, u8, Option<&str>)> = entry
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.score.get(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            ("Priya Shah", 7, Some(reason)),
            ("Sam Taylor", 4, Some("Better than last month"))
        ]
    );
    // The voting page sees them too.
    let seen = s.scales_seen_by(1).await;
    assert_eq!(seen["scales"][0]["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_scores_are_refused_clearly_and_change_nothing() {
    let s = scene().await;
    let scale = s.open_all_children().await;
    assert_eq!(s.vote(1, &scale, json!({ "score": 6 })).await.status(), 200);

    for bad in [
        json!({ "score": 11 }),
        json!({ "score": -1 }),
        json!({ "score": "seven" }),
        json!({ "score": 7.5 }),
        json!({ "score": null }),
        json!({}),
        json!({ "score": 5, "reason": "x".repeat(1001) }),
    ] {
        let (status, message) = error_of(s.vote(1, &scale, bad.clone()).await).await;
        assert_eq!(status, 422, "{bad}");
        assert!(!message.is_empty(), "{bad}");
        if bad.get("reason").is_none() {
            assert_eq!(message, "the score must be a whole number from 0 to 10");
        }
    }
    // An empty body, and a body that is not JSON.
    let url = s.url(&format!("/scales/{scale}/vote"));
    let empty = Client::new()
        .put(&url)
        .bearer_auth(s.token(1))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 422);
    let not_json = Client::new()
        .put(&url)
        .bearer_auth(s.token(1))
        .body("7")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);

    // An unknown scale, and a scale id that is not an id.
    let unknown = uuid::Uuid::new_v4();
    let (status, message) =
        error_of(s.vote(1, &unknown.to_string(), json!({ "score": 5 })).await).await;
    assert_eq!(
        (status, message.as_str()),
        (404, "there is no such safety scale in this conference")
    );
    assert_eq!(
        s.vote(1, "not-a-scale", json!({ "score": 5 }))
            .await
            .status(),
        404
    );

    // A room display has no vote.
    let (status, message) = error_of(s.vote(2, &scale, json!({ "score": 5 })).await).await;
    assert_eq!(status, 422);
    assert!(message.contains("room display"), "{message}");

    // Someone else's score: only the chair may enter one.
    let sam = &s.people[1].0;
    let for_sam = s.url(&format!("/scales/{scale}/votes/{sam}"));
    let by_priya = Client::new()
        .put(&for_sam)
        .bearer_auth(s.token(0))
        .json(&json!({ "score": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_priya.status(), 403);
    assert_eq!(
        s.scales_seen_by(1).await["scales"][0]["your_score"]["score"],
        6
    );

    // A removed participant can no longer score, by any way in.
    let priya = &s.people[0].0;
    let removed = s
        .chair
        .delete(s.url(&format!("/participants/{priya}")))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(s.vote(0, &scale, json!({ "score": 5 })).await.status(), 410);

    // A closed scale takes no more scores, nor changes.
    assert_eq!(s.chair_post(&scale, "close").await.status(), 200);
    let (status, message) = error_of(s.vote(1, &scale, json!({ "score": 2 })).await).await;
    assert_eq!(status, 409);
    assert!(message.contains("closed"), "{message}");
    assert_eq!(
        s.scales_seen_by(1).await["scales"][0]["your_score"]["score"],
        6
    );
    assert_eq!(s.scales_seen_by(1).await["scales"][0]["scored"], 1);
}

#[tokio::test]
async fn the_chair_runs_the_scale_and_can_score_for_someone_without_a_phone() {
    let s = scene().await;
    // Only the chair opens a scale, and only about this conference's children.
    let by_priya = Client::new()
        .post(s.url("/scales"))
        .bearer_auth(s.token(0))
        .json(&json!({ "subject": { "kind": "all_children" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_priya.status(), 403);
    let stranger = uuid::Uuid::new_v4();
    let (status, message) = error_of(
        s.open(json!({ "subject": { "kind": "child", "child": stranger } }))
            .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (422, "that child is not part of this conference")
    );
    let (status, _) = error_of(
        s.open(json!({ "subject": { "kind": "danger", "statement": "  " } }))
            .await,
    )
    .await;
    assert_eq!(status, 422);

    // The chair's own words.
    let response = s
        .open(json!({
            "subject": { "kind": "danger", "statement": "Dad's drinking could lead to Jamie being hurt" },
            "wording": {
                "professionals": { "question": "How safe is Jamie from harm by Dad's drinking?", "zero": "Harm is certain", "ten": "Safe enough to close" },
                "family": { "question": "How safe is Jamie when Dad drinks?", "zero": "Not safe", "ten": "Safe" }
            }
        }))
        .await;
    assert_eq!(response.status(), 201);
    let scale: Value = response.json().await.unwrap();
    let id = scale["id"].as_str().unwrap().to_owned();
    assert_eq!(
        scale["about"],
        "Dad's drinking could lead to Jamie being hurt"
    );
    assert_eq!(
        s.scales_seen_by(1).await["scales"][0]["question"],
        "How safe is Jamie when Dad drinks?"
    );
    assert_eq!(
        s.scales_seen_by(0).await["scales"][0]["question"],
        "How safe is Jamie from harm by Dad's drinking?"
    );

    // One open scale at a time.
    let (status, _) = error_of(
        s.open(json!({ "subject": { "kind": "all_children" } }))
            .await,
    )
    .await;
    assert_eq!(status, 409);
    // Only the chair closes or reveals, and only in that order.
    let by_sam = Client::new()
        .post(s.url(&format!("/scales/{id}/close")))
        .bearer_auth(s.token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(by_sam.status(), 403);
    let (status, message) = error_of(s.chair_post(&id, "reveal").await).await;
    assert_eq!(
        (status, message.as_str()),
        (409, "close the scale before revealing the scores")
    );

    // Alex has no phone: the chair enters Alex's score, marked as such.
    let alex = s.people[3].0.clone();
    let entered: Value = s
        .chair
        .put(s.url(&format!("/scales/{id}/votes/{alex}")))
        .json(&json!({ "score": 2, "reason": "Said out loud in the room" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entered["entered_by_chair"], true);
    // The wall has no vote, even through the chair.
    let wall = s.people[2].0.clone();
    let (status, _) = error_of(
        s.chair
            .put(s.url(&format!("/scales/{id}/votes/{wall}")))
            .json(&json!({ "score": 2 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    // The chair scores too.
    assert_eq!(
        s.chair
            .put(s.url(&format!("/scales/{id}/vote")))
            .json(&json!({ "score": 5 }))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    assert_eq!(s.chair_post(&id, "close").await.status(), 200);
    let (status, message) = error_of(s.chair_post(&id, "close").await).await;
    assert_eq!(
        (status, message.as_str()),
        (409, "this scale is already closed")
    );
    let revealed: Value = s.chair_post(&id, "reveal").await.json().await.unwrap();
    let alex_score = revealed["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["participant"] == alex.as_str())
        .unwrap();
    assert_eq!(alex_score["entered_by_chair"], true);
    assert_eq!(alex_score["score"], 2);
    let (status, _) = error_of(s.chair_post(&id, "reveal").await).await;
    assert_eq!(status, 409);
    // A new scale can open now; it is number 2.
    let second = s
        .open(json!({ "subject": { "kind": "all_children" } }))
        .await;
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["number"], 2);
}

#[tokio::test]
async fn every_score_change_close_and_reveal_is_recorded_with_who_and_when() {
    let s = scene().await;
    let scale = s.open_all_children().await;
    s.vote(1, &scale, json!({ "score": 3 })).await;
    s.vote(
        1,
        &scale,
        json!({ "score": 5, "reason": "Changed my mind" }),
    )
    .await;
    let alex = s.people[3].0.clone();
    s.chair
        .put(s.url(&format!("/scales/{scale}/votes/{alex}")))
        .json(&json!({ "score": 1 }))
        .send()
        .await
        .unwrap();
    s.vote(1, &scale, json!({ "score": 12 })).await; // refused: not recorded
    s.chair_post(&scale, "close").await;
    s.chair_post(&scale, "reveal").await;

    let id: roundtable_shared::ConferenceId = s.conference.parse().unwrap();
    // The scale's events, leaving out the conference's creation and the like.
    let events: Vec<_> = s
        .app
        .rooms()
        .storage()
        .audit_events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("scale_") || e.action == "score_given")
        .collect();
    let summary: Vec<(&str, Option<i64>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.detail["score"].as_i64()))
        .collect();
    assert_eq!(
        summary,
        [
            ("scale_opened", None),
            ("score_given", Some(3)),
            ("score_given", Some(5)),
            ("score_given", Some(1)),
            ("scale_closed", None),
            ("scale_revealed", None),
        ]
    );
    let sam = &s.people[1].0;
    assert_eq!(events[1].actor.unwrap().to_string(), *sam);
    // The chair's entry names whom it was for.
    assert_eq!(events[3].detail["for"], alex.as_str());
    assert_ne!(events[3].actor.unwrap().to_string(), alex);
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn a_review_conference_shows_the_previous_scores_beside_the_new_ones() {
    let s = scene().await;
    let chair_view: Value = s
        .chair
        .get(s.url(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jamie = chair_view["children"][0]["id"].as_str().unwrap().to_owned();
    let first = s
        .open(json!({ "subject": { "kind": "child", "child": jamie } }))
        .await;
    let first: Value = first.json().await.unwrap();
    let first = first["id"].as_str().unwrap().to_owned();
    s.vote(1, &first, json!({ "score": 2, "reason": "Worried" }))
        .await;
    s.chair_post(&first, "close").await;
    s.chair_post(&first, "reveal").await;

    let review = s
        .chair
        .post(s.app.url("/api/conferences"))
        .json(&json!({
            "title": "Review child protection conference",
            "kind": "review",
            "scheduled_start": "2027-03-01T10:00:00+00:00",
            "children": [{ "name": "Jamie" }],
            "participants": [{ "name": "Sam Taylor", "role": "parent" }],
            "previous_conference": s.conference,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), 201);
    let review: Value = review.json().await.unwrap();
    let review_id = review["conference"]["id"].as_str().unwrap().to_owned();
    let token = review["participants"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let review_view: Value = s
        .chair
        .get(s.app.url(&format!("/api/conferences/{review_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jamie_now = review_view["children"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let opened: Value = s
        .chair
        .post(s.app.url(&format!("/api/conferences/{review_id}/scales")))
        .json(&json!({ "subject": { "kind": "child", "child": jamie_now } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        opened["previous"]["conference_title"],
        "Initial child protection conference"
    );
    assert_eq!(opened["previous"]["scores"][0]["score"], 2);

    let phone = s.app.connect(&review_id, &token).await;
    let entry = &read_scales(&phone.doc.transact())[0];
    let previous = entry
        .previous
        .as_ref()
        .expect("the previous scores are in the document");
    assert_eq!(previous.scores[0].reason.as_deref(), Some("Worried"));

    // Someone else's conference cannot be named as the previous one.
    let other = s
        .chair
        .post(s.app.url("/api/conferences"))
        .json(&json!({
            "title": "Review", "kind": "review",
            "scheduled_start": "2027-03-01T10:00:00+00:00",
            "children": [{ "name": "Jamie" }],
            "previous_conference": uuid::Uuid::new_v4(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
}

/// Reads server-sent events from `response` until one named `name` satisfies `done`.
pub(crate) async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if event == name {
                    let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    if done(&value) {
                        return value;
                    }
                }
            }
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the event arrives")
}

#[tokio::test]
async fn the_voting_page_stream_follows_the_scale() {
    let s = scene().await;
    let mut stream = Client::new()
        .get(s.url("/scales/live"))
        .bearer_auth(s.token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let first = next_event(&mut stream, &mut buffer, "scales", |_| true).await;
    assert_eq!(first["scales"], json!([]));

    let scale = s.open_all_children().await;
    let opened = next_event(&mut stream, &mut buffer, "scales", |v| {
        v["scales"][0]["status"] == "open"
    })
    .await;
    assert_eq!(opened["scales"][0]["id"], scale.as_str());
    s.vote(1, &scale, json!({ "score": 8 })).await;
    s.chair_post(&scale, "close").await;
    s.chair_post(&scale, "reveal").await;
    let revealed = next_event(&mut stream, &mut buffer, "scales", |v| {
        v["scales"][0]["status"] == "revealed"
    })
    .await;
    assert_eq!(revealed["scales"][0]["results"][0]["score"], 8);

    // Someone from another conference cannot listen.
    let outsider = Client::new()
        .get(s.url("/scales/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(outsider.status(), 401);
}
