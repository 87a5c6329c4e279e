//! The front door's limits, and the command line's settings for them (each also an
//! environment variable). `docs/reliability.md` says why each default is what it is.

use std::net::IpAddr;
use std::time::Duration;

use super::limiter::BucketRule;

/// The front door's limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Passwords checked at once (each check takes about 19 MiB and a core).
    pub password_checks_at_once: usize,
    /// Sign-ins that may wait for a check; more are answered 503 at once.
    pub password_checks_waiting: usize,
    /// Wrong passwords for one account (as typed: its email) before each further
    /// attempt must wait…
    pub free_failures_per_account: u32,
    /// …and from one address.
    pub free_failures_per_address: u32,
    /// The first wait; each wrong password after doubles it…
    pub first_wait: Duration,
    /// …up to this.
    pub longest_wait: Duration,
    /// An account or address with no wrong password for this long starts afresh.
    pub forget_failures_after: Duration,
    /// Room code guesses from one address.
    pub code_guesses_per_address: BucketRule,
    /// Room code guesses from everyone together (those that do not name their
    /// conference, as the QR code's address does).
    pub code_guesses: BucketRule,
    /// People asking to join a lobby (any lobby) from one address.
    pub lobby_entries_per_address: BucketRule,
    /// People waiting in one conference's lobby.
    pub lobby_waiting: usize,
    /// People waiting in one conference's lobby who came from one address.
    pub lobby_waiting_per_address: usize,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trust_forwarded_for: Vec<IpAddr>,
    /// Addresses (and accounts) each limit remembers at most; past that, new ones
    /// share one allowance.
    pub keys_remembered: usize,
    /// How often the log sums up refusals.
    pub log_period: Duration,
}

/// Half the processor's cores check passwords, so that the other half is the
/// meetings' whatever happens.
fn half_the_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            password_checks_at_once: half_the_cores(),
            password_checks_waiting: 16,
            free_failures_per_account: 5,
            free_failures_per_address: 20,
            first_wait: Duration::from_secs(1),
            longest_wait: Duration::from_secs(15 * 60),
            forget_failures_after: Duration::from_secs(24 * 60 * 60),
            // A meeting room's phones share one address: ten people and their typos.
            code_guesses_per_address: BucketRule {
                burst: 20,
                per_minute: 20,
            },
            code_guesses: BucketRule {
                burst: 200,
                per_minute: 3000,
            },
            lobby_entries_per_address: BucketRule {
                burst: 20,
                per_minute: 10,
            },
            lobby_waiting: 50,
            lobby_waiting_per_address: 15,
            trust_forwarded_for: Vec::new(),
            keys_remembered: 65_536,
            log_period: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Limits nobody reaches: for tests and fuzz targets about something else (who
    /// may do what), which sign in and enter lobbies from one address many times.
    pub fn out_of_reach() -> Settings {
        let plenty = BucketRule {
            burst: 1_000_000,
            per_minute: 1_000_000,
        };
        Settings {
            free_failures_per_account: 1_000_000,
            free_failures_per_address: 1_000_000,
            code_guesses_per_address: plenty,
            code_guesses: plenty,
            lobby_entries_per_address: plenty,
            lobby_waiting: 1_000_000,
            lobby_waiting_per_address: 1_000_000,
            ..Settings::default()
        }
    }
}

/// The front door's settings on the command line (`roundtable serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct DoorArgs {
    /// Passwords checked at once; default: half the processor's cores.
    #[arg(long, env = "ROUNDTABLE_PASSWORD_CHECKS_AT_ONCE", value_parser = clap::value_parser!(u32).range(1..=256))]
    password_checks_at_once: Option<u32>,
    /// Sign-ins that may wait for a password check; more are answered 503. Default 16.
    #[arg(long, env = "ROUNDTABLE_PASSWORD_CHECKS_WAITING")]
    password_checks_waiting: Option<usize>,
    /// Wrong passwords for one account before each further attempt waits (1 s,
    /// doubling up to 15 minutes). Default 5.
    #[arg(long, env = "ROUNDTABLE_FREE_FAILURES_PER_ACCOUNT", value_parser = clap::value_parser!(u32).range(1..))]
    free_failures_per_account: Option<u32>,
    /// Wrong passwords from one address before each further attempt waits. Default 20.
    #[arg(long, env = "ROUNDTABLE_FREE_FAILURES_PER_ADDRESS", value_parser = clap::value_parser!(u32).range(1..))]
    free_failures_per_address: Option<u32>,
    /// Room code guesses a minute from one address (and at once). Default 20.
    #[arg(long, env = "ROUNDTABLE_CODE_GUESSES_PER_ADDRESS", value_parser = clap::value_parser!(u32).range(1..))]
    code_guesses_per_address: Option<u32>,
    /// Room code guesses a second from everyone together. Default 50.
    #[arg(long, env = "ROUNDTABLE_CODE_GUESSES_PER_SECOND", value_parser = clap::value_parser!(u32).range(1..))]
    code_guesses_per_second: Option<u32>,
    /// People waiting in one conference's lobby. Default 50.
    #[arg(long, env = "ROUNDTABLE_LOBBY_WAITING", value_parser = clap::value_parser!(u32).range(1..))]
    lobby_waiting: Option<u32>,
    /// People waiting in one conference's lobby from one address. Default 15.
    #[arg(long, env = "ROUNDTABLE_LOBBY_WAITING_PER_ADDRESS", value_parser = clap::value_parser!(u32).range(1..))]
    lobby_waiting_per_address: Option<u32>,
    /// Reverse proxies (IP addresses, comma-separated) whose X-Forwarded-For header
    /// names the client. Without it the header is ignored.
    #[arg(long, env = "ROUNDTABLE_TRUST_FORWARDED_FOR", value_delimiter = ',')]
    trust_forwarded_for: Vec<IpAddr>,
}

impl DoorArgs {
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        if let Some(n) = self.password_checks_at_once {
            settings.password_checks_at_once = n as usize;
        }
        if let Some(n) = self.password_checks_waiting {
            settings.password_checks_waiting = n;
        }
        if let Some(n) = self.free_failures_per_account {
            settings.free_failures_per_account = n;
        }
        if let Some(n) = self.free_failures_per_address {
            settings.free_failures_per_address = n;
        }
        if let Some(n) = self.code_guesses_per_address {
            settings.code_guesses_per_address = BucketRule {
                burst: n,
                per_minute: n,
            };
        }
        if let Some(n) = self.code_guesses_per_second {
            settings.code_guesses = BucketRule {
                burst: n.saturating_mul(4),
                per_minute: n.saturating_mul(60),
            };
        }
        if let Some(n) = self.lobby_waiting {
            settings.lobby_waiting = n as usize;
        }
        if let Some(n) = self.lobby_waiting_per_address {
            settings.lobby_waiting_per_address = n as usize;
        }
        settings.trust_forwarded_for = self.trust_forwarded_for.clone();
        settings
    }
}
