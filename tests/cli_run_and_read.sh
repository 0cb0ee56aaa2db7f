#!/usr/bin/env bash
# Usage: cli_run_and_read.sh PFLOW CONFIG READER OUTDIR
# Runs a config, checks that a second run refuses to overwrite, and reads the file with h5py.
set -eu
pflow=$1 config=$2 reader=$3 out=$4/tiny_convergence.h5
rm -f "$out"
"$pflow" run "$config" --out "$out" --quiet
if "$pflow" run "$config" --out "$out" --quiet 2>/dev/null; then
  echo "a second run overwrote the result without --force"; exit 1
fi
/usr/bin/python3 "$reader" "$out" 3 2
"$pflow" table "$out" --format latex | grep -q '\\bottomrule'
