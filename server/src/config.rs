//! How the server is configured.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::storage::Location;
use crate::sync::Limits;

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database lives, when no `database_url` is given.
    pub data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in, instead of SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The built browser client (index.html and its assets).
    pub client_dir: PathBuf,
    /// The address people reach Roundtable at, used in join links. When absent, the
    /// request's Host is used.
    pub public_url: Option<String>,
    /// This node's name among several sharing a PostgreSQL database (it names the
    /// documents' leases it holds); one of its own when `None`.
    pub node_name: Option<String>,
    pub limits: Limits,
}

impl Config {
    /// Cookies are marked Secure when Roundtable is served over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// Where the database is.
    pub fn database(&self) -> Result<Location, BadDatabaseUrl> {
        database(&self.data_dir, self.database_url.as_deref())
    }
}

/// The database a `--database-url` names or, without one, the SQLite database in
/// `data_dir`.
pub fn database(data_dir: &Path, url: Option<&str>) -> Result<Location, BadDatabaseUrl> {
    match url {
        None => Ok(Location::Sqlite(sqlite_path(data_dir))),
        Some(url) => Location::from_url(url).ok_or(BadDatabaseUrl),
    }
}

/// Where the SQLite database is kept in a data directory.
pub fn sqlite_path(data_dir: &Path) -> PathBuf {
    data_dir.join("roundtable.sqlite3")
}

/// A database URL that is not PostgreSQL's. (The URL itself is not repeated: it may
/// hold a password.)
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the database URL must start with postgres:// (without one, Roundtable keeps a SQLite database in the data directory)"
)]
pub struct BadDatabaseUrl;
