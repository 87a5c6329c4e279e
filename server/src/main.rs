//! `roundtable`: run the server, apply the database's migrations, manage chair
//! accounts, check stored documents, or delete conferences closed long ago.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use roundtable_server::storage::{ChairRow, Location, Storage, StorageError, now_ms};
use roundtable_server::sync::{ArrivingBudget, Limits};
use roundtable_server::{Config, auth};
use roundtable_shared::ChairId;

#[derive(Parser)]
#[command(
    name = "roundtable",
    version,
    about = "Collaborative whiteboard for child protection conferences"
)]
struct Cli {
    /// Directory holding the database.
    #[arg(
        long,
        env = "ROUNDTABLE_DATA_DIR",
        default_value = "data",
        global = true
    )]
    data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in instead (postgres://user@host/name);
    /// without it, SQLite in the data directory.
    #[arg(
        long,
        env = "ROUNDTABLE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ROUNDTABLE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory of the built browser client.
        #[arg(long, env = "ROUNDTABLE_CLIENT_DIR", default_value = "client/dist")]
        client_dir: PathBuf,
        /// Address people reach Roundtable at (used in join links), e.g. https://roundtable.example.org
        #[arg(long, env = "ROUNDTABLE_PUBLIC_URL")]
        public_url: Option<String>,
        /// Connections one address may hold open at once. Behind a reverse proxy
        /// every connection comes from the proxy: raise this, and have the proxy
        /// limit each client.
        #[arg(long, env = "ROUNDTABLE_MAX_CONNECTIONS_PER_ADDRESS")]
        max_connections_per_address: Option<usize>,
        /// MiB of WebSocket messages still arriving that the server holds at once, on
        /// every connection together (a connection whose message would take more is
        /// closed, to connect again). Default 8.
        #[arg(long, env = "ROUNDTABLE_MAX_ARRIVING_MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
        max_arriving_mib: Option<u32>,
        /// Signing in, room codes and the lobby.
        #[command(flatten)]
        door: roundtable_server::door::DoorArgs,
        /// This node's name, when several share one PostgreSQL database: unique among
        /// them (it names the leases the node holds). By default the host's name,
        /// the process id and a few random characters.
        #[arg(long, env = "ROUNDTABLE_NODE_NAME")]
        node_name: Option<String>,
    },
    /// Apply the database's migrations, then exit (`serve` applies them too).
    Migrate,
    /// Manage chair accounts.
    Chair {
        #[command(subcommand)]
        command: ChairCommand,
    },
    /// Replay stored documents and report any that do not load, depend on changes
    /// they lack, have a hole in a client's changes, or disagree with their snapshot.
    Doctor {
        /// Only this conference's documents.
        #[arg(long)]
        conference: Option<uuid::Uuid>,
    },
    /// Delete every conference closed more than N days ago, with everything about it.
    Retention {
        /// Conferences closed more than this many days ago are deleted.
        #[arg(long)]
        closed_days: u32,
        /// Say what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ChairCommand {
    /// Create a chair account. The password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keep_large_allocations_apart();
    // What is said in a conference is confidential: whatever the level asked for, the
    // WebSocket libraries never log the messages they carry.
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROUNDTABLE_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into())
        .add_directive("tungstenite=info".parse().expect("a valid directive"))
        .add_directive("tokio_tungstenite=info".parse().expect("a valid directive"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let cli = Cli::parse();
    let database = Database {
        data_dir: cli.data_dir.clone(),
        url: cli.database_url.clone(),
    };
    let result = match cli.command {
        Command::Serve {
            listen,
            client_dir,
            public_url,
            max_connections_per_address,
            max_arriving_mib,
            door,
            node_name,
        } => {
            let mut limits = Limits::default();
            if let Some(n) = max_connections_per_address {
                limits.connections_per_address = n;
            }
            if let Some(mib) = max_arriving_mib {
                limits.arriving = ArrivingBudget::new(mib as usize * 1024 * 1024);
            }
            serve(Config {
                listen,
                data_dir: cli.data_dir,
                database_url: cli.database_url,
                client_dir,
                public_url,
                node_name,
                limits,
                door: door.settings(),
            })
            .await
        }
        Command::Migrate => migrate(&database).await,
        Command::Chair {
            command: ChairCommand::Add { email, name },
        } => add_chair(&database, email, name).await,
        Command::Retention {
            closed_days,
            dry_run,
        } => retention(&database, closed_days, dry_run).await,
        Command::Doctor { conference } => doctor(&database, conference).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("roundtable: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Has glibc give every block of 128 KiB or more its own mapping, returned to the
/// system when freed. Otherwise glibc raises that threshold to the size of the first
/// such block freed: after one password check (argon2 takes 19 MiB at once), blocks
/// that size come from the heap and about 20 MiB stays resident for good.
fn keep_large_allocations_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        const M_MMAP_THRESHOLD: c_int = -3;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // SAFETY: mallopt only sets one of the allocator's parameters; glibc allows
        // it at any time, from any thread.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    if !config.client_dir.join("index.html").exists() {
        tracing::warn!(dir = %config.client_dir.display(), "the browser client is not built; run scripts/run.sh");
    }
    let running = roundtable_server::start(config)
        .await
        .map_err(|e| e.to_string())?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The database the command line names: `--database-url`, or SQLite in `--data-dir`.
struct Database {
    data_dir: PathBuf,
    url: Option<String>,
}

impl Database {
    fn location(&self) -> Result<Location, String> {
        roundtable_server::config::database(&self.data_dir, self.url.as_deref())
            .map_err(|e| e.to_string())
    }

    /// Opens the database, creating a SQLite one if there is none, and migrates it.
    async fn open(&self) -> Result<Storage, String> {
        let location = self.location()?;
        if let Location::Sqlite(_) = location {
            std::fs::create_dir_all(&self.data_dir).map_err(|e| e.to_string())?;
        }
        Storage::open(&location).await.map_err(|e| e.to_string())
    }

    /// Opens a database that must be there already.
    async fn open_existing(&self) -> Result<Storage, String> {
        let location = self.location()?;
        if let Location::Sqlite(path) = &location
            && !path.exists()
        {
            return Err(format!("there is no database at {}", path.display()));
        }
        Storage::open(&location).await.map_err(|e| e.to_string())
    }

    fn describe(&self) -> String {
        match self.location() {
            Ok(Location::Sqlite(path)) => format!("the SQLite database {}", path.display()),
            _ => "the PostgreSQL database".to_owned(),
        }
    }
}

async fn migrate(database: &Database) -> Result<(), String> {
    let storage = database.open().await?;
    storage.close().await;
    println!("{} is migrated and up to date", database.describe());
    Ok(())
}

async fn add_chair(database: &Database, email: String, name: String) -> Result<(), String> {
    let email = email.trim().to_owned();
    if !email.contains('@') || email.chars().any(roundtable_server::api::not_in_a_name) {
        return Err("give a valid --email".into());
    }
    let name = roundtable_server::api::name("name", &name).map_err(|e| e.to_string())?;
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("could not read the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 12 {
        return Err("the password must be at least 12 characters".into());
    }
    let hash =
        auth::hash_password(password).map_err(|e| format!("could not hash the password: {e}"))?;
    let storage = database.open().await?;
    let chair = ChairRow {
        id: ChairId(uuid::Uuid::new_v4()),
        email: email.clone(),
        name,
        password_hash: hash,
    };
    let result = storage.insert_chair(&chair).await;
    storage.close().await;
    match result {
        Ok(()) => {
            println!("Chair account created for {email}.");
            Ok(())
        }
        Err(StorageError::EmailTaken) => {
            Err(format!("a chair with the email {email} already exists"))
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn doctor(database: &Database, conference: Option<uuid::Uuid>) -> Result<(), String> {
    let storage = database.open_existing().await?;
    let result = roundtable_server::doctor::examine(
        &storage,
        conference.map(roundtable_shared::ConferenceId),
    )
    .await;
    storage.close().await;
    let (documents, findings) = result.map_err(|e| e.to_string())?;
    for finding in &findings {
        println!(
            "{} ({} document): {}",
            finding.conference,
            finding.kind.as_str(),
            finding.problem
        );
    }
    if findings.is_empty() {
        println!("{documents} document(s) examined: every one loads whole");
        Ok(())
    } else {
        Err(format!(
            "{documents} document(s) examined: {} problem(s)",
            findings.len()
        ))
    }
}

async fn retention(database: &Database, closed_days: u32, dry_run: bool) -> Result<(), String> {
    let storage = database.open_existing().await?;
    let cutoff = now_ms() - i64::from(closed_days) * 24 * 60 * 60 * 1000;
    let result = storage.delete_closed_before(cutoff, dry_run).await;
    storage.close().await;
    let removed = result.map_err(|e| e.to_string())?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut total = 0;
    for gone in &removed {
        let closed = time::OffsetDateTime::from_unix_timestamp(gone.closed_at / 1000)
            .map(|t| t.date().to_string())
            .unwrap_or_default();
        let rows: Vec<String> = gone
            .rows
            .iter()
            .map(|(table, n)| format!("{table} {n}"))
            .collect();
        total += gone.rows.iter().map(|(_, n)| n).sum::<u64>();
        println!(
            "{verb} {} {:?} (closed {closed}): {}",
            gone.conference,
            gone.title,
            rows.join(", ")
        );
    }
    println!(
        "{verb} {} conference(s) closed more than {closed_days} days ago, {total} rows in all",
        removed.len()
    );
    Ok(())
}
