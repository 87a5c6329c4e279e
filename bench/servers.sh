# Starting and stopping the servers under test. Sourced by bench/peers.sh and
# bench/smoke.sh. Every server listens on 127.0.0.1 on a free port and is stopped by
# stop_server (and by the callers' exit traps).
#
# After start_server: SERVER_PID, SERVER_PORT and LOAD_ARGS (the generator's
# target and address, plus the chair for Roundtable) are set.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="${PEERS_DIR:-$BENCH_DIR/peers}"
# The password of the throwaway chair account created in each fresh data directory.
export ROUNDTABLE_LOAD_CHAIR_PASSWORD='load generator chair password'
CHAIR_EMAIL='load.chair@example.org'

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts connections there, for at most 30 s.
wait_port() {
    local deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        if ((SECONDS > deadline)); then
            echo "nothing listens on 127.0.0.1:$1 after 30 s" >&2
            return 1
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "the server exited before listening; its log:" >&2
            cat "$SERVER_LOG" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

# start_server KIND DATA_DIR: KIND is roundtable, y-websocket, y-websocket-leveldb,
# hocuspocus or y-sweet. ROUNDTABLE_BIN must name the roundtable binary for KIND
# roundtable.
start_server() {
    local kind=$1 data=$2
    mkdir -p "$data"
    SERVER_PORT=$(free_port)
    SERVER_LOG="$data/server.log"
    # The generator's target is the protocol spoken; a variant of a server speaks
    # its protocol.
    LOAD_ARGS=(--target "${kind%-leveldb}" --addr "127.0.0.1:$SERVER_PORT")
    case $kind in
        roundtable)
            printf '%s' "$ROUNDTABLE_LOAD_CHAIR_PASSWORD" |
                "$ROUNDTABLE_BIN" --data-dir "$data" chair add --email "$CHAIR_EMAIL" --name 'Load Chair' >/dev/null
            # Every load client comes from 127.0.0.1: lift the per-address share.
            ROUNDTABLE_LOG=warn "$ROUNDTABLE_BIN" --data-dir "$data" serve \
                --listen "127.0.0.1:$SERVER_PORT" --client-dir "$data/no-client" \
                --max-connections-per-address 100000 >"$SERVER_LOG" 2>&1 &
            LOAD_ARGS+=(--chair-email "$CHAIR_EMAIL")
            ;;
        y-websocket)
            # No YPERSISTENCE: the server as it comes, keeping documents in memory.
            HOST=127.0.0.1 PORT=$SERVER_PORT \
                node "$PEERS_DIR/node/node_modules/@y/websocket-server/src/server.js" >"$SERVER_LOG" 2>&1 &
            ;;
        y-websocket-leveldb)
            # Its own persistence: every update is appended to LevelDB as it is
            # applied, without waiting for the write before relaying.
            YPERSISTENCE="$data/leveldb" HOST=127.0.0.1 PORT=$SERVER_PORT \
                node "$PEERS_DIR/node/node_modules/@y/websocket-server/src/server.js" >"$SERVER_LOG" 2>&1 &
            ;;
        hocuspocus)
            PORT=$SERVER_PORT node "$PEERS_DIR/node/hocuspocus-server.mjs" >"$SERVER_LOG" 2>&1 &
            ;;
        y-sweet)
            # With a store directory, as deployed: it writes documents there on its
            # checkpoint interval (10 s by default).
            RUST_LOG=warn "$PEERS_DIR/y-sweet/bin/y-sweet" serve "$data/store" \
                --host 127.0.0.1 --port "$SERVER_PORT" >"$SERVER_LOG" 2>&1 &
            ;;
        *)
            echo "unknown server kind: $kind" >&2
            return 2
            ;;
    esac
    SERVER_PID=$!
    wait_port "$SERVER_PORT"
}

stop_server() {
    if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
