#!/usr/bin/env bash
# `make load`: the load test (not part of `make test`). See README "Load".
#
# Builds the functions (debug: a release build of every function takes far longer here than
# the run itself; the figures in the README say which build they measure), starts a private
# stack like scripts/test.sh (DynamoDB Local in memory, moto, `cargo lambda watch` behind
# tools/local-gateway, on free loopback ports), creates the table, the signing key and the
# admin, and runs tools/load (dex-load) for LOAD_SECS seconds (default 180) after a warm-up.
# Arguments go to dex-load: scripts/load.sh --quick, --secs 60 --hats 500 --workers 48, --help.
# Exits non-zero when a total is not exact, a HAT chain does not verify, or any answer was a
# 5xx, missing, or a status the mix does not expect. Everything started here is stopped.
#
# DEX_CONCURRENCY: instances per function (default 8). DEX_STATS_CACHE_SECS: the public
# reads' freshness (default 2, the deployment's). DEX_KEEP_LOGS=1 keeps the logs.

set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONCURRENCY="${DEX_CONCURRENCY:-8}"

on_exit_hook() {
    local rc="$1"
    if [[ $rc -ne 0 ]]; then
        show_log serve 40
        log "load test FAILED (exit $rc); logs kept in $DEX_LOG_DIR"
    elif [[ ${DEX_KEEP_LOGS:-0} == 1 ]]; then
        log "load test passed; logs in $DEX_LOG_DIR"
    else
        rm -rf "$DEX_LOG_DIR"
        log "load test passed"
    fi
}

main() {
    local port dynamodb_port moto_port watch_port rc=0
    local -a ports=()
    cd "$DEX_ROOT"
    have cargo || die "cargo not found"
    ensure_curl
    ensure_java
    ensure_python_tools
    ensure_dynamodb_local
    log "cargo build --workspace --bins (debug)"
    cargo build -q --workspace --bins
    DEX_LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dex-load.XXXXXX")"
    install_cleanup_trap
    while ((${#ports[@]} < 4)); do
        port="$(free_port)"
        [[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
    done
    dynamodb_port="${ports[0]}"
    moto_port="${ports[1]}"
    export DEX_PORT="${ports[2]}"
    watch_port="${ports[3]}"

    export DEX_TABLE=dex-load
    export DEX_PUBLIC_URL="http://127.0.0.1:$DEX_PORT"
    export DEX_HAT_SCHEME=http
    export DEX_HAT_RESOLVE=127.0.0.1
    # The deployment's defaults, except the HAT key cache, which only matters for re-keys.
    export DEX_STATS_CACHE_SECS="${DEX_STATS_CACHE_SECS:-2}"
    export_stack_env "$dynamodb_port" "$moto_port"
    log "load stack settings (logs in $DEX_LOG_DIR):"
    print_stack_env
    start_dynamodb "$dynamodb_port"
    start_moto "$moto_port"
    wait_for_port "$dynamodb_port" dynamodb 60
    wait_for_port "$moto_port" moto 60

    export DEX_LOCAL_ADMIN_USERNAME="${DEX_LOCAL_ADMIN_USERNAME:-admin@dex.local}"
    export DEX_LOCAL_ADMIN_PASSWORD="${DEX_LOCAL_ADMIN_PASSWORD:-dex-local-admin}"
    cargo run -q -p dexctl -- init
    cargo run -q -p dexctl -- ensure-admin

    log "serving every function on 127.0.0.1:$DEX_PORT ($CONCURRENCY instances per function)"
    start_bg serve cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$watch_port" \
        --concurrency "$CONCURRENCY"
    start_gateway "$DEX_PORT" "$watch_port"
    wait_for_http "http://127.0.0.1:$DEX_PORT/publickey" serve 180
    export DEX_TEST_URL="http://127.0.0.1:$DEX_PORT"

    log "dex-load $*"
    cargo run -q -p dex-load -- "$@" 2>&1 | tee "$DEX_LOG_DIR/load.log" || rc=$?
    log "make load took $SECONDS s"
    return "$rc"
}

main "$@"
