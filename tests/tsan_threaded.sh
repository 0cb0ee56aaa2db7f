#!/usr/bin/env bash
# Usage: tsan_threaded.sh BUILD_DIR   (scripts/test --tsan builds BUILD_DIR with ThreadSanitizer)
# Runs what pflow runs on several threads: a CLD sweep with --threads 2 over gddim (K = R: the
# shared Gauss-Legendre cache; cholesky; principal), paddim and odeint solvers, the Catch2 case
# that compares 1 and 2 threads bit for bit, and the order-problem cache from four threads.
# Any ThreadSanitizer report aborts the process (halt_on_error=1) and fails this script.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/pflow" run "$here/data/tsan_cld_sweep.json" --out "$work/sweep.h5" --threads 2 --quiet
echo "tsan: threaded CLD sweep clean"
"$build/tests/pflow_tests" "[threads]"
echo "tsan: [threads] cases clean"
