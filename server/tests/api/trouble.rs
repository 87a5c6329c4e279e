//! Storage trouble: a database another program has locked, and a full disk. The
//! server refuses what it cannot store with a clear reason, confirms nothing it did
//! not store, and carries on by itself once the trouble passes; the refused change
//! is still on the sender's device and arrives when it connects again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use roundtable_shared::protocol;
use serde_json::json;
use yrs::sync::Message;

use crate::database::{Engine, engine};
use crate::helpers::{CHAIR_EMAIL, CHAIR_PASSWORD, SyncClient, TestApp, error_of};
use crate::sync::{add_item, has_item};

/// The sentence a command gets while the database cannot take writes.
const TRY_AGAIN: &str =
    "the server could not save this just now, so nothing was changed. Please try again in a moment";

/// Asks the server whether everything sent so far is saved.
async fn ask_saved(client: &mut SyncClient, number: u32) {
    client
        .send(Message::Custom(
            protocol::SAVED,
            protocol::encode_saved(number),
        ))
        .await;
}

/// What a sender notices when its change could not be stored: the reason, then the
/// connection ends (so nothing sent after it can be taken as saved), and the question
/// "is it saved?" is never answered yes.
async fn refused_as_not_saved(client: &mut SyncClient) {
    let close = client.wait_closed().await.expect("a close frame");
    assert_eq!(client.refusals, [protocol::NOT_SAVED]);
    assert_eq!(u16::from(close.code), 1013, "{close:?}");
    assert!(client.saved.is_empty(), "{:?}", client.saved);
}

async fn change_phase(
    app: &TestApp,
    chair: &reqwest::Client,
    conf: &str,
    phase: &str,
) -> (u16, String) {
    let response = chair
        .post(app.url(&format!("/api/conferences/{conf}/phase")))
        .json(&json!({ "phase": phase }))
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get("retry-after").cloned();
    let answer = error_of(response).await;
    if answer.0 == 503 {
        assert_eq!(retry_after.as_ref().map(|v| v.to_str().unwrap()), Some("5"));
    }
    answer
}

async fn phase_of(app: &TestApp, chair: &reqwest::Client, conf: &str) -> String {
    let body: serde_json::Value = chair
        .get(app.url(&format!("/api/conferences/{conf}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["phase"].as_str().unwrap_or_default().to_owned()
}

/// A conference with a nurse typing and a parent following, and what they notice
/// when storage is in trouble and when it is not any more.
struct Meeting {
    chair: reqwest::Client,
    conf: String,
    nurse_id: String,
    nurse_token: String,
    nurse: Option<SyncClient>,
    parent: SyncClient,
    parent_token: String,
    phase_before: String,
}

impl Meeting {
    async fn start(app: &TestApp) -> Meeting {
        let chair = app.signed_in_chair().await;
        let (conf, people) = app
            .conference(
                &chair,
                &[("Pat Nurse", "professional"), ("Jo Parent", "parent")],
            )
            .await;
        let (nurse_id, nurse_token) = people[0].clone();
        let mut nurse = app.connect(&conf, &nurse_token).await;
        let mut parent = app.connect(&conf, &people[1].1).await;
        add_item(&mut nurse, "before", &nurse_id, "Said before").await;
        parent.wait_until(has_item("before")).await;
        let phase_before = phase_of(app, &chair, &conf).await;
        Meeting {
            chair,
            conf,
            nurse_id,
            nurse_token,
            nurse: Some(nurse),
            parent,
            parent_token: people[1].1.clone(),
            phase_before,
        }
    }

    /// The nurse's next item and the chair's next command are refused clearly, and
    /// the parent sees nothing of either.
    async fn is_refused(&mut self, app: &TestApp) {
        let nurse = self.nurse.as_mut().unwrap();
        add_item(nurse, "during", &self.nurse_id, "Said in trouble").await;
        ask_saved(nurse, 1).await;
        refused_as_not_saved(nurse).await;
        let (status, sentence) = change_phase(app, &self.chair, &self.conf, "scaling").await;
        assert_eq!((status, sentence.as_str()), (503, TRY_AGAIN));
        self.parent.settle(Duration::from_millis(200)).await;
        assert!(
            !has_item("during")(&self.parent),
            "nobody sees what was not stored"
        );
        assert_eq!(
            phase_of(app, &self.chair, &self.conf).await,
            self.phase_before
        );
    }

    /// Nobody restarts anything: the nurse connects again with what her device
    /// kept, and it is stored, confirmed and seen; the chair's command goes through.
    async fn recovers(mut self, app: &TestApp) {
        let nurse = self.nurse.take().unwrap();
        let mut nurse = app.reconnect(nurse, &self.conf, &self.nurse_token).await;
        ask_saved(&mut nurse, 2).await;
        nurse.wait_until(|c| c.saved.contains(&2)).await;
        self.parent.wait_until(has_item("during")).await;
        let (status, _) = change_phase(app, &self.chair, &self.conf, "scaling").await;
        assert_eq!(status, 200);
        let fresh = app.connect(&self.conf, &self.parent_token).await;
        let ids: Vec<String> = fresh.board().into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["before", "during"]);
    }
}

#[tokio::test]
async fn a_database_locked_by_another_program_refuses_edits_clearly_and_recovers() {
    let app = TestApp::spawn().await;
    let mut meeting = Meeting::start(&app).await;

    // Another program (a backup tool, say) holds the write lock.
    let mut other = app.beside().await;
    other.hold_writes().await;
    meeting.is_refused(&app).await;

    other.release().await;
    other.close().await;
    meeting.recovers(&app).await;
}

/// A small file system of its own, so that it can really fill up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test fills a small tmpfs of its own, and needs to be able to mount one (as root)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes to `name` until the disk is full.
    fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.path().join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "full, not {e}");
                    break;
                }
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_edits_and_commands_clearly_and_recovers_when_space_is_freed() {
    if engine() == Engine::Postgres {
        // PostgreSQL's files are the database server's, on its own disk, which this
        // test cannot fill: it runs on SQLite, whose file is in the data directory.
        eprintln!("not run on PostgreSQL: its disk is the database server's");
        return;
    }
    let disk = SmallDisk::mount("16m");
    let data = tempfile::Builder::new().tempdir_in(disk.path()).unwrap();
    let app = TestApp::spawn_in(data, Default::default()).await;
    let mut meeting = Meeting::start(&app).await;

    let filler = disk.fill("filler");
    meeting.is_refused(&app).await;
    // Signing in needs a new session stored: refused the same way, not with a 500.
    let sign_in = app
        .browser()
        .post(app.url("/api/session"))
        .json(&json!({ "email": CHAIR_EMAIL, "password": CHAIR_PASSWORD }))
        .send()
        .await
        .unwrap();
    let (status, sentence) = error_of(sign_in).await;
    assert_eq!((status, sentence.as_str()), (503, TRY_AGAIN));

    std::fs::remove_file(filler).unwrap();
    meeting.recovers(&app).await;
}
