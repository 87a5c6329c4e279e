//! A conference to type into, set up as a chair would: signed in through one server,
//! created through another (or the same), a sign-in holding on every server of one
//! database.

use serde_json::{Value, json};

use super::server::{CHAIR_EMAIL, CHAIR_PASSWORD};
use super::typist::Person;

/// Signs the chair in at `sign_in` (a server's address, `http://…`) and creates, at
/// `create`, a conference with `people` (`(letter, name, role)` each); returns its
/// id, the people as the typists know them, and the chair's session cookie.
pub async fn set_up(
    sign_in: &str,
    create: &str,
    people: &[(char, &str, &str)],
) -> (String, Vec<Person>, String) {
    let response = reqwest::Client::new()
        .post(format!("{sign_in}/api/session"))
        .json(&json!({ "email": CHAIR_EMAIL, "password": CHAIR_PASSWORD }))
        .send()
        .await
        .expect("signs in");
    assert_eq!(response.status(), 204);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let participants: Vec<Value> = people
        .iter()
        .map(|(_, name, role)| {
            let agency = (*role == "professional").then_some("Health visiting");
            json!({ "name": name, "role": role, "agency": agency })
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{create}/api/conferences"))
        .header("cookie", &cookie)
        .json(&json!({
            "title": "Initial child protection conference",
            "kind": "initial",
            "scheduled_start": "2026-12-01T10:00:00+00:00",
            "children": [{ "name": "Jamie", "date_of_birth": "2019-04-30" }],
            "participants": participants,
        }))
        .send()
        .await
        .expect("creates a conference");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a JSON answer");
    let conference = body["conference"]["id"].as_str().expect("an id").to_owned();
    let created = body["participants"].as_array().expect("participants");
    let people = people
        .iter()
        .zip(created)
        .map(|((letter, _, role), created)| Person {
            letter: *letter,
            participant: created["participant"]["id"]
                .as_str()
                .expect("an id")
                .to_owned(),
            token: created["token"].as_str().expect("a token").to_owned(),
            writes: *role != "parent",
            writes_shared: *role == "minute_taker",
            creates_shared: *letter == 'a',
        })
        .collect();
    (conference, people, cookie)
}
