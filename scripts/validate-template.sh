#!/usr/bin/env bash
# Validate template.yaml offline, in two steps that must both pass:
#   1. `sam validate --lint` on the SAM template;
#   2. translate it to CloudFormation with samtranslator (scripts/translate_template.py) and
#      run cfn-lint on the result, which catches what step 1 misses (dangling !Ref,
#      undefined ${} in !Sub, bad runtimes).
# Usage: scripts/validate-template.sh [TEMPLATE]   (default: template.yaml at the repo root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="${1:-$root/template.yaml}"
region=us-east-1

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="$region" AWS_REGION="$region"

# sam and cfn-lint at the versions scripts/lib.sh pins (samtranslator comes with sam),
# installed if missing, and on PATH.
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
ensure_python_tools

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== sam validate --lint $template"
sam validate --lint -t "$template" --region "$region"

echo "== samtranslator + cfn-lint"
python3 "$root/scripts/translate_template.py" "$template" "$tmp/template.json"
cfn-lint --regions "$region" -- "$tmp/template.json"

echo "template OK: $template"
