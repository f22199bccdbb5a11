#!/usr/bin/env bash
# `make invoke FN=<function>`: invoke one function with its sample event (events/<FN>.json)
# against the DEX that `make run` serves, so that it shows its success path.
#
# The committed events hold placeholders, filled in for each invocation:
#   {{ADMIN_TOKEN}}     a fresh token of the local admin (DEX_LOCAL_ADMIN_USERNAME/PASSWORD)
#   {{UNIQUE}}          a fresh suffix, so that creating events create something new each time
#   {{ACCOUNT_ID}}      a marketplace account created for this invocation
#   {{ACCOUNT_TOKEN}}   a token of that account (password "a long invoke password")
#   {{CLUSTER_DOMAIN}}  a cluster certified for this invocation (admin-cluster-delete)
#   {{PLUG_ID}}         a data plug registered for this invocation (approved for dataplug-connect)
#   {{OFFER_ID}}        an offer of that account registered for this invocation, running now
#                       (approved for the claim events; claimed by the development HAT for
#                       offer-user-claim)
#   {{APP_ID}}          an application created (unpublished, version 1.0.0) for this invocation
#   {{NOTICE_ID}}       a notice posted for this invocation to the development HAT
#   {{HAT_ADDRESS}} {{HAT_TOKEN}} {{HAT_CLUSTER}}
#                       the development HAT that `make run` serves (DEX_DEV_HAT_FILE, default
#                       .dex/dev-hat.json), its HAT-signed token for DEX, its cluster; the
#                       cluster is certified and the HAT registered first, when needed
# then `cargo lambda invoke` sends the event to the function (not through the router) and the
# Lambda response is printed. Exits 1 when the answer is not a 2xx.
#
# Settings: DEX_PORT (9000), DEX_LOCAL_ADMIN_USERNAME, DEX_LOCAL_ADMIN_PASSWORD,
# DEX_DEV_HAT_FILE.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FN="${1:-${FN:-}}"
[[ -n $FN ]] || die "usage: make invoke FN=<function> (one of: $(cd "$DEX_ROOT/events" && ls -- *.json | sed 's/\.json$//' | tr '\n' ' '))"
EVENT="$DEX_ROOT/events/$FN.json"
[[ -f $EVENT ]] || die "no sample event $EVENT"
PORT="${DEX_PORT:-9000}"
DEX="http://127.0.0.1:$PORT"
ADMIN_USER="${DEX_LOCAL_ADMIN_USERNAME:-admin@dex.local}"
ADMIN_PASSWORD="${DEX_LOCAL_ADMIN_PASSWORD:-dex-local-admin}"
DEV_HAT_FILE="${DEX_DEV_HAT_FILE:-$DEX_ROOT/.dex/dev-hat.json}"
add_python_bins_to_path
have cargo-lambda || die "cargo-lambda is not installed: run make tools"
port_open "$PORT" || die "nothing listens on 127.0.0.1:$PORT: start the DEX with make run (or set DEX_PORT)"

# json_field FIELD: reads JSON on stdin, prints FIELD (empty if absent).
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"
}

# api METHOD PATH [BODY]: DEX's answer body; fails unless 2xx (or 409 when ALLOW_409=1).
api() {
    local method="$1" path="$2" body="${3:-}" out code
    out="$(mktemp)"
    code=$(curl -s -o "$out" -w '%{http_code}' -X "$method" "$DEX$path" \
        -H "X-Auth-Token: ${ADMIN_TOKEN:-}" -H 'Content-Type: application/json' \
        ${body:+--data "$body"})
    if [[ $code != 2* && ! (${ALLOW_409:-0} == 1 && $code == 409) ]]; then
        cat "$out" >&2
        rm -f "$out"
        die "$method $path answered $code"
    fi
    cat "$out"
    rm -f "$out"
}

UNIQUE="$(date +%s%N | tail -c 13)$RANDOM"
ADMIN_TOKEN="$(curl -sf "$DEX/api/users/access_token" -H "username: $ADMIN_USER" \
    -H "password: $ADMIN_PASSWORD" | json_field accessToken)" ||
    die "the local admin ($ADMIN_USER) cannot log in at $DEX"
export ADMIN_TOKEN UNIQUE

needs() { grep -q "{{$1}}" "$EVENT"; }

ACCOUNT_ID="" ACCOUNT_TOKEN=""
if needs ACCOUNT_ID || needs ACCOUNT_TOKEN || needs PLUG_ID || needs OFFER_ID; then
    ACCOUNT_ID="$(api POST /api/admin/accounts \
        "{\"username\": \"invoke-$UNIQUE@example.com\", \"password\": \"a long invoke password\", \"roles\": [\"marketplace\"]}" |
        json_field accountId)"
    if needs ACCOUNT_TOKEN || needs OFFER_ID; then
        ACCOUNT_TOKEN="$(curl -sf "$DEX/api/users/access_token" -H "username: invoke-$UNIQUE@example.com" \
            -H 'password: a long invoke password' | json_field accessToken)" ||
            die "the account created for the invocation cannot log in"
    fi
fi
PLUG_ID=""
if needs PLUG_ID; then
    PLUG_ID="$(api POST /api/admin/dataplugs \
        "{\"name\": \"plug$UNIQUE\", \"description\": \"for make invoke\", \"url\": \"https://plug.example.com\", \"illustrationUrl\": \"https://plug.example.com/logo.png\", \"providerId\": \"$ACCOUNT_ID\", \"password\": \"an invoke plug password\"}" |
        json_field uuid)"
    if [[ $FN == dataplug-connect ]]; then
        api PUT "/api/admin/dataplugs/$PLUG_ID" '{"approved": true}' >/dev/null
    fi
fi
CLUSTER_DOMAIN=""
if needs CLUSTER_DOMAIN; then
    CLUSTER_DOMAIN="d$UNIQUE.hubat.test"
    api POST /api/admin/clusters "{\"domain\": \"$CLUSTER_DOMAIN\", \"platformUsername\": \"hatdex.org\", \"platformPassword\": \"a platform password\"}" >/dev/null
fi
HAT_ADDRESS="" HAT_TOKEN="" HAT_CLUSTER=""
if needs HAT_ADDRESS || needs HAT_TOKEN || needs HAT_CLUSTER || needs NOTICE_ID; then
    [[ -s $DEV_HAT_FILE ]] || die "no development HAT ($DEV_HAT_FILE): make run serves one unless DEX_DEV_HAT=0"
    HAT_ADDRESS="$(json_field address <"$DEV_HAT_FILE")"
    HAT_TOKEN="$(json_field token <"$DEV_HAT_FILE")"
    HAT_CLUSTER="$(json_field cluster <"$DEV_HAT_FILE")"
    ALLOW_409=1 api POST /api/admin/clusters "$(python3 -c '
import json, sys
hat = json.load(open(sys.argv[1]))
print(json.dumps({"domain": hat["cluster"], "platformUsername": hat["platformUsername"], "platformPassword": hat["platformPassword"]}))
' "$DEV_HAT_FILE")" >/dev/null
    if [[ $FN != register-hat ]]; then
        api POST /api/users/registerHat "{\"hatAddress\": \"$HAT_ADDRESS\"}" >/dev/null
    fi
fi
OFFER_ID=""
if needs OFFER_ID; then
    OFFER_ID="invoke-$UNIQUE"
    NOW_MS="$(date +%s%3N)"
    ADMIN_TOKEN="$ACCOUNT_TOKEN" api POST /api/v2/offer "{\"offerId\": \"$OFFER_ID\", \"title\": \"make invoke\", \"description\": \"an offer for make invoke\", \"starts\": $((NOW_MS - 60000)), \"expires\": $((NOW_MS + 86400000)), \"requiredData\": {\"name\": \"invoke\", \"bundle\": {\"profile\": {\"endpoints\": [{\"endpoint\": \"rumpel/profile\"}]}}}, \"requiredMinUser\": 1, \"requiredMaxUser\": 10}" >/dev/null
    case $FN in
        offer-claim | offer-register-claim | offer-user-claim)
            ADMIN_TOKEN="$ACCOUNT_TOKEN" api PUT "/api/v2/offer/$OFFER_ID?status=approved" >/dev/null
            ;;
    esac
    if [[ $FN == offer-user-claim ]]; then
        ADMIN_TOKEN="$HAT_TOKEN" api GET "/api/v2/offer/$OFFER_ID/claim" >/dev/null
    fi
fi
APP_ID=""
if needs APP_ID; then
    APP_ID="app$UNIQUE"
    # The body of events/app-replace.json with the application's id.
    api POST /api/applications "$(python3 -c '
import json, sys
event = json.load(open(sys.argv[1]))
print(event["body"].replace("{{APP_ID}}", sys.argv[2]))
' "$DEX_ROOT/events/app-replace.json" "$APP_ID")" >/dev/null
fi
NOTICE_ID=""
if needs NOTICE_ID; then
    NOTICE_ID="$(api POST /api/notices \
        "{\"message\": \"for make invoke $UNIQUE\", \"target\": {\"withHatAddress\": [\"$HAT_ADDRESS\"]}}" |
        json_field id)"
fi
export ACCOUNT_ID ACCOUNT_TOKEN PLUG_ID OFFER_ID CLUSTER_DOMAIN HAT_ADDRESS HAT_TOKEN HAT_CLUSTER APP_ID NOTICE_ID

FILLED="$(mktemp "${TMPDIR:-/tmp}/dex-event-$FN.XXXXXX.json")"
trap 'rm -f "$FILLED"' EXIT
python3 - "$EVENT" "$FILLED" <<'PY'
import json, os, re, sys

names = ["ADMIN_TOKEN", "UNIQUE", "ACCOUNT_ID", "ACCOUNT_TOKEN", "PLUG_ID", "OFFER_ID", "CLUSTER_DOMAIN", "HAT_ADDRESS", "HAT_TOKEN", "HAT_CLUSTER", "APP_ID", "NOTICE_ID"]

def fill(value):
    if isinstance(value, str):
        for name in names:
            value = value.replace("{{%s}}" % name, os.environ.get(name, ""))
        left = re.findall(r"\{\{[A-Z_]+\}\}", value)
        if left:
            sys.exit(f"unknown placeholder(s) {left} in {sys.argv[1]}")
        return value
    if isinstance(value, list):
        return [fill(v) for v in value]
    if isinstance(value, dict):
        return {k: fill(v) for k, v in value.items()}
    return value

event = fill(json.load(open(sys.argv[1])))
if isinstance(event.get("body"), str):
    event["headers"]["content-length"] = str(len(event["body"].encode()))
json.dump(event, open(sys.argv[2], "w"), indent=2)
PY

RESPONSE="$(cargo lambda invoke "$FN" -A 127.0.0.1 -P "$PORT" --data-file "$FILLED" --output-format json)"
printf '%s\n' "$RESPONSE"
STATUS="$(printf '%s' "$RESPONSE" | json_field statusCode)"
# A scheduled function (offer-sweep) answers its report, not an HTTP response: 200 unless
# the invocation failed (a Lambda error has an errorType).
if [[ -z $STATUS ]]; then
    if [[ -n "$(printf '%s' "$RESPONSE" | json_field errorType)" ]]; then STATUS=500; else STATUS=200; fi
fi
log "$FN answered $STATUS"
[[ $STATUS == 2* ]]
