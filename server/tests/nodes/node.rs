//! Real `roundtable serve` processes, several on one PostgreSQL database, each on a
//! port of its own on 127.0.0.1.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::server::{binary, free_port};

pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// Everything it logged.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts a node named `name` on the database at `url`, and waits until it
    /// answers.
    pub async fn start(name: &str, url: &str) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let file = File::create(&log).expect("the log opens");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(binary())
            .args(["--database-url", url])
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--node-name", name])
            // Nothing is served from here: the tests only use the API.
            .arg("--client-dir")
            .arg(dir.path().join("no-client"))
            .env_remove("ROUNDTABLE_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log is shared"))
            .stderr(file)
            .spawn()
            .expect("roundtable serve runs");
        let mut node = Node {
            name: name.to_owned(),
            addr,
            child: Some(child),
            log,
            _dir: dir,
        };
        node.wait_until_up().await;
        node
    }

    async fn wait_until_up(&mut self) {
        let what = format!("node {}", self.name);
        let (log, health) = (self.log.clone(), self.url("/health"));
        super::server::wait_until_up(&mut self.child, &health, &what, || {
            super::server::tail(&log)
        })
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The WebSocket address of a conference's shared document.
    pub fn sync_url(&self, conference: &str) -> String {
        format!("ws://{}/api/conferences/{conference}/sync", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("the node is running").id()
    }

    /// Kills the node with SIGKILL, at whatever it is doing, and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        child.kill().expect("the node is killed");
        child.wait().expect("the node is reaped");
    }

    /// Sends the node a signal (`STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Everything the node has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        super::server::tail(&self.log)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A node left stopped must be let go on before it can be killed and reaped.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- node {}'s last log lines ---\n{}",
                self.name,
                self.log_tail()
            );
        }
    }
}
