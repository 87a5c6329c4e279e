//! The front door: what anyone who can reach the server may try without an account.
//! Signing in, room codes and the lobby are limited by address, by account and in
//! all; the limits are set small here, and addresses other than the loopback's come
//! through a trusted proxy's `X-Forwarded-For`, as behind a load balancer.

use std::time::{Duration, Instant};

use roundtable_server::door::Settings;
use roundtable_server::door::limiter::BucketRule;
use serde_json::{Value, json};

use crate::helpers::{CHAIR_EMAIL, CHAIR_PASSWORD, DEADLINE, TestApp, error_of};

/// Limits small enough to reach in a test, with the loopback a trusted proxy.
fn small() -> Settings {
    Settings {
        trust_forwarded_for: vec!["127.0.0.1".parse().unwrap()],
        ..Settings::default()
    }
}

/// A sign-in from `address` (through the trusted proxy), with `client`'s cookies.
async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/session"))
        .header("x-forwarded-for", address)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Signs in with a wrong password from `address` until the answer is not 401 (at
/// most `limit` times); returns how many were 401 and the answer that was not.
async fn wrong_until_refused(
    app: &TestApp,
    client: &reqwest::Client,
    address: &str,
    email: &str,
    limit: usize,
) -> (usize, reqwest::Response) {
    for wrong in 0..limit {
        let response = sign_in(app, client, address, email, "not the password").await;
        if response.status() != 401 {
            return (wrong, response);
        }
    }
    panic!("{limit} wrong passwords in a row were all answered 401");
}

#[tokio::test]
async fn wrong_passwords_for_an_account_earn_growing_waits_and_its_owner_is_told() {
    let app = TestApp::spawn_with_door(Settings {
        free_failures_per_account: 3,
        ..small()
    })
    .await;
    // The chair's own laptop has signed in before.
    let laptop = app.browser();
    assert_eq!(
        sign_in(&app, &laptop, "192.0.2.10", CHAIR_EMAIL, CHAIR_PASSWORD)
            .await
            .status(),
        204
    );
    let stranger = app.browser();
    let (wrong, refused) =
        wrong_until_refused(&app, &stranger, "198.51.100.7", CHAIR_EMAIL, 50).await;
    assert_eq!(wrong, 3, "three wrong passwords are free");
    assert_eq!(refused.status(), 429);
    assert_eq!(retry_after(&refused), Some(1));
    let (_, sentence) = error_of(refused).await;
    assert_eq!(
        sentence,
        "too many wrong passwords: please wait a second and try again"
    );
    // Even the right password is refused while the account waits, from anywhere but
    // the owner's browser: nothing is checked.
    let elsewhere = sign_in(
        &app,
        &app.browser(),
        "203.0.113.5",
        CHAIR_EMAIL,
        CHAIR_PASSWORD,
    )
    .await;
    assert_eq!(elsewhere.status(), 429);

    // Once the wait is over, one more wrong password doubles it.
    let until = Instant::now() + DEADLINE;
    loop {
        let response = sign_in(&app, &stranger, "198.51.100.7", CHAIR_EMAIL, "still not it").await;
        if response.status() == 401 {
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(Instant::now() < until, "the wait did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = sign_in(&app, &stranger, "198.51.100.7", CHAIR_EMAIL, "again").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(retry_after(&refused), Some(2));

    // The owner's laptop is counted apart, and gets in.
    assert_eq!(
        sign_in(&app, &laptop, "192.0.2.10", CHAIR_EMAIL, CHAIR_PASSWORD)
            .await
            .status(),
        204
    );
    let events = app.get_json(&laptop, "/api/account/events").await;
    let actions: Vec<(&str, Value)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["detail"].clone()))
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(actions[0].0, "signed_in");
    assert_eq!(actions[0].1["known_browser"], true);
    assert_eq!(actions[1].0, "wrong_passwords");
    assert_eq!(actions[1].1["in_a_row"], 3);
    assert_eq!(actions[1].1["last_from"], "198.51.100.7");
    assert_eq!(actions[2].0, "signed_in");
}

#[tokio::test]
async fn wrong_passwords_from_one_address_make_it_wait_whatever_the_account_and_no_one_else() {
    let app = TestApp::spawn_with_door(Settings {
        free_failures_per_address: 4,
        ..small()
    })
    .await;
    let attacker = app.browser();
    for n in 0..4 {
        let email = format!("someone{n}@example.org");
        let response = sign_in(&app, &attacker, "198.51.100.7", &email, "guess").await;
        assert_eq!(response.status(), 401);
    }
    let refused = sign_in(
        &app,
        &attacker,
        "198.51.100.7",
        "other@example.org",
        "guess",
    )
    .await;
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused).is_some());
    // Another address signs in as ever.
    let chair = app.browser();
    assert_eq!(
        sign_in(&app, &chair, "192.0.2.10", CHAIR_EMAIL, CHAIR_PASSWORD)
            .await
            .status(),
        204
    );
}

#[tokio::test]
async fn without_a_trusted_proxy_x_forwarded_for_changes_nothing() {
    let app = TestApp::spawn_with_door(Settings {
        free_failures_per_address: 4,
        free_failures_per_account: 1000,
        ..Settings::default()
    })
    .await;
    let attacker = app.browser();
    let mut answers = Vec::new();
    for n in 0..5 {
        // A new address each time, written by the client itself.
        let response = sign_in(
            &app,
            &attacker,
            &format!("198.51.100.{n}"),
            "a@example.org",
            "guess",
        )
        .await;
        answers.push(response.status().as_u16());
    }
    assert_eq!(answers, [401, 401, 401, 401, 429]);
}

#[tokio::test]
async fn sign_ins_past_the_password_checks_that_may_wait_are_refused_at_once() {
    let app = std::sync::Arc::new(
        TestApp::spawn_with_door(Settings {
            password_checks_at_once: 1,
            password_checks_waiting: 2,
            ..small()
        })
        .await,
    );
    // 60 at once, each from an address and for an account of its own, so that only
    // the bound on password checks can refuse them.
    let attempts = (0..60).map(|n| {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move {
            let client = app.browser();
            let address = format!("198.51.{}.{}", n / 200, n % 200 + 1);
            let email = format!("guess{n}@example.org");
            let response = sign_in(&app, &client, &address, &email, "guess").await;
            let seconds = retry_after(&response);
            (response.status().as_u16(), seconds)
        })
    });
    let answers: Vec<(u16, Option<u64>)> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|a| a.unwrap())
        .collect();
    let busy = answers.iter().filter(|(status, _)| *status == 503).count();
    let wrong = answers.iter().filter(|(status, _)| *status == 401).count();
    assert_eq!(busy + wrong, answers.len(), "{answers:?}");
    assert!(busy > 0, "every one of 60 was checked: {answers:?}");
    assert!(wrong >= 3, "as many as may wait were checked: {answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, seconds)| *status != 503 || seconds.is_some()),
        "each 503 says when to try again"
    );
    // And the chair signs in afterwards.
    assert_eq!(
        sign_in(
            &app,
            &app.browser(),
            "192.0.2.10",
            CHAIR_EMAIL,
            CHAIR_PASSWORD
        )
        .await
        .status(),
        204
    );
}

// --- room codes and the lobby -------------------------------------------------------

/// A conference with a parent invited; its id and room code.
async fn conference(app: &TestApp) -> (String, String) {
    let chair = app.signed_in_chair().await;
    let (id, _) = app.conference(&chair, &[("Jo Taylor", "parent")]).await;
    let code = app.room_code(&chair, &id).await;
    (id, code)
}

/// Asks to join with `code` from `address`.
async fn enter(
    app: &TestApp,
    address: &str,
    code: &str,
    name: &str,
    conference: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "room_code": code, "name": name });
    if let Some(id) = conference {
        body["conference"] = json!(id);
    }
    app.browser()
        .post(app.url("/api/lobby"))
        .header("x-forwarded-for", address)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn room_codes_are_twelve_letters_and_digits_and_may_be_typed_in_groups() {
    let app = TestApp::spawn_with_door(small()).await;
    let (_, code) = conference(&app).await;
    assert_eq!(code.len(), 12, "{code}");
    assert!(
        code.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    let typed = format!("{}-{} {}", &code[..4], &code[4..8], &code[8..]).to_lowercase();
    let response = enter(&app, "192.0.2.1", &typed, "Pat Neighbour", None).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn room_code_guesses_are_limited_by_address_and_in_all_and_the_qr_code_still_gets_in() {
    let app = TestApp::spawn_with_door(Settings {
        code_guesses_per_address: BucketRule {
            burst: 5,
            per_minute: 1,
        },
        code_guesses: BucketRule {
            burst: 12,
            per_minute: 1,
        },
        ..small()
    })
    .await;
    let (id, code) = conference(&app).await;
    let mut answers = Vec::new();
    for n in 0..6 {
        let guess = format!("GUESS{n:07}");
        answers.push(
            enter(&app, "198.51.100.7", &guess, "Stranger", None)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(answers, [404, 404, 404, 404, 404, 429]);
    // Past its allowance, the address is refused whatever it sends, the right code too.
    let refused = enter(&app, "198.51.100.7", &code, "Stranger", None).await;
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused).is_some());
    let (_, sentence) = error_of(refused).await;
    assert!(
        sentence.starts_with("too many room codes have been tried"),
        "{sentence}"
    );
    // Another address is not held up.
    assert_eq!(
        enter(&app, "192.0.2.1", &code, "Sam Neighbour", None)
            .await
            .status(),
        201
    );
    // Many addresses together spend the server's allowance (12, of which 6 are gone)…
    for n in 0..6 {
        let address = format!("203.0.113.{n}");
        assert_eq!(
            enter(&app, &address, "WRONGWRONG12", "Stranger", None)
                .await
                .status(),
            404
        );
    }
    assert_eq!(
        enter(&app, "192.0.2.2", &code, "Alex Neighbour", None)
            .await
            .status(),
        429
    );
    // …but the QR code's address names its conference: that is no guess at every
    // conference at once, and it gets in.
    assert_eq!(
        enter(&app, "192.0.2.2", &code, "Alex Neighbour", Some(&id))
            .await
            .status(),
        201
    );
    // A wrong code for a named conference is still not let in.
    assert_eq!(
        enter(&app, "192.0.2.3", "WRONGWRONG12", "Stranger", Some(&id))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn one_address_cannot_fill_a_lobby_and_the_chair_sees_who_came_how() {
    let app = TestApp::spawn_with_door(small()).await;
    let chair = app.signed_in_chair().await;
    let (id, _) = app.conference(&chair, &[("Jo Taylor", "parent")]).await;
    let code = &app.room_code(&chair, &id).await;
    // Fifty strangers from one address, one of them under the parent's name.
    let mut answers = Vec::new();
    for n in 0..50 {
        let name = if n == 0 {
            "jo  TAYLOR".to_owned()
        } else {
            format!("Stranger {n}")
        };
        let response = enter(&app, "198.51.100.7", code, &name, None).await;
        answers.push(response.status().as_u16());
    }
    let let_in = answers.iter().filter(|s| **s == 201).count();
    assert_eq!(let_in, 15, "one address takes its share: {answers:?}");
    // Refused a place (503), and past its allowance of guesses too (429).
    assert_eq!(answers[15], 503, "{answers:?}");
    assert!(
        answers[15..].iter().all(|s| *s == 503 || *s == 429),
        "{answers:?}"
    );
    // The family member, from the meeting room's network, gets in.
    let family = enter(&app, "192.0.2.1", code, "Nan Taylor", None).await;
    assert_eq!(family.status(), 201);

    let lobby = app
        .get_json(&chair, &format!("/api/conferences/{id}/lobby"))
        .await;
    let lobby = lobby.as_array().unwrap();
    assert_eq!(lobby.len(), 16);
    assert!(lobby.iter().all(|p| p["came_by"] == "room_code"));
    let posing = lobby.iter().find(|p| p["name"] == "jo  TAYLOR").unwrap();
    assert_eq!(posing["same_name_as"]["name"], "Jo Taylor");
    assert_eq!(posing["same_name_as"]["role"], "parent");
    assert_eq!(posing["from_same_address"], 15);
    let nan = lobby.iter().find(|p| p["name"] == "Nan Taylor").unwrap();
    assert_eq!(nan["from_same_address"], 1);
    assert_eq!(nan["same_name_as"], Value::Null);
}

// --- links and names ----------------------------------------------------------------

#[tokio::test]
async fn join_links_name_the_address_the_server_listens_on_never_the_host_header() {
    let app = TestApp::spawn().await;
    let chair = app.signed_in_chair().await;
    let response = chair
        .post(app.url("/api/conferences"))
        .header("host", "attacker.example")
        .json(&json!({
            "title": "Initial child protection conference",
            "kind": "initial",
            "scheduled_start": "2026-12-01T10:00:00+00:00",
            "children": [{ "name": "Jamie" }],
            "participants": [{ "name": "Jo Taylor", "role": "parent" }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let link = body["participants"][0]["join_link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("http://{}/join#", app.addr)),
        "{link}"
    );
}

#[tokio::test]
async fn a_server_listening_on_every_address_needs_a_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = roundtable_server::Config {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        database_url: None,
        client_dir: dir.path().to_owned(),
        public_url: None,
        node_name: None,
        limits: Default::default(),
        door: Default::default(),
    };
    match roundtable_server::start(config).await {
        Err(e) => assert!(e.to_string().contains("needs --public-url"), "{e}"),
        Ok(_) => panic!("started without knowing what to put in join links"),
    }
}

#[tokio::test]
async fn names_with_control_or_direction_characters_are_refused_and_others_normalised() {
    let app = TestApp::spawn_with_door(small()).await;
    let (_, code) = conference(&app).await;
    let chair = app.signed_in_chair().await;
    let (id, _) = app.conference(&chair, &[]).await;
    for bad in [
        "Jo\u{0}Taylor",
        "Jo\u{1b}[31mTaylor",
        "Jo\tTaylor",
        "Jo\u{202E}rolyaT",
        "Jo\u{2067}Taylor\u{2069}",
        "Jo\u{200F}Taylor",
        "Jo\u{2028}Taylor",
    ] {
        let invited = chair
            .post(app.url(&format!("/api/conferences/{id}/participants")))
            .json(&json!({ "name": bad, "role": "parent" }))
            .send()
            .await
            .unwrap();
        let (status, sentence) = error_of(invited).await;
        assert_eq!(status, 422, "{bad:?}");
        assert!(sentence.starts_with("name must not hold"), "{sentence}");
        let entered = enter(&app, "192.0.2.1", &code, bad, None).await;
        assert_eq!(entered.status(), 422, "{bad:?}");
    }
    // A name written with a combining mark is kept in its composed form (NFC), so
    // that it compares equal to the same name typed on another keyboard.
    let invited: Value = chair
        .post(app.url(&format!("/api/conferences/{id}/participants")))
        .json(&json!({ "name": "Zoe\u{0308} Mu\u{0308}ller", "role": "parent" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(invited["participant"]["name"], "Zo\u{eb} M\u{fc}ller");
    // Names in other scripts, right-to-left ones too, are names.
    let arabic = enter(
        &app,
        "192.0.2.1",
        &code,
        "\u{0644}\u{064a}\u{0644}\u{0649}",
        None,
    )
    .await;
    assert_eq!(arabic.status(), 201);
}

#[tokio::test]
async fn behind_a_tls_proxy_only_the_public_urls_origin_is_this_site() {
    let app = TestApp::spawn_behind("https://roundtable.example.org").await;
    let sign_in = |origin: &'static str| {
        app.browser()
            .post(app.url("/api/session"))
            .header("origin", origin)
            .json(&json!({ "email": CHAIR_EMAIL, "password": CHAIR_PASSWORD }))
            .send()
    };
    assert_eq!(
        sign_in("https://roundtable.example.org")
            .await
            .unwrap()
            .status(),
        204
    );
    for other in [
        "http://roundtable.example.org",
        "https://roundtable.example.org:8443",
        "https://roundtable.example.org.attacker.example",
    ] {
        assert_eq!(sign_in(other).await.unwrap().status(), 403, "{other}");
    }
}

// --- the log -------------------------------------------------------------------------

/// What the server logs, kept: the test's runtime runs the whole server on its own
/// thread, where the subscriber is set.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn a_flood_of_refusals_writes_a_few_lines_to_the_log_not_one_each() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn_limited(
        roundtable_server::sync::Limits {
            connections_per_address: 4,
            ..Default::default()
        },
        Settings {
            // The test asks for the summary itself, at the end.
            log_period: Duration::from_secs(3600),
            ..Settings::default()
        },
    )
    .await;
    // One address holds its four connections and knocks 200 times more.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let _ = stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 429"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    drop(held);
    // And 100 wrong passwords for the chair's account: the account's five free
    // ones are checked, the other 95 refused without.
    let client = app.browser();
    for _ in 0..100 {
        let response = client
            .post(app.url("/api/session"))
            .json(&json!({ "email": CHAIR_EMAIL, "password": "a guess" }))
            .send()
            .await
            .unwrap();
        assert!(matches!(response.status().as_u16(), 401 | 429));
    }
    let refusals = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("refused"))
            .cloned()
            .collect::<Vec<_>>()
    };
    // One line for each kind as it first happens…
    assert_eq!(refusals(&log.lines()).len(), 3, "{:#?}", log.lines());
    // …and, at the end of the period (here: now), one summary of each.
    app.door().tally.summarise_now();
    let lines = refusals(&log.lines());
    assert_eq!(lines.len(), 6, "{lines:#?}");
    let summary = |words: &str| {
        lines
            .iter()
            .find(|l| l.contains(words) && l.contains("summary"))
            .unwrap_or_else(|| panic!("no summary of {words}: {lines:#?}"))
            .clone()
    };
    assert!(summary("too many from one address").contains("refused=200"));
    assert!(
        summary("wrong email or password").contains("refused=5 addresses=1"),
        "{lines:#?}"
    );
    assert!(summary("too soon after wrong passwords").contains("refused=95"));
}
