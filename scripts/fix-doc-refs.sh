#!/usr/bin/env bash
# Rewrites references to the original DEX documents, which live outside this repository,
# into references to the pages of docs/ that restate them, keeping the section numbers:
#   the product decisions        -> docs/decisions.md §N
#   the DEX API research notes   -> docs/wire-contract.md §N
#   the HAT-side research notes  -> docs/hats.md §N
# Any path in front of an old name is dropped, "section N" and bare numbers after a page
# become "§N", and so do the later numbers of a list ("§6.1, 6.2" -> "§6.1, §6.2").
# Idempotent: a second run changes nothing; files that do not change are not touched (their
# modification time stays). The patterns are written so that this file does not match them.
#
# Usage: scripts/fix-doc-refs.sh [FILE...]   (default: every tracked or new, unignored file)
# tests/tests/docs.rs checks the result (`cargo test -p dex-tests --test docs`).
set -euo pipefail
export LC_ALL=C

# The rewrites, in order: old names (with any path before them), the short form of the
# decisions, "section N" and bare numbers, then the rest of a list.
readonly PROGRAM='
s#([A-Za-z0-9_.~/-]*/)?hat-side\.md#docs/hats.md#g
s#([A-Za-z0-9_.~/-]*/)?dex-api\.md#docs/wire-contract.md#g
s#([A-Za-z0-9_.~/-]*/)?decisions\.md#docs/decisions.md#g
s#(^|[^A-Za-z0-9_./-])[Dd]ecisions[[:space:]]+§#\1docs/decisions.md §#g
s#(docs/[a-z-]+\.md`?)[[:space:]]+[Ss]ections?[[:space:]]+([0-9])#\1 §\2#g
s#(docs/[a-z-]+\.md`?) ([0-9])#\1 §\2#g
:list
s#(docs/[a-z-]+\.md`? §[0-9][0-9.]*((, |,|/| and |-)§[0-9][0-9.]*)*(, |,|/| and |-))([0-9])#\1§\5#
t list
'

# Everything runs inside main, which bash parses whole before running it.
main() {
    local files=() file changed=0
    if [ "$#" -gt 0 ]; then
        files=("$@")
    else
        cd "$(git rev-parse --show-toplevel)"
        mapfile -d '' files < <(git ls-files -z --cached --others --exclude-standard)
    fi
    scratch=$(mktemp) # global: the EXIT trap runs after main returns
    trap 'rm -f "$scratch"' EXIT
    for file in "${files[@]}"; do
        case "$file" in
            target/* | */target/* | .git/* | */.git/*) continue ;;
            scripts/fix-doc-refs.sh | */scripts/fix-doc-refs.sh) continue ;; # its patterns are no references
        esac
        [ -f "$file" ] || continue
        grep -Iq . "$file" || continue # binary or empty
        sed -E -e "$PROGRAM" "$file" >"$scratch"
        if ! cmp -s "$scratch" "$file"; then
            cat "$scratch" >"$file" # keeps the file's mode
            echo "fixed $file"
            changed=$((changed + 1))
        fi
    done
    echo "fix-doc-refs: $changed file(s) changed"
}

main "$@"
