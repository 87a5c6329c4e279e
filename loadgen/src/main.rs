//! `roundtable-load`: opens R rooms of C clients on a Yjs sync server on this
//! machine, has every client type at a set rate, and measures how long each edit
//! takes to reach every other client of its room.
//!
//! The same workload runs against Roundtable, `@y/websocket-server`, Hocuspocus and
//! y-sweet; only how rooms are set up and how messages are framed differ. See
//! `docs/performance.md`.

mod client;
mod procfs;
mod protocol;
mod report;
mod stats;
mod target;
mod track;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use tokio::time::Instant;

use client::{Client, Counters, Workload};
use report::{ProcessUse, Report, ServerUse};
use stats::Latency;
use target::{Chair, Setup, TargetKind};
use track::RoomTracker;

/// Load a Yjs sync server on 127.0.0.1 with rooms of typing clients.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Which kind of server is listening.
    #[arg(long, value_enum)]
    target: TargetKind,
    /// Where it listens: 127.0.0.1 only.
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    rooms: u16,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(2..=100))]
    clients: u16,
    /// Edits per second per client.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of editing (at most 600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait after the last edit for it to reach everyone (at most 60).
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Every N edits a client starts a new item; the others type into its item.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
    new_item_every: u64,
    /// Stop editing once this many edits have been sent (at most 10,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    max_edits: u64,
    /// The server's process id, to report its CPU time and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A name for this run, copied into the JSON.
    #[arg(long)]
    label: Option<String>,
    /// How many clients may be connecting at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    connect_concurrency: u16,
    /// Generator threads: 1 runs everything on one thread, leaving the other cores
    /// to the server.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Roundtable: the chair who creates the conferences.
    #[arg(long)]
    chair_email: Option<String>,
    /// Roundtable: the chair's password.
    #[arg(long, env = "ROUNDTABLE_LOAD_CHAIR_PASSWORD", hide_env_values = true)]
    chair_password: Option<String>,
    /// Roundtable: the role clients are invited with (`professional` may edit only
    /// its own items, `minute_taker` any).
    #[arg(long, default_value = "professional")]
    role: String,
    /// Fail unless every edit reached every peer with nothing refused, unreadable or
    /// dropped (for smoke tests).
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Setup(#[from] target::SetupError),
    #[error("client {index} of room {room}: {error}")]
    Connect {
        room: usize,
        index: usize,
        error: client::ClientError,
    },
    #[error("reading the server's /proc entry: {0}")]
    Proc(std::io::Error),
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("no edit was delivered to every peer")]
    NothingDelivered,
    #[error("--strict: {0}")]
    NotClean(String),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.threads))
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(error) => {
            eprintln!("roundtable-load: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("roundtable-load: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> Result<(), RunError> {
    if args.addr.ip() != Ipv4Addr::LOCALHOST {
        return Err(RunError::Usage(format!(
            "--addr must be on 127.0.0.1, not {}: this tool only loads servers on this machine",
            args.addr.ip()
        )));
    }
    let in_range = |v: f64, max: f64| v.is_finite() && v > 0.0 && v <= max;
    if !in_range(args.rate, 100.0) {
        return Err(RunError::Usage(
            "--rate must be above 0 and at most 100".into(),
        ));
    }
    // A NaN is in no range, so these also refuse it.
    if !in_range(args.duration, 600.0) || !(0.0..=60.0).contains(&args.drain) {
        return Err(RunError::Usage(
            "--duration must be above 0 and at most 600 s, --drain at most 60 s".into(),
        ));
    }
    Ok(())
}

fn sample(pid: Option<u32>) -> Result<Option<procfs::Sample>, RunError> {
    pid.map(|pid| procfs::sample(Some(pid)))
        .transpose()
        .map_err(RunError::Proc)
}

async fn run(args: Args) -> Result<(), RunError> {
    check(&args)?;
    let rooms = usize::from(args.rooms);
    let clients = usize::from(args.clients);
    let server_before = sample(args.server_pid)?;

    let started = Instant::now();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default();
    let run_id = format!("{now_us:x}");
    let chair = match (&args.chair_email, &args.chair_password) {
        (Some(email), Some(password)) => Some(Chair {
            email: email.clone(),
            password: password.clone(),
        }),
        _ => None,
    };
    let specs = target::prepare(&Setup {
        kind: args.target,
        addr: args.addr,
        rooms,
        clients,
        run_id: &run_id,
        chair: chair.as_ref(),
        role: &args.role,
    })
    .await?;

    // Client ids are chosen, not random, so a receiver can tell which client of its
    // room an update came from; the base keeps them apart from a server's own.
    let id_base = 1_000_000 + (now_us % 1_000_000) * 1000;
    let trackers: Vec<Arc<Mutex<RoomTracker>>> = (0..rooms)
        .map(|r| {
            Arc::new(Mutex::new(RoomTracker::new(
                clients,
                id_base + (r * clients) as u64,
            )))
        })
        .collect();
    let counters = Arc::new(Counters::default());

    // First one client per room, then the rest, so no room sees a burst of first
    // connections (y-sweet answers some of those with HTTP 500).
    let order: Vec<(usize, usize)> = (0..clients)
        .flat_map(|c| (0..rooms).map(move |r| (r, c)))
        .collect();
    let (first, rest) = order.split_at(rooms);
    let mut connected = Vec::with_capacity(rooms * clients);
    for wave in [first, rest] {
        let results: Vec<_> = futures_util::stream::iter(wave.iter().copied())
            .map(|(r, c)| {
                let (specs, trackers, counters) = (&specs, &trackers, &counters);
                async move {
                    let client_id = id_base + (r * clients + c) as u64;
                    Client::connect(&specs[r][c], client_id, c, trackers[r].clone(), counters)
                        .await
                        .map_err(|error| RunError::Connect {
                            room: r,
                            index: c,
                            error,
                        })
                }
            })
            .buffer_unordered(usize::from(args.connect_concurrency))
            .collect()
            .await;
        for result in results {
            connected.push(result?);
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let server_connected = sample(args.server_pid)?;
    eprintln!(
        "roundtable-load: {} clients in {rooms} rooms connected in {connect_seconds:.1} s",
        connected.len()
    );

    let start = Instant::now() + Duration::from_millis(200);
    let edit_until = start + Duration::from_secs_f64(args.duration);
    let workload = Workload {
        period: Duration::from_secs_f64(1.0 / args.rate),
        new_item_every: args.new_item_every,
        edit_until,
        max_edits: args.max_edits,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for client in connected {
        tasks.spawn(client.run(workload.clone(), start, counters.clone(), stop_rx.clone()));
    }
    tokio::time::sleep_until(start).await;
    let server_start = sample(args.server_pid)?;
    let generator_start = procfs::sample(None).map_err(RunError::Proc)?;

    // Edit, then wait for the last edits to arrive, but no longer than the drain.
    tokio::time::sleep_until(edit_until).await;
    let drain_until = Instant::now() + Duration::from_secs_f64(args.drain);
    while Instant::now() < drain_until {
        let outstanding: usize = trackers
            .iter()
            .map(|t| t.lock().map(|t| t.outstanding()).unwrap_or(0))
            .sum();
        if outstanding == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let measured = start.elapsed().as_secs_f64();
    let server_end = sample(args.server_pid)?;
    let generator_end = procfs::sample(None).map_err(RunError::Proc)?;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let mut latencies = Vec::new();
    let mut sent = 0u64;
    for tracker in &trackers {
        if let Ok(t) = tracker.lock() {
            latencies.extend_from_slice(t.latencies_us());
            sent += t.sent_count() as u64;
        }
    }
    let delivered = latencies.len() as u64;
    let edit_seconds = args.duration;
    let percent = |cpu: Duration| cpu.as_secs_f64() / measured * 100.0;
    let report = Report {
        label: args.label.clone(),
        target: args.target,
        rooms,
        clients_per_room: clients,
        rate_per_client: args.rate,
        new_item_every: args.new_item_every,
        edit_seconds,
        connect_seconds,
        edits_sent: sent,
        edits_delivered: delivered,
        edits_undelivered: sent - delivered,
        edits_sent_per_second: sent as f64 / edit_seconds,
        edits_delivered_per_second: delivered as f64 / edit_seconds,
        latency: Latency::from_micros(&mut latencies),
        refused: counters.refused.load(Ordering::Relaxed),
        malformed: counters.malformed.load(Ordering::Relaxed),
        dropped_connections: counters.dropped.load(Ordering::Relaxed),
        connect_retries: counters.connect_retries.load(Ordering::Relaxed),
        generator: {
            let cpu = generator_end.cpu.saturating_sub(generator_start.cpu);
            ProcessUse {
                cpu_seconds: cpu.as_secs_f64(),
                cpu_percent_of_one_core: percent(cpu),
                max_schedule_lag_ms: counters.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
                late_edits: counters.late_edits.load(Ordering::Relaxed),
            }
        },
        server: match (
            args.server_pid,
            server_before,
            server_connected,
            server_start,
            server_end,
        ) {
            (Some(pid), Some(before), Some(connected), Some(start), Some(end)) => {
                let cpu = end.cpu.saturating_sub(start.cpu);
                Some(ServerUse {
                    pid,
                    cpu_seconds: cpu.as_secs_f64(),
                    cpu_percent_of_one_core: percent(cpu),
                    rss_before_kib: before.rss_kib,
                    rss_connected_kib: connected.rss_kib,
                    rss_after_kib: end.rss_kib,
                    peak_rss_kib: end.peak_rss_kib,
                    rss_per_room_kib: end.rss_kib.saturating_sub(before.rss_kib) as f64
                        / rooms as f64,
                })
            }
            _ => None,
        },
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, json + "\n").map_err(|e| RunError::Write(path.clone(), e))?;
    }
    if delivered == 0 {
        return Err(RunError::NothingDelivered);
    }
    let problems =
        report.edits_undelivered + report.refused + report.malformed + report.dropped_connections;
    if args.strict && problems > 0 {
        return Err(RunError::NotClean(format!(
            "{} edits undelivered, {} refused, {} malformed, {} connections dropped",
            report.edits_undelivered, report.refused, report.malformed, report.dropped_connections
        )));
    }
    Ok(())
}
