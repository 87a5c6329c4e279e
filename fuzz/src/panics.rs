//! Panics under fuzzing.
//!
//! libFuzzer's Rust glue makes every panic abort the process at once. The server,
//! though, catches a panic inside yrs while it decodes or applies a client's update on
//! purpose: `Room::receive` answers that the update is not valid and reloads the
//! document. Such a panic is handled, not a crash. [`watch`] replaces the hook with one
//! that records each panic; after each input the target says whether the server
//! handled the message in the way that covers a panic ([`settle`]). Any other panic,
//! and any panic that escapes, aborts the process with its message, so libFuzzer
//! keeps the input as a crash.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

struct Recorded {
    message: String,
    location: String,
    thread: String,
    backtrace: Option<String>,
}

static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());
/// Locations of handled panics already reported, so each is printed once.
static REPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records panics instead of aborting. `ROUNDTABLE_FUZZ_BACKTRACE=1` keeps a
/// backtrace of each (slow; for looking at a crash).
pub fn watch() {
    let backtraces = std::env::var_os("ROUNDTABLE_FUZZ_BACKTRACE").is_some();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".to_owned());
        let location = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let thread = std::thread::current()
            .name()
            .unwrap_or("(unnamed)")
            .to_owned();
        let backtrace = backtraces.then(|| std::backtrace::Backtrace::force_capture().to_string());
        lock(&RECORDED).push(Recorded {
            message,
            location,
            thread,
            backtrace,
        });
    }));
}

fn print(recorded: &[Recorded]) {
    for panic in recorded {
        eprintln!(
            "panicked at {} on thread {}: {}",
            panic.location, panic.thread, panic.message
        );
        if let Some(backtrace) = &panic.backtrace {
            eprintln!("{backtrace}");
        }
    }
}

/// Fails the input: prints why, and any panics recorded, writes the inputs that led
/// here ([`crate::history`]), then aborts.
pub fn fail(why: &str) -> ! {
    print(&std::mem::take(&mut *lock(&RECORDED)));
    eprintln!("fuzz target failed: {why}");
    crate::history::write_out();
    std::process::abort();
}

/// Runs one input; a panic that escapes it fails the input.
pub fn run<R>(input: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(AssertUnwindSafe(input)) {
        Ok(result) => result,
        Err(_) => fail("a panic escaped"),
    }
}

/// Called after each message: panics since the last call are fine only if
/// `handled` (the server answered in the way that covers a panic it caught).
/// Each handled panic's location is printed once, to show what yrs still panics on.
pub fn settle(handled: bool, what: &str) {
    let recorded = std::mem::take(&mut *lock(&RECORDED));
    if recorded.is_empty() {
        return;
    }
    if !handled {
        print(&recorded);
        eprintln!("fuzz target failed: a panic while handling {what}");
        crate::history::write_out();
        std::process::abort();
    }
    let mut reported = lock(&REPORTED);
    for panic in recorded {
        if reported.insert(panic.location.clone()) {
            eprintln!(
                "note: the server caught a panic at {} ({}), as it means to",
                panic.location, panic.message
            );
        }
    }
}
