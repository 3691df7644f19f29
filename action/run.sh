#!/usr/bin/env bash
# The evaluation step of the composite action (action.yml at the repository root): one losscli
# run writes the JUnit report (--output) and the job summary (losscli appends it to
# $GITHUB_STEP_SUMMARY itself), then reports passed=true|false and the report's path in
# $GITHUB_OUTPUT. The exit code is losscli's: 0 passed, 1 a gate failed, 2 bad input.
set -uo pipefail

: "${LOSSCLI_FILE:?the action input 'file' is required}"
junit="${LOSSCLI_JUNIT:-losscli.xml}"
args=(eval "$LOSSCLI_FILE" --format junit --output "$junit")
# Space-separated lists, split without globbing: '0.7*mse+0.3*mae' stays one spec.
read -r -a losses <<< "${LOSSCLI_LOSSES:-}"
for spec in "${losses[@]}"; do args+=(--loss "$spec"); done
read -r -a gates <<< "${LOSSCLI_GATES:-}"
for gate in "${gates[@]}"; do args+=(--max "$gate"); done
if [ -n "${LOSSCLI_BASELINE:-}" ]; then args+=(--baseline "$LOSSCLI_BASELINE"); fi
if [ -n "${LOSSCLI_TOLERANCE:-}" ]; then args+=(--tolerance "$LOSSCLI_TOLERANCE"); fi

losscli "${args[@]}"
rc=$?
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  passed=false
  if [ "$rc" -eq 0 ]; then passed=true; fi
  { echo "passed=$passed"; echo "junit=$junit"; } >> "$GITHUB_OUTPUT"
fi
exit "$rc"
