#!/usr/bin/env bash
# The evaluation step of the composite action (action.yml at the repository root): one losscli
# run writes the JUnit report (--output) and the job summary (losscli appends it to
# $GITHUB_STEP_SUMMARY itself), then reports passed=true|false and the report's path in
# $GITHUB_OUTPUT. The exit code is losscli's: 0 passed, 1 a gate failed, 2 bad input (then the
# JUnit report holds the error as one testcase, so that the publishing step shows it).
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

errors="$(mktemp)"
losscli "${args[@]}" 2> >(tee "$errors" >&2)
rc=$?
wait  # for tee
if [ "$rc" -ge 2 ]; then
  python3 - "$junit" "$errors" <<'PY'
import sys
from xml.sax.saxutils import quoteattr, escape
junit, errors = sys.argv[1], open(sys.argv[2], encoding="utf-8", errors="replace").read()
lines = [x for x in errors.splitlines() if x.startswith("losscli: error:")] or [errors.strip()]
message = lines[0].removeprefix("losscli: error:").strip() or "losscli failed"
with open(junit, "w", encoding="utf-8") as f:
    f.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="losscli" '
            'tests="1" failures="0" errors="1"><testcase classname="losscli" name="losscli '
            f'eval"><error message={quoteattr(message)}>{escape(errors)}</error></testcase>'
            '</testsuite></testsuites>\n')
PY
fi
rm -f "$errors"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  passed=false
  if [ "$rc" -eq 0 ]; then passed=true; fi
  { echo "passed=$passed"; echo "junit=$junit"; } >> "$GITHUB_OUTPUT"
fi
exit "$rc"
