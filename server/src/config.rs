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
    /// The address people reach Roundtable at, used in join links and to tell this
    /// site's pages from others'. When absent, `http://` and the address the server
    /// listens on (never a request's `Host`).
    pub public_url: Option<String>,
    /// This node's name among several sharing a PostgreSQL database (it names the
    /// documents' leases it holds); one of its own when `None`.
    pub node_name: Option<String>,
    pub limits: Limits,
    /// The front door's limits: signing in, room codes, the lobby.
    pub door: crate::door::Settings,
}

impl Config {
    /// Cookies are marked Secure when Roundtable is served over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// Where people reach the server, without a trailing `/`: the public URL, or
    /// `http://` and the address it listens on.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// This site's origin (scheme, host and port), as a browser's `Origin` header
    /// names it, when it is known from the configuration.
    pub fn origin(&self) -> Option<Origin> {
        self.public_url.as_deref().and_then(Origin::parse)
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

/// A web origin: scheme, host and port (the port written out even when it is the
/// scheme's default), compared as browsers compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port][/...]`, as an `Origin` header or a URL has it.
    pub fn parse(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.split(['/', '?', '#']).next()?;
        Origin::of_host(&scheme, authority)
    }

    /// The origin of `host` (a `Host` header: `host[:port]`) under `scheme`.
    pub fn of_host(scheme: &str, host: &str) -> Option<Origin> {
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        if host.is_empty() || host.contains('@') {
            return None;
        }
        let (name, port) = match host.strip_prefix('[') {
            // An IPv6 address: `[::1]:8080`.
            Some(v6) => {
                let (address, after) = v6.split_once(']')?;
                let port = match after {
                    "" => None,
                    after => Some(after.strip_prefix(':')?),
                };
                (format!("[{address}]"), port)
            }
            None => match host.split_once(':') {
                Some((name, port)) => (name.to_owned(), Some(port)),
                None => (host.to_owned(), None),
            },
        };
        let port = match port {
            None => default_port,
            Some(port) => port.parse().ok()?,
        };
        Some(Origin {
            scheme: scheme.to_owned(),
            host: name.to_ascii_lowercase(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let o = |s| Origin::parse(s).unwrap();
        assert_eq!(o("https://Example.org"), o("https://example.org:443/join"));
        assert_ne!(o("https://example.org"), o("http://example.org"));
        assert_ne!(o("http://example.org:8080"), o("http://example.org"));
        assert_eq!(
            o("http://[::1]:8080"),
            Origin::of_host("http", "[::1]:8080").unwrap()
        );
        assert_eq!(Origin::parse("null"), None);
        assert_eq!(Origin::parse("ftp://example.org"), None);
        assert_eq!(Origin::of_host("http", "a:b"), None);
    }
}
