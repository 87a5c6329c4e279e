//! Another site's page cannot use a visitor's session: its commands and its
//! WebSockets are refused, whatever credential the browser adds. A browser says where a
//! request comes from (`Origin`, and `Sec-Fetch-Site` in browsers that send it; pages
//! cannot set either); a client that is not a browser sends neither, and holds its
//! own credential.

use roundtable_shared::Role;
use serde_json::{Value, json};

use super::matrix;
use super::{Before, Credential, Mismatches, Scene, World};

const ATTACKER: &str = "https://attacker.example";

/// The headers of requests from other sites' pages, as browsers send them.
fn from_elsewhere(this_site: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        (
            "another site's Origin",
            vec![("origin", ATTACKER.to_owned())],
        ),
        (
            "a look-alike Origin",
            vec![("origin", format!("{this_site}.attacker.example"))],
        ),
        // This server's host and port, but another scheme: another origin.
        (
            "this host under https",
            vec![("origin", this_site.replacen("http://", "https://", 1))],
        ),
        // Sandboxed frames and some redirects.
        ("Origin: null", vec![("origin", "null".to_owned())]),
        (
            "another site, by Sec-Fetch-Site alone",
            vec![("sec-fetch-site", "cross-site".to_owned())],
        ),
        (
            "a sibling site, by Sec-Fetch-Site alone",
            vec![("sec-fetch-site", "same-site".to_owned())],
        ),
        (
            "another site, with Origin and Sec-Fetch-Site",
            vec![
                ("origin", ATTACKER.to_owned()),
                ("sec-fetch-site", "cross-site".to_owned()),
            ],
        ),
    ]
}

fn this_site(world: &World) -> String {
    format!("http://{}", world.app.addr)
}

/// What the conference and the chair's account hold: unchanged by a refused command.
async fn state(world: &World, scene: &Scene) -> (Value, Value, Value) {
    let get = |path: String| async move {
        let response = world
            .send(reqwest::Method::GET, &path, &scene.chair, None)
            .await;
        assert_eq!(response.status(), 200, "{path}");
        response.json::<Value>().await.unwrap()
    };
    let conferences = get("/api/conferences".into()).await;
    let conference = get(scene.path("")).await;
    let audit = get(scene.path("/audit")).await;
    (conferences, conference, audit["events"].clone())
}

#[tokio::test]
async fn a_command_from_another_sites_page_is_refused() {
    let world = World::new().await;
    let scene = world.scene(Before::OpenScale).await;
    let this_site = this_site(&world);
    let before = state(&world, &scene).await;
    let callers = [
        ("the chair's session", scene.chair.clone()),
        (
            "a professional's session",
            scene.person(Role::Professional).cookie(),
        ),
        ("no session", Credential::Nobody),
    ];
    let mut mismatches = Mismatches::default();
    for row in matrix::rows().iter().filter(|row| row.method.changes()) {
        for (elsewhere, headers) in from_elsewhere(&this_site) {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            for (caller, credential) in &callers {
                let (status, body) =
                    matrix::answer_with(&world, &scene, row, credential, &headers).await;
                mismatches.check(
                    format!("{:?} {} by {caller} from {elsewhere}", row.method, row.path),
                    "403",
                    &status.to_string(),
                    &body,
                );
            }
        }
    }
    println!(
        "access matrix: {} cross-site command cases checked",
        mismatches.checked
    );
    mismatches.assert_none("cross-site");
    assert_eq!(state(&world, &scene).await, before, "nothing was done");

    // This site's own pages send commands; so do clients that are not browsers, which
    // send neither header and hold their own credential.
    let new = json!({
        "title": "From here",
        "kind": "initial",
        "scheduled_start": super::HELD,
        "children": [{ "name": "Jamie" }],
    });
    for headers in [
        vec![
            ("origin", this_site.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![("origin", this_site.as_str())],
        vec![],
    ] {
        let mut request = scene
            .chair
            .apply(world.http.post(world.app.url("/api/conferences")));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.json(&new).send().await.unwrap();
        assert_eq!(response.status(), 201, "{headers:?}");
    }

    // Reading is not a command, and the answer carries no permission for the other
    // site's page to read it.
    let read = scene
        .chair
        .apply(world.http.get(world.app.url("/api/conferences")))
        .header("origin", ATTACKER)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert!(
        read.headers().get("access-control-allow-origin").is_none()
            && read
                .headers()
                .get("access-control-allow-credentials")
                .is_none()
    );
}

#[tokio::test]
async fn a_socket_opened_from_another_sites_page_is_refused_even_with_a_valid_session() {
    let world = World::new().await;
    let scene = world.scene(Before::Nothing).await;
    let this_site = this_site(&world);
    let professional = scene.person(Role::Professional);
    let callers = [
        ("the chair's session", scene.chair.clone()),
        ("a professional's session", professional.cookie()),
        ("a professional's link", professional.link()),
    ];
    let mut mismatches = Mismatches::default();
    for document in ["/sync", "/restricted/sync"] {
        let path = scene.path(document);
        for (caller, credential) in &callers {
            for (elsewhere, headers) in from_elsewhere(&this_site) {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let got = match world.open_socket(&path, credential, &headers).await {
                    Ok(_) => "opened".to_owned(),
                    Err(status) => status.to_string(),
                };
                mismatches.check(
                    format!("{document} by {caller} from {elsewhere}"),
                    "403",
                    &got,
                    "",
                );
            }
            // From this site's own page, and from a client that is not a browser.
            for headers in [
                vec![
                    ("origin", this_site.as_str()),
                    ("sec-fetch-site", "same-origin"),
                ],
                vec![],
            ] {
                let got = match world.open_socket(&path, credential, &headers).await {
                    Ok(_) => "opened".to_owned(),
                    Err(status) => status.to_string(),
                };
                mismatches.check(
                    format!("{document} by {caller} with {headers:?}"),
                    "opened",
                    &got,
                    "",
                );
            }
        }
    }
    println!(
        "access matrix: {} cross-site socket cases checked",
        mismatches.checked
    );
    mismatches.assert_none("cross-site socket");
}
