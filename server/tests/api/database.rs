//! The database a test's server keeps everything in, on the engine the suite runs on,
//! and a way in beside the server, as another program would have.
//!
//! `ROUNDTABLE_TEST_ENGINE` chooses the engine: `sqlite` (the default; a fresh file
//! in the test's temporary directory) or `postgres` (a fresh database
//! `rt_<random>` on the cluster at `ROUNDTABLE_TEST_DATABASE_URL`, dropped when the
//! test ends). `scripts/test.sh` runs the suite on each.

use std::ffi::OsString;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use roundtable_server::storage::nodes::Nodes;
use roundtable_server::storage::{Fence, Lease, Storage};
use roundtable_shared::ConferenceId;
use roundtable_shared::doc::DocumentKind;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Executor};

/// The engine the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub fn engine() -> Engine {
    match std::env::var("ROUNDTABLE_TEST_ENGINE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Engine::Sqlite,
        Ok("postgres") => Engine::Postgres,
        Ok(other) => panic!("ROUNDTABLE_TEST_ENGINE is sqlite or postgres, not {other:?}"),
    }
}

/// Whether a PostgreSQL cluster is there to test on (`scripts/test.sh` always starts
/// one). Used by `tests/storage.rs`, which shares this file.
#[allow(dead_code)]
pub fn postgres_available() -> bool {
    std::env::var_os("ROUNDTABLE_TEST_DATABASE_URL").is_some()
}

/// The PostgreSQL cluster's maintenance database, where each test creates its own.
fn cluster_url() -> String {
    std::env::var("ROUNDTABLE_TEST_DATABASE_URL").expect(
        "ROUNDTABLE_TEST_ENGINE=postgres needs ROUNDTABLE_TEST_DATABASE_URL, a PostgreSQL \
         cluster's URL (scripts/postgres.sh starts one)",
    )
}

/// Where one test's server keeps its database.
pub enum TestDatabase {
    /// `roundtable.sqlite3` in the server's data directory.
    Sqlite,
    /// A database of the test's own on the cluster, dropped with this.
    Postgres { name: String, url: String },
}

impl TestDatabase {
    /// A fresh, empty database on the suite's engine.
    pub async fn create() -> TestDatabase {
        Self::create_on(engine()).await
    }

    /// A fresh, empty database on `engine`.
    pub async fn create_on(engine: Engine) -> TestDatabase {
        match engine {
            Engine::Sqlite => TestDatabase::Sqlite,
            Engine::Postgres => {
                let name = format!("rt_{}", uuid::Uuid::new_v4().simple());
                let mut cluster = PgConnection::connect(&cluster_url())
                    .await
                    .expect("the test cluster answers");
                cluster
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("a database for the test");
                let _ = cluster.close().await;
                let url = PgConnectOptions::from_str(&cluster_url())
                    .expect("a PostgreSQL URL")
                    .database(&name)
                    .to_url_lossy()
                    .to_string();
                TestDatabase::Postgres { name, url }
            }
        }
    }

    /// The server's `--database-url`: none for SQLite.
    pub fn url(&self) -> Option<String> {
        match self {
            TestDatabase::Sqlite => None,
            TestDatabase::Postgres { url, .. } => Some(url.clone()),
        }
    }

    /// The command line's arguments that name this database.
    pub fn arguments(&self, data_dir: &Path) -> Vec<OsString> {
        match self {
            TestDatabase::Sqlite => vec!["--data-dir".into(), data_dir.into()],
            TestDatabase::Postgres { url, .. } => vec!["--database-url".into(), url.into()],
        }
    }

    /// A connection of its own to the database, beside the server's.
    pub async fn connect(&self, data_dir: &Path) -> Beside {
        match self {
            TestDatabase::Sqlite => Beside::Sqlite(
                SqliteConnectOptions::new()
                    .filename(data_dir.join("roundtable.sqlite3"))
                    .busy_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .expect("the database opens"),
            ),
            TestDatabase::Postgres { url, .. } => Beside::Postgres(
                PgConnection::connect(url)
                    .await
                    .expect("the database answers"),
            ),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres { name, .. } = self else {
            return;
        };
        // Drop may run inside the test's runtime, which cannot block on its own
        // futures: a thread of its own drops the database (and any connection the
        // server left open).
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut cluster = PgConnection::connect(&cluster_url()).await?;
                cluster.execute(sqlx::AssertSqlSafe(sql)).await?;
                cluster.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("the test's database {name} could not be dropped: {dropped:?}");
        }
    }
}

/// A value for a statement's parameter.
pub enum Value {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

impl From<&String> for Value {
    fn from(text: &String) -> Value {
        Value::Text(text.clone())
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value::Bytes(bytes)
    }
}

/// A connection to a test's database beside the server's, as another program
/// would have: statements take `$1`, `$2`, … on either engine.
pub enum Beside {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// `sql` with `values` bound, for either engine.
fn query<DB>(sql: &str, values: &[Value]) -> sqlx::query::Query<'static, DB, DB::Arguments>
where
    DB: sqlx::Database,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Vec<u8>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text.clone()),
            Value::Int(n) => query.bind(*n),
            Value::Bytes(bytes) => query.bind(bytes.clone()),
        };
    }
    query
}

/// Runs `$run` on the query `$sql` with `$values` bound, on the connection's engine.
macro_rules! on_either {
    ($self:expr, $sql:expr, $values:expr, |$query:ident, $connection:ident| $run:expr) => {
        match $self {
            Beside::Sqlite($connection) => {
                let $query = query::<sqlx::Sqlite>($sql, $values);
                $run
            }
            Beside::Postgres($connection) => {
                let $query = query::<sqlx::Postgres>($sql, $values);
                $run
            }
        }
    };
}

impl Beside {
    /// Runs a statement; how many rows it changed.
    pub async fn execute(&mut self, sql: &str, values: &[Value]) -> u64 {
        on_either!(self, sql, values, |query, connection| query
            .execute(&mut *connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected())
    }

    /// The whole number in the first column of the one row a query gives.
    pub async fn int(&mut self, sql: &str, values: &[Value]) -> i64 {
        use sqlx::Row;
        on_either!(self, sql, values, |query, connection| query
            .fetch_one(&mut *connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0))
    }

    /// The text (or NULL) in the first column of the one row a query gives.
    pub async fn optional_text(&mut self, sql: &str, values: &[Value]) -> Option<String> {
        use sqlx::Row;
        on_either!(self, sql, values, |query, connection| query
            .fetch_one(&mut *connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0))
    }

    /// Takes the lock another program would take to write, and keeps it until
    /// `release`: nothing else can write, everyone can still read.
    pub async fn hold_writes(&mut self) {
        match self {
            Beside::Sqlite(_) => self.execute("BEGIN EXCLUSIVE", &[]).await,
            Beside::Postgres(_) => {
                self.execute("BEGIN", &[]).await;
                // EXCLUSIVE: every other lock but reading's conflicts with it.
                self.execute(
                    "LOCK TABLE chairs, conferences, participants, sessions, document_updates,
                         document_snapshots, document_quarantine, scales, scale_votes,
                         audit_events, decisions, attendance IN EXCLUSIVE MODE",
                    &[],
                )
                .await
            }
        };
    }

    /// Lets go of what `hold_writes` took, writing nothing.
    pub async fn release(&mut self) {
        self.execute("ROLLBACK", &[]).await;
    }

    /// Makes the database refuse, with `message`, every update `participant` sends,
    /// as a failing disk would, until `accept_updates_again`.
    pub async fn refuse_updates_from(&mut self, participant: &str, message: &str) {
        // Neither engine takes parameters in a trigger's definition: the values are
        // ids and words of the test's own.
        match self {
            Beside::Sqlite(_) => {
                let trigger = format!(
                    "CREATE TRIGGER refuse_updates BEFORE INSERT ON document_updates
                     WHEN NEW.participant_id = '{participant}'
                     BEGIN SELECT RAISE(ABORT, '{message}'); END"
                );
                self.execute(&trigger, &[]).await;
            }
            Beside::Postgres(_) => {
                let function = format!(
                    "CREATE FUNCTION refuse_updates() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                         IF NEW.participant_id = '{participant}' THEN
                             RAISE EXCEPTION '{message}';
                         END IF;
                         RETURN NEW;
                     END;
                     $$"
                );
                self.execute(&function, &[]).await;
                self.execute(
                    "CREATE TRIGGER refuse_updates BEFORE INSERT ON document_updates
                     FOR EACH ROW EXECUTE FUNCTION refuse_updates()",
                    &[],
                )
                .await;
            }
        }
    }

    pub async fn accept_updates_again(&mut self) {
        match self {
            Beside::Sqlite(_) => self.execute("DROP TRIGGER refuse_updates", &[]).await,
            Beside::Postgres(_) => {
                self.execute("DROP TRIGGER refuse_updates ON document_updates", &[])
                    .await;
                self.execute("DROP FUNCTION refuse_updates", &[]).await
            }
        };
    }

    pub async fn close(self) {
        let closed = match self {
            Beside::Sqlite(connection) => connection.close().await,
            Beside::Postgres(connection) => connection.close().await,
        };
        closed.expect("the connection closes");
    }
}

/// A document written to beside the server, as a tool would while no node has it
/// open: on PostgreSQL, under a lease taken for the purpose (and given up with
/// [`Writing::done`]); on SQLite, alone.
pub struct Writing {
    key: (ConferenceId, DocumentKind),
    lease: Option<(Nodes, Lease)>,
}

/// Takes what writing to a document beside the server needs.
pub async fn writing(storage: &Storage, conference: ConferenceId, kind: DocumentKind) -> Writing {
    let key = (conference, kind);
    let lease = match storage.nodes() {
        None => None,
        Some(nodes) => {
            let node: std::sync::Arc<str> = "a test, beside the server".into();
            let lease = nodes
                .acquire(key, &node, Duration::from_secs(60))
                .await
                .expect("the database answers")
                .expect("no node has the document open");
            Some((nodes, lease))
        }
    };
    Writing { key, lease }
}

impl Writing {
    pub fn fence(&self) -> Fence<'_> {
        match &self.lease {
            Some((_, lease)) => Fence::Lease(lease),
            None => Fence::Alone,
        }
    }

    pub async fn done(self) {
        if let Some((nodes, lease)) = self.lease {
            nodes
                .give_up(&lease.node, &[(self.key, lease.epoch)])
                .await
                .expect("the lease is given up");
        }
    }
}
