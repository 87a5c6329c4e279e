//! The real `roundtable` binary as a child process, on one database and one port for
//! all its lives.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHAIR_EMAIL: &str = "chair@example.org";
pub const CHAIR_PASSWORD: &str = "correct horse battery staple";

/// How long the server may take to answer its health check after being started.
const START_DEADLINE: Duration = Duration::from_secs(20);

pub struct Server {
    data_dir: tempfile::TempDir,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Everything every life of the server wrote, one after the other.
    log: PathBuf,
    /// How many times it has been started.
    pub starts: usize,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_roundtable")
}

/// A port nobody listens on now. It is released before the server takes it, so
/// another program could take it first; the server then fails to start and says so.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds port 0");
    listener.local_addr().expect("has an address").port()
}

/// Adds the chair's account to the database the arguments name (`--data-dir …` or
/// `--database-url …`).
pub fn add_chair(database: &[std::ffi::OsString]) {
    let mut add = Command::new(binary())
        .args(database)
        .args([
            "chair",
            "add",
            "--email",
            CHAIR_EMAIL,
            "--name",
            "Sam Chair",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("roundtable runs");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(CHAIR_PASSWORD.as_bytes())
        .expect("the password is written");
    let output = add.wait_with_output().expect("chair add ends");
    assert!(
        output.status.success(),
        "chair add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Server {
    /// A fresh data directory holding one chair account, and a port to keep.
    pub fn new() -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        add_chair(&["--data-dir".into(), data_dir.path().into()]);
        let log = data_dir.path().join("server.log");
        Server {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            log,
            data_dir,
            child: None,
            starts: 0,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.path().join("roundtable.sqlite3")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts the server and waits until it answers on its port.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log opens");
        let child = Command::new(binary())
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            // Nothing is served from here: the tests only use the API.
            .arg("--client-dir")
            .arg(self.data_dir.path().join("no-client"))
            .env_remove("ROUNDTABLE_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log is shared"))
            .stderr(log)
            .spawn()
            .expect("roundtable serve runs");
        self.child = Some(child);
        self.starts += 1;
        let (log, health) = (self.log.clone(), self.url("/health"));
        wait_until_up(&mut self.child, &health, "the server", || tail(&log)).await;
    }

    /// Kills the server with SIGKILL, at whatever it is doing, and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        // `Child::kill` sends SIGKILL on Unix: no handler runs, nothing is flushed.
        child.kill().expect("the server is killed");
        child.wait().expect("the server is reaped");
    }

    /// The last lines the server logged, for a failure message.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

/// The last lines of a log, for a failure message.
pub fn tail(log: &std::path::Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until a server just started (`child`) answers its health check at
/// `health`; fails, with what it logged (`log_tail`), if it exits or takes too long.
pub async fn wait_until_up(
    child: &mut Option<Child>,
    health: &str,
    what: &str,
    log_tail: impl Fn() -> String,
) {
    let http = reqwest::Client::new();
    let until = Instant::now() + START_DEADLINE;
    loop {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            *child = None;
            panic!("{what} exited while starting ({status}):\n{}", log_tail());
        }
        let answer = http
            .get(health)
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what} did not answer within {START_DEADLINE:?}:\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- the server's last log lines ---\n{}", self.log_tail());
        }
    }
}
