#!/usr/bin/env bash
# Usage: mpi_sweep_test.sh PFLOW CONFIG COMPARE OUTDIR
# A sweep spread over MPI ranks writes what one process writes, and loses nothing when killed:
#  1. `mpirun -np 3 --oversubscribe` (two threads per rank): every dataset equals the
#     single-process run's (compare_results.py: bit for bit, apart from wall times and the
#     schedule trace), and the trace shows items run on every rank;
#  2. the job is killed with SIGKILL (mpirun and every rank, as a batch system ends a job) while
#     the reference is half done, resumed with -np 3, where one rank is killed after the first
#     cells (mpirun ends the job), then resumed by one process without mpirun: the datasets equal the uninterrupted run's, and no
#     resumed run recomputed a chunk or cell that was checkpointed before it started;
#  3. bad input under MPI (a bad config read by every rank; an existing result, which rank 0
#     alone checks): exit 2, the message once, no file.
set -eu
pflow=$1 config=$2 compare=$3 dir=$4/mpi_sweep
rm -rf "$dir"
mkdir -p "$dir"
fail() {
  echo "FAIL: $*"
  exit 1
}
# OpenMPI refuses to start as root unless told (CI runs as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No network interfaces needed on one machine; shared memory and loopback only.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi() { mpirun -np "$1" --oversubscribe "${@:2}"; }

# 1. One process against three ranks.
"$pflow" run "$config" --out "$dir/single.h5" --quiet > /dev/null
mpi 3 "$pflow" run "$config" --out "$dir/three.h5" --threads 2 --quiet > "$dir/three.log" 2>&1 ||
  { cat "$dir/three.log"; fail "mpirun -np 3 failed"; }
/usr/bin/python3 "$compare" "$dir/single.h5" "$dir/three.h5"
/usr/bin/python3 - "$dir/three.h5" << 'EOF' || fail "the trace does not show three ranks"
import sys
import h5py
with h5py.File(sys.argv[1]) as f:
    s = f["provenance/schedule"]
    ranks = set(s["rank"][()].tolist())
    assert s.attrs["ranks"] == 3 and ranks == {0, 1, 2}, (dict(s.attrs), ranks)
    assert (s["end_s"][()] >= s["start_s"][()]).all()
    print(f"three ranks ran {len(s['rank'])} items: ranks {sorted(ranks)}")
EOF

# 2. SIGKILL mid-reference and mid-cells, resumed with other rank counts.
out=$dir/resumed.h5 checkpoint=$dir/resumed.h5.checkpoint
checkpointed() { (cd "$checkpoint" && ls -- *.json 2> /dev/null | grep -v '^config.json$' | sort) || true; }
# Starts an mpirun job, waits until a file matching $1 is checkpointed, and kills with SIGKILL
# what $2 names: "job", mpirun and every rank at once (as a batch system ends a job), or "rank",
# the last rank alone (mpirun then ends the job).
kill_after() {
  local pattern=$1 victim=$2
  shift 2
  "$@" > "$dir/killed.log" 2>&1 &
  local pid=$!
  for _ in $(seq 3000); do
    compgen -G "$checkpoint/$pattern" > /dev/null && break
    kill -0 "$pid" 2> /dev/null || { cat "$dir/killed.log"; fail "the run ended before $pattern"; }
    sleep 0.05
  done
  local ranks
  ranks=$(pgrep -P "$pid")
  if [ "$victim" = job ]; then
    kill -KILL "$pid" $ranks
  else
    kill -KILL "$(tail -n 1 <<< "$ranks")"
  fi
  wait "$pid" 2> /dev/null && fail "the killed job exited 0" || true
  for _ in $(seq 600); do  # every rank gone (mpirun ends the others when one dies)
    pgrep -f -- "--out $out" > /dev/null || return 0
    sleep 0.05
  done
  fail "ranks outlived the killed job"
}
# Items a result's trace shows as computed: "reference-K.json", "cell-K.json".
recomputed() {
  /usr/bin/python3 - "$1" << 'EOF'
import sys
import h5py
with h5py.File(sys.argv[1]) as f:
    s = f["provenance/schedule"]
    names = {0: "reference", 1: "analytic-flow", 2: "cell"}
    for p, k in zip(s["phase"][()], s["item"][()]):
        print(f"{names[int(p)]}-{int(k)}.json")
EOF
}
kill_after 'reference-*.json' job mpirun -np 2 --oversubscribe "$pflow" run "$config" --out "$out" --force --quiet
first=$(checkpointed)
grep -q '^reference' <<< "$first" || fail "no reference chunk checkpointed"
grep -q '^cell' <<< "$first" && fail "the first kill came after the reference"
[ ! -e "$out" ] || fail "a killed run wrote its result"
kill_after 'cell-*.json' rank mpirun -np 3 --oversubscribe "$pflow" run "$config" --out "$out" --resume --threads 2 --quiet
second=$(checkpointed)
"$pflow" run "$config" --out "$out" --resume --quiet > /dev/null
[ ! -e "$checkpoint" ] || fail "the checkpoint outlived the completed run"
/usr/bin/python3 "$compare" "$dir/single.h5" "$out"
again=$(comm -12 <(recomputed "$out" | sort) <(echo "$second"))
[ -z "$again" ] || fail "checkpointed items were computed again: $again"
echo "killed with $(wc -l <<< "$first") then $(wc -l <<< "$second") items checkpointed;" \
  "resumed without recomputing any"

# 3. Bad input under MPI: one message, exit 2, no file.
bad=$dir/bad.json
/usr/bin/python3 -c "
import json, sys
c = json.load(open(sys.argv[1])); c['nfe'] = [10, -4]
json.dump(c, open(sys.argv[2], 'w'))" "$config" "$bad"
expect_one_error() {  # pattern, then the command
  local pattern=$1 status=0
  shift
  "$@" > "$dir/bad.log" 2>&1 || status=$?
  [ "$status" -eq 2 ] || { cat "$dir/bad.log"; fail "exit status $status, not 2"; }
  [ "$(grep -c "pflow: error: .*$pattern" "$dir/bad.log")" -eq 1 ] ||
    { cat "$dir/bad.log"; fail "the message '$pattern' is not there exactly once"; }
}
expect_one_error "nfe\[1\]" mpi 3 "$pflow" run "$bad" --out "$dir/never.h5" --quiet
[ ! -e "$dir/never.h5" ] && [ ! -e "$dir/never.h5.checkpoint" ] || fail "bad input left a file"
expect_one_error "exists; pass --force" mpi 3 "$pflow" run "$config" --out "$out" --quiet
echo "all checks passed"
