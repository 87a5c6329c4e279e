//! What a run found, as JSON and as a table.

use serde::Serialize;

use crate::stats::Latency;
use crate::target::TargetKind;

#[derive(Debug, Serialize)]
pub struct Report {
    pub label: Option<String>,
    pub target: TargetKind,
    pub rooms: usize,
    pub clients_per_room: usize,
    /// Edits per second per client, as asked.
    pub rate_per_client: f64,
    pub new_item_every: u64,
    /// How long edits were sent for, in seconds.
    pub edit_seconds: f64,
    pub connect_seconds: f64,
    pub edits_sent: u64,
    /// Edits every other client of the room had by the end of the drain.
    pub edits_delivered: u64,
    pub edits_undelivered: u64,
    pub edits_sent_per_second: f64,
    pub edits_delivered_per_second: f64,
    pub latency: Option<Latency>,
    pub refused: u64,
    pub malformed: u64,
    pub dropped_connections: u64,
    pub connect_retries: u64,
    pub generator: ProcessUse,
    pub server: Option<ServerUse>,
}

/// CPU over the measured span (edits plus drain), as seconds and as a share of one core.
#[derive(Debug, Serialize)]
pub struct ProcessUse {
    pub cpu_seconds: f64,
    pub cpu_percent_of_one_core: f64,
    /// The most any edit was sent behind its schedule, in ms.
    pub max_schedule_lag_ms: f64,
    pub late_edits: u64,
}

#[derive(Debug, Serialize)]
pub struct ServerUse {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub cpu_percent_of_one_core: f64,
    pub rss_before_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_after_kib: u64,
    pub peak_rss_kib: u64,
    /// (resident memory at the end − before the rooms were opened) / rooms.
    pub rss_per_room_kib: f64,
}

impl Report {
    /// A two-column table for people.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("target".into(), format!("{:?}", self.target)),
            (
                "workload".into(),
                format!(
                    "{} rooms × {} clients, {} edits/s each, new item every {} edits",
                    self.rooms, self.clients_per_room, self.rate_per_client, self.new_item_every
                ),
            ),
            (
                "edits".into(),
                format!(
                    "{} sent, {} delivered to every peer, {} not",
                    self.edits_sent, self.edits_delivered, self.edits_undelivered
                ),
            ),
            (
                "edits/s".into(),
                format!(
                    "{:.0} sent, {:.0} delivered (over {:.1} s)",
                    self.edits_sent_per_second, self.edits_delivered_per_second, self.edit_seconds
                ),
            ),
        ];
        if let Some(l) = &self.latency {
            rows.push((
                "edit → every peer".into(),
                format!(
                    "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
                ),
            ));
        }
        rows.push((
            "problems".into(),
            format!(
                "{} refused, {} malformed, {} dropped connections, {} connect retries",
                self.refused, self.malformed, self.dropped_connections, self.connect_retries
            ),
        ));
        if let Some(s) = &self.server {
            rows.push((
                "server CPU".into(),
                format!(
                    "{:.2} s ({:.0}% of a core)",
                    s.cpu_seconds, s.cpu_percent_of_one_core
                ),
            ));
            rows.push((
                "server memory".into(),
                format!(
                    "{} KiB before, {} KiB connected, {} KiB after, peak {} KiB; {:.0} KiB per room",
                    s.rss_before_kib,
                    s.rss_connected_kib,
                    s.rss_after_kib,
                    s.peak_rss_kib,
                    s.rss_per_room_kib
                ),
            ));
        }
        let g = &self.generator;
        rows.push((
            "generator".into(),
            format!(
                "{:.2} s CPU ({:.0}% of a core), max lag {:.1} ms, {} late edits",
                g.cpu_seconds, g.cpu_percent_of_one_core, g.max_schedule_lag_ms, g.late_edits
            ),
        ));
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}
