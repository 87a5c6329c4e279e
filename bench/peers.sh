#!/usr/bin/env bash
# Roundtable against the Yjs servers people would otherwise pick, on one workload.
#
#   bench/peers.sh install   installs the peers from their registries into bench/peers/
#                            (npm packages; y-sweet with cargo install, a long compile)
#                            and builds roundtable and roundtable-load (release)
#   bench/peers.sh run       runs the workload against each server and summarises
#   bench/peers.sh all       both
#
# The workload is set by environment variables (defaults in brackets):
#   TARGETS   servers to run           [roundtable y-websocket hocuspocus y-sweet]
#             (also y-websocket-leveldb: @y/websocket-server storing to LevelDB)
#   ROOMS     rooms                    [20]
#   CLIENTS   clients per room         [20]
#   RATES     edits/s per client, each a separate run   [0.25 0.5 1 2 4]
#   DURATION  seconds of editing per run                [8]
#   REPEATS   runs per server and rate                  [3]
#   NEW_ITEM_EVERY  a client starts a new board item every N edits  [40]
#   RESULTS   where the JSON reports go  [bench/results/<date-time>]
# Every run starts a fresh server on a free 127.0.0.1 port and stops it afterwards.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/bench/servers.sh"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# Pinned so a comparison can be repeated. @y/websocket-server 0.1.1 is the newest
# release built on the stable Yjs 13 line (0.1.5 moved to a Yjs 14 pre-release).
Y_WEBSOCKET_SERVER=0.1.1
YJS=13.6.33
HOCUSPOCUS=4.7.0
Y_SWEET=0.9.1

target_dir="${CARGO_TARGET_DIR:-$root/target/loadgen}"
export ROUNDTABLE_BIN="$target_dir/release/roundtable"
load_bin="$target_dir/release/roundtable-load"

say() { printf '==> %s\n' "$*" >&2; }

install() {
    say "npm: @y/websocket-server $Y_WEBSOCKET_SERVER, yjs $YJS, @hocuspocus/server $HOCUSPOCUS"
    mkdir -p "$PEERS_DIR/node"
    printf '{"private": true, "type": "module"}\n' >"$PEERS_DIR/node/package.json"
    (cd "$PEERS_DIR/node" && npm install --no-audit --no-fund --loglevel=error \
        "@y/websocket-server@$Y_WEBSOCKET_SERVER" "yjs@$YJS" "@hocuspocus/server@$HOCUSPOCUS")
    cp "$root/bench/hocuspocus-server.mjs" "$PEERS_DIR/node/"

    if [[ -x "$PEERS_DIR/y-sweet/bin/y-sweet" ]]; then
        say "y-sweet is installed"
    else
        # Without --locked it does not build: newer dependency versions break it.
        say "cargo install y-sweet $Y_SWEET (a long compile, at low priority)"
        nice -n 19 cargo install y-sweet --version "$Y_SWEET" --locked --root "$PEERS_DIR/y-sweet"
    fi

    say "building roundtable and roundtable-load (release)"
    (cd "$root" && CARGO_TARGET_DIR="$target_dir" nice -n 10 \
        cargo build --release -p roundtable-server -p roundtable-loadgen)
}

run() {
    local targets=${TARGETS:-roundtable y-websocket hocuspocus y-sweet}
    local rooms=${ROOMS:-20} clients=${CLIENTS:-20} rates=${RATES:-0.25 0.5 1 2 4}
    local duration=${DURATION:-8} repeats=${REPEATS:-3}
    local new_item_every=${NEW_ITEM_EVERY:-40}
    local results=${RESULTS:-$root/bench/results/$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$results"
    # Global, not local: the exit trap runs after this function has returned.
    run_data=$(mktemp -d)
    trap 'stop_server; rm -rf "$run_data"' EXIT
    {
        echo "date: $(date -Iseconds)"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') × $(nproc)"
        echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
        echo "kernel: $(uname -r)"
        echo "node: $(node --version)"
        echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$results/machine.txt"
    say "results in $results"
    local target rate n
    for rate in $rates; do
        for n in $(seq 1 "$repeats"); do
            # Interleave the servers within each repeat, so a change in the
            # machine's load touches all of them alike.
            for target in $targets; do
                say "$target: $rooms rooms × $clients clients at $rate edits/s, run $n"
                rm -rf "${run_data:?}"/*
                start_server "$target" "$run_data/$target"
                "$load_bin" "${LOAD_ARGS[@]}" --rooms "$rooms" --clients "$clients" \
                    --rate "$rate" --duration "$duration" --server-pid "$SERVER_PID" \
                    --new-item-every "$new_item_every" \
                    --label "$target rate=$rate run=$n" \
                    --json "$results/$target-r$rooms-c$clients-rate$rate-run$n.json" ||
                    say "$target: the run failed (its report, if any, is kept)"
                stop_server
            done
        done
    done
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
    python3 "$root/bench/summarize.py" "$results" | tee "$results/summary.md"
}

case "${1:-}" in
    install) install ;;
    run) run ;;
    all) install && run ;;
    *)
        echo "usage: bench/peers.sh install|run|all" >&2
        exit 2
        ;;
esac
