#!/usr/bin/env bash
# Usage: cli_expect.sh STATUS FRAGMENT COMMAND [ARGS...]
# Runs COMMAND and passes when its exit status is STATUS and its output contains FRAGMENT.
set -u
want_status=$1 fragment=$2
shift 2
output=$("$@" 2>&1)
status=$?
if [ "$status" -ne "$want_status" ]; then
  echo "expected exit status $want_status, got $status; output:"; echo "$output"; exit 1
fi
if ! grep -qF -- "$fragment" <<<"$output"; then
  echo "output lacks '$fragment':"; echo "$output"; exit 1
fi
echo "ok: status $status, found '$fragment'"
