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

if ! command -v sam >/dev/null 2>&1 || ! command -v cfn-lint >/dev/null 2>&1 \
    || ! python3 -c 'import samtranslator' >/dev/null 2>&1; then
    echo "installing aws-sam-cli and cfn-lint (pip)" >&2
    python3 -m pip install --quiet aws-sam-cli cfn-lint
    hash -r
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== sam validate --lint $template"
sam validate --lint -t "$template" --region "$region"

echo "== samtranslator + cfn-lint"
python3 "$root/scripts/translate_template.py" "$template" "$tmp/template.json"
cfn-lint --regions "$region" -- "$tmp/template.json"

echo "template OK: $template"
