//! How the server is configured.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::sync::Limits;

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database lives.
    pub data_dir: PathBuf,
    /// The built browser client (index.html and its assets).
    pub client_dir: PathBuf,
    /// The address people reach Roundtable at, used in join links. When absent, the
    /// request's Host is used.
    pub public_url: Option<String>,
    pub limits: Limits,
}

impl Config {
    /// Cookies are marked Secure when Roundtable is served over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("roundtable.sqlite3")
    }
}
