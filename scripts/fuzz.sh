#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each for a bounded time over the
# committed corpus, failing on any crash, hang or out-of-memory.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (or FUZZ_SECONDS; default 30)
#   FUZZ_TARGETS="commands" bash scripts/fuzz.sh 60
#   FUZZ_SANITIZER=address bash scripts/fuzz.sh 600
#
# Without a sanitizer by default: the build takes half the time and runs three to five
# times the inputs, and the process's memory is what the server really uses. With
# AddressSanitizer (`address`), memory errors in unsafe code (yrs, SQLite) are caught
# too; worth it for longer runs. Each kind of build has its own target directory.
#
# Installs cargo-fuzz if it is missing; needs the nightly toolchain. Prints, for each
# target, how many inputs it ran and how fast. New inputs the fuzzer finds are kept
# only for the run, never written to fuzz/corpus/ (to grow the corpus on purpose:
# `cargo +nightly fuzz run <target> fuzz/corpus/<target>`). A failing input is written
# to fuzz/artifacts/<target>/, and with it (when the target itself finds the fault)
# every input since the target made its conference, in a sequence-* folder: the state
# an input fails in is built by those before it. Replay and shrink that sequence with
# `bash scripts/fuzz-replay.sh <target> fuzz/artifacts/<target>/sequence-… --shrink`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
say() { printf '==> %s\n' "$*" >&2; }

seconds="${1:-${FUZZ_SECONDS:-30}}"
targets="${FUZZ_TARGETS:-sync_message awareness commands}"
sanitizer="${FUZZ_SANITIZER:-none}"
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

say "building the fuzz targets (sanitizer: $sanitizer)"
started=$SECONDS
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
cargo +nightly fuzz build --sanitizer "$sanitizer" --target-dir "fuzz/target/$sanitizer"
say "built in $((SECONDS - started)) s"
bin="$root/fuzz/target/$sanitizer/$host/release"

# The database of each run lives here (in memory when /dev/shm exists), with the
# inputs the run finds; all of it goes when the script ends.
scratch="$(mktemp -d "$( [[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/roundtable-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export ROUNDTABLE_FUZZ_DIR="$scratch"

# As `cargo fuzz run` does: the bundled SQLite has two static arrays of one name,
# which AddressSanitizer takes for a violation of the one-definition rule.
# yrs reserves room for as many entries as an update says it holds before reading
# them; a reservation the allocator cannot give fails, and yrs refuses the update, as
# glibc's malloc makes it do in production. So single allocations are not limited
# (`-malloc_limit_mb`), only the memory the process really uses (`-rss_limit_mb`).
export ASAN_OPTIONS="detect_odr_violation=0:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

summary=()
failed=0
for target in $targets; do
    mkdir -p "$scratch/$target/found" "fuzz/artifacts/$target"
    log="$scratch/$target/log"
    say "fuzzing $target for $seconds s"
    status=0
    # Leak detection is off: the targets keep a server between inputs on purpose,
    # and memory is bounded by -rss_limit_mb instead. The outer timeout only guards
    # against a run that never reaches its own end.
    ROUNDTABLE_FUZZ_HISTORY="fuzz/artifacts/$target" timeout --kill-after=30 $((seconds * 2 + 120)) \
        "$bin/$target" "$scratch/$target/found" "fuzz/corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1048576 -max_len=65536 -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" \
        >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    line="$(printf '%-13s %9s executions %6s exec/s' "$target" "${runs:-?}" "${rate:-?}")"
    if ((status != 0)); then
        failed=1
        line+="  FAILED (exit $status)"
        tail -n 60 "$log" >&2
    fi
    summary+=("$line")
done

say "fuzzing, $seconds s per target:"
printf '%s\n' "${summary[@]}"
if ((failed)); then
    say "a fuzz target failed: its input is in fuzz/artifacts/"
    exit 1
fi
