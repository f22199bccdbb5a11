#!/usr/bin/env bash
# `make run`: the whole DEX on this machine.
#
#   DynamoDB Local on DEX_DYNAMODB_PORT (default 8001), data kept in .dex/dynamodb/
#   moto (Secrets Manager) on DEX_MOTO_PORT (default 8002), state kept in .dex/moto/
#   every function, served by `cargo lambda watch` on DEX_PORT (default 9000)
#
# Other settings: DEX_TABLE (dex), DEX_SECRETS_PREFIX (dex/), DEX_PUBLIC_URL
# (http://127.0.0.1:$DEX_PORT), DEX_HAT_SCHEME and DEX_HAT_RESOLVE (passed through),
# DEX_LOCAL_ADMIN_USERNAME (admin@dex.local), DEX_LOCAL_ADMIN_PASSWORD (dex-local-admin),
# DEX_CONCURRENCY (8 instances per function), DEX_RELEASE=1 (serve optimised builds).
# Logs: .dex/logs/. Ctrl-C stops everything this script started.
#
# The development HAT: unless DEX_DEV_HAT=0, a HAT of the test HAT cluster is served on a
# free port (tests/src/bin/dev-hat.rs, details in .dex/dev-hat.json) so that the sample
# events of the HAT endpoints succeed (`make invoke FN=stats-report`). DEX reaches it through
# DEX_HAT_SCHEME=http and DEX_HAT_RESOLVE=127.0.0.1, which are then the defaults: every HAT
# address resolves to this machine. To onboard real HATs, run with DEX_DEV_HAT=0.
#
# Secrets Manager state: moto keeps it in memory only. Its recorder
# (MOTO_ENABLE_RECORDING) appends every request to .dex/moto/recording.jsonl and, after a
# restart, POST /moto-api/recorder/replay-recording sends them again: verified with moto
# 5.2 that the secret comes back with the same value and version ids. Should a replay
# ever miss something, `dexctl init` recreates what is missing (the key would then be
# new). `make clean-local` forgets everything.

set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DATA_DIR="$DEX_ROOT/.dex"
DEX_LOG_DIR="$DATA_DIR/logs"
MOTO_RECORDING="$DATA_DIR/moto/recording.jsonl"
DYNAMODB_PORT="${DEX_DYNAMODB_PORT:-8001}"
MOTO_PORT="${DEX_MOTO_PORT:-8002}"
export DEX_PORT="${DEX_PORT:-9000}"
export DEX_LOCAL_ADMIN_USERNAME="${DEX_LOCAL_ADMIN_USERNAME:-admin@dex.local}"
export DEX_LOCAL_ADMIN_PASSWORD="${DEX_LOCAL_ADMIN_PASSWORD:-dex-local-admin}"
CONCURRENCY="${DEX_CONCURRENCY:-8}"
PROFILE_FLAGS=()
if [[ ${DEX_RELEASE:-0} == 1 ]]; then PROFILE_FLAGS=(--release); fi

start_backends() {
    start_dynamodb "$DYNAMODB_PORT" "$DATA_DIR/dynamodb"
    compact_moto_recording "$MOTO_RECORDING"
    start_moto "$MOTO_PORT" "$MOTO_RECORDING"
    wait_for_port "$DYNAMODB_PORT" dynamodb 60
    wait_for_port "$MOTO_PORT" moto 60
    replay_moto_recording "$MOTO_PORT" "$MOTO_RECORDING"
}

prepare_dex() {
    log "building every function and dexctl"
    cargo build --workspace --bins "${PROFILE_FLAGS[@]}"
    log "dexctl init: table $DEX_TABLE and the signing key under $DEX_SECRETS_PREFIX"
    cargo run -q -p dexctl -- init
    log "dexctl ensure-admin: $DEX_LOCAL_ADMIN_USERNAME"
    cargo run -q -p dexctl -- ensure-admin --enable
}

start_dev_hat() {
    [[ ${DEX_DEV_HAT:-1} != 0 ]] || return 0
    rm -f "$DATA_DIR/dev-hat.json"
    DEX_DEV_HAT_FILE="$DATA_DIR/dev-hat.json" start_bg dev-hat \
        cargo run -q "${PROFILE_FLAGS[@]}" -p dex-tests --bin dev-hat
    local waited=0
    until [[ -s $DATA_DIR/dev-hat.json ]]; do
        service_alive dev-hat || service_failed dev-hat "exited before writing .dex/dev-hat.json"
        ((waited++ < 300)) || service_failed dev-hat "wrote no .dex/dev-hat.json in 60s"
        sleep 0.2
    done
}

serve() {
    require_free_port "$DEX_PORT" "the DEX"
    local watch_port
    watch_port="$(free_port)"
    log "serving every function with cargo lambda watch (reloads on code changes) on" \
        "$watch_port, behind tools/local-gateway on $DEX_PORT"
    DEX_TEE=1 start_bg watch cargo lambda watch -A 127.0.0.1 -P "$watch_port" \
        --concurrency "$CONCURRENCY" "${PROFILE_FLAGS[@]}"
    wait_for_port "$watch_port" watch 120
    start_gateway "$DEX_PORT" "$watch_port" "${PROFILE_FLAGS[@]}"
}

print_banner() {
    local q="'"
    cat >&2 <<EOF
==> The DEX is up at $DEX_PUBLIC_URL
    DynamoDB Local: $AWS_ENDPOINT_URL_DYNAMODB (data: .dex/dynamodb/)
    Secrets Manager (moto): $AWS_ENDPOINT_URL_SECRETS_MANAGER
    logs: .dex/logs/
==> Admin token:
    curl -s http://127.0.0.1:$DEX_PORT/api/users/access_token -H ${q}username: $DEX_LOCAL_ADMIN_USERNAME${q} -H ${q}password: $DEX_LOCAL_ADMIN_PASSWORD${q}
==> Sample events: make invoke FN=<function> (events/README.md)
==> Ctrl-C stops everything.
EOF
}

# Returns when one of the services stops by itself (Ctrl-C ends the script via the trap).
watch_services() {
    local name
    while :; do
        for name in "${DEX_SVC_ORDER[@]}"; do
            service_alive "$name" || service_failed "$name" "stopped unexpectedly"
        done
        sleep 1
    done
}

main() {
    cd "$DEX_ROOT"
    ensure_tools
    install_cleanup_trap
    if [[ ${DEX_DEV_HAT:-1} != 0 ]]; then
        export DEX_HAT_SCHEME="${DEX_HAT_SCHEME:-http}" DEX_HAT_RESOLVE="${DEX_HAT_RESOLVE:-127.0.0.1}"
    fi
    export_stack_env "$DYNAMODB_PORT" "$MOTO_PORT"
    log "local stack settings:"
    print_stack_env
    start_backends
    prepare_dex
    start_dev_hat
    serve
    print_banner
    watch_services
}

main "$@"
