#!/usr/bin/env bash
# The fuzz step of `make test` (scripts/test.sh sources this file and calls run_fuzz once the
# suite has run): schemathesis fuzzes every operation of openapi.yaml against the running
# stack, with every check, $DEX_FUZZ_EXAMPLES examples per operation, the token of an admin
# account of its own on DEX-token routes and real test-HAT tokens on HAT-token routes
# (tests/src/bin/fuzz-hat.rs starts the test HAT cluster, certifies it and registers its
# HATs; tests/fuzz/hooks.py hands the tokens to schemathesis and adds a check that no body
# carries a stack trace or Rust Debug text). Every check runs but max_response_time: slow
# answers are listed, never a failure.
#
# It runs on the suite's stack after the suite: it creates and changes accounts, clusters,
# HATs, statistics and descriptions, which would race the suites' own assertions if it ran
# beside them, and after them it fuzzes a table the suites have filled (pages, large trees).
#
# Environment: DEX_TEST_URL (the served functions), DEX_LOG_DIR, the stack's variables.
#   DEX_FUZZ_EXAMPLES  examples per operation (default 25)
#   DEX_FUZZ_SEED      a fixed seed to reproduce a run (default: random, printed)
#   DEX_FUZZ_WORKERS   concurrent schemathesis workers (default 1: one stack, reproducible with a seed)

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run_fuzz() {
    local dir="$DEX_LOG_DIR/fuzz" started=$SECONDS rc=0
    local tokens="$dir/tokens.json" seed="${DEX_FUZZ_SEED:-$RANDOM$RANDOM}"
    mkdir -p "$dir"
    log "fuzz: starting the test HAT cluster for the HAT-token routes"
    start_bg fuzz-hat "$(cargo_target_dir)/debug/fuzz-hat" "$tokens"
    until [[ -s $tokens ]]; do
        service_alive fuzz-hat || service_failed fuzz-hat "exited before writing $tokens"
        ((SECONDS - started < 120)) || service_failed fuzz-hat "no token file after 120s"
        sleep 0.5
    done
    log "fuzz: schemathesis $(schemathesis --version | awk '{print $NF}') on every operation" \
        "(${DEX_FUZZ_EXAMPLES:-25} examples each, seed $seed)"
    DEX_FUZZ_TOKENS="$tokens" SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$DEX_ROOT/tests/fuzz" \
        schemathesis --no-color --config-file "$DEX_ROOT/tests/fuzz/schemathesis.toml" \
        run "$DEX_ROOT/openapi.yaml" \
        --url "$DEX_TEST_URL" \
        --checks "$(fuzz_checks),no_debug_text,ReportSlowAnswers" \
        --max-examples "${DEX_FUZZ_EXAMPLES:-25}" \
        --seed "$seed" \
        --workers "${DEX_FUZZ_WORKERS:-1}" \
        --request-timeout 60 \
        --suppress-health-check too_slow \
        --generation-database none \
        --report junit --report-dir "$dir" || rc=$?
    log "fuzz: finished in $((SECONDS - started))s (exit $rc; report in $dir)"
    return "$rc"
}

# Every built-in check but max_response_time (`--checks all` would turn it on with a 10 s
# limit, and `--exclude-checks` does not take it): slow answers are listed by the hooks,
# never a failure. Read from the installed schemathesis, so a check it adds runs too.
fuzz_checks() {
    python3 -c '
import dataclasses
from schemathesis.config._checks import ChecksConfig
print(",".join(f.name for f in dataclasses.fields(ChecksConfig)
               if not f.name.startswith("_") and f.name != "max_response_time"))'
}

# Where cargo puts the binaries (CARGO_TARGET_DIR or the workspace's target/).
cargo_target_dir() {
    if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
        printf '%s\n' "$CARGO_TARGET_DIR"
    else
        cargo metadata --format-version 1 --no-deps |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
    fi
}
