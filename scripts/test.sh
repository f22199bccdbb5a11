#!/usr/bin/env bash
# `make test`: the whole test suite against a private local stack.
#
# Builds every binary and test, starts DynamoDB Local (in memory) and moto on free ports,
# creates the table, the signing key and the admin (`dexctl init`, `dexctl ensure-admin`
# with DEX_LOCAL_ADMIN_USERNAME/PASSWORD, default admin@dex.local/dex-local-admin), serves
# every function with `cargo lambda watch` on a free port, then runs the suite with
# DEX_TEST_URL and the DynamoDB/Secrets Manager endpoints exported, then
# scripts/validate-template.sh.
# Everything started here is stopped at the end. Exits non-zero if anything failed.
#
# Extra arguments go to the test runner (cargo nextest run, else cargo test), either on
# the command line or in DEX_TEST_ARGS (shell-quoted), which `make test ARGS=...` sets:
#   make test ARGS="-E test(stats)"      scripts/test.sh -E 'test(stats)'
# DEX_CONCURRENCY: instances per function (default 8). DEX_KEEP_LOGS=1 keeps the logs.
#
# After the suite, the fuzz step (scripts/fuzz.sh) runs schemathesis on every route of
# openapi.yaml against the same stack. It runs when no runner arguments are given;
# DEX_FUZZ=1 runs it with them too, DEX_FUZZ=0 skips it, DEX_FUZZ=only runs it alone.
#
# Then the secrets scan (tests/src/bin/secrets-scan.rs) looks for every secret the run made
# or sent (the local gateway captures every exchange in $DEX_CAPTURE_FILE; the test support
# appends what DEX never sees, e.g. test HATs' private keys, to $DEX_SECRETS_LEDGER) in the
# functions' log, every answer and every table item of the suite's stack: whatever ran
# there (suite and fuzz), filtered or not.
#
# Then the fault phase (scripts/faults.sh): the fault tests (package dex-faults, which the
# suite leaves out) on a stack of their own, one at a time. Same switches: it runs when no
# runner arguments are given; DEX_FAULTS=1 runs it with them too (they filter the fault
# tests as well), DEX_FAULTS=0 skips it, DEX_FAULTS=only runs it alone (no suite stack).

set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/fuzz.sh
. "$(dirname "${BASH_SOURCE[0]}")/fuzz.sh"
# shellcheck source=scripts/faults.sh
. "$(dirname "${BASH_SOURCE[0]}")/faults.sh"

CONCURRENCY="${DEX_CONCURRENCY:-8}"
RUNNER_ARGS=()
# The phases that failed, each with the file its output was kept in (phase=file), and the
# phase running now (a `die` inside it ends the run without returning to phase()).
FAILED_PHASES=()
CURRENT_PHASE=

# phase NAME CMD...: runs one phase with its output also kept in $DEX_LOG_DIR/NAME.out, so
# that the end of the run can say which tests failed (CI shows only the last lines).
# No `wait` for the tee: $! may be a service the phase started.
phase() {
    local name="$1" rc=0
    shift
    CURRENT_PHASE="$name=$DEX_LOG_DIR/$name.out"
    "$@" > >(tee "$DEX_LOG_DIR/$name.out") 2>&1 || rc=$?
    CURRENT_PHASE=
    if ((rc != 0)); then
        FAILED_PHASES+=("$name=$DEX_LOG_DIR/$name.out")
        log "$name FAILED (exit $rc)"
    fi
    return "$rc"
}

# The failing tests of each failed phase (nextest's and cargo test's failure lines, the
# fuzzer's failing operations, the scan's verdict), last, where a CI log's tail shows them.
failure_summary() {
    local entry name file
    # A phase's tee may still be writing its last lines.
    sleep 0.3
    for entry in "${FAILED_PHASES[@]}" ${CURRENT_PHASE:+"$CURRENT_PHASE"}; do
        name="${entry%%=*}"
        file="${entry#*=}"
        printf '==> %s failed; its output is in %s. What failed:\n' "$name" "$file" >&2
        grep -E '^ *(FAIL|TIMEOUT|SIGSEGV|SIGABRT|SIGKILL|LEAK-FAIL|ABORT) \[|^test .* FAILED$|^thread .* panicked|^_+ [A-Z]+ /|^ *[0-9]+ (failed|errored)|^secrets scan|^==> .*(FAILED|ERROR)' \
            "$file" 2>/dev/null | sort -u | tail -n 30 | sed 's/^/    /' >&2 || true
    done
}

# DEX_TEST_ARGS split the way a shell would ("-E test(a) | test(b)" needs quotes there).
parse_runner_args() {
    RUNNER_ARGS=("$@")
    [[ -n ${DEX_TEST_ARGS:-} ]] || return 0
    mapfile -d '' -O "${#RUNNER_ARGS[@]}" RUNNER_ARGS < <(python3 -c '
import shlex, sys
for arg in shlex.split(sys.argv[1]):
    sys.stdout.write(arg + "\0")
' "$DEX_TEST_ARGS")
}

# Three distinct free ports: DynamoDB Local, moto, the DEX.
pick_ports() {
    local port
    local -a ports=()
    while ((${#ports[@]} < 3)); do
        port="$(free_port)"
        [[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
    done
    DYNAMODB_PORT="${ports[0]}"
    MOTO_PORT="${ports[1]}"
    export DEX_PORT="${ports[2]}"
}

# What both the suite's stack and the fault phase's run with.
export_test_settings() {
    export DEX_HAT_SCHEME=http
    export DEX_HAT_RESOLVE=127.0.0.1
    # Short HAT timeout so the slow-HAT test is quick; a 1 s key cache so re-key tests can
    # wait for it (the default, 60 s, is what deployments and benchmarks use).
    export DEX_HAT_TIMEOUT_SECS=2
    export DEX_HAT_KEY_CACHE_SECS=1
    export DEX_STATS_CACHE_SECS=1
    # One deadline for a request's HAT calls (docs/decisions.md §6), short for the same reason.
    export DEX_HAT_BUDGET_SECS=6
    # update-application starts pushes for 1 s per call, so a few hundred test HATs with
    # slow ones among them need the cursor (tests/tests/update_application_e2e.rs).
    export DEX_PUSH_BUDGET_SECS=1
    # Every test and the fuzzer log in from 127.0.0.1: the per-address failed-login limit
    # (shown by the rules tests) would lock the whole suite out. The per-username one keeps
    # its default and abuse_e2e shows it over HTTP.
    export DEX_LOGIN_SOURCE_FAILURES=1000000
}

start_stack() {
    export DEX_TABLE=dex-test
    export DEX_PUBLIC_URL="http://127.0.0.1:$DEX_PORT"
    export_stack_env "$DYNAMODB_PORT" "$MOTO_PORT"
    # The secrets scan's inputs (the gateway and every test process read them at start).
    export DEX_CAPTURE_FILE="$DEX_LOG_DIR/exchanges.jsonl"
    export DEX_SECRETS_LEDGER="$DEX_LOG_DIR/secrets.ledger"
    log "test stack settings (logs in $DEX_LOG_DIR):"
    print_stack_env
    start_dynamodb "$DYNAMODB_PORT"
    start_moto "$MOTO_PORT"
    wait_for_port "$DYNAMODB_PORT" dynamodb 60
    wait_for_port "$MOTO_PORT" moto 60
}

# Everything is built before the stack starts: the watch then never compiles while a
# test waits for an answer, and the test binaries do not compile while functions run.
build_all() {
    log "cargo build --workspace --bins"
    cargo build --workspace --bins
    log "cargo test --workspace --no-run (the test binaries)"
    cargo test --workspace --no-run -q
}

# The table, the signing key and the bootstrap admin the suites log in as.
init_stack() {
    export DEX_LOCAL_ADMIN_USERNAME="${DEX_LOCAL_ADMIN_USERNAME:-admin@dex.local}"
    export DEX_LOCAL_ADMIN_PASSWORD="${DEX_LOCAL_ADMIN_PASSWORD:-dex-local-admin}"
    log "dexctl init (table $DEX_TABLE)"
    cargo run -q -p dexctl -- init
    log "dexctl ensure-admin ($DEX_LOCAL_ADMIN_USERNAME)"
    cargo run -q -p dexctl -- ensure-admin
}

serve() {
    local watch_port
    watch_port="$(free_port)"
    log "serving every function on 127.0.0.1:$DEX_PORT ($CONCURRENCY instances per function;" \
        "cargo lambda watch on $watch_port behind tools/local-gateway)"
    start_bg serve cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$watch_port" \
        --concurrency "$CONCURRENCY"
    start_gateway "$DEX_PORT" "$watch_port"
    wait_for_http "http://127.0.0.1:$DEX_PORT/publickey" serve 180
    export DEX_TEST_URL="http://127.0.0.1:$DEX_PORT"
}

run_suite() {
    # The fault tests stop this stack's dependencies: they run in their own phase.
    local -a runner=(cargo test --workspace --exclude dex-faults --no-fail-fast)
    if cargo nextest --version >/dev/null 2>&1; then
        runner=(cargo nextest run --workspace --exclude dex-faults --no-fail-fast)
    fi
    log "${runner[*]} ${RUNNER_ARGS[*]} (DEX_TEST_URL=$DEX_TEST_URL)"
    "${runner[@]}" "${RUNNER_ARGS[@]}"
}

validate_template() {
    local script="$DEX_ROOT/scripts/validate-template.sh"
    if [[ ! -x $script ]]; then
        log "scripts/validate-template.sh not there (or not executable): skipped"
        return 0
    fi
    log "scripts/validate-template.sh"
    "$script"
}

faults_wanted() {
    case "${DEX_FAULTS:-}" in
    0) return 1 ;;
    1 | only) return 0 ;;
    *) ((${#RUNNER_ARGS[@]} == 0)) ;;
    esac
}

# After everything that sends traffic to the suite's stack: the secrets of the run in clear in
# the functions' log, an answer or the table fail it (the report names each by kind and hash,
# never in clear).
scan_secrets() {
    log "secrets scan (capture $DEX_CAPTURE_FILE, ledger $DEX_SECRETS_LEDGER)"
    DEX_LOG_DIR="$DEX_LOG_DIR" "$(cargo_target_dir)/debug/secrets-scan"
}

fuzz_wanted() {
    case "${DEX_FUZZ:-}" in
    0) return 1 ;;
    1 | only) return 0 ;;
    *) ((${#RUNNER_ARGS[@]} == 0)) ;;
    esac
}

# Called by the EXIT trap once everything is stopped.
on_exit_hook() {
    local rc="$1"
    if [[ $rc -ne 0 ]]; then
        show_log serve 40
        failure_summary
        log "FAILED (exit $rc); logs kept in $DEX_LOG_DIR"
    elif [[ ${DEX_KEEP_LOGS:-0} == 1 ]]; then
        log "all passed; logs in $DEX_LOG_DIR"
    else
        rm -rf "$DEX_LOG_DIR"
        log "all passed"
    fi
}

main() {
    local failed=0
    cd "$DEX_ROOT"
    parse_runner_args "$@"
    ensure_tools
    build_all
    DEX_LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dex-test.XXXXXX")"
    install_cleanup_trap
    export_test_settings
    if [[ ${DEX_FAULTS:-} != only ]]; then
        pick_ports
        start_stack
        init_stack
        serve
        if [[ ${DEX_FUZZ:-} != only ]]; then
            phase tests run_suite || failed=1
        fi
        if fuzz_wanted; then
            phase fuzz run_fuzz || failed=1
        fi
        phase secrets-scan scan_secrets || failed=1
    fi
    if faults_wanted; then
        phase faults run_faults "${RUNNER_ARGS[@]}" || failed=1
    fi
    phase template validate_template || failed=1
    return "$failed"
}

main "$@"
