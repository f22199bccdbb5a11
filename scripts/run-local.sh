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

serve() {
    require_free_port "$DEX_PORT" "the DEX"
    log "serving every function with cargo lambda watch (reloads on code changes)"
    DEX_TEE=1 start_bg watch cargo lambda watch -A 127.0.0.1 -P "$DEX_PORT" \
        --concurrency "$CONCURRENCY" "${PROFILE_FLAGS[@]}"
    wait_for_port "$DEX_PORT" watch 120
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
    export_stack_env "$DYNAMODB_PORT" "$MOTO_PORT"
    log "local stack settings:"
    print_stack_env
    start_backends
    prepare_dex
    serve
    print_banner
    watch_services
}

main "$@"
