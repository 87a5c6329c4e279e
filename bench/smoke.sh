#!/usr/bin/env bash
# A few seconds of load against the real roundtable binary: 2 rooms of 3 clients
# typing for 2 s. Fails if the generator fails, which it does when no edit reached
# every other client of its room. Used by scripts/test.sh; not a benchmark.
#
# Usage: bench/smoke.sh BIN_DIR   (holding roundtable and roundtable-load)
set -euo pipefail
bin_dir=$(cd "${1:?usage: bench/smoke.sh BIN_DIR}" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
export ROUNDTABLE_BIN="$bin_dir/roundtable"

data=$(mktemp -d)
trap 'stop_server; rm -rf "$data"' EXIT
start_server roundtable "$data"
timeout 60 "$bin_dir/roundtable-load" "${LOAD_ARGS[@]}" \
    --rooms 2 --clients 3 --rate 5 --duration 2 --drain 3 --strict --server-pid "$SERVER_PID"
