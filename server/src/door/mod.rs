//! The front door: what anyone who can reach the server may try without an account,
//! and how often. Signing in, guessing room codes and filling a lobby are each
//! limited here, by the client's address (IPv4, or IPv6 /64; from a trusted proxy's
//! `X-Forwarded-For` only when configured to), by account and in all, so that no
//! stranger can slow the meetings on the server or keep a family out of theirs.
//!
//! - [`limiter`]: growing waits after failures, and token buckets; bounded memory.
//! - [`hasher`]: the threads that check passwords, and their queue.
//! - [`tally`]: refusals counted and summarised in the log, not one line each.
//! - [`known`]: the cookie a browser that signed in keeps, so that its owner is not
//!   locked out of their account by someone else's wrong passwords.
//! - [`settings`]: the command line's settings for all of it.
//!
//! Everything here is in this node's memory: with several nodes, each counts its own.

pub mod hasher;
pub mod known;
pub mod limiter;
pub mod settings;
pub mod tally;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use roundtable_shared::ParticipantId;

use crate::error::ApiError;
use crate::state::AppState;
use limiter::{Backoff, BackoffRule, Buckets, Wait};
pub use settings::{DoorArgs, Settings};
use tally::{Refused, Tally};

/// The address a connection came from, as accepted (`listen.rs` puts it on every
/// request).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub SocketAddr);

/// The address a request is counted as coming from: the peer's, or, when the peer
/// is a trusted proxy, the client's that it names in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        let peer = parts.extensions.get::<PeerAddress>().map(|p| p.0.ip());
        Ok(state.door.client_address(peer, &parts.headers))
    }
}

/// An account as the sign-in limits count it: the email as typed, trimmed and in
/// lower case, whether or not an account has it (so that the limits do not tell).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Account {
    email: String,
    /// Attempts from a browser that has signed in to the account before are counted
    /// apart, so that a stranger's wrong passwords do not lock its owner out.
    known_browser: bool,
}

/// Everything the front door counts.
pub struct Door {
    pub settings: Settings,
    pub hasher: hasher::Hasher,
    pub tally: Tally,
    /// Sign-ins being checked or waiting: the password-checking threads and their
    /// queue, taken before the database is asked for the account.
    sign_ins: tokio::sync::Semaphore,
    by_address: Backoff<IpAddr>,
    by_account: Backoff<Account>,
    code_guesses_by_address: Buckets<IpAddr>,
    code_guesses: Buckets<()>,
    lobby_entries_by_address: Buckets<IpAddr>,
    /// Who asked to join a lobby from which address, while they may still be waiting.
    entrants: Mutex<HashMap<ParticipantId, (IpAddr, Instant)>>,
}

/// How long an entrant's address is remembered: a lobby session's lifetime.
const ENTRANT_REMEMBERED: Duration = Duration::from_millis(crate::auth::SESSION_LIFETIME_MS as u64);

impl Door {
    pub fn new(settings: Settings) -> Door {
        let backoff = |free| BackoffRule {
            free,
            first_wait: settings.first_wait,
            longest_wait: settings.longest_wait,
            forget_after: settings.forget_failures_after,
        };
        let keys = settings.keys_remembered;
        let slots = settings.password_checks_at_once.max(1) + settings.password_checks_waiting;
        Door {
            // Room in the queue for every sign-in that holds a slot.
            hasher: hasher::Hasher::new(settings.password_checks_at_once, slots),
            tally: Tally::new(settings.log_period),
            sign_ins: tokio::sync::Semaphore::new(slots),
            by_address: Backoff::new(backoff(settings.free_failures_per_address), keys),
            by_account: Backoff::new(backoff(settings.free_failures_per_account), keys),
            code_guesses_by_address: Buckets::new(settings.code_guesses_per_address, keys),
            code_guesses: Buckets::new(settings.code_guesses, 1),
            lobby_entries_by_address: Buckets::new(settings.lobby_entries_per_address, keys),
            entrants: Mutex::default(),
            settings,
        }
    }

    /// The address a request counts as coming from.
    pub fn client_address(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> ClientAddress {
        let Some(peer) = peer.map(canonical) else {
            // Not through the listener (the fuzz targets call the router directly).
            return ClientAddress(IpAddr::from([0, 0, 0, 0]));
        };
        let trusted = |ip: IpAddr| {
            self.settings
                .trust_forwarded_for
                .iter()
                .any(|t| canonical(*t) == canonical(ip))
        };
        if !trusted(peer) {
            return ClientAddress(crate::listen::address_key(peer));
        }
        // The right-most address that is not one of the trusted proxies is the one
        // the nearest trusted proxy saw; those to its left, the client wrote itself.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted(ip) => continue,
                Ok(ip) => return ClientAddress(crate::listen::address_key(ip)),
                Err(_) => break,
            }
        }
        ClientAddress(crate::listen::address_key(peer))
    }

    // --- signing in ---------------------------------------------------------------

    /// The first step of a sign-in, before anything is read from the database:
    /// refused at once while the address must wait after earlier wrong passwords
    /// (429), and when as many sign-ins as may be checked or wait are under way
    /// (503). The slot is held until the password is checked.
    pub fn enter_sign_in(&self, address: ClientAddress) -> Result<SignInSlot<'_>, ApiError> {
        if let Err(wait) = self.by_address.check(&address.0, Instant::now()) {
            return Err(self.too_soon(address, wait));
        }
        match self.sign_ins.try_acquire() {
            Ok(permit) => Ok(SignInSlot(permit)),
            Err(_) => {
                self.tally.note(Refused::SignInBusy, Some(address.0));
                Err(ApiError::Busy)
            }
        }
    }

    fn too_soon(&self, address: ClientAddress, wait: Wait) -> ApiError {
        self.tally.note(Refused::SignInTooSoon, Some(address.0));
        ApiError::TryLater {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            sentence: format!(
                "too many wrong passwords: please wait {} and try again",
                in_words(wait)
            ),
            seconds: wait.seconds(),
        }
    }

    /// Checks a sign-in's password: refused at once (429, without checking) while the
    /// account must wait after earlier wrong passwords. `stored` is the account's
    /// hash, `None` when no account has the email; `known_browser`, whether the
    /// browser signed in to that account before (its attempts are counted apart).
    pub async fn check_password(
        &self,
        slot: SignInSlot<'_>,
        address: ClientAddress,
        email: &str,
        known_browser: bool,
        password: String,
        stored: Option<std::sync::Arc<str>>,
    ) -> Result<SignInOutcome, ApiError> {
        let account = Account {
            email: email.trim().to_lowercase(),
            known_browser,
        };
        if let Err(wait) = self.by_account.check(&account, Instant::now()) {
            return Err(self.too_soon(address, wait));
        }
        let checked = self.hasher.verify(password, stored).await;
        drop(slot);
        match checked {
            Err(hasher::NotChecked::Busy) => {
                self.tally.note(Refused::SignInBusy, Some(address.0));
                Err(ApiError::Busy)
            }
            Ok(true) => {
                self.by_account.forgive(&account);
                Ok(SignInOutcome::Right)
            }
            Ok(false) => {
                self.tally.note(Refused::WrongPassword, Some(address.0));
                let now = Instant::now();
                self.by_address.fail(&address.0, now);
                let failures = self.by_account.fail(&account, now);
                Ok(SignInOutcome::Wrong { failures })
            }
        }
    }

    /// Whether the account's owner should be told of `failures` wrong passwords in a
    /// row: when they first begin to cost a wait, and each time they double after.
    pub fn worth_telling(&self, failures: u32) -> bool {
        let free = self.settings.free_failures_per_account.max(1);
        failures.is_multiple_of(free) && (failures / free).is_power_of_two()
    }

    // --- the lobby ----------------------------------------------------------------

    /// Counts a room code guess from `address` (and, for a guess that does not name
    /// its conference, against the allowance of the whole server).
    pub fn guess_room_code(
        &self,
        address: ClientAddress,
        names_conference: bool,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        let by_address = self.code_guesses_by_address.take(&address.0, now);
        let result = by_address.and_then(|()| {
            if names_conference {
                Ok(())
            } else {
                self.code_guesses.take(&(), now)
            }
        });
        result.map_err(|wait| {
            self.tally.note(Refused::RoomCodeTooSoon, Some(address.0));
            ApiError::TryLater {
                status: axum::http::StatusCode::TOO_MANY_REQUESTS,
                sentence: format!(
                    "too many room codes have been tried just now: please wait {} and check the code on the screen, or ask the chair for a personal link",
                    in_words(wait)
                ),
                seconds: wait.seconds(),
            }
        })
    }

    /// A room code that named no open meeting.
    pub fn unknown_room_code(&self, address: ClientAddress) {
        self.tally.note(Refused::UnknownRoomCode, Some(address.0));
    }

    /// Whether someone from `address` may take a place in a lobby whose waiting people
    /// are `waiting`: one address takes only its share, and entries from it are
    /// limited in time too.
    pub fn lobby_place(
        &self,
        address: ClientAddress,
        waiting: &[ParticipantId],
    ) -> Result<(), ApiError> {
        let refuse = |sentence: &str| {
            self.tally.note(Refused::LobbyRefused, Some(address.0));
            ApiError::TryLater {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                sentence: sentence.to_owned(),
                seconds: 30,
            }
        };
        if waiting.len() >= self.settings.lobby_waiting {
            return Err(refuse(
                "the lobby is full just now: please ask the chair to let you in, or for a personal link",
            ));
        }
        let from_here = waiting
            .iter()
            .filter(|id| self.entrant_address(**id) == Some(address.0))
            .count();
        if from_here >= self.settings.lobby_waiting_per_address {
            return Err(refuse(
                "too many people are waiting to join from your network: please ask the chair to let you in, or for a personal link",
            ));
        }
        if let Err(wait) = self
            .lobby_entries_by_address
            .take(&address.0, Instant::now())
        {
            self.tally.note(Refused::LobbyRefused, Some(address.0));
            return Err(ApiError::TryLater {
                status: axum::http::StatusCode::TOO_MANY_REQUESTS,
                sentence: format!(
                    "too many people have asked to join from your network just now: please wait {}, or ask the chair for a personal link",
                    in_words(wait)
                ),
                seconds: wait.seconds(),
            });
        }
        Ok(())
    }

    /// Remembers where someone who asked to join came from.
    pub fn entered(&self, id: ParticipantId, address: ClientAddress) {
        let mut entrants = self.entrants.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entrants.len() >= self.settings.keys_remembered {
            entrants.retain(|_, (_, at)| now.duration_since(*at) < ENTRANT_REMEMBERED);
        }
        if entrants.len() < self.settings.keys_remembered {
            entrants.insert(id, (address.0, now));
        }
    }

    /// The address someone who asked to join came from, if this node remembers it.
    pub fn entrant_address(&self, id: ParticipantId) -> Option<IpAddr> {
        let entrants = self.entrants.lock().unwrap_or_else(|e| e.into_inner());
        entrants
            .get(&id)
            .filter(|(_, at)| at.elapsed() < ENTRANT_REMEMBERED)
            .map(|(address, _)| *address)
    }
}

/// A sign-in's place among those being checked or waiting to be.
pub struct SignInSlot<'a>(#[allow(dead_code)] tokio::sync::SemaphorePermit<'a>);

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    Right,
    /// Wrong, the account's `failures`-th in a row.
    Wrong {
        failures: u32,
    },
}

/// An address as itself, an IPv4 address mapped into IPv6 as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A wait in words: "3 seconds", "2 minutes".
fn in_words(wait: Wait) -> String {
    let seconds = wait.seconds();
    match seconds {
        1 => "a second".to_owned(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}
