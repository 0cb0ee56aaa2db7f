#!/usr/bin/env bash
# Usage: cli_kill_resume.sh PFLOW LONG_CONFIG SHORT_CONFIG COMPARE OUTDIR
# Interrupted runs lose nothing:
#  1. an earlier result sits at OUT; a --force run of LONG_CONFIG to OUT is killed with SIGKILL
#     after its first checkpointed cell: OUT is byte-identical, nothing else is under its name;
#  2. --resume finishes it; its datasets equal those of an uninterrupted run (other thread count);
#  3. SIGINT stops a run at a cell boundary with exit 130 and the resume command; --resume
#     finishes that one too, with the same datasets.
set -eu
pflow=$1 long=$2 short=$3 compare=$4 dir=$5/kill_resume
rm -rf "$dir"
mkdir -p "$dir"
out=$dir/result.h5 checkpoint=$dir/result.h5.checkpoint
fail() { echo "FAIL: $*"; exit 1; }

# Waits (up to 300 s) until the run with pid $1 has checkpointed at least one cell.
wait_for_cell() {
  for _ in $(seq 3000); do
    if compgen -G "$checkpoint/cell-*.json" > /dev/null; then return 0; fi
    kill -0 "$1" 2> /dev/null || fail "the run ended before its first checkpoint"
    sleep 0.1
  done
  fail "no checkpointed cell after 300 s"
}
cells_done() { find "$checkpoint" -name 'cell-*.json' | wc -l; }

# The uninterrupted run, one thread.
"$pflow" run "$long" --out "$dir/uninterrupted.h5" --threads 1 --quiet > /dev/null
cells_total=$(/usr/bin/python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))
print(len(c['solvers']) * len(c['nfe']))" "$long")

# 1. SIGKILL mid-sweep.
"$pflow" run "$short" --out "$out" --quiet > /dev/null
cp -p "$out" "$dir/earlier.h5"
"$pflow" run "$long" --out "$out" --force --threads 2 --quiet > "$dir/killed.log" 2>&1 &
pid=$!
wait_for_cell $pid
kill -KILL $pid
wait $pid 2> /dev/null && fail "the killed run exited 0" || true
done_at_kill=$(cells_done)
[ "$done_at_kill" -lt "$cells_total" ] || fail "the run finished before it was killed"
cmp "$out" "$dir/earlier.h5" || fail "the earlier result changed"
stray=$(find "$dir" -maxdepth 1 -name 'result.h5?*' ! -name 'result.h5.checkpoint')
[ -z "$stray" ] || fail "files left beside the result: $stray"
echo "killed with $done_at_kill of $cells_total cells checkpointed; earlier result intact"

# Without --resume or --force a new run refuses to touch the checkpoint.
if "$pflow" run "$long" --out "$out" --quiet > "$dir/refused.log" 2>&1; then
  fail "a run over an existing checkpoint started without --resume"
fi
grep -q -- "--resume" "$dir/refused.log" || fail "the refusal does not mention --resume"

# 2. Resume, then compare with the uninterrupted run.
"$pflow" run "$long" --out "$out" --resume --threads 2 --quiet > /dev/null
[ ! -e "$checkpoint" ] || fail "the checkpoint outlived a completed run"
/usr/bin/python3 "$compare" "$dir/uninterrupted.h5" "$out"

# 3. SIGINT: a clean stop at a cell boundary that says how to resume.
out2=$dir/interrupted.h5 checkpoint=$dir/interrupted.h5.checkpoint
"$pflow" run "$long" --out "$out2" --threads 1 --quiet > "$dir/sigint.log" 2>&1 &
pid=$!
wait_for_cell $pid
kill -INT $pid
status=0
wait $pid || status=$?
[ "$status" -eq 130 ] || { cat "$dir/sigint.log"; fail "SIGINT exit status $status, not 130"; }
grep -q "interrupted: [0-9]* of $cells_total cells done" "$dir/sigint.log" ||
  { cat "$dir/sigint.log"; fail "no 'interrupted: N of M cells done' message"; }
grep -q -- "--out $out2 --resume" "$dir/sigint.log" || fail "no resume command in the message"
[ ! -e "$out2" ] || fail "an interrupted run wrote its result"
"$pflow" run "$long" --out "$out2" --resume --threads 1 --quiet > /dev/null
/usr/bin/python3 "$compare" "$dir/uninterrupted.h5" "$out2"
echo "all checks passed"
