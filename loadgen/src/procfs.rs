//! CPU time and memory of a process, from Linux's /proc.

use std::time::Duration;

use serde::Serialize;

/// Clock ticks per second in /proc/<pid>/stat. Linux reports these in USER_HZ,
/// which is 100 on every architecture it exposes to user space, whatever the
/// kernel's own tick rate.
const TICKS_PER_SECOND: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// User plus system CPU time since the process started.
    #[serde(skip)]
    pub cpu: Duration,
    /// Resident memory now, in KiB.
    pub rss_kib: u64,
    /// The most resident memory the process has had, in KiB.
    pub peak_rss_kib: u64,
}

/// Reads a process by id; `None` for the generator itself.
pub fn sample(pid: Option<u32>) -> std::io::Result<Sample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    Ok(Sample {
        cpu: cpu_time(&stat).ok_or_else(|| invalid("unreadable /proc stat"))?,
        rss_kib: status_kib(&status, "VmRSS").ok_or_else(|| invalid("no VmRSS"))?,
        peak_rss_kib: status_kib(&status, "VmHWM").ok_or_else(|| invalid("no VmHWM"))?,
    })
}

/// User plus system time from the text of /proc/<pid>/stat. The command name (the
/// second field) is in parentheses and may itself hold spaces and parentheses, so
/// fields are counted from the last `)`.
fn cpu_time(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 3 (state) to 13 come first; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// A `Name:   123 kB` line of /proc/<pid>/status, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system() {
        let stat = "1234 (node (weird) name) S 1 1234 1234 0 -1 4194560 9000 0 0 0 250 50 0 0 20 0 11 0 100 0 0";
        assert_eq!(cpu_time(stat), Some(Duration::from_secs(3)));
        assert_eq!(cpu_time("garbage"), None);
    }

    #[test]
    fn memory_lines_are_read_in_kib() {
        let status = "Name:\troundtable\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(51200));
        assert_eq!(status_kib(status, "VmRSS"), Some(40960));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = sample(None).unwrap();
        assert!(me.peak_rss_kib >= me.rss_kib.min(1));
    }
}
