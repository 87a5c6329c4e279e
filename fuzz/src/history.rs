//! The inputs a target ran since its conference was made, kept so that a failure can be
//! replayed and shrunk.
//!
//! A target keeps its conference across inputs, so the state an input fails in is
//! built by every input before it since the conference was made: the failing input
//! alone does not fail. Each target records every input ([`record`]) and starts the
//! record again when it makes a new conference ([`restart`]); when an input fails
//! (through [`crate::panics`]), the record is written to a directory of its own under
//! `$ROUNDTABLE_FUZZ_HISTORY` (`scripts/fuzz.sh` sets it to `fuzz/artifacts/<target>`),
//! one file per input, numbered in order. Running the target's binary on those files,
//! in that order, in one process replays the sequence; `scripts/fuzz-replay.sh`
//! does that and shrinks it.
//!
//! Failures libFuzzer itself detects (a timeout, the memory limit, a signal) end the
//! process without passing here: their sequence is not written.

use std::sync::Mutex;

/// The most inputs and bytes kept; beyond them the record stops, and a sequence
/// written out says it is incomplete.
const MOST_INPUTS: usize = 20_000;
const MOST_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct History {
    inputs: Vec<Vec<u8>>,
    bytes: usize,
    truncated: bool,
}

static HISTORY: Mutex<History> = Mutex::new(History {
    inputs: Vec::new(),
    bytes: 0,
    truncated: false,
});

fn lock() -> std::sync::MutexGuard<'static, History> {
    HISTORY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records an input, before it runs.
pub fn record(input: &[u8]) {
    let mut history = lock();
    if history.truncated
        || history.inputs.len() >= MOST_INPUTS
        || history.bytes + input.len() > MOST_BYTES
    {
        history.truncated = true;
        return;
    }
    history.bytes += input.len();
    history.inputs.push(input.to_vec());
}

/// Starts the record again: the target made a new conference, and what comes next
/// does not depend on the inputs before.
pub fn restart() {
    *lock() = History::default();
}

/// Writes the record out, if `$ROUNDTABLE_FUZZ_HISTORY` names a directory; says where.
pub(crate) fn write_out() {
    let Some(root) = std::env::var_os("ROUNDTABLE_FUZZ_HISTORY") else {
        return;
    };
    let history = lock();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = std::path::Path::new(&root).join(format!("sequence-{stamp}-{}", std::process::id()));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        for (i, input) in history.inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("{i:06}")), input)?;
        }
        if history.truncated {
            std::fs::write(
                dir.join("INCOMPLETE"),
                "the record stopped early: replaying these inputs may not fail\n",
            )?;
        }
        Ok(())
    });
    match written {
        Ok(()) => eprintln!(
            "the {} inputs since the conference was made are in {}{}; replay them with \
             `bash scripts/fuzz-replay.sh <target> {}`",
            history.inputs.len(),
            dir.display(),
            if history.truncated {
                " (incomplete)"
            } else {
                ""
            },
            dir.display()
        ),
        Err(e) => eprintln!("could not write the inputs to {}: {e}", dir.display()),
    }
}
