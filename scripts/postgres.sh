#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: a fresh data directory, a free port on
# 127.0.0.1, trust authentication for the user `rt`, stopped (and its directory
# removed) when the shell that started it exits.
#
# Source it, then call `postgres_start`: it exports ROUNDTABLE_TEST_DATABASE_URL, the
# cluster's maintenance database, in which each test creates a database of its own.
#
#     source scripts/postgres.sh && postgres_start
#     ROUNDTABLE_TEST_ENGINE=postgres cargo test -p roundtable-server --test api
#
# Run as a script (`bash scripts/postgres.sh`), it starts a cluster, prints the
# variable to export, and keeps the cluster until interrupted.

postgres_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$dir" ]]; then
        printf '==> installing PostgreSQL\n' >&2
        if [[ $(id -u) -eq 0 ]]; then
            env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
            env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
        else
            sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
            sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
        fi
        dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    printf '%s\n' "$dir"
}

# A port nothing listens on now: one that refuses a connection.
postgres_free_port() {
    local port
    while true; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return
        fi
    done
}

# initdb and pg_ctl refuse to run as root: as root, they run as `nobody`.
postgres_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

postgres_start() {
    local bin port
    bin="$(postgres_bin)"
    port="$(postgres_free_port)"
    ROUNDTABLE_TEST_POSTGRES_DIR="$(mktemp -d /tmp/roundtable-postgres.XXXXXX)"
    export ROUNDTABLE_TEST_POSTGRES_DIR
    if [[ $(id -u) -eq 0 ]]; then
        chown nobody "$ROUNDTABLE_TEST_POSTGRES_DIR"
    fi
    trap postgres_stop EXIT
    postgres_as_owner "$bin/initdb" -D "$ROUNDTABLE_TEST_POSTGRES_DIR/data" -A trust -U rt \
        --no-sync >"$ROUNDTABLE_TEST_POSTGRES_DIR/initdb.log"
    # fsync off: the cluster is thrown away, and every test creates a database (a
    # copy of template1) that would otherwise be flushed to disk each time. Roundtable
    # still asks for synchronous_commit on its own connections.
    postgres_as_owner "$bin/pg_ctl" -D "$ROUNDTABLE_TEST_POSTGRES_DIR/data" -w \
        -l "$ROUNDTABLE_TEST_POSTGRES_DIR/server.log" \
        -o "-k $ROUNDTABLE_TEST_POSTGRES_DIR -p $port -c listen_addresses=127.0.0.1 -c fsync=off" \
        start >/dev/null
    export ROUNDTABLE_TEST_DATABASE_URL="postgres://rt@127.0.0.1:$port/postgres"
    printf '==> PostgreSQL for the tests at %s\n' "$ROUNDTABLE_TEST_DATABASE_URL" >&2
}

postgres_stop() {
    local bin
    if [[ -z "${ROUNDTABLE_TEST_POSTGRES_DIR:-}" ]]; then
        return 0
    fi
    bin="$(postgres_bin)"
    postgres_as_owner "$bin/pg_ctl" -D "$ROUNDTABLE_TEST_POSTGRES_DIR/data" -m fast -w stop \
        >/dev/null 2>&1 || true
    rm -rf "$ROUNDTABLE_TEST_POSTGRES_DIR"
    unset ROUNDTABLE_TEST_POSTGRES_DIR ROUNDTABLE_TEST_DATABASE_URL
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    postgres_start
    printf 'export ROUNDTABLE_TEST_DATABASE_URL=%s\n' "$ROUNDTABLE_TEST_DATABASE_URL"
    printf 'Stop with Ctrl-C.\n' >&2
    trap 'exit 0' INT TERM
    while sleep 3600; do :; done
fi
