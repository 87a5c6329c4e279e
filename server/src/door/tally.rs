//! Refusals counted, not written one line each: whoever can reach the server would
//! otherwise decide how fast its log grows. The first refusal of a kind in a period
//! is logged as it happens; the rest are counted, with how many addresses they came
//! from, and one summary line a period says how many there were. So a flood of any
//! size costs at most two lines per kind per period.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The kinds of refusal counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refused {
    /// A connection over its address's share (429, before the request is read).
    ConnectionsFromOneAddress,
    /// A connection over the server's total (503).
    ServerFull,
    /// A wrong email or password.
    WrongPassword,
    /// A sign-in refused to wait out the failures before it (429).
    SignInTooSoon,
    /// A sign-in refused because as many password checks as may wait are waiting.
    SignInBusy,
    /// A room code that names no open meeting.
    UnknownRoomCode,
    /// A room code guess over an address's or the server's allowance.
    RoomCodeTooSoon,
    /// Someone refused a place in a lobby (full, or full for their address, or too
    /// many entries from their address).
    LobbyRefused,
}

impl Refused {
    fn words(self) -> &'static str {
        match self {
            Self::ConnectionsFromOneAddress => "connections refused: too many from one address",
            Self::ServerFull => "connections refused: the server is full",
            Self::WrongPassword => "sign-ins refused: wrong email or password",
            Self::SignInTooSoon => "sign-ins refused: too soon after wrong passwords",
            Self::SignInBusy => "sign-ins refused: too many password checks waiting",
            Self::UnknownRoomCode => "lobby entries refused: no meeting has the code",
            Self::RoomCodeTooSoon => "lobby entries refused: too many room code guesses",
            Self::LobbyRefused => "lobby entries refused: the lobby is full for them",
        }
    }
}

/// Addresses remembered per kind and period, to say how many there were.
const ADDRESSES_COUNTED: usize = 1024;

#[derive(Default)]
struct Count {
    /// Refusals since the period's first, which was logged as it happened.
    since_first: u64,
    addresses: HashSet<IpAddr>,
}

/// The count of each kind of refusal in the current period.
pub struct Tally {
    period: Duration,
    now: Mutex<Period>,
}

struct Period {
    started: Instant,
    counts: HashMap<Refused, Count>,
}

impl Tally {
    pub fn new(period: Duration) -> Tally {
        Tally {
            period,
            now: Mutex::new(Period {
                started: Instant::now(),
                counts: HashMap::new(),
            }),
        }
    }

    /// Notes one refusal from `address`; the period's first of its kind is logged.
    pub fn note(&self, kind: Refused, address: Option<IpAddr>) {
        let mut period = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if period.started.elapsed() >= self.period {
            Self::summarise(&mut period, self.period);
        }
        let first = !period.counts.contains_key(&kind);
        let count = period.counts.entry(kind).or_default();
        if first {
            tracing::warn!(
                address = address.map(tracing::field::display),
                "{}",
                kind.words()
            );
        } else {
            count.since_first += 1;
        }
        if let Some(address) = address
            && count.addresses.len() < ADDRESSES_COUNTED
        {
            count.addresses.insert(address);
        }
    }

    /// Logs the summary of a period that has ended (called every period by the
    /// server, and before a new period's first refusal).
    pub fn flush(&self) {
        let mut period = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if period.started.elapsed() >= self.period {
            Self::summarise(&mut period, self.period);
        }
    }

    /// Logs the summary of the period so far, and starts another (as the server
    /// stops, so that nothing counted goes unsaid).
    pub fn summarise_now(&self) {
        let mut period = self.now.lock().unwrap_or_else(|e| e.into_inner());
        Self::summarise(&mut period, self.period);
    }

    fn summarise(period: &mut Period, length: Duration) {
        let mut counts: Vec<_> = period.counts.drain().collect();
        counts.sort_by_key(|(kind, _)| *kind as u8);
        for (kind, count) in counts {
            if count.since_first == 0 {
                continue;
            }
            let addresses = match count.addresses.len() {
                ADDRESSES_COUNTED => format!("{ADDRESSES_COUNTED} or more"),
                n => n.to_string(),
            };
            tracing::warn!(
                refused = count.since_first + 1,
                addresses = %addresses,
                seconds = period.started.elapsed().as_secs().min(length.as_secs()),
                "{} (summary of the last period)",
                kind.words()
            );
        }
        period.started = Instant::now();
    }
}
