#!/usr/bin/env bash
# Runs every test on a fresh machine: formatting and lints, the Rust unit and
# integration tests (the HTTP API's on SQLite and on PostgreSQL), the browser tests
# in Chromium, and each fuzz target for a while. Installs what is missing (wasm
# target and tools, PostgreSQL, Chromium, npm packages, cargo-fuzz) as it goes, and
# starts a throw-away PostgreSQL cluster for the run (scripts/postgres.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
started=$SECONDS
say() { printf '==> %s\n' "$*" >&2; }
# Where cargo puts its output: target/, unless CARGO_TARGET_DIR or a cargo config
# says otherwise.
target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        rustup component add "$component"
    fi
done

say "formatting"
cargo fmt --all -- --check

say "building the browser client"
bash scripts/build-client.sh

say "lints"
# The browser apps are linted for the target they ship to; linting it natively too would
# compile its whole dependency tree a second time.
cargo clippy -p roundtable-shared -p roundtable-server --all-targets -- -D warnings
cargo clippy -p roundtable-client -p roundtable-phone --features roundtable-phone/entry \
    --target wasm32-unknown-unknown --all-targets -- -D warnings

# The long mode (ROUNDTABLE_TEST_LONG=1): 200 crash cycles instead of 20, and each
# fuzz target for ten minutes instead of 20 s.
long="${ROUNDTABLE_TEST_LONG:-}"

say "PostgreSQL for the tests"
# Stopped when this script exits, however it exits.
source scripts/postgres.sh
postgres_start

say "Rust tests"
# The API suite on SQLite here; tests/storage.rs on both engines.
if [[ -n "$long" ]]; then
    ROUNDTABLE_CRASH_CYCLES=200 cargo test --workspace
else
    cargo test --workspace
fi

say "the HTTP API's tests on PostgreSQL"
ROUNDTABLE_TEST_ENGINE=postgres cargo test -p roundtable-server --test api

say "several server nodes on one PostgreSQL database, with the takeover time"
# Also run by `cargo test --workspace` above, quietly; again here to print what it
# measured.
cargo test -p roundtable-server --test nodes -- --nocapture

say "the patched yrs's own tests"
bash scripts/test-vendored-yrs.sh

say "browser and protocol tests"
if [[ ! -x /usr/bin/chromium ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
cargo build -p roundtable-server --bin roundtable
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd e2e && ROUNDTABLE_BIN="$target_dir/debug/roundtable" npm test)

say "load generator: lints and a few seconds against the real server"
# Not a benchmark: it fails if the generator is wrong or an edit does not reach
# every other client.
cargo clippy -p roundtable-loadgen --all-targets -- -D warnings
cargo build -p roundtable-loadgen
bash bench/smoke.sh "$target_dir/debug"

say "fuzzing"
bash scripts/fuzz.sh "$([[ -n "$long" ]] && echo 600 || echo 20)"

say "all tests passed in $((SECONDS - started)) s"
