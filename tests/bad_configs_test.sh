#!/usr/bin/env bash
# Usage: bad_configs_test.sh PFLOW DIR OUTDIR
# Every config of DIR/expected.tsv must make `pflow run` exit with status 2, print its message
# fragment, and create no file.
set -u
pflow=$1 dir=$2 outdir=$3
failed=0 count=0
while IFS=$'\t' read -r file fragment; do
  count=$((count + 1))
  out="$outdir/bad_config_result.h5"
  rm -f "$out"
  output=$("$pflow" run "$dir/$file" --out "$out" --quiet 2>&1)
  status=$?
  if [ "$status" -ne 2 ]; then
    echo "FAIL $file: exit status $status (want 2): $output"; failed=$((failed + 1)); continue
  fi
  if ! grep -qF -- "$fragment" <<<"$output"; then
    echo "FAIL $file: output lacks '$fragment': $output"; failed=$((failed + 1)); continue
  fi
  if ls "$outdir"/bad_config_result.h5* >/dev/null 2>&1; then
    echo "FAIL $file: a file appeared"; failed=$((failed + 1)); continue
  fi
  echo "ok   $file"
done < "$dir/expected.tsv"
echo "$count configs, $failed failed"
[ "$failed" -eq 0 ] && [ "$count" -ge 40 ]
