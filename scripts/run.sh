#!/usr/bin/env bash
# Builds everything Roundtable needs (the browser client to wasm, the server) and runs
# `roundtable serve` with its defaults: http://127.0.0.1:8080, SQLite in ./data.
# Extra arguments go to `roundtable serve` (see `roundtable serve --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

bash scripts/build-client.sh
cargo build --release -p roundtable-server --bin roundtable

cat >&2 <<'MSG'
==> Starting Roundtable on http://127.0.0.1:8080
    To create a chair account (in another terminal):
      printf '%s' 'a password of 12 or more characters' | \
        target/release/roundtable chair add --email you@example.org --name 'Your Name'
MSG
exec target/release/roundtable serve "$@"
