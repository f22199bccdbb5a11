#!/usr/bin/env bash
# The fault phase of `make test` (scripts/test.sh sources this file and calls run_faults
# after the suite and the fuzz step): the fault tests (tests/faults, package dex-faults)
# stop DynamoDB, cut Secrets Manager off and kill function processes, which would break
# every other test running on the same stack, so they get a stack of their own and run one
# at a time:
#
# - tools: fault-ctl (tests/faults/src/bin/fault-ctl.rs) runs DynamoDB Local on disk
#   (-dbPath, not -inMemory) as its child, so a test can kill it and start it again on the
#   same port and data, and holds the Secrets Manager port in front of this phase's moto,
#   which a test can cut (refused, every connection dropped), stall or open again;
# - its own `cargo lambda watch` with ONE instance per function, so a test can name the
#   process that serves a function (a descendant of the watch, DEX_FAULTS_WATCH_PID) and
#   show that it is still the same process after a fault (no cold start);
# - the debug binaries of the functions killed mid-request (tests/faults/tests/killed_e2e.rs),
#   built here (a no-op after `make test`'s build_all): the watch neither answers a request
#   whose process died nor replaces the process, so those tests run the binary themselves
#   under a local Lambda Runtime API (dex_tests::runtime_api), SIGKILL it mid-request and
#   hand the retry to a new process;
# - its own table (dexctl init) and admin (dexctl ensure-admin).
#
# Environment for the tests: DEX_TEST_URL, the AWS_* endpoints (Secrets Manager = the gate),
# DEX_FAULTS_CONTROL (host:port of fault-ctl), DEX_FAULTS_WATCH_PID, DEX_FAULTS_BIN_DIR
# (the functions' debug binaries), DEX_FAULTS_LOG_DIR (where the killed functions log).

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Distinct free ports for: DynamoDB, moto, the Secrets Manager gate, fault-ctl, the watch,
# the DEX.
faults_ports() {
    local port
    FAULT_PORTS=()
    while ((${#FAULT_PORTS[@]} < 6)); do
        port="$(free_port)"
        [[ " ${FAULT_PORTS[*]} " == *" $port "* ]] || FAULT_PORTS+=("$port")
    done
}

# faults_warm_instances WATCH_PORT: starts the one instance of every function but jwks
# (whose first request must be a cold start, for the cold-start test) before any fault, by
# invoking it once with its sample event as committed (placeholders unfilled: refused,
# nothing changes). cargo lambda watch now and then never runs an instance it spawns (seen
# once: hat-log, first asked for right after DynamoDB came back, never ran, and every later
# request to it went unanswered); here that shows at once, and the watch is started again.
faults_warm_instances() {
    local port="$1" dir fn
    for dir in "$DEX_ROOT"/functions/*/; do
        fn="$(basename "$dir")"
        [[ $fn != jwks && -f $DEX_ROOT/events/$fn.json ]] || continue
        if ! curl -s -m 30 -o /dev/null -X POST \
            "http://127.0.0.1:$port/2015-03-31/functions/$fn/invocations" \
            --data-binary "@$DEX_ROOT/events/$fn.json"; then
            warn "faults: $fn's instance did not answer its warm-up within 30 s"
            return 1
        fi
    done
}

# faults_start_watch WATCH_PORT: the fault stack's cargo lambda watch, its instances warm.
faults_start_watch() {
    local port="$1" attempt pid
    for attempt in 1 2; do
        start_bg faults-serve cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$port" \
            --concurrency 1
        wait_for_port "$port" faults-serve 120
        log "faults: starting every function's instance (watch attempt $attempt)"
        faults_warm_instances "$port" && return 0
        pid="${DEX_SVC_PID[faults-serve]}"
        # start_bg truncates the log: keep this attempt's, to see why the instance hung.
        cp "${DEX_SVC_LOG[faults-serve]}" "$DEX_LOG_DIR/faults-serve.attempt$attempt.log" || true
        warn "faults: stopping the watch (pid $pid) to start it again" \
            "(its log: $DEX_LOG_DIR/faults-serve.attempt$attempt.log)"
        kill -TERM $(descendants "$pid" | sort -u) "$pid" 2>/dev/null || true
        kill -TERM -- "-$pid" 2>/dev/null || true
        sleep 3
        kill -KILL $(descendants "$pid" | sort -u) 2>/dev/null || true
    done
    return 1
}

# run_faults [RUNNER_ARGS...]: starts the fault stack, runs the fault tests serially.
run_faults() {
    local started=$SECONDS dir dynamodb_dir target rc=0
    local -a runner
    dir="$DEX_LOG_DIR/faults"
    mkdir -p "$dir/dynamodb"
    target="$(cargo_target_dir)" || return 1
    dynamodb_dir="$(dynamodb_local_dir)" || die "DynamoDB Local is not installed (run ensure_tools)"
    # The binaries killed_e2e runs (explicit `|| return 1`: errexit is off in here).
    log "faults: cargo build -p offer-claim -p dataplug-connect -p stats-report"
    cargo build -q -p offer-claim -p dataplug-connect -p stats-report || return 1
    export DEX_FAULTS_BIN_DIR="$target/debug" DEX_FAULTS_LOG_DIR="$dir"
    faults_ports
    local dynamodb_port="${FAULT_PORTS[0]}" moto_port="${FAULT_PORTS[1]}"
    local secrets_port="${FAULT_PORTS[2]}" control_port="${FAULT_PORTS[3]}"
    local watch_port="${FAULT_PORTS[4]}"
    export DEX_PORT="${FAULT_PORTS[5]}"
    export DEX_PUBLIC_URL="http://127.0.0.1:$DEX_PORT"
    export DEX_TABLE=dex-faults
    export_stack_env "$dynamodb_port" "$secrets_port"
    log "faults: a stack of its own (DynamoDB Local on disk in $dir/dynamodb, Secrets Manager" \
        "through fault-ctl's gate, one instance per function)"
    print_stack_env
    start_bg faults-moto moto_server -H 127.0.0.1 -p "$moto_port"
    wait_for_port "$moto_port" faults-moto 60
    start_bg faults-ctl "$target/debug/fault-ctl" "$control_port" "$secrets_port" "$moto_port" \
        "$dynamodb_port" "$dynamodb_dir" "$dir/dynamodb"
    wait_for_port "$control_port" faults-ctl 150
    export DEX_LOCAL_ADMIN_USERNAME="${DEX_LOCAL_ADMIN_USERNAME:-admin@dex.local}"
    export DEX_LOCAL_ADMIN_PASSWORD="${DEX_LOCAL_ADMIN_PASSWORD:-dex-local-admin}"
    log "faults: dexctl init, ensure-admin (table $DEX_TABLE)"
    # Explicit: a caller's `run_faults || ...` turns errexit off in here.
    cargo run -q -p dexctl -- init || return 1
    cargo run -q -p dexctl -- ensure-admin || return 1
    faults_start_watch "$watch_port" || return 1
    require_free_port "$DEX_PORT" "the fault DEX"
    start_bg faults-gateway cargo run -q -p local-gateway -- "$DEX_PORT" "$watch_port"
    wait_for_port "$DEX_PORT" faults-gateway 120
    wait_for_http "http://127.0.0.1:$DEX_PORT/publickey" faults-serve 180
    export DEX_TEST_URL="http://127.0.0.1:$DEX_PORT"
    export DEX_FAULTS_CONTROL="127.0.0.1:$control_port"
    export DEX_FAULTS_WATCH_PID="${DEX_SVC_PID[faults-serve]}"
    runner=(cargo test -p dex-faults --no-fail-fast "$@" -- --test-threads 1)
    if cargo nextest --version >/dev/null 2>&1; then
        # One test at a time: each one breaks the stack for a while.
        runner=(cargo nextest run -p dex-faults --no-fail-fast --test-threads 1 --no-tests warn "$@")
    fi
    log "faults: ${runner[*]}"
    "${runner[@]}" || rc=$?
    log "faults: finished in $((SECONDS - started))s (exit $rc)"
    return "$rc"
}
